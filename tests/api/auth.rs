//! Authentication and authorisation of API keys, in the spec's order.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[test]
fn a_valid_key_gets_200_and_its_use_is_recorded() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key("Acme");
    let res = app.list_leads(&key, "");
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["leads"], json!([]));
    // `last_used_at` is written in the background; give it a moment.
    eventually("last_used_at recorded", Duration::from_secs(1), || {
        let keys = app.list_keys(&key.tenant).expect(200);
        if keys["keys"][0]["last_used_at"].is_string() {
            Ok(())
        } else {
            Err(keys.to_string())
        }
    });
}

#[test]
fn missing_malformed_and_unknown_tokens_are_401() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key("Acme");
    let cases = [
        (None, "missing Authorization"),
        (Some("Basic abc".to_string()), "malformed Authorization"),
        (
            Some("Bearer mega_123".to_string()),
            "malformed Authorization",
        ),
        (
            Some(format!("Bearer {}", key.token.to_uppercase())),
            "malformed Authorization",
        ),
        (
            Some(format!("Bearer mega_{}", "0".repeat(64))),
            "invalid API key",
        ),
    ];
    for (header, expected) in cases {
        let mut req = app.req("GET", LEADS).header("x-customer-id", &key.tenant);
        if let Some(h) = &header {
            req = req.header("authorization", h);
        }
        let message = req.send().assert_error(401, "authentication_error");
        assert!(message.contains(expected), "{header:?}: {message}");
    }
}

#[test]
fn a_missing_or_malformed_customer_id_is_401() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key("Acme");
    let message = app
        .req("GET", LEADS)
        .bearer(&key.token)
        .send()
        .assert_error(401, "authentication_error");
    assert!(message.contains("x-customer-id"), "{message}");
    let message = app
        .req("GET", LEADS)
        .bearer(&key.token)
        .header("x-customer-id", "acme")
        .send()
        .assert_error(401, "authentication_error");
    assert!(message.contains("UUID"), "{message}");
}

#[test]
fn the_customer_id_is_only_the_hyphenated_uuid() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key("Acme");
    let tenant = &key.tenant;
    for spelling in [
        format!("{{{tenant}}}"),
        tenant.replace('-', ""),
        format!("urn:uuid:{tenant}"),
    ] {
        let message = app
            .api("GET", LEADS, &key.for_tenant(&spelling))
            .send()
            .assert_error(401, "authentication_error");
        assert!(message.contains("UUID"), "{spelling}: {message}");
    }
    app.api("GET", LEADS, &key.for_tenant(&tenant.to_uppercase()))
        .send()
        .expect(200);
}

#[test]
fn the_token_is_checked_before_the_customer_id() {
    let app = TestApp::spawn();
    app.req("GET", LEADS)
        .bearer(&format!("mega_{}", "1".repeat(64)))
        .send()
        .assert_error(401, "authentication_error");
    let message = app
        .req("GET", LEADS)
        .send()
        .assert_error(401, "authentication_error");
    assert!(message.contains("Authorization"), "{message}");
}

#[test]
fn a_key_used_for_another_customer_is_403() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key("Acme");
    let other = app.create_tenant("Globex");
    let message = app
        .list_leads(&key.for_tenant(&other), "")
        .assert_error(403, "authorization_error");
    assert!(message.contains("another customer"), "{message}");
    // A well-formed id naming no tenant is the same refusal: the key is locked elsewhere.
    let nobody = uuid::Uuid::now_v7().to_string();
    app.list_leads(&key.for_tenant(&nobody), "")
        .assert_error(403, "authorization_error");
}

#[test]
fn a_key_without_the_scope_is_403_even_for_missing_resources() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Acme");
    let reader = app.issue_key(&tenant, &["public_api:leads:read"]);
    let message = app
        .post_lead(&reader, &json!({ "contact_name": "Ada" }))
        .assert_error(403, "authorization_error");
    assert!(message.contains("public_api:leads:write"), "{message}");
    app.patch_lead(&reader, &uuid::Uuid::now_v7().to_string(), &json!({}))
        .assert_error(403, "authorization_error");
    let writer = app.issue_key(&tenant, &["public_api:leads:write"]);
    app.get_lead(&writer, &uuid::Uuid::now_v7().to_string())
        .assert_error(403, "authorization_error");
}

#[test]
fn a_revoked_key_is_refused() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key("Acme");
    assert_eq!(app.list_leads(&key, "").status, 200);
    let res = app.revoke_key(&key.id);
    assert_eq!(res.status, 200);
    let message = app
        .list_leads(&key, "")
        .assert_error(401, "authentication_error");
    assert!(message.contains("revoked"), "{message}");
}

#[test]
fn an_expired_key_is_refused() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Acme");
    let expires = app.now().plus_ms(1_500).to_iso();
    let res = app.post_key(
        &tenant,
        &json!({ "name": "short", "scopes": ALL_SCOPES, "expires_at": expires }),
    );
    assert_eq!(res.status, 201, "{}", res.text);
    let key = Key {
        id: res.json()["key"]["id"].as_str().unwrap().into(),
        token: res.json()["token"].as_str().unwrap().into(),
        tenant,
    };
    assert_eq!(app.list_leads(&key, "").status, 200);
    app.advance_clock(1_600);
    let message = app
        .list_leads(&key, "")
        .assert_error(401, "authentication_error");
    assert!(message.contains("expired"), "{message}");
}

#[test]
fn api_responses_carry_no_cors_headers() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key("Acme");
    let res = app
        .api("GET", LEADS, &key)
        .header("origin", "https://evil.example")
        .send();
    assert!(
        res.headers
            .keys()
            .all(|h| !h.starts_with("access-control-")),
        "{:?}",
        res.headers
    );
}
