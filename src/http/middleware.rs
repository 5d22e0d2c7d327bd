//! The request context wrapped around every route: request id, the error envelope on every error
//! response (including the ones actix makes itself), rate-limit headers, metrics and the access
//! log.

use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};

use crate::http::error::{ApiError, envelope_json};
use crate::http::ratelimit::Verdict;
use crate::http::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The methods HTTP defines. Any other token is the client's invention, as long as the request
/// head allows (tens of KB): each would be a new `/metrics` series kept for the life of the
/// process and a line of that size in the access log.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];

/// Whether HTTP defines `method`.
pub(crate) fn is_http_method(method: &Method) -> bool {
    METHODS.contains(method)
}

/// A method as metrics and the access log name it: one of [`METHODS`], or `other`.
fn method_label(method: &Method) -> &str {
    if is_http_method(method) {
        method.as_str()
    } else {
        "other"
    }
}

/// Limits on the request head, below actix-http's own (a 128 KiB head, 94 header fields). What
/// passes those but not these is answered here, in the envelope and with a request id; what
/// actix-http refuses itself it answers with an empty body (README, "HTTP limits and protocol
/// errors").
const MAX_HEADER_FIELDS: usize = 64;
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// A request refused before routing, for what it is rather than where it goes.
fn refusal(req: &ServiceRequest) -> Option<ApiError> {
    let headers = req.headers();
    let too_large = |message: String| {
        Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            message,
        ))
    };
    if headers.len() > MAX_HEADER_FIELDS {
        return too_large(format!(
            "the request has more than {MAX_HEADER_FIELDS} header fields"
        ));
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if bytes > MAX_HEADER_BYTES {
        return too_large(format!(
            "the request headers are larger than {MAX_HEADER_BYTES} bytes"
        ));
    }
    None
}

/// A caller's own request id is kept when it is short and plain; otherwise a fresh one is made.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

fn is_json(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Every route that answers GET answers HEAD too.
fn with_head(allow: &str) -> String {
    let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
    if methods.contains(&"GET") && !methods.contains(&"HEAD") {
        format!("{allow}, HEAD")
    } else {
        allow.to_string()
    }
}

fn fallback_message(status: StatusCode, allow: Option<&str>) -> String {
    match (status, allow) {
        (StatusCode::METHOD_NOT_ALLOWED, Some(allow)) => {
            format!("method not allowed on this route; allowed: {allow}")
        }
        (StatusCode::NOT_FOUND, _) => "not found".into(),
        (s, _) if s.is_server_error() => crate::http::error::INTERNAL_MESSAGE.into(),
        (s, _) => s
            .canonical_reason()
            .unwrap_or("invalid request")
            .to_string(),
    }
}

pub async fn request_context(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    // HEAD is answered as GET would be, without the body: the HTTP/1 codec saw HEAD and sends
    // the head only.
    if method == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    let res = match refusal(&req) {
        Some(err) => req.into_response(err.error_response()),
        // Handler and extractor errors arrive here as responses; an `Err` would come only from
        // an inner middleware, and there is none.
        None => next.call(req).await?.map_into_boxed_body(),
    };
    let mut res = enveloped(res);
    let verdict = res.request().extensions().get::<Verdict>().copied();
    if let Some(verdict) = verdict {
        for (name, value) in verdict.headers() {
            res.headers_mut().insert(name, value);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    record(&res, &id, &method, started.elapsed());
    Ok(res)
}

/// An error response actix made itself (a 404, a 405 with `Allow`, …) in the spec's envelope.
fn enveloped(mut res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(res.headers()) {
        return res;
    }
    let allow = res
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(with_head);
    if let Some(value) = allow.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
        res.headers_mut().insert(header::ALLOW, value);
    }
    let body = envelope_json(status, &fallback_message(status, allow.as_deref()));
    res.map_body(|head, _| {
        head.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        BoxBody::new(body)
    })
}

/// The request's metrics and its access-log line.
fn record(res: &ServiceResponse<BoxBody>, id: &str, method: &Method, elapsed: Duration) {
    let status = res.status();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(method);
    if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
        state
            .metrics
            .observe(&route, method, status.as_u16(), elapsed);
    }
    tracing::info!(
        request_id = %id,
        method = %method,
        path = %res.request().path(),
        route = %route,
        status = status.as_u16(),
        latency_ms = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "request"
    );
}
