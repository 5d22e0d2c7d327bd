//! Tenants and their catalogue: pipeline stages, custom-field definitions, owners.

use redb::{ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::codec::{Record, decode, encode};
use super::leads::Lead;
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::catalog::{DEFAULT_STAGES, FieldType, LEAD_LINE};
use crate::domain::ids::{CustomFieldId, OwnerId, StageId, TenantId};
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub id: StageId,
    pub tenant_id: TenantId,
    pub slug: String,
    pub name: String,
    pub color: Option<String>,
    /// 0-based; the stage at position 0 is where new leads land.
    pub position: u32,
}

impl Record for Stage {
    const VERSION: u8 = 1;
    const NAME: &'static str = "stage";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomField {
    pub id: CustomFieldId,
    pub tenant_id: TenantId,
    pub slug: String,
    pub name: String,
    pub field_type: FieldType,
    /// `lead_line`: created with the tenant, cannot be changed or removed.
    pub reserved: bool,
    pub created_at: Timestamp,
}

impl Record for CustomField {
    const VERSION: u8 = 1;
    const NAME: &'static str = "custom field";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    pub id: OwnerId,
    pub tenant_id: TenantId,
    pub name: String,
    pub role_name: Option<String>,
}

impl Record for Owner {
    const VERSION: u8 = 1;
    const NAME: &'static str = "owner";
}

/// Field changes; `None` leaves a field as it is, `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct StagePatch {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub color: Option<Option<String>>,
    pub position: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct OwnerPatch {
    pub name: Option<String>,
    pub role_name: Option<Option<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct CustomFieldPatch {
    pub name: Option<String>,
    pub field_type: Option<FieldType>,
}

/// A tenant's catalogue, loaded once per job: stages in pipeline order.
pub(crate) struct Catalog {
    pub stages: Vec<Stage>,
    pub owners: Vec<Owner>,
    pub fields: Vec<CustomField>,
}

pub(crate) fn load_catalog(txn: &impl Txn, tenant: TenantId) -> Result<Catalog, StoreError> {
    Ok(Catalog {
        stages: ordered_stages(&txn.table(STAGES)?, tenant)?,
        owners: records_under(&txn.table(OWNERS)?, &tenant.bytes())?,
        fields: records_under(&txn.table(CUSTOM_FIELDS)?, &tenant.bytes())?,
    })
}

/// The tenant's stages in pipeline order.
fn ordered_stages(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    tenant: TenantId,
) -> Result<Vec<Stage>, StoreError> {
    let mut stages: Vec<Stage> = records_under(table, &tenant.bytes())?;
    stages.sort_by_key(|s| s.position);
    Ok(stages)
}

/// How many of the tenant's leads satisfy `uses`; for refusing to remove what leads point at.
fn leads_using(
    txn: &WriteTransaction,
    tenant: TenantId,
    uses: impl Fn(&Lead) -> bool,
) -> Result<usize, StoreError> {
    let mut count = 0;
    for entry in prefixed(&txn.open_table(LEADS)?, &tenant.bytes())? {
        let lead: Lead = decode(entry?.1.value())?;
        count += usize::from(uses(&lead));
    }
    Ok(count)
}

pub(crate) fn tenant_exists(txn: &WriteTransaction, tenant: TenantId) -> Result<(), StoreError> {
    match txn.open_table(TENANTS)?.get(tenant.bytes().as_slice())? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!("tenant {tenant} not found"))),
    }
}

fn put<T: Record>(
    table: &mut Table<&[u8], &[u8]>,
    key: &[u8],
    value: &T,
) -> Result<(), StoreError> {
    table.insert(key, encode(value)?.as_slice())?;
    Ok(())
}

impl Store {
    /// A new tenant starts with the default pipeline and the reserved `lead_line` field.
    pub fn create_tenant(&self, name: String) -> Result<Tenant, StoreError> {
        self.write(move |txn| {
            let now = Timestamp::now();
            let tenant = Tenant {
                id: TenantId::new(),
                name,
                created_at: now,
                updated_at: now,
            };
            put(&mut txn.open_table(TENANTS)?, &tenant.id.bytes(), &tenant)?;
            let mut stages = txn.open_table(STAGES)?;
            for (position, (slug, name, color)) in (0u32..).zip(DEFAULT_STAGES) {
                let stage = Stage {
                    id: StageId::new(),
                    tenant_id: tenant.id,
                    slug: slug.into(),
                    name: name.into(),
                    color: Some(color.into()),
                    position,
                };
                put(
                    &mut stages,
                    &key(&[&tenant.id.bytes(), &stage.id.bytes()]),
                    &stage,
                )?;
            }
            let field = CustomField {
                id: CustomFieldId::new(),
                tenant_id: tenant.id,
                slug: LEAD_LINE.into(),
                name: "Lead line".into(),
                field_type: FieldType::String,
                reserved: true,
                created_at: now,
            };
            put(
                &mut txn.open_table(CUSTOM_FIELDS)?,
                &key(&[&tenant.id.bytes(), &field.id.bytes()]),
                &field,
            )?;
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

    pub fn rename_tenant(&self, id: TenantId, name: String) -> Result<Tenant, StoreError> {
        self.write(move |txn| {
            let mut table = txn.open_table(TENANTS)?;
            let mut tenant: Tenant = load(&table, id.bytes().as_slice())?
                .ok_or_else(|| StoreError::NotFound(format!("tenant {id} not found")))?;
            tenant.name = name;
            tenant.updated_at = Timestamp::now();
            put(&mut table, &id.bytes(), &tenant)?;
            Ok(tenant)
        })
    }

    /// Stages in pipeline order.
    pub fn list_stages(&self, tenant: TenantId) -> Result<Vec<Stage>, StoreError> {
        self.read(|txn| ordered_stages(&txn.open_table(STAGES)?, tenant))
    }

    pub fn create_stage(
        &self,
        tenant: TenantId,
        slug: String,
        name: String,
        color: Option<String>,
    ) -> Result<Stage, StoreError> {
        self.write(move |txn| {
            tenant_exists(txn, tenant)?;
            let mut table = txn.open_table(STAGES)?;
            let stages: Vec<Stage> = records_under(&table, &tenant.bytes())?;
            if stages.iter().any(|s| s.slug == slug) {
                return Err(StoreError::Conflict(format!(
                    "a stage with slug `{slug}` already exists"
                )));
            }
            let stage = Stage {
                id: StageId::new(),
                tenant_id: tenant,
                slug,
                name,
                color,
                position: stages.len() as u32,
            };
            put(
                &mut table,
                &key(&[&tenant.bytes(), &stage.id.bytes()]),
                &stage,
            )?;
            Ok(stage)
        })
    }

    pub fn update_stage(
        &self,
        tenant: TenantId,
        id: StageId,
        patch: StagePatch,
    ) -> Result<Stage, StoreError> {
        self.write(move |txn| {
            tenant_exists(txn, tenant)?;
            let mut table = txn.open_table(STAGES)?;
            let mut stages = ordered_stages(&table, tenant)?;
            let index = stages
                .iter()
                .position(|s| s.id == id)
                .ok_or_else(|| StoreError::NotFound(format!("stage {id} not found")))?;
            if let Some(slug) = &patch.slug
                && stages.iter().any(|s| &s.slug == slug && s.id != id)
            {
                return Err(StoreError::Conflict(format!(
                    "a stage with slug `{slug}` already exists"
                )));
            }
            let mut stage = stages.remove(index);
            if let Some(slug) = patch.slug {
                stage.slug = slug;
            }
            if let Some(name) = patch.name {
                stage.name = name;
            }
            if let Some(color) = patch.color {
                stage.color = color;
            }
            let target = patch
                .position
                .map_or(index, |p| (p as usize).min(stages.len()));
            stages.insert(target, stage);
            for (position, s) in (0u32..).zip(stages.iter_mut()) {
                s.position = position;
                put(&mut table, &key(&[&tenant.bytes(), &s.id.bytes()]), s)?;
            }
            Ok(stages.swap_remove(target))
        })
    }

    /// Refuses to remove the last stage, or one that leads are at: every lead needs one.
    pub fn delete_stage(&self, tenant: TenantId, id: StageId) -> Result<(), StoreError> {
        self.write(move |txn| {
            tenant_exists(txn, tenant)?;
            let mut table = txn.open_table(STAGES)?;
            let mut stages = ordered_stages(&table, tenant)?;
            let index = stages
                .iter()
                .position(|s| s.id == id)
                .ok_or_else(|| StoreError::NotFound(format!("stage {id} not found")))?;
            if stages.len() == 1 {
                return Err(StoreError::Conflict(
                    "the last stage of a pipeline cannot be deleted".into(),
                ));
            }
            let used = leads_using(txn, tenant, |l| l.stage_id == id)?;
            if used > 0 {
                return Err(StoreError::Conflict(format!(
                    "{used} leads are at this stage; move them to another stage first"
                )));
            }
            let removed = stages.remove(index);
            table.remove(key(&[&tenant.bytes(), &removed.id.bytes()]).as_slice())?;
            for (position, s) in (0u32..).zip(stages.iter_mut()) {
                if s.position != position {
                    s.position = position;
                    put(&mut table, &key(&[&tenant.bytes(), &s.id.bytes()]), s)?;
                }
            }
            Ok(())
        })
    }

    pub fn list_custom_fields(&self, tenant: TenantId) -> Result<Vec<CustomField>, StoreError> {
        self.read(|txn| records_under(&txn.open_table(CUSTOM_FIELDS)?, &tenant.bytes()))
    }

    pub fn create_custom_field(
        &self,
        tenant: TenantId,
        slug: String,
        name: String,
        field_type: FieldType,
    ) -> Result<CustomField, StoreError> {
        self.write(move |txn| {
            tenant_exists(txn, tenant)?;
            let mut table = txn.open_table(CUSTOM_FIELDS)?;
            let fields: Vec<CustomField> = records_under(&table, &tenant.bytes())?;
            if fields.iter().any(|f| f.slug == slug) {
                return Err(StoreError::Conflict(format!(
                    "a custom field with slug `{slug}` already exists"
                )));
            }
            let field = CustomField {
                id: CustomFieldId::new(),
                tenant_id: tenant,
                slug,
                name,
                field_type,
                reserved: false,
                created_at: Timestamp::now(),
            };
            put(
                &mut table,
                &key(&[&tenant.bytes(), &field.id.bytes()]),
                &field,
            )?;
            Ok(field)
        })
    }

    pub fn update_custom_field(
        &self,
        tenant: TenantId,
        id: CustomFieldId,
        patch: CustomFieldPatch,
    ) -> Result<CustomField, StoreError> {
        self.write(move |txn| {
            tenant_exists(txn, tenant)?;
            let mut table = txn.open_table(CUSTOM_FIELDS)?;
            let k = key(&[&tenant.bytes(), &id.bytes()]);
            let mut field: CustomField = load(&table, k.as_slice())?
                .ok_or_else(|| StoreError::NotFound(format!("custom field {id} not found")))?;
            if field.reserved && patch.field_type.is_some_and(|t| t != field.field_type) {
                return Err(StoreError::Invalid(format!(
                    "the type of the reserved field `{}` cannot change",
                    field.slug
                )));
            }
            if let Some(name) = patch.name {
                field.name = name;
            }
            if let Some(field_type) = patch.field_type {
                field.field_type = field_type;
            }
            put(&mut table, &k, &field)?;
            Ok(field)
        })
    }

    pub fn delete_custom_field(
        &self,
        tenant: TenantId,
        id: CustomFieldId,
    ) -> Result<(), StoreError> {
        self.write(move |txn| {
            tenant_exists(txn, tenant)?;
            let mut table = txn.open_table(CUSTOM_FIELDS)?;
            let k = key(&[&tenant.bytes(), &id.bytes()]);
            let field: CustomField = load(&table, k.as_slice())?
                .ok_or_else(|| StoreError::NotFound(format!("custom field {id} not found")))?;
            if field.reserved {
                return Err(StoreError::Conflict(format!(
                    "the reserved field `{}` cannot be deleted",
                    field.slug
                )));
            }
            table.remove(k.as_slice())?;
            Ok(())
        })
    }

    pub fn list_owners(&self, tenant: TenantId) -> Result<Vec<Owner>, StoreError> {
        self.read(|txn| records_under(&txn.open_table(OWNERS)?, &tenant.bytes()))
    }

    pub fn create_owner(
        &self,
        tenant: TenantId,
        name: String,
        role_name: Option<String>,
    ) -> Result<Owner, StoreError> {
        self.write(move |txn| {
            tenant_exists(txn, tenant)?;
            let owner = Owner {
                id: OwnerId::new(),
                tenant_id: tenant,
                name,
                role_name,
            };
            put(
                &mut txn.open_table(OWNERS)?,
                &key(&[&tenant.bytes(), &owner.id.bytes()]),
                &owner,
            )?;
            Ok(owner)
        })
    }

    pub fn update_owner(
        &self,
        tenant: TenantId,
        id: OwnerId,
        patch: OwnerPatch,
    ) -> Result<Owner, StoreError> {
        self.write(move |txn| {
            tenant_exists(txn, tenant)?;
            let mut table = txn.open_table(OWNERS)?;
            let k = key(&[&tenant.bytes(), &id.bytes()]);
            let mut owner: Owner = load(&table, k.as_slice())?
                .ok_or_else(|| StoreError::NotFound(format!("owner {id} not found")))?;
            if let Some(name) = patch.name {
                owner.name = name;
            }
            if let Some(role_name) = patch.role_name {
                owner.role_name = role_name;
            }
            put(&mut table, &k, &owner)?;
            Ok(owner)
        })
    }

    /// Refuses to remove an owner that leads are assigned to.
    pub fn delete_owner(&self, tenant: TenantId, id: OwnerId) -> Result<(), StoreError> {
        self.write(move |txn| {
            tenant_exists(txn, tenant)?;
            let used = leads_using(txn, tenant, |l| l.owner_id == Some(id))?;
            if used > 0 {
                return Err(StoreError::Conflict(format!(
                    "{used} leads are assigned to this owner; reassign them first"
                )));
            }
            let removed = txn
                .open_table(OWNERS)?
                .remove(key(&[&tenant.bytes(), &id.bytes()]).as_slice())?
                .is_some();
            if removed {
                Ok(())
            } else {
                Err(StoreError::NotFound(format!("owner {id} not found")))
            }
        })
    }
}
