//! `leadbase receive`: a small local webhook receiver for demos and for checking a setup. It
//! verifies each delivery the way a receiver should (timestamp within 5 minutes, signature
//! compared in constant time, the previous secret accepted during a rotation), checks the body
//! against the event catalogue (spec §6, §11.2–§11.3), and prints every verified event with its
//! `event_id` and the problems found (none, from a healthy sender). Answers like the documented
//! example receiver: 400 for a missing or stale timestamp, 401 for a bad signature, 200 `ok`
//! otherwise (a signed body with problems is authentic: it is accepted and the problems shown).

use std::net::TcpListener;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::delivery::signing::{VerifyError, verify_mega};
use crate::domain::event::EventType;
use crate::domain::ids::EventId;
use crate::domain::time::Timestamp;
use crate::http::run_server;

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
            let problems = check_body(header(&req, "x-mega-event"), &event);
            if !problems.is_empty() {
                eprintln!("delivery {delivery}: {}", problems.join("; "));
            }
            let line = json!({
                "verified": true,
                "delivery": delivery,
                "event": header(&req, "x-mega-event"),
                "event_id": event.get("event_id"),
                "path": req.path(),
                "problems": problems,
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

/// What is wrong with a delivery body, checked against the catalogue: the envelope every body
/// has, and the members its type carries. Empty when it is what the spec says.
pub fn check_body(header_event: Option<&str>, body: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(object) = body.as_object() else {
        return vec!["the body is not a JSON object".into()];
    };
    let text = |name: &str| object.get(name).and_then(Value::as_str);
    let event = text("event").unwrap_or_default();
    let Ok(event_type) = EventType::parse_subscribable(event).or_else(|e| {
        (event == "webhook.test")
            .then_some(EventType::WebhookTest)
            .ok_or(e)
    }) else {
        return vec![format!("event `{event}` is not in the catalogue")];
    };
    if header_event != Some(event) {
        problems.push(format!(
            "X-Mega-Event {header_event:?} differs from the body's event"
        ));
    }
    if text("event_id").and_then(EventId::parse).is_none() {
        problems.push("event_id is not a UUID".into());
    }
    for time in ["occurred_at", "delivered_at"] {
        if text(time).and_then(Timestamp::parse_iso).is_none() {
            problems.push(format!("{time} is not an ISO-8601 time"));
        }
    }
    let lead = object.get("lead");
    let lead_object = lead.and_then(Value::as_object);
    let member = |name: &str| object.get(name).is_some_and(Value::is_object);
    match event_type {
        EventType::LeadCreated | EventType::LeadUpdated | EventType::InteractionCreated => {
            match lead_object {
                Some(lead) => {
                    for field in LEAD_SNAPSHOT {
                        if !lead.contains_key(*field) {
                            problems.push(format!("lead.{field} is missing"));
                        }
                    }
                }
                None => problems.push("lead is not an object".into()),
            }
        }
        EventType::LeadDeleted => {
            if lead_object.is_none_or(|l| !l.contains_key("id") || !l.contains_key("version")) {
                problems.push("lead must be {id, version, deleted_at}".into());
            }
        }
        EventType::WebhookDisabled | EventType::DeliveryExhausted | EventType::WebhookTest => {
            if lead != Some(&Value::Null) {
                problems.push("lead must be null".into());
            }
        }
    }
    if event_type == EventType::LeadUpdated {
        let changed: Vec<&str> = object
            .get("changed_fields")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if changed.is_empty() {
            problems.push("changed_fields is missing or empty".into());
        }
        match object.get("previous").and_then(Value::as_object) {
            Some(previous) if changed.iter().all(|f| previous.contains_key(*f)) => {}
            _ => problems.push("previous must hold every changed field".into()),
        }
    }
    let required: &[&str] = match event_type {
        EventType::InteractionCreated => &["interaction"],
        EventType::WebhookDisabled => &["webhook"],
        EventType::DeliveryExhausted => &["delivery", "webhook"],
        _ => &[],
    };
    for name in required {
        if !member(name) {
            problems.push(format!("{name} is missing"));
        }
    }
    problems
}

/// The members of a lead snapshot (spec §6 and §11.2).
const LEAD_SNAPSHOT: &[&str] = &[
    "id",
    "contact_name",
    "contact_phone",
    "contact_email",
    "source_platform",
    "source_type",
    "lead_line",
    "current_stage",
    "custom_fields",
    "created_at",
    "updated_at",
    "status",
    "score",
    "qualified",
    "owner",
    "interaction_count",
    "last_interaction_at",
    "version",
];

/// Serves until ctrl-c or SIGTERM.
pub fn run(secret: String, listen: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    let secret = web::Data::new(Secret(secret));
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(secret.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY))
                .default_service(web::post().to(receive))
        })
        .workers(1)
        .listen(listener)?
        .run();
        run_server(server, |_| {
            println!(
                "leadbase receive listening on http://{addr}/ (any path); verified events are printed one JSON per line"
            );
        })
        .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead() -> Value {
        let mut lead = serde_json::Map::new();
        for field in LEAD_SNAPSHOT {
            lead.insert((*field).into(), Value::Null);
        }
        Value::Object(lead)
    }

    fn body(event: &str, extra: Value) -> Value {
        let mut body = json!({
            "event": event,
            "event_id": "01a2311d-974c-7559-8fe9-52ceded1481a",
            "occurred_at": "2026-12-01T10:00:00.000Z",
            "delivered_at": "2026-12-01T10:00:01.000Z",
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    }

    #[test]
    fn a_well_formed_body_of_each_type_has_no_problems() {
        for (event, extra) in [
            ("lead.created", json!({ "lead": lead() })),
            (
                "lead.updated",
                json!({ "lead": lead(), "changed_fields": ["status"], "previous": { "status": "active" } }),
            ),
            ("webhook.disabled", json!({ "lead": null, "webhook": {} })),
            (
                "delivery.exhausted",
                json!({ "lead": null, "delivery": {}, "webhook": {} }),
            ),
            ("webhook.test", json!({ "lead": null })),
        ] {
            let problems = check_body(Some(event), &body(event, extra));
            assert!(problems.is_empty(), "{event}: {problems:?}");
        }
    }

    #[test]
    fn what_is_missing_or_wrong_is_named() {
        let mut updated = body(
            "lead.updated",
            json!({ "lead": lead(), "changed_fields": ["status"], "previous": {} }),
        );
        updated["event_id"] = json!("nope");
        updated["lead"].as_object_mut().unwrap().remove("version");
        let problems = check_body(Some("lead.created"), &updated);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("X-Mega-Event")));
        assert!(problems.iter().any(|p| p.contains("event_id")));
        assert!(problems.iter().any(|p| p == "lead.version is missing"));
        assert!(problems.iter().any(|p| p.contains("previous")));
        assert_eq!(
            check_body(None, &json!({ "event": "lead.merged" })),
            ["event `lead.merged` is not in the catalogue"]
        );
        let exhausted = body("delivery.exhausted", json!({ "lead": null, "webhook": {} }));
        assert_eq!(
            check_body(Some("delivery.exhausted"), &exhausted),
            ["delivery is missing"]
        );
    }
}
