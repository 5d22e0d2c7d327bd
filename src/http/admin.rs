//! Admin API: tenants and their API keys (spec §8). The CLI prints the same JSON.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::blocking;
use super::json::Json;
use crate::domain::catalog::Name;
use crate::domain::ids::{KeyId, TenantId};
use crate::domain::token::Pat;
use crate::dto::{KeyDto, TenantDto};
use crate::http::auth::Admin;
use crate::http::error::ApiError;
use crate::http::path::Ids;
use crate::http::state::AppState;
use crate::store::api_keys::NewKey;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/api/tenants")
            .route(web::get().to(list_tenants))
            .route(web::post().to(create_tenant)),
    )
    .service(
        web::resource("/admin/api/tenants/{tenant_id}")
            .route(web::get().to(get_tenant))
            .route(web::patch().to(rename_tenant)),
    )
    .service(
        web::resource("/admin/api/tenants/{tenant_id}/keys")
            .route(web::get().to(list_keys))
            .route(web::post().to(issue_key)),
    )
    .service(web::resource("/admin/api/keys/{key_id}").route(web::delete().to(revoke_key)));
}

/// The tenant an admin route names, if it exists.
pub async fn existing_tenant(
    state: &web::Data<AppState>,
    id: TenantId,
) -> Result<TenantId, ApiError> {
    match blocking(state, move |s| s.get_tenant(id)).await? {
        Some(_) => Ok(id),
        None => Err(ApiError::not_found(format!("tenant {id} not found"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantBody {
    name: String,
}

async fn list_tenants(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let tenants = blocking(&state, |s| s.list_tenants()).await?;
    let tenants: Vec<TenantDto> = tenants.iter().map(TenantDto::from).collect();
    Ok(HttpResponse::Ok().json(json!({ "tenants": tenants })))
}

async fn create_tenant(
    _: Admin,
    state: web::Data<AppState>,
    body: Json<TenantBody>,
) -> Result<HttpResponse, ApiError> {
    let name = Name::parse("name", &body.name).map_err(ApiError::bad_request)?;
    let tenant = blocking(&state, move |s| s.create_tenant(name)).await?;
    Ok(HttpResponse::Created().json(json!({ "tenant": TenantDto::from(&tenant) })))
}

async fn get_tenant(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.get()?;
    let tenant = blocking(&state, move |s| s.get_tenant(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tenant {id} not found")))?;
    Ok(HttpResponse::Ok().json(json!({ "tenant": TenantDto::from(&tenant) })))
}

async fn rename_tenant(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<TenantId>,
    body: Json<TenantBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.get()?;
    let name = Name::parse("name", &body.name).map_err(ApiError::bad_request)?;
    let tenant = blocking(&state, move |s| s.rename_tenant(id, name)).await?;
    Ok(HttpResponse::Ok().json(json!({ "tenant": TenantDto::from(&tenant) })))
}

async fn list_keys(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let path = path.get()?;
    let tenant = existing_tenant(&state, path).await?;
    let keys = blocking(&state, move |s| s.list_keys(tenant)).await?;
    let keys: Vec<KeyDto> = keys.iter().map(KeyDto::from).collect();
    Ok(HttpResponse::Ok().json(json!({ "keys": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    name: String,
    scopes: Vec<String>,
    expires_at: Option<String>,
}

/// Validated key request, shared with the CLI.
async fn issue_key(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<TenantId>,
    body: Json<KeyBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.get()?;
    let now = state.store.now();
    let request = NewKey::parse(
        tenant,
        &body.name,
        &body.scopes,
        body.expires_at.as_deref(),
        now,
    )
    .map_err(ApiError::bad_request)?;
    let token = Pat::generate();
    let reveal = token.reveal().to_string();
    let key = blocking(&state, move |s| s.issue_key(request, &token)).await?;
    Ok(HttpResponse::Created().json(json!({ "key": KeyDto::from(&key), "token": reveal })))
}

async fn revoke_key(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<KeyId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.get()?;
    blocking(&state, move |s| s.revoke_key(id)).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": id, "revoked": true })))
}
