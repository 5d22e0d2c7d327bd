//! The error envelope on every error path, and `X-Request-Id` on every response.

use serde_json::json;

use crate::helpers::*;

#[test]
fn unknown_routes_are_404_whatever_the_credentials() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key("Acme");
    for res in [
        app.req("GET", "/nope").send(),
        app.api("GET", "/api/agents/crm/nope", &key).send(),
        app.req("POST", "/api/agents/crm/leads/bulk/extra").send(),
        app.admin("GET", "/admin/api/nothing").send(),
    ] {
        let message = res.assert_error(404, "not_found_error");
        assert!(message.contains("no route"), "{message}");
    }
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let app = TestApp::spawn();
    let res = app.req("DELETE", "/healthz").send();
    res.assert_error(405, "invalid_request_error");
    assert_eq!(res.header("allow"), Some("GET, HEAD"));
    let res = app.admin("PUT", "/admin/api/tenants").send();
    res.assert_error(405, "invalid_request_error");
    let allow = res.header("allow").expect("Allow");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let res = app.req("GET", "/api/agents/crm/leads/bulk").send();
    res.assert_error(405, "invalid_request_error");
    assert_eq!(res.header("allow"), Some("POST"));
}

#[test]
fn head_is_answered_like_get_without_a_body() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key("Acme");
    for path in ["/healthz", "/openapi.json", "/admin"] {
        let get = app.req("GET", path).send();
        let head = app.req("HEAD", path).send();
        assert_eq!(head.status, 200, "{path}");
        assert_eq!(head.text, "", "{path}");
        assert_eq!(
            head.header("content-length"),
            Some(get.text.len().to_string().as_str()),
            "{path}"
        );
        assert!(head.header("x-request-id").is_some(), "{path}");
    }
    let head = app.api("HEAD", "/api/agents/crm/leads", &key).send();
    assert_eq!(head.status, 200);
    assert_eq!(head.text, "");
    assert!(head.header("ratelimit-remaining").is_some());
    // Authentication still applies, and routes without GET still refuse it.
    assert_eq!(app.req("HEAD", "/api/agents/crm/leads").send().status, 401);
    let head = app.api("HEAD", "/api/agents/crm/leads/bulk", &key).send();
    assert_eq!(head.status, 405);
    assert_eq!(head.header("allow"), Some("POST"));
}

#[test]
fn malformed_json_is_400_naming_the_problem() {
    let app = TestApp::spawn();
    let res = app
        .admin("POST", "/admin/api/tenants")
        .header("content-type", "application/json")
        .raw("{\"name\": ")
        .send();
    let message = res.assert_error(400, "invalid_request_error");
    assert!(message.contains("malformed JSON"), "{message}");

    let res = app.post_tenant(&json!({ "title": "x" }));
    let message = res.assert_error(400, "invalid_request_error");
    assert!(
        message.contains("name"),
        "names the missing field: {message}"
    );

    let res = app.post_tenant(&json!({ "name": "   " }));
    let message = res.assert_error(400, "invalid_request_error");
    assert_eq!(message, "name must not be empty");
}

#[test]
fn oversized_bodies_are_413() {
    let app = TestApp::spawn();
    let name = "x".repeat(70 * 1024);
    let res = app.post_tenant(&json!({ "name": name }));
    let message = res.assert_error(413, "invalid_request_error");
    assert!(message.contains("larger than"), "{message}");
}

#[test]
fn bodies_without_json_content_type_are_415() {
    let app = TestApp::spawn();
    let res = app
        .admin("POST", "/admin/api/tenants")
        .header("content-type", "text/plain")
        .raw("{\"name\":\"x\"}")
        .send();
    res.assert_error(415, "invalid_request_error");
    let res = app
        .admin("POST", "/admin/api/tenants")
        .raw("{\"name\":\"x\"}")
        .send();
    res.assert_error(415, "invalid_request_error");
}

#[test]
fn failed_requests_change_nothing() {
    let app = TestApp::spawn();
    app.post_tenant(&json!({ "name": "" }));
    app.admin("POST", "/admin/api/tenants").raw("{}").send();
    let res = app.list_tenants();
    assert_eq!(res.json()["tenants"], json!([]));
}

#[test]
fn every_response_carries_a_request_id() {
    let app = TestApp::spawn();
    let ok = app.req("GET", "/healthz").send();
    let missing = app.req("GET", "/missing").send();
    let unauthorised = app.req("GET", "/admin/api/tenants").send();
    let mut ids = Vec::new();
    for res in [&ok, &missing, &unauthorised] {
        let id = res
            .header("x-request-id")
            .expect("X-Request-Id")
            .to_string();
        assert!(!id.is_empty());
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "ids are distinct");
    let echoed = app
        .req("GET", "/healthz")
        .header("x-request-id", "trace-42")
        .send();
    assert_eq!(echoed.header("x-request-id"), Some("trace-42"));
    let replaced = app
        .req("GET", "/healthz")
        .header("x-request-id", "bad id with spaces")
        .send();
    assert_ne!(replaced.header("x-request-id"), Some("bad id with spaces"));
}

#[test]
fn admin_routes_need_the_admin_token() {
    let app = TestApp::spawn();
    app.req("GET", "/admin/api/tenants")
        .send()
        .assert_error(401, "authentication_error");
    app.req("GET", "/admin/api/tenants")
        .bearer("not-the-token")
        .send()
        .assert_error(401, "authentication_error");
    app.req("GET", "/metrics")
        .send()
        .assert_error(401, "authentication_error");
    let key = app.tenant_with_key("Acme");
    app.req("GET", "/admin/api/tenants")
        .bearer(&key.token)
        .send()
        .assert_error(401, "authentication_error");
}

#[test]
fn health_metrics_and_openapi_answer() {
    let app = TestApp::spawn();
    let health = app.req("GET", "/healthz").send();
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    app.req("GET", "/nope").send();
    let metrics = app.admin("GET", "/metrics").send();
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap_or("")
            .starts_with("text/plain")
    );
    assert!(
        metrics.text.contains(
            "leadbase_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"
        ),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("route=\"unmatched\",method=\"GET\",status=\"404\""),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("leadbase_http_request_duration_seconds_bucket")
    );
    let openapi = app.req("GET", "/openapi.json").send();
    assert_eq!(openapi.status, 200);
    assert_eq!(openapi.json()["openapi"], "3.1.0");
}
