//! Bulk import: POST /api/agents/crm/leads/bulk.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use crate::helpers::*;

/// A 200 import whose body has exactly the documented fields; returns it.
fn import(app: &TestApp, key: &Key, body: &Value) -> Value {
    let body = app.bulk(key, body).expect(200);
    assert_eq!(
        keys(&body),
        set_of(&["dry_run", "results", "summary", "unknown_custom_fields"])
    );
    body
}

/// Every lead of the tenant with its custom fields, paging through with cursors.
fn all_leads(app: &TestApp, key: &Key) -> Vec<Value> {
    let mut leads = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![
            ("limit", "100"),
            ("sort_by", "created_at"),
            ("include_custom_fields", "true"),
        ];
        if let Some(c) = &cursor {
            params.push(("cursor", c));
        }
        let page = app.list_leads(key, &query(&params)).expect(200);
        leads.extend(page["leads"].as_array().unwrap().iter().cloned());
        cursor = page["next_cursor"].as_str().map(String::from);
        if cursor.is_none() {
            return leads;
        }
    }
}

/// What a row of the big import should come back as.
enum Expect {
    Created,
    /// Matched a lead made before the request (by index) or by an earlier row (by row number).
    UpdatesPre(&'static str, usize),
    UpdatesRow(&'static str, usize),
    /// Fails with an error naming this.
    Fails(&'static str),
}

#[test]
fn five_hundred_rows_mixing_created_updated_and_failed_rows() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    app.add_custom_field(&key.tenant, "budget", "number");
    let other = app.create_tenant("Bravo");
    let foreign = app
        .post_owner(&other, &json!({ "name": "Brenda" }))
        .expect(201)["owner"]["id"]
        .clone();
    let pre: Vec<Value> = (0..10)
        .map(|i| {
            app.create_lead(
                &key,
                json!({
                    "contact_name": format!("Pre {i}"),
                    "contact_email": format!("pre{i}@example.com"),
                    "contact_phone": format!("(206) 555-01{i:02}")
                }),
            )
        })
        .collect();

    fn add(plan: &mut Vec<(Value, Expect)>, row: Value, e: Expect) {
        plan.push((row, e));
    }
    let mut plan: Vec<(Value, Expect)> = Vec::new();
    for i in 0..10 {
        add(
            &mut plan,
            json!({ "row_ref": format!("r{i}"), "contact_email": format!("PRE{i}@Example.com"), "contact_name": format!("Pre {i} updated") }),
            Expect::UpdatesPre("email", i),
        );
    }
    for j in 5..8 {
        add(
            &mut plan,
            json!({ "row_ref": format!("phone{j}"), "contact_phone": format!("206.555.01{j:02}"), "source_type": "sms" }),
            Expect::UpdatesPre("phone", j),
        );
    }
    add(
        &mut plan,
        json!({ "row_ref": "bad-email", "contact_email": "nope" }),
        Expect::Fails("contact_email"),
    );
    add(
        &mut plan,
        json!({ "row_ref": "bad-stage", "contact_name": "S", "stage_slug": "nope" }),
        Expect::Fails("stage_slug"),
    );
    add(
        &mut plan,
        json!({ "row_ref": "foreign-owner", "contact_name": "O", "owner_id": foreign }),
        Expect::Fails("owner_id"),
    );
    add(&mut plan, json!("not an object"), Expect::Fails("object"));
    add(
        &mut plan,
        json!({ "row_ref": "empty" }),
        Expect::Fails("contact_"),
    );
    add(
        &mut plan,
        json!({ "row_ref": "bad-budget", "contact_name": "B", "custom_fields": { "budget": "lots" } }),
        Expect::Fails("budget"),
    );
    add(&mut plan, json!([1, 2]), Expect::Fails("object"));
    add(
        &mut plan,
        json!({ "row_ref": "bad-type", "contact_name": "T", "contact_email": { "x": 1 } }),
        Expect::Fails("contact_email"),
    );
    add(
        &mut plan,
        json!({ "row_ref": { "nested": true }, "contact_name": "R" }),
        Expect::Fails("row_ref"),
    );
    let first_new = plan.len();
    for i in first_new..500 {
        if i.is_multiple_of(50) {
            // Matches the row five before it, made earlier in this request.
            add(
                &mut plan,
                json!({ "row_ref": format!("r{i}"), "contact_email": format!("NEW{}@example.com", i - 5), "contact_name": "again" }),
                Expect::UpdatesRow("email", i - 5),
            );
        } else if i % 50 == 1 {
            add(
                &mut plan,
                json!({ "row_ref": format!("r{i}"), "contact_phone": format!("312-555-{:04}", i - 7) }),
                Expect::UpdatesRow("phone", i - 7),
            );
        } else {
            add(
                &mut plan,
                json!({
                    "row_ref": if i == first_new { json!(i) } else { json!(format!("r{i}")) },
                    "contact_name": format!("New {i}"),
                    "contact_email": format!("new{i}@example.com"),
                    "contact_phone": format!("(312) 555-{i:04}")
                }),
                Expect::Created,
            );
        }
    }
    let (rows, expect): (Vec<Value>, Vec<Expect>) = plan.into_iter().unzip();
    assert_eq!(rows.len(), 500);

    let body = import(
        &app,
        &key,
        &json!({ "leads": rows, "on_duplicate": "update" }),
    );
    assert_eq!(body["dry_run"], false);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 500);
    let mut counts: HashMap<&str, u64> = HashMap::new();
    let mut created_ids = HashSet::new();
    for (n, (result, e)) in results.iter().zip(&expect).enumerate() {
        assert_eq!(
            keys(result),
            set_of(&[
                "errors",
                "ignored_custom_fields",
                "lead_id",
                "matched_by",
                "row_ref",
                "status"
            ])
        );
        // A string or number is echoed; anything else failed its row and is echoed as null.
        let row_ref = match rows[n].get("row_ref") {
            Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
            _ => Value::Null,
        };
        assert_eq!(
            result["row_ref"], row_ref,
            "row {n}: results in request order"
        );
        let status = result["status"].as_str().unwrap();
        *counts.entry(status).or_default() += 1;
        match e {
            Expect::Created => {
                assert_eq!(status, "created", "row {n}: {result}");
                assert_eq!(result["matched_by"], Value::Null);
                assert_eq!(result["errors"], json!([]));
                let id = result["lead_id"].as_str().expect("lead_id").to_string();
                assert!(created_ids.insert(id), "row {n}: a new id per created row");
            }
            Expect::UpdatesPre(by, i) => {
                assert_eq!(status, "updated", "row {n}: {result}");
                assert_eq!(result["matched_by"], *by, "row {n}");
                assert_eq!(result["lead_id"], pre[*i]["id"], "row {n}");
                assert_eq!(result["errors"], json!([]));
            }
            Expect::UpdatesRow(by, earlier) => {
                assert_eq!(status, "updated", "row {n}: {result}");
                assert_eq!(result["matched_by"], *by, "row {n}");
                assert_eq!(result["lead_id"], results[*earlier]["lead_id"], "row {n}");
                assert!(result["lead_id"].is_string());
            }
            Expect::Fails(what) => {
                assert_eq!(status, "failed", "row {n}: {result}");
                assert_eq!(result["lead_id"], Value::Null);
                assert_eq!(result["matched_by"], Value::Null);
                let errors = result["errors"].as_array().unwrap();
                assert!(!errors.is_empty(), "row {n}");
                assert!(
                    errors.iter().any(|m| m.as_str().unwrap().contains(what)),
                    "row {n} names {what}: {errors:?}"
                );
            }
        }
    }
    let summary = &body["summary"];
    assert_eq!(summary["total"], 500);
    for status in ["created", "updated", "skipped", "failed"] {
        assert_eq!(
            summary[status].as_u64().unwrap(),
            counts.get(status).copied().unwrap_or(0),
            "summary.{status}"
        );
    }
    assert_eq!(summary["failed"], 9);
    assert_eq!(summary["skipped"], 0);
    assert_eq!(summary["updated"].as_u64().unwrap(), 13 + 2 * 9);
    assert_eq!(body["unknown_custom_fields"], json!([]));

    // Everything landed.
    let created = summary["created"].as_u64().unwrap();
    assert_eq!(app.lead_total(&key), 10 + created);
    let some_new = results[first_new + 2]["lead_id"].as_str().unwrap();
    let lead = app.get_lead(&key, some_new).expect(200)["lead"].clone();
    assert_eq!(lead["source_type"], "import", "bulk rows default to import");
    assert_eq!(lead["source_platform"], "direct");
    assert_eq!(lead["current_stage"]["slug"], "new");
    let updated_pre = app
        .get_lead(&key, pre[0]["id"].as_str().unwrap())
        .expect(200)["lead"]
        .clone();
    assert_eq!(updated_pre["contact_name"], "Pre 0 updated");
    assert_eq!(
        updated_pre["source_type"], "manual",
        "source fields keep their first value"
    );
    let via_row = app
        .get_lead(&key, results[45]["lead_id"].as_str().unwrap())
        .expect(200)["lead"]
        .clone();
    assert_eq!(
        via_row["contact_name"], "again",
        "a later row merged into an earlier one"
    );

    // Second request, on_duplicate=skip: matched rows are skipped with the matched lead's id.
    let before = app
        .get_lead(&key, pre[0]["id"].as_str().unwrap())
        .expect(200)["lead"]
        .clone();
    let body = import(
        &app,
        &key,
        &json!({
            "on_duplicate": "skip",
            "leads": [
                { "row_ref": "s0", "contact_email": "pre0@example.com", "contact_name": "Should not apply" },
                { "row_ref": "s1", "contact_phone": "206 555 0109" },
                { "row_ref": "s2", "contact_email": "fresh@example.com" },
                { "row_ref": "s3", "contact_email": "FRESH@example.com", "contact_name": "dup" },
                { "row_ref": "s4", "contact_email": "bad" }
            ]
        }),
    );
    let r = body["results"].as_array().unwrap();
    let summary_of = |s: &str| body["summary"][s].as_u64().unwrap();
    assert_eq!(
        [
            summary_of("total"),
            summary_of("created"),
            summary_of("updated"),
            summary_of("skipped"),
            summary_of("failed")
        ],
        [5, 1, 0, 3, 1]
    );
    assert_eq!(r[0]["status"], "skipped");
    assert_eq!(r[0]["matched_by"], "email");
    assert_eq!(r[0]["lead_id"], pre[0]["id"]);
    assert_eq!(r[1]["status"], "skipped");
    assert_eq!(r[1]["matched_by"], "phone");
    assert_eq!(r[1]["lead_id"], pre[9]["id"]);
    assert_eq!(r[2]["status"], "created");
    assert_eq!(r[3]["status"], "skipped");
    assert_eq!(r[3]["matched_by"], "email");
    assert_eq!(r[3]["lead_id"], r[2]["lead_id"]);
    assert_eq!(r[4]["status"], "failed");
    assert_eq!(
        app.get_lead(&key, pre[0]["id"].as_str().unwrap())
            .expect(200)["lead"]
            .clone(),
        before,
        "skipped rows write nothing"
    );
    assert_eq!(
        app.get_lead(&key, r[2]["lead_id"].as_str().unwrap())
            .expect(200)["lead"]["contact_name"],
        Value::Null
    );
    assert_eq!(app.lead_total(&key), 10 + created + 1);
}

#[test]
fn row_count_and_on_duplicate_are_validated() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let row = json!({ "contact_name": "x" });
    let cases = [
        (json!({ "leads": vec![row.clone(); 501] }), "leads"),
        (json!({ "leads": [] }), "leads"),
        (json!({}), "leads"),
        (json!({ "leads": "x" }), "leads"),
        (
            json!({ "leads": [row.clone()], "on_duplicate": "merge" }),
            "on_duplicate",
        ),
        (
            json!({ "leads": [row.clone()], "dry_run": "yes" }),
            "dry_run",
        ),
    ];
    for (body, name) in cases {
        let message = app
            .bulk(&key, &body)
            .assert_error(400, "invalid_request_error");
        assert!(message.contains(name), "{message}");
    }
    assert_eq!(app.lead_total(&key), 0);
    // 500 is allowed.
    let rows: Vec<Value> = (0..500)
        .map(|i| json!({ "contact_name": format!("n{i}") }))
        .collect();
    let body = import(&app, &key, &json!({ "leads": rows }));
    assert_eq!(body["summary"]["created"], 500);
    assert_eq!(app.lead_total(&key), 500);
}

#[test]
fn dry_run_reports_what_a_real_run_does_and_writes_nothing() {
    let app = TestApp::relaxed();
    for on_duplicate in ["update", "skip"] {
        let key = app.tenant_with_key("Acme");
        app.add_custom_field(&key.tenant, "budget", "number");
        let pre: Vec<Value> = (0..5)
            .map(|i| {
                app.create_lead(&key, json!({ "contact_email": format!("pre{i}@example.com"), "contact_phone": format!("(206) 555-010{i}") }))
            })
            .collect();
        let rows = json!([
            { "row_ref": "a", "contact_email": "pre0@example.com", "contact_name": "Zero", "custom_fields": { "budget": 1 } },
            { "row_ref": "b", "contact_phone": "206.555.0101", "lead_line": "buyer" },
            { "row_ref": "c", "contact_email": "x@example.com", "custom_fields": { "color": "red" } },
            { "row_ref": "d", "contact_email": "y@example.com", "stage_slug": "contacted" },
            { "row_ref": "e", "contact_email": "X@example.com", "contact_name": "X again" },
            { "row_ref": "f", "contact_phone": "+1 (312) 555-0000" },
            { "row_ref": "g", "contact_phone": "312 555 0000", "contact_name": "Phone twin" },
            { "row_ref": "h", "contact_email": "bad" },
            { "row_ref": "i", "contact_name": "S", "stage_slug": "nope" }
        ]);
        let before = all_leads(&app, &key);
        assert_eq!(before.len(), 5);

        let dry = import(
            &app,
            &key,
            &json!({ "leads": rows, "on_duplicate": on_duplicate, "dry_run": true }),
        );
        assert_eq!(dry["dry_run"], true);
        let after = all_leads(&app, &key);
        assert_eq!(
            serde_json::to_string(&after).unwrap(),
            serde_json::to_string(&before).unwrap(),
            "{on_duplicate}: a dry run writes nothing"
        );
        assert_eq!(app.lead_total(&key), 5);

        let real = import(
            &app,
            &key,
            &json!({ "leads": rows, "on_duplicate": on_duplicate }),
        );
        assert_eq!(real["dry_run"], false);
        assert_eq!(dry["summary"], real["summary"], "{on_duplicate}");
        assert_eq!(dry["unknown_custom_fields"], real["unknown_custom_fields"]);
        assert_eq!(dry["unknown_custom_fields"], json!(["color"]));
        let dry_rows = dry["results"].as_array().unwrap();
        let real_rows = real["results"].as_array().unwrap();
        assert_eq!(dry_rows.len(), 9);
        for (d, r) in dry_rows.iter().zip(real_rows) {
            for field in [
                "row_ref",
                "status",
                "matched_by",
                "errors",
                "ignored_custom_fields",
            ] {
                assert_eq!(d[field], r[field], "{on_duplicate} {field}: {d} vs {r}");
            }
        }
        let matched = if on_duplicate == "update" {
            "updated"
        } else {
            "skipped"
        };
        let statuses: Vec<&str> = real_rows
            .iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            [
                matched, matched, "created", "created", matched, "created", matched, "failed",
                "failed"
            ]
        );
        // Matches of existing leads carry their id even in a dry run.
        assert_eq!(dry_rows[0]["lead_id"], pre[0]["id"]);
        assert_eq!(dry_rows[1]["lead_id"], pre[1]["id"]);
        assert_eq!(dry_rows[1]["matched_by"], "phone");
        assert_eq!(real_rows[0]["lead_id"], pre[0]["id"]);
        // Would-be creations, and rows matching them, have no id in a dry run.
        for n in [2, 3, 4, 5, 6, 7, 8] {
            assert_eq!(
                dry_rows[n]["lead_id"],
                Value::Null,
                "{on_duplicate} row {n}"
            );
        }
        assert_eq!(dry_rows[4]["matched_by"], "email");
        assert_eq!(dry_rows[6]["matched_by"], "phone");
        assert!(real_rows[2]["lead_id"].is_string());
        assert_eq!(real_rows[4]["lead_id"], real_rows[2]["lead_id"]);
        assert_eq!(real_rows[6]["lead_id"], real_rows[5]["lead_id"]);
        assert_eq!(app.lead_total(&key), 8);
        let zero = app
            .get_lead(&key, pre[0]["id"].as_str().unwrap())
            .expect(200)["lead"]
            .clone();
        if on_duplicate == "update" {
            assert_eq!(zero["contact_name"], "Zero");
            assert_eq!(zero["custom_fields"], json!({ "budget": 1 }));
        } else {
            assert_eq!(zero["contact_name"], Value::Null);
        }
    }
}

#[test]
fn unknown_custom_fields_are_reported_per_row_and_once_overall() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    app.add_custom_field(&key.tenant, "budget", "number");
    let body = import(
        &app,
        &key,
        &json!({ "leads": [
            { "row_ref": 1, "contact_email": "a@example.com", "custom_fields": { "budget": 1, "color": "red" } },
            { "row_ref": 2, "contact_email": "b@example.com", "custom_fields": { "size": 3, "color": "blue" } },
            { "row_ref": 3, "contact_email": "c@example.com" },
            { "row_ref": 4, "contact_email": "d@example.com", "custom_fields": { "budget": "lots", "zzz": 1 } }
        ] }),
    );
    let r = body["results"].as_array().unwrap();
    assert_eq!(sorted(&r[0]["ignored_custom_fields"]), ["color"]);
    assert_eq!(sorted(&r[1]["ignored_custom_fields"]), ["color", "size"]);
    assert_eq!(r[2]["ignored_custom_fields"], json!([]));
    assert_eq!(
        r[3]["status"], "failed",
        "a wrongly typed field fails its row alone"
    );
    assert!(
        r[3]["errors"][0]
            .as_str()
            .unwrap()
            .contains("custom_fields.budget")
    );
    assert_eq!(body["summary"]["created"], 3);
    let unknown = sorted(&body["unknown_custom_fields"]);
    assert_eq!(unknown, ["color", "size"]);
    assert_eq!(
        body["unknown_custom_fields"].as_array().unwrap().len(),
        2,
        "deduplicated"
    );
    let lead = app
        .get_lead(&key, r[0]["lead_id"].as_str().unwrap())
        .expect(200)["lead"]
        .clone();
    assert_eq!(lead["custom_fields"], json!({ "budget": 1 }));
}

#[test]
fn bulk_imported_leads_are_listed() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let body = import(
        &app,
        &key,
        &json!({ "leads": [
            { "row_ref": "a", "contact_name": "Imported Ann", "contact_email": "ann@example.com", "lead_line": "buyer" },
            { "row_ref": "b", "contact_name": "Imported Bob", "contact_phone": "(206) 555-0123", "source_type": "form", "source_platform": "zoho" },
            { "row_ref": "c", "contact_name": "Imported Cat", "stage_slug": "qualified" }
        ] }),
    );
    assert_eq!(body["summary"]["created"], 3);
    let ids: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["lead_id"].as_str().unwrap())
        .collect();
    let leads = all_leads(&app, &key);
    assert_eq!(leads.len(), 3);
    for id in &ids {
        let lead = leads.iter().find(|l| l["id"] == *id).expect("listed");
        assert_eq!(lead["customer_id"], key.tenant.as_str());
    }
    let by_id = |id: &str| leads.iter().find(|l| l["id"] == id).unwrap().clone();
    let ann = by_id(ids[0]);
    assert_eq!(ann["source_type"], "import");
    assert_eq!(ann["contact_email"], "ann@example.com");
    assert_eq!(ann["custom_fields"], json!({ "lead_line": "buyer" }));
    let bob = by_id(ids[1]);
    assert_eq!(bob["source_type"], "form");
    assert_eq!(bob["source_platform"], "zoho");
    assert_eq!(bob["contact_phone"], "+12065550123");
    assert_eq!(by_id(ids[2])["current_stage"]["slug"], "qualified");

    let page = app
        .list_leads(&key, "?search=imported&lead_line=buyer")
        .expect(200);
    assert_eq!(page["total"], 1);
    assert_eq!(page["leads"][0]["id"], ids[0]);
    assert_eq!(
        app.get_lead(&key, ids[2]).expect(200)["lead"]["contact_name"],
        "Imported Cat"
    );
}

#[test]
fn a_row_with_more_than_a_hundred_custom_fields_fails_alone() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let many: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("f{i}"), json!(i))).collect();
    let hundred: serde_json::Map<String, Value> =
        (0..100).map(|i| (format!("f{i}"), json!(i))).collect();
    let body = import(
        &app,
        &key,
        &json!({ "leads": [
            { "row_ref": "many", "contact_name": "Many", "custom_fields": many },
            { "row_ref": "hundred", "contact_name": "Hundred", "custom_fields": hundred },
        ] }),
    );
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "failed");
    assert_eq!(
        results[0]["errors"],
        json!(["custom_fields may hold at most 100 fields"])
    );
    assert_eq!(results[1]["status"], "created", "{}", results[1]);
    assert_eq!(body["summary"]["created"], 1);
}

#[test]
fn unknown_top_level_fields_are_refused_naming_the_field() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let message = app
        .bulk(
            &key,
            &json!({ "leads": [{ "contact_name": "A" }], "padding": "x".repeat(1000) }),
        )
        .assert_error(400, "invalid_request_error");
    assert!(message.contains("padding"), "{message}");
    assert_eq!(app.lead_total(&key), 0, "a refused request writes nothing");
}
