//! Tenants (the API's customers).

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::catalog;
use super::codec::{Record, decode};
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::catalog::Name;
use crate::domain::ids::TenantId;
use crate::domain::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Record for Tenant {
    const VERSION: u8 = 1;
    const NAME: &'static str = "tenant";
}

impl Store {
    /// A new tenant starts with the default pipeline and the reserved `lead_line` field.
    pub fn create_tenant(&self, name: Name) -> Result<Tenant, StoreError> {
        self.write_now(move |txn, now| {
            let tenant = Tenant {
                id: TenantId::new(),
                name: name.into_string(),
                created_at: now,
                updated_at: now,
            };
            put_record(&mut txn.open_table(TENANTS)?, &tenant.id.bytes(), &tenant)?;
            catalog::seed(txn, tenant.id, now)?;
            Ok(tenant)
        })
    }

    pub fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(TENANTS)?;
            table
                .iter()?
                .map(|entry| decode(entry?.1.value()))
                .collect()
        })
    }

    pub fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        self.read(|txn| load(&txn.open_table(TENANTS)?, &id.bytes()))
    }

    pub fn rename_tenant(&self, id: TenantId, name: Name) -> Result<Tenant, StoreError> {
        self.write_now(move |txn, now| {
            let mut table = txn.open_table(TENANTS)?;
            let mut tenant: Tenant = load(&table, id.bytes().as_slice())?
                .ok_or_else(|| StoreError::NotFound(format!("tenant {id} not found")))?;
            tenant.name = name.into_string();
            tenant.updated_at = now;
            put_record(&mut table, &id.bytes(), &tenant)?;
            Ok(tenant)
        })
    }
}
