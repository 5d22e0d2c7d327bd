//! `POST /leads` (create-or-merge) and `PATCH /leads/{id}`, both with `Idempotency-Key`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::dto::{LeadBody, LeadDto, PatchBody};
use crate::domain::ids::LeadId;
use crate::domain::lead::{IfMatch, SourceType};
use crate::http::auth::{Caller, LeadsWrite};
use crate::http::blocking;
use crate::http::error::ApiError;
use crate::http::idempotency::{
    Fingerprint, canonical_json, claim, error_response, refuse, respond, stored,
};
use crate::http::json::Deferred;
use crate::http::path::Ids;
use crate::http::state::AppState;
use crate::store::StoreError;
use crate::store::idempotency::{IdempotentRoute, Outcome, StoredResponse};
use crate::store::lead_record::LeadView;
use crate::store::leads::{Applied, RowStatus};

fn render_created(result: Result<&Applied, &StoreError>) -> StoredResponse {
    match result {
        Ok(applied) => StoredResponse {
            etag: Some(applied.view.lead.version),
            ..stored(
                201,
                json!({
                    "lead": LeadDto::new(&applied.view, true),
                    "merged": applied.status == RowStatus::Updated,
                    "matched_by": applied.matched_by,
                    "ignored_custom_fields": applied.ignored_custom_fields,
                }),
            )
        },
        Err(e) => error_response(e),
    }
}

fn render_patched(result: Result<&LeadView, &StoreError>) -> StoredResponse {
    match result {
        Ok(view) => StoredResponse {
            etag: Some(view.lead.version),
            ..stored(200, json!({ "lead": LeadDto::new(view, true) }))
        },
        Err(e) => error_response(e),
    }
}

/// A lead's version as an entity tag (spec §11.1).
pub(super) fn etag(version: u64) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{version}\""))
}

/// The response, with the lead's version as its `ETag` when it carries a lead: a fresh answer
/// knows it, a replayed one reads the version it had when first answered from its body.
fn respond_with_etag(outcome: Outcome) -> HttpResponse {
    #[derive(Deserialize)]
    struct Versioned {
        lead: Version,
    }
    #[derive(Deserialize)]
    struct Version {
        version: u64,
    }
    let version = match &outcome {
        Outcome::Fresh(r) if r.status < 300 => r.etag,
        Outcome::Replayed(r) if r.status < 300 => serde_json::from_str::<Versioned>(&r.body)
            .ok()
            .map(|v| v.lead.version),
        _ => None,
    };
    let mut response = respond(outcome);
    if let Some((name, value)) = version.map(etag)
        && let Ok(value) = header::HeaderValue::from_str(&value)
    {
        response.headers_mut().insert(name, value);
    }
    response
}

/// What makes two conditional writes with one key the same request: the body and the
/// condition. The same key with another If-Match is another request (409), and a stored 412 is
/// only ever replayed to the request that got it.
fn conditional_fingerprint(
    req: &HttpRequest,
    body: Option<&serde_json::Value>,
    if_match: Option<&IfMatch>,
) -> [u8; 32] {
    let mut fingerprint = Fingerprint::start(req);
    if let Some(body) = body {
        fingerprint.add(&canonical_json(body));
    }
    if let Some(condition) = if_match {
        fingerprint.add(&format!("\nif-match: {}", condition.canonical()));
    }
    fingerprint.finish()
}

/// `If-Match`, when sent: malformed is a 400 before anything else happens.
fn if_match(req: &HttpRequest) -> Result<Option<IfMatch>, ApiError> {
    let Some(raw) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = raw
        .to_str()
        .map_err(|_| ApiError::bad_request("If-Match must be printable ASCII"))?;
    IfMatch::parse(raw).map(Some).map_err(ApiError::bad_request)
}

pub(super) async fn create(
    caller: Caller<LeadsWrite>,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Deferred<LeadBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.read().await?;
    let tenant = caller.tenant;
    let fingerprint = || Fingerprint::of(&req, &body.raw);
    let mut claim = claim(
        &req,
        &state,
        tenant,
        IdempotentRoute::CreateLead,
        fingerprint,
    )?;
    let idem = claim.idempotency.take();
    let outcome = match body.parse(&state.config.leads.default_country_code, SourceType::Manual) {
        Err(errors) => refuse(&state, idem, errors).await?,
        Ok(input) => {
            blocking(&state, move |s| {
                s.create_lead(tenant, input, idem, render_created)
            })
            .await?
        }
    };
    Ok(respond_with_etag(outcome))
}

pub(super) async fn patch(
    caller: Caller<LeadsWrite>,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: Ids<LeadId>,
    body: Deferred<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.read().await?;
    let (tenant, id) = (caller.tenant, id.get()?);
    let if_match = if_match(&req)?;
    let fingerprint = || conditional_fingerprint(&req, Some(&body.raw), if_match.as_ref());
    let mut claim = claim(
        &req,
        &state,
        tenant,
        IdempotentRoute::PatchLead,
        fingerprint,
    )?;
    let idem = claim.idempotency.take();
    let outcome = match body.parse(&state.config.leads.default_country_code) {
        Err(errors) => refuse(&state, idem, errors).await?,
        Ok(patch) => {
            blocking(&state, move |s| {
                s.patch_lead(tenant, id, patch, if_match, idem, render_patched)
            })
            .await?
        }
    };
    Ok(respond_with_etag(outcome))
}

/// `DELETE /leads/{id}` (spec §12.1), with `If-Match` and `Idempotency-Key`.
pub(super) async fn delete(
    caller: Caller<LeadsWrite>,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: Ids<LeadId>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant, id.get()?);
    let if_match = if_match(&req)?;
    let fingerprint = || conditional_fingerprint(&req, None, if_match.as_ref());
    let mut claim = claim(
        &req,
        &state,
        tenant,
        IdempotentRoute::DeleteLead,
        fingerprint,
    )?;
    let idem = claim.idempotency.take();
    let render = move |result: Result<&usize, &StoreError>| match result {
        Ok(_) => stored(200, json!({ "id": id, "deleted": true })),
        Err(e) => error_response(e),
    };
    let outcome = blocking(&state, move |s| {
        s.delete_lead(tenant, id, if_match, idem, render)
    })
    .await?;
    Ok(respond(outcome))
}
