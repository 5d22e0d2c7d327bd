//! What a create, a merge (spec §3, "Merge") and a PATCH do to a lead. The store resolves the
//! request's references against the tenant's catalogue and finds the lead a request merges into;
//! these functions decide the new lead and which fields changed, with the time as an argument.

use super::{CustomFields, Lead, LeadInput, LeadPatch, LeadStatus, SourcePlatform, SourceType};
use crate::domain::catalog::LEAD_LINE;
use crate::domain::ids::{LeadId, StageId, TenantId};
use crate::domain::lead::{CheckedFields, merge_custom_fields};
use crate::domain::time::Timestamp;

/// A request's references to the tenant's catalogue, resolved by the store: the stage its
/// `stage_slug` names, and its custom fields checked against the definitions. (An `owner_id` is
/// checked to exist and kept as it is.)
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub stage: Option<StageId>,
    pub fields: CheckedFields,
}

/// A lead after a change, and the fields that differ from before in the order the contract
/// names them (`custom_fields.<slug>` for custom fields, `lead_line` for the reserved one).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub lead: Lead,
    pub changed_fields: Vec<String>,
}

impl Change {
    /// A write that changes nothing stores nothing and emits nothing.
    pub fn is_noop(&self) -> bool {
        self.changed_fields.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a lead keeps at least one of contact_name, contact_phone, contact_email")]
    NoContact,
    #[error("custom_fields: unknown custom field slugs {}", .0.join(", "))]
    UnknownCustomFields(Vec<String>),
    #[error("lead {0} has custom fields that do not decode: {1}")]
    CorruptCustomFields(LeadId, String),
}

/// The lead a request creates when it matches none: given fields, the resolved stage or else
/// the pipeline's first, status `active` and sources `direct`/`manual` unless given.
pub fn create(
    id: LeadId,
    tenant: TenantId,
    input: &LeadInput,
    resolved: &Resolved,
    first_stage: StageId,
    now: Timestamp,
) -> Lead {
    let mut custom = CustomFields::new();
    merge_custom_fields(&mut custom, &resolved.fields.accepted);
    Lead {
        id,
        tenant_id: tenant,
        status: input.status.unwrap_or(LeadStatus::Active),
        source_platform: input.source_platform.unwrap_or(SourcePlatform::Direct),
        source_type: input.source_type.unwrap_or(SourceType::Manual),
        created_at: now,
        updated_at: now,
        contact_name: input.contact_name.clone(),
        contact_phone: input.contact_phone.as_ref().map(|p| p.as_str().into()),
        contact_email: input.contact_email.as_ref().map(|e| e.as_str().into()),
        score: input.score,
        qualified: input.qualified,
        stage_id: resolved.stage.unwrap_or(first_stage),
        owner_id: input.owner_id,
        last_interaction_at: None,
        interaction_count: 0,
        custom_fields_json: custom_json(&custom),
        version: 1,
    }
}

/// A create request that matched `old`: given non-null fields overwrite, custom fields merge
/// key by key, stage and owner change only when given, source fields keep their first value.
pub fn merge(
    old: &Lead,
    input: &LeadInput,
    resolved: &Resolved,
    now: Timestamp,
) -> Result<Change, Refusal> {
    let mut change = Builder::new(old);
    change.set(
        "contact_name",
        |l| &mut l.contact_name,
        input.contact_name.clone().map(Some),
    );
    change.set(
        "contact_phone",
        |l| &mut l.contact_phone,
        input
            .contact_phone
            .as_ref()
            .map(|p| Some(p.as_str().into())),
    );
    change.set(
        "contact_email",
        |l| &mut l.contact_email,
        input
            .contact_email
            .as_ref()
            .map(|e| Some(e.as_str().into())),
    );
    change.set("current_stage", |l| &mut l.stage_id, resolved.stage);
    change.set("owner", |l| &mut l.owner_id, input.owner_id.map(Some));
    change.set("status", |l| &mut l.status, input.status);
    change.set("score", |l| &mut l.score, input.score.map(Some));
    change.set("qualified", |l| &mut l.qualified, input.qualified.map(Some));
    change.custom_fields(&resolved.fields.accepted)?;
    Ok(change.finish(now))
}

/// A PATCH of `old`: every given field is set (`null` clears a nullable one), custom fields
/// merge key by key and must all be defined, and the lead keeps at least one contact.
pub fn patch(
    old: &Lead,
    patch: &LeadPatch,
    resolved: &Resolved,
    now: Timestamp,
) -> Result<Change, Refusal> {
    if !resolved.fields.ignored.is_empty() {
        return Err(Refusal::UnknownCustomFields(
            resolved.fields.ignored.clone(),
        ));
    }
    let mut change = Builder::new(old);
    change.set(
        "contact_name",
        |l| &mut l.contact_name,
        patch.contact_name.clone(),
    );
    change.set(
        "contact_phone",
        |l| &mut l.contact_phone,
        patch
            .contact_phone
            .as_ref()
            .map(|p| p.as_ref().map(|p| p.as_str().into())),
    );
    change.set(
        "contact_email",
        |l| &mut l.contact_email,
        patch
            .contact_email
            .as_ref()
            .map(|e| e.as_ref().map(|e| e.as_str().into())),
    );
    if !change.lead.has_contact() {
        return Err(Refusal::NoContact);
    }
    change.set(
        "source_platform",
        |l| &mut l.source_platform,
        patch.source_platform,
    );
    change.set("source_type", |l| &mut l.source_type, patch.source_type);
    change.set("current_stage", |l| &mut l.stage_id, resolved.stage);
    change.set("owner", |l| &mut l.owner_id, patch.owner_id);
    change.set("status", |l| &mut l.status, patch.status);
    change.set("score", |l| &mut l.score, patch.score);
    change.set("qualified", |l| &mut l.qualified, patch.qualified);
    change.custom_fields(&resolved.fields.accepted)?;
    Ok(change.finish(now))
}

/// The lead after an interaction that happened at `occurred_at` was recorded at `now`: one more
/// interaction, the latest time seen, a new version (spec §12.2).
pub fn interacted(old: &Lead, occurred_at: Timestamp, now: Timestamp) -> Lead {
    let mut lead = old.clone();
    lead.interaction_count = lead.interaction_count.saturating_add(1);
    lead.last_interaction_at = Some(
        old.last_interaction_at
            .map_or(occurred_at, |last| last.max(occurred_at)),
    );
    lead.version = old.version + 1;
    lead.updated_at = now.max(old.updated_at);
    lead
}

/// Applies given values to a copy of the old lead, noting each field whose value moves.
struct Builder<'a> {
    old: &'a Lead,
    lead: Lead,
    changed: Vec<String>,
}

impl<'a> Builder<'a> {
    fn new(old: &'a Lead) -> Builder<'a> {
        Builder {
            old,
            lead: old.clone(),
            changed: Vec::new(),
        }
    }

    /// Sets the field `slot` picks to `value` when one is given and differs.
    fn set<T: PartialEq>(
        &mut self,
        field: &str,
        slot: impl FnOnce(&mut Lead) -> &mut T,
        value: Option<T>,
    ) {
        let Some(value) = value else { return };
        let slot = slot(&mut self.lead);
        if *slot != value {
            *slot = value;
            self.changed.push(field.into());
        }
    }

    fn custom_fields(&mut self, incoming: &CustomFields) -> Result<(), Refusal> {
        if incoming.is_empty() {
            return Ok(());
        }
        let before = self.lead.custom_fields()?;
        let mut after = before.clone();
        if !merge_custom_fields(&mut after, incoming) {
            return Ok(());
        }
        for slug in incoming.keys().filter(|s| before.get(*s) != after.get(*s)) {
            self.changed.push(if slug == LEAD_LINE {
                LEAD_LINE.into()
            } else {
                format!("custom_fields.{slug}")
            });
        }
        self.lead.custom_fields_json = custom_json(&after);
        Ok(())
    }

    fn finish(mut self, now: Timestamp) -> Change {
        if !self.changed.is_empty() {
            // Never backwards, so a lead's updated_at only grows even if the clock steps back.
            self.lead.updated_at = now.max(self.old.updated_at);
            self.lead.version = self.old.version + 1;
        }
        Change {
            lead: self.lead,
            changed_fields: self.changed,
        }
    }
}

fn custom_json(fields: &CustomFields) -> String {
    serde_json::to_string(fields).expect("a map of JSON values serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::FieldType;
    use crate::domain::contact::{Email, Phone};
    use crate::domain::ids::OwnerId;
    use crate::domain::lead::check_custom_fields;
    use serde_json::{Value, json};

    const T0: Timestamp = Timestamp(1_780_000_000_000);
    const T1: Timestamp = Timestamp(1_780_000_060_000);

    fn stage(n: u8) -> StageId {
        StageId::from_bytes([n; 16])
    }

    fn definitions(slug: &str) -> Option<FieldType> {
        match slug {
            "lead_line" | "notes" => Some(FieldType::String),
            "budget" => Some(FieldType::Number),
            _ => None,
        }
    }

    fn resolved(stage: Option<StageId>, custom: Value) -> Resolved {
        let sent: CustomFields = serde_json::from_value(custom).unwrap();
        Resolved {
            stage,
            fields: check_custom_fields(&sent, definitions).unwrap(),
        }
    }

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    fn phone(raw: &str) -> Phone {
        Phone::parse(raw, "1").unwrap()
    }

    /// The lead of the spec's walk-through: Ada, by email and phone, at the first stage.
    fn ada() -> Lead {
        let input = LeadInput {
            contact_name: Some("Ada Lovelace".into()),
            contact_phone: Some(phone("(206) 555-0123")),
            contact_email: Some(email("ada@example.com")),
            source_platform: Some(SourcePlatform::GoogleAds),
            custom_fields: serde_json::from_value(json!({"lead_line": "buyer", "budget": 1}))
                .unwrap(),
            ..LeadInput::default()
        };
        let r = resolved(None, json!({"lead_line": "buyer", "budget": 1}));
        create(
            LeadId::from_bytes([7; 16]),
            TenantId::from_bytes([1; 16]),
            &input,
            &r,
            stage(0),
            T0,
        )
    }

    fn custom(lead: &Lead) -> Value {
        serde_json::to_value(lead.custom_fields().unwrap()).unwrap()
    }

    #[test]
    fn create_takes_given_fields_and_defaults_the_rest() {
        let lead = ada();
        assert_eq!(lead.contact_phone.as_deref(), Some("+12065550123"));
        assert_eq!(lead.contact_email.as_deref(), Some("ada@example.com"));
        assert_eq!(lead.status, LeadStatus::Active);
        assert_eq!(lead.source_platform, SourcePlatform::GoogleAds);
        assert_eq!(lead.source_type, SourceType::Manual, "not given: manual");
        assert_eq!(
            lead.stage_id,
            stage(0),
            "no stage_slug: the pipeline's first"
        );
        assert_eq!((lead.created_at, lead.updated_at), (T0, T0));
        assert_eq!(custom(&lead), json!({"budget": 1, "lead_line": "buyer"}));
    }

    #[test]
    fn merge_overwrites_given_fields_and_keeps_the_first_sources() {
        let old = ada();
        let owner = OwnerId::from_bytes([9; 16]);
        let input = LeadInput {
            contact_name: Some("Ada King".into()),
            contact_email: Some(email("ADA@example.com")),
            source_platform: Some(SourcePlatform::MetaAds),
            source_type: Some(SourceType::Form),
            owner_id: Some(owner),
            ..LeadInput::default()
        };
        let change = merge(
            &old,
            &input,
            &resolved(Some(stage(2)), json!({"notes": "x"})),
            T1,
        )
        .unwrap();
        assert_eq!(
            change.changed_fields,
            [
                "contact_name",
                "current_stage",
                "owner",
                "custom_fields.notes"
            ],
            "the same normalised email is no change"
        );
        let lead = &change.lead;
        assert_eq!(lead.contact_name.as_deref(), Some("Ada King"));
        assert_eq!(lead.contact_phone, old.contact_phone, "not given: kept");
        assert_eq!(
            lead.source_platform,
            SourcePlatform::GoogleAds,
            "sources keep their first value"
        );
        assert_eq!(lead.source_type, SourceType::Manual);
        assert_eq!((lead.stage_id, lead.owner_id), (stage(2), Some(owner)));
        assert_eq!(
            custom(lead),
            json!({"budget": 1, "lead_line": "buyer", "notes": "x"})
        );
        assert_eq!((lead.created_at, lead.updated_at), (T0, T1));
    }

    #[test]
    fn an_exported_lead_read_back_keeps_its_status_score_and_qualified() {
        let input = LeadInput {
            contact_name: Some("Ada".into()),
            status: Some(LeadStatus::Won),
            score: Some(-5),
            qualified: Some(false),
            ..LeadInput::default()
        };
        let r = resolved(None, json!({}));
        let lead = create(LeadId::new(), TenantId::new(), &input, &r, stage(0), T0);
        assert_eq!(
            (lead.status, lead.score, lead.qualified),
            (LeadStatus::Won, Some(-5), Some(false))
        );
        let change = merge(&ada(), &input, &r, T1).unwrap();
        assert_eq!(
            change.changed_fields,
            ["contact_name", "status", "score", "qualified"]
        );
        assert_eq!(
            (change.lead.status, change.lead.score),
            (LeadStatus::Won, Some(-5))
        );
        let unsaid = LeadInput {
            contact_name: Some("Ada".into()),
            ..LeadInput::default()
        };
        let kept = merge(&change.lead, &unsaid, &r, T1).unwrap();
        assert!(kept.is_noop(), "not given: kept, {:?}", kept.changed_fields);
    }

    #[test]
    fn merge_of_custom_fields_is_key_by_key_and_null_removes() {
        let old = ada();
        let change = merge(
            &old,
            &LeadInput::default(),
            &resolved(None, json!({"budget": null, "lead_line": "seller"})),
            T1,
        )
        .unwrap();
        assert_eq!(change.changed_fields, ["custom_fields.budget", "lead_line"]);
        assert_eq!(custom(&change.lead), json!({"lead_line": "seller"}));
    }

    #[test]
    fn a_merge_that_changes_nothing_is_a_noop_and_keeps_updated_at() {
        let old = ada();
        let input = LeadInput {
            contact_name: Some("Ada Lovelace".into()),
            contact_phone: Some(phone("206-555-0123")),
            ..LeadInput::default()
        };
        let change = merge(
            &old,
            &input,
            &resolved(Some(stage(0)), json!({"budget": 1})),
            T1,
        )
        .unwrap();
        assert!(change.is_noop());
        assert_eq!(change.lead, old);
    }

    #[test]
    fn patch_sets_clears_and_names_every_changed_field() {
        let old = ada();
        let patch = LeadPatch {
            contact_phone: Some(None),
            status: Some(LeadStatus::Won),
            score: Some(Some(80)),
            qualified: Some(Some(true)),
            source_type: Some(SourceType::PhoneCall),
            ..LeadPatch::default()
        };
        let change = super::patch(&old, &patch, &resolved(None, json!({})), T1).unwrap();
        assert_eq!(
            change.changed_fields,
            [
                "contact_phone",
                "source_type",
                "status",
                "score",
                "qualified"
            ]
        );
        let lead = &change.lead;
        assert_eq!(lead.contact_phone, None);
        assert_eq!(
            lead.source_type,
            SourceType::PhoneCall,
            "PATCH may change sources"
        );
        assert_eq!(
            (lead.status, lead.score, lead.qualified),
            (LeadStatus::Won, Some(80), Some(true))
        );
        assert_eq!(lead.updated_at, T1);
        assert_eq!(
            (old.version, lead.version),
            (1, 2),
            "a change moves the version"
        );
        let again = super::patch(lead, &patch, &resolved(None, json!({})), T1).unwrap();
        assert!(again.is_noop());
        assert_eq!(again.lead.version, 2, "a no-op leaves it");
    }

    #[test]
    fn an_interaction_counts_keeps_the_latest_time_and_moves_the_version() {
        let old = ada();
        let once = interacted(&old, T1, T1);
        assert_eq!(
            (
                once.interaction_count,
                once.last_interaction_at,
                once.version
            ),
            (1, Some(T1), 2)
        );
        let earlier = interacted(&once, T0, T1);
        assert_eq!(earlier.interaction_count, 2);
        assert_eq!(
            earlier.last_interaction_at,
            Some(T1),
            "an older one does not move it back"
        );
        assert_eq!(earlier.version, 3);
    }

    #[test]
    fn patch_keeps_at_least_one_contact() {
        let mut old = ada();
        old.contact_name = None;
        old.contact_phone = None;
        let patch = LeadPatch {
            contact_email: Some(None),
            ..LeadPatch::default()
        };
        assert_eq!(
            super::patch(&old, &patch, &resolved(None, json!({})), T1),
            Err(Refusal::NoContact)
        );
        let swap = LeadPatch {
            contact_email: Some(None),
            contact_name: Some(Some("Ada".into())),
            ..LeadPatch::default()
        };
        assert!(super::patch(&old, &swap, &resolved(None, json!({})), T1).is_ok());
    }

    #[test]
    fn patch_refuses_unknown_custom_fields_where_create_ignores_them() {
        let old = ada();
        let r = resolved(None, json!({"color": "red", "notes": "y"}));
        assert_eq!(r.fields.ignored, ["color"]);
        assert_eq!(
            super::patch(&old, &LeadPatch::default(), &r, T1),
            Err(Refusal::UnknownCustomFields(vec!["color".into()]))
        );
        let merged = merge(&old, &LeadInput::default(), &r, T1).unwrap();
        assert_eq!(merged.changed_fields, ["custom_fields.notes"]);
    }

    #[test]
    fn updated_at_never_moves_backwards() {
        let old = ada();
        let patch = LeadPatch {
            score: Some(Some(1)),
            ..LeadPatch::default()
        };
        let before_creation = Timestamp(T0.ms() - 5_000);
        let change =
            super::patch(&old, &patch, &resolved(None, json!({})), before_creation).unwrap();
        assert_eq!(change.lead.updated_at, T0);
    }

    #[test]
    fn damaged_custom_fields_are_an_error_not_an_empty_map() {
        let mut old = ada();
        old.custom_fields_json = "{not json".into();
        let result = merge(
            &old,
            &LeadInput::default(),
            &resolved(None, json!({"notes": "x"})),
            T1,
        );
        assert!(matches!(result, Err(Refusal::CorruptCustomFields(id, _)) if id == old.id));
    }
}
