//! Webhook management (§5, §10): registration, the URL policy, changes, secrets and their
//! rotation, duplicates, the per-tenant maximum, soft delete, tenant isolation and scopes.
//!
//! There is no DNS here and nothing may leave the machine: URLs are IP literals, either
//! loopback ones opened by `allowed_private_cidrs` (never connected to at registration) or
//! public ones, which are accepted without a lookup or a connection.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::*;

const SECRET_PREFIX: &str = "mega_whsec_";

/// Every field of the Webhook object, extensions included.
const FIELDS: [&str; 20] = [
    "id",
    "url",
    "event_types",
    "is_active",
    "timeout_seconds",
    "retry_attempts",
    "description",
    "created_at",
    "updated_at",
    "signing_secret_prefix",
    "last_delivery_at",
    "last_delivery_status",
    "consecutive_failures",
    "disabled_reason",
    "previous_secret_expires_at",
    "filter",
    "headers",
    "max_concurrency",
    "rate_limit_per_minute",
    "held_count",
];

fn hook_id(body: &Value) -> String {
    body["webhook"]["id"]
        .as_str()
        .expect("webhook id")
        .to_string()
}

/// Asserts a 400 `invalid_request_error` whose message mentions every one of `words`.
fn assert_bad_request(res: &Resp, what: &str, words: &[&str]) {
    let message = res.assert_error(400, "invalid_request_error");
    for word in words {
        assert!(
            message.contains(word),
            "{what}: message {message:?} should mention {word:?}"
        );
    }
}

fn assert_secret(secret: &Value) -> String {
    let secret = secret.as_str().expect("secret is a string");
    let hex = secret
        .strip_prefix(SECRET_PREFIX)
        .unwrap_or_else(|| panic!("secret {secret} starts with {SECRET_PREFIX}"));
    assert_eq!(hex.len(), 64, "{secret}");
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "lowercase hex: {secret}"
    );
    secret.to_string()
}

/// The random part of a secret: never to be seen again after it is shown.
fn hex_part(secret: &str) -> &str {
    &secret[SECRET_PREFIX.len()..]
}

fn parse_time(value: &Value) -> OffsetDateTime {
    let text = value.as_str().unwrap_or_else(|| panic!("time: {value}"));
    assert!(text.ends_with('Z'), "UTC with Z: {text}");
    // `2026-07-02T14:04:59.000Z`: milliseconds, always three digits.
    assert_eq!(text.len(), 24, "milliseconds: {text}");
    assert_eq!(&text[19..20], ".", "milliseconds: {text}");
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Hours from now until `value`.
fn hours_ahead(value: &Value) -> f64 {
    (parse_time(value) - OffsetDateTime::now_utc()).as_seconds_f64() / 3600.0
}

fn assert_uuid(value: &Value) {
    let text = value.as_str().unwrap_or_else(|| panic!("id: {value}"));
    assert!(uuid::Uuid::parse_str(text).is_ok(), "uuid: {text}");
}

fn list(app: &TestApp, key: &Key) -> Vec<Value> {
    let body = app.list_webhooks(key).expect(200);
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    body["webhooks"].as_array().expect("webhooks array").clone()
}

fn listed_ids(app: &TestApp, key: &Key) -> Vec<String> {
    list(app, key)
        .iter()
        .map(|w| w["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn create_returns_the_webhook_and_its_secret_with_defaults() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    let res = app.post_webhook(&key, &json!({ "url": "https://127.0.0.1/hook-a" }));
    assert_eq!(res.status, 201, "{}", res.text);
    let body = res.json();
    assert_eq!(
        keys(&body),
        set_of(&["secret", "webhook"]),
        "only webhook and secret: {body}"
    );
    let secret = assert_secret(&body["secret"]);

    let webhook = &body["webhook"];
    assert_eq!(
        keys(webhook),
        set_of(&FIELDS),
        "every field of §5: {webhook}"
    );

    assert_uuid(&webhook["id"]);
    assert_eq!(webhook["url"], "https://127.0.0.1/hook-a");
    assert_eq!(webhook["event_types"], json!(["lead.created"]));
    assert_eq!(webhook["is_active"], true);
    assert_eq!(webhook["timeout_seconds"], 10);
    assert_eq!(webhook["retry_attempts"], 5);
    assert_eq!(webhook["description"], Value::Null);
    assert_eq!(webhook["signing_secret_prefix"], secret[..16]);
    assert_eq!(webhook["last_delivery_at"], Value::Null);
    assert_eq!(webhook["last_delivery_status"], Value::Null);
    assert_eq!(webhook["consecutive_failures"], 0);
    assert_eq!(webhook["disabled_reason"], Value::Null);
    assert_eq!(webhook["previous_secret_expires_at"], Value::Null);
    let created = parse_time(&webhook["created_at"]);
    let updated = parse_time(&webhook["updated_at"]);
    assert!(updated >= created);
    let age = OffsetDateTime::now_utc() - created;
    assert!(
        age.whole_seconds().abs() < 60,
        "created just now: {created}"
    );

    // What GET returns is the same object.
    let id = hook_id(&body);
    assert_eq!(&app.get_webhook(&key, &id).expect(200)["webhook"], webhook);
    assert_eq!(list(&app, &key), vec![webhook.clone()]);
}

#[test]
fn create_accepts_every_field() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    let body = app
        .post_webhook(
            &key,
            &json!({
                "url": "https://127.0.0.2:8443/b",
                "event_types": ["lead.created", "lead.updated"],
                "timeout_seconds": 30,
                "retry_attempts": 2,
                "description": "Zapier",
                "is_active": false,
            }),
        )
        .expect(201);
    let webhook = &body["webhook"];
    assert_eq!(webhook["url"], "https://127.0.0.2:8443/b");
    assert_eq!(
        webhook["event_types"],
        json!(["lead.created", "lead.updated"])
    );
    assert_eq!(webhook["timeout_seconds"], 30);
    assert_eq!(webhook["retry_attempts"], 2);
    assert_eq!(webhook["description"], "Zapier");
    assert_eq!(webhook["is_active"], false);

    // A public literal passes without DNS and without a connection.
    let public = app
        .post_webhook(&key, &json!({ "url": "https://8.8.8.8/hook" }))
        .expect(201);
    assert_eq!(public["webhook"]["url"], "https://8.8.8.8/hook");
}

#[test]
fn timeout_seconds_must_be_between_1_and_60() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    for bad in [0, 61, -1, 3600] {
        let res = app.post_webhook(
            &key,
            &json!({ "url": "https://127.0.0.1/t", "timeout_seconds": bad }),
        );
        assert_bad_request(
            &res,
            &format!("timeout_seconds {bad}"),
            &["timeout_seconds", "1", "60"],
        );
    }
    for bad in [json!(u64::MAX), json!(2.5), json!("10"), json!(true)] {
        let res = app.post_webhook(
            &key,
            &json!({ "url": "https://127.0.0.1/t", "timeout_seconds": bad }),
        );
        assert_bad_request(
            &res,
            &format!("timeout_seconds {bad}"),
            &["timeout_seconds"],
        );
    }
    for (n, ok) in [1, 60].into_iter().enumerate() {
        let body = app
            .post_webhook(
                &key,
                &json!({ "url": format!("https://127.0.0.1/t{n}"), "timeout_seconds": ok }),
            )
            .expect(201);
        assert_eq!(body["webhook"]["timeout_seconds"], ok);
    }
    // A whole number written as a float is that integer, as in JSON Schema.
    let body = app
        .post_webhook(
            &key,
            &json!({ "url": "https://127.0.0.1/t-float", "timeout_seconds": 30.0 }),
        )
        .expect(201);
    assert_eq!(body["webhook"]["timeout_seconds"], 30);
    assert_eq!(list(&app, &key).len(), 3, "refused ones were not stored");
}

#[test]
fn retry_attempts_must_be_between_0_and_10() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    for bad in [-1, 11] {
        let res = app.post_webhook(
            &key,
            &json!({ "url": "https://127.0.0.1/r", "retry_attempts": bad }),
        );
        assert_bad_request(
            &res,
            &format!("retry_attempts {bad}"),
            &["retry_attempts", "0", "10"],
        );
    }
    for bad in [json!(u64::MAX), json!(2.5), json!("5")] {
        let res = app.post_webhook(
            &key,
            &json!({ "url": "https://127.0.0.1/r", "retry_attempts": bad }),
        );
        assert_bad_request(&res, &format!("retry_attempts {bad}"), &["retry_attempts"]);
    }
    for (n, ok) in [0, 10].into_iter().enumerate() {
        let body = app
            .post_webhook(
                &key,
                &json!({ "url": format!("https://127.0.0.1/r{n}"), "retry_attempts": ok }),
            )
            .expect(201);
        assert_eq!(body["webhook"]["retry_attempts"], ok);
    }
    assert_eq!(list(&app, &key).len(), 2);
}

#[test]
fn description_is_at_most_200_characters() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    let res = app.post_webhook(
        &key,
        &json!({ "url": "https://127.0.0.1/d", "description": "x".repeat(201) }),
    );
    assert_bad_request(&res, "description 201", &["description", "200"]);

    let body = app
        .post_webhook(
            &key,
            &json!({ "url": "https://127.0.0.1/d", "description": "é".repeat(200) }),
        )
        .expect(201);
    assert_eq!(body["webhook"]["description"], "é".repeat(200));
    let body = app
        .post_webhook(
            &key,
            &json!({ "url": "https://127.0.0.1/d2", "description": null }),
        )
        .expect(201);
    assert_eq!(body["webhook"]["description"], Value::Null);
}

#[test]
fn event_types_come_from_the_catalogue_and_duplicates_collapse() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    for (bad, words) in [
        (json!(["lead.merged"]), &["event_types", "lead.merged"][..]),
        (
            json!(["lead.created", "nope"]),
            &["event_types", "nope"][..],
        ),
        (
            json!(["webhook.test"]),
            &["event_types", "webhook.test"][..],
        ),
        (json!([]), &["event_types"][..]),
    ] {
        let res = app.post_webhook(
            &key,
            &json!({ "url": "https://127.0.0.1/e", "event_types": bad }),
        );
        assert_bad_request(&res, &format!("event_types {bad}"), words);
    }
    let res = app.post_webhook(
        &key,
        &json!({ "url": "https://127.0.0.1/e", "event_types": "lead.created" }),
    );
    assert_bad_request(&res, "event_types as a string", &["event_types"]);
    assert!(list(&app, &key).is_empty());

    let both = app.post_webhook(&key, &json!({ "url": "https://127.0.0.1/e1", "event_types": ["lead.created", "lead.updated"] })).expect(201);
    assert_eq!(
        both["webhook"]["event_types"],
        json!(["lead.created", "lead.updated"])
    );
    let updated_only = app
        .post_webhook(
            &key,
            &json!({ "url": "https://127.0.0.1/e2", "event_types": ["lead.updated"] }),
        )
        .expect(201);
    assert_eq!(
        updated_only["webhook"]["event_types"],
        json!(["lead.updated"])
    );
    let dupes = app
        .post_webhook(
            &key,
            &json!({
                "url": "https://127.0.0.1/e3",
                "event_types": ["lead.created", "lead.created", "lead.updated", "lead.created"],
            }),
        )
        .expect(201);
    assert_eq!(
        dupes["webhook"]["event_types"],
        json!(["lead.created", "lead.updated"])
    );
}

#[test]
fn url_is_a_required_absolute_https_string_without_user_info_of_at_most_2048_chars() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    let send = |body: Value| app.post_webhook(&key, &body);

    assert_bad_request(&send(json!({})), "url missing", &["url"]);
    assert_bad_request(
        &send(json!({ "event_types": ["lead.created"] })),
        "url missing",
        &["url"],
    );
    assert_bad_request(&send(json!({ "url": 42 })), "url a number", &["url"]);
    assert_bad_request(&send(json!({ "url": null })), "url null", &["url"]);
    assert_bad_request(
        &send(json!({ "url": ["https://127.0.0.1/x"] })),
        "url an array",
        &["url"],
    );

    // 2048 characters pass, 2049 do not.
    let base = "https://127.0.0.1/";
    let at_limit = format!("{base}{}", "a".repeat(2048 - base.len()));
    assert_eq!(at_limit.len(), 2048);
    let body = app
        .post_webhook(&key, &json!({ "url": &at_limit }))
        .expect(201);
    assert_eq!(body["webhook"]["url"], at_limit);
    let over = format!("{base}{}", "b".repeat(2049 - base.len()));
    assert_bad_request(&send(json!({ "url": over })), "url 2049", &["url", "2048"]);

    for (url, words) in [
        ("http://127.0.0.1/plain", &["url", "https"][..]),
        ("http://8.8.8.8/plain", &["url", "https"][..]),
        ("ftp://127.0.0.1/file", &["url", "https", "ftp"][..]),
        ("https://u:p@8.8.8.8/", &["url", "user info"][..]),
        ("https://u@8.8.8.8/", &["url", "user info"][..]),
        ("/relative/hook", &["url"][..]),
        ("127.0.0.1/hook", &["url"][..]),
        ("", &["url"][..]),
        ("not a url", &["url"][..]),
    ] {
        assert_bad_request(&send(json!({ "url": url })), url, words);
    }
    assert_eq!(list(&app, &key).len(), 1, "only the 2048-char one");
}

#[test]
fn url_policy_refuses_addresses_that_are_not_globally_routable() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    for (url, rule) in [
        ("https://127.0.0.1/", "loopback"),
        ("https://127.0.0.2:8443/b", "loopback"),
        ("https://10.1.2.3/", "private"),
        ("https://192.168.1.1/", "private"),
        ("https://172.16.0.1/", "private"),
        ("https://169.254.169.254/", "link-local"),
        ("https://100.64.0.1/", "carrier-grade NAT"),
        ("https://0.0.0.0/", "this network"),
        ("https://[::1]/", "loopback"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[fd00::1]/", "unique local"),
        ("https://2130706433/", "loopback"),
        ("https://0x7f.1/", "loopback"),
        ("https://0177.0.0.1/", "loopback"),
        // Names are judged by what they resolve to (here: the hosts file, no DNS).
        ("https://localhost/", "loopback"),
        ("https://LocalHost./hook", "loopback"),
    ] {
        let res = app.post_webhook(&key, &json!({ "url": url }));
        assert_bad_request(&res, url, &[rule]);
    }
    assert!(list(&app, &key).is_empty());

    // Public addresses are fine, v4 and v6.
    app.post_webhook(&key, &json!({ "url": "https://8.8.8.8/hook" }))
        .expect(201);
    app.post_webhook(
        &key,
        &json!({ "url": "https://[2606:4700:4700::1111]/hook" }),
    )
    .expect(201);
}

#[test]
fn a_host_that_does_not_resolve_is_refused() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    let res = app.post_webhook(&key, &json!({ "url": "https://no-such-host.invalid/hook" }));
    assert_bad_request(
        &res,
        "unresolvable host",
        &["no-such-host.invalid", "resolve"],
    );
    assert!(list(&app, &key).is_empty());
}

#[test]
fn allow_listed_ranges_admit_exactly_their_addresses() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    app.post_webhook(&key, &json!({ "url": "https://127.0.0.1/hook-a" }))
        .expect(201);
    app.post_webhook(&key, &json!({ "url": "https://127.255.0.9:8443/hook" }))
        .expect(201);
    for (url, rule) in [
        ("https://10.1.2.3/", "private"),
        ("https://169.254.169.254/", "link-local"),
        ("https://[::1]/", "loopback"),
    ] {
        let res = app.post_webhook(&key, &json!({ "url": url }));
        assert_bad_request(&res, url, &[rule]);
    }
}

#[test]
fn http_is_accepted_when_https_only_is_off() {
    let app = TestApp::for_webhooks_with(|c| c.webhooks.https_only = false);
    let key = app.tenant_with_key("Acme");
    let body = app
        .post_webhook(&key, &json!({ "url": "http://127.0.0.1:8080/plain" }))
        .expect(201);
    assert_eq!(body["webhook"]["url"], "http://127.0.0.1:8080/plain");
    app.post_webhook(&key, &json!({ "url": "https://127.0.0.1/tls" }))
        .expect(201);
    // Other schemes and the address rules still apply.
    let res = app.post_webhook(&key, &json!({ "url": "ftp://127.0.0.1/file" }));
    assert_bad_request(&res, "ftp", &["url", "ftp"]);
    let res = app.post_webhook(&key, &json!({ "url": "http://10.0.0.1/plain" }));
    assert_bad_request(&res, "private over http", &["private"]);
}

#[test]
fn patch_applies_the_same_rules() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    let created = app
        .post_webhook(
            &key,
            &json!({ "url": "https://127.0.0.1/p", "description": "keep" }),
        )
        .expect(201);
    let id = hook_id(&created);
    let before = created["webhook"].clone();

    for (body, words) in [
        (json!({ "timeout_seconds": 0 }), &["timeout_seconds"][..]),
        (json!({ "timeout_seconds": 61 }), &["timeout_seconds"][..]),
        (json!({ "retry_attempts": -1 }), &["retry_attempts"][..]),
        (json!({ "retry_attempts": 11 }), &["retry_attempts"][..]),
        (
            json!({ "description": "x".repeat(201) }),
            &["description", "200"][..],
        ),
        (json!({ "event_types": [] }), &["event_types"][..]),
        (
            json!({ "event_types": ["lead.nope"] }),
            &["event_types", "lead.nope"][..],
        ),
        (
            json!({ "url": "http://127.0.0.1/p2" }),
            &["url", "https"][..],
        ),
        (
            json!({ "url": "https://u:p@8.8.8.8/" }),
            &["url", "user info"][..],
        ),
        (json!({ "url": "/relative" }), &["url"][..]),
        (json!({ "url": 7 }), &["url"][..]),
        (json!({ "url": "https://10.1.2.3/" }), &["private"][..]),
        (json!({ "url": "https://[::1]/" }), &["loopback"][..]),
        (
            json!({ "url": "https://no-such-host.invalid/" }),
            &["resolve"][..],
        ),
        (json!({ "is_active": "yes" }), &["is_active"][..]),
        // A valid change does not get through beside an invalid one.
        (
            json!({ "timeout_seconds": 20, "retry_attempts": 11 }),
            &["retry_attempts"][..],
        ),
    ] {
        let res = app.patch_webhook(&key, &id, &body);
        assert_bad_request(&res, &format!("PATCH {body}"), words);
    }
    assert_eq!(
        app.get_webhook(&key, &id).expect(200)["webhook"],
        before,
        "nothing changed"
    );

    // The bounds are inclusive here too.
    let changed = app
        .patch_webhook(
            &key,
            &id,
            &json!({ "timeout_seconds": 60, "retry_attempts": 0, "description": "y".repeat(200) }),
        )
        .expect(200);
    assert_eq!(changed["webhook"]["timeout_seconds"], 60);
    assert_eq!(changed["webhook"]["retry_attempts"], 0);
    assert_eq!(changed["webhook"]["description"], "y".repeat(200));
    let changed = app
        .patch_webhook(
            &key,
            &id,
            &json!({ "timeout_seconds": 1, "retry_attempts": 10 }),
        )
        .expect(200);
    assert_eq!(changed["webhook"]["timeout_seconds"], 1);
    assert_eq!(changed["webhook"]["retry_attempts"], 10);
}

#[test]
fn patch_changes_only_the_fields_it_names() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    let created = app
        .post_webhook(
            &key,
            &json!({ "url": "https://127.0.0.1/c", "description": "first" }),
        )
        .expect(201);
    let id = hook_id(&created);
    let original = created["webhook"].clone();

    let off = app
        .patch_webhook(&key, &id, &json!({ "is_active": false }))
        .expect(200);
    assert!(off.get("secret").is_none(), "no secret without rotation");
    let webhook = &off["webhook"];
    assert_eq!(webhook["is_active"], false);
    for field in FIELDS {
        if !["is_active", "updated_at"].contains(&field) {
            assert_eq!(webhook[field], original[field], "{field} untouched");
        }
    }
    assert!(parse_time(&webhook["updated_at"]) >= parse_time(&original["updated_at"]));
    assert_eq!(
        app.get_webhook(&key, &id).expect(200)["webhook"]["is_active"],
        false
    );

    let on = app
        .patch_webhook(&key, &id, &json!({ "is_active": true }))
        .expect(200);
    assert_eq!(on["webhook"]["is_active"], true);
    assert_eq!(on["webhook"]["disabled_reason"], Value::Null);
    assert_eq!(on["webhook"]["consecutive_failures"], 0);

    let cleared = app
        .patch_webhook(&key, &id, &json!({ "description": null }))
        .expect(200);
    assert_eq!(cleared["webhook"]["description"], Value::Null);
    assert_eq!(
        app.get_webhook(&key, &id).expect(200)["webhook"]["description"],
        Value::Null
    );
    let described = app
        .patch_webhook(&key, &id, &json!({ "description": "again" }))
        .expect(200);
    assert_eq!(described["webhook"]["description"], "again");
    // Leaving description out keeps it.
    let kept = app
        .patch_webhook(&key, &id, &json!({ "timeout_seconds": 15 }))
        .expect(200);
    assert_eq!(kept["webhook"]["description"], "again");
    assert_eq!(kept["webhook"]["timeout_seconds"], 15);

    let types = app
        .patch_webhook(
            &key,
            &id,
            &json!({ "event_types": ["lead.updated", "lead.updated"] }),
        )
        .expect(200);
    assert_eq!(types["webhook"]["event_types"], json!(["lead.updated"]));
    let types = app
        .patch_webhook(
            &key,
            &id,
            &json!({ "event_types": ["lead.created", "lead.updated"] }),
        )
        .expect(200);
    assert_eq!(
        types["webhook"]["event_types"],
        json!(["lead.created", "lead.updated"])
    );

    let moved = app
        .patch_webhook(&key, &id, &json!({ "url": "https://127.0.0.3/moved" }))
        .expect(200);
    assert_eq!(moved["webhook"]["url"], "https://127.0.0.3/moved");
    // Its own URL again is not a duplicate of itself.
    let same = app
        .patch_webhook(&key, &id, &json!({ "url": "https://127.0.0.3/moved" }))
        .expect(200);
    assert_eq!(same["webhook"]["url"], "https://127.0.0.3/moved");

    // An empty PATCH changes nothing that matters.
    let empty = app.patch_webhook(&key, &id, &json!({})).expect(200);
    let now = app.get_webhook(&key, &id).expect(200)["webhook"].clone();
    for field in FIELDS {
        if field != "updated_at" {
            assert_eq!(empty["webhook"][field], now[field], "{field}");
        }
    }
    assert_eq!(now["id"], original["id"]);
    assert_eq!(now["created_at"], original["created_at"]);
    assert_eq!(
        now["signing_secret_prefix"],
        original["signing_secret_prefix"]
    );
}

#[test]
fn list_returns_webhooks_oldest_first() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    assert!(list(&app, &key).is_empty());
    let ids: Vec<String> = (1..=5)
        .map(|n| {
            hook_id(
                &app.post_webhook(&key, &json!({ "url": format!("https://127.0.0.{n}/hook") }))
                    .expect(201),
            )
        })
        .collect();
    assert_eq!(listed_ids(&app, &key), ids);
    let listed = list(&app, &key);
    let created: Vec<OffsetDateTime> = listed
        .iter()
        .map(|w| parse_time(&w["created_at"]))
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "{created:?}");

    // Changing one does not move it.
    app.patch_webhook(&key, &ids[0], &json!({ "description": "touched" }))
        .expect(200);
    assert_eq!(listed_ids(&app, &key), ids);

    // The admin view lists the same, in the same order.
    let admin = app.admin_list_webhooks(&key.tenant);
    assert_eq!(admin.status, 200, "{}", admin.text);
    let admin_ids: Vec<String> = admin.json()["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .map(|w| w["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(admin_ids, ids);
}

#[test]
fn secrets_are_returned_only_on_create_and_rotate() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    let created = app
        .post_webhook(&key, &json!({ "url": "https://127.0.0.1/s" }))
        .expect(201);
    let id = hook_id(&created);
    let first = assert_secret(&created["secret"]);
    let mut seen = vec![first.clone()];

    let check_hidden = |seen: &[String], current: &str| {
        let views = [
            ("list", app.list_webhooks(&key)),
            ("get", app.get_webhook(&key, &id)),
            (
                "patch",
                app.patch_webhook(&key, &id, &json!({ "timeout_seconds": 12 })),
            ),
            ("admin list", app.admin_list_webhooks(&key.tenant)),
        ];
        for (what, res) in views {
            assert_eq!(res.status, 200, "{what}: {}", res.text);
            for secret in seen {
                assert!(
                    !res.text.contains(hex_part(secret)),
                    "{what} shows a secret: {}",
                    res.text
                );
            }
            assert!(res.json().get("secret").is_none(), "{what}");
            assert!(
                res.text.contains(&format!("\"{}\"", &current[..16])),
                "{what} shows the prefix: {}",
                res.text
            );
        }
    };
    check_hidden(&seen, &first);

    // PATCH with rotate_secret: a fresh secret, shown once.
    let rotated = app
        .patch_webhook(&key, &id, &json!({ "rotate_secret": true }))
        .expect(200);
    let second = assert_secret(&rotated["secret"]);
    assert_ne!(second, first);
    assert_eq!(rotated["webhook"]["signing_secret_prefix"], second[..16]);
    seen.push(second.clone());
    check_hidden(&seen, &second);

    // rotate_secret: false is not a rotation.
    let not_rotated = app.patch_webhook(
        &key,
        &id,
        &json!({ "rotate_secret": false, "description": "d" }),
    );
    assert_eq!(not_rotated.status, 200, "{}", not_rotated.text);
    assert!(not_rotated.json().get("secret").is_none());
    assert_eq!(
        not_rotated.json()["webhook"]["signing_secret_prefix"],
        second[..16]
    );

    // The rotate-secret route.
    let res = app.rotate_secret(&key, &id, None);
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    let third = assert_secret(&body["secret"]);
    assert!(!seen.contains(&third));
    assert_eq!(body["webhook"]["signing_secret_prefix"], third[..16]);
    assert_eq!(body["webhook"]["id"], id.as_str());
    seen.push(third.clone());
    check_hidden(&seen, &third);
}

#[test]
fn rotate_secret_keeps_the_previous_secret_for_the_overlap() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    let created = app
        .post_webhook(&key, &json!({ "url": "https://127.0.0.1/r" }))
        .expect(201);
    let id = hook_id(&created);
    let mut secret = assert_secret(&created["secret"]);

    let mut rotate = |body: Option<Value>| -> Value {
        let res = app.rotate_secret(&key, &id, body.as_ref());
        assert_eq!(res.status, 200, "rotate {body:?}: {}", res.text);
        let out = res.json();
        let new = assert_secret(&out["secret"]);
        assert_ne!(new, secret, "a new secret");
        assert_ne!(
            out["webhook"]["signing_secret_prefix"], created["webhook"]["signing_secret_prefix"],
            "the prefix follows the secret"
        );
        assert_eq!(out["webhook"]["signing_secret_prefix"], new[..16]);
        secret = new;
        out["webhook"].clone()
    };

    // No body at all, no content type: the configured overlap, 24 hours.
    let webhook = rotate(None);
    let hours = hours_ahead(&webhook["previous_secret_expires_at"]);
    assert!((23.9..=24.1).contains(&hours), "{hours} h ahead: {webhook}");
    assert_eq!(
        app.get_webhook(&key, &id).expect(200)["webhook"]["previous_secret_expires_at"],
        webhook["previous_secret_expires_at"]
    );

    let webhook = rotate(Some(json!({})));
    let hours = hours_ahead(&webhook["previous_secret_expires_at"]);
    assert!((23.9..=24.1).contains(&hours), "{{}}: {hours} h ahead");

    let webhook = rotate(Some(json!({ "overlap_hours": 2 })));
    let hours = hours_ahead(&webhook["previous_secret_expires_at"]);
    assert!((1.9..=2.1).contains(&hours), "{hours} h ahead");

    let webhook = rotate(Some(json!({ "overlap_hours": 168 })));
    let hours = hours_ahead(&webhook["previous_secret_expires_at"]);
    assert!((167.9..=168.1).contains(&hours), "{hours} h ahead");

    let webhook = rotate(Some(json!({ "overlap_hours": 0 })));
    assert_eq!(webhook["previous_secret_expires_at"], Value::Null);
    assert_eq!(
        app.get_webhook(&key, &id).expect(200)["webhook"]["previous_secret_expires_at"],
        Value::Null
    );

    let prefix_before =
        app.get_webhook(&key, &id).expect(200)["webhook"]["signing_secret_prefix"].clone();
    for bad in [json!(169), json!(-1), json!("2"), json!(1.5)] {
        let res = app.rotate_secret(&key, &id, Some(&json!({ "overlap_hours": bad })));
        assert_bad_request(&res, &format!("overlap_hours {bad}"), &["overlap_hours"]);
    }
    let res = app.rotate_secret(&key, &id, Some(&json!({ "overlap_hours": 169 })));
    assert_bad_request(&res, "overlap 169", &["overlap_hours", "168"]);
    assert_eq!(
        app.get_webhook(&key, &id).expect(200)["webhook"]["signing_secret_prefix"],
        prefix_before,
        "a refused rotation rotates nothing"
    );
}

#[test]
fn rotate_secret_reads_its_body_after_authentication_within_the_usual_limit() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    let created = app
        .post_webhook(&key, &json!({ "url": "https://127.0.0.1/b" }))
        .expect(201);
    let path = format!("{HOOKS}/{}/rotate-secret", hook_id(&created));
    // A well-formed token is looked up in the store, which takes a moment: a body read alongside
    // would answer first, and a `Content-Length` past the limit answers at once.
    let body = " ".repeat(300 * 1024);
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer mega_{}\r\n\
         x-customer-id: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        "0".repeat(64),
        key.tenant,
        body.len()
    );
    exchange(&app, &request).assert_error(401, "authentication_error");

    let padded = format!("{{\"overlap_hours\": 2{}}}", " ".repeat(70 * 1024));
    let message = app
        .api("POST", &path, &key)
        .header("content-type", "application/json")
        .raw(&padded)
        .send()
        .assert_error(413, "invalid_request_error");
    assert!(message.contains("larger than 65536 bytes"), "{message}");
}

#[test]
fn patch_rotate_secret_uses_the_configured_overlap() {
    let app = TestApp::for_webhooks_with(|c| c.webhooks.rotation_overlap_hours = 6);
    let key = app.tenant_with_key("Acme");
    let created = app
        .post_webhook(&key, &json!({ "url": "https://127.0.0.1/o" }))
        .expect(201);
    let id = hook_id(&created);
    let first = assert_secret(&created["secret"]);

    let rotated = app
        .patch_webhook(
            &key,
            &id,
            &json!({ "rotate_secret": true, "description": "rotated" }),
        )
        .expect(200);
    let second = assert_secret(&rotated["secret"]);
    assert_ne!(second, first);
    assert_eq!(rotated["webhook"]["description"], "rotated");
    assert_eq!(rotated["webhook"]["signing_secret_prefix"], second[..16]);
    let hours = hours_ahead(&rotated["webhook"]["previous_secret_expires_at"]);
    assert!((5.9..=6.1).contains(&hours), "{hours} h ahead");

    let res = app.rotate_secret(&key, &id, None);
    assert_eq!(res.status, 200, "{}", res.text);
    let hours = hours_ahead(&res.json()["webhook"]["previous_secret_expires_at"]);
    assert!((5.9..=6.1).contains(&hours), "{hours} h ahead");
}

#[test]
fn a_url_is_registered_once_per_tenant() {
    let app = TestApp::for_webhooks();
    let acme = app.tenant_with_key("Acme");
    let globex = app.tenant_with_key("Globex");
    let a = app
        .post_webhook(&acme, &json!({ "url": "https://127.0.0.1/hook-a" }))
        .expect(201);
    let a_id = hook_id(&a);

    let res = app.post_webhook(
        &acme,
        &json!({ "url": "https://127.0.0.1/hook-a", "event_types": ["lead.updated"] }),
    );
    let message = res.assert_error(409, "api_error");
    assert!(message.contains("url"), "{message}");

    // Inactive still counts.
    app.patch_webhook(&acme, &a_id, &json!({ "is_active": false }))
        .expect(200);
    let res = app.post_webhook(&acme, &json!({ "url": "https://127.0.0.1/hook-a" }));
    res.assert_error(409, "api_error");
    // Created inactive, too.
    app.post_webhook(
        &acme,
        &json!({ "url": "https://127.0.0.2:8443/b", "is_active": false }),
    )
    .expect(201);
    let res = app.post_webhook(&acme, &json!({ "url": "https://127.0.0.2:8443/b" }));
    res.assert_error(409, "api_error");

    // Another tenant may register the same URL.
    app.post_webhook(&globex, &json!({ "url": "https://127.0.0.1/hook-a" }))
        .expect(201);

    // PATCHing a URL onto another webhook's URL is a duplicate too.
    let c = app
        .post_webhook(&acme, &json!({ "url": "https://127.0.0.3/c" }))
        .expect(201);
    let c_id = hook_id(&c);
    let res = app.patch_webhook(&acme, &c_id, &json!({ "url": "https://127.0.0.1/hook-a" }));
    res.assert_error(409, "api_error");
    assert_eq!(
        app.get_webhook(&acme, &c_id).expect(200)["webhook"]["url"],
        "https://127.0.0.3/c"
    );
    assert_eq!(list(&app, &acme).len(), 3);

    // Once deleted, the URL is free again.
    let res = app.delete_webhook(&acme, &a_id);
    assert_eq!(res.status, 200, "{}", res.text);
    let again = app
        .post_webhook(&acme, &json!({ "url": "https://127.0.0.1/hook-a" }))
        .expect(201);
    assert_ne!(hook_id(&again), a_id, "a new webhook, not the old one back");
    let moved = app
        .patch_webhook(&acme, &c_id, &json!({ "url": "https://127.0.0.2:8443/b2" }))
        .expect(200);
    assert_eq!(moved["webhook"]["url"], "https://127.0.0.2:8443/b2");
    let res = app.delete_webhook(&acme, &hook_id(&again));
    assert_eq!(res.status, 200, "{}", res.text);
    let moved = app
        .patch_webhook(&acme, &c_id, &json!({ "url": "https://127.0.0.1/hook-a" }))
        .expect(200);
    assert_eq!(moved["webhook"]["url"], "https://127.0.0.1/hook-a");
}

#[test]
fn a_tenant_at_max_per_tenant_gets_409_naming_the_limit() {
    let app = TestApp::for_webhooks_with(|c| c.webhooks.max_per_tenant = 3);
    let acme = app.tenant_with_key("Acme");
    let globex = app.tenant_with_key("Globex");
    let mut ids: Vec<String> = (1..=3)
        .map(|n| {
            hook_id(
                &app.post_webhook(&acme, &json!({ "url": format!("https://127.0.0.1/m{n}") }))
                    .expect(201),
            )
        })
        .collect();
    // Inactive ones count.
    app.patch_webhook(&acme, &ids[2], &json!({ "is_active": false }))
        .expect(200);

    let res = app.post_webhook(&acme, &json!({ "url": "https://127.0.0.1/m4" }));
    let message = res.assert_error(409, "api_error");
    assert!(message.contains('3'), "names the limit: {message}");
    assert_eq!(list(&app, &acme).len(), 3);

    // The limit is per tenant.
    for n in 1..=3 {
        app.post_webhook(
            &globex,
            &json!({ "url": format!("https://127.0.0.1/m{n}") }),
        )
        .expect(201);
    }

    // Deleting one frees a slot, exactly one.
    let removed = ids.remove(0);
    let res = app.delete_webhook(&acme, &removed);
    assert_eq!(res.status, 200, "{}", res.text);
    ids.push(hook_id(
        &app.post_webhook(&acme, &json!({ "url": "https://127.0.0.1/m4" }))
            .expect(201),
    ));
    let res = app.post_webhook(&acme, &json!({ "url": "https://127.0.0.1/m5" }));
    res.assert_error(409, "api_error");
    assert_eq!(listed_ids(&app, &acme), ids);
}

#[test]
fn delete_is_soft_and_the_webhook_is_gone_everywhere() {
    let app = TestApp::for_webhooks();
    let key = app.tenant_with_key("Acme");
    let keep = hook_id(
        &app.post_webhook(&key, &json!({ "url": "https://127.0.0.1/keep" }))
            .expect(201),
    );
    let gone = hook_id(
        &app.post_webhook(&key, &json!({ "url": "https://127.0.0.1/gone" }))
            .expect(201),
    );

    let res = app.delete_webhook(&key, &gone);
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json(), json!({ "id": gone, "deleted": true }));

    let not_found = |res: Resp, what: &str| {
        let message = res.assert_error(404, "not_found_error");
        assert!(!message.is_empty(), "{what}");
    };
    not_found(app.get_webhook(&key, &gone), "GET");
    not_found(
        app.patch_webhook(&key, &gone, &json!({ "description": "back?" })),
        "PATCH",
    );
    not_found(
        app.patch_webhook(&key, &gone, &json!({ "is_active": true })),
        "PATCH is_active",
    );
    not_found(app.delete_webhook(&key, &gone), "DELETE again");
    not_found(app.rotate_secret(&key, &gone, None), "rotate");
    not_found(
        app.rotate_secret(&key, &gone, Some(&json!({ "overlap_hours": 1 }))),
        "rotate with a body",
    );

    assert_eq!(listed_ids(&app, &key), vec![keep.clone()]);
    let admin = app.admin_list_webhooks(&key.tenant);
    assert_eq!(admin.status, 200, "{}", admin.text);
    assert!(!admin.text.contains(&gone), "{}", admin.text);
    assert_eq!(
        app.get_webhook(&key, &keep).expect(200)["webhook"]["url"],
        "https://127.0.0.1/keep"
    );

    // A well-formed id that never existed is 404 on every route, too.
    let missing = uuid::Uuid::now_v7().to_string();
    not_found(app.get_webhook(&key, &missing), "GET missing");
    not_found(
        app.patch_webhook(&key, &missing, &json!({})),
        "PATCH missing",
    );
    not_found(app.delete_webhook(&key, &missing), "DELETE missing");
    not_found(app.rotate_secret(&key, &missing, None), "rotate missing");
}

#[test]
fn another_tenants_webhook_is_not_found() {
    let app = TestApp::for_webhooks();
    let acme = app.tenant_with_key("Acme");
    let globex = app.tenant_with_key("Globex");
    let created = app
        .post_webhook(
            &acme,
            &json!({ "url": "https://127.0.0.1/private", "description": "acme's" }),
        )
        .expect(201);
    let id = hook_id(&created);
    let before = created["webhook"].clone();

    for (what, res) in [
        ("GET", app.get_webhook(&globex, &id)),
        (
            "PATCH",
            app.patch_webhook(&globex, &id, &json!({ "description": "mine now" })),
        ),
        (
            "PATCH url",
            app.patch_webhook(&globex, &id, &json!({ "url": "https://127.0.0.9/x" })),
        ),
        ("rotate", app.rotate_secret(&globex, &id, None)),
        ("DELETE", app.delete_webhook(&globex, &id)),
    ] {
        let message = res.assert_error(404, "not_found_error");
        assert!(!message.contains("acme"), "{what}: {message}");
        assert!(res.json().get("secret").is_none(), "{what}");
    }
    assert!(list(&app, &globex).is_empty(), "not in the other list");
    assert_eq!(
        app.get_webhook(&acme, &id).expect(200)["webhook"],
        before,
        "untouched"
    );

    // Globex's key sent with Acme's tenant id is locked out before any lookup.
    let crossed = globex.for_tenant(&acme.tenant);
    app.get_webhook(&crossed, &id)
        .assert_error(403, "authorization_error");
    app.list_webhooks(&crossed)
        .assert_error(403, "authorization_error");

    // A malformed id names nothing: 404 on every route.
    for bad in ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"] {
        app.get_webhook(&acme, bad)
            .assert_error(404, "not_found_error");
        app.patch_webhook(&acme, bad, &json!({ "description": "x" }))
            .assert_error(404, "not_found_error");
        app.delete_webhook(&acme, bad)
            .assert_error(404, "not_found_error");
        app.rotate_secret(&acme, bad, None)
            .assert_error(404, "not_found_error");
    }
    assert_eq!(app.get_webhook(&acme, &id).expect(200)["webhook"], before);
}

#[test]
fn a_key_without_webhooks_manage_is_forbidden_on_every_webhook_route() {
    let app = TestApp::for_webhooks();
    let owner = app.tenant_with_key("Acme");
    let created = app
        .post_webhook(&owner, &json!({ "url": "https://127.0.0.1/scoped" }))
        .expect(201);
    let id = hook_id(&created);
    let before = created["webhook"].clone();
    let leads_only = app.issue_key(
        &owner.tenant,
        &["public_api:leads:read", "public_api:leads:write"],
    );
    let missing = uuid::Uuid::now_v7().to_string();

    let mut requests: Vec<(String, Resp)> = vec![
        ("list".into(), app.list_webhooks(&leads_only)),
        (
            "create".into(),
            app.post_webhook(&leads_only, &json!({ "url": "https://127.0.0.1/sneaky" })),
        ),
    ];
    for target in [id.as_str(), missing.as_str(), "not-a-uuid"] {
        requests.push((
            format!("GET {target}"),
            app.get_webhook(&leads_only, target),
        ));
        requests.push((
            format!("PATCH {target}"),
            app.patch_webhook(&leads_only, target, &json!({ "is_active": false })),
        ));
        requests.push((
            format!("DELETE {target}"),
            app.delete_webhook(&leads_only, target),
        ));
        requests.push((
            format!("rotate {target}"),
            app.rotate_secret(&leads_only, target, None),
        ));
    }
    for (what, res) in requests {
        let message = res.assert_error(403, "authorization_error");
        assert!(!message.is_empty(), "{what}");
    }
    assert_eq!(
        app.get_webhook(&owner, &id).expect(200)["webhook"],
        before,
        "nothing changed"
    );
    assert_eq!(list(&app, &owner).len(), 1);

    // The scope alone is enough.
    let manage_only = app.issue_key(&owner.tenant, &["public_api:webhooks:manage"]);
    assert_eq!(listed_ids(&app, &manage_only), vec![id]);
}

/// §1 and §10: authentication and scope come before anything else, the body included. The
/// same request must get the same answer every time, so it is sent repeatedly.
#[test]
fn scope_is_checked_before_the_body_is_looked_at() {
    let app = TestApp::for_webhooks_with(|c| c.limits.unauthenticated_per_minute = 1_000_000);
    let owner = app.tenant_with_key("Acme");
    let id = hook_id(
        &app.post_webhook(&owner, &json!({ "url": "https://127.0.0.1/order" }))
            .expect(201),
    );
    let leads_only = app.issue_key(&owner.tenant, &["public_api:leads:read"]);
    let mut statuses = Vec::new();
    for _ in 0..20 {
        for res in [
            app.post_webhook(&leads_only, &json!({ "url": 1 })),
            app.patch_webhook(&leads_only, &id, &json!({ "timeout_seconds": "ten" })),
            app.patch_webhook(&leads_only, &id, &json!({ "timeout_seconds": 0 })),
            app.rotate_secret(&leads_only, &id, Some(&json!({ "overlap_hours": 169 }))),
        ] {
            statuses.push(res.status);
            if res.status != 403 {
                eprintln!("not 403: {}", res.text);
            }
        }
    }
    let scope_statuses = statuses;

    // Likewise an unknown (well-formed) token is 401 whatever the body holds.
    let unknown = Key {
        id: String::new(),
        token: format!("mega_{}", "ab".repeat(32)),
        tenant: owner.tenant.clone(),
    };
    let auth_statuses: Vec<u16> = (0..20)
        .map(|_| app.post_webhook(&unknown, &json!({ "url": 1 })).status)
        .collect();
    assert!(
        scope_statuses.iter().all(|&s| s == 403) && auth_statuses.iter().all(|&s| s == 401),
        "a key without the scope must always get 403, got {scope_statuses:?}; \
         an unknown token must always get 401, got {auth_statuses:?}"
    );
}
