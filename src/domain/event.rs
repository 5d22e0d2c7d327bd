//! The event catalogue.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "lead.created")]
    LeadCreated,
    #[serde(rename = "lead.updated")]
    LeadUpdated,
    /// Sent by the test route; never subscribed to, delivered to the one webhook asked.
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl EventType {
    /// Event types a webhook can subscribe to.
    pub const SUBSCRIBABLE: [EventType; 2] = [EventType::LeadCreated, EventType::LeadUpdated];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::LeadCreated => "lead.created",
            EventType::LeadUpdated => "lead.updated",
            EventType::WebhookTest => "webhook.test",
        }
    }

    pub fn parse_subscribable(raw: &str) -> Result<EventType, String> {
        EventType::SUBSCRIBABLE
            .into_iter()
            .find(|t| t.as_str() == raw)
            .ok_or_else(|| {
                format!(
                    "event_types: unknown event type `{raw}`; the catalogue is {}",
                    EventType::SUBSCRIBABLE.map(EventType::as_str).join(", ")
                )
            })
    }
}
