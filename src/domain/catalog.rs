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

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// A trimmed, non-empty display name of at most 200 characters, without control characters.
    Name
);
text_type!(
    /// `[a-z][a-z0-9_]*`, at most 64 characters: safe in URLs, JSON keys and query strings.
    Slug
);
text_type!(
    /// `#rgb` or `#rrggbb`, lower-case.
    Color
);

impl Name {
    /// `field` names the input in the error.
    pub fn parse(field: &str, raw: &str) -> Result<Name, String> {
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
        Ok(Name(name.to_string()))
    }
}

impl Slug {
    pub fn parse(field: &str, raw: &str) -> Result<Slug, String> {
        let slug = raw.trim();
        let mut bytes = slug.bytes();
        let valid = matches!(bytes.next(), Some(b'a'..=b'z'))
            && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
            && slug.len() <= MAX_SLUG;
        if valid {
            Ok(Slug(slug.to_string()))
        } else {
            Err(format!(
                "{field} must start with a lowercase letter and hold only a-z, 0-9 and _ (at most {MAX_SLUG} characters)"
            ))
        }
    }
}

impl Color {
    pub fn parse(field: &str, raw: &str) -> Result<Color, String> {
        let color = raw.trim().to_ascii_lowercase();
        let hex = color.strip_prefix('#').unwrap_or("");
        if matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Color(color))
        } else {
            Err(format!("{field} must be a hex colour such as #22c55e"))
        }
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
        assert_eq!(
            Slug::parse("slug", " budget_2 ").map(Slug::into_string),
            Ok("budget_2".into())
        );
        for bad in ["", "2x", "Budget", "a-b", "a b", &"a".repeat(65)] {
            assert!(Slug::parse("slug", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_colors() {
        assert_eq!(
            Name::parse("name", "  Acme ").map(Name::into_string),
            Ok("Acme".into())
        );
        assert!(Name::parse("name", "   ").is_err());
        assert!(Name::parse("name", &"x".repeat(201)).is_err());
        assert!(Name::parse("name", "a\nb").is_err());
        assert_eq!(
            Color::parse("color", "#22C55E").map(Color::into_string),
            Ok("#22c55e".into())
        );
        assert_eq!(
            Color::parse("color", "#abc").map(Color::into_string),
            Ok("#abc".into())
        );
        assert!(Color::parse("color", "22c55e").is_err());
        assert!(Color::parse("color", "#22c55").is_err());
        assert!(Color::parse("color", "#ggg").is_err());
    }

    #[test]
    fn default_stages_are_valid() {
        for (slug, name, color) in DEFAULT_STAGES {
            assert!(Slug::parse("slug", slug).is_ok());
            assert!(Name::parse("name", name).is_ok());
            assert!(Color::parse("color", color).is_ok());
        }
        assert!(Slug::parse("slug", LEAD_LINE).is_ok());
    }
}
