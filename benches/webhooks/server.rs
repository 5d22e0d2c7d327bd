//! The server under test: the release `leadbase` binary as a child process (`leadbase serve
//! --listen 127.0.0.1:0`) on a fresh temporary data file, and what `/proc` says of it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use testkit::{ADMIN_TOKEN, Client};

/// The binary: `LEADBASE_BIN` when set (an older build, say), else the one this benchmark was
/// built with.
pub fn binary() -> String {
    std::env::var("LEADBASE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_leadbase").to_string())
}

/// A `leadbase serve` child, killed when dropped.
pub struct Server {
    child: Child,
    /// Talks to it (with the admin token the benchmark set).
    pub client: Client,
    /// Where its data file and its stderr live.
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts `bin` on a data file of its own with `--set` for each of `sets`; returns once it
    /// printed the address it listens on. Panics (with its stderr) when it does not start.
    pub fn start(bin: &str, sets: &[String]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let stderr = File::create(dir.path().join("stderr.log")).expect("stderr file");
        let mut cmd = Command::new(bin);
        // A clean environment: no LEADBASE_* variable of the caller's reaches its config.
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .arg("--set")
            .arg(format!(
                "storage.path={}",
                dir.path().join("leadbase.redb").display()
            ))
            .arg("--set")
            .arg(format!("admin.token={ADMIN_TOKEN}"));
        for set in sets {
            cmd.arg("--set").arg(set);
        }
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let Some(Ok(first)) = lines.next() else {
            let _ = child.wait();
            panic!(
                "{bin} serve did not start: {}",
                read_log(&dir.path().join("stderr.log"))
            );
        };
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in the banner: {first}"))
            .to_string();
        // The rest of what it prints is read and dropped, so that it never writes to a closed
        // pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Server {
            child,
            client: Client::new(base),
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What it wrote to stderr so far (warnings and errors).
    pub fn stderr(&self) -> String {
        read_log(&self.dir.path().join("stderr.log"))
    }

    /// User + system CPU it has used, in milliseconds.
    pub fn cpu_ms(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("read /proc/PID/stat");
        // After the command name in parentheses: state is field 3, utime 14 and stime 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .expect("stat has a command name")
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = [11, 12]
            .iter()
            .map(|&i| fields[i].parse::<u64>().expect("ticks"))
            .sum();
        ticks as f64 * 1000.0 / clock_ticks_per_second()
    }

    /// Where its data file is. (For the leads benchmark, which shares this.)
    #[allow(dead_code)]
    pub fn data_file(&self) -> std::path::PathBuf {
        self.dir.path().join("leadbase.redb")
    }

    /// The size of its data file, in bytes. (For the events benchmark, which shares this.)
    #[allow(dead_code)]
    pub fn data_file_bytes(&self) -> u64 {
        std::fs::metadata(self.dir.path().join("leadbase.redb")).map_or(0, |m| m.len())
    }

    /// Resident memory now (`VmRSS`), in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.status_kib("VmRSS:") / 1024.0
    }

    /// Peak resident memory since it started (`VmHWM`), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.status_kib("VmHWM:") / 1024.0
    }

    fn status_kib(&self, field: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status")
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `getconf CLK_TCK`: the unit of `/proc/PID/stat`'s CPU times (100 nearly everywhere).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
