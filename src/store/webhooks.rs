//! Webhook subscriptions: registration, changes, secret rotation, soft delete.

use redb::WriteTransaction;

use super::catalog::load_catalog;
use super::codec::{Record, encode};
use super::delivery_queue::{cancel_open, held_count, hold_open, release_held};
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::event::EventType;
use crate::domain::ids::{TenantId, WebhookId};
use crate::domain::time::Timestamp;
use crate::domain::webhook::{Rotation, Webhook, WebhookPatch, WebhookSettings};
use crate::domain::webhook_controls::Filter;

impl Record for Webhook {
    const VERSION: u8 = 2;
    const NAME: &'static str = "webhook";

    /// Format 1 had none of §13's controls: no filter, no headers, the configured limits.
    fn upgrade(version: u8, bytes: &[u8]) -> Result<Self, StoreError> {
        #[derive(serde::Deserialize)]
        struct WebhookV1 {
            id: WebhookId,
            tenant_id: TenantId,
            url: String,
            event_types: Vec<EventType>,
            is_active: bool,
            timeout_seconds: u32,
            retry_attempts: u32,
            description: Option<String>,
            created_at: Timestamp,
            updated_at: Timestamp,
            deleted_at: Option<Timestamp>,
            secret: String,
            previous_secret: Option<String>,
            previous_secret_expires_at: Option<Timestamp>,
            last_delivery_at: Option<Timestamp>,
            last_delivery_status: Option<u16>,
            consecutive_failures: u32,
            failing_since: Option<Timestamp>,
            disabled_reason: Option<String>,
        }
        if version != 1 {
            return Err(StoreError::Corrupt(format!(
                "webhook record has format version {version}, this leadbase reads up to {}",
                Self::VERSION
            )));
        }
        let v1: WebhookV1 = postcard::from_bytes(bytes)
            .map_err(|e| StoreError::Corrupt(format!("cannot decode webhook record (v1): {e}")))?;
        Ok(Webhook {
            id: v1.id,
            tenant_id: v1.tenant_id,
            url: v1.url,
            event_types: v1.event_types,
            is_active: v1.is_active,
            timeout_seconds: v1.timeout_seconds,
            retry_attempts: v1.retry_attempts,
            description: v1.description,
            created_at: v1.created_at,
            updated_at: v1.updated_at,
            deleted_at: v1.deleted_at,
            secret: v1.secret,
            previous_secret: v1.previous_secret,
            previous_secret_expires_at: v1.previous_secret_expires_at,
            last_delivery_at: v1.last_delivery_at,
            last_delivery_status: v1.last_delivery_status,
            consecutive_failures: v1.consecutive_failures,
            failing_since: v1.failing_since,
            disabled_reason: v1.disabled_reason,
            filter: None,
            headers: Default::default(),
            max_concurrency: None,
            rate_limit_per_minute: None,
        })
    }
}

fn webhook_key(tenant: TenantId, id: WebhookId) -> Vec<u8> {
    key(&[&tenant.bytes(), &id.bytes()])
}

/// Every webhook of the tenant, deleted ones included, oldest first.
pub(crate) fn tenant_webhooks(
    txn: &impl Txn,
    tenant: TenantId,
) -> Result<Vec<Webhook>, StoreError> {
    records_under(&txn.table(WEBHOOKS)?, &tenant.bytes())
}

/// The tenant's webhooks, deleted ones left out, oldest first.
fn live_webhooks(txn: &impl Txn, tenant: TenantId) -> Result<Vec<Webhook>, StoreError> {
    let mut webhooks = tenant_webhooks(txn, tenant)?;
    webhooks.retain(|w| w.deleted_at.is_none());
    Ok(webhooks)
}

/// The webhook, unless it does not exist or was deleted.
pub(crate) fn find_webhook(
    txn: &impl Txn,
    tenant: TenantId,
    id: WebhookId,
) -> Result<Option<Webhook>, StoreError> {
    Ok(
        load::<Webhook>(&txn.table(WEBHOOKS)?, &webhook_key(tenant, id))?
            .filter(|w| w.deleted_at.is_none()),
    )
}

/// As [`find_webhook`], with a missing or deleted webhook a `NotFound`.
pub(crate) fn require_webhook(
    txn: &impl Txn,
    tenant: TenantId,
    id: WebhookId,
) -> Result<Webhook, StoreError> {
    find_webhook(txn, tenant, id)?
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

/// A filter's stage slugs must name stages of the tenant, and its `custom_fields.<slug>`
/// fields of the tenant.
fn refuse_unknown_stages(
    txn: &WriteTransaction,
    tenant: TenantId,
    filter: &Filter,
) -> Result<(), StoreError> {
    let catalog = load_catalog(txn, tenant)?;
    for slug in filter.custom_field_slugs() {
        if !catalog.fields.iter().any(|f| f.slug == slug) {
            return Err(StoreError::Invalid(format!(
                "filter.changed_fields: no custom field `{slug}` in this customer's fields"
            )));
        }
    }
    for slug in filter.stage_slug.iter().flatten() {
        if catalog.stage_by_slug(slug).is_err() {
            return Err(StoreError::Invalid(format!(
                "filter.stage_slug: no stage `{slug}` in this customer's pipeline"
            )));
        }
    }
    Ok(())
}

impl Store {
    pub fn create_webhook(
        &self,
        tenant: TenantId,
        settings: WebhookSettings,
        secret: String,
        max_per_tenant: u32,
    ) -> Result<Webhook, StoreError> {
        self.write_now(move |txn, now| {
            let existing = live_webhooks(txn, tenant)?;
            if existing.len() >= max_per_tenant as usize {
                return Err(StoreError::Conflict(format!(
                    "a customer can have at most {max_per_tenant} webhooks; delete one first"
                )));
            }
            refuse_duplicate_url(&existing, settings.url.as_str(), None)?;
            if let Some(filter) = &settings.filter {
                refuse_unknown_stages(txn, tenant, filter)?;
            }
            let mut settings = settings;
            let headers = std::mem::take(&mut settings.headers);
            settings.headers = headers
                .keeping_redacted(&Default::default())
                .map_err(StoreError::Invalid)?;
            let webhook = Webhook::new(WebhookId::new(), tenant, settings, secret, now);
            save_webhook(txn, &webhook)?;
            Ok(webhook)
        })
    }

    /// How many deliveries a webhook holds while it is off.
    pub fn held_count(&self, webhook: WebhookId) -> Result<usize, StoreError> {
        self.read(|txn| held_count(txn, webhook))
    }

    /// The tenant's webhooks with how many deliveries each holds, deleted ones left out, oldest
    /// first: one read.
    pub fn list_webhooks_held(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(Webhook, usize)>, StoreError> {
        self.read(|txn| {
            let mut counted = Vec::new();
            for webhook in live_webhooks(txn, tenant)? {
                let held = held_count(txn, webhook.id)?;
                counted.push((webhook, held));
            }
            Ok(counted)
        })
    }

    /// A webhook with how many deliveries it holds: one read.
    pub fn get_webhook_held(
        &self,
        tenant: TenantId,
        id: WebhookId,
    ) -> Result<Option<(Webhook, usize)>, StoreError> {
        self.read(|txn| match find_webhook(txn, tenant, id)? {
            Some(webhook) => {
                let held = held_count(txn, id)?;
                Ok(Some((webhook, held)))
            }
            None => Ok(None),
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
        self.read(|txn| find_webhook(txn, tenant, id))
    }

    pub fn update_webhook(
        &self,
        tenant: TenantId,
        id: WebhookId,
        patch: WebhookPatch,
        rotation: Option<Rotation>,
    ) -> Result<Webhook, StoreError> {
        self.write_now(move |txn, now| {
            let mut webhook = require_webhook(txn, tenant, id)?;
            if let Some(url) = &patch.url {
                refuse_duplicate_url(&live_webhooks(txn, tenant)?, url.as_str(), Some(id))?;
            }
            if let Some(Some(filter)) = &patch.filter {
                refuse_unknown_stages(txn, tenant, filter)?;
            }
            let mut patch = patch;
            if let Some(headers) = patch.headers.take() {
                let kept = headers.keeping_redacted(&webhook.headers);
                patch.headers = Some(kept.map_err(StoreError::Invalid)?);
            }
            let was_active = webhook.is_active;
            let discard = patch.discard_held;
            webhook.apply(patch, now);
            if let Some(rotation) = rotation {
                webhook.rotate(rotation, now);
            }
            save_webhook(txn, &webhook)?;
            // Turned off: what waits for an attempt is held. Turned back on: what it held
            // goes out, oldest first, or is dropped.
            let released = match (was_active, webhook.is_active) {
                (false, true) => release_held(txn, id, now, discard)?,
                (true, false) => {
                    hold_open(txn, id)?;
                    0
                }
                _ => 0,
            };
            Ok((webhook, released > 0 && !discard))
        })
        .map(|(webhook, released)| {
            self.note_webhook_edit(id);
            if released {
                self.wake_deliveries();
            }
            webhook
        })
    }

    /// Soft delete: the webhook disappears from every view and its open deliveries stop.
    pub fn delete_webhook(&self, tenant: TenantId, id: WebhookId) -> Result<(), StoreError> {
        self.write_now(move |txn, now| {
            let mut webhook = require_webhook(txn, tenant, id)?;
            webhook.delete(now);
            save_webhook(txn, &webhook)?;
            cancel_open(txn, id)?;
            Ok(())
        })
        .inspect(|_| self.note_webhook_edit(id))
    }
}
