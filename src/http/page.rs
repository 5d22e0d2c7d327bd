//! The admin page: a few static files compiled into the binary.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

const HTML: &str = include_str!("../../static/admin.html");
const JS: &str = include_str!("../../static/admin.js");
const CSS: &str = include_str!("../../static/admin.css");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(|| async { redirect("/admin") })))
        .service(web::resource("/favicon.ico").route(web::get().to(HttpResponse::NoContent)))
        .service(
            web::resource("/admin")
                .route(web::get().to(|| async { asset(HTML, "text/html; charset=utf-8") })),
        )
        .service(web::resource("/admin/").route(web::get().to(|| async { redirect("/admin") })))
        .service(
            web::resource("/admin/admin.js")
                .route(web::get().to(|| async { asset(JS, "text/javascript; charset=utf-8") })),
        )
        .service(
            web::resource("/admin/admin.css")
                .route(web::get().to(|| async { asset(CSS, "text/css; charset=utf-8") })),
        );
}

fn redirect(to: &'static str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// The page holds no secrets; the admin token is typed in and kept in the browser's session
/// storage. The CSP keeps it to its own scripts and its own origin.
fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
