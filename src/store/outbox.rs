//! The transactional outbox: an event, and one delivery per subscribed webhook, written in the
//! same transaction as the change they describe.

use redb::WriteTransaction;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::codec::{Record, encode};
use super::delivery_queue::queue_delivery;
use super::tables::*;
use super::webhooks::tenant_webhooks;
use crate::domain::event::EventType;
use crate::domain::ids::{EventId, TenantId, WebhookId};
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

pub(crate) fn insert_event(txn: &WriteTransaction, event: &Event) -> Result<(), StoreError> {
    txn.open_table(EVENTS)?
        .insert(event.id.bytes().as_slice(), encode(event)?.as_slice())?;
    Ok(())
}

pub(crate) fn load_event(txn: &impl Txn, id: EventId) -> Result<Option<Event>, StoreError> {
    load(&txn.table(EVENTS)?, &id.bytes())
}

/// Records an event and queues it for every webhook of the tenant that receives its type.
/// Returns how many deliveries were queued (the caller wakes the engine when there are any).
pub(crate) fn publish(
    txn: &WriteTransaction,
    tenant: TenantId,
    event_type: EventType,
    lead_json: String,
    changed_fields: Option<Vec<String>>,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let receivers: Vec<WebhookId> = tenant_webhooks(txn, tenant)?
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
        queue_delivery(txn, tenant, (event.id, event.event_type), *webhook, now)?;
    }
    Ok(receivers.len())
}
