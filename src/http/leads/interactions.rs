//! `POST` and `GET /api/agents/crm/leads/{id}/interactions`: a lead's timeline (spec §12.2).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::LeadDto;
use crate::domain::cursor::{Cursor, SortBy, SortDir};
use crate::domain::ids::LeadId;
use crate::domain::interaction::{Direction, InteractionInput, InteractionType, check_text};
use crate::http::auth::{Caller, LeadsRead, LeadsWrite};
use crate::http::error::ApiError;
use crate::http::idempotency::{Fingerprint, claim, error_response, refuse, respond, stored};
use crate::http::json::Deferred;
use crate::http::path::Ids;
use crate::http::state::AppState;
use crate::http::{blocking, iso_time, non_blank, page_limit, whole_number};
use crate::store::idempotency::IdempotentRoute;
use crate::store::interactions::interaction_json;

#[derive(Debug, Deserialize)]
pub(super) struct InteractionBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    direction: Option<String>,
    occurred_at: Option<String>,
    summary: Option<String>,
    body: Option<String>,
    #[serde(default, deserialize_with = "whole_number")]
    duration_seconds: Option<i64>,
}

impl InteractionBody {
    /// The fields, checked; every problem named by its field.
    fn parse(&self) -> Result<InteractionInput, Vec<String>> {
        let mut problems = Vec::new();
        let kind = match self.kind.as_deref() {
            None => {
                problems
                    .push("type is required: note, call, email, sms, meeting or chat".to_string());
                None
            }
            Some(raw) => InteractionType::parse(raw)
                .map_err(|e| problems.push(e))
                .ok(),
        };
        let direction = self
            .direction
            .as_deref()
            .and_then(|raw| Direction::parse(raw).map_err(|e| problems.push(e)).ok());
        let occurred_at = self.occurred_at.as_deref().and_then(|raw| {
            iso_time("occurred_at", raw)
                .map_err(|e| problems.push(e.message().to_string()))
                .ok()
        });
        let text = check_text(
            self.summary.clone(),
            self.body.clone(),
            self.duration_seconds,
        )
        .map_err(|e| problems.extend(e))
        .ok();
        match (kind, text, problems.is_empty()) {
            (Some(kind), Some((summary, body, duration_seconds)), true) => Ok(InteractionInput {
                kind,
                direction,
                occurred_at,
                summary,
                body,
                duration_seconds,
            }),
            _ => Err(problems),
        }
    }
}

pub(super) async fn create(
    caller: Caller<LeadsWrite>,
    req: HttpRequest,
    state: web::Data<AppState>,
    id: Ids<LeadId>,
    body: Deferred<InteractionBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.read().await?;
    let (tenant, id) = (caller.tenant, id.get()?);
    let fingerprint = || Fingerprint::of(&req, &body.raw);
    let mut claim = claim(
        &req,
        &state,
        tenant,
        IdempotentRoute::CreateInteraction,
        fingerprint,
    )?;
    let idem = claim.idempotency.take();
    let outcome = match body.parse() {
        Err(errors) => refuse(&state, idem, errors).await?,
        Ok(input) => {
            blocking(&state, move |s| {
                s.add_interaction(tenant, id, input, idem, |result| match result {
                    Ok((interaction, view)) => stored(
                        201,
                        json!({
                            "interaction": interaction_json(interaction),
                            "lead": LeadDto::new(view, true),
                        }),
                    ),
                    Err(e) => error_response(e),
                })
            })
            .await?
        }
    };
    Ok(respond(outcome))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListParams {
    #[serde(default, deserialize_with = "non_blank")]
    cursor: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    limit: Option<String>,
}

pub(super) async fn list(
    caller: Caller<LeadsRead>,
    state: web::Data<AppState>,
    id: Ids<LeadId>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant, id.get()?);
    let limit = page_limit(params.limit.as_deref())?;
    let cursor = params
        .cursor
        .as_deref()
        .map(|raw| {
            Cursor::decode_for(raw, SortBy::LastInteractionAt, SortDir::Desc)
                .map_err(|_| ApiError::bad_request("cursor is malformed"))
        })
        .transpose()?;
    let (page, next) = blocking(&state, move |s| {
        s.list_interactions(tenant, id, cursor, limit)
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("lead {id} not found")))?;
    let interactions: Vec<Value> = page.iter().map(interaction_json).collect();
    Ok(HttpResponse::Ok().json(json!({
        "interactions": interactions,
        "next_cursor": next.as_ref().map(Cursor::encode),
    })))
}
