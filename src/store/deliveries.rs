//! The delivery queue and log: claiming due deliveries, recording attempts and their
//! consequences, redelivery, and pruning.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::codec::{Record, decode, encode};
use super::outbox::{Delivery, DeliveryStatus, Event, due_key, insert_event, queue_delivery};
use super::tables::*;
use super::webhooks::{Webhook, find_live, live_webhook, save_webhook};
use super::{Store, StoreError};
use crate::delivery::schedule::{AttemptError, AttemptResult, Next, next_step};
use crate::domain::event::EventType;
use crate::domain::ids::{DeliveryId, EventId, TenantId, WebhookId};
use crate::domain::time::Timestamp;

/// At most this many due entries are looked at per claim, so a backlog for saturated webhooks
/// cannot make each claim slow.
const CLAIM_SCAN: usize = 2_000;
/// A claimed delivery whose attempt never reports back (the process died) is due again after
/// its timeout plus this margin. Startup also requeues claims at once.
const LEASE_MARGIN_MS: i64 = 30_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub number: u32,
    pub started_at: Timestamp,
    pub latency_ms: u32,
    pub response_status: Option<u16>,
    pub error: Option<AttemptError>,
    pub response_body_excerpt: String,
}

impl Record for Attempt {
    const VERSION: u8 = 1;
    const NAME: &'static str = "attempt";
}

/// A delivery taken for an attempt, with everything the attempt needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: Delivery,
    pub event: Event,
    pub webhook: Webhook,
}

/// How the engine's retry policy is configured.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub schedule: Vec<u64>,
    pub disable_after_failing_ms: i64,
}

/// Finished deliveries pruned per call at most.
pub const PRUNE_BATCH: usize = 5_000;

fn save_delivery(txn: &WriteTransaction, delivery: &Delivery) -> Result<(), StoreError> {
    txn.open_table(DELIVERIES)?
        .insert(delivery.id.bytes().as_slice(), encode(delivery)?.as_slice())?;
    Ok(())
}

/// Moves a delivery's due entry from where it was to `at` (or removes it).
fn reschedule(
    txn: &WriteTransaction,
    delivery: &mut Delivery,
    at: Option<Timestamp>,
) -> Result<(), StoreError> {
    let mut due = txn.open_table(DELIVERIES_DUE)?;
    if let Some(old) = delivery.next_attempt_at {
        due.remove(due_key(old, delivery).as_slice())?;
    }
    if let Some(at) = at {
        due.insert(due_key(at, delivery).as_slice(), ())?;
    }
    delivery.next_attempt_at = at;
    Ok(())
}

fn delivery_of(
    txn: &impl Txn,
    tenant: TenantId,
    webhook: WebhookId,
    id: DeliveryId,
) -> Result<Delivery, StoreError> {
    load::<Delivery>(&txn.table(DELIVERIES)?, &id.bytes())?
        .filter(|d| d.tenant_id == tenant && d.webhook_id == webhook)
        .ok_or_else(|| StoreError::NotFound(format!("delivery {id} not found")))
}

/// Starts a fresh attempt cycle for a delivery, due now.
fn requeue(
    txn: &WriteTransaction,
    delivery: &mut Delivery,
    now: Timestamp,
) -> Result<(), StoreError> {
    delivery.status = DeliveryStatus::Pending;
    delivery.cycle_attempts = 0;
    reschedule(txn, delivery, Some(now))?;
    save_delivery(txn, delivery)
}

impl Store {
    /// After a restart, claims of the previous run are attempts that may or may not have
    /// happened: they are due again at once (at least once, never zero).
    pub fn requeue_in_flight(&self) -> Result<usize, StoreError> {
        self.write(|txn| {
            let now = Timestamp::now();
            let keys: Vec<Vec<u8>> = txn
                .open_table(DELIVERIES_DUE)?
                .iter()?
                .map(|e| e.map(|(k, _)| k.value().to_vec()))
                .collect::<Result<_, _>>()?;
            let mut requeued = 0;
            for k in keys {
                let Some(id) = id_at(&k, 8) else { continue };
                let Some(mut delivery) = load::<Delivery>(&txn.open_table(DELIVERIES)?, &id)?
                else {
                    continue;
                };
                if delivery.status == DeliveryStatus::Delivering {
                    delivery.status = DeliveryStatus::Pending;
                    reschedule(txn, &mut delivery, Some(now))?;
                    save_delivery(txn, &delivery)?;
                    requeued += 1;
                }
            }
            Ok(requeued)
        })
    }

    /// Takes up to `max` due deliveries, skipping webhooks that already have `max_per_webhook`
    /// attempts in flight (as counted in `in_flight`). A claim is a lease: the delivery is
    /// `delivering` and due again when the lease runs out. Candidates are found in a read
    /// transaction, so a wake-up with nothing to claim costs no commit.
    pub fn claim_due(
        &self,
        max: usize,
        in_flight: HashMap<WebhookId, u32>,
        max_per_webhook: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now = Timestamp::now();
        let candidates = self.read(|txn| {
            let mut busy = in_flight;
            let end = key(&[&i64_key(now.ms()), &[0xff; 32]]);
            let mut found = Vec::new();
            for entry in txn
                .open_table(DELIVERIES_DUE)?
                .range(..=end.as_slice())?
                .take(CLAIM_SCAN)
            {
                let (k, _) = entry?;
                let k = k.value();
                let (Some(id), Some(webhook)) = (id_at(k, 8), id_at(k, 24)) else {
                    continue;
                };
                let count = busy.entry(WebhookId::from_bytes(webhook)).or_default();
                if *count >= max_per_webhook {
                    continue;
                }
                *count += 1;
                found.push(id);
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
            let mut claimed = Vec::new();
            for id in candidates {
                let Some(mut delivery) = load::<Delivery>(&txn.open_table(DELIVERIES)?, &id)?
                else {
                    continue;
                };
                // Re-checked inside the transaction: an attempt, a cancel or a redelivery may
                // have moved it since the scan. A `delivering` one that is due has outlived its
                // lease: its attempt never reported back.
                let due = matches!(
                    delivery.status,
                    DeliveryStatus::Pending | DeliveryStatus::Delivering
                ) && delivery.next_attempt_at.is_some_and(|t| t <= now);
                if !due {
                    continue;
                }
                let Some(webhook) = find_live(txn, delivery.tenant_id, delivery.webhook_id)? else {
                    delivery.status = DeliveryStatus::Cancelled;
                    reschedule(txn, &mut delivery, None)?;
                    save_delivery(txn, &delivery)?;
                    continue;
                };
                if !webhook.is_active {
                    // Turned off since this was queued: nothing is sent; `recover` can requeue.
                    delivery.status = DeliveryStatus::Failed;
                    reschedule(txn, &mut delivery, None)?;
                    save_delivery(txn, &delivery)?;
                    continue;
                }
                let Some(event) =
                    load::<Event>(&txn.open_table(EVENTS)?, &delivery.event_id.bytes())?
                else {
                    delivery.status = DeliveryStatus::Failed;
                    reschedule(txn, &mut delivery, None)?;
                    save_delivery(txn, &delivery)?;
                    continue;
                };
                delivery.status = DeliveryStatus::Delivering;
                let lease =
                    now.plus_ms(i64::from(webhook.timeout_seconds) * 1000 + LEASE_MARGIN_MS);
                reschedule(txn, &mut delivery, Some(lease))?;
                save_delivery(txn, &delivery)?;
                claimed.push(Claimed {
                    delivery,
                    event,
                    webhook,
                });
            }
            Ok(claimed)
        })
    }

    /// When the earliest queued delivery is due.
    pub fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|txn| {
            let due = txn.open_table(DELIVERIES_DUE)?;
            Ok(due
                .first()?
                .and_then(|(k, _)| i64_from_key(k.value()))
                .map(Timestamp))
        })
    }

    /// Records an attempt and what follows from it: the delivery's next state and the webhook's
    /// health (last status, failure streak, turned off after 410 or sustained failure).
    pub fn record_attempt(
        &self,
        delivery: DeliveryId,
        mut result: AttemptResult,
        policy: impl Into<Arc<RetryPolicy>>,
        jitter: f64,
    ) -> Result<Next, StoreError> {
        let policy = policy.into();
        self.write(move |txn| {
            let now = Timestamp::now();
            let Some(mut delivery) =
                load::<Delivery>(&txn.open_table(DELIVERIES)?, &delivery.bytes())?
            else {
                return Err(StoreError::NotFound(format!(
                    "delivery {delivery} not found"
                )));
            };
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
            txn.open_table(ATTEMPTS)?.insert(
                key(&[&delivery.id.bytes(), &attempt.number.to_be_bytes()]).as_slice(),
                encode(&attempt)?.as_slice(),
            )?;
            let webhook = find_live(txn, delivery.tenant_id, delivery.webhook_id)?;
            let cancelled = delivery.status == DeliveryStatus::Cancelled || webhook.is_none();
            let next = if cancelled {
                Next::GiveUp
            } else {
                let retries = webhook.as_ref().map_or(0, |w| w.retry_attempts);
                next_step(
                    &result,
                    delivery.cycle_attempts,
                    retries,
                    &policy.schedule,
                    now,
                    jitter,
                )
            };
            if cancelled {
                delivery.status = DeliveryStatus::Cancelled;
                reschedule(txn, &mut delivery, None)?;
            } else {
                match &next {
                    Next::Delivered => {
                        delivery.status = DeliveryStatus::Delivered;
                        delivery.delivered_at = Some(now);
                        reschedule(txn, &mut delivery, None)?;
                    }
                    Next::RetryAt(at) => {
                        delivery.status = DeliveryStatus::Pending;
                        reschedule(txn, &mut delivery, Some(*at))?;
                    }
                    Next::GiveUp | Next::Disable(_) => {
                        delivery.status = DeliveryStatus::Failed;
                        reschedule(txn, &mut delivery, None)?;
                    }
                }
            }
            save_delivery(txn, &delivery)?;
            if let Some(mut webhook) = webhook {
                note_health(&mut webhook, &result, &next, &policy, now);
                save_webhook(txn, &webhook)?;
            }
            Ok(next)
        })
    }

    pub fn list_deliveries(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        status: Option<DeliveryStatus>,
        before: Option<DeliveryId>,
        limit: usize,
    ) -> Result<(Vec<Delivery>, Option<DeliveryId>), StoreError> {
        self.read(|txn| {
            live_webhook(txn, tenant, webhook)?;
            let index = txn.open_table(DELIVERIES_BY_WEBHOOK)?;
            let deliveries = txn.open_table(DELIVERIES)?;
            let prefix = webhook.bytes();
            let end = match before {
                Some(id) => key(&[&prefix, &id.bytes()]),
                None => prefix_end(&prefix).unwrap_or_else(|| vec![0xff; 33]),
            };
            let mut page = Vec::new();
            // Newest first: delivery ids are time ordered.
            for entry in index.range(prefix.as_slice()..end.as_slice())?.rev() {
                let (k, _) = entry?;
                let Some(id) = id_at(k.value(), 16) else {
                    continue;
                };
                let Some(delivery) = load::<Delivery>(&deliveries, &id)? else {
                    continue;
                };
                if status.is_some_and(|s| s != delivery.status) {
                    continue;
                }
                page.push(delivery);
                if page.len() > limit {
                    break;
                }
            }
            let more = page.len() > limit;
            page.truncate(limit);
            let next = if more {
                page.last().map(|d| d.id)
            } else {
                None
            };
            Ok((page, next))
        })
    }

    pub fn get_delivery(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        id: DeliveryId,
    ) -> Result<(Delivery, Vec<Attempt>), StoreError> {
        self.read(|txn| {
            live_webhook(txn, tenant, webhook)?;
            let delivery = delivery_of(txn, tenant, webhook, id)?;
            let attempts = records_under(&txn.open_table(ATTEMPTS)?, &id.bytes())?;
            Ok((delivery, attempts))
        })
    }

    /// A fresh attempt cycle for one delivery, keeping its id.
    pub fn redeliver(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        id: DeliveryId,
    ) -> Result<(), StoreError> {
        self.write(move |txn| {
            live_webhook(txn, tenant, webhook)?;
            let mut delivery = delivery_of(txn, tenant, webhook, id)?;
            if delivery.status == DeliveryStatus::Delivering {
                return Err(StoreError::Conflict(format!(
                    "delivery {id} is being attempted right now"
                )));
            }
            requeue(txn, &mut delivery, Timestamp::now())
        })?;
        self.wake_deliveries();
        Ok(())
    }

    /// Requeues the webhook's failed deliveries created at or after `since`.
    pub fn recover(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        since: Timestamp,
    ) -> Result<usize, StoreError> {
        let requeued = self.write(move |txn| {
            live_webhook(txn, tenant, webhook)?;
            let ids = ids_under(&txn.open_table(DELIVERIES_BY_WEBHOOK)?, &webhook.bytes())?;
            let now = Timestamp::now();
            let mut requeued = 0;
            for id in ids {
                let Some(mut delivery) = load::<Delivery>(&txn.open_table(DELIVERIES)?, &id)?
                else {
                    continue;
                };
                if delivery.status == DeliveryStatus::Failed && delivery.created_at >= since {
                    requeue(txn, &mut delivery, now)?;
                    requeued += 1;
                }
            }
            Ok(requeued)
        })?;
        if requeued > 0 {
            self.wake_deliveries();
        }
        Ok(requeued)
    }

    /// Queues a `webhook.test` event for one webhook.
    pub fn queue_test(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
    ) -> Result<DeliveryId, StoreError> {
        let id = self.write(move |txn| {
            let target = live_webhook(txn, tenant, webhook)?;
            if !target.is_active {
                return Err(StoreError::Conflict(format!(
                    "webhook {webhook} is not active; turn it on first"
                )));
            }
            let now = Timestamp::now();
            let event = Event {
                id: EventId::new(),
                tenant_id: tenant,
                event_type: EventType::WebhookTest,
                lead_json: "null".into(),
                changed_fields: None,
                created_at: now,
            };
            insert_event(txn, &event)?;
            queue_delivery(txn, &event, webhook, now)
        })?;
        self.wake_deliveries();
        Ok(id)
    }

    /// Removes finished deliveries (with their attempts) created before `cutoff`, at most
    /// [`PRUNE_BATCH`] per call so the writer is never held long, and the events they leave
    /// behind. Returns how many deliveries went: [`PRUNE_BATCH`] means there may be more.
    pub fn prune_deliveries(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        self.prune_batch(cutoff, PRUNE_BATCH)
    }

    fn prune_batch(&self, cutoff: Timestamp, batch: usize) -> Result<usize, StoreError> {
        self.write(move |txn| {
            let mut deliveries = txn.open_table(DELIVERIES)?;
            let mut attempts = txn.open_table(ATTEMPTS)?;
            let mut by_webhook = txn.open_table(DELIVERIES_BY_WEBHOOK)?;
            let mut events = txn.open_table(EVENTS)?;
            // Deliveries and events share their creation time, so an event older than the
            // last delivery looked at has had all its deliveries looked at: it goes unless one
            // of them is still open.
            let mut horizon = cutoff;
            let mut open_events = HashSet::new();
            let mut doomed: Vec<(Vec<u8>, WebhookId)> = Vec::new();
            for entry in deliveries.iter()? {
                let (k, v) = entry?;
                let delivery: Delivery = decode(v.value())?;
                if delivery.created_at >= cutoff {
                    break;
                }
                if doomed.len() == batch {
                    horizon = delivery.created_at;
                    break;
                }
                if matches!(
                    delivery.status,
                    DeliveryStatus::Pending | DeliveryStatus::Delivering
                ) {
                    open_events.insert(delivery.event_id);
                } else {
                    doomed.push((k.value().to_vec(), delivery.webhook_id));
                }
            }
            for (k, webhook) in &doomed {
                let numbers: Vec<Vec<u8>> = prefixed(&attempts, k)?
                    .map(|e| e.map(|(a, _)| a.value().to_vec()))
                    .collect::<Result<_, _>>()?;
                for a in numbers {
                    attempts.remove(a.as_slice())?;
                }
                by_webhook.remove(key(&[&webhook.bytes(), k]).as_slice())?;
                deliveries.remove(k.as_slice())?;
            }
            let mut stale = Vec::new();
            for entry in events.iter()? {
                let (k, v) = entry?;
                let event: Event = decode(v.value())?;
                if event.created_at >= horizon {
                    break;
                }
                if !open_events.contains(&event.id) {
                    stale.push(k.value().to_vec());
                }
            }
            for k in stale {
                events.remove(k.as_slice())?;
            }
            Ok(doomed.len())
        })
    }
}

/// Keeps the webhook's delivery health current after an attempt.
fn note_health(
    webhook: &mut Webhook,
    result: &AttemptResult,
    next: &Next,
    policy: &RetryPolicy,
    now: Timestamp,
) {
    webhook.last_delivery_at = Some(now);
    webhook.last_delivery_status = result.response_status;
    if result.succeeded() {
        webhook.consecutive_failures = 0;
        webhook.failing_since = None;
        return;
    }
    webhook.consecutive_failures += 1;
    let since = *webhook.failing_since.get_or_insert(result.started_at);
    let reason = match next {
        Next::Disable(reason) => Some(reason.clone()),
        _ if now.ms() - since.ms() >= policy.disable_after_failing_ms => Some(format!(
            "every delivery failed for {} hours",
            policy.disable_after_failing_ms / 3_600_000
        )),
        _ => None,
    };
    if let Some(reason) = reason
        && webhook.is_active
    {
        tracing::warn!(webhook = %webhook.id, %reason, "webhook turned off");
        webhook.is_active = false;
        webhook.disabled_reason = Some(reason);
        webhook.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::webhooks::WebhookSettings;
    use redb::ReadableTableMetadata;

    fn ok_attempt() -> AttemptResult {
        AttemptResult {
            started_at: Timestamp::now(),
            latency_ms: 3,
            response_status: Some(200),
            error: None,
            response_body_excerpt: "ok".into(),
            retry_after_secs: None,
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: vec![1],
            disable_after_failing_ms: 3_600_000,
        }
    }

    /// A store on a temporary file with one tenant and one active webhook.
    fn store_with_webhook() -> (tempfile::TempDir, Store, TenantId, WebhookId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let tenant = store.create_tenant("Acme".into()).unwrap().id;
        let settings = WebhookSettings {
            url: "https://8.8.8.8/hook".into(),
            event_types: vec![EventType::LeadCreated],
            is_active: true,
            timeout_seconds: 5,
            retry_attempts: 1,
            description: None,
        };
        let webhook = store
            .create_webhook(tenant, settings, "mega_whsec_x".into(), 20)
            .unwrap()
            .id;
        (dir, store, tenant, webhook)
    }

    #[test]
    fn claims_lease_deliveries_and_finished_ones_are_pruned_with_their_attempts() {
        let (_dir, store, tenant, webhook) = store_with_webhook();
        let first = store.queue_test(tenant, webhook).unwrap();
        let second = store.queue_test(tenant, webhook).unwrap();

        // One in flight per webhook at most: only the first is claimed.
        let claimed = store.claim_due(10, HashMap::new(), 1).unwrap();
        assert_eq!(
            claimed.iter().map(|c| c.delivery.id).collect::<Vec<_>>(),
            [first]
        );
        assert_eq!(claimed[0].delivery.status, DeliveryStatus::Delivering);
        assert!(
            store
                .claim_due(10, HashMap::from([(webhook, 1)]), 1)
                .unwrap()
                .is_empty()
        );

        // A restart makes the claim due again at once.
        assert_eq!(store.requeue_in_flight().unwrap(), 1);
        let claimed = store.claim_due(10, HashMap::new(), 2).unwrap();
        assert_eq!(claimed.len(), 2);
        for c in &claimed {
            assert_eq!(
                store
                    .record_attempt(c.delivery.id, ok_attempt(), policy(), 0.0)
                    .unwrap(),
                Next::Delivered
            );
        }
        let (delivered, attempts) = store.get_delivery(tenant, webhook, second).unwrap();
        assert_eq!(delivered.status, DeliveryStatus::Delivered);
        assert_eq!(attempts.len(), 1);
        assert_eq!(store.next_due().unwrap(), None);

        assert_eq!(
            store.prune_deliveries(Timestamp::now().plus_ms(1)).unwrap(),
            2
        );
        assert!(matches!(
            store.get_delivery(tenant, webhook, first),
            Err(StoreError::NotFound(_))
        ));
        let (page, _) = store
            .list_deliveries(tenant, webhook, None, None, 10)
            .unwrap();
        assert!(page.is_empty());
        store.shutdown();
    }

    fn event_count(store: &Store) -> u64 {
        store
            .read(|txn| Ok(txn.open_table(EVENTS)?.len()?))
            .unwrap()
    }

    #[test]
    fn pruning_works_through_a_backlog_in_batches_and_keeps_events_still_owed() {
        let (_dir, store, tenant, webhook) = store_with_webhook();
        // The oldest delivery is still owed; five after it are finished.
        let owed = store.queue_test(tenant, webhook).unwrap();
        for _ in 0..5 {
            store.queue_test(tenant, webhook).unwrap();
        }
        let claimed = store.claim_due(10, HashMap::new(), 10).unwrap();
        for c in claimed.iter().filter(|c| c.delivery.id != owed) {
            store
                .record_attempt(c.delivery.id, ok_attempt(), policy(), 0.0)
                .unwrap();
        }
        store.requeue_in_flight().unwrap();
        assert_eq!(event_count(&store), 6);

        // Batches of two: the owed delivery neither counts nor blocks the ones after it.
        let cutoff = Timestamp::now().plus_ms(1);
        assert_eq!(store.prune_batch(cutoff, 2).unwrap(), 2);
        assert_eq!(store.prune_batch(cutoff, 2).unwrap(), 2);
        assert_eq!(store.prune_batch(cutoff, 2).unwrap(), 1);
        assert_eq!(store.prune_batch(cutoff, 2).unwrap(), 0);
        let (page, _) = store
            .list_deliveries(tenant, webhook, None, None, 10)
            .unwrap();
        assert_eq!(page.iter().map(|d| d.id).collect::<Vec<_>>(), [owed]);
        // Only the owed delivery's event is left, and it still goes out.
        assert_eq!(event_count(&store), 1);
        let claimed = store.claim_due(10, HashMap::new(), 10).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].delivery.id, owed);
        store.shutdown();
    }
}
