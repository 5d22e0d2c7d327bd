//! `GET /admin/api/meta`: the values the admin page offers in its selects and checkboxes, taken
//! from the enums that parse them, so the page holds no copy that could drift from the API.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::domain::catalog::FieldType;
use crate::domain::lead::LeadStatus;
use crate::domain::token::Scope;
use crate::http::auth::Admin;
use crate::store::delivery_queue::DeliveryStatus;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/api/meta").route(web::get().to(meta)));
}

/// Each list in its wire form, in the enum's order.
#[derive(Serialize)]
struct Meta {
    lead_statuses: &'static [LeadStatus],
    custom_field_types: &'static [FieldType],
    scopes: &'static [Scope],
    delivery_statuses: &'static [DeliveryStatus],
}

async fn meta(_: Admin) -> HttpResponse {
    HttpResponse::Ok().json(Meta {
        lead_statuses: LeadStatus::ALL,
        custom_field_types: &FieldType::ALL,
        scopes: &Scope::ALL,
        delivery_statuses: DeliveryStatus::ALL,
    })
}
