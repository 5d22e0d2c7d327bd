//! `GET /leads`, `GET /leads/{id}` and the admin listing: query parameters parsed one by one,
//! so each error names its parameter.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::dto::LeadDto;
use super::push::etag;
use crate::domain::contact::SearchQuery;
use crate::domain::cursor::{Cursor, SortBy, SortDir};
use crate::domain::ids::{LeadId, StageId, TenantId};
use crate::domain::lead::{LeadLine, LeadStatus};
use crate::domain::time::Timestamp;
use crate::http::auth::{Caller, LeadsRead};
use crate::http::error::ApiError;
use crate::http::path::Ids;
use crate::http::state::AppState;
use crate::http::{blocking, iso_time, non_blank, page_limit};
use crate::store::lead_query::{LeadQuery, StageFilter};

const MAX_SEARCH_CHARS: usize = 200;

/// Query parameters as sent; parsed one by one so each error names its parameter.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListParams {
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
    pub(super) fn parse(self) -> Result<(LeadQuery, bool), ApiError> {
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

pub(super) async fn list(
    caller: Caller<LeadsRead>,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    list_for(&state, caller.tenant, params.into_inner()).await
}

pub(super) async fn get_one(
    caller: Caller<LeadsRead>,
    state: web::Data<AppState>,
    id: Ids<LeadId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.get()?;
    let (tenant, id) = (caller.tenant, id);
    let view = blocking(&state, move |s| s.get_lead(tenant, id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("lead {id} not found")))?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(view.lead.version))
        .json(json!({ "lead": LeadDto::new(&view, true) })))
}
