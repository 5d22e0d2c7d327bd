//! `/api/agents/crm/lead-webhooks`: registration, changes, rotation and soft delete.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::json::Deferred;
use super::{BODY_LIMIT, blocking, nullable, public_and_mirror, whole_number};
use crate::delivery::client::check_webhook_url;
use crate::domain::event::EventType;
use crate::domain::ids::{TenantId, WebhookId};
use crate::domain::time::Timestamp;
use crate::domain::token::{WEBHOOK_SECRET_SHOWN, generate_webhook_secret};
use crate::domain::url_policy::WebhookUrl;
use crate::domain::webhook::{
    Description, EventTypes, OverlapHours, RetryAttempts, Rotation, TimeoutSeconds, Webhook,
    WebhookPatch, WebhookSettings, parse_max_concurrency, parse_rate_limit,
};
use crate::domain::webhook_controls::{CustomHeaders, Filter};
use crate::http::auth::{Caller, WebhooksManage};
use crate::http::error::ApiError;
use crate::http::path::Ids;
use crate::http::state::AppState;
use crate::store::{Store, StoreError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    const WEBHOOKS: &str = "/api/agents/crm/lead-webhooks";
    public_and_mirror(cfg, WEBHOOKS, |r| {
        r.route(web::get().to(list)).route(web::post().to(create))
    });
    public_and_mirror(cfg, &format!("{WEBHOOKS}/{{id}}"), |r| {
        r.route(web::get().to(get_one))
            .route(web::patch().to(update))
            .route(web::delete().to(delete))
    });
    public_and_mirror(cfg, &format!("{WEBHOOKS}/{{id}}/rotate-secret"), |r| {
        r.route(web::post().to(rotate_secret))
    });
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
    /// `null`, or the keys it sets.
    pub filter: Value,
    /// Names and values, sensitive values redacted.
    pub headers: serde_json::Map<String, Value>,
    /// Its own, or the configured default.
    pub max_concurrency: u32,
    pub rate_limit_per_minute: Option<u32>,
    /// Deliveries kept while it is off, released when it is turned back on.
    pub held_count: usize,
}

/// A filter as the webhook object shows it: the keys it sets.
fn filter_json(filter: &Filter) -> Value {
    fn list<T: Serialize>(values: &Option<Vec<T>>) -> Option<Value> {
        values.as_ref().and_then(|v| serde_json::to_value(v).ok())
    }
    let keys = [
        ("source_platform", list(&filter.source_platform)),
        ("source_type", list(&filter.source_type)),
        ("lead_line", list(&filter.lead_line)),
        ("stage_slug", list(&filter.stage_slug)),
        ("status", list(&filter.status)),
        ("changed_fields", list(&filter.changed_fields)),
    ];
    Value::Object(
        keys.into_iter()
            .filter_map(|(key, value)| Some((key.to_string(), value?)))
            .collect(),
    )
}

impl WebhookDto {
    /// As of `now`: the previous secret's expiry shows only while it still signs.
    pub fn new(w: &Webhook, now: Timestamp, default_concurrency: u32, held_count: usize) -> Self {
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
            filter: w.filter.as_ref().map_or(Value::Null, filter_json),
            headers: w.headers.redacted(),
            max_concurrency: w.max_concurrency.unwrap_or(default_concurrency),
            rate_limit_per_minute: w.rate_limit_per_minute,
            held_count,
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

/// A webhook with how many deliveries it holds.
type Counted = (Webhook, usize);

fn dto(state: &AppState, (webhook, held): &Counted) -> WebhookDto {
    let default = state.config.webhooks.max_in_flight_per_webhook;
    WebhookDto::new(webhook, state.store.now(), default, *held)
}

/// Counts what `webhook` holds.
fn counted(store: &Store, webhook: Webhook) -> Result<Counted, StoreError> {
    let held = store.held_count(webhook.id)?;
    Ok((webhook, held))
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
    #[serde(flatten)]
    controls: ControlsBody,
}

/// The controls of spec §13, as sent: absent, `null` (clear), or a value.
#[derive(Deserialize, Default)]
struct ControlsBody {
    #[serde(default, deserialize_with = "nullable")]
    filter: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    headers: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    max_concurrency: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    rate_limit_per_minute: Option<Option<Value>>,
}

/// A whole number field of the controls: `null` is `None`.
fn whole(name: &str, raw: &Value, parse: fn(i64) -> Result<u32, String>) -> Result<u32, ApiError> {
    // Whole numbers as every integer field takes them: 8 and 8.0 alike.
    raw.as_f64()
        .filter(|n| n.fract() == 0.0 && n.abs() < 1e15)
        .map(|n| n as i64)
        .ok_or_else(|| bad(format!("{name} must be a whole number")))
        .and_then(|n| parse(n).map_err(bad))
}

impl ControlsBody {
    fn apply(&self, patch: &mut WebhookPatch) -> Result<(), ApiError> {
        if let Some(raw) = &self.filter {
            patch.filter = Some(Filter::parse(raw.as_ref().unwrap_or(&Value::Null)).map_err(bad)?);
        }
        if let Some(raw) = &self.headers {
            let raw = raw.as_ref().unwrap_or(&Value::Null);
            patch.headers = Some(CustomHeaders::parse(raw).map_err(bad)?);
        }
        if let Some(raw) = &self.max_concurrency {
            patch.max_concurrency = Some(
                raw.as_ref()
                    .map(|v| whole("max_concurrency", v, parse_max_concurrency))
                    .transpose()?,
            );
        }
        if let Some(raw) = &self.rate_limit_per_minute {
            patch.rate_limit_per_minute = Some(
                raw.as_ref()
                    .map(|v| whole("rate_limit_per_minute", v, parse_rate_limit))
                    .transpose()?,
            );
        }
        Ok(())
    }
}

/// The settings of a create or an update, each parsed into its bounded type.
fn settings_patch(
    event_types: Option<&[String]>,
    timeout_seconds: Option<i64>,
    retry_attempts: Option<i64>,
    description: Option<Option<String>>,
    is_active: Option<bool>,
) -> Result<WebhookPatch, ApiError> {
    Ok(WebhookPatch {
        event_types: event_types
            .map(EventTypes::parse)
            .transpose()
            .map_err(bad)?,
        timeout_seconds: timeout_seconds
            .map(TimeoutSeconds::parse)
            .transpose()
            .map_err(bad)?,
        retry_attempts: retry_attempts
            .map(RetryAttempts::parse)
            .transpose()
            .map_err(bad)?,
        description: description
            .map(Description::parse)
            .transpose()
            .map_err(bad)?,
        is_active,
        ..WebhookPatch::default()
    })
}

impl CreateBody {
    fn settings(&self) -> Result<WebhookPatch, ApiError> {
        let (types, description) = (self.event_types.as_deref(), Some(self.description.clone()));
        let (timeout, retries) = (self.timeout_seconds, self.retry_attempts);
        let mut patch = settings_patch(types, timeout, retries, description, self.is_active)?;
        self.controls.apply(&mut patch)?;
        Ok(patch)
    }
}

/// `{"webhook"}`, with `"secret"` when one was made (create, rotation): the only time it shows.
fn webhook_body(state: &AppState, webhook: &Counted, secret: Option<String>) -> Value {
    let mut body = json!({ "webhook": dto(state, webhook) });
    if let Some(secret) = secret {
        body["secret"] = Value::String(secret);
    }
    body
}

async fn create(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    body: Deferred<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.read().await?.into_inner();
    let tenant = caller.tenant;
    let patch = body.settings()?;
    // The URL last: checking it costs a DNS lookup.
    let settings = WebhookSettings::new(checked_url(&state, body.url).await?, patch);
    let (secret, max) = (
        generate_webhook_secret(),
        state.config.webhooks.max_per_tenant,
    );
    let stored_secret = secret.clone();
    let create = move |s: &Store| {
        let webhook = s.create_webhook(tenant, settings, stored_secret, max)?;
        Ok((webhook, 0))
    };
    let webhook = blocking(&state, create).await?;
    Ok(HttpResponse::Created().json(webhook_body(&state, &webhook, Some(secret))))
}

fn listing(state: &AppState, webhooks: &[Counted]) -> HttpResponse {
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
        &blocking(&state, move |s| s.list_webhooks_held(tenant)).await?,
    ))
}

async fn get_one(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    path: Ids<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.get()?;
    let tenant = caller.tenant;
    let webhook = blocking(&state, move |s| s.get_webhook_held(tenant, id))
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
    /// With `is_active: true`: cancel what it held instead of releasing it.
    #[serde(default)]
    discard_held: bool,
    #[serde(flatten)]
    controls: ControlsBody,
}

/// A new URL for webhook `id`, checked. A deleted or foreign webhook is 404 before its new URL is
/// looked at (and resolved); otherwise the update itself says so.
async fn new_url(
    state: &web::Data<AppState>,
    tenant: TenantId,
    id: WebhookId,
    url: String,
) -> Result<WebhookUrl, ApiError> {
    if blocking(state, move |s| s.get_webhook(tenant, id))
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!("webhook {id} not found")));
    }
    checked_url(state, url).await
}

impl UpdateBody {
    fn settings(&self) -> Result<WebhookPatch, ApiError> {
        let (types, description) = (self.event_types.as_deref(), self.description.clone());
        let (timeout, retries) = (self.timeout_seconds, self.retry_attempts);
        let mut patch = settings_patch(types, timeout, retries, description, self.is_active)?;
        self.controls.apply(&mut patch)?;
        if self.discard_held && self.is_active != Some(true) {
            return Err(bad("discard_held goes with is_active: true"));
        }
        patch.discard_held = self.discard_held;
        Ok(patch)
    }
}

async fn update(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    path: Ids<WebhookId>,
    body: Deferred<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.read().await?.into_inner();
    let (tenant, id) = (caller.tenant, path.get()?);
    let mut patch = body.settings()?;
    if let Some(url) = body.url {
        patch.url = Some(new_url(&state, tenant, id, url).await?);
    }
    let rotation = body
        .rotate_secret
        .then(|| rotation(&state, None))
        .transpose()?;
    let secret = rotation.as_ref().map(|r| r.secret.clone());
    let update = move |s: &Store| counted(s, s.update_webhook(tenant, id, patch, rotation)?);
    let webhook = blocking(&state, update).await?;
    Ok(HttpResponse::Ok().json(webhook_body(&state, &webhook, secret)))
}

async fn delete(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    path: Ids<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.get()?;
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
    path: Ids<WebhookId>,
    body: Deferred<RotateBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.get()?;
    let tenant = caller.tenant;
    let body = body.read_optional(BODY_LIMIT).await?.unwrap_or_default();
    let rotation = rotation(&state, body.overlap_hours)?;
    let secret = rotation.secret.clone();
    let rotate = move |s: &Store| {
        let webhook = s.update_webhook(tenant, id, WebhookPatch::default(), Some(rotation))?;
        counted(s, webhook)
    };
    let webhook = blocking(&state, rotate).await?;
    Ok(HttpResponse::Ok().json(webhook_body(&state, &webhook, Some(secret))))
}
