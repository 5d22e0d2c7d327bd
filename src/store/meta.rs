//! The `meta` table: schema version and the admin token's hash.

use std::collections::HashMap;

use redb::{Database, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::codec::{decode, encode};
use super::delivery_queue::{Delivery, hold_open, load_delivery, reschedule};
use super::lead_record::ref_key;
use super::outbox::{Event, index_by_lead, next_seq};
use super::tables::*;
use super::{SCHEMA_VERSION, Store, StoreError};
use crate::domain::ids::{DeliveryId, EventId};
use crate::domain::lead::Lead;
use crate::domain::webhook::Webhook;

const SCHEMA_KEY: &str = "schema_version";
const ADMIN_TOKEN_KEY: &str = "admin_token_sha256";

pub(super) enum PrepareError {
    Newer(u64),
    Store(StoreError),
}

impl From<StoreError> for PrepareError {
    fn from(e: StoreError) -> Self {
        PrepareError::Store(e)
    }
}

/// Creates every table of a new file and stamps its schema version, or checks an existing one.
/// Migrations from older schemas go here, one step per version, in the same transaction.
pub(super) fn prepare(db: &Database) -> Result<(), PrepareError> {
    let txn = db.begin_write().map_err(StoreError::from)?;
    {
        let mut meta = txn.open_table(META).map_err(StoreError::from)?;
        let found = meta
            .get(SCHEMA_KEY)
            .map_err(StoreError::from)?
            .and_then(|v| v.value().try_into().ok().map(u64::from_be_bytes));
        if let Some(v) = found
            && v > SCHEMA_VERSION
        {
            return Err(PrepareError::Newer(v));
        }
        meta.insert(SCHEMA_KEY, SCHEMA_VERSION.to_be_bytes().as_slice())
            .map_err(StoreError::from)?;
        drop(meta);
        // A new file has nothing to migrate.
        if let Some(found) = found {
            migrate(&txn, found)?;
        }
    }
    for table in [
        TENANTS,
        API_KEYS,
        API_KEYS_BY_HASH,
        STAGES,
        CUSTOM_FIELDS,
        OWNERS,
        LEADS,
        LEADS_BY_EMAIL,
        IDEMPOTENCY,
        WEBHOOKS,
        WEBHOOKS_DUE,
        EVENTS,
        EVENT_LOG,
        EVENTS_BY_LEAD,
        INTERACTIONS,
        DELIVERIES,
        ATTEMPTS,
    ] {
        txn.open_table(table).map_err(StoreError::from)?;
    }
    for table in [
        API_KEYS_BY_TENANT,
        LEADS_BY_PHONE,
        LEADS_BY_STAGE,
        LEADS_BY_OWNER,
        IDEMPOTENCY_BY_EXPIRY,
        DELIVERIES_BY_WEBHOOK,
        DELIVERIES_DUE,
        DELIVERIES_HELD,
    ] {
        txn.open_table(table).map_err(StoreError::from)?;
    }
    for table in [LEAD_COUNTS, EVENT_LOG_PRUNED, LEAD_UPDATED_COUNTS] {
        txn.open_table(table).map_err(StoreError::from)?;
    }
    for table in [LEADS_BY_UPDATED, LEADS_BY_CREATED, LEADS_BY_FIELD_UPDATED] {
        txn.open_table(table).map_err(StoreError::from)?;
    }
    // Schema 8's step is only its table, made here as on a new file.
    for table in [
        LEAD_ORDINALS,
        LEAD_ROWS,
        LEAD_TEXT,
        LEAD_TERMS,
        STATS_BY_MINUTE,
    ] {
        txn.open_table(table).map_err(StoreError::from)?;
    }
    txn.commit().map_err(StoreError::from)?;
    Ok(())
}

/// Brings a file written under schema `found` up to [`SCHEMA_VERSION`], one step per version.
fn migrate(txn: &WriteTransaction, found: u64) -> Result<(), StoreError> {
    if found < 2 {
        index_leads_by_stage_and_owner(txn)?;
    }
    if found < 3 {
        index_due_deliveries_by_webhook(txn)?;
    }
    if found < 4 {
        version_leads(txn)?;
        count_event_deliveries(txn)?;
    }
    if found < 5 {
        controls_for_webhooks(txn)?;
    }
    if found < 6 {
        index_events_by_lead(txn)?;
    }
    if found < 7 {
        index_lead_ordinals(txn)?;
    }
    // 7 → 8 adds the per-minute stats (`stats_by_minute`), which `prepare` creates on every
    // open; they count from the upgrade on, not rebuilt from the records' own times.
    if found < 9 {
        let removed = super::lead_index::unseal_open_chunks(txn)?;
        tracing::info!(
            removed,
            "migrated the data file to schema 9 (no search sets for the chunk new leads go to)"
        );
    }
    Ok(())
}

/// 6 → 7: every lead numbered within its tenant and indexed by filter value, search trigram
/// and sort value (`lead_index`); the sort indexes now hold the numbers, under new names.
fn index_lead_ordinals(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.delete_table(LEADS_BY_UPDATED_V6)?;
    txn.delete_table(LEADS_BY_CREATED_V6)?;
    let leads = super::lead_record::rebuild_lead_indexes(txn, None)?;
    tracing::info!(
        leads,
        "migrated the data file to schema 7 (lead ordinals, filter and search indexes)"
    );
    Ok(())
}

/// 5 → 6: every stored event of a lead in [`EVENTS_BY_LEAD`] for as long as it lives, so that
/// deleting the lead finds them all to erase (spec §12.1). Events from before the log get a
/// number too (above every cursor handed out, and in no log: pages never show them).
fn index_events_by_lead(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut indexed = 0usize;
    let mut numbered = Vec::new();
    {
        let events = txn.open_table(EVENTS)?;
        let mut by_lead = txn.open_table(EVENTS_BY_LEAD)?;
        for entry in events.iter()? {
            let event: Event = decode(entry?.1.value())?;
            let Some(lead) = event.lead_id else { continue };
            match event.seq {
                Some(seq) => {
                    by_lead.insert(
                        key(&[&event.tenant_id.bytes(), &lead.bytes(), &seq.to_be_bytes()])
                            .as_slice(),
                        event.id.bytes().as_slice(),
                    )?;
                    indexed += 1;
                }
                None => numbered.push(event),
            }
        }
    }
    for mut event in numbered {
        event.seq = Some(next_seq(txn)?);
        txn.open_table(EVENTS)?
            .insert(event.id.bytes().as_slice(), encode(&event)?.as_slice())?;
        index_by_lead(txn, &event)?;
        indexed += 1;
    }
    txn.delete_table(EVENT_LOG_BY_LEAD_V4)?;
    tracing::info!(
        events = indexed,
        "migrated the data file to schema 6 (events by lead)"
    );
    Ok(())
}

/// 4 → 5: every webhook in the format with §13's controls (none set: no filter, no headers,
/// the configured limits), and the pending deliveries of the webhooks that are off held.
fn controls_for_webhooks(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut off = Vec::new();
    let webhooks = rewrite_all(txn, WEBHOOKS, "webhooks", |v| {
        let webhook = decode::<Webhook>(v)?;
        if !webhook.is_active && webhook.deleted_at.is_none() {
            off.push(webhook.id);
        }
        encode(&webhook).map(Some)
    })?;
    // What a webhook that is off still owes is held from now on, as it would be today.
    let mut held = 0;
    for id in off {
        held += hold_open(txn, id)?;
    }
    tracing::info!(
        webhooks,
        held,
        "migrated the data file to schema 5 (webhook controls)"
    );
    Ok(())
}

/// Records rewritten per step of a migration's walk over a table: a table cannot be written
/// while it is being iterated, so each step reads a chunk, then writes it.
const CHUNK: usize = 10_000;

/// Rewrites every record of `table` through `rewrite`, chunk by chunk in key order; `None`
/// removes it. Returns how many were kept.
fn rewrite_all(
    txn: &WriteTransaction,
    table: redb::TableDefinition<&'static [u8], &'static [u8]>,
    what: &str,
    mut rewrite: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, StoreError>,
) -> Result<usize, StoreError> {
    let mut table = txn.open_table(table)?;
    let total = table.len()?;
    let (mut done, mut kept) = (0u64, 0usize);
    let mut from: Option<Vec<u8>> = None;
    loop {
        let chunk: Vec<(Vec<u8>, Vec<u8>)> = match &from {
            None => table.iter()?,
            Some(k) => table.range::<&[u8]>(k.as_slice()..)?,
        }
        .filter(|e| {
            e.as_ref()
                .map_or(true, |(k, _)| Some(k.value()) != from.as_deref())
        })
        .take(CHUNK)
        .map(|e| e.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
        .collect::<Result<_, _>>()?;
        let Some((last, _)) = chunk.last() else { break };
        from = Some(last.clone());
        for (k, v) in &chunk {
            match rewrite(v)? {
                Some(new) => {
                    table.insert(k.as_slice(), new.as_slice())?;
                    kept += 1;
                }
                None => {
                    table.remove(k.as_slice())?;
                }
            }
        }
        done += chunk.len() as u64;
        if total > CHUNK as u64 {
            tracing::info!(done, total, "migrating {what} to schema 4");
        }
    }
    Ok(kept)
}

/// 3 → 4: every lead gets its `version`, 1 (and is rewritten in the format that has it).
fn version_leads(txn: &WriteTransaction) -> Result<(), StoreError> {
    let leads = rewrite_all(txn, LEADS, "leads", |v| {
        encode(&decode::<Lead>(v)?).map(Some)
    })?;
    tracing::info!(
        leads,
        "migrated the data file to schema 4 (every lead at version 1)"
    );
    Ok(())
}

/// 3 → 4: an event counts the deliveries that still need it, so that the delivery pruning and
/// the event log's know which of them removes it. Events written before the log are not in
/// it; one no delivery needs any more goes now.
fn count_event_deliveries(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut counts: HashMap<EventId, u32> = HashMap::new();
    for entry in txn.open_table(DELIVERIES)?.iter()? {
        let delivery: Delivery = decode(entry?.1.value())?;
        *counts.entry(delivery.event_id).or_default() += 1;
    }
    let events = rewrite_all(txn, EVENTS, "events", |v| {
        let mut event: Event = decode(v)?;
        event.deliveries = counts.get(&event.id).copied().unwrap_or(0);
        match event.deliveries {
            0 => Ok(None),
            _ => encode(&event).map(Some),
        }
    })?;
    tracing::info!(
        events,
        "migrated the data file to schema 4 (events count their deliveries)"
    );
    Ok(())
}

/// 2 → 3: the due index moves from one time-ordered list of every delivery to one range per
/// webhook, plus the webhooks by their earliest due delivery, so that one webhook's backlog
/// cannot hide another's due deliveries from a lease.
fn index_due_deliveries_by_webhook(txn: &WriteTransaction) -> Result<(), StoreError> {
    let old: Vec<Vec<u8>> = txn
        .open_table(DELIVERIES_DUE_V2)?
        .iter()?
        .map(|e| e.map(|(k, _)| k.value().to_vec()))
        .collect::<Result<_, _>>()?;
    let mut moved = 0usize;
    for k in &old {
        let Some(id) = id_at(k, 8) else { continue };
        let Some(mut delivery) = load_delivery(txn, DeliveryId::from_bytes(id))? else {
            continue;
        };
        // Queued again under the new layout at the same time: reschedule adds the entry and the
        // webhook's place among the due webhooks.
        let at = delivery.next_attempt_at.take();
        reschedule(txn, &mut delivery, at)?;
        moved += 1;
    }
    txn.delete_table(DELIVERIES_DUE_V2)?;
    tracing::info!(
        deliveries = moved,
        "migrated the data file to schema 3 (due deliveries by webhook)"
    );
    Ok(())
}

/// 1 → 2: deleting a stage or an owner asks these indexes whether leads still use it.
fn index_leads_by_stage_and_owner(txn: &WriteTransaction) -> Result<(), StoreError> {
    let leads = txn.open_table(LEADS)?;
    let mut by_stage = txn.open_table(LEADS_BY_STAGE)?;
    let mut by_owner = txn.open_table(LEADS_BY_OWNER)?;
    let mut indexed = 0usize;
    for entry in leads.iter()? {
        let lead: Lead = decode(entry?.1.value())?;
        by_stage.insert(
            ref_key(lead.tenant_id, &lead.stage_id.bytes(), lead.id).as_slice(),
            (),
        )?;
        if let Some(owner) = lead.owner_id {
            by_owner.insert(
                ref_key(lead.tenant_id, &owner.bytes(), lead.id).as_slice(),
                (),
            )?;
        }
        indexed += 1;
    }
    tracing::info!(
        leads = indexed,
        "migrated the data file to schema 2 (leads by stage and owner)"
    );
    Ok(())
}

impl Store {
    pub fn admin_token_hash(&self) -> Result<Option<[u8; 32]>, StoreError> {
        self.read(|txn| {
            let meta = txn.open_table(META)?;
            Ok(meta
                .get(ADMIN_TOKEN_KEY)?
                .and_then(|v| v.value().try_into().ok()))
        })
    }

    pub fn set_admin_token_hash(&self, hash: [u8; 32]) -> Result<(), StoreError> {
        self.write(move |txn| {
            txn.open_table(META)?
                .insert(ADMIN_TOKEN_KEY, hash.as_slice())?;
            Ok(())
        })
    }

    pub fn schema_version(&self) -> Result<u64, StoreError> {
        self.read(|txn| {
            let meta = txn.open_table(META)?;
            meta.get(SCHEMA_KEY)?
                .and_then(|v| v.value().try_into().ok().map(u64::from_be_bytes))
                .ok_or_else(|| StoreError::Corrupt("no schema version".into()))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::domain::event::EventType;
    use crate::domain::ids::{OwnerId, TenantId};
    use crate::store::dispatch::Everything;
    use crate::store::idempotency::StoredResponse;
    use crate::store::outbox::Event;

    /// `tests/fixtures/schema-v1.redb`, written by leadbase 0.1.0 (schema 1) through its API: one
    /// tenant with an owner, a `budget` field, six leads (four at `new`, one at `contacted`
    /// assigned to the owner, one at `qualified`), a webhook and its deliveries.
    fn schema_v1_copy() -> (tempfile::TempDir, Store) {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v1.redb");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        std::fs::copy(fixture, &path).unwrap();
        let store = Store::open(&path).unwrap();
        (dir, store)
    }

    /// `tests/fixtures/schema-v3.redb`, written by the schema-3 release through its API with
    /// `tests/fixtures/make-fixture.sh`: tenant `01a23206-1d68-…`, a `budget`
    /// field, an owner, five leads created with a webhook subscribed (it failed, nothing
    /// listened), one of them PATCHed, two more by bulk: seven leads, six events, six
    /// deliveries waiting to retry.
    fn schema_v3_copy() -> (tempfile::TempDir, Store) {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v3.redb");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        std::fs::copy(fixture, &path).unwrap();
        let store = Store::open(&path).unwrap();
        (dir, store)
    }

    #[test]
    fn a_schema_3_file_has_every_lead_at_version_1_and_its_events_still_deliver() {
        let (_dir, store) = schema_v3_copy();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let (formats, versions) = store
            .read(|txn| {
                let mut formats = Vec::new();
                let mut versions = Vec::new();
                for entry in txn.open_table(LEADS)?.iter()? {
                    let bytes = entry?.1.value().to_vec();
                    formats.push(bytes[0]);
                    versions.push(decode::<Lead>(&bytes)?.version);
                }
                Ok((formats, versions))
            })
            .unwrap();
        assert_eq!(versions, [1; 7], "every lead at version 1");
        assert_eq!(
            formats, [2; 7],
            "rewritten in the current format, not read lazily"
        );

        let events: Vec<Event> = store
            .read(|txn| {
                txn.open_table(EVENTS)?
                    .iter()?
                    .map(|e| decode(e?.1.value()))
                    .collect()
            })
            .unwrap();
        assert_eq!(events.len(), 6);
        assert!(events.iter().all(|e| e.deliveries == 1));
        // Numbered by schema 6 and indexed by lead (for erasure), but in no log.
        assert!(
            events
                .iter()
                .all(|e| e.seq.is_some() && e.lead_id.is_some())
        );
        let by_lead = store
            .read(|txn| Ok(txn.open_table(EVENTS_BY_LEAD)?.len()?))
            .unwrap();
        assert_eq!(by_lead, 6);

        // The deliveries owed go out in the new envelope, with the lead they always had.
        store.clock().advance(3_600_000);
        let leased = store.lease_due(10, &Everything).unwrap();
        assert_eq!(leased.len(), 6);
        let updated = leased
            .iter()
            .find(|l| l.event.event_type == EventType::LeadUpdated)
            .expect("the PATCH's event");
        let body: serde_json::Value =
            serde_json::from_str(&updated.event.body(Some(store.now()))).unwrap();
        assert_eq!(body["event_id"], updated.event.id.to_string());
        assert_eq!(
            body["changed_fields"].as_array().unwrap().len(),
            3,
            "{body}"
        );
        assert_eq!(
            body["lead"]["status"],
            serde_json::Value::Null,
            "as schema 3 sent it"
        );
        assert!(body["occurred_at"].is_string() && body["delivered_at"].is_string());

        // The log starts with the upgrade.
        let tenant = TenantId::parse("01a23206-1d68-74cb-b971-765e0cc8aedf").unwrap();
        let query = crate::store::event_log::LogQuery {
            limit: 50,
            ..Default::default()
        };
        let page = store.list_events(tenant, &query).unwrap();
        assert!(page.events.is_empty());
        assert_eq!(
            page.next.seq, 6,
            "past the numbers schema 6 gave the old events"
        );
        let of_lead = crate::store::event_log::LogQuery {
            lead_id: events[0].lead_id,
            ..query
        };
        assert!(
            store
                .list_events(tenant, &of_lead)
                .unwrap()
                .events
                .is_empty()
        );

        // Deleting a lead erases the events it had before the log, too.
        let lead = events[0].lead_id.unwrap();
        store
            .delete_lead(tenant, lead, None, None, |_| StoredResponse {
                status: 200,
                body: String::new(),
                ..StoredResponse::default()
            })
            .unwrap();
        let after = store
            .read(|txn| crate::store::outbox::load_event(txn, events[0].id))
            .unwrap()
            .expect("still owed to the webhook");
        let body = after.body(None);
        assert!(body.contains(r#""erased":true"#), "{body}");
        assert!(!body.contains("example.com"), "{body}");
        store.shutdown();

        // Opened again: nothing left to migrate, nothing changed.
        let path = store.path().to_path_buf();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store.shutdown();
    }

    /// `tests/fixtures/schema-v4.redb`, written by the schema-4 build (`8f50636`) with
    /// `tests/fixtures/make-fixture.sh`: the same contents as the schema-3 file.
    #[test]
    fn a_schema_4_file_s_webhook_gains_the_controls_unset_and_still_delivers() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v4.redb");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        std::fs::copy(fixture, &path).unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let webhooks: Vec<(u8, Webhook)> = store
            .read(|txn| {
                txn.open_table(WEBHOOKS)?
                    .iter()?
                    .map(|e| {
                        let bytes = e?.1.value().to_vec();
                        Ok((bytes[0], decode::<Webhook>(&bytes)?))
                    })
                    .collect()
            })
            .unwrap();
        assert_eq!(webhooks.len(), 1);
        let (format, webhook) = &webhooks[0];
        assert_eq!(*format, 2, "rewritten in the current format");
        assert!(webhook.filter.is_none() && webhook.headers.0.is_empty());
        assert_eq!(
            (webhook.max_concurrency, webhook.rate_limit_per_minute),
            (None, None)
        );
        assert_eq!(store.held_count(webhook.id).unwrap(), 0);
        store.clock().advance(3_600_000);
        assert_eq!(store.lease_due(10, &Everything).unwrap().len(), 6);
        store.shutdown();
    }

    /// `tests/fixtures/schema-v5.redb`, written by the schema-5 build (`53c2747`) with
    /// `tests/fixtures/make-fixture.sh`: six logged lead events, each owed to the webhook.
    #[test]
    fn a_schema_5_file_s_events_are_indexed_by_lead_and_the_old_index_is_gone() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v5.redb");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        std::fs::copy(fixture, &path).unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let (by_lead, old_gone) = store
            .read(|txn| {
                Ok((
                    txn.open_table(EVENTS_BY_LEAD)?.len()?,
                    txn.open_table(EVENT_LOG_BY_LEAD_V4).is_err(),
                ))
            })
            .unwrap();
        assert_eq!((by_lead, old_gone), (6, true));
        let tenant = TenantId::parse("01a2324b-dfca-757c-ac64-38b6f48f7bac").unwrap();
        let query = crate::store::event_log::LogQuery {
            limit: 50,
            ..Default::default()
        };
        let page = store.list_events(tenant, &query).unwrap();
        assert_eq!(page.events.len(), 6, "the log is as it was");
        let lead = store
            .read(|txn| {
                let e: Event = decode(txn.open_table(EVENTS)?.iter()?.next().unwrap()?.1.value())?;
                Ok(e.lead_id)
            })
            .unwrap();
        let of_lead = crate::store::event_log::LogQuery {
            lead_id: lead,
            ..query
        };
        assert!(
            !store
                .list_events(tenant, &of_lead)
                .unwrap()
                .events
                .is_empty()
        );
        store.shutdown();
    }

    #[test]
    fn a_file_from_a_newer_schema_is_refused_with_both_versions_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        Store::open(&path).unwrap().shutdown();
        {
            let db = redb::Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_KEY, (SCHEMA_VERSION + 1).to_be_bytes().as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let refused = Store::open(&path).err().expect("refused").to_string();
        assert!(
            refused.contains(&format!("schema {}", SCHEMA_VERSION + 1))
                && refused.contains(&format!("this build knows {SCHEMA_VERSION}")),
            "{refused}"
        );
    }

    /// Every lead of a tenant, oldest first, in one page.
    fn every_lead() -> crate::store::lead_query::LeadQuery {
        use crate::domain::cursor::{SortBy, SortDir};
        crate::store::lead_query::LeadQuery {
            status: None,
            stage: None,
            search: None,
            created_since: None,
            updated_since: None,
            lead_line: None,
            sort_by: SortBy::CreatedAt,
            sort_dir: SortDir::Asc,
            cursor: None,
            limit: 100,
            offset: 0,
        }
    }

    /// The names of the leads `query` finds, all on one page (its total says so).
    fn names_found(
        store: &Store,
        tenant: TenantId,
        query: &crate::store::lead_query::LeadQuery,
    ) -> Vec<String> {
        let page = store.list_leads(tenant, query).unwrap();
        assert_eq!(page.total, page.leads.len() as u64);
        page.leads
            .iter()
            .map(|v| v.lead.contact_name.clone().unwrap_or_default())
            .collect()
    }

    /// `tests/fixtures/schema-v6.redb`, written by the schema-6 build (`adcaf2b`) with
    /// `tests/fixtures/make-fixture.sh`: seven leads, one of them won and qualified.
    #[test]
    fn a_schema_6_file_s_leads_are_numbered_and_found_by_every_filter_and_search() {
        use crate::domain::contact::SearchQuery;
        use crate::domain::lead::LeadStatus;
        use crate::store::lead_query::{LeadQuery, StageFilter};
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v6.redb");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        std::fs::copy(fixture, &path).unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let old_gone = store
            .read(|txn| {
                Ok(txn.open_table(LEADS_BY_UPDATED_V6).is_err()
                    && txn.open_table(LEADS_BY_CREATED_V6).is_err())
            })
            .unwrap();
        assert!(old_gone, "schema 6's sort indexes were dropped");
        let tenant = TenantId::parse("01a2328e-654f-76a0-9545-96d636bdf873").unwrap();
        let all = every_lead();
        let found = |q: LeadQuery| names_found(&store, tenant, &q);
        assert_eq!(found(all.clone()).len(), 7);
        let won = LeadQuery {
            status: Some(LeadStatus::Won),
            ..all.clone()
        };
        assert_eq!(found(won), ["Lead 1"]);
        let qualified = LeadQuery {
            stage: Some(StageFilter::Slug("qualified".into())),
            ..all.clone()
        };
        assert_eq!(found(qualified), ["Lead 1"]);
        let search = |q: &str| LeadQuery {
            search: Some(SearchQuery::new(q)),
            ..all.clone()
        };
        assert_eq!(found(search("BULK")), ["Bulk 1", "Bulk 2"]);
        assert_eq!(found(search("555-0102")), ["Bulk 2"]);
        assert_eq!(found(search("lead3@")), ["Lead 3"]);
        assert_eq!(found(search("ead")).len(), 5);
        store.shutdown();
    }

    #[test]
    fn a_schema_1_file_s_queued_delivery_is_due_per_webhook_and_the_old_index_is_gone() {
        let (_dir, store) = schema_v1_copy();
        // The fixture's webhook failed its first attempt (nothing listens) and waits to retry.
        let due = store
            .next_due()
            .unwrap()
            .expect("the queued delivery is due");
        store
            .clock()
            .advance(u32::try_from((due.ms() - store.now().ms()).max(0)).unwrap());
        let leased = store.lease_due(10, &Everything).unwrap();
        assert_eq!(leased.len(), 1);
        assert_eq!(leased[0].event.event_type, EventType::LeadCreated);
        let old = store.read(|txn| Ok(txn.open_table(DELIVERIES_DUE_V2).is_err()));
        assert_eq!(old, Ok(true), "schema 2's due index was dropped");
        store.shutdown();
    }

    #[test]
    fn a_schema_1_file_gains_the_stage_and_owner_indexes() {
        let (_dir, store) = schema_v1_copy();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let tenant = TenantId::parse("01a2311d-974c-7559-8fe9-52ceded1481a").unwrap();
        let stages = store.list_stages(tenant).unwrap();
        let id = |slug: &str| stages.iter().find(|s| s.slug == slug).unwrap().id;

        let refused = |r: Result<(), StoreError>| match r {
            Err(StoreError::Conflict(message)) => message,
            other => panic!("expected a conflict, got {other:?}"),
        };
        assert!(refused(store.delete_stage(tenant, id("new"))).starts_with("4 leads"));
        assert!(refused(store.delete_stage(tenant, id("contacted"))).starts_with("1 leads"));
        store.delete_stage(tenant, id("won")).unwrap();
        let owner = OwnerId::parse("01a2311d-982b-737a-ba6b-f3748452672f").unwrap();
        assert!(refused(store.delete_owner(tenant, owner)).starts_with("1 leads"));
        store.shutdown();

        // Opening the migrated file again migrates nothing and finds the same.
        let path = store.path().to_path_buf();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(refused(store.delete_stage(tenant, id("new"))).starts_with("4 leads"));
        store.shutdown();
    }

    /// `tests/fixtures/schema-v8.redb`, written by the schema-8 build (`0753a3f`) with
    /// `tests/fixtures/make-fixture.sh`: its seven leads sit in the open chunk, whose search
    /// sets go at the upgrade; search finds them by their text, and the file checks clean.
    #[test]
    fn a_schema_8_file_loses_the_open_chunk_s_search_sets_and_finds_the_same() {
        use crate::domain::contact::SearchQuery;
        use crate::store::lead_query::LeadQuery;
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v8.redb");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        std::fs::copy(&fixture, &path).unwrap();
        let trigram_entries = |path: &Path| {
            use redb::{ReadableDatabase, ReadableTable};
            let db = redb::Database::open(path).unwrap();
            let txn = db.begin_read().unwrap();
            let table = txn.open_table(LEAD_TERMS).unwrap();
            table
                .iter()
                .unwrap()
                .filter(|e| matches!(e.as_ref().unwrap().0.value().get(20), Some(b't' | b'p')))
                .count()
        };
        assert!(
            trigram_entries(&path) > 20,
            "schema 8 kept the open chunk's trigrams"
        );
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let tenant = TenantId::parse("01a2339e-6768-7609-bb8a-9ccb4ef2371f").unwrap();
        let all = every_lead();
        let found = |q: &str| {
            let query = LeadQuery {
                search: Some(SearchQuery::new(q)),
                ..all.clone()
            };
            names_found(&store, tenant, &query)
        };
        assert_eq!(store.list_leads(tenant, &all).unwrap().total, 7);
        assert_eq!(found("BULK"), ["Bulk 1", "Bulk 2"]);
        assert_eq!(found("555-0102"), ["Bulk 2"]);
        assert_eq!(found("206"), ["Bulk 1", "Bulk 2"]);
        assert_eq!(found("lead3@"), ["Lead 3"]);
        assert_eq!(found("ead").len(), 5);
        let report = store.check().unwrap();
        assert!(report.is_clean(), "{report:?}");
        store.shutdown();
        assert_eq!(trigram_entries(&path), 0);
    }

    /// `tests/fixtures/schema-v7.redb`, written by the schema-7 build (`c1cbbdb`) with
    /// `tests/fixtures/make-fixture.sh`: its leads are all there and the stats start at zero,
    /// then count what the upgraded file records.
    #[test]
    fn a_schema_7_file_gets_empty_stats_that_then_count() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v7.redb");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        std::fs::copy(fixture, &path).unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let tenant = TenantId::parse("01a2331a-a145-7365-bd58-4e284886ef45").unwrap();
        assert_eq!(store.list_leads(tenant, &every_lead()).unwrap().total, 7);
        let day = store.stats(None, 1_440).unwrap();
        assert!(day.minutes.iter().all(|c| *c == Default::default()));
        store
            .write_now(move |_, now| {
                crate::store::stats::note(tenant, now, crate::store::stats::Counted::Event);
                Ok(())
            })
            .unwrap();
        assert_eq!(store.stats(Some(tenant), 1).unwrap().minutes[0].events, 1);
        store.shutdown();
    }
}
