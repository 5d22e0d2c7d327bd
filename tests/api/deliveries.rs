//! Webhook deliveries (spec §5, §6, §10) against a real HTTPS receiver on 127.0.0.1: the
//! payload and its headers, both signature schemes (checked with HMAC code written here, not
//! the server's), which events reach which webhook, retries and their schedule, 410, redirects,
//! Retry-After, secret rotation, deletion, the delivery log, redelivery, recovery, the test
//! event, isolation of a slow receiver, and the connect-time SSRF guard.
//!
//! Nothing leaves the machine: every URL is 127.0.0.1, or `hook.test` resolved by a test lookup.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use leadbase::Options;
use leadbase::delivery::signing::{standard_secret, verify_mega, verify_standard};
use leadbase::domain::time::Timestamp;
use serde_json::{Value, json};
use sha2::Sha256;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::*;

/// The lead snapshot of §6, with §11.2's additions.
const LEAD_FIELDS: [&str; 18] = [
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

const DELIVERY_FIELDS: [&str; 9] = [
    "id",
    "event",
    "status",
    "attempts",
    "response_status",
    "latency_ms",
    "next_attempt_at",
    "created_at",
    "delivered_at",
];

const ATTEMPT_FIELDS: [&str; 6] = [
    "number",
    "started_at",
    "latency_ms",
    "response_status",
    "error",
    "response_body_excerpt",
];

// ---------------------------------------------------------------------------------------------
// Signatures, computed here from the spec's recipes.

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `X-Mega-Signature`: `sha256=` + lowercase hex HMAC-SHA256, key = the secret string,
/// message = `{timestamp}.{raw body}`.
fn mega_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &message))
    )
}

/// One `webhook-signature` entry as a Standard Webhooks receiver computes it: the receiver is
/// configured with `whsec_` + base64(secret string); the key is the base64-decoding of the part
/// after `whsec_`; the signed content is `{webhook-id}.{webhook-timestamp}.{body}`.
fn standard_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let whsec = format!("whsec_{}", STANDARD.encode(secret.as_bytes()));
    let key = STANDARD
        .decode(whsec.strip_prefix("whsec_").expect("prefix"))
        .expect("base64");
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &content)))
}

fn now_secs() -> i64 {
    Timestamp::now().seconds()
}

/// `X-Mega-Timestamp` is the Unix second of this attempt: within the 5-minute tolerance of now,
/// and within a second or two of when the request arrived.
fn assert_fresh_timestamp(req: &Recorded) -> String {
    let raw = req.must("x-mega-timestamp").to_string();
    let ts: i64 = raw
        .parse()
        .unwrap_or_else(|_| panic!("X-Mega-Timestamp `{raw}` is not Unix seconds"));
    assert!(
        (now_secs() - ts).abs() <= 300,
        "X-Mega-Timestamp {ts} is not within 5 minutes of now"
    );
    assert!(
        (ts * 1000 - req.unix_ms).abs() <= 2_000,
        "X-Mega-Timestamp {ts} is not the time of this attempt (arrived at {} ms)",
        req.unix_ms
    );
    raw
}

/// Both signature schemes verify for `current` (and `previous`, during an overlap), and nothing
/// else is signed.
fn assert_signed(req: &Recorded, current: &str, previous: Option<&str>) {
    let ts = assert_fresh_timestamp(req);
    assert_eq!(
        req.must("x-mega-signature"),
        mega_signature(current, &ts, &req.body),
        "X-Mega-Signature is HMAC-SHA256 of `{{timestamp}}.{{body}}` with the newest secret"
    );
    assert_eq!(
        req.header("x-mega-signature-previous").map(String::from),
        previous.map(|p| mega_signature(p, &ts, &req.body)),
        "X-Mega-Signature-Previous signs with the previous secret during an overlap, else is absent"
    );
    let id = req.must("webhook-id");
    assert_eq!(
        id,
        req.must("x-mega-delivery"),
        "webhook-id == X-Mega-Delivery"
    );
    assert_eq!(req.must("webhook-timestamp"), ts, "webhook-timestamp");
    let got: BTreeSet<&str> = req.must("webhook-signature").split_whitespace().collect();
    let want: BTreeSet<String> = std::iter::once(current)
        .chain(previous)
        .map(|s| standard_signature(s, id, &ts, &req.body))
        .collect();
    assert_eq!(
        got,
        want.iter().map(String::as_str).collect(),
        "webhook-signature holds one v1 entry per live secret"
    );
}

fn is_iso_ms(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 24 && s.ends_with('Z') && OffsetDateTime::parse(s, &Rfc3339).is_ok()
    })
}

// ---------------------------------------------------------------------------------------------

#[test]
fn a_created_lead_arrives_as_lead_created_with_the_documented_payload_and_headers() {
    let env = DeliveryEnv::start();
    let res = env.app.post_custom_field(
        &env.key.tenant,
        &json!({ "slug": "budget", "name": "Budget", "type": "number" }),
    );
    assert_eq!(res.status, 201, "{}", res.text);
    let hook = env.hook("/created", json!({}));

    let lead = env.lead(json!({
        "contact_name": "Ada Lovelace",
        "contact_phone": "(206) 555-0123",
        "contact_email": " Ada@Example.COM ",
        "source_platform": "google_ads",
        "source_type": "form",
        "lead_line": "buyer",
        "custom_fields": { "budget": 250000 },
    }));
    let req = env.rx.wait_for("/created", 1, ARRIVE).remove(0);

    assert_eq!(req.method, "POST");
    let body = req.json();
    assert_eq!(
        keys(&body),
        set_of(&["event", "event_id", "occurred_at", "delivered_at", "lead"]),
        "{body}"
    );
    assert_eq!(body["event"], "lead.created");
    assert!(is_iso_ms(&body["occurred_at"]), "{}", body["occurred_at"]);
    assert_ne!(body["event_id"].as_str(), Some(req.delivery_id()));
    assert!(is_iso_ms(&body["delivered_at"]), "{}", body["delivered_at"]);
    let sent = &body["lead"];
    assert_eq!(keys(sent), set_of(&LEAD_FIELDS), "{sent}");
    for field in [
        "id",
        "contact_name",
        "contact_phone",
        "contact_email",
        "source_platform",
        "source_type",
        "created_at",
        "updated_at",
    ] {
        assert_eq!(sent[field], lead[field], "lead.{field}");
    }
    assert_eq!(sent["contact_phone"], "+12065550123");
    assert_eq!(sent["contact_email"], "ada@example.com");
    assert_eq!(sent["source_platform"], "google_ads");
    assert_eq!(sent["source_type"], "form");
    assert_eq!(sent["lead_line"], "buyer");
    assert_eq!(
        sent["current_stage"],
        json!({ "slug": "new", "name": lead["current_stage"]["name"] }),
        "current_stage is {{slug, name}}"
    );
    assert_eq!(
        sent["custom_fields"],
        json!({ "budget": 250000 }),
        "custom_fields without lead_line"
    );

    // Headers.
    assert_eq!(req.must("content-type"), "application/json");
    let agent = req.must("user-agent");
    assert!(agent.starts_with("leadbase/"), "User-Agent {agent}");
    assert_eq!(req.must("x-mega-event"), "lead.created");
    let id = req.delivery_id();
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|_| panic!("X-Mega-Delivery {id}"));
    assert_eq!(uuid.get_version_num(), 7, "a UUIDv7: {id}");
    assert_eq!(req.must("webhook-id"), id);
    assert_signed(&req, &hook.secret, None);

    // What a receiver library does, agreeing with the hand computation above.
    let ts = req.must("x-mega-timestamp");
    assert_eq!(
        verify_mega(
            &hook.secret,
            Some(ts),
            &[req.must("x-mega-signature")],
            &req.body,
            now_secs()
        ),
        Ok(())
    );
    let mut tampered = req.body.clone();
    tampered[0] = b' ';
    assert_ne!(
        req.must("x-mega-signature"),
        mega_signature(&hook.secret, ts, &tampered),
        "the signature covers the raw body"
    );

    // The delivery log knows it by the same id.
    let logged = env.settled(&hook, id, "delivered");
    assert_eq!(logged["delivery"]["event"], "lead.created");
}

#[test]
fn standard_webhooks_headers_verify_with_the_standard_webhooks_recipe() {
    let env = DeliveryEnv::start();
    let hook = env.hook("/std", json!({}));
    env.lead(json!({ "contact_email": "std@example.com" }));
    let req = env.rx.wait_for("/std", 1, ARRIVE).remove(0);

    let id = req.must("webhook-id");
    let ts = req.must("webhook-timestamp");
    assert_eq!(id, req.must("x-mega-delivery"));
    assert_eq!(ts, req.must("x-mega-timestamp"));
    let header = req.must("webhook-signature");
    let entries: Vec<&str> = header.split(' ').collect();
    assert_eq!(entries.len(), 1, "one live secret, one entry: {header}");
    assert_eq!(
        entries[0],
        standard_signature(&hook.secret, id, ts, &req.body)
    );
    assert!(entries[0].starts_with("v1,"));

    // The server's own helpers agree: `whsec_` + base64(secret) verifies the headers.
    let whsec = standard_secret(&hook.secret);
    assert_eq!(
        whsec,
        format!("whsec_{}", STANDARD.encode(hook.secret.as_bytes()))
    );
    assert_eq!(
        verify_standard(
            &whsec,
            Some(id),
            Some(ts),
            Some(header),
            &req.body,
            now_secs()
        ),
        Ok(())
    );
    assert!(
        verify_standard(
            &standard_secret("mega_whsec_someone_else"),
            Some(id),
            Some(ts),
            Some(header),
            &req.body,
            now_secs()
        )
        .is_err()
    );
}

#[test]
fn a_delivery_s_first_attempt_starts_within_moments_of_the_commit() {
    let env = DeliveryEnv::start();
    env.hook("/prompt", json!({}));
    let mut lags = Vec::new();
    for i in 0..5 {
        let sent = Instant::now();
        env.lead(json!({ "contact_email": format!("prompt{i}@example.com") }));
        let acked = Instant::now();
        let req = env.rx.wait_for("/prompt", i + 1, ARRIVE).remove(i);
        let lag = req.at.saturating_duration_since(acked);
        assert!(
            lag < Duration::from_secs(1),
            "lead {i}: the first attempt came {lag:?} after the 201"
        );
        lags.push(req.at.duration_since(sent));
    }
    lags.sort();
    // The dispatcher also polls once a second; a commit must wake it, not wait for the poll.
    assert!(
        lags[2] < Duration::from_millis(250),
        "median time from POST to arrival: {:?} (all: {lags:?})",
        lags[2]
    );
}

#[test]
fn a_merge_or_a_patch_arrives_as_lead_updated_with_changed_fields() {
    let env = DeliveryEnv::start();
    let updates = env.hook("/updates", json!({ "event_types": ["lead.updated"] }));
    let creates = env.hook("/creates", json!({ "event_types": ["lead.created"] }));
    let lead = env.lead(json!({ "contact_name": "Ada", "contact_email": "ada@example.com" }));
    let id = str_of(&lead["id"]);
    env.rx.wait_for("/creates", 1, ARRIVE);

    // A merge: the same email again with a changed name.
    let merged = env.push(json!({ "contact_name": "Ada L.", "contact_email": "ada@example.com" }));
    assert_eq!(merged["merged"], true, "{merged}");
    let req = env.rx.wait_for("/updates", 1, ARRIVE).remove(0);
    assert_eq!(req.must("x-mega-event"), "lead.updated");
    assert_signed(&req, &updates.secret, None);
    let body = req.json();
    assert_eq!(
        keys(&body),
        set_of(&[
            "event",
            "event_id",
            "occurred_at",
            "delivered_at",
            "lead",
            "changed_fields",
            "previous"
        ]),
        "{body}"
    );
    assert_eq!(body["event"], "lead.updated");
    assert_eq!(body["changed_fields"], json!(["contact_name"]));
    assert_eq!(body["previous"], json!({ "contact_name": "Ada" }));
    assert_eq!(keys(&body["lead"]), set_of(&LEAD_FIELDS));
    assert_eq!(body["lead"]["id"], id.as_str());
    assert_eq!(body["lead"]["contact_name"], "Ada L.");
    assert_eq!(body["lead"]["updated_at"], merged["lead"]["updated_at"]);

    // A PATCH.
    env.app
        .update_lead(&env.key, &id, json!({ "score": 42, "status": "won" }));
    let req = env.rx.wait_for("/updates", 2, ARRIVE).remove(1);
    assert_signed(&req, &updates.secret, None);
    let body = req.json();
    assert_eq!(body["event"], "lead.updated");
    assert_eq!(body["lead"]["id"], id.as_str());
    let changed: BTreeSet<&str> = body["changed_fields"]
        .as_array()
        .unwrap_or_else(|| panic!("changed_fields: {body}"))
        .iter()
        .map(|v| v.as_str().expect("field name"))
        .collect();
    assert_eq!(changed, BTreeSet::from(["score", "status"]), "{body}");
    assert_ne!(
        req.delivery_id(),
        env.rx.requests("/updates")[0].delivery_id(),
        "each event is its own delivery"
    );

    // Every event was queued in its own commit: the logs hold all there will be, and once
    // those deliveries are final the receiver has seen every attempt.
    let queued: Vec<Value> = env
        .all_final(&creates)
        .iter()
        .map(|d| d["event"].clone())
        .collect();
    assert_eq!(
        queued,
        [json!("lead.created")],
        "a webhook subscribed to lead.created only gets no lead.updated"
    );
    let queued: Vec<Value> = env
        .all_final(&updates)
        .iter()
        .map(|d| d["event"].clone())
        .collect();
    assert_eq!(
        queued,
        [json!("lead.updated"), json!("lead.updated")],
        "a webhook subscribed to lead.updated only gets no lead.created"
    );
    let creates = env.rx.requests("/creates");
    assert_eq!(
        creates.len(),
        1,
        "a webhook subscribed to lead.created only gets no lead.updated"
    );
    assert_eq!(creates[0].must("x-mega-event"), "lead.created");
    assert_eq!(
        env.rx.count("/updates"),
        2,
        "a webhook subscribed to lead.updated only gets no lead.created"
    );
}

#[test]
fn bulk_imports_emit_no_deliveries() {
    let env = DeliveryEnv::start();
    let all = env.hook(
        "/all",
        json!({ "event_types": ["lead.created", "lead.updated"] }),
    );
    env.lead(json!({ "contact_name": "Ada", "contact_email": "ada@example.com" }));
    env.rx.wait_for("/all", 1, ARRIVE);

    let res = env.app.bulk(
        &env.key,
        &json!({ "leads": [
            { "row_ref": "new", "contact_email": "new@example.com" },
            { "row_ref": "merge", "contact_email": "ada@example.com", "contact_name": "Changed" },
        ] }),
    );
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["summary"]["created"], 1, "{}", res.text);
    assert_eq!(res.json()["summary"]["updated"], 1, "{}", res.text);
    // Anything the import queued would be in the log already, written in the import's commit.
    let log = env.deliveries(&all, "");
    assert_eq!(
        log["data"].as_array().map(Vec::len),
        Some(1),
        "the import queued something: {log}"
    );

    // A sentinel event after the import, the last delivery of this webhook.
    let sentinel = env.lead(json!({ "contact_email": "sentinel@example.com" }));
    env.rx.wait_for("/all", 2, ARRIVE);
    assert_eq!(env.all_final(&all).len(), 2);
    let got = env.rx.requests("/all");
    let events: Vec<(String, Value)> = got
        .iter()
        .map(|r| (str_of(&r.json()["event"]), r.json()["lead"]["id"].clone()))
        .collect();
    assert_eq!(got.len(), 2, "the import sent something: {events:?}");
    assert_eq!(got[1].json()["lead"]["id"], sentinel["id"]);
}

#[test]
fn inactive_unsubscribed_and_other_tenants_webhooks_get_nothing_sent() {
    let env = DeliveryEnv::start();
    let on = env.hook("/on", json!({}));
    let off = env.hook("/off", json!({ "is_active": false }));
    let updates_only = env.hook("/updates-only", json!({ "event_types": ["lead.updated"] }));
    let turned_off = env.hook("/turned-off", json!({}));
    let res = env
        .app
        .patch_webhook(&env.key, &turned_off.id, &json!({ "is_active": false }));
    assert_eq!(res.status, 200, "{}", res.text);
    let other = env.app.tenant_with_key("Globex");
    let globex = env.hook_for(&other, "/globex", json!({}));

    env.lead(json!({ "contact_email": "ada@example.com" }));
    // Queuing happens in the lead's commit: what was not queued by now never will be.
    for (key, hook, path) in [
        (&env.key, &updates_only, "/updates-only"),
        (&other, &globex, "/globex"),
    ] {
        env.assert_nothing_queued(key, hook, &format!("{path} got a delivery"));
        assert_eq!(env.rx.count(path), 0, "{path} got a delivery");
    }
    // The inactive ones hold it (spec §13) and send nothing.
    for (hook, path) in [(&off, "/off"), (&turned_off, "/turned-off")] {
        let log = env.deliveries(hook, "");
        assert_eq!(
            log["data"].as_array().map(Vec::len),
            Some(1),
            "{path}: {log}"
        );
        assert_eq!(log["data"][0]["status"], "held", "{path}: {log}");
    }
    env.rx.wait_for("/on", 1, ARRIVE);
    assert_eq!(env.all_final(&on).len(), 1);
    assert_eq!(env.rx.count("/on"), 1);
    assert_eq!(env.rx.count("/off") + env.rx.count("/turned-off"), 0);
}

#[test]
fn a_failing_receiver_gets_exactly_retry_attempts_retries_each_freshly_signed() {
    let env = DeliveryEnv::start();
    env.rx.set("/fail", Behaviour::status(500).body("nope"));
    let hook = env.hook("/fail", json!({ "retry_attempts": 2 }));
    env.lead(json!({ "contact_email": "ada@example.com" }));

    let reqs = env.rx.wait_for("/fail", 3, Duration::from_secs(10));
    let id = reqs[0].delivery_id().to_string();
    let mut delivered_at = Vec::new();
    let mut signatures = BTreeSet::new();
    for req in &reqs {
        assert_eq!(
            req.delivery_id(),
            id,
            "X-Mega-Delivery is the same on every retry"
        );
        assert_signed(req, &hook.secret, None);
        delivered_at.push(str_of(&req.json()["delivered_at"]));
        signatures.insert(req.must("x-mega-signature").to_string());
    }
    assert!(
        delivered_at.windows(2).all(|w| w[0] < w[1]),
        "each attempt rebuilds the body: {delivered_at:?}"
    );
    assert_eq!(signatures.len(), 3, "each attempt is signed afresh");
    for pair in reqs.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(850) && gap < Duration::from_secs(3),
            "retry after {gap:?}; the schedule says 1 s ±10 %"
        );
    }

    // Failed is final: no attempt follows it, so the receiver's count is settled.
    let out = env.settled(&hook, &id, "failed");
    assert_eq!(
        env.rx.count("/fail"),
        3,
        "retry_attempts 2: one attempt and exactly two retries"
    );

    let delivery = &out["delivery"];
    assert_eq!(delivery["attempts"], 3, "{out}");
    assert_eq!(delivery["response_status"], 500);
    assert!(delivery["latency_ms"].is_u64(), "{out}");
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    assert_eq!(delivery["delivered_at"], Value::Null);
    let attempts = out["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 3, "{out}");
    for (i, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt["number"], i + 1, "{attempt}");
        assert_eq!(attempt["response_status"], 500, "{attempt}");
        assert_eq!(attempt["error"], "http_status", "{attempt}");
        assert!(attempt["latency_ms"].is_u64(), "{attempt}");
        assert!(is_iso_ms(&attempt["started_at"]), "{attempt}");
        assert_eq!(attempt["response_body_excerpt"], "nope", "{attempt}");
    }
    assert!(
        attempts
            .windows(2)
            .all(|w| str_of(&w[0]["started_at"]) < str_of(&w[1]["started_at"])),
        "{out}"
    );

    let listed = env.deliveries(&hook, "");
    assert_eq!(
        listed["data"][0], *delivery,
        "the list shows the same delivery"
    );
    let webhook = env.webhook(&hook);
    assert_eq!(webhook["consecutive_failures"], 3, "{webhook}");
    assert_eq!(webhook["last_delivery_status"], 500, "{webhook}");
    assert!(is_iso_ms(&webhook["last_delivery_at"]), "{webhook}");
    assert_eq!(webhook["is_active"], true, "{webhook}");
    assert_eq!(webhook["disabled_reason"], Value::Null, "{webhook}");
}

#[test]
fn a_410_turns_the_webhook_off_without_retrying() {
    let env = DeliveryEnv::start();
    env.rx.set("/gone", Behaviour::status(410));
    let hook = env.hook("/gone", json!({ "retry_attempts": 3 }));
    env.lead(json!({ "contact_email": "ada@example.com" }));
    let req = env.rx.wait_for("/gone", 1, ARRIVE).remove(0);

    let out = env.settled(&hook, req.delivery_id(), "failed");
    assert_eq!(out["delivery"]["attempts"], 1, "{out}");
    assert_eq!(out["delivery"]["response_status"], 410, "{out}");
    assert_eq!(out["attempts"][0]["error"], "http_status", "{out}");
    let webhook = eventually("webhook turned off", ARRIVE, || {
        let webhook = env.webhook(&hook);
        if webhook["is_active"] == false {
            Ok(webhook)
        } else {
            Err(webhook.to_string())
        }
    });
    let reason = str_of(&webhook["disabled_reason"]);
    assert!(!reason.is_empty(), "{webhook}");
    assert_eq!(webhook["last_delivery_status"], 410, "{webhook}");

    // No retry (the one delivery is final), and a turned-off webhook sends nothing new: it
    // holds it (spec §13) until it is turned back on.
    env.lead(json!({ "contact_email": "grace@example.com" }));
    let log = env.deliveries(&hook, "");
    assert_eq!(log["data"].as_array().map(Vec::len), Some(2), "{log}");
    assert_eq!(log["data"][0]["status"], "held", "{log}");
    assert_eq!(log["data"][0]["attempts"], 0, "{log}");
    assert_eq!(log["data"][1]["status"], "failed", "{log}");
    assert_eq!(log["data"][1]["attempts"], 1, "{log}");
    assert_eq!(env.rx.count("/gone"), 1);
}

#[test]
fn a_redirect_is_never_followed_and_is_recorded_as_redirect() {
    let env = DeliveryEnv::start();
    env.rx.set(
        "/moved",
        Behaviour::status(302).header("Location", &env.rx.url("/target")),
    );
    let hook = env.hook("/moved", json!({ "retry_attempts": 0 }));
    env.lead(json!({ "contact_email": "ada@example.com" }));
    let req = env.rx.wait_for("/moved", 1, ARRIVE).remove(0);

    let out = env.settled(&hook, req.delivery_id(), "failed");
    let attempt = &out["attempts"][0];
    assert_eq!(attempt["error"], "redirect", "{out}");
    assert_eq!(attempt["response_status"], 302, "{out}");
    assert_eq!(out["delivery"]["response_status"], 302, "{out}");
    // A followed redirect would have been requested within the attempt, which is over.
    assert_eq!(out["delivery"]["attempts"], 1, "{out}");
    assert_eq!(env.rx.count("/target"), 0, "the redirect was followed");
    assert_eq!(env.rx.count("/moved"), 1);
}

#[test]
fn retry_after_on_503_and_429_delays_the_next_attempt() {
    let env = DeliveryEnv::start();
    for path in ["/busy", "/limited"] {
        let status = if path == "/busy" { 503 } else { 429 };
        env.rx.script(
            path,
            vec![
                Behaviour::status(status).header("Retry-After", "3"),
                Behaviour::status(200),
            ],
        );
    }
    let busy = env.hook("/busy", json!({ "retry_attempts": 2 }));
    let limited = env.hook("/limited", json!({ "retry_attempts": 2 }));
    env.lead(json!({ "contact_email": "ada@example.com" }));

    for (path, hook) in [("/busy", &busy), ("/limited", &limited)] {
        let reqs = env.rx.wait_for(path, 2, Duration::from_secs(10));
        let gap = reqs[1].at.duration_since(reqs[0].at);
        assert!(
            gap >= Duration::from_millis(2_900) && gap < Duration::from_secs(6),
            "{path}: the retry came {gap:?} after `Retry-After: 3` (schedule 1 s)"
        );
        assert_eq!(reqs[1].delivery_id(), reqs[0].delivery_id());
        assert_signed(&reqs[1], &hook.secret, None);
        let out = env.settled(hook, reqs[0].delivery_id(), "delivered");
        assert_eq!(out["delivery"]["attempts"], 2, "{out}");
        assert_eq!(out["delivery"]["response_status"], 200, "{out}");
    }
}

#[test]
fn a_connection_closed_without_an_answer_is_a_failed_attempt() {
    let env = DeliveryEnv::start();
    env.rx.set("/hangup", Behaviour::Close);
    let hook = env.hook("/hangup", json!({ "retry_attempts": 1 }));
    env.lead(json!({ "contact_email": "ada@example.com" }));
    let reqs = env.rx.wait_for("/hangup", 2, Duration::from_secs(8));
    // Failed is final: no attempt follows it, so the receiver's count is settled.
    let out = env.settled(&hook, reqs[0].delivery_id(), "failed");
    assert_eq!(
        env.rx.count("/hangup"),
        2,
        "retry_attempts 1: two POSTs in all, no hidden retries"
    );
    let attempts = out["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{out}");
    for attempt in attempts {
        assert_eq!(attempt["response_status"], Value::Null, "{attempt}");
        let error = str_of(&attempt["error"]);
        assert!(
            ["connect", "timeout", "tls"].contains(&error.as_str()),
            "{attempt}"
        );
    }
}

#[test]
fn rotation_signs_with_both_secrets_during_the_overlap_and_only_the_new_one_after() {
    let env = DeliveryEnv::start();
    let hook = env.hook("/rot", json!({}));
    let old = hook.secret.clone();
    let rotate = |body: Option<Value>| -> String {
        let res = env.app.rotate_secret(&env.key, &hook.id, body.as_ref());
        assert_eq!(res.status, 200, "{}", res.text);
        str_of(&res.json()["secret"])
    };

    // Default overlap (24 h): the new secret signs, the old one alongside.
    let new = rotate(None);
    assert_ne!(new, old);
    env.lead(json!({ "contact_email": "ada@example.com" }));
    let req = env.rx.wait_for("/rot", 1, ARRIVE).remove(0);
    assert_signed(&req, &new, Some(&old));
    let ts = req.must("x-mega-timestamp");
    assert_ne!(
        req.must("x-mega-signature"),
        mega_signature(&old, ts, &req.body),
        "X-Mega-Signature is the new secret's"
    );
    assert_eq!(req.must("webhook-signature").split(' ').count(), 2);
    for secret in [&old, &new] {
        assert_eq!(
            verify_standard(
                &standard_secret(secret),
                req.header("webhook-id"),
                Some(ts),
                req.header("webhook-signature"),
                &req.body,
                now_secs()
            ),
            Ok(()),
            "a receiver holding either secret verifies"
        );
    }

    // No overlap: only the newest secret signs.
    let newest = rotate(Some(json!({ "overlap_hours": 0 })));
    env.lead(json!({ "contact_email": "grace@example.com" }));
    let req = env.rx.wait_for("/rot", 2, ARRIVE).remove(1);
    assert_signed(&req, &newest, None);
    assert_eq!(req.header("x-mega-signature-previous"), None);
    assert_eq!(req.must("webhook-signature").split(' ').count(), 1);
    assert!(
        verify_standard(
            &standard_secret(&new),
            req.header("webhook-id"),
            req.header("webhook-timestamp"),
            req.header("webhook-signature"),
            &req.body,
            now_secs()
        )
        .is_err(),
        "the replaced secret no longer verifies"
    );
}

#[test]
fn deleting_a_webhook_cancels_its_pending_deliveries() {
    let env = DeliveryEnv::on_demand();
    env.rx.set("/doomed", Behaviour::status(500));
    let hook = env.hook("/doomed", json!({ "retry_attempts": 5 }));
    env.lead(json!({ "contact_email": "ada@example.com" }));
    assert_eq!(env.app.deliver_due().len(), 1, "the first attempt");
    let req = env.rx.wait_for("/doomed", 1, ARRIVE).remove(0);

    let res = env.app.delete_webhook(&env.key, &hook.id);
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json(), json!({ "id": hook.id, "deleted": true }));

    // Well past the retry (due 1 s after the failure), nothing is attempted.
    env.app.advance_clock(60_000);
    assert!(
        env.app.deliver_due().is_empty(),
        "a deleted webhook's retries must stop"
    );
    assert_eq!(env.rx.count("/doomed"), 1);
    // The webhook is gone everywhere, its delivery log included.
    for res in [
        env.app.list_deliveries(&env.key, &hook.id, ""),
        env.app.get_delivery(&env.key, &hook.id, req.delivery_id()),
    ] {
        res.assert_error(404, "not_found_error");
    }
}

#[test]
fn the_delivery_log_lists_newest_first_filters_by_status_and_pages() {
    let env = DeliveryEnv::start();
    let hook = env.hook("/log", json!({ "retry_attempts": 0 }));
    let big: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();

    let mut ids = Vec::new();
    for (i, fails) in [false, true, false].into_iter().enumerate() {
        env.rx.set(
            "/log",
            if fails {
                Behaviour::status(500).body(big.clone())
            } else {
                Behaviour::status(200).body("fine")
            },
        );
        env.lead(json!({ "contact_email": format!("lead{i}@example.com") }));
        let id = env.rx.wait_for("/log", i + 1, ARRIVE)[i]
            .delivery_id()
            .to_string();
        env.settled(&hook, &id, if fails { "failed" } else { "delivered" });
        ids.push(id);
    }
    let (d1, d2, d3) = (&ids[0], &ids[1], &ids[2]);

    let page_ids = |query: &str| -> (Vec<String>, Value) {
        let out = env.deliveries(&hook, query);
        assert_eq!(keys(&out), set_of(&["data", "next_cursor"]), "{out}");
        let ids = out["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|d| str_of(&d["id"]))
            .collect();
        (ids, out["next_cursor"].clone())
    };

    let all = env.deliveries(&hook, "");
    let data = all["data"].as_array().expect("data");
    assert_eq!(
        data.iter().map(|d| str_of(&d["id"])).collect::<Vec<_>>(),
        [d3.clone(), d2.clone(), d1.clone()],
        "newest first"
    );
    assert_eq!(all["next_cursor"], Value::Null);
    for (d, status, code) in [
        (&data[0], "delivered", 200),
        (&data[1], "failed", 500),
        (&data[2], "delivered", 200),
    ] {
        assert_eq!(keys(d), set_of(&DELIVERY_FIELDS), "{d}");
        assert_eq!(d["event"], "lead.created", "{d}");
        assert_eq!(d["status"], status, "{d}");
        assert_eq!(d["attempts"], 1, "{d}");
        assert_eq!(d["response_status"], code, "{d}");
        assert!(d["latency_ms"].is_u64(), "{d}");
        assert_eq!(d["next_attempt_at"], Value::Null, "{d}");
        assert!(is_iso_ms(&d["created_at"]), "{d}");
        assert_eq!(is_iso_ms(&d["delivered_at"]), status == "delivered", "{d}");
    }
    assert!(str_of(&data[0]["created_at"]) >= str_of(&data[1]["created_at"]));
    assert!(str_of(&data[1]["created_at"]) >= str_of(&data[2]["created_at"]));

    // Filters.
    assert_eq!(
        page_ids("?status=delivered"),
        (vec![d3.clone(), d1.clone()], Value::Null)
    );
    assert_eq!(page_ids("?status=failed"), (vec![d2.clone()], Value::Null));
    assert_eq!(page_ids("?status=pending"), (vec![], Value::Null));
    env.app
        .list_deliveries(&env.key, &hook.id, "?status=lost")
        .assert_error(400, "invalid_request_error");

    // Paging.
    let (first, cursor) = page_ids("?limit=2");
    assert_eq!(first, [d3.as_str(), d2.as_str()]);
    let cursor = str_of(&cursor);
    assert_eq!(
        page_ids(&format!("?limit=2&cursor={cursor}")),
        (vec![d1.clone()], Value::Null)
    );
    assert_eq!(
        page_ids("?limit=3").1,
        Value::Null,
        "exactly full: last page"
    );
    let (first, cursor) = page_ids("?status=delivered&limit=1");
    assert_eq!(first, [d3.as_str()]);
    assert_eq!(
        page_ids(&format!(
            "?status=delivered&limit=1&cursor={}",
            str_of(&cursor)
        )),
        (vec![d1.clone()], Value::Null)
    );

    // One delivery with its attempts.
    let failed = env.delivery(&hook, d2);
    assert_eq!(keys(&failed), set_of(&["delivery", "attempts"]), "{failed}");
    assert_eq!(failed["delivery"], data[1]);
    let attempts = failed["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{failed}");
    let attempt = &attempts[0];
    assert_eq!(keys(attempt), set_of(&ATTEMPT_FIELDS), "{attempt}");
    assert_eq!(attempt["number"], 1);
    assert!(is_iso_ms(&attempt["started_at"]), "{attempt}");
    assert!(attempt["latency_ms"].is_u64(), "{attempt}");
    assert_eq!(attempt["response_status"], 500);
    assert_eq!(attempt["error"], "http_status");
    assert_eq!(
        attempt["response_body_excerpt"],
        std::str::from_utf8(&big[..2048]).expect("ascii"),
        "the excerpt is the first 2 KiB of the response"
    );
    let ok = env.delivery(&hook, d1);
    assert_eq!(ok["attempts"][0]["error"], Value::Null, "{ok}");
    assert_eq!(ok["attempts"][0]["response_status"], 200, "{ok}");
    assert_eq!(ok["attempts"][0]["response_body_excerpt"], "fine", "{ok}");

    // Unknown ids.
    let unknown = "01900000-0000-7000-8000-000000000000";
    env.app
        .get_delivery(&env.key, &hook.id, unknown)
        .assert_error(404, "not_found_error");

    // The admin API shows the same log.
    let res = env.app.admin_list_deliveries(&env.key.tenant, &hook.id);
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["data"], all["data"]);
}

#[test]
fn redeliver_sends_the_same_delivery_again() {
    let env = DeliveryEnv::start();
    let hook = env.hook("/again", json!({}));
    env.lead(json!({ "contact_email": "ada@example.com" }));
    let first = env.rx.wait_for("/again", 1, ARRIVE).remove(0);
    let id = first.delivery_id().to_string();
    env.settled(&hook, &id, "delivered");

    let res = env.app.redeliver(&env.key, &hook.id, &id);
    assert_eq!(res.status, 202, "{}", res.text);

    let second = env.rx.wait_for("/again", 2, ARRIVE).remove(1);
    assert_eq!(second.delivery_id(), id, "the same delivery id");
    assert_signed(&second, &hook.secret, None);
    assert_eq!(second.json()["event"], "lead.created");
    assert_eq!(second.json()["lead"], first.json()["lead"]);

    let out = eventually("two attempts recorded", ARRIVE, || {
        let out = env.delivery(&hook, &id);
        if out["delivery"]["status"] == "delivered" && out["delivery"]["attempts"] == 2 {
            Ok(out)
        } else {
            Err(out.to_string())
        }
    });
    let numbers: Vec<&Value> = out["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| &a["number"])
        .collect();
    assert_eq!(numbers, [&json!(1), &json!(2)], "{out}");

    let unknown = "01900000-0000-7000-8000-000000000000";
    env.app
        .redeliver(&env.key, &hook.id, unknown)
        .assert_error(404, "not_found_error");
}

#[test]
fn recover_requeues_the_failed_deliveries_since_a_time() {
    let env = DeliveryEnv::start();
    env.rx.set("/recover", Behaviour::status(500));
    let hook = env.hook("/recover", json!({ "retry_attempts": 0 }));

    // One failure before `since`, two after.
    env.lead(json!({ "contact_email": "early@example.com" }));
    let early = env.rx.wait_for("/recover", 1, ARRIVE)[0]
        .delivery_id()
        .to_string();
    env.settled(&hook, &early, "failed");
    env.app.advance_clock(20);
    let since = env.app.now().to_iso();
    env.app.advance_clock(20);
    env.lead(json!({ "contact_email": "a@example.com" }));
    env.lead(json!({ "contact_email": "b@example.com" }));
    let reqs = env.rx.wait_for("/recover", 3, ARRIVE);
    let late: BTreeSet<String> = reqs[1..]
        .iter()
        .map(|r| r.delivery_id().to_string())
        .collect();
    assert_eq!(late.len(), 2);
    for id in &late {
        env.settled(&hook, id, "failed");
    }

    env.rx.set("/recover", Behaviour::status(200));
    let res = env
        .app
        .recover(&env.key, &hook.id, &json!({ "since": since }));
    assert_eq!(res.status, 202, "{}", res.text);
    assert_eq!(res.json(), json!({ "requeued": 2 }));

    let reqs = env.rx.wait_for("/recover", 5, ARRIVE);
    let again: BTreeSet<String> = reqs[3..]
        .iter()
        .map(|r| r.delivery_id().to_string())
        .collect();
    assert_eq!(again, late, "both failed deliveries since `since` arrive");
    for req in &reqs[3..] {
        assert_signed(req, &hook.secret, None);
    }
    for id in &late {
        let out = env.settled(&hook, id, "delivered");
        assert_eq!(out["delivery"]["attempts"], 2, "{out}");
    }
    // With every delivery final, the receiver has seen all the attempts there will be.
    let log = env.all_final(&hook);
    let attempts: u64 = log
        .iter()
        .map(|d| d["attempts"].as_u64().expect("attempts"))
        .sum();
    assert_eq!(attempts, 5, "{log:?}");
    assert_eq!(env.rx.count("/recover"), 5, "the earlier failure stays put");
    let early = env.delivery(&hook, &early);
    assert_eq!(early["delivery"]["status"], "failed");
    assert_eq!(early["delivery"]["attempts"], 1, "{early}");
}

#[test]
fn the_test_event_arrives_as_webhook_test_with_a_null_lead() {
    let env = DeliveryEnv::start();
    let hook = env.hook("/ping", json!({}));
    let res = env.app.test_webhook(&env.key, &hook.id);
    assert_eq!(res.status, 202, "{}", res.text);
    let out = res.json();
    assert_eq!(keys(&out), set_of(&["delivery_id"]), "{out}");
    let id = str_of(&out["delivery_id"]);

    let req = env.rx.wait_for("/ping", 1, ARRIVE).remove(0);
    let body = req.json();
    assert_eq!(
        keys(&body),
        set_of(&["event", "event_id", "occurred_at", "delivered_at", "lead"]),
        "{body}"
    );
    assert_eq!(body["event"], "webhook.test");
    assert_eq!(body["lead"], Value::Null);
    assert!(is_iso_ms(&body["delivered_at"]), "{body}");
    assert_eq!(req.must("x-mega-event"), "webhook.test");
    assert_eq!(req.delivery_id(), id);
    assert_signed(&req, &hook.secret, None);
    let logged = env.settled(&hook, &id, "delivered");
    assert_eq!(logged["delivery"]["event"], "webhook.test");
}

#[test]
fn a_slow_receiver_does_not_delay_a_fast_one() {
    let env = DeliveryEnv::start();
    env.rx.set("/slow", Behaviour::status(200).after_ms(5_000));
    let slow = env.hook(
        "/slow",
        json!({ "timeout_seconds": 1, "retry_attempts": 0 }),
    );
    env.hook("/fast", json!({ "retry_attempts": 0 }));

    let mut created = Vec::new();
    for i in 0..6 {
        let sent = Instant::now();
        let lead = env.lead(json!({ "contact_email": format!("lead{i}@example.com") }));
        created.push((lead["id"].clone(), sent));
    }
    let fast = env.rx.wait_for("/fast", 6, Duration::from_secs(5));
    // At this point the slow receiver's deliveries are still being attempted.
    let unfinished = env.deliveries(&slow, "")["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|d| d["status"] == "pending" || d["status"] == "delivering")
        .count();
    assert!(
        unfinished > 0,
        "the slow webhook's deliveries were all done before the fast one's arrived"
    );
    for (id, sent) in &created {
        let req = fast
            .iter()
            .find(|r| r.json()["lead"]["id"] == *id)
            .unwrap_or_else(|| panic!("no delivery of lead {id} to the fast receiver"));
        let lag = req.at.saturating_duration_since(*sent);
        assert!(
            lag < Duration::from_millis(1_500),
            "lead {id} reached the fast receiver {lag:?} after it was created"
        );
    }

    // Each slow attempt ends at its 1 s budget, recorded as a timeout.
    let data = eventually(
        "every slow delivery failed",
        Duration::from_secs(12),
        || {
            let out = env.deliveries(&slow, "");
            let data = out["data"].as_array().expect("data").clone();
            if data.len() == 6 && data.iter().all(|d| d["status"] == "failed") {
                Ok(data)
            } else {
                Err(out.to_string())
            }
        },
    );
    for d in &data {
        let out = env.delivery(&slow, &str_of(&d["id"]));
        let attempt = &out["attempts"][0];
        assert_eq!(attempt["error"], "timeout", "{out}");
        assert_eq!(attempt["response_status"], Value::Null, "{out}");
        let latency = attempt["latency_ms"].as_u64().expect("latency_ms");
        assert!(
            (900..3_000).contains(&latency),
            "a 1 s timeout took {latency} ms"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SSRF at connect time needs a server started with a lookup of its own.

#[test]
fn deliveries_are_refused_at_connect_time_when_the_host_now_resolves_to_a_private_address() {
    let rx = Receiver::start();
    let port = rx.port();
    let rebound = Arc::new(AtomicBool::new(false));
    let lookup: leadbase::delivery::client::Lookup = {
        let rebound = Arc::clone(&rebound);
        Arc::new(move |host: &str, port: u16| {
            if host != "hook.test" {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host} is not known here"),
                ));
            }
            let ip = if rebound.load(Ordering::SeqCst) {
                [127, 0, 0, 1]
            } else {
                [8, 8, 8, 8]
            };
            Ok(vec![SocketAddr::from((ip, port))])
        })
    };
    let options = Options {
        lookup: Some(lookup),
        ..Options::default()
    };
    let app = TestApp::spawn_with_options(options, |c| {
        relax_limits(c);
        c.webhooks.allowed_private_cidrs = Vec::new();
        c.webhooks.extra_ca_file = Some(rx.ca_path().to_path_buf());
        c.webhooks.retry_schedule_seconds = vec![1];
    });
    let env = DeliveryEnv::around(app, rx);

    // At registration `hook.test` is a public address: accepted, and nothing is dialled.
    let url = format!("https://hook.test:{port}/ssrf");
    let hook = Hook::from_created(
        &env.app
            .post_webhook(&env.key, &json!({ "url": url, "retry_attempts": 0 }))
            .expect(201),
    );
    assert_eq!(env.rx.count("/ssrf"), 0);

    // Then it resolves to loopback, which this server's policy does not allow.
    rebound.store(true, Ordering::SeqCst);
    env.push(json!({ "contact_email": "ada@example.com" }));

    let delivery = eventually("the delivery fails", ARRIVE, || {
        let out = env.deliveries(&hook, "");
        match out["data"].as_array().and_then(|d| d.first()) {
            Some(d) if d["status"] == "failed" => Ok(str_of(&d["id"])),
            _ => Err(out.to_string()),
        }
    });
    let out = env.delivery(&hook, &delivery);
    assert_eq!(out["attempts"][0]["error"], "ssrf_blocked", "{out}");
    assert_eq!(out["attempts"][0]["response_status"], Value::Null, "{out}");
    // Failed is final (no retries): the refused attempt was the only one.
    assert_eq!(out["delivery"]["attempts"], 1, "{out}");
    assert_eq!(
        env.rx.count("/ssrf"),
        0,
        "the receiver behind the rebound name was reached"
    );
}
