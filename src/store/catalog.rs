//! A tenant's catalogue: pipeline stages, custom-field definitions and owners, their changes,
//! and the [`Catalog`] a lead write resolves its references against.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::codec::Record;
use super::tables::*;
use crate::domain::catalog::{Color, DEFAULT_STAGES, FieldType, LEAD_LINE, Name, Slug};
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
    pub slug: Option<Slug>,
    pub name: Option<Name>,
    pub color: Option<Option<Color>>,
    pub position: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct OwnerPatch {
    pub name: Option<Name>,
    pub role_name: Option<Option<Name>>,
}

#[derive(Debug, Clone, Default)]
pub struct CustomFieldPatch {
    pub name: Option<Name>,
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
pub(crate) fn ordered_stages(
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
