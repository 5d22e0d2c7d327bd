//! Loads leads into one tenant and prints: bulk import rate, single-create rate at 64
//! concurrent clients, and list latency p50/p99 for a first page, a deep cursor page and a
//! `search` query.
//!
//! `cargo bench --bench leads` (BENCH_LEADS=1000000 by default; the server and the clients share
//! the machine).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BULK_ROWS: usize = 500;
const BULK_CLIENTS: usize = 4;
const CREATE_CLIENTS: usize = 64;
const CREATES: usize = 20_000;
const LIST_SAMPLES: usize = 200;
const SEARCH_SAMPLES: usize = 20;
const FIRST_NAMES: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];

fn row(i: usize) -> Value {
    json!({
        "row_ref": i.to_string(),
        "contact_name": format!("{} Lead{i}", FIRST_NAMES[i % FIRST_NAMES.len()]),
        "contact_email": format!("lead{i}@bench.example"),
        "contact_phone": format!("+1{}", 2_000_000_000u64 + i as u64),
        "source_platform": "google_ads",
        "custom_fields": { "lead_line": if i.is_multiple_of(2) { "buyer" } else { "seller" } },
    })
}

fn main() {
    let total: usize = std::env::var("BENCH_LEADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let app = common::start(|_| {});
    let key = app.tenant_with_key("Bench");
    println!(
        "leadbase leads benchmark: {total} leads into one tenant, {} CPUs",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // Bulk import, 500 rows a request, from a few clients.
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..BULK_CLIENTS {
            let next = Arc::clone(&next);
            let (app, key) = (&app, &key);
            scope.spawn(move || {
                loop {
                    let from = next.fetch_add(BULK_ROWS, Ordering::Relaxed);
                    if from >= total {
                        break;
                    }
                    let rows: Vec<Value> = (from..(from + BULK_ROWS).min(total)).map(row).collect();
                    let body = app.bulk(key, &json!({ "leads": rows })).expect(200);
                    assert_eq!(body["summary"]["failed"], 0, "{body}");
                }
            });
        }
    });
    let bulk = started.elapsed();
    println!(
        "bulk import: {total} leads in {:.1} s = {:.0} leads/s ({} rows/request, {BULK_CLIENTS} clients)",
        bulk.as_secs_f64(),
        total as f64 / bulk.as_secs_f64(),
        BULK_ROWS
    );

    // Single creates from 64 concurrent clients.
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CREATE_CLIENTS)
            .map(|_| {
                let next = Arc::clone(&next);
                let (app, key) = (&app, &key);
                scope.spawn(move || {
                    let mut samples = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= CREATES {
                            break samples;
                        }
                        let body = json!({ "contact_name": format!("Single {i}"), "contact_email": format!("single{i}@bench.example") });
                        let t = Instant::now();
                        let res = app.post_lead(key, &body);
                        samples.push(t.elapsed());
                        res.expect(201);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect()
    });
    let elapsed = started.elapsed();
    let (p50, p99) = common::percentiles(&mut latencies);
    println!(
        "single create: {CREATES} in {:.1} s = {:.0} creates/s at {CREATE_CLIENTS} clients (latency p50 {p50:.1} ms, p99 {p99:.1} ms)",
        elapsed.as_secs_f64(),
        CREATES as f64 / elapsed.as_secs_f64()
    );

    let measure = |query: &str, samples: usize| {
        let mut times = Vec::with_capacity(samples);
        for _ in 0..samples {
            let t = Instant::now();
            let res = app.list_leads(&key, query);
            times.push(t.elapsed());
            res.expect(200);
        }
        common::percentiles(&mut times)
    };
    let (p50, p99) = measure("?limit=20", LIST_SAMPLES);
    println!("list, first page (limit 20): p50 {p50:.2} ms, p99 {p99:.2} ms");

    // A cursor 90 % of the way through the tenant, found once with an offset.
    let anchor = format!("?limit=1&offset={}", total * 9 / 10);
    let page = app.list_leads(&key, &anchor).expect(200);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a deep cursor")
        .to_string();
    let (p50, p99) = measure(&format!("?limit=20&cursor={cursor}"), LIST_SAMPLES);
    println!("list, deep cursor page (90 % in, limit 20): p50 {p50:.2} ms, p99 {p99:.2} ms");

    let (p50, p99) = measure("?limit=20&search=lead12345", SEARCH_SAMPLES);
    println!(
        "list, search (full scan of {} leads): p50 {p50:.0} ms, p99 {p99:.0} ms",
        total + CREATES
    );
    let (p50, p99) = measure("?limit=20&lead_line=buyer", SEARCH_SAMPLES);
    println!("list, lead_line filter with total: p50 {p50:.0} ms, p99 {p99:.0} ms");

    println!(
        "data file: {:.0} MiB; process RSS (server + clients): {:.0} MiB",
        std::fs::metadata(app.data_file()).map_or(0, |m| m.len()) as f64 / 1048576.0,
        common::rss_mib()
    );
}
