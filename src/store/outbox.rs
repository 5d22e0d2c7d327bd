//! The transactional outbox: events, and one delivery per subscribed webhook, written in the
//! same transaction as the change they describe.

use redb::WriteTransaction;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::codec::{Record, encode};
use super::tables::*;
use super::webhooks::Webhook;
use crate::domain::event::EventType;
use crate::domain::ids::{DeliveryId, EventId, TenantId, WebhookId};
use crate::domain::lead::wire_enum;
use crate::domain::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub event_type: EventType,
    /// The payload's `lead` object as JSON text (`null` for `webhook.test`), as it was when the
    /// event happened.
    pub lead_json: String,
    pub changed_fields: Option<Vec<String>>,
    pub created_at: Timestamp,
}

impl Record for Event {
    const VERSION: u8 = 1;
    const NAME: &'static str = "event";
}

wire_enum!(DeliveryStatus, "status" {
    Pending => "pending",
    Delivering => "delivering",
    Delivered => "delivered",
    Failed => "failed",
    Cancelled => "cancelled",
});

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

pub(crate) fn due_key(at: Timestamp, delivery: &Delivery) -> Vec<u8> {
    key(&[
        &i64_key(at.ms()),
        &delivery.id.bytes(),
        &delivery.webhook_id.bytes(),
    ])
}

/// Queues a fresh delivery of `event` to `webhook`, due now.
pub(crate) fn queue_delivery(
    txn: &WriteTransaction,
    event: &Event,
    webhook: WebhookId,
    now: Timestamp,
) -> Result<DeliveryId, StoreError> {
    let delivery = Delivery {
        id: DeliveryId::new(),
        tenant_id: event.tenant_id,
        webhook_id: webhook,
        event_id: event.id,
        event_type: event.event_type,
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
    txn.open_table(DELIVERIES)?
        .insert(id.as_slice(), encode(&delivery)?.as_slice())?;
    txn.open_table(DELIVERIES_BY_WEBHOOK)?
        .insert(key(&[&webhook.bytes(), &id]).as_slice(), ())?;
    txn.open_table(DELIVERIES_DUE)?
        .insert(due_key(now, &delivery).as_slice(), ())?;
    Ok(delivery.id)
}

pub(crate) fn insert_event(txn: &WriteTransaction, event: &Event) -> Result<(), StoreError> {
    txn.open_table(EVENTS)?
        .insert(event.id.bytes().as_slice(), encode(event)?.as_slice())?;
    Ok(())
}

/// Records an event and queues it for every webhook of the tenant that receives its type.
/// Returns how many deliveries were queued (the caller wakes the workers when there are any).
pub(crate) fn publish(
    txn: &WriteTransaction,
    tenant: TenantId,
    event_type: EventType,
    lead_json: String,
    changed_fields: Option<Vec<String>>,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let webhooks: Vec<Webhook> = records_under(&txn.open_table(WEBHOOKS)?, &tenant.bytes())?;
    let receivers: Vec<WebhookId> = webhooks
        .iter()
        .filter(|w| w.receives(event_type))
        .map(|w| w.id)
        .collect();
    if receivers.is_empty() {
        return Ok(0);
    }
    let event = Event {
        id: EventId::new(),
        tenant_id: tenant,
        event_type,
        lead_json,
        changed_fields,
        created_at: now,
    };
    insert_event(txn, &event)?;
    for webhook in &receivers {
        queue_delivery(txn, &event, *webhook, now)?;
    }
    Ok(receivers.len())
}
