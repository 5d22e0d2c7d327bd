//! The delivery engine: one dispatcher thread leases due deliveries from the outbox in batches,
//! worker threads take turns over the webhooks' lanes ([`lanes`]), send, and hand the outcome
//! to a shared recorder that writes the attempts reported meanwhile in one transaction, without
//! the worker waiting for it.
//!
//! A commit that queues deliveries wakes the dispatcher at once, and so does a lane running
//! low; otherwise it sleeps until the next delivery is due (checking at least every second).
//!
//! At least once: a delivery is `delivering` in the store from its lease until its attempt's
//! record commits. A process that dies in between, whether the attempt was sent or not, leaves
//! it leased, and the next start makes it due again ([`take_back_leases`]); within one run, an
//! attempt whose record fails is leased again when its lease runs out. A lease running out
//! while its delivery still waits in a lane is never leased twice: the engine skips what it
//! holds.

pub mod client;
pub mod lanes;
pub mod signing;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::domain::event::EventType;
use crate::domain::ids::{DeliveryId, TenantId, WebhookId};
use crate::domain::retry::{AttemptError, AttemptResult, Next, RetryPolicy};
use crate::domain::time::Timestamp;
use crate::store::dispatch::{Everything, LeasePlan, Leased, Outcome, Recorded, Step};
use crate::store::{Store, StoreError, Wakeup};
use client::Client;
use lanes::{Lanes, Limits};
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
    lanes: Arc<Mutex<Lanes>>,
    /// Workers wait here for an attempt to make.
    work: Condvar,
    /// Outcomes reported and not yet taken by a record write.
    outcomes: Mutex<Vec<(Outcome, Reported)>>,
}

pub struct Engine {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// The request body of a delivery: the event's envelope with a fresh `delivered_at`, rebuilt
/// for every attempt. The event's members are stored as JSON text and go in as they are.
pub fn payload(leased: &Leased, now: Timestamp) -> Vec<u8> {
    leased.event.body(Some(now)).into_bytes()
}

/// The headers of one attempt (spec §6), signed with every live secret, then the webhook's
/// custom headers (§13; not covered by the signatures).
pub fn headers<'a>(leased: &'a Leased, body: &[u8], now: Timestamp) -> Vec<(&'a str, String)> {
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
    let custom = &leased.webhook.headers.0;
    headers.extend(
        custom
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone())),
    );
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

    /// Logs what came of the attempt and its record: a success at `debug` (the delivery log
    /// has every attempt), anything else at `info`.
    fn log(&self, recorded: &Result<Step, StoreError>) {
        match recorded {
            Ok(step) if step.next == Next::Delivered => tracing::debug!(
                delivery = %self.delivery,
                webhook = %self.webhook,
                event = self.event.as_str(),
                status = ?self.status,
                latency_ms = self.latency_ms,
                "delivered"
            ),
            Ok(step) => tracing::info!(
                delivery = %self.delivery,
                webhook = %self.webhook,
                event = self.event.as_str(),
                status = ?self.status,
                error = ?self.error,
                latency_ms = self.latency_ms,
                next = ?step.next,
                "delivery attempt failed"
            ),
            Err(e) => tracing::error!(
                delivery = %self.delivery,
                error = %e,
                "cannot record a delivery attempt; it is sent again when its lease runs out"
            ),
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
    let recorded = store
        .record_attempt(
            leased.delivery.id,
            result,
            Arc::clone(retry),
            random_jitter(),
        )
        .map(|next| Step {
            next,
            turned_off: false,
            raised: 0,
        });
    reported.log(&recorded);
    recorded.ok().map(|step| step.next)
}

/// One step of the engine on the calling thread: lease what is due now (at most `max`),
/// attempt each in turn and record the outcomes. The running engine does the same spread over
/// its threads; tests and tools that start the server without it call this to deliver exactly
/// what is due, when they choose.
pub fn deliver_due(store: &Store, client: &Client, config: &EngineConfig, max: usize) -> Vec<Next> {
    let leased = match store.lease_due(max, &Everything) {
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
            lanes: Arc::new(Mutex::new(Lanes::new(config.limits.on_threads(threads)))),
            store,
            client,
            config,
            stopping: AtomicBool::new(false),
            work: Condvar::new(),
            outcomes: Mutex::new(Vec::new()),
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
    /// Deliveries leased ahead and not yet started stay leased and are due at the next start.
    pub fn stop(self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wakeup.notify();
        {
            let _lanes = self.shared.lanes.lock();
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

/// The lease's view of the lanes: room by webhook and tenant, and what the engine holds.
struct Plan<'a> {
    lanes: &'a Mutex<Lanes>,
    now: Instant,
}

impl LeasePlan for Plan<'_> {
    fn room(&self, webhook: WebhookId, tenant: TenantId, taken: usize) -> usize {
        self.lanes.lock().room(webhook, tenant, taken, self.now)
    }

    fn holds(&self, delivery: DeliveryId) -> bool {
        self.lanes.lock().holds(delivery)
    }
}

fn dispatch_loop(shared: &Shared) {
    let mut tidied = Instant::now();
    while !shared.stopping.load(Ordering::SeqCst) {
        let seen = shared.wakeup.generation();
        if tidied.elapsed() >= MAX_IDLE {
            tidied = Instant::now();
            shared.lanes.lock().forget_idle(tidied);
        }
        let budget = shared.lanes.lock().budget();
        if budget == 0 {
            // The engine holds all it may; a record or a give-back wakes us.
            shared.wakeup.wait(seen, MAX_IDLE);
            continue;
        }
        // Read before the lease: an edit that commits after it makes the lanes read again.
        let edits = shared.store.webhook_edits();
        let plan = Plan {
            lanes: &shared.lanes,
            now: Instant::now(),
        };
        let leased = match shared.store.lease_due(budget, &plan) {
            Ok(leased) => leased,
            Err(e) => {
                tracing::error!(error = %e, "cannot lease due deliveries");
                Vec::new()
            }
        };
        let leased_all = leased.len() == budget;
        if !leased.is_empty() {
            let admitted = leased.len();
            let refused = shared.lanes.lock().admit(leased, edits);
            wake_workers(shared, admitted - refused.len());
            give_back(shared, refused);
        }
        if leased_all {
            continue;
        }
        // What is due and was not leased belongs to a lane that is full, at its window or
        // paused: a lane running low, a record or a give-back wakes us.
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
        let (leased, running_low) = {
            let mut lanes = shared.lanes.lock();
            // Whether this worker last slept as the timer (see below).
            let mut was_timer = false;
            loop {
                if shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let turn = lanes.take(|webhook| shared.store.last_edit_of(webhook));
                give_back(shared, turn.give_back);
                if let Some(leased) = turn.attempt {
                    if was_timer {
                        // Off to send: another idle worker takes over the timer.
                        shared.work.notify_one();
                    }
                    break (leased, turn.running_low);
                }
                // Nothing to send now. A rate-limited lane's next start is a deadline, not a
                // poll: one idle worker, the timer, sleeps until the earliest such start (a
                // worker that finds an earlier one becomes the timer too); the others sleep
                // until a slot or a lease wakes them, so a throttled webhook costs one wake-up
                // a start.
                match turn.wake_at {
                    Some(at) if lanes.arm_timer(at) => {
                        was_timer = true;
                        shared.work.wait_until(&mut lanes, at);
                        lanes.timer_woke(at);
                    }
                    _ => {
                        was_timer = false;
                        shared.work.wait(&mut lanes);
                    }
                }
            }
        };
        if running_low {
            shared.wakeup.notify();
        }
        attempt_and_go_on(shared, leased);
    }
}

/// Sends one attempt and reports its outcome to the recorder; the worker does not wait for the
/// record.
fn attempt_and_go_on(shared: &Arc<Shared>, leased: Leased) {
    let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        deliver_one(&shared.client, &leased, shared.store.now())
    }));
    let Ok(result) = sent else {
        tracing::error!(
            delivery = %leased.delivery.id,
            "a delivery attempt panicked; it is sent again when its lease runs out"
        );
        // This worker looks for the next attempt itself: nobody else needs waking.
        shared.lanes.lock().abandon(leased.delivery.id);
        return;
    };
    let (back, wants_lease) = {
        let mut lanes = shared.lanes.lock();
        let back = lanes.answered(leased.delivery.id, &result, Instant::now());
        (back, lanes.wants_lease(leased.webhook.id))
    };
    give_back(shared, back);
    if wants_lease {
        // The answer freed a slot or deepened the lane: there may be room to lease into.
        shared.wakeup.notify();
    }
    let reported = Reported::of(&leased, &result);
    let outcome = Outcome {
        delivery: leased.delivery.id,
        result,
        jitter: random_jitter(),
    };
    report(shared, outcome, reported);
}

/// Queues an outcome for the recorder. The first outcome of a batch submits the write; those
/// reported before it runs join it.
fn report(shared: &Arc<Shared>, outcome: Outcome, reported: Reported) {
    let first = {
        let mut outcomes = shared.outcomes.lock();
        outcomes.push((outcome, reported));
        outcomes.len() == 1
    };
    if !first {
        return;
    }
    let taking = Arc::clone(shared);
    let back = Arc::clone(shared);
    let logs: Arc<Mutex<Vec<Reported>>> = Arc::default();
    let kept = Arc::clone(&logs);
    shared.store.record_attempts_later(
        move || {
            let batch = std::mem::take(&mut *taking.outcomes.lock());
            let (outcomes, reported): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            *kept.lock() = reported;
            outcomes
        },
        Arc::clone(&shared.config.retry),
        move |recorded| {
            let reported = std::mem::take(&mut *logs.lock());
            on_recorded(&back, recorded, reported);
        },
    );
}

/// Frees what a batch of records held, on the writer thread once its commit is known.
fn on_recorded(shared: &Shared, recorded: Recorded, reported: Vec<Reported>) {
    let steps: Vec<(DeliveryId, Result<Step, StoreError>)> = match recorded {
        Recorded::Steps(steps) => steps,
        Recorded::Failed { error, deliveries } => {
            // Refused before it ran: its outcomes are still queued, and no write will take them.
            let stranded: Vec<(Outcome, Reported)> = if deliveries.is_empty() {
                std::mem::take(&mut *shared.outcomes.lock())
            } else {
                Vec::new()
            };
            tracing::error!(
                error = %error,
                attempts = deliveries.len() + stranded.len(),
                "cannot record delivery attempts; they are sent again when their leases run out"
            );
            let ids = deliveries
                .into_iter()
                .chain(stranded.iter().map(|(o, _)| o.delivery));
            let mut lanes = shared.lanes.lock();
            for id in ids {
                lanes.recorded(id, false);
            }
            drop(lanes);
            shared.work.notify_all();
            shared.wakeup.notify();
            return;
        }
    };
    for (report, (_, step)) in reported.iter().zip(&steps) {
        report.log(step);
    }
    let (mut back, mut freed, mut relieved) = (Vec::new(), 0, false);
    {
        let mut lanes = shared.lanes.lock();
        for (id, step) in &steps {
            let turned_off = step.as_ref().is_ok_and(|s| s.turned_off);
            let released = lanes.recorded(*id, turned_off);
            back.extend(released.give_back);
            freed += usize::from(released.freed_slot);
            relieved |= released.relieved;
        }
    }
    give_back(shared, back);
    // Successes gave their slots back when answered; only failed attempts free one now, and
    // a freed slot may make room to lease into.
    wake_workers(shared, freed);
    if relieved || freed > 0 {
        shared.wakeup.notify();
    }
}

/// Wakes up to `n` idle workers (each condvar wake is a context switch: none for nothing).
fn wake_workers(shared: &Shared, n: usize) {
    if n >= shared.config.threads {
        shared.work.notify_all();
        return;
    }
    for _ in 0..n {
        shared.work.notify_one();
    }
}

/// Returns leased deliveries to the queue; the lanes stop holding them once that commits.
fn give_back(shared: &Shared, deliveries: Vec<DeliveryId>) {
    if deliveries.is_empty() {
        return;
    }
    let lanes = Arc::clone(&shared.lanes);
    shared
        .store
        .release_leases_later(deliveries.clone(), move |result| {
            if let Err(e) = result {
                // Still leased: due again when the leases run out.
                tracing::error!(error = %e, "cannot give leased deliveries back");
            }
            lanes.lock().given_back(&deliveries);
        });
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
