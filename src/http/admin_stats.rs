//! `GET /admin/api/stats?minutes=N[&tenant_id=ID]` (spec §15): the per-minute series the admin
//! page charts (leads created, events, delivery attempts delivered and failed) and the queue
//! now, for the server or one tenant.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::{blocking, non_blank};
use crate::http::auth::{Admin, named_tenant};
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// A day, at most: the store keeps two.
const MAX_MINUTES: u32 = 1_440;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/api/stats").route(web::get().to(stats)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default, deserialize_with = "non_blank")]
    minutes: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    tenant_id: Option<String>,
}

fn minutes(raw: Option<&str>) -> Result<u32, ApiError> {
    match raw {
        None => Ok(60),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_MINUTES).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "minutes must be a whole number from 1 to {MAX_MINUTES} (got `{raw}`)"
                ))
            }),
    }
}

async fn stats(
    _: Admin,
    state: web::Data<AppState>,
    params: web::Query<Params>,
) -> Result<HttpResponse, ApiError> {
    let minutes = minutes(params.minutes.as_deref())?;
    let tenant = match params.tenant_id.as_deref() {
        None => None,
        Some(raw) => Some(named_tenant(&state, raw).await?),
    };
    let (series, queue) = blocking(&state, move |s| {
        let series = s.stats(tenant, minutes)?;
        let queue = match tenant {
            Some(t) => s.tenant_queue_gauges(t)?,
            None => s.queue_gauges()?,
        };
        Ok((series, queue))
    })
    .await?;
    let minute: Vec<String> = (0..series.minutes.len() as i64)
        .map(|i| series.start.plus_ms(i * 60_000).to_iso())
        .collect();
    let column = |f: fn(&crate::store::stats::Counts) -> u64| -> Vec<u64> {
        series.minutes.iter().map(f).collect()
    };
    Ok(HttpResponse::Ok().json(json!({
        "stats": {
            "tenant_id": tenant,
            "minutes": minutes,
            "series": {
                "minute": minute,
                "leads_created": column(|c| c.leads_created),
                "events": column(|c| c.events),
                "delivered": column(|c| c.delivered),
                "failed": column(|c| c.failed),
            },
            "queue": {
                "due": queue.due,
                "held": queue.held,
                "oldest_due_age_seconds": (queue.due > 0).then_some(queue.oldest_due_seconds),
            },
        }
    })))
}
