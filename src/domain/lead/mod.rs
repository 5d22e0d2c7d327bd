//! Leads: the record, the enumerations of the MEGA contract, validated input, and (in
//! [`change`]) the create-or-merge and PATCH rules.

mod change;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalog::{FieldType, LEAD_LINE, Name};
use super::contact::{Email, Phone, last10_of};
use super::ids::{LeadId, OwnerId, StageId, TenantId};
use super::time::Timestamp;

pub use change::{Change, Refusal, Resolved, create, interacted, merge, patch};

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
    /// A JSON object (slug → scalar), `lead_line` included. Text, because the binary record
    /// format cannot hold free-form JSON values.
    pub custom_fields_json: String,
    /// 1 when created, +1 with every committed change (spec §11.1); a write that changes
    /// nothing leaves it.
    pub version: u64,
}

impl Lead {
    /// The custom fields, `lead_line` included. Text that does not decode is a damaged record:
    /// an error, never an empty map that a later write would store over the damage.
    pub fn custom_fields(&self) -> Result<CustomFields, Refusal> {
        serde_json::from_str(&self.custom_fields_json)
            .map_err(|e| Refusal::CorruptCustomFields(self.id, e.to_string()))
    }

    /// The last ten digits of the phone, when it has at least ten.
    pub fn phone_last10(&self) -> Option<[u8; 10]> {
        last10_of(self.contact_phone.as_deref()?)
    }

    pub fn lead_line(&self) -> Result<Option<String>, Refusal> {
        Ok(self
            .custom_fields()?
            .get(LEAD_LINE)
            .and_then(Value::as_str)
            .map(String::from))
    }

    /// Every lead keeps a way to reach or name the person.
    pub fn has_contact(&self) -> bool {
        self.contact_name.is_some() || self.contact_phone.is_some() || self.contact_email.is_some()
    }
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            pub fn parse(raw: &str) -> Result<$name, String> {
                match raw {
                    $($wire => Ok($name::$variant),)+
                    other => Err(format!(
                        "{} must be one of {} (got `{}`)",
                        $field,
                        [$($wire),+].join(", "),
                        other
                    )),
                }
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(LeadStatus, "status" {
    Active => "active", Won => "won", Lost => "lost", Nurture => "nurture", Archived => "archived",
});
wire_enum!(SourcePlatform, "source_platform" {
    GoogleAds => "google_ads", MetaAds => "meta_ads", GoogleOrganic => "google_organic",
    Direct => "direct", Referral => "referral", Hubspot => "hubspot", Zoho => "zoho", Ghl => "ghl",
    Shopify => "shopify", Zenmaid => "zenmaid", LeadDocket => "lead_docket", Salesforce => "salesforce",
});
wire_enum!(SourceType, "source_type" {
    Form => "form", PhoneCall => "phone_call", Email => "email", Chat => "chat", Sms => "sms",
    Manual => "manual", Import => "import",
});
wire_enum!(LeadLine, "lead_line" { Buyer => "buyer", Seller => "seller" });

/// How a create request found the lead it merged into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchedBy {
    Email,
    Phone,
}

/// A custom-field value: the contract allows scalars only.
pub type CustomFields = BTreeMap<String, Value>;

/// Create/merge fields after parsing. `None` means "not given".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadInput {
    pub contact_name: Option<String>,
    pub contact_phone: Option<Phone>,
    pub contact_email: Option<Email>,
    pub source_platform: Option<SourcePlatform>,
    pub source_type: Option<SourceType>,
    pub stage_slug: Option<String>,
    pub owner_id: Option<OwnerId>,
    /// Custom fields as sent, `lead_line` folded in; checked against the tenant's definitions
    /// when applied.
    pub custom_fields: CustomFields,
    /// The fields a lead in the export's shape carries besides the create fields: only
    /// `leadbase import` sets them (spec §14, an export read back), the HTTP create fields
    /// never do (§4). Given, they are set like the other given fields.
    pub status: Option<LeadStatus>,
    pub score: Option<i64>,
    pub qualified: Option<bool>,
}

/// A nullable field of a PATCH: absent, cleared, or set.
pub type Nullable<T> = Option<Option<T>>;

/// PATCH fields after parsing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadPatch {
    pub contact_name: Nullable<String>,
    pub contact_phone: Nullable<Phone>,
    pub contact_email: Nullable<Email>,
    pub source_platform: Option<SourcePlatform>,
    pub source_type: Option<SourceType>,
    pub stage_slug: Option<String>,
    pub owner_id: Nullable<OwnerId>,
    pub status: Option<LeadStatus>,
    pub score: Nullable<i64>,
    pub qualified: Nullable<bool>,
    pub custom_fields: CustomFields,
}

/// An `If-Match` precondition on a lead write (spec §11.1): `*`, or the versions the caller
/// last saw (`"3"`, or a bare `3`; a list matches when any of them does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    Any,
    Versions(Vec<u64>),
}

impl IfMatch {
    /// Parses the header's value; anything but `*` or a list of versions is refused.
    pub fn parse(raw: &str) -> Result<IfMatch, String> {
        let raw = raw.trim();
        if raw == "*" {
            return Ok(IfMatch::Any);
        }
        let refuse = || {
            format!(
                "If-Match must be \"*\" or a lead version such as \"3\" (the ETag of the lead), got `{}`",
                raw.chars().take(80).collect::<String>()
            )
        };
        let mut versions = Vec::new();
        for tag in raw.split(',').map(str::trim) {
            let bare = tag
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .unwrap_or(tag);
            if bare.is_empty() || bare.len() > 19 || !bare.bytes().all(|b| b.is_ascii_digit()) {
                return Err(refuse());
            }
            versions.push(bare.parse().map_err(|_| refuse())?);
        }
        Ok(IfMatch::Versions(versions))
    }

    /// One spelling per condition (`*`, or the versions sorted), for comparing requests.
    pub fn canonical(&self) -> String {
        match self {
            IfMatch::Any => "*".into(),
            IfMatch::Versions(versions) => {
                let mut versions = versions.clone();
                versions.sort_unstable();
                versions.dedup();
                versions
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }
        }
    }

    pub fn admits(&self, version: u64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(versions) => versions.contains(&version),
        }
    }
}

/// A contact name: a name as the catalogue's, except that an empty one counts as not given.
pub fn parse_contact_name(raw: &str) -> Result<Option<String>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    Name::parse("contact_name", raw).map(|n| Some(n.into_string()))
}

/// Folds the top-level `lead_line` into the custom fields, where the contract keeps it.
pub fn fold_lead_line(custom: &mut CustomFields, lead_line: Option<LeadLine>) {
    if let Some(line) = lead_line {
        custom.insert(LEAD_LINE.into(), Value::String(line.as_str().into()));
    }
}

/// The outcome of checking sent custom fields against the tenant's definitions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckedFields {
    pub accepted: CustomFields,
    /// Slugs that match no definition: ignored, and reported.
    pub ignored: Vec<String>,
}

/// Checks each sent value against its definition: unknown slugs are set aside, a value of the
/// wrong type is an error naming the field. `null` is accepted for every type (it clears).
pub fn check_custom_fields(
    sent: &CustomFields,
    definition: impl Fn(&str) -> Option<FieldType>,
) -> Result<CheckedFields, String> {
    let mut checked = CheckedFields::default();
    for (slug, value) in sent {
        let Some(field_type) = definition(slug) else {
            checked.ignored.push(slug.clone());
            continue;
        };
        let fits = match (field_type, value) {
            (_, Value::Null) => true,
            _ if slug == LEAD_LINE => value.as_str().is_some_and(|v| LeadLine::parse(v).is_ok()),
            (FieldType::String, Value::String(_)) => true,
            (FieldType::Number, Value::Number(_)) => true,
            (FieldType::Boolean, Value::Bool(_)) => true,
            _ => false,
        };
        if !fits {
            let expected = match field_type {
                _ if slug == LEAD_LINE => "buyer or seller",
                FieldType::String => "a string",
                FieldType::Number => "a number",
                FieldType::Boolean => "true or false",
            };
            return Err(format!("custom_fields.{slug} must be {expected}"));
        }
        checked.accepted.insert(slug.clone(), value.clone());
    }
    Ok(checked)
}

/// Custom fields merge key by key; `null` removes a key.
pub fn merge_custom_fields(current: &mut CustomFields, incoming: &CustomFields) -> bool {
    let mut changed = false;
    for (slug, value) in incoming {
        if value.is_null() {
            changed |= current.remove(slug).is_some();
        } else if current.get(slug) != Some(value) {
            current.insert(slug.clone(), value.clone());
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs(slug: &str) -> Option<FieldType> {
        match slug {
            "lead_line" | "notes" => Some(FieldType::String),
            "budget" => Some(FieldType::Number),
            "vip" => Some(FieldType::Boolean),
            _ => None,
        }
    }

    fn fields(v: Value) -> CustomFields {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn enums_parse_their_wire_names_only() {
        assert_eq!(
            SourcePlatform::parse("lead_docket"),
            Ok(SourcePlatform::LeadDocket)
        );
        assert_eq!(SourceType::parse("phone_call"), Ok(SourceType::PhoneCall));
        assert_eq!(LeadStatus::parse("nurture"), Ok(LeadStatus::Nurture));
        let err = LeadStatus::parse("Active").unwrap_err();
        assert_eq!(
            err,
            "status must be one of active, won, lost, nurture, archived (got `Active`)"
        );
        assert_eq!(SourcePlatform::ALL.len(), 12);
        assert_eq!(SourceType::ALL.len(), 7);
    }

    #[test]
    fn custom_fields_are_checked_against_definitions() {
        let sent = fields(json!({ "budget": 500000, "notes": "x", "color": "red", "vip": null }));
        let checked = check_custom_fields(&sent, defs).unwrap();
        assert_eq!(checked.ignored, ["color"]);
        assert_eq!(
            checked.accepted,
            fields(json!({ "budget": 500000, "notes": "x", "vip": null }))
        );
        let err = check_custom_fields(&fields(json!({ "budget": "500000" })), defs).unwrap_err();
        assert_eq!(err, "custom_fields.budget must be a number");
        let err = check_custom_fields(&fields(json!({ "lead_line": "renter" })), defs).unwrap_err();
        assert_eq!(err, "custom_fields.lead_line must be buyer or seller");
        assert!(check_custom_fields(&fields(json!({ "lead_line": "seller" })), defs).is_ok());
    }

    #[test]
    fn custom_fields_merge_key_by_key() {
        let mut current = fields(json!({ "budget": 1, "notes": "a" }));
        assert!(merge_custom_fields(
            &mut current,
            &fields(json!({ "notes": "b", "vip": true }))
        ));
        assert_eq!(
            current,
            fields(json!({ "budget": 1, "notes": "b", "vip": true }))
        );
        assert!(merge_custom_fields(
            &mut current,
            &fields(json!({ "budget": null }))
        ));
        assert_eq!(current, fields(json!({ "notes": "b", "vip": true })));
        assert!(
            !merge_custom_fields(&mut current, &fields(json!({ "notes": "b" }))),
            "no change"
        );
    }

    #[test]
    fn if_match_takes_star_quoted_bare_and_lists() {
        assert_eq!(IfMatch::parse("*"), Ok(IfMatch::Any));
        assert_eq!(IfMatch::parse("\"3\""), Ok(IfMatch::Versions(vec![3])));
        assert_eq!(IfMatch::parse(" 7 "), Ok(IfMatch::Versions(vec![7])));
        assert_eq!(
            IfMatch::parse("\"1\", \"2\""),
            Ok(IfMatch::Versions(vec![1, 2]))
        );
        for bad in [
            "",
            "W/\"3\"",
            "\"\"",
            "abc",
            "-1",
            "3.0",
            "\"3",
            "99999999999999999999",
        ] {
            assert!(IfMatch::parse(bad).is_err(), "{bad}");
        }
        assert!(IfMatch::parse("\"2\"").unwrap().admits(2));
        assert!(!IfMatch::parse("\"2\"").unwrap().admits(3));
        assert!(IfMatch::Any.admits(9));
        assert_eq!(
            IfMatch::parse("\"2\", 1, \"2\"").unwrap().canonical(),
            "1,2"
        );
    }

    #[test]
    fn contact_names() {
        assert_eq!(parse_contact_name("  Ada "), Ok(Some("Ada".into())));
        assert_eq!(parse_contact_name("   "), Ok(None));
        assert!(parse_contact_name(&"x".repeat(201)).is_err());
    }
}
