//! The `meta` table: schema version and the admin token's hash.

use redb::{Database, ReadableTable, WriteTransaction};

use super::codec::decode;
use super::delivery_queue::{load_delivery, reschedule};
use super::lead_record::ref_key;
use super::tables::*;
use super::{SCHEMA_VERSION, Store, StoreError};
use crate::domain::ids::DeliveryId;
use crate::domain::lead::Lead;

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
        DELIVERIES,
        ATTEMPTS,
    ] {
        txn.open_table(table).map_err(StoreError::from)?;
    }
    for table in [
        API_KEYS_BY_TENANT,
        LEADS_BY_PHONE,
        LEADS_BY_UPDATED,
        LEADS_BY_CREATED,
        LEADS_BY_STAGE,
        LEADS_BY_OWNER,
        IDEMPOTENCY_BY_EXPIRY,
        DELIVERIES_BY_WEBHOOK,
        DELIVERIES_DUE,
    ] {
        txn.open_table(table).map_err(StoreError::from)?;
    }
    txn.open_table(LEAD_COUNTS).map_err(StoreError::from)?;
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
}
