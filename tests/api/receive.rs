//! `leadbase receive`: verifies deliveries like a receiver should and prints them.

use std::time::Duration;

use leadbase::delivery::signing::mega_signature;
use leadbase::domain::time::Timestamp;
use serde_json::{Value, json};

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(10);
const SECRET: &str = "mega_whsec_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[test]
fn the_receiver_prints_verified_events_and_refuses_the_rest() {
    let rx = receive(SECRET, "127.0.0.1:0");
    let body =
        r#"{"event":"lead.created","delivered_at":"2026-07-02T14:04:59.000Z","lead":{"id":"x"}}"#;
    let now = Timestamp::now().seconds();
    let signed = |ts: i64, secret: &str| {
        vec![
            ("x-mega-timestamp", ts.to_string()),
            (
                "x-mega-signature",
                mega_signature(secret, ts, body.as_bytes()),
            ),
            ("x-mega-delivery", "d-1".to_string()),
            ("x-mega-event", "lead.created".to_string()),
        ]
    };
    assert_eq!(rx.deliver(&signed(now, SECRET), body).status, 200);
    let line: Value = serde_json::from_str(&rx.next_line(WAIT).expect("an event")).unwrap();
    assert_eq!(line["verified"], true);
    assert_eq!(line["delivery"], "d-1");
    assert_eq!(line["body"]["lead"]["id"], "x");
    let problems = line["problems"].as_array().expect("problems");
    assert!(
        problems.iter().any(|p| p == "event_id is not a UUID"),
        "a schema-3 style body is accepted and its gaps named: {line}"
    );

    assert_eq!(
        rx.deliver(&signed(now, "mega_whsec_wrong"), body).status,
        401,
        "bad signature"
    );
    assert_eq!(
        rx.deliver(&signed(now - 301, SECRET), body).status,
        400,
        "stale timestamp"
    );
    assert_eq!(
        rx.deliver(&signed(now, SECRET)[1..], body).status,
        400,
        "no timestamp"
    );
    let mut tampered = signed(now, SECRET);
    // Change one hex digit of the signature (to another digit, whatever it was).
    let digit = if &tampered[1].1[10..11] == "0" {
        "1"
    } else {
        "0"
    };
    tampered[1].1.replace_range(10..11, digit);
    assert_eq!(rx.deliver(&tampered, body).status, 401);
    // During a rotation the previous secret, in its own header, verifies too.
    let mut rotated = signed(now, "mega_whsec_new");
    rotated.push((
        "x-mega-signature-previous",
        mega_signature(SECRET, now, body.as_bytes()),
    ));
    assert_eq!(rx.deliver(&rotated, body).status, 200);
}

#[test]
fn a_real_delivery_verifies_at_the_receiver() {
    let app = TestApp::spawn_with(|c| {
        c.webhooks.https_only = false;
        c.webhooks.allowed_private_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    });
    let key = app.tenant_with_key("Acme");
    // The receiver needs the webhook's secret, the webhook needs the receiver's address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let created = app
        .post_webhook(
            &key,
            &json!({ "url": format!("http://127.0.0.1:{port}/leads") }),
        )
        .expect(201);
    let secret = created["secret"].as_str().unwrap().to_string();
    let rx = receive(&secret, &format!("127.0.0.1:{port}"));
    let created = app.create_lead(
        &key,
        json!({ "contact_name": "Ada", "contact_email": "ada@example.com" }),
    );
    let line: Value = serde_json::from_str(&rx.next_line(WAIT).expect("an event")).unwrap();
    assert_eq!(line["verified"], true);
    assert_eq!(line["event"], "lead.created");
    assert_eq!(line["body"]["lead"]["id"], created["id"]);
    assert_eq!(line["event_id"], line["body"]["event_id"]);
    assert!(line["event_id"].is_string(), "{line}");
    assert_eq!(
        line["problems"],
        json!([]),
        "the sender's body is what the spec says"
    );
}

/// A secret on the command line is readable by every local user (`ps`, `/proc/<pid>/cmdline`).
#[test]
fn the_readme_passes_the_receiver_its_secret_in_the_environment() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let on_command_line: Vec<&str> = readme
        .lines()
        .filter(|line| line.contains("leadbase receive") && line.contains("--secret"))
        .collect();
    assert!(on_command_line.is_empty(), "{on_command_line:?}");
    assert!(readme.contains("MEGA_WEBHOOK_SECRET"));
}
