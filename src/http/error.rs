//! The one error type of the HTTP layer. Every error response, on every route, is the spec's
//! envelope: `{"error": {"type": T, "code": STATUS, "message": "..."}}`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    allow: Option<&'static str>,
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: u16,
    message: &'a str,
}

/// The machine-readable `type` of a status, exactly as the spec's table.
pub fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "authorization_error",
        404 => "not_found_error",
        409 | 412 => "api_error",
        429 => "rate_limit_error",
        500.. => "api_error",
        _ => "invalid_request_error",
    }
}

/// The serialised envelope, for places that build responses without an `ApiError`.
pub fn envelope_json(status: StatusCode, message: &str) -> String {
    serde_json::to_string(&Envelope {
        error: Body {
            kind: error_type(status),
            code: status.as_u16(),
            message,
        },
    })
    .unwrap_or_else(|_| {
        String::from(r#"{"error":{"type":"api_error","code":500,"message":"internal error"}}"#)
    })
}

pub const INTERNAL_MESSAGE: &str =
    "An internal error occurred. Retry later; if it persists, tell the operator the X-Request-Id.";

pub const UNAVAILABLE_MESSAGE: &str =
    "Storage unavailable: the server cannot write its data file now. Retry later.";

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            allow: None,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn method_not_allowed(allow: &'static str) -> ApiError {
        ApiError {
            allow: Some(allow),
            ..ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method not allowed on this route; allowed: {allow}"),
            )
        }
    }

    pub fn rate_limited(retry_after_secs: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit exceeded. Please retry later.",
            )
        }
    }

    /// Logs the cause with the request context and answers with a generic message: a cause may
    /// hold paths, data or internals that are not the client's business.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(cause = %cause, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_MESSAGE)
    }

    /// The data file cannot be written for now (a full disk): 503, so that clients retry and
    /// health checks see it. The cause goes to the log, as for [`ApiError::internal`].
    pub fn unavailable(cause: impl std::fmt::Display) -> ApiError {
        tracing::warn!(cause = %cause, "storage unavailable");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.content_type("application/json");
        if let Some(allow) = self.allow {
            response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still be on its way and nothing will read it: the
            // connection cannot carry another request (RFC 9110 §15.5.9).
            response.force_close();
        }
        response.body(envelope_json(self.status, &self.message))
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(why) => ApiError::conflict(why),
            StoreError::Invalid(why) => ApiError::bad_request(why),
            StoreError::Gone(why) => ApiError::new(StatusCode::GONE, why),
            StoreError::Precondition(why) => ApiError::new(StatusCode::PRECONDITION_FAILED, why),
            StoreError::Unavailable(cause) => ApiError::unavailable(cause),
            other => ApiError::internal(other),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(err: actix_web::error::BlockingError) -> ApiError {
        ApiError::internal(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_the_spec_table() {
        for (status, kind) in [
            (400, "invalid_request_error"),
            (405, "invalid_request_error"),
            (413, "invalid_request_error"),
            (415, "invalid_request_error"),
            (422, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "authorization_error"),
            (404, "not_found_error"),
            (409, "api_error"),
            (410, "invalid_request_error"),
            (412, "api_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (503, "api_error"),
        ] {
            assert_eq!(
                error_type(StatusCode::from_u16(status).unwrap()),
                kind,
                "{status}"
            );
        }
    }

    #[test]
    fn envelope_shape() {
        let json: serde_json::Value = serde_json::from_str(&envelope_json(
            StatusCode::BAD_REQUEST,
            "limit must be between 1 and 100",
        ))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {"type": "invalid_request_error", "code": 400, "message": "limit must be between 1 and 100"}})
        );
    }
}
