//! Webhook subscriptions: registration, changes, secret rotation, soft delete.

use redb::WriteTransaction;

use super::codec::{Record, encode};
use super::delivery_queue::cancel_open;
use super::tables::*;
use super::{Store, StoreError};
use crate::domain::ids::{TenantId, WebhookId};
use crate::domain::webhook::{Rotation, Webhook, WebhookPatch, WebhookSettings};

impl Record for Webhook {
    const VERSION: u8 = 1;
    const NAME: &'static str = "webhook";
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
            let webhook = Webhook::new(WebhookId::new(), tenant, settings, secret, now);
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
            webhook.apply(patch, now);
            if let Some(rotation) = rotation {
                webhook.rotate(rotation, now);
            }
            save_webhook(txn, &webhook)?;
            Ok(webhook)
        })
        .inspect(|_| self.note_webhook_edit(id))
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
