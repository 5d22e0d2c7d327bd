//! The controls of spec §13 a webhook may carry: a filter on the events it gets, custom headers
//! sent with each delivery, and its own limits (attempts in flight, attempts a minute).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lead::{LeadLine, LeadStatus, SourcePlatform, SourceType};

/// The most custom headers one webhook may send.
pub const MAX_HEADERS: usize = 10;
const MAX_HEADER_VALUE: usize = 1024;
/// `max_concurrency` bounds.
pub const MAX_CONCURRENCY: u32 = 64;
/// `rate_limit_per_minute` bounds.
pub const MAX_RATE_PER_MINUTE: u32 = 600_000;

/// What a filter looks at in a lead event.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    pub source_platform: SourcePlatform,
    pub source_type: SourceType,
    pub lead_line: Option<&'a str>,
    pub stage_slug: &'a str,
    pub status: LeadStatus,
    /// `lead.updated` only.
    pub changed_fields: Option<&'a [String]>,
}

/// Which lead events a webhook gets: each given key a non-empty list of allowed values; keys
/// AND, values OR. An event without a lead (the operational ones) is never filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub source_platform: Option<Vec<SourcePlatform>>,
    pub source_type: Option<Vec<SourceType>>,
    pub lead_line: Option<Vec<LeadLine>>,
    /// Checked against the tenant's stages when set.
    pub stage_slug: Option<Vec<String>>,
    pub status: Option<Vec<LeadStatus>>,
    /// Passes a `lead.updated` when any listed field changed; other events pass it.
    pub changed_fields: Option<Vec<String>>,
}

const FILTER_KEYS: [&str; 6] = [
    "source_platform",
    "source_type",
    "lead_line",
    "stage_slug",
    "status",
    "changed_fields",
];

/// The fields `changed_fields` may name, besides `custom_fields.<slug>`: those a
/// `lead.updated` reports.
const CHANGEABLE: [&str; 11] = [
    "contact_name",
    "contact_phone",
    "contact_email",
    "source_platform",
    "source_type",
    "current_stage",
    "owner",
    "status",
    "score",
    "qualified",
    "lead_line",
];

fn values<'a>(key: &str, raw: &'a Value) -> Result<Vec<&'a str>, String> {
    let list = raw
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| format!("filter.{key} must be a non-empty list"))?;
    list.iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| format!("filter.{key} must list strings"))
        })
        .collect()
}

fn parsed<T>(
    key: &str,
    raw: &Value,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    values(key, raw)?
        .into_iter()
        .map(|v| parse(v).map_err(|e| format!("filter.{e}")))
        .collect()
}

impl Filter {
    /// Parses a filter object; `null` (or `{}`) is no filter. Unknown keys and values are
    /// errors naming them. Stage slugs are checked by the caller against the tenant's stages.
    pub fn parse(raw: &Value) -> Result<Option<Filter>, String> {
        if raw.is_null() {
            return Ok(None);
        }
        let object = raw.as_object().ok_or("filter must be an object or null")?;
        if let Some(unknown) = object.keys().find(|k| !FILTER_KEYS.contains(&k.as_str())) {
            return Err(format!(
                "filter: unknown key `{unknown}`; the keys are {}",
                FILTER_KEYS.join(", ")
            ));
        }
        let get = |key: &str| object.get(key).filter(|v| !v.is_null());
        let filter = Filter {
            source_platform: get("source_platform")
                .map(|v| parsed("source_platform", v, SourcePlatform::parse))
                .transpose()?,
            source_type: get("source_type")
                .map(|v| parsed("source_type", v, SourceType::parse))
                .transpose()?,
            lead_line: get("lead_line")
                .map(|v| parsed("lead_line", v, LeadLine::parse))
                .transpose()?,
            stage_slug: get("stage_slug")
                .map(|v| values("stage_slug", v).map(|l| l.into_iter().map(String::from).collect()))
                .transpose()?,
            status: get("status")
                .map(|v| parsed("status", v, LeadStatus::parse))
                .transpose()?,
            changed_fields: get("changed_fields")
                .map(|v| {
                    values("changed_fields", v)?
                        .into_iter()
                        .map(|f| {
                            // `lead_line` is reported by its own name; other custom fields'
                            // slugs are checked against the tenant's by the caller.
                            let known = CHANGEABLE.contains(&f)
                                || f.strip_prefix("custom_fields.")
                                    .is_some_and(|s| !s.is_empty() && s != "lead_line");
                            match known {
                                true => Ok(f.to_string()),
                                false => Err(format!(
                                    "filter.changed_fields: unknown field `{f}`; use a lead field ({}) or custom_fields.<slug>",
                                    CHANGEABLE.join(", ")
                                )),
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
        };
        Ok((filter != Filter::default()).then_some(filter))
    }

    /// The custom field slugs `changed_fields` names, to check against the tenant's fields.
    pub fn custom_field_slugs(&self) -> impl Iterator<Item = &str> {
        self.changed_fields
            .iter()
            .flatten()
            .filter_map(|f| f.strip_prefix("custom_fields."))
    }

    /// Whether a lead event with these facts passes.
    pub fn passes(&self, facts: &EventFacts<'_>) -> bool {
        fn allows<T: PartialEq>(allowed: &Option<Vec<T>>, value: &T) -> bool {
            allowed.as_ref().is_none_or(|a| a.contains(value))
        }
        let lead_line = facts.lead_line.and_then(|l| LeadLine::parse(l).ok());
        allows(&self.source_platform, &facts.source_platform)
            && allows(&self.source_type, &facts.source_type)
            && self
                .lead_line
                .as_ref()
                .is_none_or(|a| lead_line.is_some_and(|l| a.contains(&l)))
            && self
                .stage_slug
                .as_ref()
                .is_none_or(|a| a.iter().any(|s| s == facts.stage_slug))
            && allows(&self.status, &facts.status)
            && match (&self.changed_fields, facts.changed_fields) {
                (Some(wanted), Some(changed)) => changed.iter().any(|c| wanted.contains(c)),
                _ => true,
            }
    }
}

/// Names leadbase sets on every delivery itself, or that belong to the connection.
fn reserved(name: &str) -> bool {
    const EXACT: [&str; 12] = [
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
    ];
    EXACT.contains(&name) || name.starts_with("x-mega-") || name.starts_with("webhook-")
}

/// A header name's value shown as `[redacted]` in every response.
pub fn is_sensitive(name: &str) -> bool {
    matches!(name, "authorization" | "proxy-authorization" | "cookie")
        || ["token", "secret", "key"].iter().any(|w| name.contains(w))
}

/// What a redacted header value reads.
pub const REDACTED: &str = "[redacted]";

/// Custom headers sent with every delivery, names lower-cased, in the order given.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomHeaders(pub Vec<(String, String)>);

/// Names only: a value may be a credential.
impl std::fmt::Debug for CustomHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl CustomHeaders {
    /// Parses `{name: value}`; `null` clears.
    pub fn parse(raw: &Value) -> Result<CustomHeaders, String> {
        if raw.is_null() {
            return Ok(CustomHeaders::default());
        }
        let object = raw.as_object().ok_or("headers must be an object or null")?;
        if object.len() > MAX_HEADERS {
            return Err(format!(
                "headers may hold at most {MAX_HEADERS} headers (got {})",
                object.len()
            ));
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in object {
            let token = !name.is_empty()
                && name.len() <= 128
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(format!(
                    "headers: `{}` is not a valid header name",
                    name.chars().take(64).collect::<String>()
                ));
            }
            let lower = name.to_ascii_lowercase();
            if reserved(&lower) {
                return Err(format!(
                    "headers: {lower} is set by leadbase and cannot be given"
                ));
            }
            if headers.iter().any(|(n, _)| *n == lower) {
                return Err(format!("headers: {lower} is given twice"));
            }
            let value = value
                .as_str()
                .ok_or_else(|| format!("headers.{lower} must be a string"))?;
            let printable = value
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) || b == b'\t');
            if !printable || value.len() > MAX_HEADER_VALUE {
                return Err(format!(
                    "headers.{lower} must be at most {MAX_HEADER_VALUE} printable characters (no CR or LF)"
                ));
            }
            headers.push((lower, value.to_string()));
        }
        Ok(CustomHeaders(headers))
    }

    /// A GET-edit-PATCH round trip sends sensitive values back as `[redacted]`: such a value
    /// stands for the one `current` has under that name (and is refused when it has none).
    pub fn keeping_redacted(self, current: &CustomHeaders) -> Result<CustomHeaders, String> {
        self.0
            .into_iter()
            .map(|(name, value)| {
                if value != REDACTED || !is_sensitive(&name) {
                    return Ok((name, value));
                }
                match current.0.iter().find(|(n, _)| *n == name) {
                    Some((_, kept)) => Ok((name, kept.clone())),
                    None => Err(format!(
                        "headers.{name}: \"{REDACTED}\" stands for the current value, and there is none; send the value"
                    )),
                }
            })
            .collect::<Result<_, _>>()
            .map(CustomHeaders)
    }

    /// As responses show them: sensitive values redacted.
    pub fn redacted(&self) -> serde_json::Map<String, Value> {
        self.0
            .iter()
            .map(|(name, value)| {
                let shown = if is_sensitive(name) { REDACTED } else { value };
                (name.clone(), Value::String(shown.into()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(changed: Option<&[String]>) -> EventFacts<'_> {
        EventFacts {
            source_platform: SourcePlatform::GoogleAds,
            source_type: SourceType::Form,
            lead_line: Some("buyer"),
            stage_slug: "new",
            status: LeadStatus::Active,
            changed_fields: changed,
        }
    }

    #[test]
    fn keys_and_values_or() {
        let filter = Filter::parse(&json!({
            "source_platform": ["google_ads", "meta_ads"],
            "status": ["active"],
        }))
        .unwrap()
        .unwrap();
        assert!(filter.passes(&facts(None)));
        let meta_only = Filter::parse(&json!({ "source_platform": ["meta_ads"] }))
            .unwrap()
            .unwrap();
        assert!(!meta_only.passes(&facts(None)));
        let seller = Filter::parse(&json!({ "lead_line": ["seller"] }))
            .unwrap()
            .unwrap();
        assert!(!seller.passes(&facts(None)));
        let stage = Filter::parse(&json!({ "stage_slug": ["new"] }))
            .unwrap()
            .unwrap();
        assert!(stage.passes(&facts(None)));
        let changed =
            Filter::parse(&json!({ "changed_fields": ["status", "custom_fields.budget"] }))
                .unwrap()
                .unwrap();
        assert!(changed.passes(&facts(None)), "not an update: passes");
        assert!(changed.passes(&facts(Some(&["custom_fields.budget".to_string()]))));
        assert!(!changed.passes(&facts(Some(&["score".to_string()]))));
        assert_eq!(Filter::parse(&json!(null)), Ok(None));
        assert_eq!(Filter::parse(&json!({})), Ok(None));
    }

    #[test]
    fn unknown_keys_and_values_are_named() {
        for (raw, words) in [
            (json!({ "colour": ["red"] }), "colour"),
            (json!({ "status": ["open"] }), "open"),
            (json!({ "status": [] }), "non-empty"),
            (json!({ "status": "active" }), "non-empty"),
            (json!({ "changed_fields": ["nickname"] }), "nickname"),
            (json!([1]), "object"),
        ] {
            let err = Filter::parse(&raw).unwrap_err();
            assert!(err.contains(words), "{raw}: {err}");
        }
    }

    #[test]
    fn headers_are_checked_and_sensitive_values_redacted() {
        let headers = CustomHeaders::parse(&json!({
            "X-Api-Key": "k-123",
            "Authorization": "Bearer abc",
            "X-Tenant": "acme",
        }))
        .unwrap();
        assert_eq!(headers.0[0], ("x-api-key".to_string(), "k-123".to_string()));
        assert_eq!(
            Value::Object(headers.redacted()),
            json!({ "x-api-key": "[redacted]", "authorization": "[redacted]", "x-tenant": "acme" })
        );
        for (raw, word) in [
            (json!({ "X-Mega-Signature": "x" }), "x-mega-signature"),
            (json!({ "Content-Type": "text/plain" }), "content-type"),
            (json!({ "webhook-id": "x" }), "webhook-id"),
            (json!({ "Connection": "close" }), "connection"),
            (json!({ "bad name": "x" }), "valid header name"),
            (json!({ "x-a": "line\r\nInjected: 1" }), "CR or LF"),
            (json!({ "x-a": "x".repeat(1025) }), "1024"),
            (json!({ "x-a": 5 }), "string"),
        ] {
            let err = CustomHeaders::parse(&raw).unwrap_err();
            assert!(err.contains(word), "{raw}: {err}");
        }
        let eleven: serde_json::Map<String, Value> =
            (0..11).map(|i| (format!("x-h{i}"), json!("v"))).collect();
        assert!(
            CustomHeaders::parse(&Value::Object(eleven))
                .unwrap_err()
                .contains("at most 10")
        );
        assert_eq!(
            CustomHeaders::parse(&json!(null)),
            Ok(CustomHeaders::default())
        );
    }
}
