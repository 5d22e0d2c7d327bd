//! The transactional outbox: an event, its place in the tenant's event log, and one delivery per
//! subscribed webhook, written in the same transaction as the change they describe.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::StoreError;
use super::codec::{Record, encode};
use super::delivery_queue::{hold_delivery, queue_delivery};
use super::lead_record::LeadSnapshot;
use super::stats::Counted;
use super::tables::*;
use super::webhooks::tenant_webhooks;
use crate::domain::event::{EventType, envelope};
use crate::domain::ids::{EventId, LeadId, TenantId, WebhookId};
use crate::domain::time::Timestamp;
use crate::domain::webhook::Webhook;
use crate::domain::webhook_controls::EventFacts;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub event_type: EventType,
    /// Its number in the event log; `None` for what the log does not hold (`webhook.test`, and
    /// events written before schema 4).
    pub seq: Option<u64>,
    /// The lead it is about, for the log's `lead_id` filter.
    pub lead_id: Option<LeadId>,
    /// The event's own members, as they were when it happened. [`Event::body`] renders them in
    /// the envelope.
    pub data: EventData,
    /// When the change it describes was committed.
    pub occurred_at: Timestamp,
    /// Deliveries of it not yet pruned. The record goes when none are left and the log no
    /// longer holds it, whichever of the two prunes comes last.
    pub deliveries: u32,
}

/// What an event says beyond its envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventData {
    /// A lead event: the lead as a record (rendered as JSON when the event is sent or listed,
    /// not by the writer), and the other members as a JSON object's text: `{}`, or
    /// `changed_fields` and `previous` for an update.
    Lead {
        lead: Box<LeadSnapshot>,
        members: String,
    },
    /// Any other event (and one written before schema 4): its members as a JSON object's text.
    Members(String),
}

impl EventData {
    /// The members as a JSON object's text.
    pub fn render(&self) -> String {
        match self {
            EventData::Members(members) => members.clone(),
            EventData::Lead { lead, members } => {
                let lead = lead.payload().to_string();
                let rest = members.trim().strip_prefix('{').unwrap_or("}").trim_start();
                let sep = if rest.starts_with('}') { "" } else { "," };
                format!("{{\"lead\":{lead}{sep}{rest}")
            }
        }
    }
}

impl Record for Event {
    const VERSION: u8 = 2;
    const NAME: &'static str = "event";

    /// Format 1 kept the lead snapshot and `changed_fields` apart and was never in a log.
    /// Schema 4's migration counts the deliveries and rewrites every event in format 2.
    fn upgrade(version: u8, bytes: &[u8]) -> Result<Self, StoreError> {
        #[derive(Deserialize)]
        struct EventV1 {
            id: EventId,
            tenant_id: TenantId,
            event_type: EventType,
            lead_json: String,
            changed_fields: Option<Vec<String>>,
            created_at: Timestamp,
        }
        if version != 1 {
            return Err(StoreError::Corrupt(format!(
                "event record has format version {version}, this leadbase reads up to {}",
                Self::VERSION
            )));
        }
        let v1: EventV1 = postcard::from_bytes(bytes)
            .map_err(|e| StoreError::Corrupt(format!("cannot decode event record (v1): {e}")))?;
        let lead: Value = serde_json::from_str(&v1.lead_json).unwrap_or(Value::Null);
        let lead_id = lead
            .get("id")
            .and_then(Value::as_str)
            .and_then(LeadId::parse);
        let mut data = serde_json::Map::new();
        data.insert("lead".into(), lead);
        if let Some(changed) = v1.changed_fields {
            data.insert("changed_fields".into(), changed.into());
        }
        Ok(Event {
            id: v1.id,
            tenant_id: v1.tenant_id,
            event_type: v1.event_type,
            seq: None,
            lead_id,
            data: EventData::Members(Value::Object(data).to_string()),
            occurred_at: v1.created_at,
            deliveries: 0,
        })
    }
}

impl Event {
    /// The JSON a receiver gets: the envelope with `delivered_at` for a delivery attempt, or
    /// without it for the event log's `data`.
    pub fn body(&self, delivered_at: Option<Timestamp>) -> String {
        envelope(
            self.event_type,
            self.id,
            self.occurred_at,
            delivered_at,
            &self.data.render(),
        )
    }
}

const SEQ_KEY: &str = "event_seq";

/// The next event log number, taken inside the writing transaction.
pub(crate) fn next_seq(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(META)?;
    let last = read_seq(&meta)?;
    meta.insert(SEQ_KEY, (last + 1).to_be_bytes().as_slice())?;
    Ok(last + 1)
}

pub(crate) fn read_seq(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<u64, StoreError> {
    Ok(meta
        .get(SEQ_KEY)?
        .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
        .map_or(0, u64::from_be_bytes))
}

pub(crate) fn log_key(tenant: TenantId, seq: u64) -> Vec<u8> {
    key(&[&tenant.bytes(), &seq.to_be_bytes()])
}

pub(crate) fn lead_log_key(tenant: TenantId, lead: LeadId, seq: u64) -> Vec<u8> {
    key(&[&tenant.bytes(), &lead.bytes(), &seq.to_be_bytes()])
}

/// A log entry's value: what a page filters on without loading the event.
pub(crate) struct Entry {
    pub event: EventId,
    pub occurred_at: Timestamp,
    pub event_type: Option<EventType>,
}

impl Entry {
    const LEN: usize = 16 + 8 + 1;

    fn encode(event: &Event) -> Vec<u8> {
        key(&[
            &event.id.bytes(),
            &i64_key(event.occurred_at.ms()),
            &[event.event_type.code()],
        ])
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, StoreError> {
        if bytes.len() != Entry::LEN {
            return Err(StoreError::Corrupt(
                "event log entry of the wrong size".into(),
            ));
        }
        Ok(Entry {
            event: EventId::from_bytes(id_at(bytes, 0).expect("length checked")),
            occurred_at: Timestamp(i64_from_key(&bytes[16..24]).expect("length checked")),
            event_type: EventType::from_code(bytes[24]),
        })
    }
}

pub(crate) fn seq_at(k: &[u8], offset: usize) -> Result<u64, StoreError> {
    k.get(offset..offset + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt("event log key of the wrong size".into()))
}

/// Puts a published event in its tenant's log.
pub(crate) fn log_event(txn: &WriteTransaction, event: &Event) -> Result<(), StoreError> {
    let Some(seq) = event.seq else {
        return Ok(());
    };
    txn.open_table(EVENT_LOG)?.insert(
        log_key(event.tenant_id, seq).as_slice(),
        Entry::encode(event).as_slice(),
    )?;
    index_by_lead(txn, event)
}

/// Puts a lead's event, numbered, in the lead's index ([`EVENTS_BY_LEAD`]).
pub(crate) fn index_by_lead(txn: &WriteTransaction, event: &Event) -> Result<(), StoreError> {
    if let (Some(lead), Some(seq)) = (event.lead_id, event.seq) {
        txn.open_table(EVENTS_BY_LEAD)?.insert(
            lead_log_key(event.tenant_id, lead, seq).as_slice(),
            event.id.bytes().as_slice(),
        )?;
    }
    Ok(())
}

pub(crate) fn insert_event(txn: &WriteTransaction, event: &Event) -> Result<(), StoreError> {
    txn.open_table(EVENTS)?
        .insert(event.id.bytes().as_slice(), encode(event)?.as_slice())?;
    Ok(())
}

pub(crate) fn load_event(txn: &impl Txn, id: EventId) -> Result<Option<Event>, StoreError> {
    load(&txn.table(EVENTS)?, &id.bytes())
}

/// An event to publish: its type, what it is about and its own members.
pub(crate) struct NewEvent {
    pub event_type: EventType,
    pub lead_id: Option<LeadId>,
    pub data: EventData,
    /// A `lead.updated`'s changed fields, for the webhooks' filters.
    pub changed_fields: Option<Vec<String>>,
    /// The webhook an operational event is about: it is never sent to that one.
    pub about: Option<WebhookId>,
}

/// Records an event in the tenant's log, and gives it to every other webhook of the tenant
/// that subscribes to its type and whose filter lets it through: queued for the active ones,
/// held for those turned off (spec §13). Returns how many deliveries were queued (the caller
/// wakes the engine when there are any).
pub(crate) fn publish(
    txn: &WriteTransaction,
    tenant: TenantId,
    new: NewEvent,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let webhooks = tenant_webhooks(txn, tenant)?;
    let lead_line = match &new.data {
        EventData::Lead { lead, .. } if webhooks.iter().any(|w| w.filter.is_some()) => {
            lead.lead.lead_line().ok().flatten()
        }
        _ => None,
    };
    let facts = match &new.data {
        EventData::Lead { lead, .. } => Some(EventFacts {
            source_platform: lead.lead.source_platform,
            source_type: lead.lead.source_type,
            lead_line: lead_line.as_deref(),
            stage_slug: &lead.stage_slug,
            status: lead.lead.status,
            changed_fields: new.changed_fields.as_deref(),
        }),
        EventData::Members(_) => None,
    };
    let (receivers, holders): (Vec<&Webhook>, Vec<&Webhook>) = webhooks
        .iter()
        .filter(|w| w.subscribes(new.event_type) && Some(w.id) != new.about)
        .filter(|w| w.admits(facts.as_ref()))
        .partition(|w| w.is_active);
    let event = Event {
        id: EventId::new(),
        tenant_id: tenant,
        event_type: new.event_type,
        seq: Some(next_seq(txn)?),
        lead_id: new.lead_id,
        data: new.data,
        occurred_at: now,
        deliveries: u32::try_from(receivers.len() + holders.len()).unwrap_or(u32::MAX),
    };
    insert_event(txn, &event)?;
    log_event(txn, &event)?;
    super::stats::note(tenant, now, Counted::Event);
    for webhook in &receivers {
        queue_delivery(txn, tenant, (event.id, event.event_type), webhook.id, now)?;
    }
    for webhook in &holders {
        hold_delivery(txn, tenant, (event.id, event.event_type), webhook.id, now)?;
    }
    Ok(receivers.len())
}
