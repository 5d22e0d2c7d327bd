//! Deliveries and their attempts: the records, the due index the engine leases from, and the
//! moves every delivery makes (queue, reschedule, save, start a fresh cycle, cancel).

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::codec::{Record, encode};
use super::tables::*;
use crate::domain::event::EventType;
use crate::domain::ids::{DeliveryId, EventId, TenantId, WebhookId};
use crate::domain::lead::wire_enum;
use crate::domain::retry::AttemptError;
use crate::domain::time::Timestamp;

wire_enum!(DeliveryStatus, "status" {
    Pending => "pending",
    Delivering => "delivering",
    Delivered => "delivered",
    Failed => "failed",
    Cancelled => "cancelled",
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

/// An entry of `deliveries_due`: `(due_at, delivery_id, webhook_id)`. The webhook in the key
/// lets a lease skip busy webhooks without reading their deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DueKey {
    pub at: Timestamp,
    pub delivery: DeliveryId,
    pub webhook: WebhookId,
}

impl DueKey {
    pub const LEN: usize = 8 + 16 + 16;

    pub fn of(at: Timestamp, delivery: &Delivery) -> DueKey {
        DueKey {
            at,
            delivery: delivery.id,
            webhook: delivery.webhook_id,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        key(&[
            &i64_key(self.at.ms()),
            &self.delivery.bytes(),
            &self.webhook.bytes(),
        ])
    }

    pub fn decode(bytes: &[u8]) -> Option<DueKey> {
        if bytes.len() != Self::LEN {
            return None;
        }
        Some(DueKey {
            at: Timestamp(i64_from_key(bytes)?),
            delivery: DeliveryId::from_bytes(id_at(bytes, 8)?),
            webhook: WebhookId::from_bytes(id_at(bytes, 24)?),
        })
    }

    /// The first key after every entry due at or before `at`.
    pub fn after(at: Timestamp) -> Vec<u8> {
        key(&[&i64_key(at.ms()), &[0xff; 32]])
    }
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
    let delivery = Delivery {
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
    };
    let id = delivery.id.bytes();
    save_delivery(txn, &delivery)?;
    txn.open_table(DELIVERIES_BY_WEBHOOK)?
        .insert(key(&[&webhook.bytes(), &id]).as_slice(), ())?;
    txn.open_table(DELIVERIES_DUE)?
        .insert(DueKey::of(now, &delivery).encode().as_slice(), ())?;
    Ok(delivery.id)
}

/// Moves a delivery's due entry from where it was to `at` (or removes it).
pub(crate) fn reschedule(
    txn: &WriteTransaction,
    delivery: &mut Delivery,
    at: Option<Timestamp>,
) -> Result<(), StoreError> {
    let mut due = txn.open_table(DELIVERIES_DUE)?;
    if let Some(old) = delivery.next_attempt_at {
        due.remove(DueKey::of(old, delivery).encode().as_slice())?;
    }
    if let Some(at) = at {
        due.insert(DueKey::of(at, delivery).encode().as_slice(), ())?;
    }
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

/// Cancels a webhook's deliveries that are still owed an attempt.
pub(crate) fn cancel_open(txn: &WriteTransaction, webhook: WebhookId) -> Result<usize, StoreError> {
    let mut cancelled = 0;
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

/// The first entry of the due index.
pub(crate) fn first_due(
    due: &impl ReadableTable<&'static [u8], ()>,
) -> Result<Option<DueKey>, StoreError> {
    Ok(due.first()?.and_then(|(k, _)| DueKey::decode(k.value())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_round_trip_and_sort_by_time() {
        let early = DueKey {
            at: Timestamp(-5),
            delivery: DeliveryId::from_bytes([0xff; 16]),
            webhook: WebhookId::from_bytes([1; 16]),
        };
        let late = DueKey {
            at: Timestamp(1_780_000_000_000),
            delivery: DeliveryId::from_bytes([0; 16]),
            webhook: WebhookId::from_bytes([2; 16]),
        };
        assert_eq!(DueKey::decode(&early.encode()), Some(early));
        assert_eq!(DueKey::decode(&late.encode()), Some(late));
        assert!(early.encode() < late.encode());
        assert!(late.encode() < DueKey::after(late.at));
        assert!(DueKey::after(early.at) < late.encode());
        assert_eq!(DueKey::decode(&late.encode()[1..]), None);
    }
}
