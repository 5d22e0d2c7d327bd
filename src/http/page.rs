//! The admin page: a few static files compiled into the binary.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

const HTML: &str = include_str!("../../static/admin.html");
const JS: &str = "text/javascript; charset=utf-8";

/// `(path, body, content type)` of a file of `static/`, served under `/admin/`.
macro_rules! static_file {
    ($file:literal, $content_type:expr) => {
        (
            concat!("/admin/", $file),
            include_str!(concat!("../../static/", $file)),
            $content_type,
        )
    };
}

/// The page's style sheet and scripts: ES modules that import each other by these paths, so no
/// build step joins them.
const ASSETS: [(&str, &str, &str); 13] = [
    static_file!("admin.css", "text/css; charset=utf-8"),
    static_file!("admin.js", JS),
    static_file!("admin.ui.js", JS),
    static_file!("admin.chart.js", JS),
    static_file!("admin.overview.js", JS),
    static_file!("admin.catalog.js", JS),
    static_file!("admin.leads.js", JS),
    static_file!("admin.leadform.js", JS),
    static_file!("admin.import.js", JS),
    static_file!("admin.webhooks.js", JS),
    static_file!("admin.webhookform.js", JS),
    static_file!("admin.deliveries.js", JS),
    static_file!("admin.events.js", JS),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(|| async { redirect("/admin") })))
        .service(
            web::resource("/admin")
                .route(web::get().to(|| async { asset(HTML, "text/html; charset=utf-8") })),
        )
        .service(web::resource("/favicon.ico").route(web::get().to(HttpResponse::NoContent)))
        .service(web::resource("/admin/").route(web::get().to(|| async { redirect("/admin") })));
    for (path, body, content_type) in ASSETS {
        cfg.service(
            web::resource(path)
                .route(web::get().to(move || async move { asset(body, content_type) })),
        );
    }
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

#[cfg(test)]
mod tests {
    use crate::domain::event::EventType;
    use crate::domain::interaction::{Direction, InteractionType};
    use crate::domain::lead::{LeadLine, SourcePlatform, SourceType};

    /// The page lists the API's accepted values it offers in selects (`ENUMS` of
    /// `admin.ui.js`: what `/admin/api/meta` does not serve); each list is the enum's own, in
    /// its order, so a value added to the API cannot be missing from the page.
    #[test]
    fn the_page_offers_exactly_the_values_the_api_accepts() {
        let js: String = include_str!("../../static/admin.ui.js")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        // Each value in its wire form, as the API (de)serialises it.
        fn list<T: serde::Serialize>(js: &str, name: &str, values: &[T]) {
            let quoted: Vec<String> = values
                .iter()
                .map(|v| format!("'{}'", serde_json::to_value(v).unwrap().as_str().unwrap()))
                .collect();
            let literal = format!("{name}:[{}]", quoted.join(","));
            assert!(js.contains(&literal), "admin.ui.js lacks {literal}");
        }
        list(&js, "source_platform", SourcePlatform::ALL);
        list(&js, "source_type", SourceType::ALL);
        list(&js, "lead_line", LeadLine::ALL);
        list(&js, "event_types", &EventType::SUBSCRIBABLE);
        list(&js, "interaction_types", InteractionType::ALL);
        list(&js, "directions", Direction::ALL);
    }
}
