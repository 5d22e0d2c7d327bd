//! Lead request bodies (parsed into domain input, every problem named) and the Lead object.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::contact::{Email, Phone};
use crate::domain::ids::{LeadId, OwnerId, StageId, TenantId};
use crate::domain::lead::{
    CustomFields, LeadInput, LeadLine, LeadPatch, LeadStatus, SourcePlatform, SourceType,
    fold_lead_line, parse_contact_name,
};
use crate::domain::time::Timestamp;
use crate::http::admin_catalog::OwnerDto;
use crate::http::{nullable, nullable_whole_number};
use crate::store::lead_record::LeadView;

/// The create fields, as sent. Strings stay strings until parsed so that every problem can be
/// reported with its field name.
#[derive(Debug, Default, Deserialize)]
pub struct LeadBody {
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub contact_email: Option<String>,
    pub source_platform: Option<String>,
    pub source_type: Option<String>,
    pub stage_slug: Option<String>,
    pub owner_id: Option<String>,
    pub lead_line: Option<String>,
    pub custom_fields: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PatchBody {
    #[serde(default, deserialize_with = "nullable")]
    pub contact_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub contact_phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub contact_email: Option<Option<String>>,
    pub source_platform: Option<String>,
    pub source_type: Option<String>,
    pub stage_slug: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub owner_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub lead_line: Option<Option<String>>,
    pub custom_fields: Option<Map<String, Value>>,
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable_whole_number")]
    pub score: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub qualified: Option<Option<bool>>,
}

/// Collects every problem of a body instead of stopping at the first.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn take<T>(&mut self, result: Result<T, String>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }

    // The fields create and PATCH share: each `None` when blank or refused (and noted).

    fn contact_name(&mut self, raw: &Option<String>) -> Option<String> {
        raw.as_deref()
            .and_then(|n| self.take(parse_contact_name(n)))
            .flatten()
    }

    fn phone(&mut self, raw: &Option<String>, country_code: &str) -> Option<Phone> {
        given(raw).and_then(|v| self.take(Phone::parse(v, country_code).map_err(|e| e.to_string())))
    }

    fn email(&mut self, raw: &Option<String>) -> Option<Email> {
        given(raw).and_then(|v| self.take(Email::parse(v).map_err(|e| e.to_string())))
    }

    fn owner(&mut self, raw: &Option<String>) -> Option<OwnerId> {
        given(raw).and_then(|v| {
            self.take(OwnerId::parse(v).ok_or_else(|| format!("owner_id `{v}` is not a UUID")))
        })
    }
}

/// An empty string is treated as absent: spreadsheets and forms send blanks for missing values.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

/// Custom fields one request may set. A tenant rarely defines more than a few dozen; the bound
/// keeps a bulk body of tiny values from becoming hundreds of thousands of map entries (a 4 MB
/// import held 50 times its size before it).
pub const MAX_CUSTOM_FIELDS: usize = 100;

fn custom_fields(raw: &Option<Map<String, Value>>, problems: &mut Problems) -> CustomFields {
    let mut fields = CustomFields::new();
    if raw.as_ref().is_some_and(|r| r.len() > MAX_CUSTOM_FIELDS) {
        problems.0.push(format!(
            "custom_fields may hold at most {MAX_CUSTOM_FIELDS} fields"
        ));
        return fields;
    }
    for (slug, value) in raw.iter().flatten() {
        if value.is_array() || value.is_object() {
            problems.0.push(format!(
                "custom_fields.{slug} must be a string, number, boolean or null"
            ));
        } else {
            fields.insert(slug.clone(), value.clone());
        }
    }
    fields
}

impl LeadBody {
    /// Parses the fields; `default_source_type` is `manual` for single creates, `import` for rows.
    pub fn parse(
        &self,
        country_code: &str,
        default_source_type: SourceType,
    ) -> Result<LeadInput, Vec<String>> {
        let mut p = Problems::default();
        let contact_name = p.contact_name(&self.contact_name);
        let contact_phone = p.phone(&self.contact_phone, country_code);
        let contact_email = p.email(&self.contact_email);
        if contact_name.is_none()
            && contact_phone.is_none()
            && contact_email.is_none()
            && p.0.is_empty()
        {
            p.0.push(
                "at least one of contact_name, contact_phone, contact_email is required".into(),
            );
        }
        let source_platform = self
            .source_platform
            .as_deref()
            .and_then(|v| p.take(SourcePlatform::parse(v)));
        let source_type = self
            .source_type
            .as_deref()
            .and_then(|v| p.take(SourceType::parse(v)));
        let owner_id = p.owner(&self.owner_id);
        let lead_line = given(&self.lead_line).and_then(|v| p.take(LeadLine::parse(v)));
        let mut fields = custom_fields(&self.custom_fields, &mut p);
        fold_lead_line(&mut fields, lead_line);
        if !p.0.is_empty() {
            return Err(p.0);
        }
        Ok(LeadInput {
            contact_name,
            contact_phone,
            contact_email,
            source_platform,
            source_type: source_type.or(Some(default_source_type)),
            stage_slug: given(&self.stage_slug).map(|s| s.trim().to_string()),
            owner_id,
            custom_fields: fields,
            status: None,
            score: None,
            qualified: None,
        })
    }
}

impl PatchBody {
    pub fn parse(&self, country_code: &str) -> Result<LeadPatch, Vec<String>> {
        let mut p = Problems::default();
        let contact_name = self.contact_name.as_ref().map(|v| p.contact_name(v));
        let contact_phone = self
            .contact_phone
            .as_ref()
            .map(|v| p.phone(v, country_code));
        let contact_email = self.contact_email.as_ref().map(|v| p.email(v));
        let owner_id = self.owner_id.as_ref().map(|v| p.owner(v));
        let mut fields = custom_fields(&self.custom_fields, &mut p);
        match &self.lead_line {
            Some(Some(line)) => {
                if let Some(line) = p.take(LeadLine::parse(line)) {
                    fold_lead_line(&mut fields, Some(line));
                }
            }
            Some(None) => {
                fields.insert(crate::domain::catalog::LEAD_LINE.into(), Value::Null);
            }
            None => {}
        }
        let patch = LeadPatch {
            contact_name,
            contact_phone,
            contact_email,
            source_platform: self
                .source_platform
                .as_deref()
                .and_then(|v| p.take(SourcePlatform::parse(v))),
            source_type: self
                .source_type
                .as_deref()
                .and_then(|v| p.take(SourceType::parse(v))),
            stage_slug: given(&self.stage_slug).map(|s| s.trim().to_string()),
            owner_id,
            status: self
                .status
                .as_deref()
                .and_then(|v| p.take(LeadStatus::parse(v))),
            score: self.score,
            qualified: self.qualified,
            custom_fields: fields,
        };
        if p.0.is_empty() { Ok(patch) } else { Err(p.0) }
    }
}

#[derive(Serialize)]
pub struct StageRef {
    pub id: StageId,
    pub slug: String,
    pub name: String,
    pub color: Option<String>,
}

/// The Lead object of the contract.
#[derive(Serialize)]
pub struct LeadDto {
    pub id: LeadId,
    pub customer_id: TenantId,
    pub source_platform: SourcePlatform,
    pub source_type: SourceType,
    pub status: LeadStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub contact_email: Option<String>,
    pub score: Option<i64>,
    pub qualified: Option<bool>,
    pub current_stage: StageRef,
    pub owner: Option<OwnerDto>,
    pub last_interaction_at: Option<Timestamp>,
    pub interaction_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<CustomFields>,
    pub version: u64,
}

impl LeadDto {
    pub fn new(view: &LeadView, with_custom_fields: bool) -> LeadDto {
        let lead = &view.lead;
        LeadDto {
            id: lead.id,
            customer_id: lead.tenant_id,
            source_platform: lead.source_platform,
            source_type: lead.source_type,
            status: lead.status,
            created_at: lead.created_at,
            updated_at: lead.updated_at,
            contact_name: lead.contact_name.clone(),
            contact_phone: lead.contact_phone.clone(),
            contact_email: lead.contact_email.clone(),
            score: lead.score,
            qualified: lead.qualified,
            current_stage: StageRef {
                id: view.stage.id,
                slug: view.stage.slug.clone(),
                name: view.stage.name.clone(),
                color: view.stage.color.clone(),
            },
            owner: view.owner.as_ref().map(OwnerDto::from),
            last_interaction_at: lead.last_interaction_at,
            interaction_count: lead.interaction_count,
            custom_fields: with_custom_fields.then(|| view.custom_fields.clone()),
            version: lead.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> LeadBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn at_least_one_contact_field_is_required() {
        let errors = body(json!({ "contact_email": "  ", "source_platform": "direct" }))
            .parse("1", SourceType::Manual)
            .unwrap_err();
        assert_eq!(
            errors,
            ["at least one of contact_name, contact_phone, contact_email is required"]
        );
    }

    #[test]
    fn every_problem_is_reported_by_field() {
        let errors = body(json!({
            "contact_email": "nope",
            "source_platform": "myspace",
            "lead_line": "renter",
            "owner_id": "x",
            "custom_fields": { "tags": ["a"] }
        }))
        .parse("1", SourceType::Manual)
        .unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("contact_email"));
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("source_platform must be one of"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e == "custom_fields.tags must be a string, number, boolean or null")
        );
    }

    #[test]
    fn lead_line_is_folded_into_custom_fields_and_defaults_apply() {
        let input = body(json!({ "contact_phone": "(206) 555-0123", "lead_line": "buyer", "custom_fields": { "budget": 5 } }))
            .parse("1", SourceType::Import)
            .unwrap();
        assert_eq!(input.contact_phone.unwrap().as_str(), "+12065550123");
        assert_eq!(input.source_type, Some(SourceType::Import));
        assert_eq!(input.custom_fields.get("lead_line"), Some(&json!("buyer")));
        assert_eq!(input.custom_fields.get("budget"), Some(&json!(5)));
    }
}
