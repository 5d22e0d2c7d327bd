//! Deliveries and their attempts: the records, the due index the engine leases from, and the
//! moves every delivery makes (queue, reschedule, save, start a fresh cycle, cancel).

use redb::{ReadableTable, ReadableTableMetadata, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::codec::{Record, encode};
use super::tables::*;
use crate::domain::event::EventType;
use crate::domain::ids::{DeliveryId, EventId, TenantId, WebhookId};
use crate::domain::lead::wire_enum;
use crate::domain::retry::AttemptError;
use crate::domain::time::Timestamp;

// Stored by position: new statuses go at the end.
wire_enum!(DeliveryStatus, "status" {
    Pending => "pending",
    Delivering => "delivering",
    Delivered => "delivered",
    Failed => "failed",
    Cancelled => "cancelled",
    Held => "held",
});

impl DeliveryStatus {
    /// Still owed an attempt: waiting for one, or leased to one.
    pub fn is_open(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Delivering)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    /// Attempts made, over every cycle.
    pub attempts: u32,
    /// Attempts made in the current cycle (a redelivery starts a new one).
    pub cycle_attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    pub response_status: Option<u16>,
    pub latency_ms: Option<u32>,
}

impl Record for Delivery {
    const VERSION: u8 = 1;
    const NAME: &'static str = "delivery";
}

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

/// An entry of `deliveries_due`: `(webhook_id, due_at, delivery_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DueKey {
    pub webhook: WebhookId,
    pub at: Timestamp,
    pub delivery: DeliveryId,
}

impl DueKey {
    pub const LEN: usize = 16 + 8 + 16;

    pub fn of(at: Timestamp, delivery: &Delivery) -> DueKey {
        DueKey {
            webhook: delivery.webhook_id,
            at,
            delivery: delivery.id,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        key(&[
            &self.webhook.bytes(),
            &i64_key(self.at.ms()),
            &self.delivery.bytes(),
        ])
    }

    pub fn decode(bytes: &[u8]) -> Option<DueKey> {
        if bytes.len() != Self::LEN {
            return None;
        }
        Some(DueKey {
            webhook: WebhookId::from_bytes(id_at(bytes, 0)?),
            at: Timestamp(i64_from_key(bytes.get(16..)?)?),
            delivery: DeliveryId::from_bytes(id_at(bytes, 24)?),
        })
    }

    /// The first key after every entry of `webhook` due at or before `at`.
    pub fn after(webhook: WebhookId, at: Timestamp) -> Vec<u8> {
        key(&[&webhook.bytes(), &i64_key(at.ms()), &[0xff; 16]])
    }
}

/// An entry of `webhooks_due`: `(due_at, webhook_id)`, the webhook's earliest due delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadyKey {
    pub at: Timestamp,
    pub webhook: WebhookId,
}

impl ReadyKey {
    pub fn encode(&self) -> Vec<u8> {
        key(&[&i64_key(self.at.ms()), &self.webhook.bytes()])
    }

    pub fn decode(bytes: &[u8]) -> Option<ReadyKey> {
        if bytes.len() != 24 {
            return None;
        }
        Some(ReadyKey {
            at: Timestamp(i64_from_key(bytes)?),
            webhook: WebhookId::from_bytes(id_at(bytes, 8)?),
        })
    }

    /// The first key after every webhook whose earliest delivery is due at or before `at`.
    pub fn after(at: Timestamp) -> Vec<u8> {
        key(&[&i64_key(at.ms()), &[0xff; 16]])
    }
}

/// When the webhook's earliest queued delivery is due, if it has one.
fn earliest(
    due: &impl ReadableTable<&'static [u8], ()>,
    webhook: WebhookId,
) -> Result<Option<Timestamp>, StoreError> {
    match prefixed(due, &webhook.bytes())?.next() {
        Some(entry) => Ok(DueKey::decode(entry?.0.value()).map(|k| k.at)),
        None => Ok(None),
    }
}

/// Runs `change` on the webhook's entries in `deliveries_due`, then moves its entry in
/// `webhooks_due` from its earliest due time before to its earliest after (or removes it when
/// nothing of it is queued any more). Every change to `deliveries_due` goes through here.
fn change_due(
    txn: &WriteTransaction,
    webhook: WebhookId,
    tenant: TenantId,
    change: impl FnOnce(&mut Table<&'static [u8], ()>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut due = txn.open_table(DELIVERIES_DUE)?;
    let before = earliest(&due, webhook)?;
    change(&mut due)?;
    let after = earliest(&due, webhook)?;
    if before == after {
        return Ok(());
    }
    let mut ready = txn.open_table(WEBHOOKS_DUE)?;
    if let Some(at) = before {
        ready.remove(ReadyKey { at, webhook }.encode().as_slice())?;
    }
    if let Some(at) = after {
        ready.insert(
            ReadyKey { at, webhook }.encode().as_slice(),
            tenant.bytes().as_slice(),
        )?;
    }
    Ok(())
}

/// The webhooks with a delivery due at or before `now`, soonest first, with their tenants; at
/// most `limit` of them.
pub(crate) fn due_webhooks(
    txn: &impl Txn,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<(WebhookId, TenantId)>, StoreError> {
    let ready = txn.table(WEBHOOKS_DUE)?;
    let end = ReadyKey::after(now);
    let mut found = Vec::new();
    for entry in ready.range::<&[u8]>(..end.as_slice())?.take(limit) {
        let (k, v) = entry?;
        let (Some(key), Ok(tenant)) =
            (ReadyKey::decode(k.value()), <[u8; 16]>::try_from(v.value()))
        else {
            continue;
        };
        found.push((key.webhook, TenantId::from_bytes(tenant)));
    }
    Ok(found)
}

/// Up to `n` of the webhook's due entries at or before `now`, soonest first, leaving out the
/// deliveries `skip` picks.
pub(crate) fn due_deliveries(
    txn: &impl Txn,
    webhook: WebhookId,
    now: Timestamp,
    n: usize,
    skip: impl Fn(DeliveryId) -> bool,
) -> Result<Vec<DueKey>, StoreError> {
    let due = txn.table(DELIVERIES_DUE)?;
    let start = webhook.bytes();
    let end = DueKey::after(webhook, now);
    let mut found = Vec::new();
    for entry in due.range::<&[u8]>(start.as_slice()..end.as_slice())? {
        if found.len() == n {
            break;
        }
        if let Some(key) = DueKey::decode(entry?.0.value())
            && !skip(key.delivery)
        {
            found.push(key);
        }
    }
    Ok(found)
}

/// Removes a due entry whose delivery record is gone, so that it cannot stand first in its
/// webhook's range for ever.
pub(crate) fn drop_orphan(
    txn: &WriteTransaction,
    key: DueKey,
    tenant: TenantId,
) -> Result<(), StoreError> {
    change_due(txn, key.webhook, tenant, |due| {
        due.remove(key.encode().as_slice())?;
        Ok(())
    })
}

/// When the earliest queued delivery of any webhook is due.
pub(crate) fn first_due(txn: &impl Txn) -> Result<Option<Timestamp>, StoreError> {
    let ready = txn.table(WEBHOOKS_DUE)?;
    Ok(ready
        .first()?
        .and_then(|(k, _)| ReadyKey::decode(k.value()))
        .map(|k| k.at))
}

/// Every queued delivery's entry, for a pass over all of them (startup).
pub(crate) fn all_due(txn: &impl Txn) -> Result<Vec<DueKey>, StoreError> {
    let due = txn.table(DELIVERIES_DUE)?;
    let mut keys = Vec::new();
    for entry in due.iter()? {
        keys.extend(DueKey::decode(entry?.0.value()));
    }
    Ok(keys)
}

pub(crate) fn save_delivery(txn: &WriteTransaction, delivery: &Delivery) -> Result<(), StoreError> {
    txn.open_table(DELIVERIES)?
        .insert(delivery.id.bytes().as_slice(), encode(delivery)?.as_slice())?;
    Ok(())
}

pub(crate) fn load_delivery(
    txn: &impl Txn,
    id: DeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    load(&txn.table(DELIVERIES)?, &id.bytes())
}

/// Queues a fresh delivery of an event to a webhook, due now.
pub(crate) fn queue_delivery(
    txn: &WriteTransaction,
    tenant: TenantId,
    event: (EventId, EventType),
    webhook: WebhookId,
    now: Timestamp,
) -> Result<DeliveryId, StoreError> {
    let delivery = new_delivery(tenant, event, webhook, now);
    record_new(txn, &delivery)?;
    change_due(txn, webhook, tenant, |due| {
        due.insert(DueKey::of(now, &delivery).encode().as_slice(), ())?;
        Ok(())
    })?;
    Ok(delivery.id)
}

/// Keeps a fresh delivery of an event for a webhook that is off, until it is turned back on
/// (spec §13): `held`, in no due index.
pub(crate) fn hold_delivery(
    txn: &WriteTransaction,
    tenant: TenantId,
    event: (EventId, EventType),
    webhook: WebhookId,
    now: Timestamp,
) -> Result<DeliveryId, StoreError> {
    let mut delivery = new_delivery(tenant, event, webhook, now);
    delivery.status = DeliveryStatus::Held;
    delivery.next_attempt_at = None;
    record_new(txn, &delivery)?;
    txn.open_table(DELIVERIES_HELD)?.insert(
        key(&[&webhook.bytes(), &delivery.id.bytes()]).as_slice(),
        (),
    )?;
    Ok(delivery.id)
}

/// Holds a queued delivery whose webhook was turned off before its attempt.
pub(crate) fn hold(txn: &WriteTransaction, delivery: &mut Delivery) -> Result<(), StoreError> {
    settle(txn, delivery, DeliveryStatus::Held, None)?;
    txn.open_table(DELIVERIES_HELD)?.insert(
        key(&[&delivery.webhook_id.bytes(), &delivery.id.bytes()]).as_slice(),
        (),
    )?;
    Ok(())
}

/// Holds every delivery of a webhook that waits for an attempt, now that it is off (one being
/// attempted is held when its outcome comes back, if it is to be retried). It reads the
/// webhook's due range, not its whole history. Returns how many.
pub(crate) fn hold_open(txn: &WriteTransaction, webhook: WebhookId) -> Result<usize, StoreError> {
    let keys: Vec<DueKey> = prefixed(&txn.open_table(DELIVERIES_DUE)?, &webhook.bytes())?
        .map(|e| e.map(|(k, _)| DueKey::decode(k.value())))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let mut held = 0;
    for key in keys {
        let Some(mut delivery) = load_delivery(txn, key.delivery)? else {
            continue;
        };
        if delivery.status == DeliveryStatus::Pending {
            hold(txn, &mut delivery)?;
            held += 1;
        }
    }
    Ok(held)
}

/// A delivery owed another attempt: due at `at` if its webhook is on, held if it is off. The
/// one way a delivery becomes owed again (a retry, a lease given back, a redelivery, a
/// recovery), so none of them can queue one for a webhook that is off.
pub(crate) fn due_or_held(
    txn: &WriteTransaction,
    delivery: &mut Delivery,
    webhook_active: bool,
    at: Timestamp,
) -> Result<(), StoreError> {
    match webhook_active {
        true => settle(txn, delivery, DeliveryStatus::Pending, Some(at)),
        false => hold(txn, delivery),
    }
}

/// A fresh attempt cycle for a delivery, due now if its webhook is on, held if it is off.
pub(crate) fn requeue_or_hold(
    txn: &WriteTransaction,
    delivery: &mut Delivery,
    webhook_active: bool,
    now: Timestamp,
) -> Result<(), StoreError> {
    delivery.cycle_attempts = 0;
    due_or_held(txn, delivery, webhook_active, now)
}

/// How many deliveries a webhook holds.
pub(crate) fn held_count(txn: &impl Txn, webhook: WebhookId) -> Result<usize, StoreError> {
    count_under(&txn.table(DELIVERIES_HELD)?, &webhook.bytes())
}

/// Lets a webhook's held deliveries go, oldest first: due now, each a fresh attempt cycle; or
/// cancelled (`discard`). Returns how many.
pub(crate) fn release_held(
    txn: &WriteTransaction,
    webhook: WebhookId,
    now: Timestamp,
    discard: bool,
) -> Result<usize, StoreError> {
    let mut index = txn.open_table(DELIVERIES_HELD)?;
    let ids = ids_under(&index, &webhook.bytes())?;
    let mut released = 0;
    for id in &ids {
        index.remove(key(&[&webhook.bytes(), id]).as_slice())?;
        let Some(mut delivery) = load_delivery(txn, DeliveryId::from_bytes(*id))? else {
            continue;
        };
        if delivery.status != DeliveryStatus::Held {
            continue;
        }
        match discard {
            true => settle(txn, &mut delivery, DeliveryStatus::Cancelled, None)?,
            false => requeue(txn, &mut delivery, now)?,
        }
        released += 1;
    }
    Ok(released)
}

/// Saves a new delivery and puts it in its webhook's log.
fn record_new(txn: &WriteTransaction, delivery: &Delivery) -> Result<(), StoreError> {
    save_delivery(txn, delivery)?;
    txn.open_table(DELIVERIES_BY_WEBHOOK)?.insert(
        key(&[&delivery.webhook_id.bytes(), &delivery.id.bytes()]).as_slice(),
        (),
    )?;
    Ok(())
}

fn new_delivery(
    tenant: TenantId,
    event: (EventId, EventType),
    webhook: WebhookId,
    now: Timestamp,
) -> Delivery {
    Delivery {
        id: DeliveryId::new(),
        tenant_id: tenant,
        webhook_id: webhook,
        event_id: event.0,
        event_type: event.1,
        status: DeliveryStatus::Pending,
        attempts: 0,
        cycle_attempts: 0,
        next_attempt_at: Some(now),
        created_at: now,
        delivered_at: None,
        response_status: None,
        latency_ms: None,
    }
}

/// Moves a delivery's due entry from where it was to `at` (or removes it).
pub(crate) fn reschedule(
    txn: &WriteTransaction,
    delivery: &mut Delivery,
    at: Option<Timestamp>,
) -> Result<(), StoreError> {
    let (old, current) = (delivery.next_attempt_at, &*delivery);
    change_due(txn, current.webhook_id, current.tenant_id, |due| {
        if let Some(old) = old {
            due.remove(DueKey::of(old, current).encode().as_slice())?;
        }
        if let Some(at) = at {
            due.insert(DueKey::of(at, current).encode().as_slice(), ())?;
        }
        Ok(())
    })?;
    delivery.next_attempt_at = at;
    Ok(())
}

/// Sets a delivery's status and when it is next due (never, for a final status), and saves it.
pub(crate) fn settle(
    txn: &WriteTransaction,
    delivery: &mut Delivery,
    status: DeliveryStatus,
    due: Option<Timestamp>,
) -> Result<(), StoreError> {
    delivery.status = status;
    reschedule(txn, delivery, due)?;
    save_delivery(txn, delivery)
}

/// Starts a fresh attempt cycle for a delivery, due now.
pub(crate) fn requeue(
    txn: &WriteTransaction,
    delivery: &mut Delivery,
    now: Timestamp,
) -> Result<(), StoreError> {
    delivery.cycle_attempts = 0;
    settle(txn, delivery, DeliveryStatus::Pending, Some(now))
}

/// The ids of a webhook's deliveries, oldest first.
pub(crate) fn deliveries_of(
    txn: &impl Txn,
    webhook: WebhookId,
) -> Result<Vec<DeliveryId>, StoreError> {
    Ok(
        ids_under(&txn.table(DELIVERIES_BY_WEBHOOK)?, &webhook.bytes())?
            .into_iter()
            .map(DeliveryId::from_bytes)
            .collect(),
    )
}

/// Cancels a webhook's deliveries that are still owed an attempt, held ones included.
pub(crate) fn cancel_open(txn: &WriteTransaction, webhook: WebhookId) -> Result<usize, StoreError> {
    let mut cancelled = release_held(txn, webhook, Timestamp(0), true)?;
    for id in deliveries_of(txn, webhook)? {
        let Some(mut delivery) = load_delivery(txn, id)? else {
            continue;
        };
        if delivery.status.is_open() {
            settle(txn, &mut delivery, DeliveryStatus::Cancelled, None)?;
            cancelled += 1;
        }
    }
    Ok(cancelled)
}

/// The attempts of a delivery, in order.
pub(crate) fn attempts_of(txn: &impl Txn, id: DeliveryId) -> Result<Vec<Attempt>, StoreError> {
    records_under(&txn.table(ATTEMPTS)?, &id.bytes())
}

pub(crate) fn insert_attempt(
    txn: &WriteTransaction,
    delivery: DeliveryId,
    attempt: &Attempt,
) -> Result<(), StoreError> {
    txn.open_table(ATTEMPTS)?.insert(
        key(&[&delivery.bytes(), &attempt.number.to_be_bytes()]).as_slice(),
        encode(attempt)?.as_slice(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_round_trip_and_sort_by_webhook_then_time() {
        let webhook = WebhookId::from_bytes([1; 16]);
        let early = DueKey {
            webhook,
            at: Timestamp(-5),
            delivery: DeliveryId::from_bytes([0xff; 16]),
        };
        let late = DueKey {
            webhook,
            at: Timestamp(1_780_000_000_000),
            delivery: DeliveryId::from_bytes([0; 16]),
        };
        let other = DueKey {
            webhook: WebhookId::from_bytes([2; 16]),
            at: Timestamp(-9),
            delivery: DeliveryId::from_bytes([0; 16]),
        };
        for k in [early, late, other] {
            assert_eq!(DueKey::decode(&k.encode()), Some(k));
        }
        assert!(early.encode() < late.encode());
        assert!(
            late.encode() < other.encode(),
            "one webhook's entries are one range"
        );
        assert!(late.encode() < DueKey::after(webhook, late.at));
        assert!(DueKey::after(webhook, early.at) < late.encode());
        assert_eq!(DueKey::decode(&late.encode()[1..]), None);

        let soon = ReadyKey {
            at: Timestamp(5),
            webhook: other.webhook,
        };
        let later = ReadyKey {
            at: Timestamp(6),
            webhook,
        };
        assert_eq!(ReadyKey::decode(&soon.encode()), Some(soon));
        assert!(
            soon.encode() < later.encode(),
            "ready webhooks sort by time"
        );
        assert!(later.encode() < ReadyKey::after(later.at));
    }
}

/// The delivery queue as `/metrics` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueGauges {
    pub due: u64,
    pub held: u64,
    /// How long the earliest due delivery has been due; 0 when none is due yet.
    pub oldest_due_seconds: f64,
}

impl QueueGauges {
    /// `first`: when the earliest due delivery is due, if any is.
    fn new(due: u64, held: u64, first: Option<Timestamp>, now: Timestamp) -> QueueGauges {
        let age_ms = |at: Timestamp| (now.ms() - at.ms()).max(0) as f64;
        QueueGauges {
            due,
            held,
            oldest_due_seconds: first.map_or(0.0, |at| age_ms(at) / 1000.0),
        }
    }
}

impl super::Store {
    /// Counts the due and held indexes (their size is the backlog, not the history) and reads
    /// the earliest due time.
    pub fn queue_gauges(&self) -> Result<QueueGauges, StoreError> {
        let now = self.now();
        self.read(|txn| {
            let due = txn.open_table(DELIVERIES_DUE)?.len()?;
            let held = txn.open_table(DELIVERIES_HELD)?.len()?;
            Ok(QueueGauges::new(due, held, first_due(txn)?, now))
        })
    }

    /// [`Store::queue_gauges`] for one tenant: its webhooks' ranges of the due and held
    /// indexes, counted (the backlog of one tenant, read when the admin page asks).
    pub fn tenant_queue_gauges(&self, tenant: TenantId) -> Result<QueueGauges, StoreError> {
        let now = self.now();
        self.read(|txn| {
            let (due_table, held_table) = (txn.table(DELIVERIES_DUE)?, txn.table(DELIVERIES_HELD)?);
            let (mut due, mut held, mut first) = (0, 0, None::<Timestamp>);
            for webhook in super::webhooks::tenant_webhooks(txn, tenant)? {
                due += count_under(&due_table, &webhook.id.bytes())? as u64;
                held += count_under(&held_table, &webhook.id.bytes())? as u64;
                if let Some(at) = earliest(&due_table, webhook.id)? {
                    first = Some(first.map_or(at, |f| f.min(at)));
                }
            }
            Ok(QueueGauges::new(due, held, first, now))
        })
    }
}
