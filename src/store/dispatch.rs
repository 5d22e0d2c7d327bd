//! The delivery engine's side of the queue: leasing due deliveries, recording each attempt and
//! what follows from it, and taking back leases a stopped process left behind.

use std::collections::HashMap;

use redb::ReadableTable;

use super::delivery_queue::{
    Attempt, Delivery, DeliveryStatus, DueKey, first_due, insert_attempt, load_delivery, settle,
};
use super::outbox::{Event, load_event};
use super::tables::*;
use super::webhooks::{find_webhook, save_webhook};
use super::{Store, StoreError};
use crate::domain::ids::{DeliveryId, WebhookId};
use crate::domain::retry::{AttemptResult, Next, RetryPolicy, next_step};
use crate::domain::time::Timestamp;
use crate::domain::webhook::Webhook;

/// At most this many due entries are looked at per lease, so a backlog for saturated webhooks
/// cannot make each lease slow.
const LEASE_SCAN: usize = 2_000;
/// A leased delivery whose attempt never reports back (the process died) is due again after
/// its timeout plus this margin. Startup also takes leases back at once.
const LEASE_MARGIN_MS: i64 = 30_000;

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
            let keys: Vec<DueKey> = txn
                .open_table(DELIVERIES_DUE)?
                .iter()?
                .map(|e| e.map(|(k, _)| DueKey::decode(k.value())))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect();
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

    /// Leases up to `max` due deliveries, skipping webhooks that already have `max_per_webhook`
    /// attempts in flight (as counted in `in_flight`). A lease makes the delivery `delivering`
    /// and due again when it runs out. Candidates are found in a read transaction, so a wake-up
    /// with nothing due costs no commit.
    pub fn lease_due(
        &self,
        max: usize,
        in_flight: HashMap<WebhookId, u32>,
        max_per_webhook: u32,
    ) -> Result<Vec<Leased>, StoreError> {
        let now = self.now();
        let candidates = self.read(|txn| {
            let mut busy = in_flight;
            let end = DueKey::after(now);
            let mut found = Vec::new();
            for entry in txn
                .open_table(DELIVERIES_DUE)?
                .range(..end.as_slice())?
                .take(LEASE_SCAN)
            {
                let Some(due) = DueKey::decode(entry?.0.value()) else {
                    continue;
                };
                let count = busy.entry(due.webhook).or_default();
                if *count >= max_per_webhook {
                    continue;
                }
                *count += 1;
                found.push(due.delivery);
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
            for id in candidates {
                let Some(mut delivery) = load_delivery(txn, id)? else {
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
                let Some(webhook) = find_webhook(txn, delivery.tenant_id, delivery.webhook_id)?
                else {
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
        self.read(|txn| Ok(first_due(&txn.open_table(DELIVERIES_DUE)?)?.map(|due| due.at)))
    }

    /// Records an attempt and what follows from it: the delivery's next state and the webhook's
    /// health (last status, failure streak, turned off after 410 or sustained failure).
    pub fn record_attempt(
        &self,
        delivery: DeliveryId,
        mut result: AttemptResult,
        policy: std::sync::Arc<RetryPolicy>,
        jitter: f64,
    ) -> Result<Next, StoreError> {
        self.write_now(move |txn, now| {
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
                Next::RetryAt(at) => {
                    settle(txn, &mut delivery, DeliveryStatus::Pending, Some(*at))?
                }
                Next::GiveUp | Next::Disable(_) => {
                    settle(txn, &mut delivery, DeliveryStatus::Failed, None)?
                }
            }
            let Some(mut webhook) = webhook else {
                return Ok(next);
            };
            if let Some(reason) = webhook.note_attempt(&result, &next, &policy, now) {
                tracing::warn!(webhook = %webhook.id, %reason, "webhook turned off");
            }
            save_webhook(txn, &webhook)?;
            Ok(next)
        })
    }
}
