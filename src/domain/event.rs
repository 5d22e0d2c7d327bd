//! The event catalogue (spec §11.3), the envelope every delivery body and event-log entry shares
//! (§11.2), and the `previous` values of a `lead.updated`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::EventId;
use super::time::Timestamp;

/// Stored in delivery records by position: new types go at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "lead.created")]
    LeadCreated,
    #[serde(rename = "lead.updated")]
    LeadUpdated,
    /// Sent by the test route; never subscribed to, delivered to the one webhook asked.
    #[serde(rename = "webhook.test")]
    WebhookTest,
    #[serde(rename = "lead.deleted")]
    LeadDeleted,
    #[serde(rename = "interaction.created")]
    InteractionCreated,
    /// The engine turned one of the tenant's webhooks off (410, or failing too long).
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
    /// A delivery used its last retry and failed.
    #[serde(rename = "delivery.exhausted")]
    DeliveryExhausted,
}

impl EventType {
    /// Event types a webhook can subscribe to, and the event log records: all but the test.
    pub const SUBSCRIBABLE: [EventType; 6] = [
        EventType::LeadCreated,
        EventType::LeadUpdated,
        EventType::LeadDeleted,
        EventType::InteractionCreated,
        EventType::WebhookDisabled,
        EventType::DeliveryExhausted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::LeadCreated => "lead.created",
            EventType::LeadUpdated => "lead.updated",
            EventType::WebhookTest => "webhook.test",
            EventType::LeadDeleted => "lead.deleted",
            EventType::InteractionCreated => "interaction.created",
            EventType::WebhookDisabled => "webhook.disabled",
            EventType::DeliveryExhausted => "delivery.exhausted",
        }
    }

    /// One byte naming the type in the event log's index entries.
    pub fn code(self) -> u8 {
        match self {
            EventType::LeadCreated => 0,
            EventType::LeadUpdated => 1,
            EventType::WebhookTest => 2,
            EventType::LeadDeleted => 3,
            EventType::InteractionCreated => 4,
            EventType::WebhookDisabled => 5,
            EventType::DeliveryExhausted => 6,
        }
    }

    pub fn from_code(code: u8) -> Option<EventType> {
        EventType::SUBSCRIBABLE
            .into_iter()
            .chain([EventType::WebhookTest])
            .find(|t| t.code() == code)
    }

    /// About the webhooks themselves rather than the tenant's leads: never sent to the webhook
    /// it is about, and a delivery of one that fails raises no further operational event (two
    /// failing webhooks would otherwise keep reporting each other's failures).
    pub fn is_operational(self) -> bool {
        matches!(
            self,
            EventType::WebhookDisabled | EventType::DeliveryExhausted
        )
    }

    pub fn parse_subscribable(raw: &str) -> Result<EventType, String> {
        EventType::SUBSCRIBABLE
            .into_iter()
            .find(|t| t.as_str() == raw)
            .ok_or_else(|| {
                format!(
                    "unknown event type `{raw}`; the catalogue is {}",
                    EventType::SUBSCRIBABLE.map(EventType::as_str).join(", ")
                )
            })
    }
}

/// The JSON text of an event as a receiver sees it: `event`, `event_id`, `occurred_at`, then
/// `delivered_at` when it is a delivery (the event log leaves it out), then the event's own
/// members, `data` (a JSON object's text, e.g. `{"lead": {...}, "changed_fields": [...]}`).
/// The members are spliced in as text: a delivery attempt does not parse its payload again.
pub fn envelope(
    event_type: EventType,
    id: EventId,
    occurred_at: Timestamp,
    delivered_at: Option<Timestamp>,
    data: &str,
) -> String {
    let mut out = String::with_capacity(data.len() + 160);
    out.push_str("{\"event\":\"");
    out.push_str(event_type.as_str());
    out.push_str("\",\"event_id\":\"");
    out.push_str(&id.to_string());
    out.push_str("\",\"occurred_at\":\"");
    out.push_str(&occurred_at.to_iso());
    if let Some(at) = delivered_at {
        out.push_str("\",\"delivered_at\":\"");
        out.push_str(&at.to_iso());
    }
    out.push('"');
    let members = data.trim().strip_prefix('{').unwrap_or("}").trim_start();
    if !members.starts_with('}') {
        out.push(',');
    }
    out.push_str(members);
    out
}

/// The `previous` object of a `lead.updated`: for each changed field, its value in the lead
/// snapshot from before the change (`custom_fields.<slug>` from its custom fields, null when
/// the field was not set).
pub fn previous(before: &Map<String, Value>, changed_fields: &[String]) -> Map<String, Value> {
    changed_fields
        .iter()
        .map(|field| {
            let value = match field.strip_prefix("custom_fields.") {
                Some(slug) => before
                    .get("custom_fields")
                    .and_then(|c| c.get(slug))
                    .cloned(),
                None => before.get(field).cloned(),
            };
            (field.clone(), value.unwrap_or(Value::Null))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_catalogue_names_and_codes_round_trip() {
        for t in EventType::SUBSCRIBABLE
            .into_iter()
            .chain([EventType::WebhookTest])
        {
            assert_eq!(EventType::from_code(t.code()), Some(t));
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                Value::String(t.as_str().into())
            );
        }
        assert_eq!(EventType::from_code(200), None);
        assert!(EventType::parse_subscribable("webhook.test").is_err());
        assert_eq!(
            EventType::parse_subscribable("delivery.exhausted"),
            Ok(EventType::DeliveryExhausted)
        );
    }

    #[test]
    fn the_envelope_splices_the_members_after_the_common_fields() {
        let id = EventId::from_bytes([1; 16]);
        let at = Timestamp(1_780_000_000_000);
        let text = envelope(
            EventType::LeadUpdated,
            id,
            at,
            Some(at.plus_ms(1500)),
            r#"{"lead":{"id":"x"},"changed_fields":["status"]}"#,
        );
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            body,
            json!({
                "event": "lead.updated",
                "event_id": id.to_string(),
                "occurred_at": at.to_iso(),
                "delivered_at": at.plus_ms(1500).to_iso(),
                "lead": {"id": "x"},
                "changed_fields": ["status"],
            })
        );
        let bare: Value =
            serde_json::from_str(&envelope(EventType::WebhookTest, id, at, None, "{}")).unwrap();
        assert_eq!(
            bare,
            json!({"event": "webhook.test", "event_id": id.to_string(), "occurred_at": at.to_iso()})
        );
    }

    #[test]
    fn previous_takes_each_changed_field_from_before() {
        let before = json!({
            "status": "active",
            "score": null,
            "owner": {"id": "o", "name": "Olga"},
            "current_stage": {"slug": "new", "name": "New"},
            "lead_line": "buyer",
            "custom_fields": {"budget": 100},
        });
        let changed = [
            "status",
            "score",
            "owner",
            "current_stage",
            "lead_line",
            "custom_fields.budget",
            "custom_fields.notes",
        ]
        .map(String::from);
        assert_eq!(
            Value::Object(previous(before.as_object().unwrap(), &changed)),
            json!({
                "status": "active",
                "score": null,
                "owner": {"id": "o", "name": "Olga"},
                "current_stage": {"slug": "new", "name": "New"},
                "lead_line": "buyer",
                "custom_fields.budget": 100,
                "custom_fields.notes": null,
            })
        );
    }
}
