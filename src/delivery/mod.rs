//! The delivery engine: one dispatcher thread claims due deliveries from the outbox, worker
//! threads send them and write the outcome back through the store's writer.
//!
//! The dispatcher claims only as many deliveries as there are idle workers, and never more than
//! `max_in_flight_per_webhook` for one webhook, so one slow receiver holds at most that many
//! workers. A commit that queues deliveries wakes the dispatcher at once; otherwise it sleeps
//! until the next delivery is due (checking at least every second).

pub mod client;
pub mod schedule;
pub mod signing;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::ids::WebhookId;
use crate::domain::time::Timestamp;
use crate::store::deliveries::{Claimed, RetryPolicy};
use crate::store::{Store, Wakeup};
use client::Client;
use schedule::{AttemptResult, random_jitter};
use signing::{mega_signature, standard_signature};

/// The longest the dispatcher sleeps without looking at the queue.
const MAX_IDLE: Duration = Duration::from_secs(1);

pub struct EngineConfig {
    pub threads: usize,
    pub max_in_flight_per_webhook: u32,
    pub retry: Arc<RetryPolicy>,
}

struct Shared {
    store: Store,
    client: Client,
    config: EngineConfig,
    wakeup: Arc<Wakeup>,
    stopping: AtomicBool,
    queue: Mutex<VecDeque<Claimed>>,
    work: Condvar,
    /// Claimed deliveries per webhook, queued or being sent: their sum is the busy workers.
    in_flight: Mutex<HashMap<WebhookId, u32>>,
}

pub struct Engine {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// The request body of a delivery: rebuilt for every attempt with a fresh `delivered_at`. The
/// lead snapshot is stored as JSON and goes in as it is.
pub fn payload(claimed: &Claimed, now: Timestamp) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        event: &'a str,
        delivered_at: String,
        lead: &'a RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        changed_fields: Option<&'a [String]>,
    }
    let event = &claimed.event;
    let body = Body {
        event: event.event_type.as_str(),
        delivered_at: now.to_iso(),
        lead: serde_json::from_str(&event.lead_json).unwrap_or(RawValue::NULL),
        changed_fields: event.changed_fields.as_deref(),
    };
    serde_json::to_vec(&body).expect("a delivery body serializes")
}

/// The headers of one attempt (spec §6), signed with every live secret.
pub fn headers(claimed: &Claimed, body: &[u8], now: Timestamp) -> Vec<(&'static str, String)> {
    let ts = now.seconds();
    let id = claimed.delivery.id.to_string();
    let secrets = claimed.webhook.live_secrets(now);
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-mega-signature", mega_signature(secrets[0], ts, body)),
        ("x-mega-timestamp", ts.to_string()),
        ("x-mega-delivery", id.clone()),
        (
            "x-mega-event",
            claimed.event.event_type.as_str().to_string(),
        ),
    ];
    if let Some(previous) = secrets.get(1) {
        headers.push((
            "x-mega-signature-previous",
            mega_signature(previous, ts, body),
        ));
    }
    let standard: Vec<String> = secrets
        .iter()
        .map(|s| standard_signature(s.as_bytes(), &id, ts, body))
        .collect();
    headers.push(("webhook-id", id));
    headers.push(("webhook-timestamp", ts.to_string()));
    headers.push(("webhook-signature", standard.join(" ")));
    headers
}

/// One attempt: sign, send, report. No retries here; the caller records the result.
pub fn deliver_one(client: &Client, claimed: &Claimed, now: Timestamp) -> AttemptResult {
    let body = payload(claimed, now);
    let headers = headers(claimed, &body, now);
    client.post(
        &claimed.webhook.url,
        &headers,
        &body,
        claimed.webhook.timeout_seconds,
    )
}

impl Engine {
    pub fn start(store: Store, client: Client, config: EngineConfig) -> Engine {
        match store.requeue_in_flight() {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deliveries = n,
                "requeued deliveries that were in flight when the last run ended"
            ),
            Err(e) => tracing::error!(error = %e, "cannot requeue in-flight deliveries"),
        }
        let threads = config.threads;
        let shared = Arc::new(Shared {
            wakeup: store.delivery_wakeup(),
            store,
            client,
            config,
            stopping: AtomicBool::new(false),
            queue: Mutex::new(VecDeque::new()),
            work: Condvar::new(),
            in_flight: Mutex::new(HashMap::new()),
        });
        let mut handles = Vec::with_capacity(threads + 1);
        let dispatcher = Arc::clone(&shared);
        handles.push(spawn("leadbase-dispatch", move || {
            dispatch_loop(&dispatcher)
        }));
        for i in 0..threads {
            let worker = Arc::clone(&shared);
            handles.push(spawn(&format!("leadbase-deliver-{i}"), move || {
                work_loop(&worker)
            }));
        }
        Engine {
            shared,
            threads: handles,
        }
    }

    /// Stops claiming, lets attempts in progress finish (each within its timeout), and joins.
    /// Claimed deliveries not yet started stay claimed and are requeued at the next start.
    pub fn stop(self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wakeup.notify();
        {
            let _queue = self.shared.queue.lock();
            self.shared.work.notify_all();
        }
        for handle in self.threads {
            let _ = handle.join();
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("cannot spawn a delivery thread")
}

fn dispatch_loop(shared: &Shared) {
    while !shared.stopping.load(Ordering::SeqCst) {
        let seen = shared.wakeup.generation();
        let in_flight = shared.in_flight.lock().clone();
        let busy: u32 = in_flight.values().sum();
        let idle = shared.config.threads.saturating_sub(busy as usize);
        if idle == 0 {
            // Nothing can be claimed; a worker finishing wakes us.
            shared.wakeup.wait(seen, MAX_IDLE);
            continue;
        }
        let claimed =
            match shared
                .store
                .claim_due(idle, in_flight, shared.config.max_in_flight_per_webhook)
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim due deliveries");
                    Vec::new()
                }
            };
        let claimed_all = claimed.len() == idle;
        if !claimed.is_empty() {
            // Only this thread adds to the counts and workers only subtract, so the snapshot
            // the claim filtered with was never below the truth.
            let mut counts = shared.in_flight.lock();
            for c in &claimed {
                *counts.entry(c.webhook.id).or_default() += 1;
            }
            drop(counts);
            shared.queue.lock().extend(claimed);
            shared.work.notify_all();
        }
        if claimed_all {
            // There may be more due right now; workers wake us when they free up.
            shared.wakeup.wait(seen, MAX_IDLE);
            continue;
        }
        // Something already due but not claimed belongs to a webhook at its in-flight limit:
        // a worker finishing wakes us, so there is no point in looking again before then.
        let now = Timestamp::now();
        let wait = match shared.store.next_due() {
            Ok(Some(at)) if at > now => Duration::from_millis(
                (at.ms() - now.ms()).clamp(1, MAX_IDLE.as_millis() as i64) as u64,
            ),
            _ => MAX_IDLE,
        };
        shared.wakeup.wait(seen, wait);
    }
}

fn work_loop(shared: &Shared) {
    loop {
        let claimed = {
            let mut queue = shared.queue.lock();
            loop {
                if shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(job) = queue.pop_front() {
                    break job;
                }
                shared.work.wait(&mut queue);
            }
        };
        let result = deliver_one(&shared.client, &claimed, Timestamp::now());
        let (status, error, latency_ms) = (result.response_status, result.error, result.latency_ms);
        let outcome = shared.store.record_attempt(
            claimed.delivery.id,
            result,
            Arc::clone(&shared.config.retry),
            random_jitter(),
        );
        match outcome {
            Ok(next) => tracing::info!(
                delivery = %claimed.delivery.id,
                webhook = %claimed.webhook.id,
                event = claimed.event.event_type.as_str(),
                status = ?status,
                error = ?error,
                latency_ms,
                next = ?next,
                "delivery attempt"
            ),
            Err(e) => {
                tracing::error!(delivery = %claimed.delivery.id, error = %e, "cannot record a delivery attempt")
            }
        }
        {
            let mut in_flight = shared.in_flight.lock();
            if let Some(count) = in_flight.get_mut(&claimed.webhook.id) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    in_flight.remove(&claimed.webhook.id);
                }
            }
        }
        shared.wakeup.notify();
    }
}
