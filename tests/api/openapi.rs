//! `/openapi.json` against the router: every public route is documented, every documented
//! route and method exists, and every `$ref` resolves. (`scripts/contract-check.sh` goes further
//! and fuzzes the server against the document.)

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::TestApp;

/// Every public route of the server, as the router names it.
const PUBLIC_ROUTES: &[&str] = &[
    "/api/agents/crm/leads",
    "/api/agents/crm/leads/bulk",
    "/api/agents/crm/leads/export",
    "/api/agents/crm/leads/{id}",
    "/api/agents/crm/leads/{id}/interactions",
    "/api/agents/crm/events",
    "/api/agents/crm/lead-webhooks",
    "/api/agents/crm/lead-webhooks/{id}",
    "/api/agents/crm/lead-webhooks/{id}/rotate-secret",
    "/api/agents/crm/lead-webhooks/{id}/test",
    "/api/agents/crm/lead-webhooks/{id}/deliveries",
    "/api/agents/crm/lead-webhooks/{id}/deliveries/{delivery_id}",
    "/api/agents/crm/lead-webhooks/{id}/deliveries/{delivery_id}/redeliver",
    "/api/agents/crm/lead-webhooks/{id}/recover",
    "/healthz",
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn method(name: &str) -> &'static str {
    match name {
        "get" => "GET",
        "post" => "POST",
        "patch" => "PATCH",
        "delete" => "DELETE",
        "put" => "PUT",
        other => panic!("unexpected method {other}"),
    }
}

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_describes_exactly_the_public_routes() {
    let app = TestApp::spawn();
    let res = app.req("GET", "/openapi.json").send();
    assert_eq!(res.status, 200);
    assert!(
        res.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let doc = res.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let public: BTreeSet<&str> = PUBLIC_ROUTES.iter().copied().collect();
    assert_eq!(documented, public);

    let id = "01900000-0000-7000-8000-000000000000";
    for (path, item) in paths {
        let concrete = path.replace("{id}", id).replace("{delivery_id}", id);
        let methods: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| METHODS.contains(&k.as_str()))
            .map(|m| method(m).to_string())
            .collect();
        // The router's `Allow` on a 405 lists exactly the documented methods.
        let res = app.req("PUT", &concrete).send();
        res.assert_error(405, "invalid_request_error");
        let mut allowed: BTreeSet<String> = res
            .header("allow")
            .expect("Allow")
            .split(',')
            .map(|m| m.trim().to_string())
            .collect();
        // HEAD goes with GET and is not documented on its own.
        assert_eq!(allowed.remove("HEAD"), methods.contains("GET"), "{path}");
        assert_eq!(allowed, methods, "{path}");
        // Each documented operation exists: without credentials it is 401 (or 200 when open).
        for m in &methods {
            let verb = method(&m.to_lowercase());
            let res = app.req(verb, &concrete).send();
            let open = item[m.to_lowercase()]["security"] == Value::Array(vec![]);
            if open {
                assert_eq!(res.status, 200, "{m} {path}");
            } else {
                res.assert_error(401, "authentication_error");
                for h in [
                    "x-request-id",
                    "ratelimit-limit",
                    "ratelimit-remaining",
                    "ratelimit-reset",
                ] {
                    assert!(res.header(h).is_some(), "{m} {path}: {h}");
                }
            }
        }
    }

    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').expect("local $ref");
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}
