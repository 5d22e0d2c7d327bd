//! Lead writes: create-or-merge, PATCH and bulk import. Each reads the same way: load the
//! tenant's catalogue, find the lead a request is about, let the domain rule decide the change,
//! write it with its index entries, publish the event.

use std::collections::HashSet;

use redb::WriteTransaction;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::catalog::{Catalog, load_catalog};
use super::event_log::erase_lead_events;
use super::idempotency::{
    Idempotency, Outcome, StoredResponse, erase_lead_responses, write_rendered_in,
};
use super::interactions::{insert_interaction, interaction_json, remove_interactions};
use super::lead_record::{LeadTables, LeadView, lead_key};
use super::outbox::{EventData, NewEvent, publish};
use super::stats::Counted;
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::event::{EventType, previous};
use crate::domain::ids::{InteractionId, LeadId, TenantId};
use crate::domain::interaction::{Interaction, InteractionInput};
use crate::domain::lead::{self, Change, IfMatch, Lead, LeadInput, LeadPatch, MatchedBy};
use crate::domain::time::Timestamp;

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

/// Whether a change publishes its event: bulk-imported leads are inert (spec §4) unless the
/// bulk body asks for events (§11.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    Events,
    Nothing,
}

/// How a bulk import applies its rows.
#[derive(Debug, Clone, Copy)]
pub struct BulkMode {
    pub on_duplicate: OnDuplicate,
    pub dry_run: bool,
    pub emit: Emit,
}

/// One tenant's lead writes inside one write transaction: its tables, its catalogue, the time.
struct LeadJob<'a> {
    txn: &'a WriteTransaction,
    tables: LeadTables<'a>,
    catalog: Catalog,
    tenant: TenantId,
    now: Timestamp,
}

/// Runs `work` over the tenant's lead tables and catalogue, inside a write.
fn with_leads<T>(
    txn: &WriteTransaction,
    tenant: TenantId,
    now: Timestamp,
    work: impl FnOnce(&mut LeadJob<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut job = LeadJob {
        txn,
        tables: LeadTables::open(txn)?,
        catalog: load_catalog(txn, tenant)?,
        tenant,
        now,
    };
    work(&mut job)
}

impl LeadJob<'_> {
    /// Create-or-merge of one request. Checks everything before writing.
    fn create_or_merge(
        &mut self,
        input: &LeadInput,
        on_duplicate: OnDuplicate,
        emit: Emit,
    ) -> Result<Applied, StoreError> {
        let resolved = self.catalog.resolve(
            input.stage_slug.as_deref(),
            input.owner_id,
            &input.custom_fields,
        )?;
        let ignored_custom_fields = resolved.fields.ignored.clone();
        let Some((id, matched_by)) = self.tables.find_match(self.tenant, input)? else {
            let first = self.catalog.first_stage(self.tenant)?.id;
            let lead = lead::create(
                LeadId::new(),
                self.tenant,
                input,
                &resolved,
                first,
                self.now,
            );
            self.tables.put(None, &lead)?;
            super::stats::note(self.tenant, self.now, Counted::LeadCreated);
            let view = LeadView::new(lead, &self.catalog)?;
            let queued = match emit {
                Emit::Events => self.publish(EventType::LeadCreated, &view, "{}".into(), None)?,
                Emit::Nothing => 0,
            };
            return Ok(Applied {
                status: RowStatus::Created,
                view,
                matched_by: None,
                ignored_custom_fields,
                queued,
            });
        };
        let old = self.existing(id)?;
        if on_duplicate == OnDuplicate::Skip {
            return Ok(Applied {
                status: RowStatus::Skipped,
                view: LeadView::new(old, &self.catalog)?,
                matched_by: Some(matched_by),
                ignored_custom_fields,
                queued: 0,
            });
        }
        let change = lead::merge(&old, input, &resolved, self.now)?;
        let (view, queued) = self.save(&old, change, emit)?;
        Ok(Applied {
            status: RowStatus::Updated,
            view,
            matched_by: Some(matched_by),
            ignored_custom_fields,
            queued,
        })
    }

    fn patch(
        &mut self,
        id: LeadId,
        patch: &LeadPatch,
        if_match: Option<&IfMatch>,
    ) -> Result<(LeadView, usize), StoreError> {
        let old = self.conditional(id, if_match)?;
        let owner = patch.owner_id.flatten();
        let resolved =
            self.catalog
                .resolve(patch.stage_slug.as_deref(), owner, &patch.custom_fields)?;
        // The rule first: it refuses unknown custom fields before anything is compared with
        // other leads. (A PATCH that gives an email or phone keeps a contact, so the two
        // refusals of `lead::patch` and the conflict below never meet in one request.)
        let change = lead::patch(&old, patch, &resolved, self.now)?;
        self.refuse_taken_contacts(id, patch)?;
        self.save(&old, change, Emit::Events)
    }

    /// The lead a conditional write is about, if it exists and `If-Match` (when given) admits
    /// its version (spec §11.1); refused before anything is written.
    fn conditional(&self, id: LeadId, if_match: Option<&IfMatch>) -> Result<Lead, StoreError> {
        let lead = self
            .tables
            .get(self.tenant, id)?
            .ok_or_else(|| StoreError::NotFound(format!("lead {id} not found")))?;
        match if_match {
            Some(condition) if !condition.admits(lead.version) => {
                Err(StoreError::Precondition(format!(
                    "lead {id} is at version {}, not the one If-Match names; nothing was changed",
                    lead.version
                )))
            }
            _ => Ok(lead),
        }
    }

    /// `DELETE /leads/{id}` (spec §12.1): the lead and its index entries go, every stored event
    /// of it and every stored response that shows it is erased, and `lead.deleted` is emitted.
    /// Returns the number of deliveries queued.
    fn delete(&mut self, id: LeadId, if_match: Option<&IfMatch>) -> Result<usize, StoreError> {
        let lead = self.conditional(id, if_match)?;
        self.tables.remove(&lead)?;
        remove_interactions(self.txn, self.tenant, id)?;
        erase_lead_events(self.txn, self.tenant, id)?;
        erase_lead_responses(self.txn, self.tenant, id)?;
        publish(
            self.txn,
            self.tenant,
            NewEvent {
                event_type: EventType::LeadDeleted,
                lead_id: Some(id),
                data: EventData::Members(
                    json!({ "lead": { "id": id, "version": lead.version, "deleted_at": self.now } })
                        .to_string(),
                ),
                changed_fields: None,
                about: None,
            },
            self.now,
        )
    }

    /// Records an interaction on a lead (spec §12.2): the lead's counters and version move and
    /// `interaction.created` is emitted, in the same transaction.
    fn interact(
        &mut self,
        id: LeadId,
        input: InteractionInput,
    ) -> Result<(Interaction, LeadView, usize), StoreError> {
        let old = self
            .tables
            .get(self.tenant, id)?
            .ok_or_else(|| StoreError::NotFound(format!("lead {id} not found")))?;
        let interaction = Interaction::new(InteractionId::new(), self.tenant, id, input, self.now)
            .map_err(StoreError::Invalid)?;
        let lead = lead::interacted(&old, interaction.occurred_at, self.now);
        self.tables.put(Some(&old), &lead)?;
        insert_interaction(self.txn, &interaction)?;
        let view = LeadView::new(lead, &self.catalog)?;
        let members = json!({ "interaction": interaction_json(&interaction) }).to_string();
        let queued = self.publish(EventType::InteractionCreated, &view, members, None)?;
        Ok((interaction, view, queued))
    }

    /// A PATCH may not give a lead the email, or the last 10 phone digits, of another.
    fn refuse_taken_contacts(&self, id: LeadId, patch: &LeadPatch) -> Result<(), StoreError> {
        if let Some(Some(email)) = &patch.contact_email
            && let Some(holder) = self.tables.email_holder(self.tenant, email.as_str(), id)?
        {
            return Err(StoreError::Conflict(format!(
                "lead {holder} already has contact_email {}",
                email.as_str()
            )));
        }
        if let Some(Some(phone)) = &patch.contact_phone
            && let Some(last10) = phone.last10()
            && let Some(holder) = self.tables.phone_holder(self.tenant, &last10, Some(id))?
        {
            return Err(StoreError::Conflict(format!(
                "lead {holder} already has a phone ending in these 10 digits"
            )));
        }
        Ok(())
    }

    fn existing(&self, id: LeadId) -> Result<Lead, StoreError> {
        self.tables
            .get(self.tenant, id)?
            .ok_or_else(|| StoreError::Corrupt(format!("index points at missing lead {id}")))
    }

    /// Writes a change and emits `lead.updated`; a change of nothing writes nothing. Returns
    /// the lead's view and how many deliveries were queued.
    fn save(
        &mut self,
        old: &Lead,
        change: Change,
        emit: Emit,
    ) -> Result<(LeadView, usize), StoreError> {
        if change.is_noop() {
            return Ok((LeadView::new(change.lead, &self.catalog)?, 0));
        }
        self.tables.put(Some(old), &change.lead)?;
        let view = LeadView::new(change.lead, &self.catalog)?;
        let queued = match emit {
            Emit::Events => {
                let before = LeadView::new(old.clone(), &self.catalog)?
                    .snapshot()
                    .payload();
                let previous = match before {
                    Value::Object(before) => previous(&before, &change.changed_fields),
                    _ => Map::new(),
                };
                let members =
                    json!({ "changed_fields": change.changed_fields, "previous": previous });
                self.publish(
                    EventType::LeadUpdated,
                    &view,
                    members.to_string(),
                    Some(change.changed_fields),
                )?
            }
            Emit::Nothing => 0,
        };
        Ok((view, queued))
    }

    /// Publishes a lead event: the lead's snapshot and `members` (a JSON object's text).
    fn publish(
        &self,
        event_type: EventType,
        view: &LeadView,
        members: String,
        changed_fields: Option<Vec<String>>,
    ) -> Result<usize, StoreError> {
        publish(
            self.txn,
            self.tenant,
            NewEvent {
                event_type,
                lead_id: Some(view.lead.id),
                data: EventData::Lead {
                    lead: Box::new(view.snapshot()),
                    members,
                },
                changed_fields,
                about: None,
            },
            self.now,
        )
    }
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
                with_leads(txn, tenant, now, |job| {
                    job.create_or_merge(&input, OnDuplicate::Update, Emit::Events)
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
        if_match: Option<IfMatch>,
        idem: Option<Idempotency>,
        render: impl FnOnce(Result<&LeadView, &StoreError>) -> StoredResponse + Send + 'static,
    ) -> Result<Outcome, StoreError> {
        let (outcome, patched) = self.write_rendered(
            idem,
            move |txn, now| {
                with_leads(txn, tenant, now, |job| {
                    job.patch(id, &patch, if_match.as_ref())
                })
            },
            move |result| render(result.map(|(view, _)| view)),
        )?;
        if patched.is_some_and(|(_, queued)| queued > 0) {
            self.wake_deliveries();
        }
        Ok(outcome)
    }

    /// `POST /leads/{id}/interactions`.
    pub fn add_interaction(
        &self,
        tenant: TenantId,
        lead: LeadId,
        input: InteractionInput,
        idem: Option<Idempotency>,
        render: impl FnOnce(Result<&(Interaction, LeadView), &StoreError>) -> StoredResponse
        + Send
        + 'static,
    ) -> Result<Outcome, StoreError> {
        let (outcome, added) = self.write_rendered(
            idem,
            move |txn, now| {
                with_leads(txn, tenant, now, |job| {
                    let (interaction, view, queued) = job.interact(lead, input)?;
                    Ok(((interaction, view), queued))
                })
            },
            move |result| render(result.map(|(added, _)| added)),
        )?;
        if added.is_some_and(|(_, queued)| queued > 0) {
            self.wake_deliveries();
        }
        Ok(outcome)
    }

    /// `DELETE /leads/{id}`, optionally conditional on `If-Match`.
    pub fn delete_lead(
        &self,
        tenant: TenantId,
        id: LeadId,
        if_match: Option<IfMatch>,
        idem: Option<Idempotency>,
        render: impl FnOnce(Result<&usize, &StoreError>) -> StoredResponse + Send + 'static,
    ) -> Result<Outcome, StoreError> {
        let (outcome, queued) = self.write_rendered(
            idem,
            move |txn, now| with_leads(txn, tenant, now, |job| job.delete(id, if_match.as_ref())),
            render,
        )?;
        if queued.is_some_and(|q| q > 0) {
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
        mode: BulkMode,
        idem: Option<Idempotency>,
        render: impl FnOnce(Result<&Vec<RowResult>, &StoreError>) -> StoredResponse + Send + 'static,
    ) -> Result<Outcome, StoreError> {
        let BulkMode {
            on_duplicate,
            dry_run,
            emit,
        } = mode;
        // The rows' results, and how many deliveries their events queued.
        type Done = (Vec<RowResult>, usize);
        let work = move |txn: &WriteTransaction, now: Timestamp| -> Result<Done, StoreError> {
            with_leads(txn, tenant, now, |job| {
                let mut results = Vec::with_capacity(rows.len());
                let mut queued = 0;
                // Leads this request creates: a dry run reports no id for them, not even when a
                // later row matches one.
                let mut created = HashSet::new();
                // Each row's input goes once it is applied: a large import does not hold all
                // of them and all their results at once.
                for row in rows {
                    let input = match row {
                        Ok(input) => input,
                        Err(errors) => {
                            results.push(RowResult::failed(errors));
                            continue;
                        }
                    };
                    match job.create_or_merge(&input, on_duplicate, emit) {
                        Ok(applied) => {
                            queued += applied.queued;
                            results.push(RowResult {
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
                            })
                        }
                        Err(e) if e.poisons_batch() => return Err(e),
                        Err(e) => results.push(RowResult::failed(vec![e.to_string()])),
                    }
                }
                Ok((results, queued))
            })
        };
        let render = move |result: Result<&Done, &StoreError>| render(result.map(|(rows, _)| rows));
        if dry_run {
            // Dry runs are not stored: no key.
            let clock = self.clock();
            return self.write_discarded(move |txn| {
                Ok(write_rendered_in(txn, None, clock.now(), work, render)?.0)
            });
        }
        let (outcome, done) = self.write_rendered(idem, work, render)?;
        if done.is_some_and(|(_, queued)| queued > 0) {
            self.wake_deliveries();
        }
        Ok(outcome)
    }

    pub fn get_lead(&self, tenant: TenantId, id: LeadId) -> Result<Option<LeadView>, StoreError> {
        self.read(|txn| {
            let Some(lead) = load::<Lead>(&txn.open_table(LEADS)?, &lead_key(tenant, id))? else {
                return Ok(None);
            };
            LeadView::new(lead, &load_catalog(txn, tenant)?).map(Some)
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
