//! The `meta` table: schema version and the admin token's hash.

use redb::{Database, ReadableTable};

use super::tables::*;
use super::{SCHEMA_VERSION, Store, StoreError};

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
        match found {
            Some(v) if v > SCHEMA_VERSION => return Err(PrepareError::Newer(v)),
            Some(_) => {}
            None => {
                meta.insert(SCHEMA_KEY, SCHEMA_VERSION.to_be_bytes().as_slice())
                    .map_err(StoreError::from)?;
            }
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
