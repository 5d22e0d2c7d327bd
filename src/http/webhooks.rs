//! `/api/agents/crm/lead-webhooks`: registration, changes, rotation and soft delete.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::admin::existing_tenant;
use super::json::{Deferred, from_slice};
use super::{blocking, nullable, path_id, whole_number};
use crate::delivery::client::check_webhook_url;
use crate::domain::event::EventType;
use crate::domain::ids::WebhookId;
use crate::domain::time::Timestamp;
use crate::domain::token::{WEBHOOK_SECRET_SHOWN, generate_webhook_secret};
use crate::domain::url_policy::WebhookUrl;
use crate::domain::webhook::{
    Description, EventTypes, OverlapHours, RetryAttempts, Rotation, TimeoutSeconds, Webhook,
    WebhookPatch, WebhookSettings,
};
use crate::http::auth::{Admin, Caller, WebhooksManage};
use crate::http::error::ApiError;
use crate::http::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/agents/crm/lead-webhooks")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/api/agents/crm/lead-webhooks/{id}")
            .route(web::get().to(get_one))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .service(
        web::resource("/api/agents/crm/lead-webhooks/{id}/rotate-secret")
            .route(web::post().to(rotate_secret)),
    )
    .service(
        web::resource("/admin/api/tenants/{tenant_id}/webhooks").route(web::get().to(admin_list)),
    );
}

/// The Webhook object: never the secret, only its first characters.
#[derive(Serialize)]
pub struct WebhookDto {
    pub id: WebhookId,
    pub url: String,
    pub event_types: Vec<EventType>,
    pub is_active: bool,
    pub timeout_seconds: u32,
    pub retry_attempts: u32,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub signing_secret_prefix: String,
    pub last_delivery_at: Option<Timestamp>,
    pub last_delivery_status: Option<u16>,
    pub consecutive_failures: u32,
    pub disabled_reason: Option<String>,
    pub previous_secret_expires_at: Option<Timestamp>,
}

impl WebhookDto {
    /// As of `now`: the previous secret's expiry shows only while it still signs.
    pub fn new(w: &Webhook, now: Timestamp) -> Self {
        WebhookDto {
            id: w.id,
            url: w.url.clone(),
            event_types: w.event_types.clone(),
            is_active: w.is_active,
            timeout_seconds: w.timeout_seconds,
            retry_attempts: w.retry_attempts,
            description: w.description.clone(),
            created_at: w.created_at,
            updated_at: w.updated_at,
            signing_secret_prefix: w.secret.chars().take(WEBHOOK_SECRET_SHOWN).collect(),
            last_delivery_at: w.last_delivery_at,
            last_delivery_status: w.last_delivery_status,
            consecutive_failures: w.consecutive_failures,
            disabled_reason: w.disabled_reason.clone(),
            previous_secret_expires_at: w.overlap_ends(now),
        }
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// Applies the URL policy: syntax, then every resolved address (DNS on the blocking pool).
async fn checked_url(state: &web::Data<AppState>, raw: String) -> Result<WebhookUrl, ApiError> {
    let policy = state.url_policy.clone();
    let lookup = state.lookup.clone();
    web::block(move || check_webhook_url(&policy, lookup.as_ref(), &raw))
        .await?
        .map_err(|e| bad(e.to_string()))
}

pub(super) fn webhook_id(raw: &str) -> Result<WebhookId, ApiError> {
    path_id(raw, "webhook", WebhookId::parse)
}

fn rotation(state: &AppState, overlap_hours: Option<i64>) -> Result<Rotation, ApiError> {
    let overlap = match overlap_hours {
        None => OverlapHours::configured(state.config.webhooks.rotation_overlap_hours),
        Some(h) => OverlapHours::parse(h).map_err(bad)?,
    };
    Ok(Rotation {
        secret: generate_webhook_secret(),
        overlap,
    })
}

fn dto(state: &AppState, webhook: &Webhook) -> WebhookDto {
    WebhookDto::new(webhook, state.store.now())
}

#[derive(Deserialize)]
struct CreateBody {
    url: String,
    event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "whole_number")]
    timeout_seconds: Option<i64>,
    #[serde(default, deserialize_with = "whole_number")]
    retry_attempts: Option<i64>,
    description: Option<String>,
    is_active: Option<bool>,
}

async fn create(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    body: Deferred<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.read().await?;
    let body = body.into_inner();
    let tenant = caller.tenant;
    let settings = WebhookSettings {
        event_types: body
            .event_types
            .as_deref()
            .map_or(Ok(EventTypes::default()), EventTypes::parse)
            .map_err(bad)?,
        timeout_seconds: body
            .timeout_seconds
            .map_or(Ok(TimeoutSeconds::default()), TimeoutSeconds::parse)
            .map_err(bad)?,
        retry_attempts: body
            .retry_attempts
            .map_or(Ok(RetryAttempts::default()), RetryAttempts::parse)
            .map_err(bad)?,
        description: Description::parse(body.description).map_err(bad)?,
        is_active: body.is_active.unwrap_or(true),
        url: checked_url(&state, body.url).await?,
    };
    let secret = generate_webhook_secret();
    let max = state.config.webhooks.max_per_tenant;
    let stored_secret = secret.clone();
    let webhook = blocking(&state, move |s| {
        s.create_webhook(tenant, settings, stored_secret, max)
    })
    .await?;
    Ok(HttpResponse::Created().json(json!({ "webhook": dto(&state, &webhook), "secret": secret })))
}

fn listing(state: &AppState, webhooks: &[Webhook]) -> HttpResponse {
    let webhooks: Vec<WebhookDto> = webhooks.iter().map(|w| dto(state, w)).collect();
    HttpResponse::Ok().json(json!({ "webhooks": webhooks }))
}

async fn list(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.tenant;
    Ok(listing(
        &state,
        &blocking(&state, move |s| s.list_webhooks(tenant)).await?,
    ))
}

async fn admin_list(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = existing_tenant(&state, &path).await?;
    Ok(listing(
        &state,
        &blocking(&state, move |s| s.list_webhooks(tenant)).await?,
    ))
}

async fn get_one(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = webhook_id(&path)?;
    let tenant = caller.tenant;
    let webhook = blocking(&state, move |s| s.get_webhook(tenant, id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("webhook {id} not found")))?;
    Ok(HttpResponse::Ok().json(json!({ "webhook": dto(&state, &webhook) })))
}

#[derive(Deserialize)]
struct UpdateBody {
    url: Option<String>,
    event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "whole_number")]
    timeout_seconds: Option<i64>,
    #[serde(default, deserialize_with = "whole_number")]
    retry_attempts: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    is_active: Option<bool>,
    #[serde(default)]
    rotate_secret: bool,
}

async fn update(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Deferred<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.read().await?;
    let id = webhook_id(&path)?;
    let tenant = caller.tenant;
    let body = body.into_inner();
    let mut patch = WebhookPatch {
        event_types: body
            .event_types
            .as_deref()
            .map(EventTypes::parse)
            .transpose()
            .map_err(bad)?,
        timeout_seconds: body
            .timeout_seconds
            .map(TimeoutSeconds::parse)
            .transpose()
            .map_err(bad)?,
        retry_attempts: body
            .retry_attempts
            .map(RetryAttempts::parse)
            .transpose()
            .map_err(bad)?,
        description: body
            .description
            .map(Description::parse)
            .transpose()
            .map_err(bad)?,
        is_active: body.is_active,
        url: None,
    };
    if let Some(url) = body.url {
        // A deleted or foreign webhook is 404 before its new URL is looked at (and resolved);
        // otherwise the update itself says so.
        if blocking(&state, move |s| s.get_webhook(tenant, id))
            .await?
            .is_none()
        {
            return Err(ApiError::not_found(format!("webhook {id} not found")));
        }
        patch.url = Some(checked_url(&state, url).await?);
    }
    let rotation = body
        .rotate_secret
        .then(|| rotation(&state, None))
        .transpose()?;
    let secret = rotation.as_ref().map(|r| r.secret.clone());
    let webhook = blocking(&state, move |s| {
        s.update_webhook(tenant, id, patch, rotation)
    })
    .await?;
    let mut response = json!({ "webhook": dto(&state, &webhook) });
    if let Some(secret) = secret {
        response["secret"] = Value::String(secret);
    }
    Ok(HttpResponse::Ok().json(response))
}

async fn delete(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = webhook_id(&path)?;
    let tenant = caller.tenant;
    blocking(&state, move |s| s.delete_webhook(tenant, id)).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": id, "deleted": true })))
}

#[derive(Deserialize, Default)]
struct RotateBody {
    #[serde(default, deserialize_with = "whole_number")]
    overlap_hours: Option<i64>,
}

/// The body is optional here: an empty one means the configured overlap.
async fn rotate_secret(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = webhook_id(&path)?;
    let tenant = caller.tenant;
    let body: RotateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        from_slice(&body)?
    };
    let rotation = rotation(&state, body.overlap_hours)?;
    let secret = rotation.secret.clone();
    let webhook = blocking(&state, move |s| {
        s.update_webhook(tenant, id, WebhookPatch::default(), Some(rotation))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "webhook": dto(&state, &webhook), "secret": secret })))
}
