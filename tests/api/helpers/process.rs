//! The compiled `leadbase` binary as a separate process: offline commands, `leadbase serve`
//! children that can be killed for real, and `leadbase receive`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use testkit::{Client, Resp};

/// The compiled `leadbase` binary.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_leadbase")
}

/// `leadbase --set storage.path=DATA` with a clean environment; add the rest.
pub fn leadbase(data: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .arg("--set")
        .arg(format!("storage.path={}", data.display()));
    cmd
}

/// As [`leadbase`], started by a shell that first sets `umask` (the mask is per process, so
/// setting it here, in a test binary whose tests run side by side, would leak into the others).
pub fn leadbase_under_umask(data: &Path, umask: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(binary())
        .arg("--set")
        .arg(format!("storage.path={}", data.display()));
    cmd
}

/// Runs an offline command that must succeed; returns the JSON it prints.
pub fn run_json(cmd: &mut Command) -> Value {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("prints JSON")
}

/// A `leadbase serve` child, killed when dropped.
pub struct Served {
    pub child: Child,
    /// Talks to it.
    pub client: Client,
    /// `http://addr`, from its banner.
    pub base: String,
    /// The lines it printed at start: the address, the admin token's whereabouts, and (only
    /// when the token was just created) the first-key hint.
    pub banner: Vec<String>,
}

impl Served {
    /// SIGKILL, and reaps it.
    pub fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Sends SIGTERM (a graceful stop); does not wait.
    pub fn sigterm(&self) {
        sigterm(&self.child);
    }

    /// A graceful stop: SIGTERM, and a clean exit within 20 s.
    pub fn stop(mut self) {
        stop(&mut self.child, "the server");
    }

    /// Waits for it to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("waits")
    }

    /// Its exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM, then waits (up to 20 s) for `child` to exit, and asserts that it exited cleanly.
fn stop(child: &mut Child, what: &str) {
    sigterm(child);
    let exit = super::eventually(&format!("{what} stops"), Duration::from_secs(20), || {
        child
            .try_wait()
            .expect("try_wait")
            .ok_or_else(|| "still running".to_string())
    });
    assert!(exit.success(), "{what}: {exit:?}");
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM: {status:?}");
}

/// `leadbase serve` on a free port, with extra `--set` flags; returns once it printed its
/// banner.
pub fn serve(data: &Path, sets: &[&str]) -> Served {
    let mut cmd = leadbase(data);
    for set in sets {
        cmd.arg("--set").arg(set);
    }
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("banner").expect("utf-8");
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("address in banner")
        .to_string();
    let admin_line = lines.next().expect("admin line").expect("utf-8");
    // A third line, about the first key, follows only when the token was just created.
    let created = admin_line.contains("created");
    let mut banner = vec![first, admin_line];
    if created {
        banner.push(lines.next().expect("first-key line").expect("utf-8"));
    }
    Served {
        child,
        client: Client::new(base.clone()),
        base,
        banner,
    }
}

/// A `leadbase receive` child, killed when dropped; what it prints arrives line by line.
pub struct ReceiveProcess {
    child: Child,
    /// Talks to it, at the address from its banner.
    client: Client,
    lines: mpsc::Receiver<String>,
}

impl ReceiveProcess {
    /// The next line it prints (one verified event each), or `None` after `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// POSTs `body` with these headers to its `/hook`, as a delivery would arrive.
    pub fn deliver(&self, headers: &[(&str, String)], body: &str) -> Resp {
        let mut req = self.client.req("POST", "/hook");
        for (name, value) in headers {
            req = req.header(name, value);
        }
        req.raw(body).send()
    }

    /// A graceful stop: SIGTERM, and a clean exit within 20 s.
    pub fn stop(mut self) {
        stop(&mut self.child, "the receiver");
    }
}

impl Drop for ReceiveProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `leadbase receive --listen LISTEN` with the secret in `MEGA_WEBHOOK_SECRET`, as the
/// README says to, and waits for its banner.
pub fn receive(secret: &str, listen: &str) -> ReceiveProcess {
    let mut child = Command::new(binary())
        .env_remove("RUST_LOG")
        .env("MEGA_WEBHOOK_SECRET", secret)
        .args(["receive", "--listen", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let banner = lines.next().expect("banner").expect("utf-8");
    let url = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("address")
        .to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    ReceiveProcess {
        child,
        client: Client::new(url.trim_end_matches('/')),
        lines: rx,
    }
}
