//! `/api/agents/crm/leads`: pull (filters, search, keyset cursors), push (create-or-merge and
//! PATCH), bulk import, export, and the admin view of a tenant's leads; `transfer` is what
//! `leadbase export` and `leadbase import` share with them.

mod bulk;
mod dto;
mod export;
mod interactions;
mod pull;
mod push;
pub(crate) mod transfer;

use actix_web::web;

use super::json_config;

/// 500 rows of generous size; the row count is checked separately.
const BULK_BODY_LIMIT: usize = 4 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/agents/crm/leads")
            .route(web::get().to(pull::list))
            .route(web::post().to(push::create)),
    )
    .service(
        web::resource("/api/agents/crm/leads/bulk")
            .app_data(json_config(BULK_BODY_LIMIT))
            .route(web::post().to(bulk::bulk)),
    )
    // Before `{id}`, which would take `export` for an id.
    .service(web::resource("/api/agents/crm/leads/export").route(web::get().to(export::export)))
    .service(
        web::resource("/api/agents/crm/leads/{id}")
            .route(web::get().to(pull::get_one))
            .route(web::patch().to(push::patch))
            .route(web::delete().to(push::delete)),
    )
    .service(
        web::resource("/api/agents/crm/leads/{id}/interactions")
            .route(web::get().to(interactions::list))
            .route(web::post().to(interactions::create)),
    )
    .service(
        web::resource("/admin/api/tenants/{tenant_id}/leads")
            .route(web::get().to(pull::admin_list)),
    );
}
