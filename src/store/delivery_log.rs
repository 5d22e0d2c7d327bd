//! The delivery log as the API shows it: listing a webhook's deliveries, one delivery with its
//! attempts, redelivery and recovery, test events, and pruning what is old and finished.

use std::collections::HashMap;

use redb::{ReadableTable, WriteTransaction};

use super::codec::decode;
use super::delivery_queue::{
    Attempt, Delivery, DeliveryStatus, attempts_of, deliveries_of, load_delivery, queue_delivery,
    requeue_or_hold,
};
use super::event_log::deliveries_pruned;
use super::outbox::{Event, EventData, insert_event, load_event};
use super::tables::*;
use super::webhooks::require_webhook;
use super::{PRUNE_BATCH, Store, StoreError};
use crate::domain::event::EventType;
use crate::domain::ids::{DeliveryId, EventId, TenantId, WebhookId};
use crate::domain::time::Timestamp;

fn delivery_of(
    txn: &impl Txn,
    tenant: TenantId,
    webhook: WebhookId,
    id: DeliveryId,
) -> Result<Delivery, StoreError> {
    load_delivery(txn, id)?
        .filter(|d| d.tenant_id == tenant && d.webhook_id == webhook)
        .ok_or_else(|| StoreError::NotFound(format!("delivery {id} not found")))
}

/// Which deliveries of a webhook a listing or a recovery is about; `None` is any.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Any of these statuses (empty: any).
    pub statuses: Vec<DeliveryStatus>,
    /// Any of these event types (empty: any).
    pub events: Vec<EventType>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    pub response_status: Option<u16>,
}

impl DeliveryFilter {
    fn matches(&self, d: &Delivery) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&d.status))
            && (self.events.is_empty() || self.events.contains(&d.event_type))
            && self.since.is_none_or(|t| d.created_at >= t)
            && self.until.is_none_or(|t| d.created_at < t)
            && self
                .response_status
                .is_none_or(|s| d.response_status == Some(s))
    }
}

impl Store {
    pub fn list_deliveries(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        filter: DeliveryFilter,
        before: Option<DeliveryId>,
        limit: usize,
    ) -> Result<(Vec<Delivery>, Option<DeliveryId>), StoreError> {
        self.read(|txn| {
            require_webhook(txn, tenant, webhook)?;
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
                if !filter.matches(&delivery) {
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
            require_webhook(txn, tenant, webhook)?;
            let delivery = delivery_of(txn, tenant, webhook, id)?;
            let attempts = attempts_of(txn, id)?;
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
        self.write_now(move |txn, now| {
            let active = require_webhook(txn, tenant, webhook)?.is_active;
            let mut delivery = delivery_of(txn, tenant, webhook, id)?;
            if delivery.status == DeliveryStatus::Delivering {
                return Err(StoreError::Conflict(format!(
                    "delivery {id} is being attempted right now"
                )));
            }
            if delivery.status == DeliveryStatus::Held {
                return Err(StoreError::Conflict(format!(
                    "delivery {id} is held while its webhook is off; turning the webhook on sends it"
                )));
            }
            requeue_or_hold(txn, &mut delivery, active, now)
        })?;
        self.wake_deliveries();
        Ok(())
    }

    /// Requeues the webhook's deliveries that `filter` picks (its statuses: failed and
    /// cancelled ones only), or with `dry_run` counts them and changes nothing.
    pub fn recover(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        filter: DeliveryFilter,
        dry_run: bool,
    ) -> Result<usize, StoreError> {
        let recover = move |txn: &WriteTransaction, now: Timestamp| {
            let active = require_webhook(txn, tenant, webhook)?.is_active;
            let mut picked = 0;
            for id in deliveries_of(txn, webhook)? {
                let Some(mut delivery) = load_delivery(txn, id)? else {
                    continue;
                };
                if filter.matches(&delivery) {
                    if !dry_run {
                        // A webhook that is off holds what is recovered for it.
                        requeue_or_hold(txn, &mut delivery, active, now)?;
                    }
                    picked += 1;
                }
            }
            Ok(picked)
        };
        if dry_run {
            // The same walk in a transaction that is thrown away: the count is exactly what a
            // real recovery would requeue.
            let clock = self.clock();
            return self.write_discarded(move |txn| recover(txn, clock.now()));
        }
        let requeued = self.write_now(recover)?;
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
        let id = self.write_now(move |txn, now| {
            let target = require_webhook(txn, tenant, webhook)?;
            if !target.is_active {
                return Err(StoreError::Conflict(format!(
                    "webhook {webhook} is not active; turn it on first"
                )));
            }
            // Not in the event log: a test is between the operator and one receiver.
            let event = Event {
                id: EventId::new(),
                tenant_id: tenant,
                event_type: EventType::WebhookTest,
                seq: None,
                lead_id: None,
                data: EventData::Members(r#"{"lead":null}"#.into()),
                occurred_at: now,
                deliveries: 1,
            };
            insert_event(txn, &event)?;
            queue_delivery(txn, tenant, (event.id, event.event_type), webhook, now)
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
            let mut doomed: Vec<(Vec<u8>, WebhookId, EventId)> = Vec::new();
            let mut held = Vec::new();
            {
                let deliveries = txn.open_table(DELIVERIES)?;
                for entry in deliveries.iter()? {
                    let (k, v) = entry?;
                    let delivery: Delivery = decode(v.value())?;
                    if delivery.created_at >= cutoff || doomed.len() == batch {
                        break;
                    }
                    // Still owed an attempt: kept, whatever its age.
                    if !delivery.status.is_open() {
                        if delivery.status == DeliveryStatus::Held {
                            held.push(key(&[&delivery.webhook_id.bytes(), k.value()]));
                        }
                        doomed.push((k.value().to_vec(), delivery.webhook_id, delivery.event_id));
                    }
                }
            }
            let mut deliveries = txn.open_table(DELIVERIES)?;
            let mut attempts = txn.open_table(ATTEMPTS)?;
            let mut by_webhook = txn.open_table(DELIVERIES_BY_WEBHOOK)?;
            let mut held_index = txn.open_table(DELIVERIES_HELD)?;
            for k in &held {
                held_index.remove(k.as_slice())?;
            }
            for (k, webhook, _) in &doomed {
                let numbers: Vec<Vec<u8>> = prefixed(&attempts, k)?
                    .map(|e| e.map(|(a, _)| a.value().to_vec()))
                    .collect::<Result<_, _>>()?;
                for a in numbers {
                    attempts.remove(a.as_slice())?;
                }
                by_webhook.remove(key(&[&webhook.bytes(), k]).as_slice())?;
                deliveries.remove(k.as_slice())?;
            }
            // Each event counts its deliveries down, once per batch; it goes with its last one
            // unless the event log still shows it (the log's own pruning removes it then).
            let mut per_event: HashMap<EventId, u32> = HashMap::new();
            for (_, _, event) in &doomed {
                *per_event.entry(*event).or_default() += 1;
            }
            for (event, pruned) in per_event {
                if let Some(mut event) = load_event(txn, event)? {
                    deliveries_pruned(txn, &mut event, pruned)?;
                }
            }
            Ok(doomed.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::retry::{AttemptResult, Next, RetryPolicy};
    use crate::store::dispatch::{Everything, LeasePlan};
    use crate::store::testing::{store_with_tenant, webhook_settings};
    use redb::ReadableTableMetadata;

    fn ok_attempt() -> AttemptResult {
        AttemptResult {
            started_at: Timestamp(1_780_000_000_000),
            latency_ms: 3,
            response_status: Some(200),
            error: None,
            response_body_excerpt: "ok".into(),
            retry_after_secs: None,
        }
    }

    /// Room for `n` deliveries of every webhook but `full`, which has none.
    struct PerWebhook {
        n: usize,
        full: Option<WebhookId>,
    }

    impl LeasePlan for PerWebhook {
        fn room(&self, webhook: WebhookId, _: TenantId, _: usize) -> usize {
            if self.full == Some(webhook) {
                0
            } else {
                self.n
            }
        }

        fn holds(&self, _: DeliveryId) -> bool {
            false
        }
    }

    fn per_webhook(n: usize) -> PerWebhook {
        PerWebhook { n, full: None }
    }

    fn policy() -> Arc<RetryPolicy> {
        Arc::new(RetryPolicy {
            schedule: vec![1],
            disable_after_failing_ms: 3_600_000,
        })
    }

    /// A store on a temporary file with one tenant and one active webhook.
    fn store_with_webhook() -> (tempfile::TempDir, Store, TenantId, WebhookId) {
        let (dir, store, tenant) = store_with_tenant();
        let settings = webhook_settings();
        let webhook = store
            .create_webhook(tenant, settings, "mega_whsec_x".into(), 20)
            .unwrap()
            .id;
        (dir, store, tenant, webhook)
    }

    #[test]
    fn held_deliveries_are_pruned_with_their_index_entry_after_the_retention() {
        let (_dir, store, tenant, webhook) = store_with_webhook();
        store
            .write_now(move |txn, now| {
                crate::store::delivery_queue::hold_delivery(
                    txn,
                    tenant,
                    (EventId::new(), EventType::LeadCreated),
                    webhook,
                    now,
                )
            })
            .unwrap();
        assert_eq!(store.held_count(webhook).unwrap(), 1);
        let before = store.now().plus_ms(-60_000);
        assert_eq!(store.prune_batch(before, 10).unwrap(), 0, "not old yet");
        let after = store.now().plus_ms(1_000);
        assert_eq!(store.prune_batch(after, 10).unwrap(), 1);
        assert_eq!(
            store.held_count(webhook).unwrap(),
            0,
            "its held entry went with it"
        );
        let (page, _) = store
            .list_deliveries(tenant, webhook, DeliveryFilter::default(), None, 10)
            .unwrap();
        assert!(page.is_empty());
        store.shutdown();
    }

    #[test]
    fn leased_deliveries_are_due_again_after_a_restart_and_finished_ones_are_pruned() {
        let (_dir, store, tenant, webhook) = store_with_webhook();
        let first = store.queue_test(tenant, webhook).unwrap();
        let second = store.queue_test(tenant, webhook).unwrap();

        // One in flight per webhook at most: only the first is leased.
        let claimed = store.lease_due(10, &per_webhook(1)).unwrap();
        assert_eq!(
            claimed.iter().map(|c| c.delivery.id).collect::<Vec<_>>(),
            [first]
        );
        assert_eq!(claimed[0].delivery.status, DeliveryStatus::Delivering);
        assert!(
            store
                .lease_due(
                    10,
                    &PerWebhook {
                        n: 1,
                        full: Some(webhook)
                    }
                )
                .unwrap()
                .is_empty()
        );

        // A restart makes the lease due again at once.
        assert_eq!(store.requeue_in_flight().unwrap(), 1);
        let claimed = store.lease_due(10, &per_webhook(2)).unwrap();
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

        assert_eq!(store.prune_deliveries(store.now().plus_ms(1)).unwrap(), 2);
        assert!(matches!(
            store.get_delivery(tenant, webhook, first),
            Err(StoreError::NotFound(_))
        ));
        let (page, _) = store
            .list_deliveries(tenant, webhook, DeliveryFilter::default(), None, 10)
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
        let claimed = store.lease_due(10, &Everything).unwrap();
        for c in claimed.iter().filter(|c| c.delivery.id != owed) {
            store
                .record_attempt(c.delivery.id, ok_attempt(), policy(), 0.0)
                .unwrap();
        }
        store.requeue_in_flight().unwrap();
        assert_eq!(event_count(&store), 6);

        // Batches of two: the owed delivery neither counts nor blocks the ones after it.
        let cutoff = store.now().plus_ms(1);
        assert_eq!(store.prune_batch(cutoff, 2).unwrap(), 2);
        assert_eq!(store.prune_batch(cutoff, 2).unwrap(), 2);
        assert_eq!(store.prune_batch(cutoff, 2).unwrap(), 1);
        assert_eq!(store.prune_batch(cutoff, 2).unwrap(), 0);
        let (page, _) = store
            .list_deliveries(tenant, webhook, DeliveryFilter::default(), None, 10)
            .unwrap();
        assert_eq!(page.iter().map(|d| d.id).collect::<Vec<_>>(), [owed]);
        // Only the owed delivery's event is left, and it still goes out.
        assert_eq!(event_count(&store), 1);
        let claimed = store.lease_due(10, &Everything).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].delivery.id, owed);
        store.shutdown();
    }
}
