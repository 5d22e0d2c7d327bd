//! `/openapi.json`: the OpenAPI 3.1 description of the public routes, kept beside the admin page.

use actix_web::{HttpResponse, web};

const DOCUMENT: &str = include_str!("../../static/openapi.json");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/openapi.json").route(web::get().to(|| async {
            HttpResponse::Ok()
                .content_type("application/json")
                .body(DOCUMENT)
        })),
    );
}
