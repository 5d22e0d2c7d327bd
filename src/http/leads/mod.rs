//! `/api/agents/crm/leads`: pull (filters, search, keyset cursors), push (create-or-merge and
//! PATCH), bulk import, export and interactions, each also for the operator under a tenant;
//! `transfer` is what `leadbase export` and `leadbase import` share with them.

mod bulk;
mod dto;
mod export;
mod interactions;
mod pull;
mod push;
pub(crate) mod transfer;

use actix_web::web;

use super::{json_config, public_and_mirror};

/// 500 rows of generous size; the row count is checked separately.
const BULK_BODY_LIMIT: usize = 4 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    const LEADS: &str = "/api/agents/crm/leads";
    public_and_mirror(cfg, LEADS, |r| {
        r.route(web::get().to(pull::list))
            .route(web::post().to(push::create))
    });
    public_and_mirror(cfg, &format!("{LEADS}/bulk"), |r| {
        r.app_data(json_config(BULK_BODY_LIMIT))
            .route(web::post().to(bulk::bulk))
    });
    // Before `{id}`, which would take `export` for an id.
    public_and_mirror(cfg, &format!("{LEADS}/export"), |r| {
        r.route(web::get().to(export::export))
    });
    public_and_mirror(cfg, &format!("{LEADS}/{{id}}"), |r| {
        r.route(web::get().to(pull::get_one))
            .route(web::patch().to(push::patch))
            .route(web::delete().to(push::delete))
    });
    public_and_mirror(cfg, &format!("{LEADS}/{{id}}/interactions"), |r| {
        r.route(web::get().to(interactions::list))
            .route(web::post().to(interactions::create))
    });
}
