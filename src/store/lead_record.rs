//! How a lead is stored: the record, its unique and sort indexes, and the index bookkeeping
//! every write goes through; and [`LeadView`], a lead with the stage and owner it refers to.

use redb::{ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::StoreError;
use super::catalog::{Catalog, Owner, Stage};
use super::codec::{Record, encode};
use super::lead_index::{IndexTables, TenantIndex};
use super::tables::*;
use crate::domain::catalog::LEAD_LINE;
use crate::domain::ids::{LeadId, OwnerId, StageId, TenantId};
use crate::domain::lead::{
    CustomFields, Lead, LeadInput, LeadStatus, MatchedBy, Refusal, SourcePlatform, SourceType,
};
use crate::domain::time::Timestamp;

impl Record for Lead {
    const VERSION: u8 = 2;
    const NAME: &'static str = "lead";

    /// Format 1 had no `version`: such a lead is at version 1. (Schema 4's migration rewrites
    /// every lead in format 2; this read is what it reads them with.)
    fn upgrade(version: u8, bytes: &[u8]) -> Result<Self, StoreError> {
        #[derive(serde::Deserialize)]
        struct LeadV1 {
            id: LeadId,
            tenant_id: TenantId,
            status: LeadStatus,
            source_platform: SourcePlatform,
            source_type: SourceType,
            created_at: Timestamp,
            updated_at: Timestamp,
            contact_name: Option<String>,
            contact_phone: Option<String>,
            contact_email: Option<String>,
            score: Option<i64>,
            qualified: Option<bool>,
            stage_id: StageId,
            owner_id: Option<OwnerId>,
            last_interaction_at: Option<Timestamp>,
            interaction_count: u32,
            custom_fields_json: String,
        }
        if version != 1 {
            return Err(StoreError::Corrupt(format!(
                "lead record has format version {version}, this leadbase reads up to {}",
                Self::VERSION
            )));
        }
        let v1: LeadV1 = postcard::from_bytes(bytes)
            .map_err(|e| StoreError::Corrupt(format!("cannot decode lead record (v1): {e}")))?;
        Ok(Lead {
            id: v1.id,
            tenant_id: v1.tenant_id,
            status: v1.status,
            source_platform: v1.source_platform,
            source_type: v1.source_type,
            created_at: v1.created_at,
            updated_at: v1.updated_at,
            contact_name: v1.contact_name,
            contact_phone: v1.contact_phone,
            contact_email: v1.contact_email,
            score: v1.score,
            qualified: v1.qualified,
            stage_id: v1.stage_id,
            owner_id: v1.owner_id,
            last_interaction_at: v1.last_interaction_at,
            interaction_count: v1.interaction_count,
            custom_fields_json: v1.custom_fields_json,
            version: 1,
        })
    }
}

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> StoreError {
        match refusal {
            Refusal::CorruptCustomFields(..) => StoreError::Corrupt(refusal.to_string()),
            Refusal::NoContact | Refusal::UnknownCustomFields(_) => {
                StoreError::Invalid(refusal.to_string())
            }
        }
    }
}

/// A lead with what it refers to and its custom fields decoded, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadView {
    pub lead: Lead,
    pub stage: Stage,
    pub owner: Option<Owner>,
    /// `lead_line` included.
    pub custom_fields: CustomFields,
}

impl LeadView {
    pub(crate) fn new(lead: Lead, catalog: &Catalog) -> Result<LeadView, StoreError> {
        let stage = catalog.stage(lead.stage_id).cloned().ok_or_else(|| {
            StoreError::Corrupt(format!("lead {} refers to a missing stage", lead.id))
        })?;
        let owner = lead.owner_id.and_then(|id| catalog.owner(id).cloned());
        let custom_fields = lead.custom_fields()?;
        Ok(LeadView {
            lead,
            stage,
            owner,
            custom_fields,
        })
    }

    /// The lead as an event keeps it: the record and the names of what it refers to.
    pub fn snapshot(&self) -> LeadSnapshot {
        LeadSnapshot {
            lead: self.lead.clone(),
            stage_slug: self.stage.slug.clone(),
            stage_name: self.stage.name.clone(),
            owner: self.owner.as_ref().map(|o| (o.id, o.name.clone())),
        }
    }
}

/// A lead as an event stores it: the record itself (a compact binary copy, not JSON text) and
/// the stage and owner names it had then. The writer only copies it; the JSON a receiver reads
/// is rendered by whoever sends or lists the event ([`LeadSnapshot::payload`]). It is stored
/// inside the event record in `Lead`'s layout: a change to that layout must bump the event
/// record's format version too, and teach its upgrade the old snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadSnapshot {
    pub lead: Lead,
    pub stage_slug: String,
    pub stage_name: String,
    pub owner: Option<(OwnerId, String)>,
}

impl LeadSnapshot {
    /// The `lead` object of an event (spec §6 and §11.2): what a receiver needs to act on the
    /// lead without calling back, custom fields without `lead_line` (it has its own member).
    pub fn payload(&self) -> Value {
        let lead = &self.lead;
        // The writer decoded these when it took the snapshot; failing now means damage since.
        let mut custom = lead.custom_fields().unwrap_or_else(|e| {
            tracing::error!(error = %e, "an event's lead snapshot has damaged custom fields");
            CustomFields::new()
        });
        let lead_line = custom.remove(LEAD_LINE);
        json!({
            "id": lead.id,
            "contact_name": lead.contact_name,
            "contact_phone": lead.contact_phone,
            "contact_email": lead.contact_email,
            "source_platform": lead.source_platform,
            "source_type": lead.source_type,
            "lead_line": lead_line,
            "current_stage": { "slug": self.stage_slug, "name": self.stage_name },
            "custom_fields": custom,
            "created_at": lead.created_at,
            "updated_at": lead.updated_at,
            "status": lead.status,
            "score": lead.score,
            "qualified": lead.qualified,
            "owner": self.owner.as_ref().map(|(id, name)| json!({ "id": id, "name": name })),
            "interaction_count": lead.interaction_count,
            "last_interaction_at": lead.last_interaction_at,
            "version": lead.version,
        })
    }
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

/// An entry of the stage and owner indexes: the lead under what it refers to.
pub(crate) fn ref_key(tenant: TenantId, referent: &[u8; 16], id: LeadId) -> Vec<u8> {
    key(&[&tenant.bytes(), referent, &id.bytes()])
}

fn phone_key(tenant: TenantId, last10: &[u8; 10], id: LeadId) -> Vec<u8> {
    key(&[&tenant.bytes(), last10, &id.bytes()])
}

/// The tables a lead lives in, opened once per job.
pub(crate) struct LeadTables<'txn> {
    leads: Table<'txn, &'static [u8], &'static [u8]>,
    by_email: Table<'txn, &'static [u8], &'static [u8]>,
    by_phone: Table<'txn, &'static [u8], ()>,
    by_updated: Table<'txn, &'static [u8], u32>,
    by_created: Table<'txn, &'static [u8], u32>,
    by_stage: Table<'txn, &'static [u8], ()>,
    by_owner: Table<'txn, &'static [u8], ()>,
    counts: Table<'txn, &'static [u8], u64>,
    index: IndexTables<'txn>,
}

impl<'txn> LeadTables<'txn> {
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(LeadTables {
            leads: txn.open_table(LEADS)?,
            by_email: txn.open_table(LEADS_BY_EMAIL)?,
            by_phone: txn.open_table(LEADS_BY_PHONE)?,
            by_updated: txn.open_table(LEADS_BY_UPDATED)?,
            by_created: txn.open_table(LEADS_BY_CREATED)?,
            by_stage: txn.open_table(LEADS_BY_STAGE)?,
            by_owner: txn.open_table(LEADS_BY_OWNER)?,
            counts: txn.open_table(LEAD_COUNTS)?,
            index: IndexTables::open(txn)?,
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
    pub(crate) fn find_match(
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
    pub(crate) fn email_holder(
        &self,
        tenant: TenantId,
        email: &str,
        except: LeadId,
    ) -> Result<Option<LeadId>, StoreError> {
        Ok(Self::lookup(&self.by_email, &email_key(tenant, email))?.filter(|id| *id != except))
    }

    /// The oldest lead holding these last 10 digits, other than `except`.
    pub(crate) fn phone_holder(
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

    /// The ordinal of a stored lead (see `lead_index`), from its created-at index entry.
    fn ordinal(&self, lead: &Lead) -> Result<u32, StoreError> {
        let k = sort_key(lead.tenant_id, lead.created_at, lead.id);
        match self.by_created.get(k.as_slice())? {
            Some(v) => Ok(v.value()),
            None => Err(StoreError::Corrupt(format!(
                "lead {} is missing from the created-at index",
                lead.id
            ))),
        }
    }

    /// Removes `lead` and every index entry it has (spec §12.1).
    pub(crate) fn remove(&mut self, lead: &Lead) -> Result<(), StoreError> {
        let tenant = lead.tenant_id;
        let ordinal = self.ordinal(lead)?;
        self.index.remove(ordinal, lead)?;
        if let Some(email) = &lead.contact_email {
            let k = email_key(tenant, email);
            if Self::lookup(&self.by_email, &k)? == Some(lead.id) {
                self.by_email.remove(k.as_slice())?;
            }
        }
        if let Some(last10) = lead.phone_last10() {
            self.by_phone
                .remove(phone_key(tenant, &last10, lead.id).as_slice())?;
        }
        self.by_updated
            .remove(sort_key(tenant, lead.updated_at, lead.id).as_slice())?;
        self.by_created
            .remove(sort_key(tenant, lead.created_at, lead.id).as_slice())?;
        self.by_stage
            .remove(ref_key(tenant, &lead.stage_id.bytes(), lead.id).as_slice())?;
        if let Some(owner) = lead.owner_id {
            self.by_owner
                .remove(ref_key(tenant, &owner.bytes(), lead.id).as_slice())?;
        }
        let count = self
            .counts
            .get(tenant.bytes().as_slice())?
            .map_or(0, |v| v.value());
        // A tenant without leads has no count (what a rebuild writes, and a check compares).
        match count.saturating_sub(1) {
            0 => self.counts.remove(tenant.bytes().as_slice())?,
            n => self.counts.insert(tenant.bytes().as_slice(), n)?,
        };
        self.leads.remove(lead_key(tenant, lead.id).as_slice())?;
        Ok(())
    }

    /// Writes `lead`, keeping every index in step with what `old` had.
    pub(crate) fn put(&mut self, old: Option<&Lead>, lead: &Lead) -> Result<(), StoreError> {
        self.put_as(old, lead, None)
    }

    /// [`LeadTables::put`]; a lead new to these tables takes `numbered` (a rebuild keeping
    /// the file's numbers), else the next ordinal.
    fn put_as(
        &mut self,
        old: Option<&Lead>,
        lead: &Lead,
        numbered: Option<u32>,
    ) -> Result<(), StoreError> {
        let tenant = lead.tenant_id;
        let id = lead.id.bytes();
        let old_phone = old.and_then(Lead::phone_last10);
        let new_phone = lead.phone_last10();
        let ordinal = match (old, numbered) {
            (Some(old), _) => self.ordinal(old)?,
            (None, Some(ordinal)) => {
                self.index.claim(lead, ordinal)?;
                ordinal
            }
            (None, None) => self.index.allocate(lead)?,
        };
        self.index.put(ordinal, old, lead)?;
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
            if old.stage_id != lead.stage_id {
                self.by_stage
                    .remove(ref_key(tenant, &old.stage_id.bytes(), lead.id).as_slice())?;
            }
            if old.owner_id != lead.owner_id
                && let Some(owner) = old.owner_id
            {
                self.by_owner
                    .remove(ref_key(tenant, &owner.bytes(), lead.id).as_slice())?;
            }
        } else {
            self.by_created.insert(
                sort_key(tenant, lead.created_at, lead.id).as_slice(),
                ordinal,
            )?;
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
        self.by_updated.insert(
            sort_key(tenant, lead.updated_at, lead.id).as_slice(),
            ordinal,
        )?;
        if old.is_none_or(|o| o.stage_id != lead.stage_id) {
            self.by_stage.insert(
                ref_key(tenant, &lead.stage_id.bytes(), lead.id).as_slice(),
                (),
            )?;
        }
        if let Some(owner) = lead
            .owner_id
            .filter(|_| old.is_none_or(|o| o.owner_id != lead.owner_id))
        {
            self.by_owner
                .insert(ref_key(tenant, &owner.bytes(), lead.id).as_slice(), ())?;
        }
        self.leads.insert(
            lead_key(tenant, lead.id).as_slice(),
            encode(lead)?.as_slice(),
        )?;
        Ok(())
    }
}

/// A lead to index in a rebuild: created at, id, and the number it keeps (if any).
type Entry = (i64, [u8; 16], Option<u32>);

/// Every lead of `leads` by tenant, with its number from `by_created` when given.
fn collect_leads(
    leads: &impl ReadableTable<&'static [u8], &'static [u8]>,
    by_created: Option<&impl ReadableTable<&'static [u8], u32>>,
) -> Result<std::collections::BTreeMap<[u8; 16], Vec<Entry>>, StoreError> {
    let mut out: std::collections::BTreeMap<[u8; 16], Vec<Entry>> = Default::default();
    for entry in leads.iter()? {
        let lead: Lead = super::codec::decode(entry?.1.value())?;
        let ordinal = match by_created {
            Some(index) => index
                .get(sort_key(lead.tenant_id, lead.created_at, lead.id).as_slice())?
                .map(|v| v.value()),
            None => None,
        };
        out.entry(lead.tenant_id.bytes()).or_default().push((
            lead.created_at.ms(),
            lead.id.bytes(),
            ordinal,
        ));
    }
    Ok(out)
}

/// Every table derived from the lead records, written through the same `put` as every write,
/// tenant by tenant in created order, in batches of 10,000 with a progress line for a large
/// file. With `from`, into another file (`leadbase check` builds what `from`'s indexes should
/// be, keeping its leads' numbers to compare); without, in place: the derived tables are
/// dropped and the leads numbered anew, dense and in created order (the migration to schema
/// 7, `leadbase check --repair`).
pub(crate) fn rebuild_lead_indexes(
    into: &WriteTransaction,
    from: Option<&redb::ReadTransaction>,
) -> Result<u64, StoreError> {
    let rebuilt = rebuild(into, from);
    if rebuilt.is_err() {
        // Nothing noted for a transaction that will not commit may reach the next one.
        super::lead_index::discard();
    }
    rebuilt
}

fn rebuild(
    into: &WriteTransaction,
    from: Option<&redb::ReadTransaction>,
) -> Result<u64, StoreError> {
    let by_tenant = match from {
        Some(txn) => collect_leads(
            &txn.open_table(LEADS)?,
            Some(&txn.open_table(LEADS_BY_CREATED)?),
        )?,
        None => {
            into.delete_table(LEADS_BY_EMAIL)?;
            for table in [LEADS_BY_PHONE, LEADS_BY_STAGE, LEADS_BY_OWNER] {
                into.delete_table(table)?;
            }
            for table in [LEADS_BY_CREATED, LEADS_BY_UPDATED] {
                into.delete_table(table)?;
            }
            into.delete_table(LEAD_COUNTS)?;
            super::lead_index::drop_tables(into)?;
            collect_leads(
                &into.open_table(LEADS)?,
                None::<&redb::ReadOnlyTable<&'static [u8], u32>>,
            )?
        }
    };
    // Every derived table exists afterwards, even with no lead to put in it.
    drop(LeadTables::open(into)?);
    super::lead_index::create_tables(into)?;
    let source = from.map(|txn| txn.open_table(LEADS)).transpose()?;
    let total: usize = by_tenant.values().map(Vec::len).sum();
    let mut done = 0u64;
    for (tenant, mut leads) in by_tenant {
        // In created order; within a millisecond by the number kept (so that numbers which
        // follow creation are claimed in order), else by id.
        leads.sort_unstable_by_key(|(at, id, ordinal)| (*at, ordinal.unwrap_or(u32::MAX), *id));
        let tenant = TenantId::from_bytes(tenant);
        for batch in leads.chunks(10_000) {
            {
                let mut tables = LeadTables::open(into)?;
                for (_, id, ordinal) in batch {
                    let id = LeadId::from_bytes(*id);
                    let lead = match &source {
                        Some(leads) => load::<Lead>(leads, &lead_key(tenant, id))?,
                        None => tables.get(tenant, id)?,
                    };
                    if let Some(lead) = lead {
                        tables.put_as(None, &lead, *ordinal)?;
                        done += 1;
                    }
                }
            }
            super::lead_index::flush(into)?;
            if total > 50_000 && done % 100_000 < 10_000 {
                tracing::info!(leads = done, of = total, "indexing leads");
            }
        }
        // Numbers kept: the counter as the file has it (past deleted leads too), so that the
        // same chunks are sealed (their search sets written) as there.
        if let Some(txn) = from {
            let next = TenantIndex::open(txn, tenant)?.next_ordinal();
            LeadTables::open(into)?.index.advance(tenant, next)?;
            super::lead_index::flush(into)?;
        }
    }
    Ok(done)
}
