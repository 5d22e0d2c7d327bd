//! Admin API: tenants and their API keys (spec §8). The CLI prints the same JSON.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::json::Json;
use super::{blocking, path_id};
use crate::domain::catalog::parse_name;
use crate::domain::ids::{KeyId, TenantId};
use crate::domain::time::Timestamp;
use crate::domain::token::{Pat, Scope};
use crate::http::auth::Admin;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::Tenant;
use crate::store::api_keys::{ApiKey, NewKey};

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

#[derive(Serialize)]
pub struct TenantDto {
    pub id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
}

impl From<&Tenant> for TenantDto {
    fn from(t: &Tenant) -> Self {
        TenantDto {
            id: t.id,
            name: t.name.clone(),
            created_at: t.created_at,
        }
    }
}

#[derive(Serialize)]
pub struct KeyDto {
    pub id: KeyId,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl From<&ApiKey> for KeyDto {
    fn from(k: &ApiKey) -> Self {
        KeyDto {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.clone(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
        }
    }
}

pub fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    path_id(raw, "tenant", TenantId::parse)
}

/// 404 unless the tenant exists; for routes that read a tenant's data.
pub async fn existing_tenant(state: &web::Data<AppState>, raw: &str) -> Result<TenantId, ApiError> {
    let id = tenant_id(raw)?;
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
    let name = parse_name("name", &body.name).map_err(ApiError::bad_request)?;
    let tenant = blocking(&state, move |s| s.create_tenant(name)).await?;
    Ok(HttpResponse::Created().json(json!({ "tenant": TenantDto::from(&tenant) })))
}

async fn get_tenant(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_id(&path)?;
    let tenant = blocking(&state, move |s| s.get_tenant(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tenant {id} not found")))?;
    Ok(HttpResponse::Ok().json(json!({ "tenant": TenantDto::from(&tenant) })))
}

async fn rename_tenant(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<TenantBody>,
) -> Result<HttpResponse, ApiError> {
    let id = tenant_id(&path)?;
    let name = parse_name("name", &body.name).map_err(ApiError::bad_request)?;
    let tenant = blocking(&state, move |s| s.rename_tenant(id, name)).await?;
    Ok(HttpResponse::Ok().json(json!({ "tenant": TenantDto::from(&tenant) })))
}

async fn list_keys(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = existing_tenant(&state, &path).await?;
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
pub fn new_key(
    tenant: TenantId,
    name: &str,
    scopes: &[String],
    expires_at: Option<&str>,
) -> Result<NewKey, String> {
    let name = parse_name("name", name)?;
    let scopes = Scope::parse_list(scopes.iter().map(String::as_str))?;
    let expires_at = match expires_at {
        None => None,
        Some(raw) => {
            let at = Timestamp::parse_iso(raw)
                .ok_or_else(|| format!("expires_at `{raw}` is not an ISO-8601 date-time"))?;
            if at <= Timestamp::now() {
                return Err("expires_at must be in the future".into());
            }
            Some(at)
        }
    };
    Ok(NewKey {
        tenant_id: tenant,
        name,
        scopes,
        expires_at,
    })
}

async fn issue_key(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Json<KeyBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant_id(&path)?;
    let request = new_key(tenant, &body.name, &body.scopes, body.expires_at.as_deref())
        .map_err(ApiError::bad_request)?;
    let token = Pat::generate();
    let reveal = token.reveal().to_string();
    let key = blocking(&state, move |s| s.issue_key(request, &token)).await?;
    Ok(HttpResponse::Created().json(json!({ "key": KeyDto::from(&key), "token": reveal })))
}

async fn revoke_key(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path, "key", KeyId::parse)?;
    blocking(&state, move |s| s.revoke_key(id)).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": id, "revoked": true })))
}
