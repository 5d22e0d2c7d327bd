//! Spec §15: the operator's mirror of the public routes under `/admin/api/tenants/{id}/…`
//! answers as a tenant's key does (same bodies, responses and validation), with the admin token
//! and no key; an unknown tenant is 404 and a wrong token 401, before anything is looked at.

use serde_json::{Value, json};

use crate::helpers::*;

/// `/api/agents/crm/leads/x` → `/admin/api/tenants/{tenant}/leads/x`;
/// `/api/agents/crm/lead-webhooks/x` → `/admin/api/tenants/{tenant}/webhooks/x`.
fn mirror(tenant: &str, public: &str) -> String {
    let rest = public
        .strip_prefix("/api/agents/crm/")
        .expect("public path");
    let rest = rest
        .strip_prefix("lead-webhooks")
        .map_or(rest.to_string(), |tail| format!("webhooks{tail}"));
    format!("/admin/api/tenants/{tenant}/{rest}")
}

/// The same request as the key and as the operator.
fn both(
    app: &TestApp,
    key: &Key,
    method: &'static str,
    path: &str,
    body: Option<&Value>,
) -> (Resp, Resp) {
    let send = |req: Req<'_>| match body {
        Some(b) => req.json(b).send(),
        None => req.send(),
    };
    let public = send(app.api(method, path, key));
    let operator = send(app.admin(method, &mirror(&key.tenant, path)));
    (public, operator)
}

/// Asserts both answered `status` with the same body; returns it.
fn same(app: &TestApp, key: &Key, method: &'static str, path: &str, status: u16) -> Value {
    let (public, operator) = both(app, key, method, path, None);
    let body = public.expect(status);
    assert_eq!(operator.expect(status), body, "{method} {path}");
    body
}

const LEADS: &str = "/api/agents/crm/leads";
const WEBHOOKS: &str = "/api/agents/crm/lead-webhooks";

#[test]
fn the_operator_reads_and_writes_leads_as_the_key_does() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let t = key.tenant.clone();

    // Create through the mirror: the public API sees the lead, as created by anyone.
    let created = app
        .admin("POST", &mirror(&t, LEADS))
        .json(&json!({ "contact_name": "Ada Lovelace", "contact_email": "ada@example.com" }))
        .send()
        .expect(201);
    assert_eq!(created["merged"], false);
    let id = created["lead"]["id"].as_str().unwrap().to_string();
    let public = app.get_lead(&key, &id).expect(200);
    assert_eq!(public["lead"], created["lead"]);

    // The merge rules are the same: the same e-mail merges.
    let merged = app
        .admin("POST", &mirror(&t, LEADS))
        .json(&json!({ "contact_name": "Ada King", "contact_email": "ADA@example.com" }))
        .send()
        .expect(201);
    assert_eq!(merged["merged"], true);
    assert_eq!(merged["lead"]["id"], id.as_str());

    for i in 0..5 {
        app.post_lead(&key, &json!({ "contact_name": format!("Lead {i}"), "contact_phone": format!("(206) 555-01{i:02}") }))
            .expect(201);
    }
    // Reads: byte for byte the same answer.
    for query in [
        "",
        "?limit=2",
        "?search=lovelace",
        "?status=active&sort_by=created_at",
    ] {
        same(&app, &key, "GET", &format!("{LEADS}{query}"), 200);
    }
    let page = same(&app, &key, "GET", &format!("{LEADS}?limit=2"), 200);
    let cursor = page["next_cursor"].as_str().unwrap();
    same(
        &app,
        &key,
        "GET",
        &format!("{LEADS}?limit=2&cursor={cursor}"),
        200,
    );
    same(&app, &key, "GET", &format!("{LEADS}/{id}"), 200);

    let export = |req: Req<'_>| {
        let res = req.send();
        assert_eq!(res.status, 200);
        res.text.clone()
    };
    for format in ["csv", "jsonl"] {
        let path = format!("{LEADS}/export?format={format}");
        assert_eq!(
            export(app.api("GET", &path, &key)),
            export(app.admin("GET", &mirror(&t, &path))),
            "{format}"
        );
    }

    // PATCH with If-Match, interactions, bulk and delete, through the mirror.
    let etag = app.get_lead(&key, &id).header("etag").unwrap().to_string();
    let patched = app
        .admin("PATCH", &mirror(&t, &format!("{LEADS}/{id}")))
        .header("if-match", &etag)
        .json(&json!({ "status": "won" }))
        .send()
        .expect(200);
    assert_eq!(patched["lead"]["status"], "won");
    let stale = app
        .admin("PATCH", &mirror(&t, &format!("{LEADS}/{id}")))
        .header("if-match", &etag)
        .json(&json!({ "status": "lost" }))
        .send();
    stale.assert_error(412, "api_error");

    let interactions = format!("{LEADS}/{id}/interactions");
    app.admin("POST", &mirror(&t, &interactions))
        .json(&json!({ "type": "call", "notes": "Called back" }))
        .send()
        .expect(201);
    let listed = same(&app, &key, "GET", &interactions, 200);
    assert_eq!(
        listed["interactions"].as_array().unwrap().len(),
        1,
        "{listed}"
    );

    let rows = json!({ "dry_run": true, "leads": [
        { "row_ref": "1", "contact_name": "New One", "contact_email": "new@example.com" },
        { "row_ref": "2", "contact_name": "Ada", "contact_email": "ada@example.com" },
        { "row_ref": "3", "contact_email": "not an e-mail" },
    ]});
    let (public, operator) = both(&app, &key, "POST", &format!("{LEADS}/bulk"), Some(&rows));
    assert_eq!(operator.expect(200), public.expect(200));

    same(&app, &key, "GET", "/api/agents/crm/events?limit=50", 200);

    app.admin("DELETE", &mirror(&t, &format!("{LEADS}/{id}")))
        .send()
        .expect(200);
    app.get_lead(&key, &id).assert_error(404, "not_found_error");
}

#[test]
fn the_operator_s_bad_requests_get_the_key_s_errors() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let cases: &[(&'static str, String, Option<Value>)] = &[
        ("POST", LEADS.into(), Some(json!({}))),
        ("POST", LEADS.into(), Some(json!({ "contact_name": 5 }))),
        ("GET", format!("{LEADS}?limit=0"), None),
        ("GET", format!("{LEADS}?cursor=garbage"), None),
        ("GET", format!("{LEADS}/not-a-uuid"), None),
        (
            "GET",
            format!("{LEADS}/01900000-0000-7000-8000-000000000000"),
            None,
        ),
        (
            "POST",
            WEBHOOKS.into(),
            Some(json!({ "url": "http://example.com/hook" })),
        ),
        (
            "GET",
            format!("{WEBHOOKS}/01900000-0000-7000-8000-000000000000"),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let (public, operator) = both(&app, &key, method, path, body.as_ref());
        assert!(public.status >= 400, "{method} {path}: {}", public.status);
        assert_eq!(operator.status, public.status, "{method} {path}");
        assert_eq!(
            operator.json()["error"],
            public.json()["error"],
            "{method} {path}"
        );
    }
}

#[test]
fn the_mirror_needs_the_admin_token_and_a_tenant_that_exists() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let path = mirror(&key.tenant, LEADS);
    app.req("GET", &path)
        .send()
        .assert_error(401, "authentication_error");
    app.req("GET", &path)
        .bearer("not-the-token")
        .send()
        .assert_error(401, "authentication_error");
    // A tenant's key is not the admin token, even for its own tenant.
    app.req("GET", &path)
        .bearer(&key.token)
        .send()
        .assert_error(401, "authentication_error");
    let unknown = "01900000-0000-7000-8000-000000000000";
    let message = app
        .admin("GET", &mirror(unknown, LEADS))
        .send()
        .assert_error(404, "not_found_error");
    assert!(message.contains(unknown), "{message}");
    // The token comes first: no tenant is looked up, and none named, without it.
    for tenant in [unknown, "not-a-uuid"] {
        app.req("GET", &mirror(tenant, LEADS))
            .send()
            .assert_error(401, "authentication_error");
    }
    app.admin("POST", &mirror("not-a-uuid", WEBHOOKS))
        .json(&json!({ "url": "https://example.com/hook" }))
        .send()
        .assert_error(404, "not_found_error");
}

#[test]
fn the_operator_manages_webhooks_and_their_deliveries() {
    let env = DeliveryEnv::start();
    let (app, key) = (&env.app, &env.key);
    let t = key.tenant.clone();
    let created = app
        .admin("POST", &mirror(&t, WEBHOOKS))
        .json(&json!({ "url": env.rx.url("/hook"), "event_types": ["lead.created"] }))
        .send()
        .expect(201);
    assert!(
        created["secret"]
            .as_str()
            .unwrap()
            .starts_with("mega_whsec_")
    );
    let hook = Hook::from_created(&created);
    let listed = same(app, key, "GET", WEBHOOKS, 200);
    assert_eq!(listed["webhooks"][0]["id"], hook.id.as_str());
    assert!(listed["webhooks"][0].get("secret").is_none(), "{listed}");

    let one = format!("{WEBHOOKS}/{}", hook.id);
    app.admin("PATCH", &mirror(&t, &one))
        .json(&json!({ "description": "CRM sync" }))
        .send()
        .expect(200);
    assert_eq!(env.webhook(&hook)["description"], "CRM sync");

    app.admin("POST", &mirror(&t, &format!("{one}/test")))
        .send()
        .expect(202);
    env.lead(json!({ "contact_name": "Grace", "contact_email": "grace@example.com" }));
    let finals = env.all_final(&hook);
    assert_eq!(finals.len(), 2, "{finals:?}");
    let log = same(app, key, "GET", &format!("{one}/deliveries"), 200);
    let delivery = log["data"][0]["id"].as_str().unwrap().to_string();
    let detail = same(
        app,
        key,
        "GET",
        &format!("{one}/deliveries/{delivery}"),
        200,
    );
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 1, "{detail}");

    app.admin(
        "POST",
        &mirror(&t, &format!("{one}/deliveries/{delivery}/redeliver")),
    )
    .send()
    .expect(202);
    let preview = app
        .admin("POST", &mirror(&t, &format!("{one}/recover")))
        .json(&json!({ "since": "2000-01-01T00:00:00Z", "dry_run": true }))
        .send()
        .expect(200);
    let public = app.recover(
        key,
        &hook.id,
        &json!({ "since": "2000-01-01T00:00:00Z", "dry_run": true }),
    );
    assert_eq!(preview, public.expect(200));

    let rotated = app
        .admin("POST", &mirror(&t, &format!("{one}/rotate-secret")))
        .send()
        .expect(200);
    assert!(
        rotated["secret"]
            .as_str()
            .unwrap()
            .starts_with("mega_whsec_")
    );
    app.admin("DELETE", &mirror(&t, &one)).send().expect(200);
    app.get_webhook(key, &hook.id)
        .assert_error(404, "not_found_error");
}

#[test]
fn the_mirror_of_one_tenant_never_reaches_another_s_records() {
    let app = TestApp::relaxed();
    let (a, b) = (app.tenant_with_key("Acme"), app.tenant_with_key("Beta"));
    let lead = app.create_lead(&a, json!({ "contact_name": "Only Acme's" }));
    let id = lead["id"].as_str().unwrap();
    let path = mirror(&b.tenant, &format!("{LEADS}/{id}"));
    app.admin("GET", &path)
        .send()
        .assert_error(404, "not_found_error");
    app.admin("PATCH", &path)
        .json(&json!({ "status": "won" }))
        .send()
        .assert_error(404, "not_found_error");
    app.admin("DELETE", &path)
        .send()
        .assert_error(404, "not_found_error");
    let listed = app
        .admin("GET", &mirror(&b.tenant, LEADS))
        .send()
        .expect(200);
    assert_eq!(listed["total"], 0, "{listed}");
    assert_eq!(app.get_lead(&a, id).expect(200)["lead"]["status"], "active");
}

/// One `Idempotency-Key` is one request whichever door it came through: the operator's retry
/// of a key's create replays it (and the other way round), a different body is refused.
#[test]
fn an_idempotency_key_is_shared_by_the_key_and_the_operator() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let body = json!({ "contact_name": "Once", "contact_email": "once@example.com" });
    let first = app
        .api("POST", LEADS, &key)
        .header("idempotency-key", "create-once")
        .json(&body)
        .send()
        .expect(201);
    let again = app
        .admin("POST", &mirror(&key.tenant, LEADS))
        .header("idempotency-key", "create-once")
        .json(&body)
        .send()
        .expect(201);
    assert_eq!(again, first);
    app.admin("POST", &mirror(&key.tenant, LEADS))
        .header("idempotency-key", "create-once")
        .json(&json!({ "contact_name": "Other" }))
        .send()
        .assert_error(409, "api_error");
    assert_eq!(app.lead_total(&key), 1);
}
