//! The cost benchmark of issue 12 (spec §11): what recording every event costs writers, whether
//! a poller slows them, and how fast the event log reads with a million events stored.
//!
//! ```text
//! cargo bench --bench events                                    # this build only
//! LEADBASE_BASELINE_BIN=/tmp/base/target/release/leadbase \
//!     cargo bench --bench events                                # before and after, one run
//! BENCH_EVENTS=200000 cargo bench --bench events                # a smaller log (1,000,000)
//! BENCH_ROUNDS=5 cargo bench --bench events                     # rounds of each create row (3)
//! ```
//!
//! Servers are the release `leadbase` binary as child processes, each on a fresh data file with
//! rate limits out of reach. A baseline is a binary built from a commit before the event log
//! (`git worktree add /tmp/base f7c9ecd && cd /tmp/base && cargo build --release`).
//!
//! 1. **Create cost**: 20,000 single creates from 64 clients in a closed loop (after 2,000
//!    unmeasured), on the baseline and on this build, alternating server by server for
//!    `BENCH_ROUNDS` rounds so that drift on a shared machine falls on both alike. The figure is
//!    the median round's creates/s; the issue allows a drop under 15 %.
//! 2. **Poller cost**: the same creates on this build, alternately without and with a poller
//!    that follows `next_cursor` (`limit=50`) ten times a second; the issue allows under 5 %.
//!    The poller's page latency under that load is reported too.
//! 3. **Reading a large log**: `BENCH_EVENTS` events written by bulk imports with
//!    `emit_events` (nine new leads to one update of an earlier one, so `lead.updated` is a
//!    tenth of the log), one walk of the whole log by `next_cursor` (`limit=100`) collecting
//!    every cursor, then pages of 50 after 500 cursors drawn from the walk; with `types`
//!    (a tenth, and a type absent from the log, which reads to the scan budget) and with
//!    `lead_id`.
//! 4. **The same tenant exported** as JSON lines and as CSV (leads/s, and the server's RSS
//!    sampled while it streams), then 20,000 interactions from 64 clients on its leads.

// The webhooks benchmark's server, clock and create load; this one uses part of them.
#[allow(dead_code)]
#[path = "../webhooks/clock.rs"]
mod clock;
#[path = "../common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../webhooks/load.rs"]
mod load;
#[allow(dead_code)]
#[path = "../webhooks/server.rs"]
mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::Key;

use common::{ms, percentiles, thousands};
use load::Target;
use server::Server;

const CLIENTS: usize = 64;
const CREATES: u64 = 20_000;
const WARM_UP: u64 = 2_000;
const SAMPLES: usize = 500;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn sets() -> Vec<String> {
    let high = u32::MAX / 2;
    vec![
        format!("limits.per_minute={high}"),
        format!("limits.per_hour={high}"),
        format!("limits.bulk_per_minute={high}"),
    ]
}

/// A fresh server of `bin` with a tenant and a key.
fn fresh(bin: &str) -> (Server, Key) {
    let server = Server::start(bin, &sets());
    let key = server.client.tenant_with_key("Bench");
    (server, key)
}

/// Creates/s of [`CREATES`] creates from [`CLIENTS`] clients, after a warm-up.
fn creates_per_second(server: &Server, key: &Key) -> f64 {
    let target = Target::new(server.client.base(), key);
    load::count(&target, CLIENTS, WARM_UP);
    let report = load::count(&target, CLIENTS, CREATES);
    assert_eq!(report.errors, 0, "every create answered 201");
    report.ok as f64 / report.ended.duration_since(report.started).as_secs_f64()
}

/// `median of 5: [7059, 7259, ...]`: each round's figure, sorted.
fn rounds_note(values: &[f64]) -> String {
    let rounds: Vec<u64> = values.iter().map(|v| *v as u64).collect();
    format!("median of {}: {rounds:?}", rounds.len())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn get(agent: &ureq::Agent, base: &str, key: &Key, path: &str) -> (Duration, Value) {
    let started = Instant::now();
    let mut response = agent
        .get(format!("{base}{path}"))
        .header("authorization", format!("Bearer {}", key.token))
        .header("x-customer-id", &key.tenant)
        .call()
        .expect("a response");
    let body: Value =
        serde_json::from_str(&response.body_mut().read_to_string().expect("a body")).expect("JSON");
    let took = started.elapsed();
    assert_eq!(response.status(), 200, "{path}: {body}");
    (took, body)
}

fn post(agent: &ureq::Agent, base: &str, key: &Key, path: &str, body: &Value) -> Value {
    let mut response = agent
        .post(format!("{base}{path}"))
        .header("authorization", format!("Bearer {}", key.token))
        .header("x-customer-id", &key.tenant)
        .content_type("application/json")
        .send(body.to_string().as_bytes())
        .expect("a response");
    let out: Value =
        serde_json::from_str(&response.body_mut().read_to_string().expect("a body")).expect("JSON");
    assert_eq!(response.status(), 200, "{path}: {out}");
    out
}

/// Follows `next_cursor` ten times a second until `stop`; returns each page's latency.
fn poll(base: &str, key: &Key, stop: &AtomicBool) -> Vec<Duration> {
    let agent = common::agent();
    let mut cursor = None::<String>;
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let tick = Instant::now();
        let path = match &cursor {
            Some(c) => format!("/api/agents/crm/events?limit=50&after={c}"),
            None => "/api/agents/crm/events?limit=50".into(),
        };
        let (took, page) = get(&agent, base, key, &path);
        latencies.push(took);
        cursor = page["next_cursor"].as_str().map(String::from);
        if let Some(rest) = Duration::from_millis(100).checked_sub(tick.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    latencies
}

fn row(name: &str, figure: String, note: String) {
    println!("| {name:<44} | {figure:>22} | {note} |");
}

fn header() {
    println!("| {:<44} | {:>22} | note |", "scenario", "figure");
    println!("|{}|{}|------|", "-".repeat(46), "-".repeat(24));
}

fn create_cost(rounds: usize) {
    let current = server::binary();
    let baseline = std::env::var("LEADBASE_BASELINE_BIN").ok();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        if let Some(bin) = &baseline {
            let (server, key) = fresh(bin);
            before.push(creates_per_second(&server, &key));
        }
        let (server, key) = fresh(&current);
        after.push(creates_per_second(&server, &key));
    }
    let now = median(&mut after);
    row(
        "create c64, this build",
        format!("{} /s", thousands(now as u64)),
        rounds_note(&after),
    );
    match baseline {
        Some(_) => {
            let then = median(&mut before);
            row(
                "create c64, baseline",
                format!("{} /s", thousands(then as u64)),
                rounds_note(&before),
            );
            let drop = (then - now) / then * 100.0;
            let verdict = if drop < 15.0 { "held" } else { "MISSED" };
            row(
                "  drop from recording every event",
                format!("{drop:.1} %"),
                format!("target < 15 %: {verdict}"),
            );
        }
        None => row(
            "create c64, baseline",
            "-".into(),
            "set LEADBASE_BASELINE_BIN to compare".into(),
        ),
    }
}

fn poller_cost(rounds: usize) {
    let bin = server::binary();
    let (mut quiet, mut polled) = (Vec::new(), Vec::new());
    let mut pages = Vec::new();
    for _ in 0..rounds {
        let (server, key) = fresh(&bin);
        quiet.push(creates_per_second(&server, &key));
        let (server, key) = fresh(&bin);
        let stop = AtomicBool::new(false);
        let rate = std::thread::scope(|s| {
            let poller = s.spawn(|| poll(server.client.base(), &key, &stop));
            let rate = creates_per_second(&server, &key);
            stop.store(true, Ordering::Relaxed);
            pages.extend(poller.join().expect("the poller"));
            rate
        });
        polled.push(rate);
    }
    let (without, with) = (median(&mut quiet), median(&mut polled));
    row(
        "create c64, no poller",
        format!("{} /s", thousands(without as u64)),
        format!("median of {rounds}"),
    );
    row(
        "create c64, poller 10/s",
        format!("{} /s", thousands(with as u64)),
        format!("median of {rounds}"),
    );
    let drop = (without - with) / without * 100.0;
    let verdict = if drop < 5.0 { "held" } else { "MISSED" };
    row(
        "  drop from the poller",
        format!("{drop:.1} %"),
        format!("target < 5 %: {verdict}"),
    );
    let (p50, p99) = percentiles(&mut pages);
    row(
        "  poller page (50) under that load",
        format!("p50 {} / p99 {} ms", ms(p50), ms(p99)),
        format!("{} pages", pages.len()),
    );
}

/// Fills the log with `events` events by bulk imports with `emit_events`; returns the server,
/// its key and a sample of lead ids.
fn fill(events: usize) -> (Server, Key, Vec<String>) {
    let (server, key) = fresh(&server::binary());
    let base = server.client.base().to_string();
    let started = Instant::now();
    let requests = events.div_ceil(500);
    let per_client = requests.div_ceil(4);
    let ids: Vec<String> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|c| {
                let (base, key) = (&base, &key);
                s.spawn(move || {
                    let agent = common::agent();
                    let mut ids = Vec::new();
                    for r in 0..per_client {
                        let request = c * per_client + r;
                        if request >= requests {
                            break;
                        }
                        // Nine new leads to one update of a lead this client created in its
                        // last request (row i - 1 there was a creation: only rows
                        // 9, 19, ... update).
                        let rows: Vec<Value> = (0..500)
                            .map(|i| {
                                let n = request * 500 + i;
                                match (i % 10, r) {
                                    (9, 1..) => json!({
                                        "contact_email": format!("l{}@bench.example", n - 501),
                                        "contact_name": format!("Renamed {n}"),
                                    }),
                                    _ => json!({
                                        "contact_email": format!("l{n}@bench.example"),
                                        "contact_name": format!("Lead {n}"),
                                    }),
                                }
                            })
                            .collect();
                        let body = json!({ "leads": rows, "emit_events": true });
                        let out = post(&agent, base, key, "/api/agents/crm/leads/bulk", &body);
                        if r % 4 == 0 {
                            ids.extend(out["results"][0]["lead_id"].as_str().map(String::from));
                        }
                    }
                    ids
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("a bulk client"))
            .collect()
    });
    let took = started.elapsed().as_secs_f64();
    row(
        "bulk with emit_events (500 rows, 4 clients)",
        format!(
            "{} events/s",
            thousands(((requests * 500) as f64 / took) as u64)
        ),
        format!(
            "{} events in {took:.0} s",
            thousands((requests * 500) as u64)
        ),
    );
    (server, key, ids)
}

fn read_log(events: usize) {
    let (server, key, ids) = fill(events);
    let base = server.client.base().to_string();
    let agent = common::agent();
    row(
        "data file after the fill",
        format!("{} MiB", thousands(server.data_file_bytes() / 1_048_576)),
        String::new(),
    );

    // One walk of the whole log, keeping every cursor.
    let started = Instant::now();
    let mut cursors = Vec::new();
    let mut seen = 0usize;
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(c) => format!("/api/agents/crm/events?limit=100&after={c}"),
            None => "/api/agents/crm/events?limit=100".into(),
        };
        let (_, page) = get(&agent, &base, &key, &path);
        seen += page["events"].as_array().map_or(0, Vec::len);
        let next = page["next_cursor"].as_str().expect("a cursor").to_string();
        cursors.push(next.clone());
        after = Some(next);
        if page["has_more"] != true {
            break;
        }
    }
    let took = started.elapsed().as_secs_f64();
    row(
        "walk the whole log (pages of 100)",
        format!("{} events/s", thousands((seen as f64 / took) as u64)),
        format!(
            "{} events, {} pages, {took:.1} s",
            thousands(seen as u64),
            thousands(cursors.len() as u64)
        ),
    );
    assert!(seen >= events, "the walk saw every event: {seen}");

    let mut draw = Draw(0x9e37_79b9_7f4a_7c15);
    let mut sample = |name: &str, path: &dyn Fn(&mut Draw) -> String| {
        let mut latencies = Vec::with_capacity(SAMPLES);
        let mut found = 0;
        for _ in 0..SAMPLES {
            let p = path(&mut draw);
            let (took, page) = get(&agent, &base, &key, &p);
            latencies.push(took);
            found += page["events"].as_array().map_or(0, Vec::len);
        }
        let (p50, p99) = percentiles(&mut latencies);
        row(
            name,
            format!("p50 {} / p99 {} ms", ms(p50), ms(p99)),
            format!(
                "{SAMPLES} pages, {:.1} events a page",
                found as f64 / SAMPLES as f64
            ),
        );
    };
    let pick = |d: &mut Draw, n: usize| d.next() as usize % n;
    sample("page of 50 after a random cursor", &|d| {
        format!(
            "/api/agents/crm/events?limit=50&after={}",
            cursors[pick(d, cursors.len())]
        )
    });
    sample("page of 50, first (no after)", &|_| {
        "/api/agents/crm/events?limit=50".into()
    });
    sample("  types=lead.updated (a tenth)", &|d| {
        format!(
            "/api/agents/crm/events?limit=50&types=lead.updated&after={}",
            cursors[pick(d, cursors.len())]
        )
    });
    sample("  types=webhook.disabled (none: scan budget)", &|d| {
        format!(
            "/api/agents/crm/events?limit=50&types=webhook.disabled&after={}",
            cursors[pick(d, cursors.len())]
        )
    });
    sample("  lead_id=…", &|d| {
        format!(
            "/api/agents/crm/events?limit=50&lead_id={}",
            ids[pick(d, ids.len())]
        )
    });
    row(
        "server RSS after reading",
        format!("{:.0} MiB", server.rss_mib()),
        format!("peak {:.0} MiB", server.peak_rss_mib()),
    );
    export_rows(&server, &key);
    interaction_rows(&server, &key, &ids);
}

/// The whole tenant exported (issue 14): leads/s, and the server's RSS sampled every 50 ms
/// while it streams, against its RSS just before.
fn export_rows(server: &Server, key: &Key) {
    for format in ["jsonl", "csv"] {
        let before = server.rss_mib();
        let stop = AtomicBool::new(false);
        let (lines, took, peak) = std::thread::scope(|s| {
            let sampler = s.spawn(|| {
                let mut peak = 0f64;
                while !stop.load(Ordering::Relaxed) {
                    peak = peak.max(server.rss_mib());
                    std::thread::sleep(Duration::from_millis(50));
                }
                peak
            });
            let started = Instant::now();
            let mut response = common::agent()
                .get(format!(
                    "{}/api/agents/crm/leads/export?format={format}",
                    server.client.base()
                ))
                .header("authorization", format!("Bearer {}", key.token))
                .header("x-customer-id", &key.tenant)
                .call()
                .expect("an export");
            assert_eq!(response.status(), 200);
            let mut reader = response.body_mut().as_reader();
            let mut buf = vec![0u8; 1 << 16];
            let mut lines = 0usize;
            loop {
                let n = std::io::Read::read(&mut reader, &mut buf).expect("the export streams");
                if n == 0 {
                    break;
                }
                lines += buf[..n].iter().filter(|b| **b == b'\n').count();
            }
            let took = started.elapsed().as_secs_f64();
            stop.store(true, Ordering::Relaxed);
            (lines, took, sampler.join().expect("the sampler"))
        });
        let leads = if format == "csv" { lines - 1 } else { lines };
        row(
            &format!("export {format}, whole tenant"),
            format!("{} leads/s", thousands((leads as f64 / took) as u64)),
            format!(
                "{} leads in {took:.1} s; RSS {before:.0} MiB before, peak {peak:.0} MiB while streaming",
                thousands(leads as u64)
            ),
        );
    }
}

/// Interactions from 64 clients on the leads the fill made (issue 14): interactions/s.
fn interaction_rows(server: &Server, key: &Key, ids: &[String]) {
    const TOTAL: usize = 20_000;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let base = server.client.base().to_string();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (next, base) = (&next, &base);
                s.spawn(move || {
                    let agent = common::agent();
                    let mut took = Vec::new();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= TOTAL {
                            return took;
                        }
                        let lead = &ids[n % ids.len()];
                        let body = format!(
                            r#"{{"type":"call","summary":"call {n}","duration_seconds":60}}"#
                        );
                        let at = Instant::now();
                        let mut response = agent
                            .post(format!("{base}/api/agents/crm/leads/{lead}/interactions"))
                            .header("authorization", format!("Bearer {}", key.token))
                            .header("x-customer-id", &key.tenant)
                            .content_type("application/json")
                            .send(body.as_bytes())
                            .expect("a response");
                        let _ = response.body_mut().read_to_vec();
                        assert_eq!(response.status(), 201);
                        took.push(at.elapsed());
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("a client"))
            .collect()
    });
    let secs = started.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(&mut latencies);
    row(
        "interactions, 64 clients",
        format!("{} /s", thousands((TOTAL as f64 / secs) as u64)),
        format!(
            "{} on {} leads; p50 {} / p99 {} ms",
            thousands(TOTAL as u64),
            ids.len(),
            ms(p50),
            ms(p99)
        ),
    );
}

/// xorshift64: a seeded stream of choices, the same every run.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main() {
    clock::init();
    let rounds = env_number("BENCH_ROUNDS", 3);
    let events = env_number("BENCH_EVENTS", 1_000_000);
    println!(
        "leadbase events benchmark: {} clients, {} creates a round",
        CLIENTS,
        thousands(CREATES)
    );
    println!("binary: {}", server::binary());
    println!();
    header();
    create_cost(rounds);
    poller_cost(rounds);
    read_log(events);
}
