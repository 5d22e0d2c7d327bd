//! The delivery engine's side of the queue: leasing due deliveries, recording each attempt and
//! what follows from it, and taking back leases a stopped process left behind.

use std::collections::HashMap;
use std::sync::Arc;

use redb::WriteTransaction;
use serde_json::json;

use super::delivery_queue::{
    Attempt, Delivery, DeliveryStatus, all_due, drop_orphan, due_deliveries, due_or_held,
    due_webhooks, first_due, hold, hold_open, insert_attempt, load_delivery, settle,
};
use super::outbox::{Event, EventData, NewEvent, load_event, publish};
use super::stats::Counted;
use super::webhooks::{find_webhook, save_webhook};
use super::{Store, StoreError};
use crate::domain::event::EventType;
use crate::domain::ids::{DeliveryId, TenantId, WebhookId};
use crate::domain::retry::{AttemptResult, Next, RetryPolicy, next_step};
use crate::domain::time::Timestamp;
use crate::domain::webhook::Webhook;

/// At most this many webhooks with due deliveries are looked at per lease. Each webhook is one
/// entry however long its backlog, so this bounds the work of a lease, never whose turn it is
/// (beyond the ten-thousandth webhook with work due at once).
const LEASE_SCAN: usize = 10_000;
/// A leased delivery whose attempt never reports back (the process died) is due again after
/// its timeout plus this margin. Startup also takes leases back at once.
const LEASE_MARGIN_MS: i64 = 30_000;

/// What the delivery engine decides while a lease walks the due webhooks.
pub trait LeasePlan {
    /// How many more of the webhook's due deliveries to lease now, `taken` deliveries of its
    /// tenant's webhooks being already chosen by this lease.
    fn room(&self, webhook: WebhookId, tenant: TenantId, taken: usize) -> usize;

    /// Whether the engine already holds the delivery (leased, its attempt not yet recorded), so
    /// a lease that ran out while it waited in memory is not leased twice.
    fn holds(&self, delivery: DeliveryId) -> bool;
}

/// Every due delivery, nothing held: for one step on the calling thread, and for tests.
pub struct Everything;

impl LeasePlan for Everything {
    fn room(&self, _: WebhookId, _: TenantId, _: usize) -> usize {
        usize::MAX
    }

    fn holds(&self, _: DeliveryId) -> bool {
        false
    }
}

/// A delivery leased for an attempt, with everything the attempt needs.
#[derive(Debug, Clone)]
pub struct Leased {
    pub delivery: Delivery,
    pub event: Event,
    /// As the lease read it; the deliveries of one lease share it.
    pub webhook: Arc<Webhook>,
}

/// The outcome of one attempt, to record.
#[derive(Debug)]
pub struct Outcome {
    pub delivery: DeliveryId,
    pub result: AttemptResult,
    /// In [-1, 1]: where in its window the retry falls.
    pub jitter: f64,
}

impl Store {
    /// After a restart, leases of the previous run are attempts that may or may not have
    /// happened: they are due again at once (at least once, never zero).
    pub fn requeue_in_flight(&self) -> Result<usize, StoreError> {
        self.write_now(|txn, now| {
            let keys = all_due(txn)?;
            let mut requeued = 0;
            for due in keys {
                let Some(mut delivery) = load_delivery(txn, due.delivery)? else {
                    continue;
                };
                if delivery.status == DeliveryStatus::Delivering {
                    settle(txn, &mut delivery, DeliveryStatus::Pending, Some(now))?;
                    requeued += 1;
                }
            }
            Ok(requeued)
        })
    }

    /// Leases up to `max` due deliveries, webhook by webhook in the order their oldest due
    /// delivery came due, as many of each as `plan` has room for, skipping the ones it holds. A
    /// busy webhook costs the scan one entry, whatever its backlog. A lease makes the delivery
    /// `delivering` and due again when it runs out. Candidates are found in a read transaction,
    /// so a wake-up with nothing due costs no commit.
    pub fn lease_due(&self, max: usize, plan: &dyn LeasePlan) -> Result<Vec<Leased>, StoreError> {
        let now = self.now();
        let candidates = self.read(|txn| {
            let mut taken: HashMap<TenantId, usize> = HashMap::new();
            let mut found = Vec::new();
            for (webhook, tenant) in due_webhooks(txn, now, LEASE_SCAN)? {
                let of_tenant = taken.entry(tenant).or_default();
                let room = plan
                    .room(webhook, tenant, *of_tenant)
                    .min(max - found.len());
                if room == 0 {
                    continue;
                }
                let keys = due_deliveries(txn, webhook, now, room, |d| plan.holds(d))?;
                *of_tenant += keys.len();
                found.extend(keys.into_iter().map(|key| (key, tenant)));
                if found.len() >= max {
                    break;
                }
            }
            Ok(found)
        })?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |txn| {
            let mut leased = Vec::new();
            // A batch holds several deliveries of one webhook: each webhook is read once.
            let mut webhooks: HashMap<WebhookId, Option<Arc<Webhook>>> = HashMap::new();
            for (key, tenant) in candidates {
                let Some(mut delivery) = load_delivery(txn, key.delivery)? else {
                    drop_orphan(txn, key, tenant)?;
                    continue;
                };
                // Re-checked inside the transaction: an attempt, a cancel or a redelivery may
                // have moved it since the scan. A `delivering` one that is due has outlived its
                // lease: its attempt never reported back.
                let due =
                    delivery.status.is_open() && delivery.next_attempt_at.is_some_and(|t| t <= now);
                if !due {
                    continue;
                }
                let webhook = match webhooks.get(&delivery.webhook_id) {
                    Some(webhook) => webhook.clone(),
                    None => {
                        let webhook = find_webhook(txn, delivery.tenant_id, delivery.webhook_id)?
                            .map(Arc::new);
                        webhooks.insert(delivery.webhook_id, webhook.clone());
                        webhook
                    }
                };
                let Some(webhook) = webhook else {
                    settle(txn, &mut delivery, DeliveryStatus::Cancelled, None)?;
                    continue;
                };
                if !webhook.is_active {
                    // Turned off since this was queued: held until it is turned back on.
                    hold(txn, &mut delivery)?;
                    continue;
                }
                let Some(event) = load_event(txn, delivery.event_id)? else {
                    settle(txn, &mut delivery, DeliveryStatus::Failed, None)?;
                    continue;
                };
                // A throttled webhook's deliveries wait their turn in the engine: their lease
                // covers that wait too.
                let waits = webhook.throttled_ahead().map_or(0, |(_, ms)| ms);
                let lease = now
                    .plus_ms(i64::from(webhook.timeout_seconds) * 1000 + LEASE_MARGIN_MS + waits);
                settle(txn, &mut delivery, DeliveryStatus::Delivering, Some(lease))?;
                leased.push(Leased {
                    delivery,
                    event,
                    webhook,
                });
            }
            Ok(leased)
        })
    }

    /// Gives leased deliveries whose attempt never started back to the queue, due now (a
    /// webhook turned off, edited or slowed down since they were leased); `done` hears once
    /// that has committed. Deliveries no longer leased (recorded, cancelled) are left alone.
    pub fn release_leases_later(
        &self,
        deliveries: Vec<DeliveryId>,
        done: impl FnOnce(Result<usize, StoreError>) + Send + 'static,
    ) {
        let clock = self.clock();
        let store = self.clone();
        self.write_then(
            move |txn| {
                let now = clock.now();
                let mut released = 0;
                let mut active: HashMap<WebhookId, bool> = HashMap::new();
                for id in deliveries {
                    let Some(mut delivery) = load_delivery(txn, id)? else {
                        continue;
                    };
                    if delivery.status != DeliveryStatus::Delivering {
                        continue;
                    }
                    let on = match active.get(&delivery.webhook_id) {
                        Some(on) => *on,
                        None => {
                            let on = find_webhook(txn, delivery.tenant_id, delivery.webhook_id)?
                                .is_some_and(|w| w.is_active);
                            active.insert(delivery.webhook_id, on);
                            on
                        }
                    };
                    // Given back because its webhook was turned off: held, not queued.
                    due_or_held(txn, &mut delivery, on, now)?;
                    released += 1;
                }
                Ok(released)
            },
            move |result| {
                done(result);
                store.wake_deliveries();
            },
        );
    }

    /// When the earliest queued delivery is due.
    pub fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(first_due)
    }

    /// Records an attempt and what follows from it: the delivery's next state and the webhook's
    /// health (last status, failure streak, turned off after 410 or sustained failure).
    pub fn record_attempt(
        &self,
        delivery: DeliveryId,
        result: AttemptResult,
        policy: Arc<RetryPolicy>,
        jitter: f64,
    ) -> Result<Next, StoreError> {
        self.telemetry().attempt(&result);
        let step =
            self.write_now(move |txn, now| record(txn, now, delivery, result, &policy, jitter))?;
        if step.raised > 0 {
            self.wake_deliveries();
        }
        Ok(step.next)
    }

    /// Records a batch of attempts in one write, queued without waiting for its commit: workers
    /// go on to their next attempt at once. `take` runs when the write does and hands over the
    /// outcomes reported until then, so the outcomes that pile up while one write waits for the
    /// writer share it. `done` hears, once the write has committed or failed, each delivery's
    /// next step, or the error that kept the batch from being recorded (then `done` gets the
    /// deliveries `take` handed over, if it ran). At least once still holds: until its record
    /// commits, a delivery stays leased, so a process that dies first sends it again when the
    /// lease runs out (or at the next start); nothing is lost, an attempt may be repeated.
    pub fn record_attempts_later(
        &self,
        take: impl FnOnce() -> Vec<Outcome> + Send + 'static,
        policy: Arc<RetryPolicy>,
        done: impl FnOnce(Recorded) + Send + 'static,
    ) {
        let clock = self.clock();
        let store = self.clone();
        let telemetry = Arc::clone(&self.inner.telemetry);
        let handed: Arc<parking_lot::Mutex<Vec<DeliveryId>>> = Arc::default();
        let ids = Arc::clone(&handed);
        self.write_then(
            move |txn| {
                let outcomes = take();
                *ids.lock() = outcomes.iter().map(|o| o.delivery).collect();
                for o in &outcomes {
                    telemetry.attempt(&o.result);
                }
                let now = clock.now();
                let mut steps = Vec::with_capacity(outcomes.len());
                for o in outcomes {
                    match record(txn, now, o.delivery, o.result, &policy, o.jitter) {
                        Ok(next) => steps.push((o.delivery, Ok(next))),
                        Err(e) if e.poisons_batch() => return Err(e),
                        Err(e) => steps.push((o.delivery, Err(e))),
                    }
                }
                Ok(steps)
            },
            move |result| {
                let raised: usize = result
                    .iter()
                    .flatten()
                    .flat_map(|(_, s)| s)
                    .map(|s| s.raised)
                    .sum();
                if raised > 0 {
                    store.wake_deliveries();
                }
                done(match result {
                    Ok(steps) => Recorded::Steps(steps),
                    Err(error) => Recorded::Failed {
                        error,
                        deliveries: std::mem::take(&mut *handed.lock()),
                    },
                })
            },
        );
    }
}

/// What follows from a recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub next: Next,
    /// The attempt turned its webhook off (410, or failing for too long).
    pub turned_off: bool,
    /// Deliveries queued by the operational events it raised (`delivery.exhausted`,
    /// `webhook.disabled`) to the tenant's other webhooks.
    pub raised: usize,
}

/// What came of a batch of attempt records.
#[derive(Debug)]
pub enum Recorded {
    /// Committed: each delivery's next step, or why it alone was not recorded (it was gone).
    Steps(Vec<(DeliveryId, Result<Step, StoreError>)>),
    /// Not committed: the deliveries it held (none if it never ran) stay leased.
    Failed {
        error: StoreError,
        deliveries: Vec<DeliveryId>,
    },
}

fn record(
    txn: &WriteTransaction,
    now: Timestamp,
    delivery: DeliveryId,
    mut result: AttemptResult,
    policy: &RetryPolicy,
    jitter: f64,
) -> Result<Step, StoreError> {
    let mut delivery = load_delivery(txn, delivery)?
        .ok_or_else(|| StoreError::NotFound(format!("delivery {delivery} not found")))?;
    delivery.attempts += 1;
    delivery.cycle_attempts += 1;
    delivery.response_status = result.response_status;
    delivery.latency_ms = Some(result.latency_ms);
    let attempt = Attempt {
        number: delivery.attempts,
        started_at: result.started_at,
        latency_ms: result.latency_ms,
        response_status: result.response_status,
        error: result.error,
        response_body_excerpt: std::mem::take(&mut result.response_body_excerpt),
    };
    insert_attempt(txn, delivery.id, &attempt)?;
    let webhook = find_webhook(txn, delivery.tenant_id, delivery.webhook_id)?;
    let cancelled = delivery.status == DeliveryStatus::Cancelled;
    let next = match &webhook {
        Some(webhook) if !cancelled => next_step(
            &result,
            delivery.cycle_attempts,
            webhook.retry_attempts,
            &policy.schedule,
            now,
            jitter,
        ),
        _ => Next::GiveUp,
    };
    // By the answer, not by what follows: a 2xx to a delivery cancelled meanwhile delivered.
    let outcome = if result.succeeded() {
        Counted::Delivered
    } else {
        Counted::Failed
    };
    super::stats::note(delivery.tenant_id, now, outcome);
    match &next {
        _ if cancelled || webhook.is_none() => {
            settle(txn, &mut delivery, DeliveryStatus::Cancelled, None)?
        }
        Next::Delivered => {
            delivery.delivered_at = Some(now);
            settle(txn, &mut delivery, DeliveryStatus::Delivered, None)?;
        }
        // Turned off while this attempt was on the wire: its retry waits, held.
        Next::RetryAt(at) => {
            let active = webhook.as_ref().is_some_and(|w| w.is_active);
            due_or_held(txn, &mut delivery, active, *at)?
        }
        Next::GiveUp | Next::Disable(_) => {
            settle(txn, &mut delivery, DeliveryStatus::Failed, None)?
        }
    }
    let Some(mut webhook) = webhook else {
        return Ok(Step {
            next,
            turned_off: false,
            raised: 0,
        });
    };
    let turned_off = webhook.note_attempt(&result, &next, policy, now);
    if let Some(reason) = &turned_off {
        tracing::warn!(webhook = %webhook.id, %reason, "webhook turned off");
    }
    save_webhook(txn, &webhook)?;
    let mut raised = 0;
    let exhausted = next == Next::GiveUp
        && !delivery.event_type.is_operational()
        && delivery.event_type != EventType::WebhookTest;
    if exhausted {
        raised += publish(
            txn,
            webhook.tenant_id,
            NewEvent {
                event_type: EventType::DeliveryExhausted,
                lead_id: None,
                data: EventData::Members(
                    json!({
                        "lead": null,
                        "delivery": {
                            "id": delivery.id,
                            "event_id": delivery.event_id,
                            "event": delivery.event_type,
                            "attempts": delivery.attempts,
                            "response_status": delivery.response_status,
                        },
                        "webhook": { "id": webhook.id, "url": webhook.url },
                    })
                    .to_string(),
                ),
                changed_fields: None,
                about: Some(webhook.id),
            },
            now,
        )?;
    }
    if turned_off.is_some() {
        // What it still owes is held from now on, not sent.
        hold_open(txn, webhook.id)?;
        raised += publish(
            txn,
            webhook.tenant_id,
            NewEvent {
                event_type: EventType::WebhookDisabled,
                lead_id: None,
                data: EventData::Members(
                    json!({
                        "lead": null,
                        "webhook": {
                            "id": webhook.id,
                            "url": webhook.url,
                            "disabled_reason": webhook.disabled_reason,
                            "consecutive_failures": webhook.consecutive_failures,
                            "last_delivery_status": webhook.last_delivery_status,
                        },
                    })
                    .to_string(),
                ),
                changed_fields: None,
                about: Some(webhook.id),
            },
            now,
        )?;
    }
    Ok(Step {
        next,
        turned_off: turned_off.is_some(),
        raised,
    })
}
