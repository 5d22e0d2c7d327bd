//! `GET /api/agents/crm/events`: the tenant's event log, read with a cursor (spec §11.4).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::domain::event::EventType;
use crate::domain::event_cursor::EventCursor;
use crate::domain::ids::{EventId, LeadId};
use crate::domain::time::Timestamp;
use crate::http::auth::{Caller, LeadsRead};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::http::{blocking, non_blank, page_limit_or, public_and_mirror};
use crate::store::event_log::LogQuery;

pub fn configure(cfg: &mut web::ServiceConfig) {
    public_and_mirror(cfg, "/api/agents/crm/events", |r| {
        r.route(web::get().to(list))
    });
}

#[derive(Debug, Default, Deserialize)]
struct Params {
    #[serde(default, deserialize_with = "non_blank")]
    after: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    types: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    lead_id: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    limit: Option<String>,
}

#[derive(Serialize)]
struct Page<'a> {
    events: Vec<Entry<'a>>,
    next_cursor: String,
    has_more: bool,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: EventId,
    #[serde(rename = "type")]
    event_type: EventType,
    occurred_at: Timestamp,
    data: &'a RawValue,
}

async fn list(
    caller: Caller<LeadsRead>,
    state: web::Data<AppState>,
    params: web::Query<Params>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.tenant;
    let params = params.into_inner();
    let after = params
        .after
        .as_deref()
        .map(|raw| EventCursor::decode_for(raw, tenant))
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let types = params
        .types
        .as_deref()
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| EventType::parse_subscribable(t).map_err(|e| format!("types: {e}")))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(ApiError::bad_request)?;
    if types.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::bad_request(
            "types must name at least one event type",
        ));
    }
    let types = types.unwrap_or_default();
    let lead_id = params
        .lead_id
        .as_deref()
        .map(|raw| {
            LeadId::parse(raw).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "lead_id `{}` is not a UUID",
                    raw.chars().take(64).collect::<String>()
                ))
            })
        })
        .transpose()?;
    let query = LogQuery {
        after,
        types,
        lead_id,
        limit: page_limit_or(params.limit.as_deref(), 50)?,
    };
    let page = blocking(&state, move |s| s.list_events(tenant, &query)).await?;
    let data: Vec<Box<RawValue>> = page
        .events
        .iter()
        .map(|e| RawValue::from_string(e.data.clone()))
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    let body = Page {
        events: page
            .events
            .iter()
            .zip(&data)
            .map(|(e, data)| Entry {
                id: e.id,
                event_type: e.event_type,
                occurred_at: e.occurred_at,
                data,
            })
            .collect(),
        next_cursor: page.next.encode(),
        has_more: page.has_more,
    };
    Ok(HttpResponse::Ok().json(body))
}
