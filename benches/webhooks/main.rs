//! The webhook delivery benchmark of issue 10: one table, one row per scenario.
//!
//! ```text
//! cargo bench --bench webhooks
//! LEADBASE_BENCH_ONLY=plain/1wh/ cargo bench --bench webhooks     # rows whose name contains it
//! LEADBASE_BENCH_ONLY=isolation cargo bench --bench webhooks       # the isolation row alone
//! LEADBASE_BENCH_SET="webhooks.delivery_threads=32 storage.cache_mb=32" cargo bench --bench webhooks
//! LEADBASE_BIN=/path/to/old/leadbase cargo bench --bench webhooks  # another build, same bench
//! LEADBASE_BENCH_FULL=1 cargo bench --bench webhooks              # every load for every sink
//! ```
//!
//! Each scenario starts the release `leadbase` binary as a child process (`serve --listen
//! 127.0.0.1:0`, a fresh temporary data file, `RUST_LOG=warn`) with its default settings except
//! for an admin token, rate limits out of reach, `webhooks.max_per_tenant=1000`, loopback
//! receivers allowed, and either `webhooks.https_only=false` (plain sink) or the test receiver's
//! CA in `webhooks.extra_ca_file` (HTTPS); `LEADBASE_BENCH_SET="k=v k=v"` adds `--set` flags.
//! Through the admin API it makes a tenant with a key and a number custom field `t`, and 1 or
//! 10 webhooks (every lead goes to all of them) pointing at the scenario's sink: a minimal
//! plain-HTTP sink answering `204` ([`sink::PlainSink`]) or the test kit's HTTPS receiver.
//!
//! Then the load: `POST /api/agents/crm/leads` with `custom_fields.t` = microseconds since the
//! UNIX epoch when the request leaves, from a closed loop of 64 clients for 15 s or an open loop
//! at 500, 1,000, 2,000 or 4,000 creates/s for 10 s; after it, the benchmark waits for the rest
//! of the deliveries (at most 120 s). The sink takes each delivery's receipt time minus its `t`
//! as its create-to-receipt (e2e) latency.
//!
//! One more row, `isolation/tarpits+backlog`, is the issue's isolation target, on a server set
//! up the same way with the plain sink. Tenant A has two webhooks (`timeout_seconds: 20`,
//! `retry_attempts: 0`) pointing at a tarpit on the benchmark's side ([`sink::Tarpit`]: accepts
//! connections and reads, never answers, holds the sockets open), and 5,000 leads created by 16
//! clients queue 10,000 due deliveries to them; once each tarpit has its first attempt, tenant B,
//! with one webhook to the plain sink, gets an open loop of 100 creates/s for 10 s, and its
//! drain is capped at 30 s. The row's figures are tenant B's alone, except the server's CPU
//! (everything it did during tenant B's load and drain, per tenant-B delivery) and its RSS (idle:
//! after both tenants' setup, before the backlog; peak: at the end). Its note says how the
//! backlog went. It takes 15-50 s and runs by default.
//!
//! Columns: `creates/s` answered 201 per second of the load window (first send to last answer),
//! `err` other answers, `late` open-loop sends that left > 5 ms after their slot, the API
//! latency, deliveries per second received inside the load window and after it (to the last
//! receipt; `drain s` is that time, `120+` when it stopped at the cap with deliveries missing),
//! e2e p50/p99/max over the deliveries that arrived, `delivered` (different deliveries received
//! vs creates x webhooks) and `dup` (repeat receipts, which at-least-once allows), the server's
//! user+system CPU (`/proc/PID/stat`) over load and drain per delivered message, its `VmRSS`
//! after setup (idle) and `VmHWM` at the end (peak). The last lines say whether each of the
//! issue's targets held for the plain-sink, one-webhook rows and the isolation row (tenant B's
//! e2e p99, everything delivered); missing one is no failure (only a setup error panics).
//!
//! The full matrix ({plain, https} x {1, 10 webhooks} x 5 loads) takes well over 12 minutes on
//! an engine that falls behind, so by default only plain/1 webhook runs every load and the other
//! three combinations run closed c64 and open 1,000/s; `LEADBASE_BENCH_FULL=1` runs them all.

mod clock;
#[path = "../common/mod.rs"]
mod common;
mod isolation;
mod load;
mod scenario;
mod server;
mod sink;
mod table;
mod tally;

use std::time::Instant;

use leadbase::config::{Config, WebhooksConfig};

use crate::load::Load;
use crate::scenario::{DRAIN_CAP, Scenario};
use crate::sink::SinkKind;
use crate::table::Row;

const CLOSED: Load = Load::Closed {
    clients: 64,
    seconds: 15,
};
const OPEN_RATES: [u64; 4] = [500, 1_000, 2_000, 4_000];
const OPEN_SECONDS: u64 = 10;
/// The open-loop rate the reduced set keeps.
const REDUCED_RATE: u64 = 1_000;

/// One row of the table.
enum Bench {
    /// A sink x webhooks x load scenario.
    Matrix(Scenario),
    /// The isolation scenario (see [`isolation`]).
    Isolation,
}

impl Bench {
    fn name(&self) -> String {
        match self {
            Bench::Matrix(scenario) => scenario.name(),
            Bench::Isolation => isolation::NAME.into(),
        }
    }

    fn run(&self, bin: &str, extra: &[String]) -> Row {
        match self {
            Bench::Matrix(scenario) => scenario.run(bin, extra),
            Bench::Isolation => isolation::run(bin, extra),
        }
    }
}

/// The matrix's rows, then the isolation row.
fn benches(full: bool) -> Vec<Bench> {
    let mut all: Vec<Bench> = scenarios(full).into_iter().map(Bench::Matrix).collect();
    all.push(Bench::Isolation);
    all
}

fn scenarios(full: bool) -> Vec<Scenario> {
    let mut all = Vec::new();
    for sink in [SinkKind::Plain, SinkKind::Https] {
        for webhooks in [1, 10] {
            let every_load = full || (sink == SinkKind::Plain && webhooks == 1);
            let mut loads = vec![CLOSED];
            for rate in OPEN_RATES {
                if every_load || rate == REDUCED_RATE {
                    loads.push(Load::Open {
                        rate,
                        seconds: OPEN_SECONDS,
                    });
                }
            }
            all.extend(loads.into_iter().map(|load| Scenario {
                sink,
                webhooks,
                load,
            }));
        }
    }
    all
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn main() {
    clock::init();
    let bin = server::binary();
    let extra: Vec<String> = env("LEADBASE_BENCH_SET")
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let only = env("LEADBASE_BENCH_ONLY");
    let full = env("LEADBASE_BENCH_FULL").is_some_and(|v| v != "0");
    let chosen: Vec<Bench> = benches(full)
        .into_iter()
        .filter(|s| only.as_ref().is_none_or(|o| s.name().contains(o.as_str())))
        .collect();

    let defaults = WebhooksConfig::default();
    let config = Config::default();
    println!(
        "leadbase webhooks benchmark: {} CPUs; server {bin} (a child process, one per scenario)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "defaults (this build's config): {} delivery threads, {} in flight per webhook, {} per tenant, storage.cache_mb {}, server.workers {} (0 = one per CPU)",
        defaults.delivery_threads,
        defaults.max_in_flight_per_webhook,
        defaults.max_in_flight_per_tenant,
        config.storage.cache_mb,
        config.server.workers,
    );
    println!(
        "--set beyond the defaults: admin.token, {}, https_only=false (plain) or extra_ca_file (https){}",
        scenario::common_sets().join(", "),
        if extra.is_empty() {
            String::new()
        } else {
            format!("; LEADBASE_BENCH_SET: {}", extra.join(" "))
        }
    );
    println!(
        "scenarios: {}; then {}{}; closed = 64 clients for 15 s, open = fixed rate for {OPEN_SECONDS} s (up to 256 threads); drain capped at {} s ({} s for isolation)",
        if full {
            "the full matrix {plain, https} x {1, 10 webhooks} x {closed c64, open 500/1,000/2,000/4,000}".to_string()
        } else {
            "plain/1 webhook: closed c64 + open 500/1,000/2,000/4,000; plain/10, https/1, https/10: closed c64 + open 1,000 only (reduced: the full matrix takes too long; LEADBASE_BENCH_FULL=1 runs it)".to_string()
        },
        format_args!(
            "{}: tenant A with {} tarpit webhooks (timeout {} s, no retries) and {} due deliveries to them, tenant B with 1 webhook to the plain sink at open 100/s for 10 s, measured alone",
            isolation::NAME,
            isolation::TARPITS,
            isolation::TARPIT_TIMEOUT_S,
            common::thousands(isolation::BACKLOG_LEADS * isolation::TARPITS as u64),
        ),
        only.as_ref()
            .map(|o| format!(" (LEADBASE_BENCH_ONLY={o}: {} of them)", chosen.len()))
            .unwrap_or_default(),
        DRAIN_CAP.as_secs(),
        isolation::DRAIN_CAP.as_secs(),
    );
    println!();

    let started = Instant::now();
    let mut rows = Vec::new();
    for (i, scenario) in chosen.iter().enumerate() {
        let t = Instant::now();
        eprint!("[{}/{}] {} ... ", i + 1, chosen.len(), scenario.name());
        let row = scenario.run(&bin, &extra);
        eprintln!(
            "{:.0} s ({} creates/s, {} deliveries/s during the load)",
            t.elapsed().as_secs_f64(),
            common::thousands(row.creates_per_s.round() as u64),
            common::thousands(row.during_per_s.round() as u64),
        );
        rows.push(row);
    }
    table::print(&rows);
    println!("(run took {:.0} s)", started.elapsed().as_secs_f64());
    println!();
    table::print_targets(&rows, extra.is_empty());
}
