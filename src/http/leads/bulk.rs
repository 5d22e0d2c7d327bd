//! `POST /leads/bulk`: up to 500 rows in one transaction, each row parsed on its own so a bad
//! row fails alone; a dry run answers exactly the same and writes nothing.

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::dto::LeadBody;
use crate::domain::ids::TenantId;
use crate::domain::lead::{LeadInput, SourceType};
use crate::http::auth::{Caller, LeadsBulk};
use crate::http::blocking;
use crate::http::error::ApiError;
use crate::http::idempotency::{Claim, claim, error_response, header_key, refuse, respond, stored};
use crate::http::json::{Deferred, described};
use crate::http::state::AppState;
use crate::store::idempotency::{IdempotentRoute, StoredResponse};
use crate::store::leads::{OnDuplicate, RowResult, RowStatus};
use crate::store::{Store, StoreError};

const MAX_BULK_ROWS: usize = 500;

#[derive(Deserialize)]
pub(super) struct BulkBody {
    /// Counted here; each row is read from the raw body on its own, so one bad row fails alone.
    leads: Vec<IgnoredAny>,
    on_duplicate: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

fn render_bulk(
    dry_run: bool,
    row_refs: Vec<Value>,
) -> impl FnOnce(Result<&Vec<RowResult>, &StoreError>) -> StoredResponse + Send + 'static {
    move |result| {
        let rows = match result {
            Ok(rows) => rows,
            Err(e) => return error_response(e),
        };
        let count = |status| rows.iter().filter(|r| r.status == status).count();
        let unknown: BTreeSet<&String> =
            rows.iter().flat_map(|r| &r.ignored_custom_fields).collect();
        let results: Vec<Value> = rows
            .iter()
            .zip(row_refs)
            .map(|(row, row_ref)| {
                json!({
                    "row_ref": row_ref,
                    "lead_id": row.lead_id,
                    "status": row.status,
                    "matched_by": row.matched_by,
                    "errors": row.errors,
                    "ignored_custom_fields": row.ignored_custom_fields,
                })
            })
            .collect();
        stored(
            200,
            json!({
                "dry_run": dry_run,
                "summary": {
                    "total": rows.len(),
                    "created": count(RowStatus::Created),
                    "updated": count(RowStatus::Updated),
                    "skipped": count(RowStatus::Skipped),
                    "failed": count(RowStatus::Failed),
                },
                "results": results,
                "unknown_custom_fields": unknown,
            }),
        )
    }
}

impl BulkBody {
    /// The row count and `on_duplicate`, checked before any row is looked at.
    fn mode(&self) -> Result<OnDuplicate, String> {
        let count = self.leads.len();
        if !(1..=MAX_BULK_ROWS).contains(&count) {
            return Err(format!(
                "leads must hold between 1 and {MAX_BULK_ROWS} rows (got {count})"
            ));
        }
        match self.on_duplicate.as_deref() {
            None | Some("update") => Ok(OnDuplicate::Update),
            Some("skip") => Ok(OnDuplicate::Skip),
            Some(other) => Err(format!(
                "on_duplicate must be update or skip (got `{other}`)"
            )),
        }
    }
}

/// Each row of the raw body parsed on its own, and the `row_ref` each echoes: the caller's
/// correlation id, a string (a number is taken too), otherwise unused.
fn parse_rows(raw: &Value, country: &str) -> (Vec<Result<LeadInput, Vec<String>>>, Vec<Value>) {
    let raw_rows = raw["leads"].as_array().map_or(&[][..], Vec::as_slice);
    let mut row_refs = Vec::with_capacity(raw_rows.len());
    let rows = raw_rows
        .iter()
        .map(|raw| {
            let row_ref = raw.get("row_ref").cloned().unwrap_or(Value::Null);
            let row: Result<LeadBody, Vec<String>> = if !raw.is_object() {
                Err(vec!["a row must be a JSON object".to_string()])
            } else if !(row_ref.is_string() || row_ref.is_number() || row_ref.is_null()) {
                Err(vec!["row_ref must be a string".to_string()])
            } else {
                described(raw).map_err(|e| vec![e])
            };
            row_refs.push(match row_ref {
                Value::String(_) | Value::Number(_) => row_ref,
                _ => Value::Null,
            });
            row.and_then(|r| r.parse(country, SourceType::Import))
        })
        .collect();
    (rows, row_refs)
}

/// Dry runs are not stored: the key is only checked for them, and claimed for real imports
/// before anything else is checked, so that refusals are remembered too.
fn bulk_claim(
    req: &HttpRequest,
    state: &AppState,
    tenant: TenantId,
    dry_run: bool,
    raw: &Value,
) -> Result<Option<Claim>, ApiError> {
    if dry_run {
        return header_key(req).map(|_| None);
    }
    claim(req, state, tenant, IdempotentRoute::BulkImport, raw).map(Some)
}

pub(super) async fn bulk(
    caller: Caller<LeadsBulk>,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Deferred<BulkBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.read().await?;
    let (tenant, dry_run) = (caller.tenant, body.dry_run);
    let mut claim = bulk_claim(&req, &state, tenant, dry_run, &body.raw)?;
    let idem = claim.as_mut().and_then(|c| c.idempotency.take());
    let on_duplicate = match body.mode() {
        Ok(mode) => mode,
        Err(message) => return Ok(respond(refuse(&state, idem, vec![message]).await?)),
    };
    let (rows, row_refs) = parse_rows(&body.raw, &state.config.leads.default_country_code);
    let render = render_bulk(dry_run, row_refs);
    let import = move |s: &Store| s.bulk_import(tenant, rows, on_duplicate, dry_run, idem, render);
    let outcome = blocking(&state, import).await?;
    drop(claim);
    Ok(respond(outcome))
}
