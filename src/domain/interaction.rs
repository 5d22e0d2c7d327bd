//! Interactions: a lead's timeline (spec §12.2). A note, call, email, SMS, meeting or chat,
//! when it happened, and what was said; each one moves the lead's `interaction_count`,
//! `last_interaction_at` and `version`.

use serde::{Deserialize, Serialize};

use super::ids::{InteractionId, LeadId, TenantId};
use super::lead::wire_enum;
use super::time::Timestamp;

const MAX_SUMMARY: usize = 500;
const MAX_BODY: usize = 20_000;
const MAX_DURATION_SECS: i64 = 86_400;
/// An interaction may be logged as happening this far ahead at most (clocks differ).
pub const MAX_AHEAD_MS: i64 = 5 * 60 * 1000;

wire_enum!(InteractionType, "type" {
    Note => "note", Call => "call", Email => "email", Sms => "sms", Meeting => "meeting",
    Chat => "chat",
});
wire_enum!(Direction, "direction" { Inbound => "inbound", Outbound => "outbound" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    pub id: InteractionId,
    pub tenant_id: TenantId,
    pub lead_id: LeadId,
    pub kind: InteractionType,
    pub direction: Option<Direction>,
    pub occurred_at: Timestamp,
    pub summary: Option<String>,
    pub body: Option<String>,
    pub duration_seconds: Option<u32>,
    pub created_at: Timestamp,
}

/// A new interaction's fields, each within its bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionInput {
    pub kind: InteractionType,
    pub direction: Option<Direction>,
    /// `None`: now.
    pub occurred_at: Option<Timestamp>,
    pub summary: Option<String>,
    pub body: Option<String>,
    pub duration_seconds: Option<u32>,
}

/// `summary`, `body` and `duration_seconds`, checked.
pub type Text = (Option<String>, Option<String>, Option<u32>);

/// Checks the free-text and number fields; every problem named by its field.
pub fn check_text(
    summary: Option<String>,
    body: Option<String>,
    duration_seconds: Option<i64>,
) -> Result<Text, Vec<String>> {
    let mut problems = Vec::new();
    if summary
        .as_ref()
        .is_some_and(|s| s.chars().count() > MAX_SUMMARY)
    {
        problems.push(format!("summary must be at most {MAX_SUMMARY} characters"));
    }
    if body.as_ref().is_some_and(|b| b.chars().count() > MAX_BODY) {
        problems.push(format!("body must be at most {MAX_BODY} characters"));
    }
    let duration = match duration_seconds {
        Some(d) if (0..=MAX_DURATION_SECS).contains(&d) => Some(d as u32),
        Some(_) => {
            problems.push(format!(
                "duration_seconds must be between 0 and {MAX_DURATION_SECS}"
            ));
            None
        }
        None => None,
    };
    match problems.is_empty() {
        true => Ok((summary, body, duration)),
        false => Err(problems),
    }
}

impl Interaction {
    /// The interaction `input` records on `lead` at `now`; refused when it claims to happen
    /// more than five minutes from now.
    pub fn new(
        id: InteractionId,
        tenant: TenantId,
        lead: LeadId,
        input: InteractionInput,
        now: Timestamp,
    ) -> Result<Interaction, String> {
        let occurred_at = input.occurred_at.unwrap_or(now);
        if occurred_at.ms() > now.ms() + MAX_AHEAD_MS {
            return Err(
                "occurred_at is more than 5 minutes in the future; send when it happened".into(),
            );
        }
        Ok(Interaction {
            id,
            tenant_id: tenant,
            lead_id: lead,
            kind: input.kind,
            direction: input.direction,
            occurred_at,
            summary: input.summary,
            body: input.body,
            duration_seconds: input.duration_seconds,
            created_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_780_000_000_000);

    fn input(at: Option<Timestamp>) -> InteractionInput {
        InteractionInput {
            kind: InteractionType::Call,
            direction: Some(Direction::Inbound),
            occurred_at: at,
            summary: Some("asked about the house".into()),
            body: None,
            duration_seconds: Some(120),
        }
    }

    #[test]
    fn occurred_at_defaults_to_now_and_may_not_run_ahead_of_it() {
        let ids = (InteractionId::new(), TenantId::new(), LeadId::new());
        let made = Interaction::new(ids.0, ids.1, ids.2, input(None), NOW).unwrap();
        assert_eq!(made.occurred_at, NOW);
        let soon = NOW.plus_ms(MAX_AHEAD_MS);
        assert!(Interaction::new(ids.0, ids.1, ids.2, input(Some(soon)), NOW).is_ok());
        let late = NOW.plus_ms(MAX_AHEAD_MS + 1);
        assert!(Interaction::new(ids.0, ids.1, ids.2, input(Some(late)), NOW).is_err());
    }

    #[test]
    fn text_bounds_are_named() {
        let long = "x".repeat(501);
        let problems = check_text(Some(long), Some("y".repeat(20_001)), Some(86_401)).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(check_text(Some("ok".into()), None, Some(0)).is_ok());
        assert!(check_text(None, None, Some(-1)).is_err());
        assert_eq!(InteractionType::parse("call"), Ok(InteractionType::Call));
        assert!(InteractionType::parse("fax").is_err());
    }
}
