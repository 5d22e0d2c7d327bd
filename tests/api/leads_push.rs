//! Pushing leads: POST /api/agents/crm/leads (create-or-merge) and PATCH /api/agents/crm/leads/{id}.

use serde_json::{Value, json};

use crate::helpers::*;

/// Moves the server's clock past the last write's millisecond.
fn tick(app: &TestApp) {
    app.advance_clock(5);
}

#[test]
fn create_is_201_with_defaults_and_normalised_contacts() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let body = app.post_lead(&key, &json!({ "contact_name": " Ada Lovelace ", "contact_email": "  Ada@Example.COM ", "contact_phone": "(206) 555-0123" })).expect(201);
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

    let pipeline = app.list_stages(&key.tenant).expect(200)["stages"]
        .as_array()
        .unwrap()
        .clone();
    let first = pipeline
        .iter()
        .min_by_key(|s| s["position"].as_u64())
        .unwrap();
    assert_eq!(first["slug"], "new");
    assert_eq!(
        lead["current_stage"],
        json!({ "id": first["id"], "slug": "new", "name": first["name"], "color": first["color"] })
    );

    assert_eq!(&app.get_lead(&key, &id_of(lead)).expect(200)["lead"], lead);
    assert_eq!(app.lead_total(&key), 1);

    // Explicit source fields and stage.
    let body = app.post_lead(&key, &json!({ "contact_phone": "312 555 0100", "source_platform": "meta_ads", "source_type": "form", "stage_slug": "contacted" })).expect(201);
    assert_eq!(body["lead"]["source_platform"], "meta_ads");
    assert_eq!(body["lead"]["source_type"], "form");
    assert_eq!(body["lead"]["current_stage"]["slug"], "contacted");
    assert_eq!(body["lead"]["contact_name"], Value::Null);
    assert_eq!(body["lead"]["contact_email"], Value::Null);
}

#[test]
fn create_needs_at_least_one_contact_field() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    for body in [
        json!({}),
        json!({ "source_platform": "direct", "lead_line": "buyer" }),
        json!({ "contact_name": "", "contact_phone": "", "contact_email": "" }),
        json!({ "contact_name": "   ", "contact_email": " " }),
        json!({ "contact_name": null, "contact_phone": null, "contact_email": null }),
    ] {
        let message = app
            .post_lead(&key, &body)
            .assert_error(400, "invalid_request_error");
        for field in ["contact_name", "contact_phone", "contact_email"] {
            assert!(message.contains(field), "{body}: {message}");
        }
    }
    assert_eq!(app.lead_total(&key), 0);
}

#[test]
fn create_refuses_invalid_fields_naming_them() {
    let app = TestApp::relaxed();
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
        let message = app
            .post_lead(&key, &body)
            .assert_error(400, "invalid_request_error");
        assert!(message.contains(field), "{body}: {message}");
    }
    let unknown_owner = uuid::Uuid::now_v7().to_string();
    let message = app
        .post_lead(
            &key,
            &json!({ "contact_name": "A", "owner_id": unknown_owner }),
        )
        .assert_error(400, "invalid_request_error");
    assert!(message.contains("owner_id"), "{message}");
    assert_eq!(app.lead_total(&key), 0, "nothing was created");
}

#[test]
fn owner_of_another_tenant_is_refused() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let other = app.create_tenant("Bravo");
    let foreign = app
        .post_owner(&other, &json!({ "name": "Brenda", "role_name": "Agent" }))
        .expect(201)["owner"]
        .clone();
    let message = app
        .post_lead(
            &key,
            &json!({ "contact_name": "A", "owner_id": foreign["id"] }),
        )
        .assert_error(400, "invalid_request_error");
    assert!(message.contains("owner_id"), "{message}");
    assert_eq!(app.lead_total(&key), 0);

    let mine = app
        .post_owner(&key.tenant, &json!({ "name": "Ann", "role_name": "Agent" }))
        .expect(201)["owner"]
        .clone();
    let body = app
        .post_lead(
            &key,
            &json!({ "contact_name": "A", "owner_id": mine["id"] }),
        )
        .expect(201);
    assert_eq!(
        body["lead"]["owner"],
        json!({ "id": mine["id"], "name": "Ann", "role_name": "Agent" })
    );
}

#[test]
fn custom_fields_are_type_checked_and_unknown_slugs_reported() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    app.add_custom_field(&key.tenant, "budget", "number");
    app.add_custom_field(&key.tenant, "vip", "boolean");
    let message = app
        .post_lead(
            &key,
            &json!({ "contact_name": "A", "custom_fields": { "budget": "lots" } }),
        )
        .assert_error(400, "invalid_request_error");
    assert!(message.contains("custom_fields.budget"), "{message}");
    let message = app
        .post_lead(
            &key,
            &json!({ "contact_name": "A", "custom_fields": { "vip": "yes" } }),
        )
        .assert_error(400, "invalid_request_error");
    assert!(message.contains("custom_fields.vip"), "{message}");
    assert_eq!(app.lead_total(&key), 0);

    let body = app
        .post_lead(
            &key,
            &json!({
                "contact_name": "A",
                "custom_fields": { "budget": 500000, "vip": true, "color": "red", "mood": 3 }
            }),
        )
        .expect(201);
    assert_eq!(body["merged"], false);
    assert_eq!(sorted(&body["ignored_custom_fields"]), ["color", "mood"]);
    assert_eq!(
        body["lead"]["custom_fields"],
        json!({ "budget": 500000, "vip": true })
    );
    assert_eq!(
        app.get_lead(&key, &id_of(&body["lead"])).expect(200)["lead"]["custom_fields"],
        json!({ "budget": 500000, "vip": true })
    );
}

#[test]
fn merge_by_email_is_case_insensitive() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let first = app
        .post_lead(
            &key,
            &json!({ "contact_name": "Dana", "contact_email": "dana@example.com" }),
        )
        .expect(201);
    let again = app
        .post_lead(
            &key,
            &json!({ "contact_name": "Dana K", "contact_email": " DANA@Example.com" }),
        )
        .expect(201);
    assert_eq!(again["merged"], true);
    assert_eq!(again["matched_by"], "email");
    assert_eq!(again["ignored_custom_fields"], json!([]));
    assert_eq!(again["lead"]["id"], first["lead"]["id"]);
    assert_eq!(again["lead"]["contact_name"], "Dana K");
    assert_eq!(again["lead"]["contact_email"], "dana@example.com");
    assert_eq!(app.lead_total(&key), 1);
}

#[test]
fn merge_by_phone_matches_the_last_ten_digits() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let first = app
        .post_lead(
            &key,
            &json!({ "contact_name": "Pat", "contact_phone": "+1 206 555 0123" }),
        )
        .expect(201);
    assert_eq!(first["lead"]["contact_phone"], "+12065550123");
    for phone in ["206.555.0123", "(206) 555-0123", "1-206-555-0123"] {
        let again = app
            .post_lead(
                &key,
                &json!({ "contact_phone": phone, "contact_email": null }),
            )
            .expect(201);
        assert_eq!(again["merged"], true, "{phone}");
        assert_eq!(again["matched_by"], "phone", "{phone}");
        assert_eq!(again["lead"]["id"], first["lead"]["id"]);
        assert_eq!(again["lead"]["contact_name"], "Pat");
    }
    // Another country code, same last ten digits: still the same lead.
    let intl = app
        .post_lead(&key, &json!({ "contact_phone": "+44 206 555 0123" }))
        .expect(201);
    assert_eq!(intl["matched_by"], "phone");
    assert_eq!(intl["lead"]["id"], first["lead"]["id"]);
    assert_eq!(app.lead_total(&key), 1);
    let other = app
        .post_lead(&key, &json!({ "contact_phone": "206.555.0124" }))
        .expect(201);
    assert_eq!(other["merged"], false);
    assert_eq!(app.lead_total(&key), 2);
}

#[test]
fn merge_by_email_wins_over_phone() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let by_email = app.post_lead(&key, &json!({ "contact_name": "Em", "contact_email": "em@example.com", "contact_phone": "(503) 555-0100" })).expect(201);
    let by_phone = app
        .post_lead(
            &key,
            &json!({ "contact_name": "Ph", "contact_phone": "(206) 555-0123" }),
        )
        .expect(201);
    let body = app
        .post_lead(
            &key,
            &json!({ "contact_email": "EM@example.com", "contact_phone": "206-555-0123" }),
        )
        .expect(201);
    assert_eq!(body["merged"], true);
    assert_eq!(body["matched_by"], "email");
    assert_eq!(body["lead"]["id"], by_email["lead"]["id"]);
    assert_eq!(body["lead"]["contact_name"], "Em");
    assert_eq!(body["lead"]["contact_phone"], "+12065550123");
    assert_eq!(app.lead_total(&key), 2);
    let untouched = app.get_lead(&key, &id_of(&by_phone["lead"])).expect(200)["lead"].clone();
    assert_eq!(untouched["contact_name"], "Ph");
    assert_eq!(untouched["updated_at"], by_phone["lead"]["updated_at"]);
}

#[test]
fn phones_with_fewer_than_ten_digits_never_match() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let first = app
        .post_lead(&key, &json!({ "contact_phone": " 555-0123 " }))
        .expect(201);
    assert_eq!(
        first["lead"]["contact_phone"], "555-0123",
        "stored as given"
    );
    let second = app
        .post_lead(&key, &json!({ "contact_phone": "555-0123" }))
        .expect(201);
    assert_eq!(second["merged"], false);
    assert_eq!(second["matched_by"], Value::Null);
    assert_ne!(second["lead"]["id"], first["lead"]["id"]);
    assert_eq!(app.lead_total(&key), 2);
}

#[test]
fn merge_overwrites_given_fields_and_keeps_the_rest() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    app.add_custom_field(&key.tenant, "budget", "number");
    app.add_custom_field(&key.tenant, "notes", "string");
    let ann = app
        .post_owner(&key.tenant, &json!({ "name": "Ann", "role_name": "Agent" }))
        .expect(201)["owner"]
        .clone();
    let bo = app
        .post_owner(&key.tenant, &json!({ "name": "Bo", "role_name": "Agent" }))
        .expect(201)["owner"]
        .clone();
    let first = app.create_lead(
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
    tick(&app);

    let merged = app
        .post_lead(
            &key,
            &json!({
                "contact_email": "EVE@example.com",
                "contact_name": null,
                "contact_phone": "(206) 555-0202",
                "source_platform": "google_ads",
                "source_type": "chat",
                "custom_fields": { "notes": "b" }
            }),
        )
        .expect(201);
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
    assert_eq!(&app.get_lead(&key, &id_of(lead)).expect(200)["lead"], lead);
    tick(&app);

    let again = app
        .post_lead(
            &key,
            &json!({
                "contact_phone": "206 555 0202",
                "stage_slug": "qualified",
                "owner_id": bo["id"],
                "lead_line": "seller",
                "custom_fields": { "budget": null }
            }),
        )
        .expect(201);
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
    let old_phone = app
        .post_lead(&key, &json!({ "contact_phone": "206-555-0101" }))
        .expect(201);
    assert_eq!(old_phone["merged"], false);
    assert_eq!(app.lead_total(&key), 2);
}

#[test]
fn patch_changes_the_given_fields() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    app.add_custom_field(&key.tenant, "budget", "number");
    let ann = app
        .post_owner(&key.tenant, &json!({ "name": "Ann", "role_name": "Agent" }))
        .expect(201)["owner"]
        .clone();
    let lead = app.create_lead(&key, json!({ "contact_name": "Pat", "contact_email": "pat@example.com", "contact_phone": "(206) 555-0123" }));
    let id = id_of(&lead);
    tick(&app);

    let patched = app.update_lead(
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
    assert_eq!(app.get_lead(&key, &id).expect(200)["lead"], patched);

    let cleared = app.update_lead(&key, &id, json!({ "score": null, "owner_id": null, "qualified": null, "contact_name": null, "lead_line": null }));
    assert_eq!(cleared["score"], Value::Null);
    assert_eq!(cleared["owner"], Value::Null);
    assert_eq!(cleared["qualified"], Value::Null);
    assert_eq!(cleared["contact_name"], Value::Null);
    assert_eq!(cleared["custom_fields"], json!({ "budget": 5 }));
    assert_eq!(cleared["status"], "won");
    assert_eq!(cleared["contact_email"], "pat@example.com");

    // Emptying every contact field is refused, and changes nothing.
    let message = app
        .patch_lead(
            &key,
            &id,
            &json!({ "contact_email": null, "contact_phone": null }),
        )
        .assert_error(400, "invalid_request_error");
    assert!(message.contains("contact_"), "{message}");
    assert_eq!(app.get_lead(&key, &id).expect(200)["lead"], cleared);
    // One contact field may go while another stays.
    let fewer = app.update_lead(&key, &id, json!({ "contact_phone": null }));
    assert_eq!(fewer["contact_phone"], Value::Null);
    assert_eq!(fewer["contact_email"], "pat@example.com");
    let renamed = app.update_lead(
        &key,
        &id,
        json!({ "contact_email": " Pat.New@Example.com ", "contact_phone": "312.555.0100" }),
    );
    assert_eq!(renamed["contact_email"], "pat.new@example.com");
    assert_eq!(renamed["contact_phone"], "+13125550100");
    assert_eq!(app.lead_total(&key), 1);
}

#[test]
fn patch_refuses_invalid_values() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let id = id_of(&app.create_lead(&key, json!({ "contact_name": "Pat" })));
    let other = app.create_tenant("Bravo");
    let foreign = app
        .post_owner(&other, &json!({ "name": "Brenda", "role_name": "Agent" }))
        .expect(201)["owner"]
        .clone();
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
    let before = app.get_lead(&key, &id).expect(200)["lead"].clone();
    for (body, field) in cases {
        let message = app
            .patch_lead(&key, &id, &body)
            .assert_error(400, "invalid_request_error");
        assert!(message.contains(field), "{body}: {message}");
    }
    assert_eq!(
        app.get_lead(&key, &id).expect(200)["lead"],
        before,
        "nothing changed"
    );
}

#[test]
fn patch_conflicts_and_missing_leads() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let a = id_of(&app.create_lead(&key, json!({ "contact_email": "a@example.com" })));
    let b = id_of(&app.create_lead(&key, json!({ "contact_email": "b@example.com" })));
    app.patch_lead(&key, &b, &json!({ "contact_email": "A@Example.com" }))
        .assert_error(409, "api_error");
    assert_eq!(
        app.get_lead(&key, &b).expect(200)["lead"]["contact_email"],
        "b@example.com"
    );
    // A lead's own email is no conflict.
    let same = app.update_lead(
        &key,
        &a,
        json!({ "contact_email": "a@example.com", "score": 1 }),
    );
    assert_eq!(same["score"], 1);

    let unknown = uuid::Uuid::now_v7().to_string();
    app.patch_lead(&key, &unknown, &json!({ "score": 1 }))
        .assert_error(404, "not_found_error");
    app.patch_lead(&key, "not-a-uuid", &json!({ "score": 1 }))
        .assert_error(404, "not_found_error");
    let other = app.tenant_with_key("Bravo");
    app.patch_lead(&other, &a, &json!({ "score": 2 }))
        .assert_error(404, "not_found_error");
    assert_eq!(app.get_lead(&key, &a).expect(200)["lead"]["score"], 1);
}

#[test]
fn lead_line_is_a_custom_field_and_filterable() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let body = app
        .post_lead(
            &key,
            &json!({ "contact_name": "Buyer", "lead_line": "buyer" }),
        )
        .expect(201);
    assert_eq!(body["ignored_custom_fields"], json!([]));
    let lead = &body["lead"];
    assert_eq!(lead["custom_fields"], json!({ "lead_line": "buyer" }));
    assert!(
        lead.get("lead_line").is_none(),
        "not a top-level field: {lead}"
    );
    let via_fields = app
        .post_lead(
            &key,
            &json!({ "contact_name": "Seller", "custom_fields": { "lead_line": "seller" } }),
        )
        .expect(201);
    assert_eq!(
        via_fields["lead"]["custom_fields"],
        json!({ "lead_line": "seller" })
    );
    app.post_lead(&key, &json!({ "contact_name": "Neither" }))
        .expect(201);

    let page = app
        .list_leads(&key, "?lead_line=buyer&include_custom_fields=true")
        .expect(200);
    assert_eq!(page["total"], 1);
    assert_eq!(page["leads"][0]["id"], lead["id"]);
    assert_eq!(
        page["leads"][0]["custom_fields"],
        json!({ "lead_line": "buyer" })
    );
    let page = app.list_leads(&key, "?lead_line=seller").expect(200);
    assert_eq!(page["total"], 1);
    assert_eq!(page["leads"][0]["id"], via_fields["lead"]["id"]);
}

#[test]
fn a_phone_shared_after_an_email_merge_still_matches_its_remaining_holder() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let a = app.create_lead(
        &key,
        json!({ "contact_name": "A", "contact_email": "a@example.com" }),
    );
    let b = app.create_lead(
        &key,
        json!({ "contact_name": "B", "contact_phone": "(206) 555-0123" }),
    );
    // Email wins: A takes B's phone, so two leads now hold it.
    let merged = app
        .post_lead(
            &key,
            &json!({ "contact_email": "a@example.com", "contact_phone": "206-555-0123" }),
        )
        .expect(201);
    assert_eq!(merged["lead"]["id"], a["id"]);
    assert_eq!(merged["lead"]["contact_phone"], "+12065550123");
    // B moves to another number: A is now the only lead with the phone, and receives it.
    app.update_lead(
        &key,
        &id_of(&b),
        json!({ "contact_phone": "(503) 555-0199" }),
    );
    let body = app
        .post_lead(
            &key,
            &json!({ "contact_name": "A again", "contact_phone": "+1 206 555 0123" }),
        )
        .expect(201);
    assert_eq!(body["merged"], true, "{body}");
    assert_eq!(body["matched_by"], "phone");
    assert_eq!(body["lead"]["id"], a["id"]);
    assert_eq!(app.lead_total(&key), 2);
}
