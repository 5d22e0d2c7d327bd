//! Changes to a tenant's catalogue: stages (kept in pipeline order), custom-field definitions
//! and owners. What leads use cannot be removed.

use super::catalog::{
    CustomField, CustomFieldPatch, Owner, OwnerPatch, Stage, StagePatch, ordered_stages,
};
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::catalog::{Color, FieldType, Name, Slug};
use crate::domain::ids::{CustomFieldId, OwnerId, StageId, TenantId};

impl Store {
    /// Stages in pipeline order.
    pub fn list_stages(&self, tenant: TenantId) -> Result<Vec<Stage>, StoreError> {
        self.read(|txn| ordered_stages(&txn.open_table(STAGES)?, tenant))
    }

    pub fn create_stage(
        &self,
        tenant: TenantId,
        slug: Slug,
        name: Name,
        color: Option<Color>,
    ) -> Result<Stage, StoreError> {
        let (slug, name) = (slug.into_string(), name.into_string());
        let color = color.map(Color::into_string);
        self.write(move |txn| {
            require_tenant(txn, tenant)?;
            let mut table = txn.open_table(STAGES)?;
            let stages: Vec<Stage> = records_under(&table, &tenant.bytes())?;
            refuse_taken_slug("stage", &slug, stages.iter().map(|s| s.slug.as_str()))?;
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
            if let Some(slug) = &patch.slug {
                let others = stages.iter().filter(|s| s.id != id);
                refuse_taken_slug("stage", slug.as_str(), others.map(|s| s.slug.as_str()))?;
            }
            let mut stage = stages.remove(index);
            if let Some(slug) = patch.slug {
                stage.slug = slug.into_string();
            }
            if let Some(name) = patch.name {
                stage.name = name.into_string();
            }
            if let Some(color) = patch.color {
                stage.color = color.map(Color::into_string);
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
        slug: Slug,
        name: Name,
        field_type: FieldType,
    ) -> Result<CustomField, StoreError> {
        let (slug, name) = (slug.into_string(), name.into_string());
        self.write_now(move |txn, now| {
            require_tenant(txn, tenant)?;
            let mut table = txn.open_table(CUSTOM_FIELDS)?;
            let fields: Vec<CustomField> = records_under(&table, &tenant.bytes())?;
            refuse_taken_slug(
                "custom field",
                &slug,
                fields.iter().map(|f| f.slug.as_str()),
            )?;
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
                field.name = name.into_string();
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
        name: Name,
        role_name: Option<Name>,
    ) -> Result<Owner, StoreError> {
        let (name, role_name) = (name.into_string(), role_name.map(Name::into_string));
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
                owner.name = name.into_string();
            }
            if let Some(role_name) = patch.role_name {
                owner.role_name = role_name.map(Name::into_string);
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

/// A conflict when `slug` is among the `taken` slugs of the tenant's `what`s.
fn refuse_taken_slug<'a>(
    what: &str,
    slug: &str,
    mut taken: impl Iterator<Item = &'a str>,
) -> Result<(), StoreError> {
    if taken.any(|t| t == slug) {
        return Err(StoreError::Conflict(format!(
            "a {what} with slug `{slug}` already exists"
        )));
    }
    Ok(())
}
