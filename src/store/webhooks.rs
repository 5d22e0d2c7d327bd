//! Webhook subscriptions.

use serde::{Deserialize, Serialize};

use super::codec::Record;
use crate::domain::event::EventType;
use crate::domain::ids::{TenantId, WebhookId};
use crate::domain::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub tenant_id: TenantId,
    pub url: String,
    pub event_types: Vec<EventType>,
    pub is_active: bool,
    pub timeout_seconds: u32,
    pub retry_attempts: u32,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Soft delete: a deleted webhook is invisible everywhere and receives nothing.
    pub deleted_at: Option<Timestamp>,
    /// The newest signing secret (`mega_whsec_` + 64 hex).
    pub secret: String,
    /// The secret before the last rotation, signing alongside until it expires.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<Timestamp>,
    pub last_delivery_at: Option<Timestamp>,
    pub last_delivery_status: Option<u16>,
    pub consecutive_failures: u32,
    /// When the current run of failures began; cleared by a success.
    pub failing_since: Option<Timestamp>,
    pub disabled_reason: Option<String>,
}

impl Record for Webhook {
    const VERSION: u8 = 1;
    const NAME: &'static str = "webhook";
}

impl Webhook {
    /// Whether an event of `event_type` is queued for this webhook.
    pub fn receives(&self, event_type: EventType) -> bool {
        self.deleted_at.is_none() && self.is_active && self.event_types.contains(&event_type)
    }
}
