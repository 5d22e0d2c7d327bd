//! The delivery engine: one dispatcher thread leases due deliveries from the outbox, worker
//! threads send them and queue the outcome to the store's writer without waiting for it.
//!
//! The dispatcher leases only as many deliveries as there are idle workers, never more than
//! `max_in_flight_per_webhook` for one webhook nor `max_in_flight_per_tenant` for one tenant's
//! webhooks together, so one slow receiver holds at most that many workers and one tenant at
//! most its share. An attempt keeps its place until its record has committed. A commit that
//! queues deliveries wakes the dispatcher at once; otherwise it sleeps until the next delivery
//! is due (checking at least every second).

pub mod client;
pub mod signing;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::event::EventType;
use crate::domain::ids::{DeliveryId, TenantId, WebhookId};
use crate::domain::retry::{AttemptError, AttemptResult, Next, RetryPolicy};
use crate::domain::time::Timestamp;
use crate::store::dispatch::{InFlight, Leased, Limits};
use crate::store::{Store, StoreError, Wakeup};
use client::Client;
use signing::{mega_signature, standard_signature};

/// The longest the dispatcher sleeps without looking at the queue.
const MAX_IDLE: Duration = Duration::from_secs(1);

pub struct EngineConfig {
    pub threads: usize,
    pub limits: Limits,
    pub retry: Arc<RetryPolicy>,
}

/// Delivery threads spend their lives waiting on receivers; a TLS handshake and a small body
/// need far less than the default 2 MiB, so many threads cost little.
const STACK_BYTES: usize = 512 * 1024;

struct Shared {
    store: Store,
    client: Arc<Client>,
    config: Arc<EngineConfig>,
    wakeup: Arc<Wakeup>,
    stopping: AtomicBool,
    queue: Mutex<VecDeque<Leased>>,
    work: Condvar,
    /// Leased deliveries by webhook and tenant, queued or being sent: their sum is the busy
    /// workers.
    in_flight: Mutex<InFlight>,
}

pub struct Engine {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// The request body of a delivery: rebuilt for every attempt with a fresh `delivered_at`. The
/// lead snapshot is stored as JSON and goes in as it is.
pub fn payload(leased: &Leased, now: Timestamp) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        event: &'a str,
        delivered_at: String,
        lead: &'a RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        changed_fields: Option<&'a [String]>,
    }
    let event = &leased.event;
    let body = Body {
        event: event.event_type.as_str(),
        delivered_at: now.to_iso(),
        lead: serde_json::from_str(&event.lead_json).unwrap_or(RawValue::NULL),
        changed_fields: event.changed_fields.as_deref(),
    };
    serde_json::to_vec(&body).expect("a delivery body serializes")
}

/// The headers of one attempt (spec §6), signed with every live secret.
pub fn headers(leased: &Leased, body: &[u8], now: Timestamp) -> Vec<(&'static str, String)> {
    let ts = now.seconds();
    let id = leased.delivery.id.to_string();
    let secrets = leased.webhook.live_secrets(now);
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-mega-signature", mega_signature(secrets[0], ts, body)),
        ("x-mega-timestamp", ts.to_string()),
        ("x-mega-delivery", id.clone()),
        ("x-mega-event", leased.event.event_type.as_str().to_string()),
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

/// A uniformly distributed value in [-1, 1] from the OS RNG, for the retry jitter.
pub fn random_jitter() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.0;
    }
    (u64::from_le_bytes(bytes) as f64 / u64::MAX as f64) * 2.0 - 1.0
}

/// One attempt: sign, send, report. No retries here; the caller records the result.
pub fn deliver_one(client: &Client, leased: &Leased, now: Timestamp) -> AttemptResult {
    let body = payload(leased, now);
    let headers = headers(leased, &body, now);
    client.post(
        &leased.webhook.url,
        &headers,
        &body,
        leased.webhook.timeout_seconds,
        now,
    )
}

/// What an attempt came to, for the log.
struct Reported {
    delivery: DeliveryId,
    webhook: WebhookId,
    event: EventType,
    status: Option<u16>,
    error: Option<AttemptError>,
    latency_ms: u32,
}

impl Reported {
    fn of(leased: &Leased, result: &AttemptResult) -> Reported {
        Reported {
            delivery: leased.delivery.id,
            webhook: leased.webhook.id,
            event: leased.event.event_type,
            status: result.response_status,
            error: result.error,
            latency_ms: result.latency_ms,
        }
    }

    /// Logs what came of the attempt and its record; the outcome, if it was recorded.
    fn log(&self, recorded: Result<Next, StoreError>) -> Option<Next> {
        match recorded {
            Ok(next) => {
                tracing::info!(
                    delivery = %self.delivery,
                    webhook = %self.webhook,
                    event = self.event.as_str(),
                    status = ?self.status,
                    error = ?self.error,
                    latency_ms = self.latency_ms,
                    next = ?next,
                    "delivery attempt"
                );
                Some(next)
            }
            Err(e) => {
                tracing::error!(
                    delivery = %self.delivery,
                    error = %e,
                    "cannot record a delivery attempt; it is sent again when its lease runs out"
                );
                None
            }
        }
    }
}

/// Attempts one leased delivery and records what came of it, waiting for the record.
fn attempt(
    store: &Store,
    client: &Client,
    retry: &Arc<RetryPolicy>,
    leased: &Leased,
) -> Option<Next> {
    let result = deliver_one(client, leased, store.now());
    let reported = Reported::of(leased, &result);
    let jitter = random_jitter();
    reported.log(store.record_attempt(leased.delivery.id, result, Arc::clone(retry), jitter))
}

/// A leased delivery's place among the attempts in flight. Given back when dropped: once its
/// attempt's record has committed (or failed to), or if the attempt panicked, so a webhook and
/// its tenant never lose room for good.
struct Slot {
    shared: Arc<Shared>,
    webhook: WebhookId,
    tenant: TenantId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared
            .in_flight
            .lock()
            .finish(self.webhook, self.tenant);
        self.shared.wakeup.notify();
    }
}

/// As [`attempt`], the record queued without waiting for its commit (the engine's workers). The
/// slot stays taken until the record commits, so a 410 or an auto-disable it records stops the
/// webhook's next attempts as it did when the worker waited.
fn attempt_and_go_on(shared: &Arc<Shared>, leased: &Leased) {
    let slot = Slot {
        shared: Arc::clone(shared),
        webhook: leased.webhook.id,
        tenant: leased.webhook.tenant_id,
    };
    let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        deliver_one(&shared.client, leased, shared.store.now())
    }));
    let Ok(result) = sent else {
        // The lease stays: the delivery is tried again when it runs out.
        tracing::error!(delivery = %leased.delivery.id, "a delivery attempt panicked");
        return;
    };
    let reported = Reported::of(leased, &result);
    shared.store.record_attempt_later(
        leased.delivery.id,
        result,
        Arc::clone(&shared.config.retry),
        random_jitter(),
        move |recorded| {
            reported.log(recorded);
            drop(slot);
        },
    );
}

/// One step of the engine on the calling thread: lease what is due now (at most `max`, within
/// the per-webhook and per-tenant limits), attempt each in turn and record the outcomes.
/// The running engine does the same spread over its threads; tests and tools that start the
/// server without it call this to deliver exactly what is due, when they choose.
pub fn deliver_due(store: &Store, client: &Client, config: &EngineConfig, max: usize) -> Vec<Next> {
    let leased = match store.lease_due(max, &InFlight::default(), config.limits) {
        Ok(leased) => leased,
        Err(e) => {
            tracing::error!(error = %e, "cannot lease due deliveries");
            return Vec::new();
        }
    };
    leased
        .iter()
        .filter_map(|l| attempt(store, client, &config.retry, l))
        .collect()
}

/// Leases left by the previous run are attempts that may or may not have happened: due again
/// now, whoever makes the attempts (at least once).
pub fn take_back_leases(store: &Store) {
    match store.requeue_in_flight() {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            deliveries = n,
            "requeued deliveries that were in flight when the last run ended"
        ),
        Err(e) => tracing::error!(error = %e, "cannot requeue in-flight deliveries"),
    }
}

impl Engine {
    pub fn start(store: Store, client: Arc<Client>, config: Arc<EngineConfig>) -> Engine {
        let threads = config.threads;
        let shared = Arc::new(Shared {
            wakeup: store.delivery_wakeup(),
            store,
            client,
            config,
            stopping: AtomicBool::new(false),
            queue: Mutex::new(VecDeque::new()),
            work: Condvar::new(),
            in_flight: Mutex::new(InFlight::default()),
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

    /// Stops leasing, lets attempts in progress finish (each within its timeout), and joins.
    /// Leased deliveries not yet started stay leased and are requeued at the next start.
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
        .stack_size(STACK_BYTES)
        .spawn(f)
        .expect("cannot spawn a delivery thread")
}

fn dispatch_loop(shared: &Shared) {
    while !shared.stopping.load(Ordering::SeqCst) {
        let seen = shared.wakeup.generation();
        let in_flight = shared.in_flight.lock().clone();
        let idle = shared
            .config
            .threads
            .saturating_sub(in_flight.total() as usize);
        if idle == 0 {
            // Nothing can be leased; a worker finishing wakes us.
            shared.wakeup.wait(seen, MAX_IDLE);
            continue;
        }
        let leased = match shared
            .store
            .lease_due(idle, &in_flight, shared.config.limits)
        {
            Ok(leased) => leased,
            Err(e) => {
                tracing::error!(error = %e, "cannot lease due deliveries");
                Vec::new()
            }
        };
        let leased_all = leased.len() == idle;
        if !leased.is_empty() {
            // Only this thread adds to the counts and workers only subtract, so the snapshot
            // the lease filtered with was never below the truth.
            let mut counts = shared.in_flight.lock();
            for c in &leased {
                counts.add(c.webhook.id, c.webhook.tenant_id, 1);
            }
            drop(counts);
            shared.queue.lock().extend(leased);
            shared.work.notify_all();
        }
        if leased_all {
            // There may be more due right now; workers wake us when they free up.
            shared.wakeup.wait(seen, MAX_IDLE);
            continue;
        }
        // Something already due but not leased belongs to a webhook at its in-flight limit:
        // a worker finishing wakes us, so there is no point in looking again before then.
        let now = shared.store.now();
        let wait = match shared.store.next_due() {
            Ok(Some(at)) if at > now => Duration::from_millis(
                (at.ms() - now.ms()).clamp(1, MAX_IDLE.as_millis() as i64) as u64,
            ),
            _ => MAX_IDLE,
        };
        shared.wakeup.wait(seen, wait);
    }
}

fn work_loop(shared: &Arc<Shared>) {
    loop {
        let leased = {
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
        attempt_and_go_on(shared, &leased);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent_either_way() {
        for _ in 0..100 {
            assert!((-1.0..=1.0).contains(&random_jitter()));
        }
    }
}
