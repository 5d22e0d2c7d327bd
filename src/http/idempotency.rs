//! `Idempotency-Key` on the write routes: validation, the request fingerprint, the in-flight
//! guard, and turning a store outcome into the response (replays marked
//! `Idempotent-Replayed: true`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use crate::domain::ids::TenantId;
use crate::http::blocking;
use crate::http::error::{ApiError, envelope_json};
use crate::http::state::{AppState, InFlight};
use crate::store::StoreError;
use crate::store::idempotency::{
    Idempotency, IdempotencyKey, IdempotentRoute, Outcome, StoredResponse,
};
use sha2::{Digest, Sha256};

const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;

/// Holds a key while its request runs; dropping it lets the key be used again.
pub struct Claim {
    pub idempotency: Option<Idempotency>,
    in_flight: Option<(InFlight, IdempotencyKey)>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some((set, key)) = self.in_flight.take() {
            set.release(&key);
        }
    }
}

/// JSON with object keys sorted at every level, so that key order does not make two equal
/// bodies differ.
pub fn canonical_json(value: &Value) -> String {
    let mut sorted = value.clone();
    sorted.sort_all_objects();
    sorted.to_string()
}

/// What makes two requests with one key "the same": the SHA-256 of the method, the path and the
/// body as canonical JSON. A body can be fed in pieces (bulk feeds one row at a time, so a 4 MB
/// body is never one JSON tree).
pub struct Fingerprint(Sha256);

impl Fingerprint {
    pub fn start(req: &HttpRequest) -> Fingerprint {
        let mut hash = Sha256::new();
        let path = crate::http::public_path(req);
        hash.update(format!("{} {path}\n", req.method()).as_bytes());
        Fingerprint(hash)
    }

    /// Appends canonical JSON text (or the punctuation between pieces of it).
    pub fn add(&mut self, canonical: &str) {
        self.0.update(canonical.as_bytes());
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }

    /// Of a request whose whole body is `body`.
    pub fn of(req: &HttpRequest, body: &Value) -> [u8; 32] {
        let mut fingerprint = Fingerprint::start(req);
        fingerprint.add(&canonical_json(body));
        fingerprint.finish()
    }
}

/// The `Idempotency-Key` header, checked: `None` when absent.
pub fn header_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(raw) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    raw.to_str()
        .ok()
        .filter(|k| {
            (1..=MAX_KEY_LEN).contains(&k.len()) && k.bytes().all(|b| (0x20..=0x7e).contains(&b))
        })
        .map(|k| Some(k.to_string()))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters"
            ))
        })
}

/// Reads and checks the header, and claims the key on `route` for this request.
pub fn claim(
    req: &HttpRequest,
    state: &AppState,
    tenant: TenantId,
    route: IdempotentRoute,
    fingerprint: impl FnOnce() -> [u8; 32],
) -> Result<Claim, ApiError> {
    let (in_flight, ttl_hours) = (&state.in_flight, state.config.idempotency.ttl_hours);
    let Some(key) = header_key(req)? else {
        return Ok(Claim {
            idempotency: None,
            in_flight: None,
        });
    };
    let key = IdempotencyKey { tenant, route, key };
    if !in_flight.take(&key) {
        return Err(ApiError::conflict(
            "a request with this Idempotency-Key is still in progress; retry when it has finished",
        ));
    }
    Ok(Claim {
        idempotency: Some(Idempotency {
            key: key.clone(),
            request_hash: fingerprint(),
            ttl_hours,
        }),
        in_flight: Some((in_flight.clone(), key)),
    })
}

pub fn stored(status: u16, body: Value) -> StoredResponse {
    StoredResponse {
        status,
        body: body.to_string(),
        etag: None,
    }
}

/// A refusal found before the store: answered directly, or remembered under the key so that a
/// retry with it gets the same answer.
pub async fn refuse(
    state: &web::Data<AppState>,
    idempotency: Option<Idempotency>,
    errors: Vec<String>,
) -> Result<Outcome, ApiError> {
    let response = error_response(&StoreError::Invalid(errors.join("; ")));
    match idempotency {
        None => Ok(Outcome::Fresh(response)),
        Some(idem) => blocking(state, move |s| s.remember_response(idem, response)).await,
    }
}

/// The stored form of a refusal, so that a retry with the same key gets the same answer.
pub fn error_response(err: &StoreError) -> StoredResponse {
    let api = ApiError::from(err.clone());
    StoredResponse {
        status: api.status().as_u16(),
        body: envelope_json(api.status(), api.message()),
        ..StoredResponse::default()
    }
}

pub fn respond(outcome: Outcome) -> HttpResponse {
    let (response, replayed) = match outcome {
        Outcome::Fresh(r) => (r, false),
        Outcome::Replayed(r) => (r, true),
        Outcome::Mismatch => {
            return actix_web::ResponseError::error_response(&ApiError::conflict(
                "this Idempotency-Key was already used with a different request",
            ));
        }
    };
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    builder.content_type("application/json");
    if replayed {
        builder.insert_header(("Idempotent-Replayed", "true"));
    }
    builder.body(response.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_ignores_key_order() {
        let a = json!({ "b": 1, "a": { "y": [1, { "d": 1, "c": 2 }], "x": null } });
        let b = json!({ "a": { "x": null, "y": [1, { "c": 2, "d": 1 }] }, "b": 1 });
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&json!({ "b": 1, "a": 2 })),
            r#"{"a":2,"b":1}"#
        );
        assert_ne!(
            canonical_json(&json!([1, 2])),
            canonical_json(&json!([2, 1]))
        );
    }
}
