//! Operator endpoints: `/healthz` (no auth) and `/metrics` (admin token).

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::blocking;
use crate::http::auth::Admin;
use crate::http::error::ApiError;
use crate::http::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/metrics").route(web::get().to(metrics)));
}

/// Healthy means writes can commit and the data file answers a read; else 503 with the
/// envelope, as every error.
async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let schema = blocking(&state, |store| {
        store.check_writable()?;
        store.schema_version()
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "schema_version": schema,
    })))
}

async fn metrics(_: Admin, state: web::Data<AppState>) -> HttpResponse {
    let tracked = state.limits.tracked() as f64;
    let mut text = state.metrics.render(&[(
        "leadbase_ratelimit_tracked_entries",
        "Keys and client addresses holding rate-limit state.",
        tracked,
    )]);
    // A store that cannot be read leaves the queue out, not the whole page. Both reads are
    // I/O: on a blocking thread, not the worker's.
    let store = state.store.clone();
    let (queue, file_bytes) = web::block(move || {
        let bytes = std::fs::metadata(store.path()).map_or(0, |m| m.len());
        (store.queue_gauges().ok(), bytes)
    })
    .await
    .unwrap_or((None, 0));
    text.push_str(&crate::http::metrics::render_store(
        state.store.telemetry(),
        queue.as_ref(),
        file_bytes,
    ));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}
