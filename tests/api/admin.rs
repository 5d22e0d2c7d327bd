//! Admin API: tenants, keys, stages, custom fields, owners.

use serde_json::{Value, json};

use crate::helpers::*;

#[test]
fn tenants_are_created_listed_read_and_renamed() {
    let app = spawn_app();
    let res = app
        .admin("POST", "/admin/api/tenants")
        .json(&json!({ "name": " Acme Realty " }))
        .send();
    assert_eq!(res.status, 201);
    let tenant = res.json()["tenant"].clone();
    assert_eq!(tenant["name"], "Acme Realty");
    let id = tenant["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert!(tenant["created_at"].as_str().unwrap().ends_with('Z'));

    let list = app.admin("GET", "/admin/api/tenants").send().json();
    assert_eq!(list["tenants"], json!([tenant]));
    let one = app
        .admin("GET", &format!("/admin/api/tenants/{id}"))
        .send()
        .json();
    assert_eq!(one["tenant"], tenant);
    let renamed = app
        .admin("PATCH", &format!("/admin/api/tenants/{id}"))
        .json(&json!({ "name": "Acme" }))
        .send();
    assert_eq!(renamed.status, 200);
    assert_eq!(renamed.json()["tenant"]["name"], "Acme");

    let missing = uuid::Uuid::now_v7();
    app.admin("GET", &format!("/admin/api/tenants/{missing}"))
        .send()
        .assert_error(404, "not_found_error");
    app.admin("GET", "/admin/api/tenants/not-a-uuid")
        .send()
        .assert_error(404, "not_found_error");
}

#[test]
fn keys_show_their_token_once_and_revoke() {
    let app = spawn_app();
    let tenant = app.create_tenant("Acme");
    let res = app
        .admin("POST", &format!("/admin/api/tenants/{tenant}/keys"))
        .json(&json!({ "name": "zapier", "scopes": ["public_api:leads:read"] }))
        .send();
    assert_eq!(res.status, 201, "{}", res.text);
    let body = res.json();
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("mega_") && token.len() == 69);
    let key = &body["key"];
    assert_eq!(key["prefix"], &token[..13]);
    assert_eq!(key["scopes"], json!(["public_api:leads:read"]));
    assert_eq!(key["revoked_at"], Value::Null);
    assert_eq!(key["last_used_at"], Value::Null);

    let list = app
        .admin("GET", &format!("/admin/api/tenants/{tenant}/keys"))
        .send();
    assert!(
        !list.text.contains(&token[13..]),
        "the token never appears again"
    );
    assert_eq!(list.json()["keys"].as_array().unwrap().len(), 1);

    let key_id = key["id"].as_str().unwrap();
    let revoked = app
        .admin("DELETE", &format!("/admin/api/keys/{key_id}"))
        .send();
    assert_eq!(revoked.status, 200);
    assert_eq!(revoked.json(), json!({ "id": key_id, "revoked": true }));
    let list = app
        .admin("GET", &format!("/admin/api/tenants/{tenant}/keys"))
        .send()
        .json();
    assert!(list["keys"][0]["revoked_at"].is_string());
    app.admin(
        "DELETE",
        &format!("/admin/api/keys/{}", uuid::Uuid::now_v7()),
    )
    .send()
    .assert_error(404, "not_found_error");
}

#[test]
fn key_requests_are_validated() {
    let app = spawn_app();
    let tenant = app.create_tenant("Acme");
    let path = format!("/admin/api/tenants/{tenant}/keys");
    let cases = [
        (
            json!({ "name": "x", "scopes": [] }),
            "scopes must name at least one scope",
        ),
        (
            json!({ "name": "x", "scopes": ["leads:read"] }),
            "unknown scope `leads:read`",
        ),
        (
            json!({ "name": "x", "scopes": ALL_SCOPES, "expires_at": "soon" }),
            "expires_at",
        ),
        (
            json!({ "name": "x", "scopes": ALL_SCOPES, "expires_at": "2001-01-01T00:00:00Z" }),
            "expires_at must be in the future",
        ),
    ];
    for (body, expected) in cases {
        let message = app
            .admin("POST", &path)
            .json(&body)
            .send()
            .assert_error(400, "invalid_request_error");
        assert!(message.contains(expected), "{message}");
    }
    let missing = uuid::Uuid::now_v7();
    app.admin("POST", &format!("/admin/api/tenants/{missing}/keys"))
        .json(&json!({ "name": "x", "scopes": ALL_SCOPES }))
        .send()
        .assert_error(404, "not_found_error");
}

#[test]
fn new_tenants_get_the_default_pipeline_and_lead_line() {
    let app = spawn_app();
    let tenant = app.create_tenant("Acme");
    let stages = app
        .admin("GET", &format!("/admin/api/tenants/{tenant}/stages"))
        .send()
        .json();
    let slugs: Vec<&str> = stages["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["new", "contacted", "qualified", "won", "lost"]);
    assert_eq!(stages["stages"][0]["position"], 0);
    let fields = app
        .admin("GET", &format!("/admin/api/tenants/{tenant}/custom-fields"))
        .send()
        .json();
    assert_eq!(fields["custom_fields"][0]["slug"], "lead_line");
    assert_eq!(fields["custom_fields"][0]["reserved"], true);
}

#[test]
fn stages_are_created_reordered_and_deleted() {
    let app = spawn_app();
    let tenant = app.create_tenant("Acme");
    let base = format!("/admin/api/tenants/{tenant}/stages");
    let res = app
        .admin("POST", &base)
        .json(&json!({ "slug": "showing", "name": "Showing", "color": "#ABC" }))
        .send();
    assert_eq!(res.status, 201, "{}", res.text);
    let stage = res.json()["stage"].clone();
    assert_eq!(stage["position"], 5);
    assert_eq!(stage["color"], "#abc");
    let id = stage["id"].as_str().unwrap();
    app.admin("POST", &base)
        .json(&json!({ "slug": "showing", "name": "Again" }))
        .send()
        .assert_error(409, "api_error");
    app.admin("POST", &base)
        .json(&json!({ "slug": "Bad Slug", "name": "x" }))
        .send()
        .assert_error(400, "invalid_request_error");

    let moved = app
        .admin("PATCH", &format!("{base}/{id}"))
        .json(&json!({ "position": 1, "color": null }))
        .send();
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.json()["stage"]["position"], 1);
    assert_eq!(moved.json()["stage"]["color"], Value::Null);
    let slugs: Vec<String> = app.admin("GET", &base).send().json()["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["slug"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        slugs,
        ["new", "showing", "contacted", "qualified", "won", "lost"]
    );

    let deleted = app.admin("DELETE", &format!("{base}/{id}")).send();
    assert_eq!(deleted.json(), json!({ "id": id, "deleted": true }));
    app.admin("DELETE", &format!("{base}/{id}"))
        .send()
        .assert_error(404, "not_found_error");
    let positions: Vec<u64> = app.admin("GET", &base).send().json()["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [0, 1, 2, 3, 4], "positions stay contiguous");
}

#[test]
fn custom_fields_and_owners() {
    let app = spawn_app();
    let tenant = app.create_tenant("Acme");
    let fields = format!("/admin/api/tenants/{tenant}/custom-fields");
    let res = app
        .admin("POST", &fields)
        .json(&json!({ "slug": "budget", "name": "Budget", "type": "number" }))
        .send();
    assert_eq!(res.status, 201, "{}", res.text);
    let field = res.json()["custom_field"].clone();
    assert_eq!(field["type"], "number");
    assert_eq!(field["reserved"], false);
    app.admin("POST", &fields)
        .json(&json!({ "slug": "lead_line", "name": "Again" }))
        .send()
        .assert_error(409, "api_error");
    app.admin("POST", &fields)
        .json(&json!({ "slug": "x", "name": "X", "type": "date" }))
        .send()
        .assert_error(400, "invalid_request_error");
    let lead_line = app.admin("GET", &fields).send().json()["custom_fields"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.admin("DELETE", &format!("{fields}/{lead_line}"))
        .send()
        .assert_error(409, "api_error");
    let fid = field["id"].as_str().unwrap();
    let renamed = app
        .admin("PATCH", &format!("{fields}/{fid}"))
        .json(&json!({ "name": "Max budget" }))
        .send();
    assert_eq!(renamed.json()["custom_field"]["name"], "Max budget");
    assert_eq!(
        app.admin("DELETE", &format!("{fields}/{fid}"))
            .send()
            .status,
        200
    );

    let owners = format!("/admin/api/tenants/{tenant}/owners");
    let res = app
        .admin("POST", &owners)
        .json(&json!({ "name": "Dana", "role_name": "Agent" }))
        .send();
    assert_eq!(res.status, 201);
    let owner = res.json()["owner"].clone();
    assert_eq!(owner["role_name"], "Agent");
    let oid = owner["id"].as_str().unwrap();
    let patched = app
        .admin("PATCH", &format!("{owners}/{oid}"))
        .json(&json!({ "role_name": null }))
        .send();
    assert_eq!(patched.json()["owner"]["role_name"], Value::Null);
    assert_eq!(
        app.admin("GET", &owners).send().json()["owners"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.admin("DELETE", &format!("{owners}/{oid}"))
            .send()
            .status,
        200
    );
    app.admin("DELETE", &format!("{owners}/{oid}"))
        .send()
        .assert_error(404, "not_found_error");
}

#[test]
fn stages_and_owners_in_use_by_leads_cannot_be_deleted() {
    let app = spawn_app();
    let key = app.tenant_with_key("Acme");
    let tenant = &key.tenant;
    let owner = app
        .admin("POST", &format!("/admin/api/tenants/{tenant}/owners"))
        .json(&json!({ "name": "Dana" }))
        .send()
        .json()["owner"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let lead = create(
        &app,
        &key,
        json!({ "contact_name": "Ada", "stage_slug": "contacted", "owner_id": owner }),
    );
    let stage = lead["current_stage"]["id"].as_str().unwrap().to_string();
    let message = app
        .admin(
            "DELETE",
            &format!("/admin/api/tenants/{tenant}/stages/{stage}"),
        )
        .send()
        .assert_error(409, "api_error");
    assert!(message.contains("1 leads are at this stage"), "{message}");
    app.admin(
        "DELETE",
        &format!("/admin/api/tenants/{tenant}/owners/{owner}"),
    )
    .send()
    .assert_error(409, "api_error");
    patch_lead(
        &app,
        &key,
        &id_of(&lead),
        json!({ "stage_slug": "new", "owner_id": null }),
    );
    assert_eq!(
        app.admin(
            "DELETE",
            &format!("/admin/api/tenants/{tenant}/stages/{stage}")
        )
        .send()
        .status,
        200
    );
    assert_eq!(
        app.admin(
            "DELETE",
            &format!("/admin/api/tenants/{tenant}/owners/{owner}")
        )
        .send()
        .status,
        200
    );
}
