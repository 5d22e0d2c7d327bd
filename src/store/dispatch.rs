//! The delivery engine's side of the queue: leasing due deliveries, recording each attempt and
//! what follows from it, and taking back leases a stopped process left behind.

use std::collections::HashMap;
use std::sync::Arc;

use redb::WriteTransaction;

use super::delivery_queue::{
    Attempt, Delivery, DeliveryStatus, all_due, drop_orphan, due_deliveries, due_webhooks,
    first_due, insert_attempt, load_delivery, settle,
};
use super::outbox::{Event, load_event};
use super::webhooks::{find_webhook, save_webhook};
use super::{Store, StoreError};
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

/// How many attempts one webhook, and one tenant's webhooks together, may have in flight.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_webhook: u32,
    pub per_tenant: u32,
}

/// Attempts in flight (leased, not yet recorded), by webhook and by tenant.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    webhooks: HashMap<WebhookId, u32>,
    tenants: HashMap<TenantId, u32>,
}

impl InFlight {
    /// How many more attempts the webhook may start now.
    pub fn room(&self, webhook: WebhookId, tenant: TenantId, limits: Limits) -> usize {
        let of_webhook = self.webhooks.get(&webhook).copied().unwrap_or(0);
        let of_tenant = self.tenants.get(&tenant).copied().unwrap_or(0);
        let room = limits
            .per_webhook
            .saturating_sub(of_webhook)
            .min(limits.per_tenant.saturating_sub(of_tenant));
        room as usize
    }

    pub fn add(&mut self, webhook: WebhookId, tenant: TenantId, n: u32) {
        *self.webhooks.entry(webhook).or_default() += n;
        *self.tenants.entry(tenant).or_default() += n;
    }

    /// One attempt of the webhook's finished.
    pub fn finish(&mut self, webhook: WebhookId, tenant: TenantId) {
        decrement(&mut self.webhooks, webhook);
        decrement(&mut self.tenants, tenant);
    }

    pub fn total(&self) -> u32 {
        self.webhooks.values().sum()
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: K) {
    if let Some(count) = counts.get_mut(&key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(&key);
        }
    }
}

/// A delivery leased for an attempt, with everything the attempt needs.
#[derive(Debug, Clone)]
pub struct Leased {
    pub delivery: Delivery,
    pub event: Event,
    pub webhook: Webhook,
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
    /// delivery came due, leaving out what would put a webhook over `limits.per_webhook` or its
    /// tenant over `limits.per_tenant` attempts in flight (as counted in `in_flight`). A busy
    /// webhook costs the scan one entry, whatever its backlog. A lease makes the delivery
    /// `delivering` and due again when it runs out. Candidates are found in a read transaction,
    /// so a wake-up with nothing due costs no commit.
    pub fn lease_due(
        &self,
        max: usize,
        in_flight: &InFlight,
        limits: Limits,
    ) -> Result<Vec<Leased>, StoreError> {
        let now = self.now();
        let candidates = self.read(|txn| {
            let mut busy = in_flight.clone();
            let mut found = Vec::new();
            for (webhook, tenant) in due_webhooks(txn, now, LEASE_SCAN)? {
                let room = busy.room(webhook, tenant, limits).min(max - found.len());
                if room == 0 {
                    continue;
                }
                let keys = due_deliveries(txn, webhook, now, room)?;
                busy.add(webhook, tenant, keys.len() as u32);
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
            let mut webhooks: HashMap<WebhookId, Option<Webhook>> = HashMap::new();
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
                        let webhook = find_webhook(txn, delivery.tenant_id, delivery.webhook_id)?;
                        webhooks.insert(delivery.webhook_id, webhook.clone());
                        webhook
                    }
                };
                let Some(webhook) = webhook else {
                    settle(txn, &mut delivery, DeliveryStatus::Cancelled, None)?;
                    continue;
                };
                if !webhook.is_active {
                    // Turned off since this was queued: nothing is sent; `recover` can requeue.
                    settle(txn, &mut delivery, DeliveryStatus::Failed, None)?;
                    continue;
                }
                let Some(event) = load_event(txn, delivery.event_id)? else {
                    settle(txn, &mut delivery, DeliveryStatus::Failed, None)?;
                    continue;
                };
                let lease =
                    now.plus_ms(i64::from(webhook.timeout_seconds) * 1000 + LEASE_MARGIN_MS);
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
        self.write_now(move |txn, now| record(txn, now, delivery, result, &policy, jitter))
    }

    /// As [`Store::record_attempt`], queued without waiting for its commit: the worker goes on
    /// to the next attempt at once, and `done` hears the outcome once the record has committed
    /// (or failed to). At least once still holds: until the record commits, the delivery stays
    /// leased, so a process that dies first sends it again when the lease runs out (or at the
    /// next start); nothing is lost, an attempt may be repeated.
    pub fn record_attempt_later(
        &self,
        delivery: DeliveryId,
        result: AttemptResult,
        policy: Arc<RetryPolicy>,
        jitter: f64,
        done: impl FnOnce(Result<Next, StoreError>) + Send + 'static,
    ) {
        let clock = self.clock();
        self.write_then(
            move |txn| record(txn, clock.now(), delivery, result, &policy, jitter),
            done,
        );
    }
}

fn record(
    txn: &WriteTransaction,
    now: Timestamp,
    delivery: DeliveryId,
    mut result: AttemptResult,
    policy: &RetryPolicy,
    jitter: f64,
) -> Result<Next, StoreError> {
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
    match &next {
        _ if cancelled || webhook.is_none() => {
            settle(txn, &mut delivery, DeliveryStatus::Cancelled, None)?
        }
        Next::Delivered => {
            delivery.delivered_at = Some(now);
            settle(txn, &mut delivery, DeliveryStatus::Delivered, None)?;
        }
        Next::RetryAt(at) => settle(txn, &mut delivery, DeliveryStatus::Pending, Some(*at))?,
        Next::GiveUp | Next::Disable(_) => {
            settle(txn, &mut delivery, DeliveryStatus::Failed, None)?
        }
    }
    let Some(mut webhook) = webhook else {
        return Ok(next);
    };
    if let Some(reason) = webhook.note_attempt(&result, &next, policy, now) {
        tracing::warn!(webhook = %webhook.id, %reason, "webhook turned off");
    }
    save_webhook(txn, &webhook)?;
    Ok(next)
}
