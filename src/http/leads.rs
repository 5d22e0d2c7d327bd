//! `/api/agents/crm/leads`: pull (filters, search, keyset cursors), push (create-or-merge),
//! bulk import, and the admin view of a tenant's leads.

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::admin::existing_tenant;
use super::idempotency::{claim, error_response, header_key, respond};
use super::json::{Deferred, described};
use super::lead_dto::{LeadBody, LeadDto, PatchBody};
use super::{blocking, iso_time, json_config, non_blank, page_limit, path_id};
use crate::domain::contact::SearchQuery;
use crate::domain::cursor::{Cursor, SortBy, SortDir};
use crate::domain::ids::{LeadId, StageId, TenantId};
use crate::domain::lead::{LeadLine, LeadStatus, SourceType};
use crate::domain::time::Timestamp;
use crate::http::auth::{Admin, Caller, LeadsBulk, LeadsRead, LeadsWrite};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::StoreError;
use crate::store::idempotency::{IdempotentRoute, Outcome, StoredResponse};
use crate::store::lead_query::{LeadQuery, StageFilter};
use crate::store::leads::{Applied, OnDuplicate, RowResult, RowStatus};

/// 500 rows of generous size; the row count is checked separately.
const BULK_BODY_LIMIT: usize = 4 * 1024 * 1024;
pub const MAX_BULK_ROWS: usize = 500;
const MAX_SEARCH_CHARS: usize = 200;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/agents/crm/leads")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/api/agents/crm/leads/bulk")
            .app_data(json_config(BULK_BODY_LIMIT))
            .route(web::post().to(bulk)),
    )
    .service(
        web::resource("/api/agents/crm/leads/{id}")
            .route(web::get().to(get_one))
            .route(web::patch().to(patch)),
    )
    .service(
        web::resource("/admin/api/tenants/{tenant_id}/leads").route(web::get().to(admin_list)),
    );
}

/// Query parameters as sent; parsed one by one so each error names its parameter.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(default, deserialize_with = "non_blank")]
    status: Option<String>,
    #[serde(rename = "stageId", default, deserialize_with = "non_blank")]
    stage_id_camel: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    stage_id: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    stage_slug: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    search: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    created_since: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    updated_since: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    lead_line: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    sort_by: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    sort_dir: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    include_custom_fields: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    cursor: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    limit: Option<String>,
    #[serde(default, deserialize_with = "non_blank")]
    offset: Option<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

fn parse_time(name: &str, raw: &Option<String>) -> Result<Option<Timestamp>, ApiError> {
    raw.as_deref().map(|v| iso_time(name, v)).transpose()
}

impl ListParams {
    /// The query, and whether custom fields were asked for.
    fn parse(self) -> Result<(LeadQuery, bool), ApiError> {
        let limit = page_limit(self.limit.as_deref())?;
        let offset = match self.offset.as_deref() {
            None => 0,
            Some(raw) => raw
                .parse::<usize>()
                .map_err(|_| bad("offset must be a whole number, 0 or more"))?,
        };
        let sort_by = match self.sort_by.as_deref() {
            None => SortBy::UpdatedAt,
            Some(raw) => SortBy::parse(raw).ok_or_else(|| {
                bad(format!("sort_by must be one of created_at, updated_at, last_interaction_at (got `{raw}`)"))
            })?,
        };
        let sort_dir = match self.sort_dir.as_deref() {
            None => SortDir::Asc,
            Some(raw) => SortDir::parse(raw)
                .ok_or_else(|| bad(format!("sort_dir must be asc or desc (got `{raw}`)")))?,
        };
        let include_custom_fields = match self.include_custom_fields.as_deref() {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(raw) => {
                return Err(bad(format!(
                    "include_custom_fields must be true or false (got `{raw}`)"
                )));
            }
        };
        let cursor = match self.cursor.as_deref() {
            None => None,
            Some(_) if offset > 0 => {
                return Err(bad("cursor cannot be combined with offset greater than 0"));
            }
            Some(_) if sort_by == SortBy::LastInteractionAt => {
                return Err(bad(
                    "cursor paging is not available with sort_by=last_interaction_at; page with offset",
                ));
            }
            Some(raw) => {
                Some(Cursor::decode_for(raw, sort_by, sort_dir).map_err(|e| bad(e.to_string()))?)
            }
        };
        let stage = match (self.stage_id_camel.or(self.stage_id), self.stage_slug) {
            (Some(id), _) => {
                Some(StageFilter::Id(StageId::parse(&id).ok_or_else(|| {
                    bad(format!("stageId must be a UUID (got `{id}`)"))
                })?))
            }
            (None, Some(slug)) => Some(StageFilter::Slug(slug)),
            (None, None) => None,
        };
        let search = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if search.is_some_and(|s| s.chars().count() > MAX_SEARCH_CHARS) {
            return Err(bad(format!(
                "search must be at most {MAX_SEARCH_CHARS} characters"
            )));
        }
        let query = LeadQuery {
            status: self
                .status
                .as_deref()
                .map(LeadStatus::parse)
                .transpose()
                .map_err(bad)?,
            stage,
            search: search.map(SearchQuery::new),
            created_since: parse_time("created_since", &self.created_since)?,
            updated_since: parse_time("updated_since", &self.updated_since)?,
            lead_line: self
                .lead_line
                .as_deref()
                .map(LeadLine::parse)
                .transpose()
                .map_err(bad)?,
            sort_by,
            sort_dir,
            cursor,
            limit,
            offset,
        };
        Ok((query, include_custom_fields))
    }
}

async fn list_for(
    state: &web::Data<AppState>,
    tenant: TenantId,
    params: ListParams,
) -> Result<HttpResponse, ApiError> {
    let (query, include_custom_fields) = params.parse()?;
    let (limit, offset) = (query.limit, query.offset);
    let page = blocking(state, move |s| s.list_leads(tenant, &query)).await?;
    let leads: Vec<LeadDto> = page
        .leads
        .iter()
        .map(|v| LeadDto::new(v, include_custom_fields))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "leads": leads,
        "total": page.total,
        "limit": limit,
        "offset": offset,
        "next_cursor": page.next_cursor.as_ref().map(Cursor::encode),
    })))
}

async fn list(
    caller: Caller<LeadsRead>,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_for(&state, caller.tenant, params.into_inner()).await
}

async fn admin_list(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = existing_tenant(&state, &path).await?;
    list_for(&state, tenant, params.into_inner()).await
}

fn lead_id(raw: &str) -> Result<LeadId, ApiError> {
    path_id(raw, "lead", LeadId::parse)
}

async fn get_one(
    caller: Caller<LeadsRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = lead_id(&path)?;
    let tenant = caller.tenant;
    let view = blocking(&state, move |s| s.get_lead(tenant, id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("lead {id} not found")))?;
    Ok(HttpResponse::Ok().json(json!({ "lead": LeadDto::new(&view, true) })))
}

fn stored(status: u16, body: Value) -> StoredResponse {
    StoredResponse {
        status,
        body: body.to_string(),
    }
}

/// A refusal found before the store: answered directly, or remembered under the key.
async fn refuse(
    state: &web::Data<AppState>,
    idempotency: Option<crate::store::idempotency::Idempotency>,
    errors: Vec<String>,
) -> Result<Outcome, ApiError> {
    let response = error_response(&StoreError::Invalid(errors.join("; ")));
    match idempotency {
        None => Ok(Outcome::Fresh(response)),
        Some(idem) => blocking(state, move |s| s.remember_response(idem, response)).await,
    }
}

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

async fn create(
    caller: Caller<LeadsWrite>,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Deferred<LeadBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.read().await?;
    let tenant = caller.tenant;
    let mut claim = claim(
        &req,
        &state.in_flight,
        tenant,
        IdempotentRoute::CreateLead,
        &body.raw,
        state.config.idempotency.ttl_hours,
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

async fn patch(
    caller: Caller<LeadsWrite>,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Deferred<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.read().await?;
    let id = lead_id(&path)?;
    let tenant = caller.tenant;
    let mut claim = claim(
        &req,
        &state.in_flight,
        tenant,
        IdempotentRoute::PatchLead,
        &body.raw,
        state.config.idempotency.ttl_hours,
    )?;
    let idem = claim.idempotency.take();
    let outcome = match body.parse(&state.config.leads.default_country_code) {
        Err(errors) => refuse(&state, idem, errors).await?,
        Ok(patch) => {
            let render = |result: Result<&_, &StoreError>| match result {
                Ok(view) => stored(200, json!({ "lead": LeadDto::new(view, true) })),
                Err(e) => error_response(e),
            };
            blocking(&state, move |s| {
                s.patch_lead(tenant, id, patch, idem, render)
            })
            .await?
        }
    };
    Ok(respond(outcome))
}

#[derive(Deserialize)]
struct BulkBody {
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

async fn bulk(
    caller: Caller<LeadsBulk>,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Deferred<BulkBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.read().await?;
    let tenant = caller.tenant;
    let dry_run = body.dry_run;
    // Dry runs are not stored: the key is only checked for them, and claimed for real imports
    // before anything else is checked, so that refusals are remembered too.
    let mut claim = if dry_run {
        header_key(&req)?;
        None
    } else {
        Some(claim(
            &req,
            &state.in_flight,
            tenant,
            IdempotentRoute::BulkImport,
            &body.raw,
            state.config.idempotency.ttl_hours,
        )?)
    };
    let idem = claim.as_mut().and_then(|c| c.idempotency.take());
    let count = body.leads.len();
    let on_duplicate = if !(1..=MAX_BULK_ROWS).contains(&count) {
        Err(format!(
            "leads must hold between 1 and {MAX_BULK_ROWS} rows (got {count})"
        ))
    } else {
        match body.on_duplicate.as_deref() {
            None | Some("update") => Ok(OnDuplicate::Update),
            Some("skip") => Ok(OnDuplicate::Skip),
            Some(other) => Err(format!(
                "on_duplicate must be update or skip (got `{other}`)"
            )),
        }
    };
    let on_duplicate = match on_duplicate {
        Ok(mode) => mode,
        Err(message) => return Ok(respond(refuse(&state, idem, vec![message]).await?)),
    };
    let country = state.config.leads.default_country_code.clone();
    let mut row_refs = Vec::with_capacity(count);
    let rows = body.raw["leads"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|raw| {
            // A bulk row is the create fields plus `row_ref`, the caller's correlation id: a
            // string (a number is taken too), echoed and otherwise unused.
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
            row.and_then(|r| r.parse(&country, SourceType::Import))
        })
        .collect();
    let render = render_bulk(dry_run, row_refs);
    let outcome = blocking(&state, move |s| {
        s.bulk_import(tenant, rows, on_duplicate, dry_run, idem, render)
    })
    .await?;
    drop(claim);
    Ok(respond(outcome))
}
