//! Issue 10's isolation scenario: tenant A has two webhooks pointing at a [`Tarpit`] (accepts,
//! reads, never answers; `timeout_seconds: 20`, `retry_attempts: 0`) and a backlog of 10,000 due
//! deliveries to them; tenant B's one webhook to the plain sink gets an open loop of 100
//! creates/s for 10 s, and only tenant B is measured.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::load::{self, Load, Target};
use crate::scenario::{self, Measure};
use crate::server::Server;
use crate::sink::{Sink, SinkKind, Tarpit};
use crate::table::{Row, thousands};

/// The row's name, which `LEADBASE_BENCH_ONLY` matches.
pub const NAME: &str = "isolation/tarpits+backlog";
/// Tenant A's webhooks, all at the tarpit.
pub const TARPITS: usize = 2;
/// Tenant A's leads: each fans out to every tarpit webhook, so 5,000 leads queue 10,000
/// deliveries.
pub const BACKLOG_LEADS: u64 = 5_000;
/// The tarpit webhooks' `timeout_seconds`.
pub const TARPIT_TIMEOUT_S: u64 = 20;
/// Tenant B's open loop.
pub const HEALTHY: Load = Load::Open {
    rate: 100,
    seconds: 10,
};
/// After tenant B's load, wait at most this long for the rest of its deliveries (the whole
/// scenario stays within about a minute even when they are held up).
pub const DRAIN_CAP: Duration = Duration::from_secs(30);
/// Clients queueing tenant A's backlog.
const BACKLOG_CLIENTS: usize = 16;
/// How long to wait for every tarpit's first attempt before measuring anyway.
const FIRST_ATTEMPT_CAP: Duration = Duration::from_secs(15);

/// Runs it against `bin`, with `extra` `--set` flags after the benchmark's own.
pub fn run(bin: &str, extra: &[String]) -> Row {
    let tarpit = Tarpit::start(TARPITS);
    let sink = Sink::start(SinkKind::Plain);
    let server = Server::start(bin, &scenario::sets_for(&sink, extra));
    let client = &server.client;

    let slow = client.tenant_with_key("Tarpits");
    client.add_custom_field(&slow.tenant, "t", "number");
    for hook in 0..TARPITS {
        client
            .post_webhook(
                &slow,
                &json!({
                    "url": tarpit.url(hook),
                    "timeout_seconds": TARPIT_TIMEOUT_S,
                    "retry_attempts": 0,
                }),
            )
            .expect(201);
    }
    let healthy = client.tenant_with_key("Healthy");
    client.add_custom_field(&healthy.tenant, "t", "number");
    client
        .post_webhook(&healthy, &json!({ "url": sink.url(0) }))
        .expect(201);
    let rss_idle = server.rss_mib();

    // Tenant A's backlog, then its first attempts at each tarpit.
    let backlog = load::count(
        &Target::new(client.base(), &slow),
        BACKLOG_CLIENTS,
        BACKLOG_LEADS,
    );
    assert_eq!(
        (backlog.ok, backlog.errors),
        (BACKLOG_LEADS, 0),
        "tenant A's backlog: creates answered 201 and otherwise"
    );
    let queued_s = backlog.ended.duration_since(backlog.started).as_secs_f64();
    let waiting = Instant::now();
    while tarpit.requests().contains(&0) && waiting.elapsed() < FIRST_ATTEMPT_CAP {
        std::thread::sleep(Duration::from_millis(10));
    }
    let first_attempts = if tarpit.requests().contains(&0) {
        format!(
            "not every tarpit had its first attempt within {} s (requests {:?}); measured anyway",
            FIRST_ATTEMPT_CAP.as_secs(),
            tarpit.requests()
        )
    } else {
        format!(
            "each tarpit had its first attempt {:.2} s after the last create was answered",
            waiting.elapsed().as_secs_f64()
        )
    };

    let target = Target::new(client.base(), &healthy);
    let mut row = scenario::measure(Measure {
        name: NAME.into(),
        server,
        sink,
        target: &target,
        load: HEALTHY,
        webhooks: 1,
        drain_cap: DRAIN_CAP,
        rss_idle,
    });
    // The server is stopped by now; only then the tarpit.
    let requests: u64 = tarpit.requests().iter().sum();
    let connections = tarpit.connections();
    drop(tarpit);

    let setup = format!(
        "tenant A queued {} deliveries ({} leads x {TARPITS} tarpit webhooks, timeout {TARPIT_TIMEOUT_S} s, no retries) in {queued_s:.1} s; {first_attempts}; the tarpits took {} attempt(s) over {} connection(s) in all; the figures are tenant B's",
        thousands(BACKLOG_LEADS * TARPITS as u64),
        thousands(BACKLOG_LEADS),
        thousands(requests),
        thousands(connections),
    );
    row.note = Some(match row.note.take() {
        Some(n) => format!("{setup}; {n}"),
        None => setup,
    });
    row
}
