//! Spec §12.2: a lead's interactions, its counters and version, the `interaction.created`
//! event, paging, bounds.

use serde_json::{Value, json};

use crate::helpers::*;

fn interactions_path(lead: &str) -> String {
    format!("{LEADS}/{lead}/interactions")
}

fn add(app: &TestApp, key: &Key, lead: &str, body: Value) -> Resp {
    app.api("POST", &interactions_path(lead), key)
        .json(&body)
        .send()
}

fn timeline(app: &TestApp, key: &Key, lead: &str, q: &str) -> Value {
    app.api("GET", &format!("{}{q}", interactions_path(lead)), key)
        .send()
        .expect(200)
}

#[test]
fn an_interaction_moves_the_counters_and_version_and_is_emitted() {
    let env = DeliveryEnv::start();
    let hook = env.hook("/i", json!({ "event_types": ["interaction.created"] }));
    let lead = env.lead(json!({ "contact_email": "ada@example.com" }));
    let id = id_of(&lead);
    let at = "2026-01-02T03:04:05.000Z";
    let out = add(
        &env.app,
        &env.key,
        &id,
        json!({ "type": "call", "direction": "inbound", "occurred_at": at, "summary": "asked about the house", "duration_seconds": 120 }),
    )
    .expect(201);
    assert_eq!(keys(&out), set_of(&["interaction", "lead"]));
    let interaction = &out["interaction"];
    assert_eq!(
        keys(interaction),
        set_of(&[
            "id",
            "lead_id",
            "type",
            "direction",
            "occurred_at",
            "summary",
            "body",
            "duration_seconds",
            "created_at"
        ])
    );
    assert_eq!(interaction["type"], "call");
    assert_eq!(interaction["occurred_at"], at);
    assert_eq!(interaction["lead_id"], id.as_str());
    assert_eq!(out["lead"]["interaction_count"], 1);
    assert_eq!(out["lead"]["last_interaction_at"], at);
    assert_eq!(out["lead"]["version"], 2);

    // An older one counts, and leaves last_interaction_at at the latest.
    let older = add(
        &env.app,
        &env.key,
        &id,
        json!({ "type": "note", "occurred_at": "2025-12-31T00:00:00Z", "body": "met at the open house" }),
    )
    .expect(201);
    assert_eq!(older["lead"]["interaction_count"], 2);
    assert_eq!(older["lead"]["last_interaction_at"], at);
    assert_eq!(older["lead"]["version"], 3);
    let got = env.app.get_lead(&env.key, &id);
    assert_eq!(got.header("etag"), Some("\"3\""));

    let reqs = env.rx.wait_for("/i", 2, ARRIVE);
    let bodies: Vec<Value> = reqs.iter().map(|r| r.json()).collect();
    let call = bodies
        .iter()
        .find(|b| b["interaction"]["type"] == "call")
        .expect("the call");
    assert_eq!(call["event"], "interaction.created");
    assert_eq!(call["interaction"], out["interaction"]);
    assert_eq!(call["lead"]["interaction_count"], 1);
    assert_eq!(call["lead"]["version"], 2);
    env.all_final(&hook);
    let logged = env
        .app
        .list_events(&env.key, &query(&[("types", "interaction.created")]))
        .expect(200);
    assert_eq!(logged["events"].as_array().unwrap().len(), 2);
}

#[test]
fn the_timeline_pages_newest_first_and_a_merge_keeps_it() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let id = id_of(&app.create_lead(&key, json!({ "contact_email": "ada@example.com" })));
    for day in [3, 1, 5, 2, 4] {
        add(
            &app,
            &key,
            &id,
            json!({ "type": "email", "occurred_at": format!("2026-01-0{day}T00:00:00Z") }),
        )
        .expect(201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => query(&[("limit", "2"), ("cursor", c)]),
            None => query(&[("limit", "2")]),
        };
        let page = timeline(&app, &key, &id, &q);
        assert_eq!(keys(&page), set_of(&["interactions", "next_cursor"]));
        seen.extend(
            page["interactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| str_of(&i["occurred_at"])),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let days: Vec<String> = [5, 4, 3, 2, 1]
        .iter()
        .map(|d| format!("2026-01-0{d}T00:00:00.000Z"))
        .collect();
    assert_eq!(seen, days, "newest first, each once");

    // A create that merges into the lead keeps its timeline and its counters.
    let merged = app
        .post_lead(
            &key,
            &json!({ "contact_email": "ADA@example.com", "contact_name": "Ada" }),
        )
        .expect(201);
    assert_eq!(merged["merged"], true);
    assert_eq!(merged["lead"]["interaction_count"], 5);
    assert_eq!(
        timeline(&app, &key, &id, "")["interactions"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    // sort_by=last_interaction_at now has data to sort.
    let other = id_of(&app.create_lead(&key, json!({ "contact_email": "bob@example.com" })));
    let sorted = app
        .list_leads(
            &key,
            &query(&[("sort_by", "last_interaction_at"), ("sort_dir", "desc")]),
        )
        .expect(200);
    let ids: Vec<String> = sorted["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, [id.clone(), other], "nulls last");
}

#[test]
fn bad_interactions_are_400_and_change_nothing() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let other = app.tenant_with_key("Other");
    let id = id_of(&app.create_lead(&key, json!({ "contact_email": "ada@example.com" })));
    for (body, word) in [
        (
            json!({ "type": "call", "occurred_at": "2999-01-01T00:00:00Z" }),
            "occurred_at",
        ),
        (json!({ "type": "fax" }), "type"),
        (json!({}), "type"),
        (
            json!({ "type": "note", "summary": "x".repeat(501) }),
            "summary",
        ),
        (
            json!({ "type": "note", "body": "x".repeat(20_001) }),
            "body",
        ),
        (
            json!({ "type": "call", "duration_seconds": -1 }),
            "duration_seconds",
        ),
        (
            json!({ "type": "call", "duration_seconds": 86_401 }),
            "duration_seconds",
        ),
        (
            json!({ "type": "call", "direction": "sideways" }),
            "direction",
        ),
        (
            json!({ "type": "call", "occurred_at": "yesterday" }),
            "occurred_at",
        ),
    ] {
        let res = add(&app, &key, &id, body.clone());
        let message = res.assert_error(400, "invalid_request_error");
        assert!(message.contains(word), "{body}: {message}");
    }
    let lead = app.get_lead(&key, &id).expect(200)["lead"].clone();
    assert_eq!(
        (lead["interaction_count"].clone(), lead["version"].clone()),
        (json!(0), json!(1))
    );
    // Another tenant's lead, or none: 404.
    add(&app, &other, &id, json!({ "type": "note" })).assert_error(404, "not_found_error");
    app.api("GET", &interactions_path(&id), &other)
        .send()
        .assert_error(404, "not_found_error");
    // The same Idempotency-Key replays the first answer and records nothing more.
    let keyed = app.idempotent("note-1");
    let first = keyed
        .api("POST", &interactions_path(&id), &key)
        .json(&json!({ "type": "note", "summary": "hello" }))
        .send()
        .expect(201);
    let again = keyed
        .api("POST", &interactions_path(&id), &key)
        .json(&json!({ "type": "note", "summary": "hello" }))
        .send();
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first);
    assert_eq!(
        app.get_lead(&key, &id).expect(200)["lead"]["interaction_count"],
        1
    );
}

/// Paging by `last_interaction_at` while interactions keep arriving on other leads: every lead
/// the walk started with is seen exactly once, in order, nulls last.
#[test]
fn last_interaction_at_cursor_paging_is_stable_while_interactions_arrive() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let mut with = Vec::new();
    for i in 0..12 {
        let id = id_of(&app.create_lead(
            &key,
            json!({ "contact_email": format!("w{i}@example.com") }),
        ));
        let at = format!("2026-01-{:02}T00:00:00Z", i + 1);
        add(
            &app,
            &key,
            &id,
            json!({ "type": "call", "occurred_at": at }),
        )
        .expect(201);
        with.push(id);
    }
    let without: Vec<String> = (0..4)
        .map(|i| {
            id_of(&app.create_lead(
                &key,
                json!({ "contact_email": format!("n{i}@example.com") }),
            ))
        })
        .collect();
    let mut expected: Vec<String> = with.iter().rev().cloned().collect();
    let mut nulls = without.clone();
    nulls.sort();
    nulls.reverse();
    expected.extend(nulls);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut n = 0;
    loop {
        let mut params = vec![
            ("sort_by", "last_interaction_at"),
            ("sort_dir", "desc"),
            ("limit", "3"),
        ];
        if let Some(c) = &cursor {
            params.push(("cursor", c));
        }
        let page = app.list_leads(&key, &query(&params)).expect(200);
        seen.extend(page["leads"].as_array().unwrap().iter().map(id_of));
        // Meanwhile a new lead gets an interaction now: it sorts before the cursor.
        let fresh = id_of(&app.create_lead(
            &key,
            json!({ "contact_email": format!("f{n}@example.com") }),
        ));
        add(&app, &key, &fresh, json!({ "type": "sms" })).expect(201);
        n += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}
