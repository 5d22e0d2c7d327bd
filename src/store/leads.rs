//! Leads: records, their unique and sort indexes, create-or-merge, PATCH and bulk import.

use redb::{ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::codec::{Record, encode};
use super::idempotency::{Idempotency, Outcome, StoredResponse, rendered};
use super::outbox::publish;
use super::tables::*;
use super::tenants::{Catalog, load_catalog};
use super::{CustomField, Owner, Stage, Store, StoreError};
use crate::domain::catalog::LEAD_LINE;
use crate::domain::contact::last10_of;
use crate::domain::event::EventType;
use crate::domain::ids::{LeadId, OwnerId, StageId, TenantId};
use crate::domain::lead::{
    CustomFields, LeadInput, LeadPatch, LeadStatus, SourcePlatform, SourceType,
    check_custom_fields, merge_custom_fields,
};
use crate::domain::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    pub id: LeadId,
    pub tenant_id: TenantId,
    pub status: LeadStatus,
    pub source_platform: SourcePlatform,
    pub source_type: SourceType,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub contact_email: Option<String>,
    pub score: Option<i64>,
    pub qualified: Option<bool>,
    pub stage_id: StageId,
    pub owner_id: Option<OwnerId>,
    pub last_interaction_at: Option<Timestamp>,
    pub interaction_count: u32,
    /// A JSON object (slug → scalar), `lead_line` included.
    pub custom_fields_json: String,
}

impl Record for Lead {
    const VERSION: u8 = 1;
    const NAME: &'static str = "lead";
}

impl Lead {
    pub fn custom_fields(&self) -> CustomFields {
        serde_json::from_str(&self.custom_fields_json).unwrap_or_default()
    }

    /// The last ten digits of the phone, when it has at least ten.
    pub fn phone_last10(&self) -> Option<[u8; 10]> {
        last10_of(self.contact_phone.as_deref()?)
    }

    pub fn lead_line(&self) -> Option<String> {
        self.custom_fields()
            .get(LEAD_LINE)
            .and_then(Value::as_str)
            .map(String::from)
    }
}

/// A lead with what it refers to, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadView {
    pub lead: Lead,
    pub stage: Stage,
    pub owner: Option<Owner>,
}

impl LeadView {
    /// The `lead` object of a webhook payload (spec §6).
    pub fn payload(&self) -> Value {
        let lead = &self.lead;
        let mut custom = lead.custom_fields();
        let lead_line = custom.remove(LEAD_LINE);
        json!({
            "id": lead.id,
            "contact_name": lead.contact_name,
            "contact_phone": lead.contact_phone,
            "contact_email": lead.contact_email,
            "source_platform": lead.source_platform,
            "source_type": lead.source_type,
            "lead_line": lead_line,
            "current_stage": { "slug": self.stage.slug, "name": self.stage.name },
            "custom_fields": custom,
            "created_at": lead.created_at,
            "updated_at": lead.updated_at,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchedBy {
    Email,
    Phone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    Created,
    Updated,
    Skipped,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDuplicate {
    Update,
    Skip,
}

/// What happened to one create-or-merge request.
#[derive(Debug, Clone)]
pub struct Applied {
    pub status: RowStatus,
    pub view: LeadView,
    pub matched_by: Option<MatchedBy>,
    pub ignored_custom_fields: Vec<String>,
    /// Deliveries queued by this change.
    pub queued: usize,
}

/// One row of a bulk import.
#[derive(Debug, Clone)]
pub struct RowResult {
    pub status: RowStatus,
    pub lead_id: Option<LeadId>,
    pub matched_by: Option<MatchedBy>,
    pub errors: Vec<String>,
    pub ignored_custom_fields: Vec<String>,
}

pub(crate) fn lead_key(tenant: TenantId, id: LeadId) -> Vec<u8> {
    key(&[&tenant.bytes(), &id.bytes()])
}

fn sort_key(tenant: TenantId, at: Timestamp, id: LeadId) -> Vec<u8> {
    key(&[&tenant.bytes(), &i64_key(at.ms()), &id.bytes()])
}

fn email_key(tenant: TenantId, email: &str) -> Vec<u8> {
    key(&[&tenant.bytes(), email.as_bytes()])
}

fn phone_prefix(tenant: TenantId, last10: &[u8; 10]) -> Vec<u8> {
    key(&[&tenant.bytes(), last10])
}

fn phone_key(tenant: TenantId, last10: &[u8; 10], id: LeadId) -> Vec<u8> {
    key(&[&tenant.bytes(), last10, &id.bytes()])
}

/// The tables a lead lives in, opened once per job.
pub(crate) struct LeadTables<'txn> {
    pub leads: Table<'txn, &'static [u8], &'static [u8]>,
    by_email: Table<'txn, &'static [u8], &'static [u8]>,
    by_phone: Table<'txn, &'static [u8], ()>,
    by_updated: Table<'txn, &'static [u8], ()>,
    by_created: Table<'txn, &'static [u8], ()>,
    counts: Table<'txn, &'static [u8], u64>,
}

impl<'txn> LeadTables<'txn> {
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(LeadTables {
            leads: txn.open_table(LEADS)?,
            by_email: txn.open_table(LEADS_BY_EMAIL)?,
            by_phone: txn.open_table(LEADS_BY_PHONE)?,
            by_updated: txn.open_table(LEADS_BY_UPDATED)?,
            by_created: txn.open_table(LEADS_BY_CREATED)?,
            counts: txn.open_table(LEAD_COUNTS)?,
        })
    }

    pub(crate) fn get(&self, tenant: TenantId, id: LeadId) -> Result<Option<Lead>, StoreError> {
        load(&self.leads, &lead_key(tenant, id))
    }

    fn lookup(
        table: &Table<'txn, &'static [u8], &'static [u8]>,
        k: &[u8],
    ) -> Result<Option<LeadId>, StoreError> {
        Ok(table
            .get(k)?
            .and_then(|v| <[u8; 16]>::try_from(v.value()).ok())
            .map(LeadId::from_bytes))
    }

    /// The lead a request merges into: same normalised email, else same last 10 phone digits.
    fn find_match(
        &self,
        tenant: TenantId,
        input: &LeadInput,
    ) -> Result<Option<(LeadId, MatchedBy)>, StoreError> {
        if let Some(email) = &input.contact_email
            && let Some(id) = Self::lookup(&self.by_email, &email_key(tenant, email.as_str()))?
        {
            return Ok(Some((id, MatchedBy::Email)));
        }
        if let Some(last10) = input.contact_phone.as_ref().and_then(|p| p.last10())
            && let Some(id) = self.phone_holder(tenant, &last10, None)?
        {
            return Ok(Some((id, MatchedBy::Phone)));
        }
        Ok(None)
    }

    /// The lead already holding `email`, other than `except`.
    fn email_holder(
        &self,
        tenant: TenantId,
        email: &str,
        except: LeadId,
    ) -> Result<Option<LeadId>, StoreError> {
        Ok(Self::lookup(&self.by_email, &email_key(tenant, email))?.filter(|id| *id != except))
    }

    /// The oldest lead holding these last 10 digits, other than `except`.
    fn phone_holder(
        &self,
        tenant: TenantId,
        last10: &[u8; 10],
        except: Option<LeadId>,
    ) -> Result<Option<LeadId>, StoreError> {
        let prefix = phone_prefix(tenant, last10);
        for entry in prefixed(&self.by_phone, &prefix)? {
            let id = id_at(entry?.0.value(), prefix.len()).map(LeadId::from_bytes);
            if id.is_some() && id != except {
                return Ok(id);
            }
        }
        Ok(None)
    }

    /// Writes `lead`, keeping every index in step with what `old` had.
    fn put(&mut self, old: Option<&Lead>, lead: &Lead) -> Result<(), StoreError> {
        let tenant = lead.tenant_id;
        let id = lead.id.bytes();
        let old_phone = old.and_then(Lead::phone_last10);
        let new_phone = lead.phone_last10();
        if let Some(old) = old {
            if old.contact_email != lead.contact_email
                && let Some(email) = &old.contact_email
            {
                let k = email_key(tenant, email);
                if Self::lookup(&self.by_email, &k)? == Some(lead.id) {
                    self.by_email.remove(k.as_slice())?;
                }
            }
            if old_phone != new_phone
                && let Some(last10) = old_phone
            {
                self.by_phone
                    .remove(phone_key(tenant, &last10, lead.id).as_slice())?;
            }
            if old.updated_at != lead.updated_at {
                self.by_updated
                    .remove(sort_key(tenant, old.updated_at, lead.id).as_slice())?;
            }
        } else {
            self.by_created
                .insert(sort_key(tenant, lead.created_at, lead.id).as_slice(), ())?;
            let count = self
                .counts
                .get(tenant.bytes().as_slice())?
                .map_or(0, |v| v.value());
            self.counts.insert(tenant.bytes().as_slice(), count + 1)?;
        }
        if let Some(email) = &lead.contact_email {
            let k = email_key(tenant, email);
            if Self::lookup(&self.by_email, &k)?.is_none() {
                self.by_email.insert(k.as_slice(), id.as_slice())?;
            }
        }
        if let Some(last10) = new_phone.filter(|_| old_phone != new_phone) {
            self.by_phone
                .insert(phone_key(tenant, &last10, lead.id).as_slice(), ())?;
        }
        self.by_updated
            .insert(sort_key(tenant, lead.updated_at, lead.id).as_slice(), ())?;
        self.leads.insert(
            lead_key(tenant, lead.id).as_slice(),
            encode(lead)?.as_slice(),
        )?;
        Ok(())
    }
}

impl Catalog {
    pub(crate) fn stage_by_slug(&self, slug: &str) -> Result<&Stage, StoreError> {
        self.stages.iter().find(|s| s.slug == slug).ok_or_else(|| {
            StoreError::Invalid(format!(
                "stage_slug `{slug}` is not a stage of this customer's pipeline"
            ))
        })
    }

    fn owner(&self, id: OwnerId) -> Result<&Owner, StoreError> {
        self.owners.iter().find(|o| o.id == id).ok_or_else(|| {
            StoreError::Invalid(format!("owner_id {id} is not an owner of this customer"))
        })
    }

    fn field_type(&self, slug: &str) -> Option<crate::domain::catalog::FieldType> {
        self.fields
            .iter()
            .find(|f| f.slug == slug)
            .map(|f: &CustomField| f.field_type)
    }

    pub(crate) fn view(&self, lead: Lead) -> Result<LeadView, StoreError> {
        let stage = self
            .stages
            .iter()
            .find(|s| s.id == lead.stage_id)
            .cloned()
            .ok_or_else(|| {
                StoreError::Corrupt(format!("lead {} refers to a missing stage", lead.id))
            })?;
        let owner = lead
            .owner_id
            .and_then(|id| self.owners.iter().find(|o| o.id == id).cloned());
        Ok(LeadView { lead, stage, owner })
    }
}

fn custom_json(fields: &CustomFields) -> Result<String, StoreError> {
    serde_json::to_string(fields).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Sets `slot` to `value` when different, recording `name` as changed.
fn assign<T: PartialEq>(slot: &mut T, value: T, name: &str, changed: &mut Vec<String>) {
    if *slot != value {
        *slot = value;
        changed.push(name.to_string());
    }
}

fn merge_custom(
    lead: &mut Lead,
    incoming: &CustomFields,
    changed: &mut Vec<String>,
) -> Result<(), StoreError> {
    let mut fields = lead.custom_fields();
    let before = fields.clone();
    if merge_custom_fields(&mut fields, incoming) {
        for slug in incoming.keys().filter(|s| before.get(*s) != fields.get(*s)) {
            changed.push(if slug == LEAD_LINE {
                LEAD_LINE.to_string()
            } else {
                format!("custom_fields.{slug}")
            });
        }
        lead.custom_fields_json = custom_json(&fields)?;
    }
    Ok(())
}

/// What every lead change inside one job shares.
pub(crate) struct Ctx<'a> {
    pub txn: &'a WriteTransaction,
    pub catalog: &'a Catalog,
    pub tenant: TenantId,
    pub now: Timestamp,
}

/// Create-or-merge of one request, inside a job. Checks everything before writing.
pub(crate) fn apply(
    tables: &mut LeadTables<'_>,
    ctx: &Ctx<'_>,
    input: &LeadInput,
    on_duplicate: OnDuplicate,
    emit: bool,
) -> Result<Applied, StoreError> {
    let Ctx {
        txn,
        catalog,
        tenant,
        now,
    } = *ctx;
    let stage = input
        .stage_slug
        .as_deref()
        .map(|s| catalog.stage_by_slug(s))
        .transpose()?;
    if let Some(owner) = input.owner_id {
        catalog.owner(owner)?;
    }
    let fields = check_custom_fields(&input.custom_fields, |slug| catalog.field_type(slug))
        .map_err(StoreError::Invalid)?;

    let Some((id, matched_by)) = tables.find_match(tenant, input)? else {
        let default_stage = catalog
            .stages
            .first()
            .ok_or_else(|| StoreError::Corrupt(format!("tenant {tenant} has no stages")))?;
        let mut custom = CustomFields::new();
        merge_custom_fields(&mut custom, &fields.accepted);
        let lead = Lead {
            id: LeadId::new(),
            tenant_id: tenant,
            status: LeadStatus::Active,
            source_platform: input.source_platform.unwrap_or(SourcePlatform::Direct),
            source_type: input.source_type.unwrap_or(SourceType::Manual),
            created_at: now,
            updated_at: now,
            contact_name: input.contact_name.clone(),
            contact_phone: input.contact_phone.as_ref().map(|p| p.as_str().to_string()),
            contact_email: input.contact_email.as_ref().map(|e| e.as_str().to_string()),
            score: None,
            qualified: None,
            stage_id: stage.unwrap_or(default_stage).id,
            owner_id: input.owner_id,
            last_interaction_at: None,
            interaction_count: 0,
            custom_fields_json: custom_json(&custom)?,
        };
        tables.put(None, &lead)?;
        let view = catalog.view(lead)?;
        let queued = if emit {
            publish(
                txn,
                tenant,
                EventType::LeadCreated,
                view.payload().to_string(),
                None,
                now,
            )?
        } else {
            0
        };
        return Ok(Applied {
            status: RowStatus::Created,
            view,
            matched_by: None,
            ignored_custom_fields: fields.ignored,
            queued,
        });
    };

    let old = tables
        .get(tenant, id)?
        .ok_or_else(|| StoreError::Corrupt(format!("index points at missing lead {id}")))?;
    if on_duplicate == OnDuplicate::Skip {
        return Ok(Applied {
            status: RowStatus::Skipped,
            view: catalog.view(old)?,
            matched_by: Some(matched_by),
            ignored_custom_fields: fields.ignored,
            queued: 0,
        });
    }
    let mut lead = old.clone();
    let mut changed = Vec::new();
    if let Some(name) = &input.contact_name {
        assign(
            &mut lead.contact_name,
            Some(name.clone()),
            "contact_name",
            &mut changed,
        );
    }
    if let Some(phone) = &input.contact_phone {
        assign(
            &mut lead.contact_phone,
            Some(phone.as_str().to_string()),
            "contact_phone",
            &mut changed,
        );
    }
    if let Some(email) = &input.contact_email {
        assign(
            &mut lead.contact_email,
            Some(email.as_str().to_string()),
            "contact_email",
            &mut changed,
        );
    }
    if let Some(stage) = stage {
        assign(&mut lead.stage_id, stage.id, "current_stage", &mut changed);
    }
    if let Some(owner) = input.owner_id {
        assign(&mut lead.owner_id, Some(owner), "owner", &mut changed);
    }
    merge_custom(&mut lead, &fields.accepted, &mut changed)?;
    let (view, queued) = finish_update(tables, ctx, &old, lead, changed, emit)?;
    Ok(Applied {
        status: RowStatus::Updated,
        view,
        matched_by: Some(matched_by),
        ignored_custom_fields: fields.ignored,
        queued,
    })
}

/// Writes a changed lead (moving `updated_at`) and emits `lead.updated`; a request that changed
/// nothing writes nothing. Returns the lead's view and how many deliveries were queued.
fn finish_update(
    tables: &mut LeadTables<'_>,
    ctx: &Ctx<'_>,
    old: &Lead,
    mut lead: Lead,
    changed: Vec<String>,
    emit: bool,
) -> Result<(LeadView, usize), StoreError> {
    let Ctx {
        txn, catalog, now, ..
    } = *ctx;
    if changed.is_empty() {
        return Ok((catalog.view(lead)?, 0));
    }
    // Never move backwards, so a lead's updated_at only grows even if the clock steps back.
    lead.updated_at = now.max(old.updated_at);
    tables.put(Some(old), &lead)?;
    let view = catalog.view(lead)?;
    if !emit {
        return Ok((view, 0));
    }
    let queued = publish(
        txn,
        view.lead.tenant_id,
        EventType::LeadUpdated,
        view.payload().to_string(),
        Some(changed),
        now,
    )?;
    Ok((view, queued))
}

fn patch_lead(
    tables: &mut LeadTables<'_>,
    ctx: &Ctx<'_>,
    id: LeadId,
    patch: &LeadPatch,
) -> Result<(LeadView, usize), StoreError> {
    let Ctx {
        catalog, tenant, ..
    } = *ctx;
    let old = tables
        .get(tenant, id)?
        .ok_or_else(|| StoreError::NotFound(format!("lead {id} not found")))?;
    let stage = patch
        .stage_slug
        .as_deref()
        .map(|s| catalog.stage_by_slug(s))
        .transpose()?;
    if let Some(Some(owner)) = patch.owner_id {
        catalog.owner(owner)?;
    }
    let fields = check_custom_fields(&patch.custom_fields, |slug| catalog.field_type(slug))
        .map_err(StoreError::Invalid)?;
    if !fields.ignored.is_empty() {
        return Err(StoreError::Invalid(format!(
            "custom_fields: unknown custom field slugs {}",
            fields.ignored.join(", ")
        )));
    }
    if let Some(Some(email)) = &patch.contact_email
        && let Some(holder) = tables.email_holder(tenant, email.as_str(), id)?
    {
        return Err(StoreError::Conflict(format!(
            "lead {holder} already has contact_email {}",
            email.as_str()
        )));
    }
    if let Some(Some(phone)) = &patch.contact_phone
        && let Some(last10) = phone.last10()
        && let Some(holder) = tables.phone_holder(tenant, &last10, Some(id))?
    {
        return Err(StoreError::Conflict(format!(
            "lead {holder} already has a phone ending in these 10 digits"
        )));
    }

    let mut lead = old.clone();
    let mut changed = Vec::new();
    if let Some(name) = &patch.contact_name {
        assign(
            &mut lead.contact_name,
            name.clone(),
            "contact_name",
            &mut changed,
        );
    }
    if let Some(phone) = &patch.contact_phone {
        assign(
            &mut lead.contact_phone,
            phone.as_ref().map(|p| p.as_str().to_string()),
            "contact_phone",
            &mut changed,
        );
    }
    if let Some(email) = &patch.contact_email {
        assign(
            &mut lead.contact_email,
            email.as_ref().map(|e| e.as_str().to_string()),
            "contact_email",
            &mut changed,
        );
    }
    if lead.contact_name.is_none() && lead.contact_phone.is_none() && lead.contact_email.is_none() {
        return Err(StoreError::Invalid(
            "a lead keeps at least one of contact_name, contact_phone, contact_email".into(),
        ));
    }
    if let Some(platform) = patch.source_platform {
        assign(
            &mut lead.source_platform,
            platform,
            "source_platform",
            &mut changed,
        );
    }
    if let Some(source_type) = patch.source_type {
        assign(
            &mut lead.source_type,
            source_type,
            "source_type",
            &mut changed,
        );
    }
    if let Some(stage) = stage {
        assign(&mut lead.stage_id, stage.id, "current_stage", &mut changed);
    }
    if let Some(owner) = patch.owner_id {
        assign(&mut lead.owner_id, owner, "owner", &mut changed);
    }
    if let Some(status) = patch.status {
        assign(&mut lead.status, status, "status", &mut changed);
    }
    if let Some(score) = patch.score {
        assign(&mut lead.score, score, "score", &mut changed);
    }
    if let Some(qualified) = patch.qualified {
        assign(&mut lead.qualified, qualified, "qualified", &mut changed);
    }
    merge_custom(&mut lead, &fields.accepted, &mut changed)?;
    finish_update(tables, ctx, &old, lead, changed, true)
}

/// Runs `work` over the tenant's lead tables and catalogue, inside a write job.
fn with_leads<T>(
    txn: &WriteTransaction,
    tenant: TenantId,
    now: Timestamp,
    work: impl FnOnce(&mut LeadTables<'_>, &Ctx<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let catalog = load_catalog(txn, tenant)?;
    let mut tables = LeadTables::open(txn)?;
    let ctx = Ctx {
        txn,
        catalog: &catalog,
        tenant,
        now,
    };
    work(&mut tables, &ctx)
}

impl Store {
    /// `POST /leads`: create, or merge into the lead with the same email or phone.
    pub fn create_lead(
        &self,
        tenant: TenantId,
        input: LeadInput,
        idem: Option<Idempotency>,
        render: impl FnOnce(Result<&Applied, &StoreError>) -> StoredResponse + Send + 'static,
    ) -> Result<Outcome, StoreError> {
        let (outcome, applied) = self.write_rendered(
            idem,
            move |txn, now| {
                with_leads(txn, tenant, now, |tables, ctx| {
                    apply(tables, ctx, &input, OnDuplicate::Update, true)
                })
            },
            render,
        )?;
        if applied.is_some_and(|a| a.queued > 0) {
            self.wake_deliveries();
        }
        Ok(outcome)
    }

    pub fn patch_lead(
        &self,
        tenant: TenantId,
        id: LeadId,
        patch: LeadPatch,
        idem: Option<Idempotency>,
        render: impl FnOnce(Result<&LeadView, &StoreError>) -> StoredResponse + Send + 'static,
    ) -> Result<Outcome, StoreError> {
        let (outcome, patched) = self.write_rendered(
            idem,
            move |txn, now| {
                with_leads(txn, tenant, now, |tables, ctx| {
                    patch_lead(tables, ctx, id, &patch)
                })
            },
            move |result| render(result.map(|(view, _)| view)),
        )?;
        if patched.is_some_and(|(_, queued)| queued > 0) {
            self.wake_deliveries();
        }
        Ok(outcome)
    }

    /// `POST /leads/bulk`. Rows that failed to parse arrive as their errors. Every other row is
    /// applied in order in one transaction; a row refused by the catalogue fails alone. A dry
    /// run does the same work in a transaction that is then thrown away.
    pub fn bulk_import(
        &self,
        tenant: TenantId,
        rows: Vec<Result<LeadInput, Vec<String>>>,
        on_duplicate: OnDuplicate,
        dry_run: bool,
        idem: Option<Idempotency>,
        render: impl FnOnce(Result<&Vec<RowResult>, &StoreError>) -> StoredResponse + Send + 'static,
    ) -> Result<Outcome, StoreError> {
        let work =
            move |txn: &WriteTransaction, now: Timestamp| -> Result<Vec<RowResult>, StoreError> {
                with_leads(txn, tenant, now, |tables, ctx| {
                    let mut results = Vec::with_capacity(rows.len());
                    // Leads this request creates: a dry run reports no id for them, not even when a
                    // later row matches one.
                    let mut created = std::collections::HashSet::new();
                    for row in &rows {
                        let input = match row {
                            Ok(input) => input,
                            Err(errors) => {
                                results.push(RowResult::failed(errors.clone()));
                                continue;
                            }
                        };
                        match apply(tables, ctx, input, on_duplicate, false) {
                            Ok(applied) => results.push(RowResult {
                                status: applied.status,
                                lead_id: {
                                    let id = applied.view.lead.id;
                                    if applied.status == RowStatus::Created {
                                        created.insert(id);
                                    }
                                    (!(dry_run && created.contains(&id))).then_some(id)
                                },
                                matched_by: applied.matched_by,
                                errors: Vec::new(),
                                ignored_custom_fields: applied.ignored_custom_fields,
                            }),
                            Err(e) if e.poisons_batch() => return Err(e),
                            Err(e) => results.push(RowResult::failed(vec![e.to_string()])),
                        }
                    }
                    Ok(results)
                })
            };
        if dry_run {
            // Dry runs are not stored: no key.
            return self.write_discarded(move |txn| Ok(rendered(txn, None, work, render)?.0));
        }
        Ok(self.write_rendered(idem, work, render)?.0)
    }

    pub fn get_lead(&self, tenant: TenantId, id: LeadId) -> Result<Option<LeadView>, StoreError> {
        self.read(|txn| {
            let Some(lead) = load::<Lead>(&txn.open_table(LEADS)?, &lead_key(tenant, id))? else {
                return Ok(None);
            };
            load_catalog(txn, tenant)?.view(lead).map(Some)
        })
    }
}

impl RowResult {
    fn failed(errors: Vec<String>) -> RowResult {
        RowResult {
            status: RowStatus::Failed,
            lead_id: None,
            matched_by: None,
            errors,
            ignored_custom_fields: Vec::new(),
        }
    }
}
