//! The HTTP layer: one module per resource, each with its DTOs and a `configure()`.

mod admin;
pub(crate) mod admin_catalog;
mod admin_meta;
mod admin_stats;
pub mod auth;
mod backup;
mod deliveries;
pub mod error;
mod events;
mod health;
pub mod idempotency;
pub mod json;
pub(crate) mod leads;
pub mod metrics;
mod middleware;
mod openapi;
mod page;
pub mod path;
pub mod ratelimit;
pub mod state;
mod stream;
mod webhooks;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, web};
use serde::{Deserialize, Deserializer};

use crate::domain::time::Timestamp;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::{Store, StoreError};

pub use middleware::request_context;

/// Bodies of ordinary routes; bulk import sets its own, larger limit.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Runs an actix server, calling `started` once it is really running: its first poll starts
/// the workers and installs the SIGTERM and ctrl-c handlers, so a caller that announces the
/// server from `started` (a banner, a handle for tests) never lets a signal arrive before
/// there is a handler for it (which would kill the process instead of stopping it).
pub async fn run_server(
    server: actix_web::dev::Server,
    started: impl FnOnce(actix_web::dev::ServerHandle),
) -> std::io::Result<()> {
    use std::task::Poll;
    let handle = server.handle();
    let mut server = std::pin::pin!(server);
    let first = std::future::poll_fn(|cx| Poll::Ready(server.as_mut().poll(cx))).await;
    if let Poll::Ready(result) = first {
        return result;
    }
    started(handle);
    server.await
}

/// Registers a public route and its mirror for the operator (spec §15), built by the same
/// `build`, so with the same handlers: the same bodies, responses and validation.
/// [`auth::Caller`] tells the two apart by the mirror's tenant segment.
fn public_and_mirror(
    cfg: &mut web::ServiceConfig,
    public: &str,
    build: impl Fn(actix_web::Resource) -> actix_web::Resource,
) {
    cfg.service(build(web::resource(public)))
        .service(build(web::resource(mirror_of(public))));
}

/// Where the public routes are, and where the operator's mirror of them is (under a tenant).
const PUBLIC: &str = "/api/agents/crm/";
const MIRROR: &str = "/admin/api/tenants/";
/// The one name that differs: the public `lead-webhooks` are the mirror's `webhooks`, as the
/// admin API named them from the start.
const RENAMED: (&str, &str) = ("lead-webhooks", "webhooks");

/// `rest` with its leading `from` read as `to`.
fn renamed(rest: &str, (from, to): (&str, &str)) -> String {
    match rest.strip_prefix(from) {
        Some(tail) => format!("{to}{tail}"),
        None => rest.to_string(),
    }
}

/// `/api/agents/crm/leads/{id}` → `/admin/api/tenants/{as_tenant}/leads/{id}`.
fn mirror_of(public: &str) -> String {
    let rest = public
        .strip_prefix(PUBLIC)
        .unwrap_or_else(|| panic!("{public} is not a public API route"));
    format!("{MIRROR}{{{}}}/{}", auth::AS_TENANT, renamed(rest, RENAMED))
}

/// The public path of a request: its own, or on the operator's mirror the public route's
/// (`/admin/api/tenants/{t}/webhooks/x` → `/api/agents/crm/lead-webhooks/x`), so that what
/// depends on the route (an idempotency fingerprint) is the same by either door.
pub(crate) fn public_path(req: &HttpRequest) -> std::borrow::Cow<'_, str> {
    let path = req.path();
    let Some(tenant) = req.match_info().get(auth::AS_TENANT) else {
        return path.into();
    };
    let rest = path
        .strip_prefix(MIRROR)
        .and_then(|p| p.strip_prefix(tenant))
        .and_then(|p| p.strip_prefix('/'));
    match rest {
        Some(rest) => format!("{PUBLIC}{}", renamed(rest, (RENAMED.1, RENAMED.0))).into(),
        None => path.into(),
    }
}

/// Registers every route, the extractor error handlers and the 404 fallback.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config(BODY_LIMIT))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .configure(health::configure)
        .configure(openapi::configure)
        .configure(page::configure)
        .configure(admin::configure)
        .configure(admin_catalog::configure)
        .configure(admin_meta::configure)
        .configure(admin_stats::configure)
        .configure(backup::configure)
        .configure(leads::configure)
        .configure(webhooks::configure)
        .configure(deliveries::configure)
        .configure(events::configure);
}

/// Any path that matches no route: 404 whatever the credentials. A method HTTP does not define
/// is 501 here (RFC 9110 §15.6.2); on a route that exists, routing answers it 405 with `Allow`.
/// Neither message repeats the method: it can be tens of KB of the client's invention.
pub async fn no_route(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    if !middleware::is_http_method(req.method()) {
        return Err(ApiError::new(
            actix_web::http::StatusCode::NOT_IMPLEMENTED,
            "unknown method; leadbase answers GET, HEAD, POST, PATCH and DELETE",
        ));
    }
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req| json_error(err, limit).into())
}

fn json_error(err: JsonPayloadError, limit: usize) -> ApiError {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            json::too_large(limit)
        }
        JsonPayloadError::ContentType => ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ),
        // Bodies are read as a JSON value, so only syntax errors arrive here; a field that does
        // not fit is reported by `json::from_value`.
        JsonPayloadError::Deserialize(e) => ApiError::bad_request(format!("malformed JSON: {e}")),
        other => ApiError::bad_request(format!("cannot read the request body: {other}")),
    }
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let detail = match &err {
        QueryPayloadError::Deserialize(e) => e.to_string(),
        other => other.to_string(),
    };
    ApiError::bad_request(format!("invalid query string: {detail}")).into()
}

/// A path segment of the wrong shape (an id that is not a UUID) names nothing that exists.
fn path_error(_err: PathError, req: &HttpRequest) -> actix_web::Error {
    ApiError::not_found(format!("{} not found", req.path())).into()
}

/// Runs a store call on the blocking pool.
pub async fn blocking<R: Send + 'static>(
    state: &web::Data<AppState>,
    f: impl FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, ApiError> {
    let store = state.store.clone();
    Ok(web::block(move || f(&store)).await??)
}

/// For PATCH bodies: absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An integer that, as JSON Schema's `integer` does, also takes a number without a fraction
/// (`8.0`).
struct WholeNumber(i64);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WholeNumber;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<WholeNumber, E> {
                i64::try_from(v)
                    .map(WholeNumber)
                    .map_err(|_| E::custom("number too large"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<WholeNumber, E> {
                // Beyond 2^53 a float no longer names one integer.
                const EXACT: f64 = 9_007_199_254_740_992.0;
                if v.fract() == 0.0 && v.abs() <= EXACT {
                    Ok(WholeNumber(v as i64))
                } else {
                    Err(E::invalid_type(serde::de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// For optional integer fields: absent or `null` → `None`.
pub fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<WholeNumber>::deserialize(d)?.map(|n| n.0))
}

/// For nullable integer fields of PATCH bodies, as [`nullable`].
pub fn nullable_whole_number<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<i64>>, D::Error> {
    whole_number(d).map(Some)
}

/// Query parameters: an empty value (`?limit=`) counts as absent, as HTML forms send them.
pub fn non_blank<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|v| !v.trim().is_empty()))
}

/// A page size from the query: 1–100, 20 when absent.
pub fn page_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    page_limit_or(raw, 20)
}

/// A page size from the query: 1–100, `default` when absent.
pub fn page_limit_or(raw: Option<&str>, default: usize) -> Result<usize, ApiError> {
    match raw {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::bad_request("limit must be between 1 and 100")),
    }
}

/// An ISO-8601 time given as `name`.
pub fn iso_time(name: &str, raw: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_iso(raw).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{name} must be an ISO-8601 date-time (got `{raw}`)"
        ))
    })
}
