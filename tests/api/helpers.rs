//! Starts the real server on 127.0.0.1:0 with a temporary data file, and a small typed client
//! that talks HTTP to it.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use leadbase::config::Config;
use leadbase::{Options, Running};
use serde_json::{Value, json};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
pub const ALL_SCOPES: [&str; 3] = [
    "public_api:leads:read",
    "public_api:leads:write",
    "public_api:webhooks:manage",
];

pub struct TestApp {
    pub base: String,
    pub dir: Arc<tempfile::TempDir>,
    pub config: Config,
    running: Option<Running>,
    agent: ureq::Agent,
}

pub struct Resp {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Asserts the spec's error envelope with this status and type; returns the message.
    pub fn assert_error(&self, status: u16, kind: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.text);
        let body = self.json();
        assert_eq!(body["error"]["type"], kind, "body: {}", self.text);
        assert_eq!(body["error"]["code"], status, "body: {}", self.text);
        let message = body["error"]["message"]
            .as_str()
            .expect("message")
            .to_string();
        assert!(!message.is_empty());
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "only `error` at the top"
        );
        message
    }
}

pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.storage.path = dir.join("leadbase.redb");
    config.admin.token = Some(ADMIN_TOKEN.into());
    config.server.workers = 2;
    config
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

pub fn spawn_app() -> TestApp {
    spawn_with(|_| {})
}

pub fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut config = test_config(dir.path());
    adjust(&mut config);
    start_in(dir, config)
}

pub fn start_in(dir: Arc<tempfile::TempDir>, config: Config) -> TestApp {
    start_with_options(dir, config, Options::default())
}

/// [`start_in`] with [`Options`] of the test's own (a name lookup, say).
pub fn start_with_options(
    dir: Arc<tempfile::TempDir>,
    config: Config,
    options: Options,
) -> TestApp {
    // Internal errors are logged, not returned: show them when a test fails.
    leadbase::logging::init("error");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let running = leadbase::start(config.clone(), listener, options).expect("server starts");
    TestApp {
        base: format!("http://{}", running.addr()),
        dir,
        config,
        running: Some(running),
        agent: agent(),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
        }
    }
}

pub struct Req<'a> {
    app: &'a TestApp,
    method: &'a str,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl<'a> Req<'a> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string());
        self.header("content-type", "application/json")
    }

    /// A body as given, without a content type.
    pub fn raw(mut self, body: &str) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn send(self) -> Resp {
        let mut builder = ureq::http::Request::builder()
            .method(self.method)
            .uri(format!("{}{}", self.app.base, self.path));
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(self.body.unwrap_or_default())
            .expect("request");
        let mut response = self.app.agent.run(request).expect("HTTP exchange");
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Resp {
            status,
            headers,
            text,
        }
    }
}

impl TestApp {
    pub fn req(&self, method: &'static str, path: &str) -> Req<'_> {
        Req {
            app: self,
            method,
            path: path.to_string(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn admin(&self, method: &'static str, path: &str) -> Req<'_> {
        self.req(method, path).bearer(ADMIN_TOKEN)
    }

    /// An API call as a key of `tenant`.
    pub fn api(&self, method: &'static str, path: &str, key: &Key) -> Req<'_> {
        self.req(method, path)
            .bearer(&key.token)
            .header("x-customer-id", &key.tenant)
    }

    pub fn create_tenant(&self, name: &str) -> String {
        let res = self
            .admin("POST", "/admin/api/tenants")
            .json(&json!({ "name": name }))
            .send();
        assert_eq!(res.status, 201, "{}", res.text);
        res.json()["tenant"]["id"].as_str().expect("id").to_string()
    }

    pub fn issue_key(&self, tenant: &str, scopes: &[&str]) -> Key {
        let res = self
            .admin("POST", &format!("/admin/api/tenants/{tenant}/keys"))
            .json(&json!({ "name": "test", "scopes": scopes }))
            .send();
        assert_eq!(res.status, 201, "{}", res.text);
        let body = res.json();
        Key {
            id: body["key"]["id"].as_str().expect("id").into(),
            token: body["token"].as_str().expect("token").into(),
            tenant: tenant.into(),
        }
    }

    /// A tenant with one key holding every scope.
    pub fn tenant_with_key(&self, name: &str) -> Key {
        let tenant = self.create_tenant(name);
        self.issue_key(&tenant, &ALL_SCOPES)
    }

    /// Stops gracefully and returns what a restart needs.
    pub fn stop(mut self) -> (Arc<tempfile::TempDir>, Config) {
        if let Some(running) = self.running.take() {
            running.stop();
        }
        (Arc::clone(&self.dir), self.config.clone())
    }

    pub fn data_file(&self) -> PathBuf {
        self.config.storage.path.clone()
    }

    /// The same server, spoken to through `agent` instead of [`agent`]'s (for the benchmarks).
    #[allow(dead_code)]
    pub fn with_agent(mut self, agent: ureq::Agent) -> Self {
        self.agent = agent;
        self
    }
}

#[derive(Clone, Debug)]
pub struct Key {
    pub id: String,
    pub token: String,
    pub tenant: String,
}

impl Key {
    pub fn for_tenant(&self, tenant: &str) -> Key {
        Key {
            tenant: tenant.into(),
            ..self.clone()
        }
    }
}

/// The compiled `leadbase` binary, for tests that need a separate process.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_leadbase")
}

pub fn leadbase(data: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .arg("--set")
        .arg(format!("storage.path={}", data.display()));
    cmd
}

pub fn run_json(cmd: &mut Command) -> Value {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("prints JSON")
}

/// A `leadbase serve` child on a free port, with extra `--set` flags; returns it with its base
/// URL and the banner.
pub fn serve(data: &Path, sets: &[&str]) -> (Child, String, Vec<String>) {
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
    (child, base, banner)
}

/// A `leadbase receive` child, killed when dropped; what it prints arrives line by line.
pub struct Receiver {
    child: Child,
    /// `http://addr/`, from its banner.
    pub url: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Receiver {
    /// The next line it prints (one verified event each), or `None` after `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `leadbase receive --secret SECRET --listen LISTEN` and waits for its banner.
pub fn receive(secret: &str, listen: &str) -> Receiver {
    let mut child = Command::new(binary())
        .env_remove("RUST_LOG")
        .args(["receive", "--secret", secret, "--listen", listen])
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
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Receiver {
        child,
        url,
        lines: rx,
    }
}

// Shared by the lead and webhook tests.

pub const LEADS: &str = "/api/agents/crm/leads";
pub const BULK: &str = "/api/agents/crm/leads/bulk";
pub const HOOKS: &str = "/api/agents/crm/lead-webhooks";

/// Limits high enough that a test never meets them unless it means to.
pub fn relax_limits(c: &mut Config) {
    c.limits.per_minute = 1_000_000;
    c.limits.per_hour = 1_000_000;
    c.limits.bulk_per_minute = 1_000_000;
}

/// A server with [`relax_limits`].
pub fn app() -> TestApp {
    spawn_with(relax_limits)
}

/// A 201 create-or-merge; returns the lead.
pub fn create(app: &TestApp, key: &Key, body: Value) -> Value {
    push(app, key, body)["lead"].clone()
}

pub fn get(app: &TestApp, key: &Key, id: &str) -> Value {
    let res = app.api("GET", &format!("{LEADS}/{id}"), key).send();
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()["lead"].clone()
}

/// How many leads the tenant has.
pub fn total(app: &TestApp, key: &Key) -> u64 {
    let res = app.api("GET", LEADS, key).send();
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()["total"].as_u64().unwrap()
}

pub fn custom_field(app: &TestApp, tenant: &str, slug: &str, kind: &str) {
    let res = app
        .admin(
            "POST",
            &format!("/admin/api/tenants/{tenant}/custom-fields"),
        )
        .json(&json!({ "slug": slug, "name": slug, "type": kind }))
        .send();
    assert_eq!(res.status, 201, "{}", res.text);
}

/// A JSON array of strings, sorted.
pub fn sorted(values: &Value) -> Vec<String> {
    let mut v: Vec<String> = values
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect();
    v.sort();
    v
}

/// An object's keys.
pub fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

pub fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Polls `check` until it returns Ok, or panics with its last complaint.
pub fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not within {timeout:?}; last seen: {last}")
            }
            Err(_) => sleep(Duration::from_millis(25)),
        }
    }
}

/// A 201 create-or-merge; returns the whole body.
pub fn push(app: &TestApp, key: &Key, body: Value) -> Value {
    let res = app.api("POST", LEADS, key).json(&body).send();
    assert_eq!(res.status, 201, "{}", res.text);
    res.json()
}

/// A 200 PATCH of a lead, answered with only `lead`; returns the lead.
pub fn patch_lead(app: &TestApp, key: &Key, id: &str, body: Value) -> Value {
    let res = app
        .api("PATCH", &format!("{LEADS}/{id}"), key)
        .json(&body)
        .send();
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    assert_eq!(body.as_object().unwrap().len(), 1, "only `lead`: {body}");
    body["lead"].clone()
}

/// A lead's id.
pub fn id_of(lead: &Value) -> String {
    lead["id"].as_str().expect("id").to_string()
}
