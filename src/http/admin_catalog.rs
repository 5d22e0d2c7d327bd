//! Admin API for a tenant's catalogue: stages, custom-field definitions, owners.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::admin::existing_tenant;
use super::json::Json;
use super::{blocking, nullable};
use crate::domain::catalog::{Color, FieldType, Name, Slug};
use crate::domain::ids::{CustomFieldId, OwnerId, StageId, TenantId};
use crate::http::auth::Admin;
use crate::http::error::ApiError;
use crate::http::path::Ids;
use crate::http::state::AppState;
use crate::store::catalog::{CustomFieldPatch, OwnerPatch, StagePatch};
use crate::store::{CustomField, Owner, Stage};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/api/tenants/{tenant_id}/stages")
            .route(web::get().to(list_stages))
            .route(web::post().to(create_stage)),
    )
    .service(
        web::resource("/admin/api/tenants/{tenant_id}/stages/{id}")
            .route(web::patch().to(update_stage))
            .route(web::delete().to(delete_stage)),
    )
    .service(
        web::resource("/admin/api/tenants/{tenant_id}/custom-fields")
            .route(web::get().to(list_fields))
            .route(web::post().to(create_field)),
    )
    .service(
        web::resource("/admin/api/tenants/{tenant_id}/custom-fields/{id}")
            .route(web::patch().to(update_field))
            .route(web::delete().to(delete_field)),
    )
    .service(
        web::resource("/admin/api/tenants/{tenant_id}/owners")
            .route(web::get().to(list_owners))
            .route(web::post().to(create_owner)),
    )
    .service(
        web::resource("/admin/api/tenants/{tenant_id}/owners/{id}")
            .route(web::patch().to(update_owner))
            .route(web::delete().to(delete_owner)),
    );
}

fn bad(e: String) -> ApiError {
    ApiError::bad_request(e)
}

fn deleted(id: impl Serialize) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "id": id, "deleted": true }))
}

#[derive(Serialize)]
pub struct StageDto {
    pub id: StageId,
    pub slug: String,
    pub name: String,
    pub color: Option<String>,
    pub position: u32,
}

impl From<&Stage> for StageDto {
    fn from(s: &Stage) -> Self {
        StageDto {
            id: s.id,
            slug: s.slug.clone(),
            name: s.name.clone(),
            color: s.color.clone(),
            position: s.position,
        }
    }
}

#[derive(Serialize)]
pub struct CustomFieldDto {
    pub id: CustomFieldId,
    pub slug: String,
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub reserved: bool,
}

impl From<&CustomField> for CustomFieldDto {
    fn from(f: &CustomField) -> Self {
        CustomFieldDto {
            id: f.id,
            slug: f.slug.clone(),
            name: f.name.clone(),
            field_type: f.field_type,
            reserved: f.reserved,
        }
    }
}

#[derive(Serialize)]
pub struct OwnerDto {
    pub id: OwnerId,
    pub name: String,
    pub role_name: Option<String>,
}

impl From<&Owner> for OwnerDto {
    fn from(o: &Owner) -> Self {
        OwnerDto {
            id: o.id,
            name: o.name.clone(),
            role_name: o.role_name.clone(),
        }
    }
}

fn optional<T>(
    field: &str,
    value: Option<&str>,
    parse: fn(&str, &str) -> Result<T, String>,
) -> Result<Option<T>, ApiError> {
    value.map(|v| parse(field, v)).transpose().map_err(bad)
}

/// A nullable PATCH field: absent, cleared (`null`), or set to a value that must parse.
fn nullable_of<T>(
    field: &str,
    value: Option<Option<String>>,
    parse: fn(&str, &str) -> Result<T, String>,
) -> Result<Option<Option<T>>, ApiError> {
    value
        .map(|v| v.map(|v| parse(field, &v)).transpose())
        .transpose()
        .map_err(bad)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewStageBody {
    slug: String,
    name: String,
    color: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StagePatchBody {
    slug: Option<String>,
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    color: Option<Option<String>>,
    position: Option<u32>,
}

async fn list_stages(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let path = path.get()?;
    let tenant = existing_tenant(&state, path).await?;
    let stages = blocking(&state, move |s| s.list_stages(tenant)).await?;
    let stages: Vec<StageDto> = stages.iter().map(StageDto::from).collect();
    Ok(HttpResponse::Ok().json(json!({ "stages": stages })))
}

async fn create_stage(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<TenantId>,
    body: Json<NewStageBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.get()?;
    let slug = Slug::parse("slug", &body.slug).map_err(bad)?;
    let name = Name::parse("name", &body.name).map_err(bad)?;
    let color = optional("color", body.color.as_deref(), Color::parse)?;
    let stage = blocking(&state, move |s| s.create_stage(tenant, slug, name, color)).await?;
    Ok(HttpResponse::Created().json(json!({ "stage": StageDto::from(&stage) })))
}

async fn update_stage(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<(TenantId, StageId)>,
    body: Json<StagePatchBody>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.get()?;
    let body = body.into_inner();
    let patch = StagePatch {
        slug: optional("slug", body.slug.as_deref(), Slug::parse)?,
        name: optional("name", body.name.as_deref(), Name::parse)?,
        color: nullable_of("color", body.color, Color::parse)?,
        position: body.position,
    };
    let stage = blocking(&state, move |s| s.update_stage(tenant, id, patch)).await?;
    Ok(HttpResponse::Ok().json(json!({ "stage": StageDto::from(&stage) })))
}

async fn delete_stage(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<(TenantId, StageId)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.get()?;
    blocking(&state, move |s| s.delete_stage(tenant, id)).await?;
    Ok(deleted(id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFieldBody {
    slug: String,
    name: String,
    #[serde(rename = "type")]
    field_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldPatchBody {
    name: Option<String>,
    #[serde(rename = "type")]
    field_type: Option<String>,
}

async fn list_fields(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let path = path.get()?;
    let tenant = existing_tenant(&state, path).await?;
    let fields = blocking(&state, move |s| s.list_custom_fields(tenant)).await?;
    let fields: Vec<CustomFieldDto> = fields.iter().map(CustomFieldDto::from).collect();
    Ok(HttpResponse::Ok().json(json!({ "custom_fields": fields })))
}

async fn create_field(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<TenantId>,
    body: Json<NewFieldBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.get()?;
    let slug = Slug::parse("slug", &body.slug).map_err(bad)?;
    let name = Name::parse("name", &body.name).map_err(bad)?;
    let field_type = body
        .field_type
        .as_deref()
        .map(FieldType::parse)
        .transpose()
        .map_err(bad)?
        .unwrap_or(FieldType::String);
    let field = blocking(&state, move |s| {
        s.create_custom_field(tenant, slug, name, field_type)
    })
    .await?;
    Ok(HttpResponse::Created().json(json!({ "custom_field": CustomFieldDto::from(&field) })))
}

async fn update_field(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<(TenantId, CustomFieldId)>,
    body: Json<FieldPatchBody>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.get()?;
    let patch = CustomFieldPatch {
        name: optional("name", body.name.as_deref(), Name::parse)?,
        field_type: body
            .field_type
            .as_deref()
            .map(FieldType::parse)
            .transpose()
            .map_err(bad)?,
    };
    let field = blocking(&state, move |s| s.update_custom_field(tenant, id, patch)).await?;
    Ok(HttpResponse::Ok().json(json!({ "custom_field": CustomFieldDto::from(&field) })))
}

async fn delete_field(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<(TenantId, CustomFieldId)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.get()?;
    blocking(&state, move |s| s.delete_custom_field(tenant, id)).await?;
    Ok(deleted(id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOwnerBody {
    name: String,
    role_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnerPatchBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    role_name: Option<Option<String>>,
}

async fn list_owners(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let path = path.get()?;
    let tenant = existing_tenant(&state, path).await?;
    let owners = blocking(&state, move |s| s.list_owners(tenant)).await?;
    let owners: Vec<OwnerDto> = owners.iter().map(OwnerDto::from).collect();
    Ok(HttpResponse::Ok().json(json!({ "owners": owners })))
}

async fn create_owner(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<TenantId>,
    body: Json<NewOwnerBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = path.get()?;
    let name = Name::parse("name", &body.name).map_err(bad)?;
    let role_name = optional("role_name", body.role_name.as_deref(), Name::parse)?;
    let owner = blocking(&state, move |s| s.create_owner(tenant, name, role_name)).await?;
    Ok(HttpResponse::Created().json(json!({ "owner": OwnerDto::from(&owner) })))
}

async fn update_owner(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<(TenantId, OwnerId)>,
    body: Json<OwnerPatchBody>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.get()?;
    let body = body.into_inner();
    let patch = OwnerPatch {
        name: optional("name", body.name.as_deref(), Name::parse)?,
        role_name: nullable_of("role_name", body.role_name, Name::parse)?,
    };
    let owner = blocking(&state, move |s| s.update_owner(tenant, id, patch)).await?;
    Ok(HttpResponse::Ok().json(json!({ "owner": OwnerDto::from(&owner) })))
}

async fn delete_owner(
    _: Admin,
    state: web::Data<AppState>,
    path: Ids<(TenantId, OwnerId)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = path.get()?;
    blocking(&state, move |s| s.delete_owner(tenant, id)).await?;
    Ok(deleted(id))
}
