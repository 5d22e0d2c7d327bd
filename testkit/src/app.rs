//! The real server, in this process, on 127.0.0.1:0 with a temporary data file; started from a
//! named preset.

use std::net::TcpListener;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use leadbase::config::Config;
use leadbase::domain::retry::Next;
use leadbase::domain::time::Timestamp;
use leadbase::{Deliveries, Options, Running};

use crate::client::Client;
use crate::receiver::Receiver;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
pub const ALL_SCOPES: [&str; 3] = [
    "public_api:leads:read",
    "public_api:leads:write",
    "public_api:webhooks:manage",
];

/// The configuration every preset starts from: a data file in `dir`, the admin token
/// [`ADMIN_TOKEN`], and two HTTP workers.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.storage.path = dir.join("leadbase.redb");
    config.admin.token = Some(ADMIN_TOKEN.into());
    config.server.workers = 2;
    config
}

/// Limits high enough that a test never meets them unless it means to.
pub fn relax_limits(c: &mut Config) {
    c.limits.per_minute = 1_000_000;
    c.limits.per_hour = 1_000_000;
    c.limits.bulk_per_minute = 1_000_000;
}

/// Lets webhooks point at `rx`: loopback opened by the URL policy, and its CA trusted.
pub fn trust_receiver(c: &mut Config, rx: &Receiver) {
    c.webhooks.allowed_private_cidrs = vec!["127.0.0.0/8".parse().expect("a CIDR")];
    c.webhooks.extra_ca_file = Some(rx.ca_path().to_path_buf());
}

/// What the delivery tests run with: [`relax_limits`], [`trust_receiver`], retries one second
/// apart (so a retry test takes seconds, not minutes) and four delivery threads.
pub fn deliver_to(c: &mut Config, rx: &Receiver) {
    relax_limits(c);
    trust_receiver(c, rx);
    c.webhooks.retry_schedule_seconds = vec![1, 1, 1, 1, 1];
    c.webhooks.delivery_threads = 4;
}

/// A running server and the client that talks to it (through `Deref`, so `app.post_lead(...)`).
/// Dropping it stops the server.
pub struct TestApp {
    client: Client,
    pub dir: Arc<tempfile::TempDir>,
    pub config: Config,
    options: Options,
    running: Option<Running>,
}

impl TestApp {
    /// The test configuration as it is: the default limits.
    pub fn spawn() -> TestApp {
        Self::spawn_with(|_| {})
    }

    /// The test configuration, then `adjust`.
    pub fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_with_options(Options::default(), adjust)
    }

    /// [`TestApp::spawn_with`] with [`Options`] of the test's own (a name lookup, say).
    pub fn spawn_with_options(options: Options, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut config = test_config(dir.path());
        adjust(&mut config);
        Self::start(dir, config, options)
    }

    /// With [`relax_limits`]: for tests that are not about limits.
    pub fn relaxed() -> TestApp {
        Self::spawn_with(relax_limits)
    }

    /// [`TestApp::relaxed`] with loopback opened by the URL policy, so `https://127.x.y.z/...`
    /// can be registered (and is never connected to at registration).
    pub fn for_webhooks() -> TestApp {
        Self::for_webhooks_with(|_| {})
    }

    /// [`TestApp::for_webhooks`], then `adjust`.
    pub fn for_webhooks_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_with(|c| {
            relax_limits(c);
            c.webhooks.allowed_private_cidrs = vec!["127.0.0.0/8".parse().expect("a CIDR")];
            adjust(c);
        })
    }

    /// The webhook-delivery preset: deliveries go to the HTTPS receiver `rx` ([`deliver_to`]).
    pub fn delivering_to(rx: &Receiver) -> TestApp {
        Self::spawn_with(|c| deliver_to(c, rx))
    }

    /// [`TestApp::delivering_to`], with nobody delivering until [`TestApp::deliver_due`]: for
    /// tests that decide when each attempt happens, moving the clock in between.
    pub fn delivering_on_demand_to(rx: &Receiver) -> TestApp {
        let options = Options {
            deliveries: Deliveries::Manual,
            ..Options::default()
        };
        Self::spawn_with_options(options, |c| deliver_to(c, rx))
    }

    /// Starts a server on `config` whose data lives in `dir`.
    pub fn start(dir: Arc<tempfile::TempDir>, config: Config, options: Options) -> TestApp {
        // Internal errors are logged, not returned: show them when a test fails.
        leadbase::logging::init("error");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let running =
            leadbase::start(config.clone(), listener, options.clone()).expect("server starts");
        TestApp {
            client: Client::new(format!("http://{}", running.addr())),
            dir,
            config,
            options,
            running: Some(running),
        }
    }

    /// Stops gracefully, then starts again on the same data, configuration and options (its
    /// clock keeps the time it was moved to).
    pub fn restart(mut self) -> TestApp {
        if let Some(running) = self.running.take() {
            running.stop();
        }
        Self::start(
            Arc::clone(&self.dir),
            self.config.clone(),
            self.options.clone(),
        )
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("the server is running")
    }

    /// The time as the server sees it.
    pub fn now(&self) -> Timestamp {
        self.running().now()
    }

    /// Moves the server's clock forward: what a test of expiry or ordering does instead of
    /// sleeping.
    pub fn advance_clock(&self, ms: u32) {
        self.running().advance_clock(ms);
    }

    /// Attempts every delivery due now and records the outcomes before returning (servers from
    /// [`TestApp::delivering_on_demand_to`]).
    pub fn deliver_due(&self) -> Vec<Next> {
        self.running().deliver_due()
    }

    pub fn data_file(&self) -> PathBuf {
        self.config.storage.path.clone()
    }

    /// The same server, spoken to through `agent` (the benchmarks keep more connections).
    pub fn with_agent(mut self, agent: ureq::Agent) -> Self {
        self.client = self.client.clone().with_agent(agent);
        self
    }
}

impl Deref for TestApp {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
        }
    }
}
