//! The event log (spec §11.4): every event of a tenant in commit order, read by pollers with a
//! cursor, kept `events.retention_days`.
//!
//! **Why a poller never misses an event.** Each logged event takes the next number of one
//! counter (`meta.event_seq`), read and written inside the event's own write transaction. Every
//! write goes through the single writer thread, and redb runs one write transaction at a time,
//! so a transaction that commits later read the counter after every earlier commit had moved it:
//! its events carry larger numbers than any event committed before it. A reader sees a snapshot
//! of whole commits. So when a page read from snapshot S ends at number `c` (its last event, or
//! the counter in S when it found none), every event S did not hold was committed after S and
//! numbered above the counter in S, hence above `c`: nothing can appear behind a cursor already
//! handed out, and reading on from `c` sees each event once.

use redb::{ReadableTable, WriteTransaction};

use super::codec::{decode, encode};
use super::outbox::{Entry, Event, EventData, lead_log_key, load_event, log_key, read_seq, seq_at};
use super::tables::*;
use super::{PRUNE_BATCH, Store, StoreError};
use crate::domain::event::EventType;
use crate::domain::event_cursor::EventCursor;
use crate::domain::ids::{EventId, LeadId, TenantId};
use crate::domain::time::Timestamp;

/// Log entries one page may step over looking for the types asked for. A page that reaches it
/// ends there with `has_more` and a cursor after the last entry looked at, so a rare type in a
/// long log costs several quick pages rather than one long read.
const SCAN_BUDGET: usize = 10_000;

/// Whether the log still holds this event (it may have been pruned while deliveries remain).
pub(crate) fn is_logged(txn: &impl Txn, event: &Event) -> Result<bool, StoreError> {
    match event.seq {
        Some(seq) => Ok(txn
            .table(EVENT_LOG)?
            .get(log_key(event.tenant_id, seq).as_slice())?
            .is_some()),
        None => Ok(false),
    }
}

#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub after: Option<EventCursor>,
    /// Empty: every type.
    pub types: Vec<EventType>,
    pub lead_id: Option<LeadId>,
    pub limit: usize,
}

/// One event as the log shows it.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub id: EventId,
    pub event_type: EventType,
    pub occurred_at: Timestamp,
    /// The body a webhook would receive, without `delivered_at`.
    pub data: String,
}

#[derive(Debug, Clone)]
pub struct LogPage {
    pub events: Vec<LoggedEvent>,
    pub next: EventCursor,
    pub has_more: bool,
}

impl Store {
    /// A page of the tenant's event log after `query.after`, oldest first.
    pub fn list_events(&self, tenant: TenantId, query: &LogQuery) -> Result<LogPage, StoreError> {
        self.read(|txn| {
            let pruned = txn
                .open_table(EVENT_LOG_PRUNED)?
                .get(tenant.bytes().as_slice())?
                .map_or(0, |v| v.value());
            let after = query.after.map(|c| c.seq);
            let end = read_seq(&txn.open_table(META)?)?;
            if after.is_some_and(|seq| seq > end) {
                return Err(StoreError::Invalid(
                    "after is not a cursor this API minted: it is past the end of the log".into(),
                ));
            }
            if let Some(seq) = after
                && seq < pruned
            {
                return Err(StoreError::Gone(format!(
                    "after: events after this cursor are older than the retention window and were pruned; start again without after (events up to number {pruned} are gone)"
                )));
            }
            let start = after.map_or(0, |s| s.saturating_add(1));
            let log = txn.open_table(EVENT_LOG)?;
            let wanted = |t: Option<EventType>| {
                query.types.is_empty() || t.is_some_and(|t| query.types.contains(&t))
            };
            let mut found: Vec<(u64, Entry)> = Vec::new();
            let mut last_seen = None;
            let mut has_more = false;
            let mut scanned = 0;
            let mut consider = |seq: u64, entry: Entry| -> bool {
                scanned += 1;
                if wanted(entry.event_type) {
                    if found.len() == query.limit {
                        has_more = true;
                        return false;
                    }
                    found.push((seq, entry));
                }
                last_seen = Some(seq);
                if scanned >= SCAN_BUDGET {
                    has_more = true;
                    return false;
                }
                true
            };
            match query.lead_id {
                Some(lead) => {
                    let by_lead = txn.open_table(EVENTS_BY_LEAD)?;
                    let prefix = key(&[&tenant.bytes(), &lead.bytes()]);
                    let from = lead_log_key(tenant, lead, start);
                    let end = prefix_end(&prefix).expect("a tenant and lead prefix has an end");
                    for item in by_lead.range::<&[u8]>(from.as_slice()..end.as_slice())? {
                        let seq = seq_at(item?.0.value(), 32)?;
                        // Kept for a delivery after the log let it go, or never logged.
                        let Some(value) = log.get(log_key(tenant, seq).as_slice())? else {
                            continue;
                        };
                        if !consider(seq, Entry::decode(value.value())?) {
                            break;
                        }
                    }
                }
                None => {
                    let from = log_key(tenant, start);
                    let end = prefix_end(&tenant.bytes()).expect("a tenant prefix has an end");
                    for item in log.range::<&[u8]>(from.as_slice()..end.as_slice())? {
                        let (k, v) = item?;
                        if !consider(seq_at(k.value(), 16)?, Entry::decode(v.value())?) {
                            break;
                        }
                    }
                }
            }
            // The position to read on from: after what this page looked at, or, when it read
            // to the end of what it asks for, the log's end in this snapshot (every event
            // committed later is numbered above it), so a poller of a quiet lead or type keeps
            // up with the log and is not told later that events it never wanted were pruned.
            // A page that found nothing hands back the cursor it was given (spec §11.4).
            let next_seq = match (last_seen, after) {
                (Some(seq), _) if has_more => seq,
                (Some(_), _) => end,
                (None, Some(seq)) => seq,
                (None, None) => end,
            };
            let mut events = Vec::with_capacity(found.len());
            for (_, entry) in found {
                let event = load_event(txn, entry.event)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("the event log names a missing event {}", entry.event))
                })?;
                events.push(LoggedEvent {
                    id: event.id,
                    event_type: event.event_type,
                    occurred_at: entry.occurred_at,
                    data: event.body(None),
                });
            }
            Ok(LogPage {
                events,
                next: EventCursor {
                    tenant,
                    seq: next_seq,
                },
                has_more,
            })
        })
    }

    /// Removes log entries older than `cutoff`, at most [`PRUNE_BATCH`] per call, and the
    /// events no delivery needs any more; remembers, per tenant, the last number pruned so that
    /// a cursor from before it is told its events are gone. Returns how many entries went.
    pub fn prune_events(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        self.write(move |txn| {
            let mut log = txn.open_table(EVENT_LOG)?;
            let mut doomed: Vec<(Vec<u8>, Entry)> = Vec::new();
            // Oldest first within each tenant: the first entry of a tenant that is new enough
            // ends that tenant's part, and the walk jumps to the next tenant.
            let mut from: Vec<u8> = Vec::new();
            'tenants: loop {
                let mut next_tenant = None;
                for item in log.range::<&[u8]>(from.as_slice()..)? {
                    let (k, v) = item?;
                    let entry = Entry::decode(v.value())?;
                    if entry.occurred_at < cutoff {
                        doomed.push((k.value().to_vec(), entry));
                        if doomed.len() == PRUNE_BATCH {
                            break 'tenants;
                        }
                    } else {
                        next_tenant = k.value().get(..16).and_then(prefix_end);
                        break;
                    }
                }
                match next_tenant {
                    Some(next) => from = next,
                    None => break,
                }
            }
            let mut by_lead = txn.open_table(EVENTS_BY_LEAD)?;
            let mut pruned = txn.open_table(EVENT_LOG_PRUNED)?;
            let mut events = txn.open_table(EVENTS)?;
            for (k, entry) in &doomed {
                log.remove(k.as_slice())?;
                let tenant = TenantId::from_bytes(id_at(k, 0).expect("a log key holds a tenant"));
                let seq = seq_at(k, 16)?;
                let before = pruned
                    .get(tenant.bytes().as_slice())?
                    .map_or(0, |v| v.value());
                if seq > before {
                    pruned.insert(tenant.bytes().as_slice(), seq)?;
                }
                let event: Option<Event> = events
                    .get(entry.event.bytes().as_slice())?
                    .map(|v| decode(v.value()))
                    .transpose()?;
                let Some(event) = event else { continue };
                // A delivery still shows it: the record, and its place in the lead's index, stay.
                if event.deliveries == 0 {
                    if let Some(lead) = event.lead_id {
                        by_lead.remove(lead_log_key(tenant, lead, seq).as_slice())?;
                    }
                    events.remove(entry.event.bytes().as_slice())?;
                }
            }
            Ok(doomed.len())
        })
    }
}

/// Erasure (spec §12.1): every stored event of the lead, in the log or owed to a webhook,
/// keeps its envelope and its `changed_fields`, and its lead reads `{"id", "erased": true}`;
/// `previous` (old values) goes. Returns how many events were erased.
pub(crate) fn erase_lead_events(
    txn: &WriteTransaction,
    tenant: TenantId,
    lead: LeadId,
) -> Result<usize, StoreError> {
    let prefix = key(&[&tenant.bytes(), &lead.bytes()]);
    let ids: Vec<EventId> = prefixed(&txn.open_table(EVENTS_BY_LEAD)?, &prefix)?
        .map(|e| e.map(|(_, v)| id_at(v.value(), 0).map(EventId::from_bytes)))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let mut erased = 0;
    for id in ids {
        let Some(mut event) = load_event(txn, id)? else {
            continue;
        };
        event.data = EventData::Members(erased_members(&event.data, lead));
        txn.open_table(EVENTS)?
            .insert(id.bytes().as_slice(), encode(&event)?.as_slice())?;
        erased += 1;
    }
    Ok(erased)
}

/// An erased event's members: the lead's id, and the names of the fields that changed.
fn erased_members(data: &EventData, lead: LeadId) -> String {
    let members: serde_json::Value = match data {
        EventData::Lead { members, .. } | EventData::Members(members) => {
            serde_json::from_str(members).unwrap_or_default()
        }
    };
    let mut erased = serde_json::json!({ "lead": { "id": lead, "erased": true } });
    if let Some(changed) = members.get("changed_fields") {
        erased["changed_fields"] = changed.clone();
    }
    erased.to_string()
}

/// `pruned` deliveries of `event` were pruned: fewer remain; with none left, the event goes
/// unless the log still shows it.
pub(crate) fn deliveries_pruned(
    txn: &WriteTransaction,
    event: &mut Event,
    pruned: u32,
) -> Result<(), StoreError> {
    event.deliveries = event.deliveries.saturating_sub(pruned);
    let gone = event.deliveries == 0 && !is_logged(txn, event)?;
    if gone && let (Some(lead), Some(seq)) = (event.lead_id, event.seq) {
        txn.open_table(EVENTS_BY_LEAD)?
            .remove(lead_log_key(event.tenant_id, lead, seq).as_slice())?;
    }
    let mut events = txn.open_table(EVENTS)?;
    if gone {
        events.remove(event.id.bytes().as_slice())?;
    } else {
        events.insert(event.id.bytes().as_slice(), encode(event)?.as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::domain::retry::{AttemptResult, RetryPolicy};
    use crate::store::dispatch::Everything;
    use crate::store::outbox::{EventData, NewEvent, publish};
    use crate::store::testing::{store_with_tenant, webhook_settings};

    const DAY: u32 = 86_400_000;

    fn publish_lead_event(store: &Store, tenant: TenantId, lead: LeadId) {
        store
            .write_now(move |txn, now| {
                publish(
                    txn,
                    tenant,
                    NewEvent {
                        event_type: EventType::LeadCreated,
                        lead_id: Some(lead),
                        data: EventData::Members(json!({ "lead": { "id": lead } }).to_string()),
                        changed_fields: None,
                        about: None,
                    },
                    now,
                )
            })
            .unwrap();
    }

    fn page(store: &Store, tenant: TenantId, query: LogQuery) -> Result<LogPage, StoreError> {
        store.list_events(tenant, &LogQuery { limit: 50, ..query })
    }

    fn event_records(store: &Store) -> u64 {
        use redb::ReadableTableMetadata;
        store
            .read(|txn| Ok(txn.open_table(EVENTS)?.len()?))
            .unwrap()
    }

    #[test]
    fn pruning_removes_old_entries_and_a_cursor_before_them_is_gone() {
        let (_dir, store, tenant) = store_with_tenant();
        let (old, new) = (LeadId::new(), LeadId::new());
        for _ in 0..3 {
            publish_lead_event(&store, tenant, old);
        }
        let first = page(&store, tenant, LogQuery::default()).unwrap();
        assert_eq!(first.events.len(), 3);
        let after_one = EventCursor { tenant, seq: 1 };
        store.clock().advance(2 * DAY);
        publish_lead_event(&store, tenant, new);

        let cutoff = store.now().plus_ms(-i64::from(DAY));
        assert_eq!(store.prune_events(cutoff).unwrap(), 3);
        assert_eq!(store.prune_events(cutoff).unwrap(), 0);
        assert_eq!(event_records(&store), 1, "no delivery needed the old ones");

        let gone = page(
            &store,
            tenant,
            LogQuery {
                after: Some(after_one),
                ..Default::default()
            },
        );
        assert!(matches!(gone, Err(StoreError::Gone(_))), "{gone:?}");
        // The cursor a poller had at the end of the old events still reads on.
        let on = page(
            &store,
            tenant,
            LogQuery {
                after: Some(first.next),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(on.events.len(), 1);
        let of_old = page(
            &store,
            tenant,
            LogQuery {
                lead_id: Some(old),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(
            of_old.events.is_empty(),
            "the lead index went with the entries"
        );
        // Another tenant's log is untouched by this one's pruning.
        let name = crate::domain::catalog::Name::parse("name", "Other").unwrap();
        let other = store.create_tenant(name).unwrap().id;
        assert!(
            page(&store, other, LogQuery::default())
                .unwrap()
                .events
                .is_empty()
        );
        store.shutdown();
    }

    #[test]
    fn an_event_goes_when_both_its_log_entry_and_its_deliveries_are_pruned() {
        let (_dir, store, tenant) = store_with_tenant();
        store
            .create_webhook(tenant, webhook_settings(), "mega_whsec_x".into(), 20)
            .unwrap();
        let policy = Arc::new(RetryPolicy {
            schedule: vec![1],
            disable_after_failing_ms: 3_600_000,
        });
        let deliver_all = |store: &Store| {
            for leased in store.lease_due(10, &Everything).unwrap() {
                let ok = AttemptResult {
                    started_at: store.now(),
                    latency_ms: 1,
                    response_status: Some(200),
                    error: None,
                    response_body_excerpt: String::new(),
                    retry_after_secs: None,
                };
                store
                    .record_attempt(leased.delivery.id, ok, Arc::clone(&policy), 0.0)
                    .unwrap();
            }
        };
        // The log pruned first: the record stays for its delivery, then goes with it.
        publish_lead_event(&store, tenant, LeadId::new());
        deliver_all(&store);
        store.clock().advance(DAY);
        let cutoff = store.now();
        assert_eq!(store.prune_events(cutoff).unwrap(), 1);
        assert_eq!(event_records(&store), 1, "its delivery still shows it");
        assert_eq!(store.prune_deliveries(cutoff).unwrap(), 1);
        assert_eq!(event_records(&store), 0);

        // The deliveries pruned first: the record stays for the log, then goes with it.
        publish_lead_event(&store, tenant, LeadId::new());
        deliver_all(&store);
        store.clock().advance(DAY);
        let cutoff = store.now();
        assert_eq!(store.prune_deliveries(cutoff).unwrap(), 1);
        assert_eq!(event_records(&store), 1, "the log still shows it");
        assert_eq!(
            page(&store, tenant, LogQuery::default())
                .unwrap()
                .events
                .len(),
            1
        );
        assert_eq!(store.prune_events(cutoff).unwrap(), 1);
        assert_eq!(event_records(&store), 0);
        store.shutdown();
    }

    #[test]
    fn a_rare_type_in_a_long_log_is_found_over_bounded_pages() {
        let (_dir, store, tenant) = store_with_tenant();
        store
            .write_now(move |txn, now| {
                for i in 0..(SCAN_BUDGET + 5) {
                    let event_type = match i {
                        3 => EventType::WebhookDisabled,
                        _ => EventType::LeadCreated,
                    };
                    let new = NewEvent {
                        event_type,
                        lead_id: None,
                        data: EventData::Members("{}".into()),
                        changed_fields: None,
                        about: None,
                    };
                    publish(txn, tenant, new, now)?;
                }
                Ok(())
            })
            .unwrap();
        let types = vec![EventType::WebhookDisabled, EventType::DeliveryExhausted];
        let first = page(
            &store,
            tenant,
            LogQuery {
                types: types.clone(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(first.events.len(), 1);
        assert!(first.has_more, "stopped at the scan budget");
        assert_eq!(first.next.seq, SCAN_BUDGET as u64);
        let rest = page(
            &store,
            tenant,
            LogQuery {
                types,
                after: Some(first.next),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(rest.events.is_empty() && !rest.has_more);
        assert_eq!(rest.next.seq, (SCAN_BUDGET + 5) as u64);
        store.shutdown();
    }
}
