//! Prints deliveries/s to a local HTTPS receiver with 1, 10 and 100 webhooks, and
//! create-to-receipt latency p50/p99 at a steady 200 leads/s.
//!
//! `cargo bench --bench webhooks` (server, clients and receiver share the machine).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::receiver::Receiver;
use testkit::{Key, TestApp, trust_receiver};

/// Deliveries per throughput scenario.
const DELIVERIES: usize = 6_000;
const STEADY_RATE: u64 = 200;
const STEADY_SECONDS: u64 = 10;

/// The server is declared first so that it stops before the receiver goes.
struct Scenario {
    app: TestApp,
    receiver: Receiver,
    key: Key,
}

/// The receiver path of webhook `i`.
fn hook(i: usize) -> String {
    format!("/hook{i}")
}

impl Scenario {
    fn start(webhooks: usize) -> Scenario {
        let receiver = Receiver::start();
        let app = common::start(|c| {
            trust_receiver(c, &receiver);
            c.webhooks.max_per_tenant = webhooks as u32;
        });
        let key = app.tenant_with_key("Bench");
        for i in 0..webhooks {
            app.post_webhook(&key, &json!({ "url": receiver.url(&hook(i)) }))
                .expect(201);
        }
        Scenario { app, receiver, key }
    }

    fn create(&self, i: usize) -> String {
        let body = json!({ "contact_name": format!("Lead {i}"), "contact_email": format!("l{i}@bench.example") });
        let lead = self.app.create_lead(&self.key, body);
        lead["id"].as_str().expect("id").to_string()
    }
}

fn throughput(webhooks: usize) {
    let scenario = Scenario::start(webhooks);
    let leads = DELIVERIES / webhooks;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for part in 0..4 {
            let scenario = &scenario;
            scope.spawn(move || {
                for i in (part..leads).step_by(4) {
                    scenario.create(i);
                }
            });
        }
    });
    let created = started.elapsed();
    let total = leads * webhooks;
    // Every delivery arrives (or the wait panics): each webhook's, within one deadline.
    let deadline = Instant::now() + Duration::from_secs(300);
    for i in 0..webhooks {
        let left = deadline.saturating_duration_since(Instant::now());
        scenario.receiver.wait_for(&hook(i), leads, left);
    }
    let elapsed = started.elapsed();
    println!(
        "{webhooks:>3} webhooks: {total} deliveries in {:.2} s = {:.0} deliveries/s (leads created in {:.2} s)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        created.as_secs_f64()
    );
}

fn steady_latency() {
    let scenario = Scenario::start(1);
    let interval = Duration::from_micros(1_000_000 / STEADY_RATE);
    let count = (STEADY_RATE * STEADY_SECONDS) as usize;
    let mut sent: HashMap<String, Instant> = HashMap::with_capacity(count);
    let start = Instant::now();
    for i in 0..count {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let at = Instant::now();
        sent.insert(scenario.create(i), at);
    }
    let mut latencies: Vec<Duration> = scenario
        .receiver
        .wait_for(&hook(0), count, Duration::from_secs(60))
        .iter()
        .filter_map(|r| {
            let id = r.json()["lead"]["id"].as_str()?.to_string();
            Some(r.at.duration_since(*sent.get(&id)?))
        })
        .collect();
    assert_eq!(latencies.len(), count);
    let (p50, p99) = common::percentiles(&mut latencies);
    println!(
        "steady {STEADY_RATE} leads/s for {STEADY_SECONDS} s, 1 webhook: create-to-receipt p50 {p50:.1} ms, p99 {p99:.1} ms (achieved {:.0} leads/s)",
        count as f64 / start.elapsed().as_secs_f64()
    );
}

fn main() {
    let defaults = leadbase::config::WebhooksConfig::default();
    println!(
        "leadbase webhooks benchmark: {} CPUs, default delivery settings ({} threads, {} in flight per webhook, {} per tenant)",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        defaults.delivery_threads,
        defaults.max_in_flight_per_webhook,
        defaults.max_in_flight_per_tenant,
    );
    for webhooks in [1, 10, 100] {
        throughput(webhooks);
    }
    steady_latency();
}
