//! `leadbase receive`: a small local webhook receiver for demos and for checking a setup. It
//! verifies each delivery the way a receiver should (timestamp within 5 minutes, signature
//! compared in constant time, the previous secret accepted during a rotation) and prints every
//! verified event. Answers like the documented example receiver: 400 for a missing or stale
//! timestamp, 401 for a bad signature, 200 `ok` otherwise.

use std::net::TcpListener;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::delivery::signing::{VerifyError, verify_mega};
use crate::domain::time::Timestamp;

/// Deliveries are small; anything larger is not ours.
const MAX_BODY: usize = 1024 * 1024;

struct Secret(String);

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn receive(req: HttpRequest, body: web::Bytes, secret: web::Data<Secret>) -> HttpResponse {
    let signatures: Vec<&str> = ["x-mega-signature", "x-mega-signature-previous"]
        .iter()
        .filter_map(|h| header(&req, h))
        .collect();
    let verdict = verify_mega(
        &secret.0,
        header(&req, "x-mega-timestamp"),
        &signatures,
        &body,
        Timestamp::now().seconds(),
    );
    let delivery = header(&req, "x-mega-delivery").unwrap_or("-");
    match verdict {
        Ok(()) => {
            let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let line = json!({
                "verified": true,
                "delivery": delivery,
                "event": header(&req, "x-mega-event"),
                "path": req.path(),
                "body": event,
            });
            println!("{line}");
            HttpResponse::Ok().content_type("text/plain").body("ok")
        }
        Err(e @ (VerifyError::BadTimestamp | VerifyError::Stale)) => {
            eprintln!("refused delivery {delivery}: {e}");
            HttpResponse::BadRequest()
                .content_type("text/plain")
                .body(e.to_string())
        }
        Err(e) => {
            eprintln!("refused delivery {delivery}: {e}");
            HttpResponse::Unauthorized()
                .content_type("text/plain")
                .body(e.to_string())
        }
    }
}

/// Serves until ctrl-c or SIGTERM.
pub fn run(secret: String, listen: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    println!(
        "leadbase receive listening on http://{addr}/ (any path); verified events are printed one JSON per line"
    );
    let secret = web::Data::new(Secret(secret));
    actix_web::rt::System::new().block_on(
        HttpServer::new(move || {
            App::new()
                .app_data(secret.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY))
                .default_service(web::post().to(receive))
        })
        .workers(1)
        .listen(listener)?
        .run(),
    )
}
