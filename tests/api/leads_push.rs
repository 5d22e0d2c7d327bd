//! Pushing leads: POST /api/agents/crm/leads (create-or-merge) and PATCH /api/agents/crm/leads/{id}.

use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

fn post(app: &TestApp, key: &Key, body: Value) -> Resp {
    app.api("POST", LEADS, key).json(&body).send()
}

fn patch_res(app: &TestApp, key: &Key, id: &str, body: Value) -> Resp {
    app.api("PATCH", &format!("{LEADS}/{id}"), key)
        .json(&body)
        .send()
}

fn owner(app: &TestApp, tenant: &str, name: &str) -> Value {
    let res = app
        .admin("POST", &format!("/admin/api/tenants/{tenant}/owners"))
        .json(&json!({ "name": name, "role_name": "Agent" }))
        .send();
    assert_eq!(res.status, 201, "{}", res.text);
    res.json()["owner"].clone()
}

fn stages(app: &TestApp, tenant: &str) -> Vec<Value> {
    let res = app
        .admin("GET", &format!("/admin/api/tenants/{tenant}/stages"))
        .send();
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()["stages"].as_array().unwrap().clone()
}

/// Lets the clock move past the last write's millisecond.
fn tick() {
    thread::sleep(Duration::from_millis(5));
}

#[test]
fn create_is_201_with_defaults_and_normalised_contacts() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    let body = push(
        &app,
        &key,
        json!({ "contact_name": " Ada Lovelace ", "contact_email": "  Ada@Example.COM ", "contact_phone": "(206) 555-0123" }),
    );
    assert_eq!(
        keys(&body),
        set_of(&["ignored_custom_fields", "lead", "matched_by", "merged"])
    );
    assert_eq!(body["merged"], false);
    assert_eq!(body["matched_by"], Value::Null);
    assert_eq!(body["ignored_custom_fields"], json!([]));

    let lead = &body["lead"];
    assert!(uuid::Uuid::parse_str(lead["id"].as_str().unwrap()).is_ok());
    assert_eq!(lead["customer_id"], key.tenant.as_str());
    assert_eq!(lead["contact_name"], "Ada Lovelace");
    assert_eq!(lead["contact_email"], "ada@example.com");
    assert_eq!(lead["contact_phone"], "+12065550123");
    assert_eq!(lead["source_platform"], "direct");
    assert_eq!(lead["source_type"], "manual");
    assert_eq!(lead["status"], "active");
    assert_eq!(lead["score"], Value::Null);
    assert_eq!(lead["qualified"], Value::Null);
    assert_eq!(lead["owner"], Value::Null);
    assert_eq!(lead["last_interaction_at"], Value::Null);
    assert_eq!(lead["interaction_count"], 0);
    assert_eq!(lead["custom_fields"], json!({}));
    let created_at = lead["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "{created_at}"
    );
    assert_eq!(lead["updated_at"], lead["created_at"]);

    let pipeline = stages(&app, &key.tenant);
    let first = pipeline
        .iter()
        .min_by_key(|s| s["position"].as_u64())
        .unwrap();
    assert_eq!(first["slug"], "new");
    assert_eq!(
        lead["current_stage"],
        json!({ "id": first["id"], "slug": "new", "name": first["name"], "color": first["color"] })
    );

    assert_eq!(&get(&app, &key, &id_of(lead)), lead);
    assert_eq!(total(&app, &key), 1);

    // Explicit source fields and stage.
    let body = push(
        &app,
        &key,
        json!({ "contact_phone": "312 555 0100", "source_platform": "meta_ads", "source_type": "form", "stage_slug": "contacted" }),
    );
    assert_eq!(body["lead"]["source_platform"], "meta_ads");
    assert_eq!(body["lead"]["source_type"], "form");
    assert_eq!(body["lead"]["current_stage"]["slug"], "contacted");
    assert_eq!(body["lead"]["contact_name"], Value::Null);
    assert_eq!(body["lead"]["contact_email"], Value::Null);
}

#[test]
fn create_needs_at_least_one_contact_field() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    for body in [
        json!({}),
        json!({ "source_platform": "direct", "lead_line": "buyer" }),
        json!({ "contact_name": "", "contact_phone": "", "contact_email": "" }),
        json!({ "contact_name": "   ", "contact_email": " " }),
        json!({ "contact_name": null, "contact_phone": null, "contact_email": null }),
    ] {
        let message = post(&app, &key, body.clone()).assert_error(400, "invalid_request_error");
        for field in ["contact_name", "contact_phone", "contact_email"] {
            assert!(message.contains(field), "{body}: {message}");
        }
    }
    assert_eq!(total(&app, &key), 0);
}

#[test]
fn create_refuses_invalid_fields_naming_them() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    let cases = [
        (json!({ "contact_email": "not-an-email" }), "contact_email"),
        (json!({ "contact_email": "a@b" }), "contact_email"),
        (json!({ "contact_phone": "call me maybe" }), "contact_phone"),
        (
            json!({ "contact_name": "A", "source_platform": "myspace" }),
            "source_platform",
        ),
        (
            json!({ "contact_name": "A", "source_type": "fax" }),
            "source_type",
        ),
        (
            json!({ "contact_name": "A", "stage_slug": "nope" }),
            "stage_slug",
        ),
        (
            json!({ "contact_name": "A", "owner_id": "not-a-uuid" }),
            "owner_id",
        ),
        (
            json!({ "contact_name": "A", "lead_line": "renter" }),
            "lead_line",
        ),
        (
            json!({ "contact_name": "A", "custom_fields": { "lead_line": "renter" } }),
            "lead_line",
        ),
        (
            json!({ "contact_name": "A", "custom_fields": { "tags": ["x"] } }),
            "custom_fields.tags",
        ),
    ];
    for (body, field) in cases {
        let message = post(&app, &key, body.clone()).assert_error(400, "invalid_request_error");
        assert!(message.contains(field), "{body}: {message}");
    }
    let unknown_owner = uuid::Uuid::now_v7().to_string();
    let message = post(
        &app,
        &key,
        json!({ "contact_name": "A", "owner_id": unknown_owner }),
    )
    .assert_error(400, "invalid_request_error");
    assert!(message.contains("owner_id"), "{message}");
    assert_eq!(total(&app, &key), 0, "nothing was created");
}

#[test]
fn owner_of_another_tenant_is_refused() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    let other = app.create_tenant("Bravo");
    let foreign = owner(&app, &other, "Brenda");
    let message = post(
        &app,
        &key,
        json!({ "contact_name": "A", "owner_id": foreign["id"] }),
    )
    .assert_error(400, "invalid_request_error");
    assert!(message.contains("owner_id"), "{message}");
    assert_eq!(total(&app, &key), 0);

    let mine = owner(&app, &key.tenant, "Ann");
    let body = push(
        &app,
        &key,
        json!({ "contact_name": "A", "owner_id": mine["id"] }),
    );
    assert_eq!(
        body["lead"]["owner"],
        json!({ "id": mine["id"], "name": "Ann", "role_name": "Agent" })
    );
}

#[test]
fn custom_fields_are_type_checked_and_unknown_slugs_reported() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    custom_field(&app, &key.tenant, "budget", "number");
    custom_field(&app, &key.tenant, "vip", "boolean");
    let message = post(
        &app,
        &key,
        json!({ "contact_name": "A", "custom_fields": { "budget": "lots" } }),
    )
    .assert_error(400, "invalid_request_error");
    assert!(message.contains("custom_fields.budget"), "{message}");
    let message = post(
        &app,
        &key,
        json!({ "contact_name": "A", "custom_fields": { "vip": "yes" } }),
    )
    .assert_error(400, "invalid_request_error");
    assert!(message.contains("custom_fields.vip"), "{message}");
    assert_eq!(total(&app, &key), 0);

    let body = push(
        &app,
        &key,
        json!({
            "contact_name": "A",
            "custom_fields": { "budget": 500000, "vip": true, "color": "red", "mood": 3 }
        }),
    );
    assert_eq!(body["merged"], false);
    assert_eq!(sorted(&body["ignored_custom_fields"]), ["color", "mood"]);
    assert_eq!(
        body["lead"]["custom_fields"],
        json!({ "budget": 500000, "vip": true })
    );
    assert_eq!(
        get(&app, &key, &id_of(&body["lead"]))["custom_fields"],
        json!({ "budget": 500000, "vip": true })
    );
}

#[test]
fn merge_by_email_is_case_insensitive() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    let first = push(
        &app,
        &key,
        json!({ "contact_name": "Dana", "contact_email": "dana@example.com" }),
    );
    let again = push(
        &app,
        &key,
        json!({ "contact_name": "Dana K", "contact_email": " DANA@Example.com" }),
    );
    assert_eq!(again["merged"], true);
    assert_eq!(again["matched_by"], "email");
    assert_eq!(again["ignored_custom_fields"], json!([]));
    assert_eq!(again["lead"]["id"], first["lead"]["id"]);
    assert_eq!(again["lead"]["contact_name"], "Dana K");
    assert_eq!(again["lead"]["contact_email"], "dana@example.com");
    assert_eq!(total(&app, &key), 1);
}

#[test]
fn merge_by_phone_matches_the_last_ten_digits() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    let first = push(
        &app,
        &key,
        json!({ "contact_name": "Pat", "contact_phone": "+1 206 555 0123" }),
    );
    assert_eq!(first["lead"]["contact_phone"], "+12065550123");
    for phone in ["206.555.0123", "(206) 555-0123", "1-206-555-0123"] {
        let again = push(
            &app,
            &key,
            json!({ "contact_phone": phone, "contact_email": null }),
        );
        assert_eq!(again["merged"], true, "{phone}");
        assert_eq!(again["matched_by"], "phone", "{phone}");
        assert_eq!(again["lead"]["id"], first["lead"]["id"]);
        assert_eq!(again["lead"]["contact_name"], "Pat");
    }
    // Another country code, same last ten digits: still the same lead.
    let intl = push(&app, &key, json!({ "contact_phone": "+44 206 555 0123" }));
    assert_eq!(intl["matched_by"], "phone");
    assert_eq!(intl["lead"]["id"], first["lead"]["id"]);
    assert_eq!(total(&app, &key), 1);
    let other = push(&app, &key, json!({ "contact_phone": "206.555.0124" }));
    assert_eq!(other["merged"], false);
    assert_eq!(total(&app, &key), 2);
}

#[test]
fn merge_by_email_wins_over_phone() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    let by_email = push(
        &app,
        &key,
        json!({ "contact_name": "Em", "contact_email": "em@example.com", "contact_phone": "(503) 555-0100" }),
    );
    let by_phone = push(
        &app,
        &key,
        json!({ "contact_name": "Ph", "contact_phone": "(206) 555-0123" }),
    );
    let body = push(
        &app,
        &key,
        json!({ "contact_email": "EM@example.com", "contact_phone": "206-555-0123" }),
    );
    assert_eq!(body["merged"], true);
    assert_eq!(body["matched_by"], "email");
    assert_eq!(body["lead"]["id"], by_email["lead"]["id"]);
    assert_eq!(body["lead"]["contact_name"], "Em");
    assert_eq!(body["lead"]["contact_phone"], "+12065550123");
    assert_eq!(total(&app, &key), 2);
    let untouched = get(&app, &key, &id_of(&by_phone["lead"]));
    assert_eq!(untouched["contact_name"], "Ph");
    assert_eq!(untouched["updated_at"], by_phone["lead"]["updated_at"]);
}

#[test]
fn phones_with_fewer_than_ten_digits_never_match() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    let first = push(&app, &key, json!({ "contact_phone": " 555-0123 " }));
    assert_eq!(
        first["lead"]["contact_phone"], "555-0123",
        "stored as given"
    );
    let second = push(&app, &key, json!({ "contact_phone": "555-0123" }));
    assert_eq!(second["merged"], false);
    assert_eq!(second["matched_by"], Value::Null);
    assert_ne!(second["lead"]["id"], first["lead"]["id"]);
    assert_eq!(total(&app, &key), 2);
}

#[test]
fn merge_overwrites_given_fields_and_keeps_the_rest() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    custom_field(&app, &key.tenant, "budget", "number");
    custom_field(&app, &key.tenant, "notes", "string");
    let ann = owner(&app, &key.tenant, "Ann");
    let bo = owner(&app, &key.tenant, "Bo");
    let first = create(
        &app,
        &key,
        json!({
            "contact_name": "Eve",
            "contact_email": "eve@example.com",
            "contact_phone": "(206) 555-0101",
            "source_platform": "meta_ads",
            "source_type": "form",
            "stage_slug": "contacted",
            "owner_id": ann["id"],
            "lead_line": "buyer",
            "custom_fields": { "budget": 1, "notes": "a" }
        }),
    );
    tick();

    let merged = push(
        &app,
        &key,
        json!({
            "contact_email": "EVE@example.com",
            "contact_name": null,
            "contact_phone": "(206) 555-0202",
            "source_platform": "google_ads",
            "source_type": "chat",
            "custom_fields": { "notes": "b" }
        }),
    );
    assert_eq!(merged["merged"], true);
    assert_eq!(merged["matched_by"], "email");
    let lead = &merged["lead"];
    assert_eq!(lead["id"], first["id"]);
    assert_eq!(lead["contact_name"], "Eve", "absent or null keeps");
    assert_eq!(lead["contact_phone"], "+12065550202", "given overwrites");
    assert_eq!(
        lead["source_platform"], "meta_ads",
        "source fields keep their first value"
    );
    assert_eq!(lead["source_type"], "form");
    assert_eq!(
        lead["current_stage"]["slug"], "contacted",
        "stage changes only when given"
    );
    assert_eq!(
        lead["owner"]["id"], ann["id"],
        "owner changes only when given"
    );
    assert_eq!(
        lead["custom_fields"],
        json!({ "budget": 1, "notes": "b", "lead_line": "buyer" }),
        "custom fields merge key by key"
    );
    assert_eq!(lead["created_at"], first["created_at"]);
    assert!(
        lead["updated_at"].as_str().unwrap() > first["updated_at"].as_str().unwrap(),
        "updated_at moves: {} vs {}",
        lead["updated_at"],
        first["updated_at"]
    );
    assert_eq!(&get(&app, &key, &id_of(lead)), lead);
    tick();

    let again = push(
        &app,
        &key,
        json!({
            "contact_phone": "206 555 0202",
            "stage_slug": "qualified",
            "owner_id": bo["id"],
            "lead_line": "seller",
            "custom_fields": { "budget": null }
        }),
    );
    assert_eq!(again["matched_by"], "phone");
    let lead2 = &again["lead"];
    assert_eq!(lead2["id"], first["id"]);
    assert_eq!(lead2["current_stage"]["slug"], "qualified");
    assert_eq!(lead2["owner"]["id"], bo["id"]);
    assert_eq!(lead2["contact_email"], "eve@example.com");
    assert_eq!(
        lead2["custom_fields"],
        json!({ "notes": "b", "lead_line": "seller" })
    );
    assert!(lead2["updated_at"].as_str().unwrap() > lead["updated_at"].as_str().unwrap());
    // The old phone no longer finds the lead; the new one does.
    let old_phone = push(&app, &key, json!({ "contact_phone": "206-555-0101" }));
    assert_eq!(old_phone["merged"], false);
    assert_eq!(total(&app, &key), 2);
}

#[test]
fn patch_changes_the_given_fields() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    custom_field(&app, &key.tenant, "budget", "number");
    let ann = owner(&app, &key.tenant, "Ann");
    let lead = create(
        &app,
        &key,
        json!({ "contact_name": "Pat", "contact_email": "pat@example.com", "contact_phone": "(206) 555-0123" }),
    );
    let id = id_of(&lead);
    tick();

    let patched = patch_lead(
        &app,
        &key,
        &id,
        json!({
            "status": "won",
            "score": 42,
            "qualified": true,
            "stage_slug": "contacted",
            "owner_id": ann["id"],
            "custom_fields": { "budget": 5 },
            "lead_line": "seller"
        }),
    );
    assert_eq!(patched["id"], id.as_str());
    assert_eq!(patched["status"], "won");
    assert_eq!(patched["score"], 42);
    assert_eq!(patched["qualified"], true);
    assert_eq!(patched["current_stage"]["slug"], "contacted");
    assert_eq!(patched["owner"]["id"], ann["id"]);
    assert_eq!(
        patched["custom_fields"],
        json!({ "budget": 5, "lead_line": "seller" })
    );
    assert_eq!(patched["contact_name"], "Pat", "absent fields keep");
    assert_eq!(patched["created_at"], lead["created_at"]);
    assert!(patched["updated_at"].as_str().unwrap() > lead["updated_at"].as_str().unwrap());
    assert_eq!(get(&app, &key, &id), patched);

    let cleared = patch_lead(
        &app,
        &key,
        &id,
        json!({ "score": null, "owner_id": null, "qualified": null, "contact_name": null, "lead_line": null }),
    );
    assert_eq!(cleared["score"], Value::Null);
    assert_eq!(cleared["owner"], Value::Null);
    assert_eq!(cleared["qualified"], Value::Null);
    assert_eq!(cleared["contact_name"], Value::Null);
    assert_eq!(cleared["custom_fields"], json!({ "budget": 5 }));
    assert_eq!(cleared["status"], "won");
    assert_eq!(cleared["contact_email"], "pat@example.com");

    // Emptying every contact field is refused, and changes nothing.
    let message = patch_res(
        &app,
        &key,
        &id,
        json!({ "contact_email": null, "contact_phone": null }),
    )
    .assert_error(400, "invalid_request_error");
    assert!(message.contains("contact_"), "{message}");
    assert_eq!(get(&app, &key, &id), cleared);
    // One contact field may go while another stays.
    let fewer = patch_lead(&app, &key, &id, json!({ "contact_phone": null }));
    assert_eq!(fewer["contact_phone"], Value::Null);
    assert_eq!(fewer["contact_email"], "pat@example.com");
    let renamed = patch_lead(
        &app,
        &key,
        &id,
        json!({ "contact_email": " Pat.New@Example.com ", "contact_phone": "312.555.0100" }),
    );
    assert_eq!(renamed["contact_email"], "pat.new@example.com");
    assert_eq!(renamed["contact_phone"], "+13125550100");
    assert_eq!(total(&app, &key), 1);
}

#[test]
fn patch_refuses_invalid_values() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    let id = id_of(&create(&app, &key, json!({ "contact_name": "Pat" })));
    let other = app.create_tenant("Bravo");
    let foreign = owner(&app, &other, "Brenda");
    let cases = [
        (json!({ "status": "open" }), "status"),
        (json!({ "score": "high" }), "score"),
        (json!({ "qualified": "yes" }), "qualified"),
        (json!({ "stage_slug": "nope" }), "stage_slug"),
        (json!({ "owner_id": foreign["id"] }), "owner_id"),
        (json!({ "contact_email": "nope" }), "contact_email"),
        (json!({ "lead_line": "renter" }), "lead_line"),
        (json!({ "custom_fields": { "mystery": 1 } }), "mystery"),
    ];
    let before = get(&app, &key, &id);
    for (body, field) in cases {
        let message =
            patch_res(&app, &key, &id, body.clone()).assert_error(400, "invalid_request_error");
        assert!(message.contains(field), "{body}: {message}");
    }
    assert_eq!(get(&app, &key, &id), before, "nothing changed");
}

#[test]
fn patch_conflicts_and_missing_leads() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    let a = id_of(&create(
        &app,
        &key,
        json!({ "contact_email": "a@example.com" }),
    ));
    let b = id_of(&create(
        &app,
        &key,
        json!({ "contact_email": "b@example.com" }),
    ));
    patch_res(&app, &key, &b, json!({ "contact_email": "A@Example.com" }))
        .assert_error(409, "api_error");
    assert_eq!(get(&app, &key, &b)["contact_email"], "b@example.com");
    // A lead's own email is no conflict.
    let same = patch_lead(
        &app,
        &key,
        &a,
        json!({ "contact_email": "a@example.com", "score": 1 }),
    );
    assert_eq!(same["score"], 1);

    let unknown = uuid::Uuid::now_v7().to_string();
    patch_res(&app, &key, &unknown, json!({ "score": 1 })).assert_error(404, "not_found_error");
    patch_res(&app, &key, "not-a-uuid", json!({ "score": 1 })).assert_error(404, "not_found_error");
    let other = app.tenant_with_key("Bravo");
    patch_res(&app, &other, &a, json!({ "score": 2 })).assert_error(404, "not_found_error");
    assert_eq!(get(&app, &key, &a)["score"], 1);
}

#[test]
fn lead_line_is_a_custom_field_and_filterable() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    let body = push(
        &app,
        &key,
        json!({ "contact_name": "Buyer", "lead_line": "buyer" }),
    );
    assert_eq!(body["ignored_custom_fields"], json!([]));
    let lead = &body["lead"];
    assert_eq!(lead["custom_fields"], json!({ "lead_line": "buyer" }));
    assert!(
        lead.get("lead_line").is_none(),
        "not a top-level field: {lead}"
    );
    let via_fields = push(
        &app,
        &key,
        json!({ "contact_name": "Seller", "custom_fields": { "lead_line": "seller" } }),
    );
    assert_eq!(
        via_fields["lead"]["custom_fields"],
        json!({ "lead_line": "seller" })
    );
    push(&app, &key, json!({ "contact_name": "Neither" }));

    let res = app
        .api(
            "GET",
            &format!("{LEADS}?lead_line=buyer&include_custom_fields=true"),
            &key,
        )
        .send();
    assert_eq!(res.status, 200, "{}", res.text);
    let page = res.json();
    assert_eq!(page["total"], 1);
    assert_eq!(page["leads"][0]["id"], lead["id"]);
    assert_eq!(
        page["leads"][0]["custom_fields"],
        json!({ "lead_line": "buyer" })
    );
    let page = app
        .api("GET", &format!("{LEADS}?lead_line=seller"), &key)
        .send()
        .json();
    assert_eq!(page["total"], 1);
    assert_eq!(page["leads"][0]["id"], via_fields["lead"]["id"]);
}

#[test]
fn a_phone_shared_after_an_email_merge_still_matches_its_remaining_holder() {
    let app = app();
    let key = app.tenant_with_key("Acme");
    let a = create(
        &app,
        &key,
        json!({ "contact_name": "A", "contact_email": "a@example.com" }),
    );
    let b = create(
        &app,
        &key,
        json!({ "contact_name": "B", "contact_phone": "(206) 555-0123" }),
    );
    // Email wins: A takes B's phone, so two leads now hold it.
    let merged = push(
        &app,
        &key,
        json!({ "contact_email": "a@example.com", "contact_phone": "206-555-0123" }),
    );
    assert_eq!(merged["lead"]["id"], a["id"]);
    assert_eq!(merged["lead"]["contact_phone"], "+12065550123");
    // B moves to another number: A is now the only lead with the phone, and receives it.
    patch_lead(
        &app,
        &key,
        &id_of(&b),
        json!({ "contact_phone": "(503) 555-0199" }),
    );
    let body = push(
        &app,
        &key,
        json!({ "contact_name": "A again", "contact_phone": "+1 206 555 0123" }),
    );
    assert_eq!(body["merged"], true, "{body}");
    assert_eq!(body["matched_by"], "phone");
    assert_eq!(body["lead"]["id"], a["id"]);
    assert_eq!(total(&app, &key), 2);
}
