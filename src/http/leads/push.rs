//! `POST /leads` (create-or-merge) and `PATCH /leads/{id}`, both with `Idempotency-Key`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::dto::{LeadBody, LeadDto, PatchBody};
use crate::domain::ids::LeadId;
use crate::domain::lead::SourceType;
use crate::http::auth::{Caller, LeadsWrite};
use crate::http::blocking;
use crate::http::error::ApiError;
use crate::http::idempotency::{Fingerprint, claim, error_response, refuse, respond, stored};
use crate::http::json::Deferred;
use crate::http::path::Ids;
use crate::http::state::AppState;
use crate::store::StoreError;
use crate::store::idempotency::{IdempotentRoute, StoredResponse};
use crate::store::lead_record::LeadView;
use crate::store::leads::{Applied, RowStatus};

fn render_created(result: Result<&Applied, &StoreError>) -> StoredResponse {
    match result {
        Ok(applied) => stored(
            201,
            json!({
                "lead": LeadDto::new(&applied.view, true),
                "merged": applied.status == RowStatus::Updated,
                "matched_by": applied.matched_by,
                "ignored_custom_fields": applied.ignored_custom_fields,
            }),
        ),
        Err(e) => error_response(e),
    }
}

fn render_patched(result: Result<&LeadView, &StoreError>) -> StoredResponse {
    match result {
        Ok(view) => stored(200, json!({ "lead": LeadDto::new(view, true) })),
        Err(e) => error_response(e),
    }
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
    Ok(respond(outcome))
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
    let fingerprint = || Fingerprint::of(&req, &body.raw);
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
                s.patch_lead(tenant, id, patch, idem, render_patched)
            })
            .await?
        }
    };
    Ok(respond(outcome))
}
