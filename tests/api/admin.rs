//! Admin API: tenants, keys, stages, custom fields, owners.

use serde_json::{Value, json};

use crate::helpers::*;

#[test]
fn tenants_are_created_listed_read_and_renamed() {
    let app = TestApp::spawn();
    let res = app.post_tenant(&json!({ "name": " Acme Realty " }));
    assert_eq!(res.status, 201);
    let tenant = res.json()["tenant"].clone();
    assert_eq!(tenant["name"], "Acme Realty");
    let id = tenant["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert!(tenant["created_at"].as_str().unwrap().ends_with('Z'));

    let list = app.list_tenants().expect(200);
    assert_eq!(list["tenants"], json!([tenant]));
    let one = app.get_tenant(id).expect(200);
    assert_eq!(one["tenant"], tenant);
    let renamed = app.patch_tenant(id, &json!({ "name": "Acme" }));
    assert_eq!(renamed.status, 200);
    assert_eq!(renamed.json()["tenant"]["name"], "Acme");

    let missing = uuid::Uuid::now_v7().to_string();
    app.get_tenant(&missing)
        .assert_error(404, "not_found_error");
    app.get_tenant("not-a-uuid")
        .assert_error(404, "not_found_error");
}

#[test]
fn keys_show_their_token_once_and_revoke() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Acme");
    let res = app.post_key(
        &tenant,
        &json!({ "name": "zapier", "scopes": ["public_api:leads:read"] }),
    );
    assert_eq!(res.status, 201, "{}", res.text);
    let body = res.json();
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("mega_") && token.len() == 69);
    let key = &body["key"];
    assert_eq!(key["prefix"], &token[..13]);
    assert_eq!(key["scopes"], json!(["public_api:leads:read"]));
    assert_eq!(key["revoked_at"], Value::Null);
    assert_eq!(key["last_used_at"], Value::Null);

    let list = app.list_keys(&tenant);
    assert!(
        !list.text.contains(&token[13..]),
        "the token never appears again"
    );
    assert_eq!(list.json()["keys"].as_array().unwrap().len(), 1);

    let key_id = key["id"].as_str().unwrap();
    let revoked = app.revoke_key(key_id);
    assert_eq!(revoked.status, 200);
    assert_eq!(revoked.json(), json!({ "id": key_id, "revoked": true }));
    let list = app.list_keys(&tenant).expect(200);
    assert!(list["keys"][0]["revoked_at"].is_string());
    app.revoke_key(&uuid::Uuid::now_v7().to_string())
        .assert_error(404, "not_found_error");
}

#[test]
fn key_requests_are_validated() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Acme");
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
            .post_key(&tenant, &body)
            .assert_error(400, "invalid_request_error");
        assert!(message.contains(expected), "{message}");
    }
    let missing = uuid::Uuid::now_v7().to_string();
    app.post_key(&missing, &json!({ "name": "x", "scopes": ALL_SCOPES }))
        .assert_error(404, "not_found_error");
}

#[test]
fn new_tenants_get_the_default_pipeline_and_lead_line() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Acme");
    let stages = app.list_stages(&tenant).expect(200);
    let slugs: Vec<&str> = stages["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["new", "contacted", "qualified", "won", "lost"]);
    assert_eq!(stages["stages"][0]["position"], 0);
    let fields = app.list_custom_fields(&tenant).expect(200);
    assert_eq!(fields["custom_fields"][0]["slug"], "lead_line");
    assert_eq!(fields["custom_fields"][0]["reserved"], true);
}

#[test]
fn stages_are_created_reordered_and_deleted() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Acme");
    let res = app.post_stage(
        &tenant,
        &json!({ "slug": "showing", "name": "Showing", "color": "#ABC" }),
    );
    assert_eq!(res.status, 201, "{}", res.text);
    let stage = res.json()["stage"].clone();
    assert_eq!(stage["position"], 5);
    assert_eq!(stage["color"], "#abc");
    let id = stage["id"].as_str().unwrap();
    app.post_stage(&tenant, &json!({ "slug": "showing", "name": "Again" }))
        .assert_error(409, "api_error");
    app.post_stage(&tenant, &json!({ "slug": "Bad Slug", "name": "x" }))
        .assert_error(400, "invalid_request_error");

    let moved = app.patch_stage(&tenant, id, &json!({ "position": 1, "color": null }));
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.json()["stage"]["position"], 1);
    assert_eq!(moved.json()["stage"]["color"], Value::Null);
    let slugs: Vec<String> = app.list_stages(&tenant).expect(200)["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["slug"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        slugs,
        ["new", "showing", "contacted", "qualified", "won", "lost"]
    );

    let deleted = app.delete_stage(&tenant, id);
    assert_eq!(deleted.json(), json!({ "id": id, "deleted": true }));
    app.delete_stage(&tenant, id)
        .assert_error(404, "not_found_error");
    let positions: Vec<u64> = app.list_stages(&tenant).expect(200)["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [0, 1, 2, 3, 4], "positions stay contiguous");
}

#[test]
fn custom_fields_and_owners() {
    let app = TestApp::spawn();
    let tenant = app.create_tenant("Acme");
    let res = app.post_custom_field(
        &tenant,
        &json!({ "slug": "budget", "name": "Budget", "type": "number" }),
    );
    assert_eq!(res.status, 201, "{}", res.text);
    let field = res.json()["custom_field"].clone();
    assert_eq!(field["type"], "number");
    assert_eq!(field["reserved"], false);
    app.post_custom_field(&tenant, &json!({ "slug": "lead_line", "name": "Again" }))
        .assert_error(409, "api_error");
    app.post_custom_field(
        &tenant,
        &json!({ "slug": "x", "name": "X", "type": "date" }),
    )
    .assert_error(400, "invalid_request_error");
    let lead_line = app.list_custom_fields(&tenant).expect(200)["custom_fields"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.delete_custom_field(&tenant, &lead_line)
        .assert_error(409, "api_error");
    let fid = field["id"].as_str().unwrap();
    let renamed = app.patch_custom_field(&tenant, fid, &json!({ "name": "Max budget" }));
    assert_eq!(renamed.json()["custom_field"]["name"], "Max budget");
    assert_eq!(app.delete_custom_field(&tenant, fid).status, 200);

    let res = app.post_owner(&tenant, &json!({ "name": "Dana", "role_name": "Agent" }));
    assert_eq!(res.status, 201);
    let owner = res.json()["owner"].clone();
    assert_eq!(owner["role_name"], "Agent");
    let oid = owner["id"].as_str().unwrap();
    let patched = app.patch_owner(&tenant, oid, &json!({ "role_name": null }));
    assert_eq!(patched.json()["owner"]["role_name"], Value::Null);
    assert_eq!(
        app.list_owners(&tenant).expect(200)["owners"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(app.delete_owner(&tenant, oid).status, 200);
    app.delete_owner(&tenant, oid)
        .assert_error(404, "not_found_error");
}

#[test]
fn stages_and_owners_in_use_by_leads_cannot_be_deleted() {
    let app = TestApp::spawn();
    let key = app.tenant_with_key("Acme");
    let tenant = &key.tenant;
    let owner = app
        .post_owner(tenant, &json!({ "name": "Dana" }))
        .expect(201)["owner"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let lead = app.create_lead(
        &key,
        json!({ "contact_name": "Ada", "stage_slug": "contacted", "owner_id": owner }),
    );
    let stage = lead["current_stage"]["id"].as_str().unwrap().to_string();
    let message = app
        .delete_stage(tenant, &stage)
        .assert_error(409, "api_error");
    assert!(message.contains("1 leads are at this stage"), "{message}");
    app.delete_owner(tenant, &owner)
        .assert_error(409, "api_error");
    app.update_lead(
        &key,
        &id_of(&lead),
        json!({ "stage_slug": "new", "owner_id": null }),
    );
    assert_eq!(app.delete_stage(tenant, &stage).status, 200);
    assert_eq!(app.delete_owner(tenant, &owner).status, 200);
}
