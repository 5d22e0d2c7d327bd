//! `leadbase receive`: verifies deliveries like a receiver should and prints them.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

use leadbase::delivery::signing::mega_signature;
use leadbase::domain::time::Timestamp;
use serde_json::{Value, json};

use crate::helpers::*;

const SECRET: &str = "mega_whsec_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

struct Receiver {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    url: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn receiver() -> Receiver {
    let mut child = Command::new(binary())
        .env_remove("RUST_LOG")
        .args(["receive", "--secret", SECRET, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let banner = lines.next().expect("banner").expect("utf-8");
    let url = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("address")
        .to_string();
    Receiver { child, lines, url }
}

fn post(url: &str, headers: &[(&str, String)], body: &str) -> u16 {
    let mut req = agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send(body).expect("exchange").status().as_u16()
}

#[test]
fn the_receiver_prints_verified_events_and_refuses_the_rest() {
    let mut rx = receiver();
    let url = format!("{}hook", rx.url);
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
    assert_eq!(post(&url, &signed(now, SECRET), body), 200);
    let line: Value = serde_json::from_str(&rx.lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(line["verified"], true);
    assert_eq!(line["delivery"], "d-1");
    assert_eq!(line["body"]["lead"]["id"], "x");

    assert_eq!(
        post(&url, &signed(now, "mega_whsec_wrong"), body),
        401,
        "bad signature"
    );
    assert_eq!(
        post(&url, &signed(now - 301, SECRET), body),
        400,
        "stale timestamp"
    );
    assert_eq!(
        post(&url, &signed(now, SECRET)[1..], body),
        400,
        "no timestamp"
    );
    let mut tampered = signed(now, SECRET);
    tampered[1].1.replace_range(10..11, "0");
    assert_eq!(post(&url, &tampered, body), 401);
    // During a rotation the previous secret, in its own header, verifies too.
    let mut rotated = signed(now, "mega_whsec_new");
    rotated.push((
        "x-mega-signature-previous",
        mega_signature(SECRET, now, body.as_bytes()),
    ));
    assert_eq!(post(&url, &rotated, body), 200);
}

#[test]
fn a_real_delivery_verifies_at_the_receiver() {
    let app = spawn_with(|c| {
        c.webhooks.https_only = false;
        c.webhooks.allowed_private_cidrs = vec!["127.0.0.0/8".into()];
    });
    let key = app.tenant_with_key("Acme");
    // The receiver needs the webhook's secret, the webhook needs the receiver's address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let res = app
        .api("POST", "/api/agents/crm/lead-webhooks", &key)
        .json(&json!({ "url": format!("http://127.0.0.1:{port}/leads") }))
        .send();
    assert_eq!(res.status, 201, "{}", res.text);
    let secret = res.json()["secret"].as_str().unwrap().to_string();
    let mut child = Command::new(binary())
        .args([
            "receive",
            "--secret",
            &secret,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    lines.next().expect("banner").unwrap();
    let created = app
        .api("POST", "/api/agents/crm/leads", &key)
        .json(&json!({ "contact_name": "Ada", "contact_email": "ada@example.com" }))
        .send();
    assert_eq!(created.status, 201);
    let line: Value = serde_json::from_str(&lines.next().expect("an event").unwrap()).unwrap();
    assert_eq!(line["verified"], true);
    assert_eq!(line["event"], "lead.created");
    assert_eq!(line["body"]["lead"]["id"], created.json()["lead"]["id"]);
    let _ = child.kill();
    let _ = child.wait();
}
