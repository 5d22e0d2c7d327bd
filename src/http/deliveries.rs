//! The delivery log of a webhook: list, one delivery with its attempts, redeliver, recover,
//! and the test event.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::json::Deferred;
use super::{blocking, iso_time, non_blank, page_limit, public_and_mirror};
use crate::domain::event::EventType;
use crate::domain::ids::{DeliveryId, TenantId, WebhookId};
use crate::domain::retry::AttemptError;
use crate::domain::time::Timestamp;
use crate::http::auth::{Caller, WebhooksManage};
use crate::http::error::ApiError;
use crate::http::path::Ids;
use crate::http::state::AppState;
use crate::store::delivery_log::DeliveryFilter;
use crate::store::delivery_queue::{Attempt, Delivery, DeliveryStatus};

const BASE: &str = "/api/agents/crm/lead-webhooks/{id}";

pub fn configure(cfg: &mut web::ServiceConfig) {
    public_and_mirror(cfg, &format!("{BASE}/test"), |r| {
        r.route(web::post().to(test))
    });
    public_and_mirror(cfg, &format!("{BASE}/deliveries"), |r| {
        r.route(web::get().to(list))
    });
    public_and_mirror(cfg, &format!("{BASE}/deliveries/{{delivery_id}}"), |r| {
        r.route(web::get().to(get_one))
    });
    public_and_mirror(
        cfg,
        &format!("{BASE}/deliveries/{{delivery_id}}/redeliver"),
        |r| r.route(web::post().to(redeliver)),
    );
    public_and_mirror(cfg, &format!("{BASE}/recover"), |r| {
        r.route(web::post().to(recover))
    });
}

#[derive(Serialize)]
struct DeliveryDto {
    id: DeliveryId,
    event: &'static str,
    status: DeliveryStatus,
    attempts: u32,
    response_status: Option<u16>,
    latency_ms: Option<u32>,
    next_attempt_at: Option<Timestamp>,
    created_at: Timestamp,
    delivered_at: Option<Timestamp>,
}

impl From<&Delivery> for DeliveryDto {
    fn from(d: &Delivery) -> Self {
        DeliveryDto {
            id: d.id,
            event: d.event_type.as_str(),
            status: d.status,
            attempts: d.attempts,
            response_status: d.response_status,
            latency_ms: d.latency_ms,
            // A claimed delivery's due time is its lease, not a planned attempt.
            next_attempt_at: d
                .next_attempt_at
                .filter(|_| d.status == DeliveryStatus::Pending),
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Serialize)]
struct AttemptDto<'a> {
    number: u32,
    started_at: Timestamp,
    latency_ms: u32,
    response_status: Option<u16>,
    error: Option<AttemptError>,
    response_body_excerpt: &'a str,
}

impl<'a> From<&'a Attempt> for AttemptDto<'a> {
    fn from(a: &'a Attempt) -> Self {
        AttemptDto {
            number: a.number,
            started_at: a.started_at,
            latency_ms: a.latency_ms,
            response_status: a.response_status,
            error: a.error,
            response_body_excerpt: &a.response_body_excerpt,
        }
    }
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(default, deserialize_with = "non_blank")]
    status: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    event: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    since: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    until: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    response_status: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    cursor: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    limit: Option<String>,
}

async fn list_for(
    state: &web::Data<AppState>,
    tenant: TenantId,
    webhook: WebhookId,
    params: ListParams,
) -> Result<HttpResponse, ApiError> {
    let status = params
        .status
        .as_deref()
        .map(DeliveryStatus::parse)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let event = params
        .event
        .as_deref()
        .map(|raw| match raw {
            "webhook.test" => Ok(EventType::WebhookTest),
            other => EventType::parse_subscribable(other).map_err(|e| format!("event: {e}")),
        })
        .transpose()
        .map_err(ApiError::bad_request)?;
    let response_status = params
        .response_status
        .as_deref()
        .map(|raw| {
            raw.parse::<u16>()
                .ok()
                .filter(|s| (100..=599).contains(s))
                .ok_or_else(|| {
                    ApiError::bad_request("response_status must be an HTTP status (100-599)")
                })
        })
        .transpose()?;
    let filter = DeliveryFilter {
        statuses: status.into_iter().collect(),
        events: event.into_iter().collect(),
        since: params
            .since
            .as_deref()
            .map(|t| iso_time("since", t))
            .transpose()?,
        until: params
            .until
            .as_deref()
            .map(|t| iso_time("until", t))
            .transpose()?,
        response_status,
    };
    let limit = page_limit(params.limit.as_deref())?;
    let before = params
        .cursor
        .as_deref()
        .map(|c| DeliveryId::parse(c).ok_or_else(|| ApiError::bad_request("cursor is malformed")))
        .transpose()?;
    let (page, next) = blocking(state, move |s| {
        s.list_deliveries(tenant, webhook, filter, before, limit)
    })
    .await?;
    let data: Vec<DeliveryDto> = page.iter().map(DeliveryDto::from).collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data, "next_cursor": next })))
}

async fn list(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    path: Ids<WebhookId>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let webhook = path.get()?;
    list_for(&state, caller.tenant, webhook, params.into_inner()).await
}

async fn get_one(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    path: Ids<(WebhookId, DeliveryId)>,
) -> Result<HttpResponse, ApiError> {
    let (webhook, id) = path.get()?;
    let tenant = caller.tenant;
    let (delivery, attempts) =
        blocking(&state, move |s| s.get_delivery(tenant, webhook, id)).await?;
    let attempts: Vec<AttemptDto> = attempts.iter().map(AttemptDto::from).collect();
    Ok(HttpResponse::Ok()
        .json(json!({ "delivery": DeliveryDto::from(&delivery), "attempts": attempts })))
}

async fn redeliver(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    path: Ids<(WebhookId, DeliveryId)>,
) -> Result<HttpResponse, ApiError> {
    let (webhook, id) = path.get()?;
    let tenant = caller.tenant;
    blocking(&state, move |s| s.redeliver(tenant, webhook, id)).await?;
    Ok(HttpResponse::Accepted().json(json!({ "delivery_id": id })))
}

#[derive(Deserialize)]
struct RecoverBody {
    since: String,
    until: Option<String>,
    /// `failed` and `cancelled` only; `failed` when absent.
    statuses: Option<Vec<String>>,
    event_types: Option<Vec<String>>,
    #[serde(default)]
    dry_run: bool,
}

impl RecoverBody {
    fn filter(&self) -> Result<DeliveryFilter, ApiError> {
        let statuses = match &self.statuses {
            None => vec![DeliveryStatus::Failed],
            Some(raw) if raw.is_empty() => {
                return Err(ApiError::bad_request(
                    "statuses must name failed, cancelled or both",
                ));
            }
            Some(raw) => raw
                .iter()
                .map(|s| match DeliveryStatus::parse(s) {
                    Ok(status @ (DeliveryStatus::Failed | DeliveryStatus::Cancelled)) => Ok(status),
                    _ => Err(ApiError::bad_request(format!(
                        "statuses: `{s}` cannot be recovered; failed and cancelled deliveries can"
                    ))),
                })
                .collect::<Result<_, _>>()?,
        };
        let events = self
            .event_types
            .iter()
            .flatten()
            .map(|t| {
                EventType::parse_subscribable(t)
                    .map_err(|e| ApiError::bad_request(format!("event_types: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(DeliveryFilter {
            statuses,
            events,
            since: Some(iso_time("since", &self.since)?),
            until: self
                .until
                .as_deref()
                .map(|t| iso_time("until", t))
                .transpose()?,
            response_status: None,
        })
    }
}

async fn recover(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    path: Ids<WebhookId>,
    body: Deferred<RecoverBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.read().await?;
    let webhook = path.get()?;
    let filter = body.filter()?;
    let (tenant, dry_run) = (caller.tenant, body.dry_run);
    let picked = blocking(&state, move |s| s.recover(tenant, webhook, filter, dry_run)).await?;
    Ok(match dry_run {
        true => HttpResponse::Ok().json(json!({ "would_requeue": picked })),
        false => HttpResponse::Accepted().json(json!({ "requeued": picked })),
    })
}

async fn test(
    caller: Caller<WebhooksManage>,
    state: web::Data<AppState>,
    path: Ids<WebhookId>,
) -> Result<HttpResponse, ApiError> {
    let webhook = path.get()?;
    let tenant = caller.tenant;
    let id = blocking(&state, move |s| s.queue_test(tenant, webhook)).await?;
    Ok(HttpResponse::Accepted().json(json!({ "delivery_id": id })))
}
