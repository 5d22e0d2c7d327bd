//! The JSON body extractor. Bodies are read as a JSON value first (size, content type and
//! syntax errors come from `JsonConfig`), then turned into the route's type with the path of the
//! offending field in the message: `invalid request body: leads[3].contact_email: invalid type`.
//! The value is kept, for idempotency's canonical comparison. A body that has not arrived
//! whole within `server.body_timeout_seconds` is 408.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::config::ServerConfig;
use crate::http::error::ApiError;
use crate::http::state::AppState;

pub struct Json<T> {
    pub data: T,
    pub raw: Value,
}

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.data
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

/// Turns a JSON value into `T`, naming the field that does not fit.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, ApiError> {
    described(value).map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// As [`from_value`], with the problem as `path: what` (or just `what` at the top level), for
/// callers that report it inside something else (a bulk row's errors).
pub fn described<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// `server.body_timeout_seconds`. actix-http times out a request's head
/// (`client_request_timeout`) but never its body: without this, a client trickling a body a
/// byte at a time would hold its connection, and the handler waiting for it, for as long as it
/// likes.
fn body_timeout(req: &HttpRequest) -> u32 {
    req.app_data::<web::Data<AppState>>()
        .map_or(ServerConfig::default().body_timeout_seconds, |state| {
            state.config.server.body_timeout_seconds
        })
}

/// `read`, or 408 once `seconds` have passed.
async fn in_time<R>(seconds: u32, read: impl Future<Output = R>) -> Result<R, ApiError> {
    actix_web::rt::time::timeout(Duration::from_secs(seconds.into()), read)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {seconds} s"),
            )
        })
}

/// 413, naming the limit.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {limit} bytes"),
    )
}

/// JSON first, then `T`.
fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    from_value(&value)
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = web::Json::<Value>::from_request(req, payload);
        let timeout = body_timeout(req);
        Box::pin(async move {
            let raw = in_time(timeout, value).await??.into_inner();
            let data = from_value(&raw)?;
            Ok(Json { data, raw })
        })
    }
}

/// A JSON body read only when asked. Routes that authenticate asynchronously take this so the
/// body is looked at after authentication and scope have passed: actix polls a handler's
/// extractors together, and a body error must not answer for a request that would be 401/403.
pub struct Deferred<T> {
    req: HttpRequest,
    payload: Payload,
    body: std::marker::PhantomData<T>,
}

impl<T> FromRequest for Deferred<T> {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Deferred {
            req: req.clone(),
            payload: payload.take(),
            body: std::marker::PhantomData,
        }))
    }
}

/// A body that could not be read: the envelope error it already carries (413, 415, malformed
/// JSON), else a 400 naming the cause.
fn unreadable(e: impl Into<actix_web::Error>) -> ApiError {
    let e = e.into();
    e.as_error::<ApiError>()
        .cloned()
        .unwrap_or_else(|| ApiError::bad_request(format!("cannot read the request body: {e}")))
}

/// The body of a route that reads it as text, piece by piece ([`Deferred::read_raw`]).
pub struct RawJson;

impl Deferred<RawJson> {
    /// The body checked as JSON (size, content type and syntax as for every body) and kept as
    /// its text, never as a tree.
    pub async fn read_raw(mut self) -> Result<Box<RawValue>, ApiError> {
        let read = web::Json::<Box<RawValue>>::from_request(&self.req, &mut self.payload);
        in_time(body_timeout(&self.req), read)
            .await?
            .map(web::Json::into_inner)
            .map_err(unreadable)
    }
}

impl<T: DeserializeOwned + 'static> Deferred<T> {
    /// A body that may be left out, with or without a content type: `None` when it is empty or
    /// blank, else JSON that must fit `T`. At most `limit` bytes are read.
    pub async fn read_optional(mut self, limit: usize) -> Result<Option<T>, ApiError> {
        let payload = web::Payload::from_request(&self.req, &mut self.payload)
            .await
            .map_err(unreadable)?;
        let bytes = in_time(body_timeout(&self.req), payload.to_bytes_limited(limit))
            .await?
            .map_err(|_| too_large(limit))?
            .map_err(unreadable)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        from_slice(&bytes).map(Some)
    }

    pub async fn read(mut self) -> Result<Json<T>, ApiError> {
        Json::<T>::from_request(&self.req, &mut self.payload)
            .await
            .map_err(unreadable)
    }
}
