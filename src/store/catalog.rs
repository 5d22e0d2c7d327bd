//! A tenant's catalogue: pipeline stages, custom-field definitions and owners, their changes,
//! and the [`Catalog`] a lead write resolves its references against.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::codec::Record;
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::catalog::{DEFAULT_STAGES, FieldType, LEAD_LINE};
use crate::domain::ids::{CustomFieldId, OwnerId, StageId, TenantId};
use crate::domain::lead::{CustomFields, Resolved, check_custom_fields};
use crate::domain::time::Timestamp;

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

impl Catalog {
    /// The stage a `stage_slug` names.
    pub(crate) fn stage_by_slug(&self, slug: &str) -> Result<&Stage, StoreError> {
        self.stages.iter().find(|s| s.slug == slug).ok_or_else(|| {
            StoreError::Invalid(format!(
                "stage_slug `{slug}` is not a stage of this customer's pipeline"
            ))
        })
    }

    pub(crate) fn stage(&self, id: StageId) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }

    /// Where new leads land.
    pub(crate) fn first_stage(&self, tenant: TenantId) -> Result<&Stage, StoreError> {
        self.stages
            .first()
            .ok_or_else(|| StoreError::Corrupt(format!("tenant {tenant} has no stages")))
    }

    pub(crate) fn owner(&self, id: OwnerId) -> Option<&Owner> {
        self.owners.iter().find(|o| o.id == id)
    }

    fn field_type(&self, slug: &str) -> Option<FieldType> {
        self.fields
            .iter()
            .find(|f| f.slug == slug)
            .map(|f| f.field_type)
    }

    /// Resolves a request's stage slug, owner and custom fields against this catalogue.
    pub(crate) fn resolve(
        &self,
        stage_slug: Option<&str>,
        owner: Option<OwnerId>,
        custom_fields: &CustomFields,
    ) -> Result<Resolved, StoreError> {
        let stage = stage_slug
            .map(|s| self.stage_by_slug(s).map(|s| s.id))
            .transpose()?;
        if let Some(owner) = owner
            && self.owner(owner).is_none()
        {
            return Err(StoreError::Invalid(format!(
                "owner_id {owner} is not an owner of this customer"
            )));
        }
        let fields = check_custom_fields(custom_fields, |slug| self.field_type(slug))
            .map_err(StoreError::Invalid)?;
        Ok(Resolved { stage, fields })
    }
}

/// A new tenant's catalogue: the default pipeline and the reserved `lead_line` field.
pub(crate) fn seed(
    txn: &WriteTransaction,
    tenant: TenantId,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut stages = txn.open_table(STAGES)?;
    for (position, (slug, name, color)) in (0u32..).zip(DEFAULT_STAGES) {
        let stage = Stage {
            id: StageId::new(),
            tenant_id: tenant,
            slug: slug.into(),
            name: name.into(),
            color: Some(color.into()),
            position,
        };
        put_record(
            &mut stages,
            &key(&[&tenant.bytes(), &stage.id.bytes()]),
            &stage,
        )?;
    }
    let field = CustomField {
        id: CustomFieldId::new(),
        tenant_id: tenant,
        slug: LEAD_LINE.into(),
        name: "Lead line".into(),
        field_type: FieldType::String,
        reserved: true,
        created_at: now,
    };
    put_record(
        &mut txn.open_table(CUSTOM_FIELDS)?,
        &key(&[&tenant.bytes(), &field.id.bytes()]),
        &field,
    )?;
    Ok(())
}

impl Store {
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
            require_tenant(txn, tenant)?;
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
            put_record(
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
            require_tenant(txn, tenant)?;
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
                put_record(&mut table, &key(&[&tenant.bytes(), &s.id.bytes()]), s)?;
            }
            Ok(stages.swap_remove(target))
        })
    }

    /// Refuses to remove the last stage, or one that leads are at: every lead needs one.
    pub fn delete_stage(&self, tenant: TenantId, id: StageId) -> Result<(), StoreError> {
        self.write(move |txn| {
            require_tenant(txn, tenant)?;
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
            let used = count_under(
                &txn.open_table(LEADS_BY_STAGE)?,
                &key(&[&tenant.bytes(), &id.bytes()]),
            )?;
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
                    put_record(&mut table, &key(&[&tenant.bytes(), &s.id.bytes()]), s)?;
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
        self.write_now(move |txn, now| {
            require_tenant(txn, tenant)?;
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
                created_at: now,
            };
            put_record(
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
            require_tenant(txn, tenant)?;
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
            put_record(&mut table, &k, &field)?;
            Ok(field)
        })
    }

    pub fn delete_custom_field(
        &self,
        tenant: TenantId,
        id: CustomFieldId,
    ) -> Result<(), StoreError> {
        self.write(move |txn| {
            require_tenant(txn, tenant)?;
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
            require_tenant(txn, tenant)?;
            let owner = Owner {
                id: OwnerId::new(),
                tenant_id: tenant,
                name,
                role_name,
            };
            put_record(
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
            require_tenant(txn, tenant)?;
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
            put_record(&mut table, &k, &owner)?;
            Ok(owner)
        })
    }

    /// Refuses to remove an owner that leads are assigned to.
    pub fn delete_owner(&self, tenant: TenantId, id: OwnerId) -> Result<(), StoreError> {
        self.write(move |txn| {
            require_tenant(txn, tenant)?;
            let used = count_under(
                &txn.open_table(LEADS_BY_OWNER)?,
                &key(&[&tenant.bytes(), &id.bytes()]),
            )?;
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
