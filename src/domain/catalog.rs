//! A tenant's catalogue: pipeline stages, custom-field definitions and owners, and the rules for
//! their names, slugs and colours.

use serde::{Deserialize, Serialize};

/// The reserved custom field every tenant has; its values are `buyer` and `seller`.
pub const LEAD_LINE: &str = "lead_line";

/// The stages a new tenant starts with; the first is where new leads land.
pub const DEFAULT_STAGES: [(&str, &str, &str); 5] = [
    ("new", "New", "#22c55e"),
    ("contacted", "Contacted", "#3b82f6"),
    ("qualified", "Qualified", "#a855f7"),
    ("won", "Won", "#eab308"),
    ("lost", "Lost", "#6b7280"),
];

const MAX_NAME: usize = 200;
const MAX_SLUG: usize = 64;

/// A trimmed, non-empty display name of at most 200 characters.
pub fn parse_name(field: &str, raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(format!("{field} must be at most {MAX_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    Ok(name.to_string())
}

/// `[a-z][a-z0-9_]*`, at most 64 characters: safe in URLs, JSON keys and query strings.
pub fn parse_slug(field: &str, raw: &str) -> Result<String, String> {
    let slug = raw.trim();
    let mut bytes = slug.bytes();
    let valid = matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && slug.len() <= MAX_SLUG;
    if valid {
        Ok(slug.to_string())
    } else {
        Err(format!(
            "{field} must start with a lowercase letter and hold only a-z, 0-9 and _ (at most {MAX_SLUG} characters)"
        ))
    }
}

/// `#rgb` or `#rrggbb`, stored lower-case.
pub fn parse_color(field: &str, raw: &str) -> Result<String, String> {
    let color = raw.trim().to_ascii_lowercase();
    let hex = color.strip_prefix('#').unwrap_or("");
    if matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(color)
    } else {
        Err(format!("{field} must be a hex colour such as #22c55e"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Number,
    Boolean,
}

impl FieldType {
    pub const ALL: [FieldType; 3] = [FieldType::String, FieldType::Number, FieldType::Boolean];

    pub fn parse(raw: &str) -> Result<FieldType, String> {
        match raw.trim() {
            "string" => Ok(FieldType::String),
            "number" => Ok(FieldType::Number),
            "boolean" => Ok(FieldType::Boolean),
            other => Err(format!(
                "type must be one of string, number, boolean (got `{other}`)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(parse_slug("slug", " budget_2 "), Ok("budget_2".into()));
        for bad in ["", "2x", "Budget", "a-b", "a b", &"a".repeat(65)] {
            assert!(parse_slug("slug", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_colors() {
        assert_eq!(parse_name("name", "  Acme "), Ok("Acme".into()));
        assert!(parse_name("name", "   ").is_err());
        assert!(parse_name("name", &"x".repeat(201)).is_err());
        assert!(parse_name("name", "a\nb").is_err());
        assert_eq!(parse_color("color", "#22C55E"), Ok("#22c55e".into()));
        assert_eq!(parse_color("color", "#abc"), Ok("#abc".into()));
        assert!(parse_color("color", "22c55e").is_err());
        assert!(parse_color("color", "#22c55").is_err());
        assert!(parse_color("color", "#ggg").is_err());
    }

    #[test]
    fn default_stages_are_valid() {
        for (slug, name, color) in DEFAULT_STAGES {
            assert!(parse_slug("slug", slug).is_ok());
            assert!(parse_name("name", name).is_ok());
            assert!(parse_color("color", color).is_ok());
        }
        assert!(parse_slug("slug", LEAD_LINE).is_ok());
    }
}
