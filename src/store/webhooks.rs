//! Webhook subscriptions: registration, changes, secret rotation, soft delete.

use std::fmt;

use redb::WriteTransaction;
use serde::{Deserialize, Serialize};

use super::codec::{Record, encode};
use super::outbox::{Delivery, DeliveryStatus, due_key};
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::event::EventType;
use crate::domain::ids::{TenantId, WebhookId};
use crate::domain::time::Timestamp;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
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

/// Secrets stay out of logs, whatever gets printed.
impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("url", &self.url)
            .field("is_active", &self.is_active)
            .field("deleted_at", &self.deleted_at)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// The secrets that sign a delivery made at `now`: the newest first, then the previous one
    /// while its overlap lasts.
    pub fn live_secrets(&self, now: Timestamp) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) =
            (&self.previous_secret, self.previous_secret_expires_at)
            && until > now
        {
            secrets.push(previous);
        }
        secrets
    }

    /// Whether an event of `event_type` is queued for this webhook.
    pub fn receives(&self, event_type: EventType) -> bool {
        self.deleted_at.is_none() && self.is_active && self.event_types.contains(&event_type)
    }
}

/// The settings a client chooses, validated.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    pub event_types: Vec<EventType>,
    pub is_active: bool,
    pub timeout_seconds: u32,
    pub retry_attempts: u32,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub is_active: Option<bool>,
    pub timeout_seconds: Option<u32>,
    pub retry_attempts: Option<u32>,
    pub description: Option<Option<String>>,
}

/// A new secret, and how long the current one keeps signing beside it.
pub struct Rotation {
    pub secret: String,
    pub overlap_ms: i64,
}

fn webhook_key(tenant: TenantId, id: WebhookId) -> Vec<u8> {
    key(&[&tenant.bytes(), &id.bytes()])
}

/// The tenant's webhooks, deleted ones left out, oldest first.
fn live_webhooks(txn: &impl Txn, tenant: TenantId) -> Result<Vec<Webhook>, StoreError> {
    Ok(
        records_under::<Webhook>(&txn.table(WEBHOOKS)?, &tenant.bytes())?
            .into_iter()
            .filter(|w| w.deleted_at.is_none())
            .collect(),
    )
}

/// The webhook, unless it does not exist or was deleted.
pub(crate) fn find_live(
    txn: &impl Txn,
    tenant: TenantId,
    id: WebhookId,
) -> Result<Option<Webhook>, StoreError> {
    Ok(
        load::<Webhook>(&txn.table(WEBHOOKS)?, &webhook_key(tenant, id))?
            .filter(|w| w.deleted_at.is_none()),
    )
}

/// As [`find_live`], with a missing webhook an error.
pub(crate) fn live_webhook(
    txn: &impl Txn,
    tenant: TenantId,
    id: WebhookId,
) -> Result<Webhook, StoreError> {
    find_live(txn, tenant, id)?
        .ok_or_else(|| StoreError::NotFound(format!("webhook {id} not found")))
}

pub(crate) fn save_webhook(txn: &WriteTransaction, webhook: &Webhook) -> Result<(), StoreError> {
    txn.open_table(WEBHOOKS)?.insert(
        webhook_key(webhook.tenant_id, webhook.id).as_slice(),
        encode(webhook)?.as_slice(),
    )?;
    Ok(())
}

fn refuse_duplicate_url(
    live: &[Webhook],
    url: &str,
    except: Option<WebhookId>,
) -> Result<(), StoreError> {
    // Inactive webhooks count: the URL is still registered.
    match live.iter().find(|w| w.url == url && Some(w.id) != except) {
        Some(existing) => Err(StoreError::Conflict(format!(
            "webhook {} is already registered for this url",
            existing.id
        ))),
        None => Ok(()),
    }
}

fn rotate(webhook: &mut Webhook, rotation: Rotation, now: Timestamp) {
    let previous = std::mem::replace(&mut webhook.secret, rotation.secret);
    // Two rotations within one overlap: the oldest secret stops at once, the one before the
    // newest keeps signing.
    if rotation.overlap_ms > 0 {
        webhook.previous_secret = Some(previous);
        webhook.previous_secret_expires_at = Some(now.plus_ms(rotation.overlap_ms));
    } else {
        webhook.previous_secret = None;
        webhook.previous_secret_expires_at = None;
    }
}

/// Cancels a webhook's deliveries that have not been delivered or given up on.
fn cancel_open_deliveries(txn: &WriteTransaction, webhook: WebhookId) -> Result<usize, StoreError> {
    let ids = ids_under(&txn.open_table(DELIVERIES_BY_WEBHOOK)?, &webhook.bytes())?;
    let mut deliveries = txn.open_table(DELIVERIES)?;
    let mut due = txn.open_table(DELIVERIES_DUE)?;
    let mut cancelled = 0;
    for id in ids {
        let Some(mut delivery) = load::<Delivery>(&deliveries, &id)? else {
            continue;
        };
        if !matches!(
            delivery.status,
            DeliveryStatus::Pending | DeliveryStatus::Delivering
        ) {
            continue;
        }
        if let Some(at) = delivery.next_attempt_at.take() {
            due.remove(due_key(at, &delivery).as_slice())?;
        }
        delivery.status = DeliveryStatus::Cancelled;
        deliveries.insert(id.as_slice(), encode(&delivery)?.as_slice())?;
        cancelled += 1;
    }
    Ok(cancelled)
}

impl Store {
    pub fn create_webhook(
        &self,
        tenant: TenantId,
        settings: WebhookSettings,
        secret: String,
        max_per_tenant: u32,
    ) -> Result<Webhook, StoreError> {
        self.write(move |txn| {
            let existing = live_webhooks(txn, tenant)?;
            if existing.len() >= max_per_tenant as usize {
                return Err(StoreError::Conflict(format!(
                    "a customer can have at most {max_per_tenant} webhooks; delete one first"
                )));
            }
            refuse_duplicate_url(&existing, &settings.url, None)?;
            let now = Timestamp::now();
            let webhook = Webhook {
                id: WebhookId::new(),
                tenant_id: tenant,
                url: settings.url,
                event_types: settings.event_types,
                is_active: settings.is_active,
                timeout_seconds: settings.timeout_seconds,
                retry_attempts: settings.retry_attempts,
                description: settings.description,
                created_at: now,
                updated_at: now,
                deleted_at: None,
                secret,
                previous_secret: None,
                previous_secret_expires_at: None,
                last_delivery_at: None,
                last_delivery_status: None,
                consecutive_failures: 0,
                failing_since: None,
                disabled_reason: None,
            };
            save_webhook(txn, &webhook)?;
            Ok(webhook)
        })
    }

    /// The tenant's webhooks, deleted ones left out, oldest first.
    pub fn list_webhooks(&self, tenant: TenantId) -> Result<Vec<Webhook>, StoreError> {
        self.read(|txn| live_webhooks(txn, tenant))
    }

    pub fn get_webhook(
        &self,
        tenant: TenantId,
        id: WebhookId,
    ) -> Result<Option<Webhook>, StoreError> {
        self.read(|txn| find_live(txn, tenant, id))
    }

    pub fn update_webhook(
        &self,
        tenant: TenantId,
        id: WebhookId,
        patch: WebhookPatch,
        rotation: Option<Rotation>,
    ) -> Result<Webhook, StoreError> {
        self.write(move |txn| {
            let mut webhook = live_webhook(txn, tenant, id)?;
            if let Some(url) = &patch.url {
                refuse_duplicate_url(&live_webhooks(txn, tenant)?, url, Some(id))?;
            }
            let now = Timestamp::now();
            if let Some(url) = patch.url {
                webhook.url = url;
            }
            if let Some(types) = patch.event_types {
                webhook.event_types = types;
            }
            if let Some(active) = patch.is_active {
                if active && !webhook.is_active {
                    // Turning a webhook back on forgives its past failures.
                    webhook.disabled_reason = None;
                    webhook.consecutive_failures = 0;
                    webhook.failing_since = None;
                }
                webhook.is_active = active;
            }
            if let Some(timeout) = patch.timeout_seconds {
                webhook.timeout_seconds = timeout;
            }
            if let Some(retries) = patch.retry_attempts {
                webhook.retry_attempts = retries;
            }
            if let Some(description) = patch.description {
                webhook.description = description;
            }
            if let Some(rotation) = rotation {
                rotate(&mut webhook, rotation, now);
            }
            webhook.updated_at = now;
            save_webhook(txn, &webhook)?;
            Ok(webhook)
        })
    }

    /// Soft delete: the webhook disappears from every view and its open deliveries stop.
    pub fn delete_webhook(&self, tenant: TenantId, id: WebhookId) -> Result<(), StoreError> {
        self.write(move |txn| {
            let mut webhook = live_webhook(txn, tenant, id)?;
            let now = Timestamp::now();
            webhook.deleted_at = Some(now);
            webhook.updated_at = now;
            webhook.is_active = false;
            save_webhook(txn, &webhook)?;
            cancel_open_deliveries(txn, id)?;
            Ok(())
        })
    }
}
