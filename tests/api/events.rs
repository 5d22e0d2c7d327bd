//! Spec §11: lead versions and conditional writes, the event envelope with `previous`, the
//! operational events, and the pull event log.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// Every event of the tenant's log, following `next_cursor` from the start, with `filters`.
fn whole_log(app: &TestApp, key: &Key, filters: &[(&str, &str)]) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut params = filters.to_vec();
        if let Some(after) = &after {
            params.push(("after", after));
        }
        let page = app.list_events(key, &query(&params)).expect(200);
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        if page["has_more"] != true {
            return events;
        }
        after = Some(str_of(&page["next_cursor"]));
    }
}

fn types_of(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| str_of(&e["type"])).collect()
}

#[test]
fn version_and_etag_move_with_changes_and_not_with_no_ops() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let res = app.post_lead(&key, &json!({ "contact_email": "ada@example.com" }));
    let lead = res.expect(201)["lead"].clone();
    assert_eq!(lead["version"], 1);
    assert_eq!(res.header("etag"), Some("\"1\""));
    let id = id_of(&lead);
    let got = app.get_lead(&key, &id);
    assert_eq!(got.header("etag"), Some("\"1\""));
    assert_eq!(got.json()["lead"]["version"], 1);

    let res = app.patch_lead(&key, &id, &json!({ "status": "won" }));
    assert_eq!(res.expect(200)["lead"]["version"], 2);
    assert_eq!(res.header("etag"), Some("\"2\""));

    // No-ops: the same PATCH again, and a merge that brings nothing new.
    let res = app.patch_lead(&key, &id, &json!({ "status": "won" }));
    assert_eq!(res.expect(200)["lead"]["version"], 2);
    assert_eq!(res.header("etag"), Some("\"2\""));
    let res = app.post_lead(&key, &json!({ "contact_email": "ADA@example.com" }));
    assert_eq!(res.expect(201)["lead"]["version"], 2);
    assert_eq!(res.header("etag"), Some("\"2\""));
    let updates = whole_log(&app, &key, &[("types", "lead.updated")]);
    assert_eq!(updates.len(), 1, "no-ops record no event: {updates:?}");

    // A merge that changes something moves it.
    let merged = app.create_lead(
        &key,
        json!({ "contact_email": "ada@example.com", "contact_name": "Ada" }),
    );
    assert_eq!(merged["version"], 3);
    assert_eq!(app.get_lead(&key, &id).header("etag"), Some("\"3\""));
}

#[test]
fn if_match_guards_a_patch_and_a_stale_one_changes_nothing() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let id = id_of(&app.create_lead(&key, json!({ "contact_email": "ada@example.com" })));
    let log_before = whole_log(&app, &key, &[]);

    let res = app.patch_lead_if(&key, &id, "\"7\"", &json!({ "status": "lost" }));
    let message = res.assert_error(412, "api_error");
    assert!(
        message.contains("version 1"),
        "names the current version: {message}"
    );
    let lead = app.get_lead(&key, &id).expect(200)["lead"].clone();
    assert_eq!(
        (lead["status"].clone(), lead["version"].clone()),
        (json!("active"), json!(1))
    );
    assert_eq!(
        whole_log(&app, &key, &[]).len(),
        log_before.len(),
        "no event"
    );

    // The current version, quoted or bare, a list holding it, and `*` all match.
    for (tag, version) in [("\"1\"", 2), ("2", 3), ("\"9\", \"3\"", 4), ("*", 5)] {
        let score = version * 10;
        let res = app.patch_lead_if(&key, &id, tag, &json!({ "score": score }));
        assert_eq!(
            res.expect(200)["lead"]["version"],
            version,
            "If-Match {tag}"
        );
    }

    // Malformed: 400 before anything happens.
    for bad in ["W/\"5\"", "five", "\"\"", "-1"] {
        let res = app.patch_lead_if(&key, &id, bad, &json!({ "score": 1 }));
        let message = res.assert_error(400, "invalid_request_error");
        assert!(message.contains("If-Match"), "{message}");
    }
    assert_eq!(app.get_lead(&key, &id).expect(200)["lead"]["score"], 50);
    // With an Idempotency-Key the condition is part of the request: the same key and
    // condition replay (a 412 included), the same key with another condition is another
    // request.
    let keyed = app.idempotent("k-412");
    let stale = keyed.patch_lead_if(&key, &id, "\"1\"", &json!({ "score": 60 }));
    stale.assert_error(412, "api_error");
    let again = keyed.patch_lead_if(&key, &id, "\"1\"", &json!({ "score": 60 }));
    again.assert_error(412, "api_error");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    keyed
        .patch_lead_if(&key, &id, "\"5\"", &json!({ "score": 60 }))
        .assert_error(409, "api_error");
    // A missing lead is 404 whatever the condition.
    let missing = "01a2311d-974c-7559-8fe9-52ceded1481a";
    app.patch_lead_if(&key, missing, "*", &json!({ "score": 1 }))
        .assert_error(404, "not_found_error");
}

#[test]
fn previous_holds_the_old_value_of_every_changed_field() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    app.add_custom_field(&key.tenant, "budget", "number");
    let owner = app
        .post_owner(
            &key.tenant,
            &json!({ "name": "Olga", "role_name": "agent" }),
        )
        .expect(201)["owner"]
        .clone();
    let lead = app.create_lead(
        &key,
        json!({
            "contact_name": "Ada",
            "contact_email": "ada@example.com",
            "lead_line": "buyer",
            "custom_fields": { "budget": 100 },
        }),
    );
    let id = id_of(&lead);
    app.update_lead(
        &key,
        &id,
        json!({
            "status": "won",
            "score": 80,
            "qualified": true,
            "stage_slug": "contacted",
            "owner_id": owner["id"],
            "lead_line": "seller",
            "custom_fields": { "budget": 250 },
            "contact_name": "Ada L.",
        }),
    );
    app.update_lead(&key, &id, json!({ "owner_id": null, "score": null }));

    let updates = whole_log(&app, &key, &[("types", "lead.updated")]);
    assert_eq!(updates.len(), 2);
    let first = &updates[0]["data"];
    let changed: BTreeSet<String> = first["changed_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(str_of)
        .collect();
    assert_eq!(
        changed,
        set_of(&[
            "contact_name",
            "current_stage",
            "owner",
            "status",
            "score",
            "qualified",
            "lead_line",
            "custom_fields.budget"
        ])
    );
    assert_eq!(
        first["previous"],
        json!({
            "contact_name": "Ada",
            "current_stage": { "slug": "new", "name": "New" },
            "owner": null,
            "status": "active",
            "score": null,
            "qualified": null,
            "lead_line": "buyer",
            "custom_fields.budget": 100,
        })
    );
    let snapshot = &first["lead"];
    assert_eq!(snapshot["status"], "won");
    assert_eq!(
        snapshot["owner"],
        json!({ "id": owner["id"], "name": "Olga" })
    );
    assert_eq!(snapshot["current_stage"]["slug"], "contacted");
    assert_eq!(snapshot["version"], 2);
    assert_eq!(snapshot["custom_fields"], json!({ "budget": 250 }));

    let second = &updates[1]["data"];
    assert_eq!(second["changed_fields"], json!(["owner", "score"]));
    assert_eq!(
        second["previous"],
        json!({ "owner": { "id": owner["id"], "name": "Olga" }, "score": 80 })
    );
    assert_eq!(second["lead"]["owner"], Value::Null);
    assert_eq!(second["lead"]["version"], 3);
}

#[test]
fn one_event_id_across_webhooks_and_retries_and_the_log() {
    let env = DeliveryEnv::start();
    env.rx.script(
        "/flaky",
        vec![Behaviour::status(500), Behaviour::status(200)],
    );
    let steady = env.hook("/steady", json!({}));
    let flaky = env.hook("/flaky", json!({ "retry_attempts": 2 }));
    let lead = env.lead(json!({ "contact_email": "ada@example.com" }));

    let steady_req = env.rx.wait_for("/steady", 1, ARRIVE).remove(0);
    let flaky_reqs = env.rx.wait_for("/flaky", 2, Duration::from_secs(10));
    let event_id = str_of(&steady_req.json()["event_id"]);
    assert_eq!(flaky_reqs[0].delivery_id(), flaky_reqs[1].delivery_id());
    assert_ne!(steady_req.delivery_id(), flaky_reqs[0].delivery_id());
    for req in &flaky_reqs {
        assert_eq!(
            str_of(&req.json()["event_id"]),
            event_id,
            "retries keep the event id"
        );
        assert_eq!(req.json()["occurred_at"], steady_req.json()["occurred_at"]);
    }
    let log = whole_log(&env.app, &env.key, &[]);
    assert_eq!(log.len(), 1);
    assert_eq!(str_of(&log[0]["id"]), event_id);
    assert_eq!(log[0]["type"], "lead.created");
    let data = &log[0]["data"];
    let mut sent = steady_req.json();
    sent.as_object_mut().unwrap().remove("delivered_at");
    assert_eq!(
        data, &sent,
        "the log's data is the body without delivered_at"
    );
    assert_eq!(data["lead"]["id"], lead["id"]);
    env.all_final(&steady);
    env.all_final(&flaky);
}

#[test]
fn operational_events_reach_the_other_webhooks_and_never_the_one_they_are_about() {
    let env = DeliveryEnv::start();
    let ops = ["webhook.disabled", "delivery.exhausted"];
    env.rx.set("/gone", Behaviour::status(410));
    env.rx.set("/broken", Behaviour::status(500));
    let watcher = env.hook("/watch", json!({ "event_types": ops }));
    let gone = env.hook(
        "/gone",
        json!({ "event_types": ["lead.created", "webhook.disabled", "delivery.exhausted"] }),
    );
    let broken = env.hook(
        "/broken",
        json!({ "event_types": ["lead.updated", "delivery.exhausted"], "retry_attempts": 0 }),
    );

    let lead = env.lead(json!({ "contact_email": "ada@example.com" }));
    let disabled = env.rx.wait_for("/watch", 1, ARRIVE).remove(0).json();
    assert_eq!(disabled["event"], "webhook.disabled");
    assert_eq!(disabled["lead"], Value::Null);
    assert_eq!(disabled["webhook"]["id"], gone.id.as_str());
    assert_eq!(disabled["webhook"]["last_delivery_status"], 410);
    assert_eq!(disabled["webhook"]["consecutive_failures"], 1);
    assert!(
        disabled["webhook"]["disabled_reason"].is_string(),
        "{disabled}"
    );
    assert_eq!(env.webhook(&gone)["is_active"], false);

    env.app
        .update_lead(&env.key, &id_of(&lead), json!({ "status": "won" }));
    let reqs = env.rx.wait_for("/watch", 2, ARRIVE);
    let exhausted = reqs[1].json();
    assert_eq!(exhausted["event"], "delivery.exhausted");
    let delivery = &exhausted["delivery"];
    let broken_log = env.all_final(&broken);
    assert_eq!(broken_log.len(), 1, "the broken hook got only the update");
    assert_eq!(delivery["id"], broken_log[0]["id"]);
    assert_eq!(delivery["event"], "lead.updated");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["response_status"], 500);
    assert_eq!(
        exhausted["webhook"],
        json!({ "id": broken.id, "url": env.rx.url("/broken") })
    );
    let updates = whole_log(&env.app, &env.key, &[("types", "lead.updated")]);
    assert_eq!(delivery["event_id"], updates[0]["id"]);

    // Neither reached the webhook it is about, though both subscribe: the gone hook's one
    // request was the lead, the broken hook's the update. (`gone`, turned off, does not get
    // the exhaustion it subscribes to either.)
    env.all_final(&watcher);
    assert_eq!(env.rx.count("/gone"), 1);
    assert_eq!(env.rx.count("/broken"), 1);
    assert_eq!(env.rx.count("/watch"), 2);
    assert_eq!(
        types_of(&whole_log(&env.app, &env.key, &[])),
        [
            "lead.created",
            "webhook.disabled",
            "lead.updated",
            "delivery.exhausted"
        ]
    );
}

#[test]
fn bulk_is_inert_unless_it_asks_for_events_then_one_per_row_in_row_order() {
    let env = DeliveryEnv::start();
    let hook = env.hook(
        "/all",
        json!({ "event_types": ["lead.created", "lead.updated"] }),
    );
    let rows = json!([
        { "row_ref": "a", "contact_email": "a@example.com" },
        { "row_ref": "b", "contact_email": "b@example.com" },
    ]);
    env.app
        .bulk(&env.key, &json!({ "leads": rows }))
        .expect(200);
    assert!(
        whole_log(&env.app, &env.key, &[]).is_empty(),
        "inert by default"
    );
    env.assert_nothing_queued(&env.key, &hook, "bulk without emit_events");

    let body = json!({
        "emit_events": true,
        "leads": [
            { "row_ref": "c", "contact_email": "c@example.com" },
            { "row_ref": "a2", "contact_email": "a@example.com", "contact_name": "A" },
            { "row_ref": "bad", "contact_email": "nope" },
            { "row_ref": "b2", "contact_email": "b@example.com" },
            { "row_ref": "d", "contact_email": "d@example.com" },
        ],
    });
    let out = env.app.bulk(&env.key, &body).expect(200);
    assert_eq!(out["summary"]["created"], 2, "{out}");
    // A dry run with emit_events writes nothing, events included.
    let mut dry = body.clone();
    dry["dry_run"] = json!(true);
    dry["leads"][0]["contact_email"] = json!("e@example.com");
    env.app.bulk(&env.key, &dry).expect(200);

    let log = whole_log(&env.app, &env.key, &[]);
    let emails: Vec<String> = log
        .iter()
        .map(|e| str_of(&e["data"]["lead"]["contact_email"]))
        .collect();
    assert_eq!(
        types_of(&log),
        ["lead.created", "lead.updated", "lead.created"]
    );
    assert_eq!(
        emails,
        ["c@example.com", "a@example.com", "d@example.com"],
        "row order; the no-op row emits nothing"
    );
    assert_eq!(log[1]["data"]["previous"], json!({ "contact_name": null }));
    env.rx.wait_for("/all", 3, ARRIVE);
    assert_eq!(env.all_final(&hook).len(), 3);
}

#[test]
fn the_log_filters_pages_and_keeps_its_cursor_on_an_empty_page() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let first = app.list_events(&key, "").expect(200);
    assert_eq!(keys(&first), set_of(&["events", "next_cursor", "has_more"]));
    assert_eq!(first["events"], json!([]));
    assert_eq!(first["has_more"], false);
    let start = str_of(&first["next_cursor"]);

    let a = id_of(&app.create_lead(&key, json!({ "contact_email": "a@example.com" })));
    let b = id_of(&app.create_lead(&key, json!({ "contact_email": "b@example.com" })));
    for score in 1..=3 {
        app.update_lead(&key, &a, json!({ "score": score }));
    }
    app.update_lead(&key, &b, json!({ "score": 9 }));

    // From the cursor of the empty first page: everything since, oldest first.
    let page = app
        .list_events(&key, &query(&[("after", &start), ("limit", "4")]))
        .expect(200);
    let events = page["events"].as_array().unwrap();
    assert_eq!(
        types_of(events),
        [
            "lead.created",
            "lead.created",
            "lead.updated",
            "lead.updated"
        ]
    );
    assert_eq!(page["has_more"], true);
    for e in events {
        assert_eq!(keys(e), set_of(&["id", "type", "occurred_at", "data"]));
        assert_eq!(e["data"]["event_id"], e["id"]);
        assert!(e["data"].get("delivered_at").is_none());
    }
    let next = str_of(&page["next_cursor"]);
    let rest = app
        .list_events(&key, &query(&[("after", &next)]))
        .expect(200);
    assert_eq!(rest["events"].as_array().unwrap().len(), 2);
    assert_eq!(rest["has_more"], false);
    let end = str_of(&rest["next_cursor"]);
    let empty = app
        .list_events(&key, &query(&[("after", &end)]))
        .expect(200);
    assert_eq!(empty["events"], json!([]));
    assert_eq!(
        str_of(&empty["next_cursor"]),
        end,
        "an empty page hands back the cursor"
    );

    // Filters.
    let of_a = whole_log(&app, &key, &[("lead_id", &a)]);
    assert_eq!(of_a.len(), 4);
    // A page that read to the end of what it asks for moves its cursor to the log's end, past
    // the other leads' events: a quiet lead's poller keeps up with the log.
    let b_only = app
        .list_events(&key, &query(&[("lead_id", &b)]))
        .expect(200);
    assert_eq!(b_only["next_cursor"], rest["next_cursor"]);
    assert!(of_a.iter().all(|e| e["data"]["lead"]["id"] == a.as_str()));
    let versions: Vec<i64> = of_a
        .iter()
        .map(|e| e["data"]["lead"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    let created = whole_log(&app, &key, &[("types", "lead.created")]);
    assert_eq!(created.len(), 2);
    let both = whole_log(
        &app,
        &key,
        &[("types", "lead.created, lead.updated"), ("lead_id", &b)],
    );
    assert_eq!(types_of(&both), ["lead.created", "lead.updated"]);

    // A fresh first poll starts at the end: nothing old, then what comes next.
    let now = app.list_events(&key, "").expect(200);
    assert_eq!(
        now["events"].as_array().unwrap().len(),
        6,
        "without after: from the start"
    );
    let tail = str_of(&now["next_cursor"]);
    app.update_lead(&key, &b, json!({ "score": 10 }));
    let new = app
        .list_events(&key, &query(&[("after", &tail)]))
        .expect(200);
    assert_eq!(new["events"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_log_queries_are_400_and_another_tenants_cursor_is_refused() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let other = app.tenant_with_key("Other");
    app.create_lead(&key, json!({ "contact_email": "a@example.com" }));
    let theirs = str_of(&app.list_events(&other, "").expect(200)["next_cursor"]);
    // A cursor past the end of the log was never handed out.
    let end = str_of(&app.list_events(&key, "").expect(200)["next_cursor"]);
    let forged = {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut cursor: Value = serde_json::from_slice(&engine.decode(&end).unwrap()).unwrap();
        cursor["q"] = json!(cursor["q"].as_u64().unwrap() + 1_000);
        engine.encode(cursor.to_string())
    };
    for (q, word) in [
        (query(&[("types", "lead.merged")]), "types"),
        (query(&[("types", "webhook.test")]), "types"),
        (query(&[("after", "not-a-cursor")]), "after"),
        (query(&[("after", "eyJ2IjoxfQ")]), "after"),
        (query(&[("after", &theirs)]), "after"),
        (query(&[("limit", "0")]), "limit"),
        (query(&[("limit", "101")]), "limit"),
        (query(&[("limit", "ten")]), "limit"),
        (query(&[("lead_id", "nope")]), "lead_id"),
        (query(&[("types", ",")]), "types"),
        (query(&[("after", &forged)]), "after"),
    ] {
        let res = app.list_events(&key, &q);
        let message = res.assert_error(400, "invalid_request_error");
        assert!(message.contains(word), "{q}: {message}");
    }
    // The scope: leads:read.
    let writer = app.issue_key(&key.tenant, &["public_api:leads:write"]);
    app.list_events(&writer, "")
        .assert_error(403, "authorization_error");
}

/// 8 writers create and update leads while a poller follows `next_cursor`: the poller ends up
/// with every committed change exactly once, in commit order.
#[test]
fn a_poller_sees_every_event_exactly_once_in_commit_order_under_concurrent_writers() {
    let app = Arc::new(TestApp::relaxed());
    let key = app.tenant_with_key("Acme");
    let start = str_of(&app.list_events(&key, "").expect(200)["next_cursor"]);
    let done = Arc::new(AtomicBool::new(false));

    let poller = {
        let (app, key, done) = (Arc::clone(&app), key.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut after = start;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = app
                    .list_events(&key, &query(&[("after", &after), ("limit", "7")]))
                    .expect(200);
                seen.extend(page["events"].as_array().unwrap().iter().cloned());
                after = str_of(&page["next_cursor"]);
                if finished && page["has_more"] == false {
                    return seen;
                }
            }
        })
    };
    // Each writer: what the server answered, in the order it answered (lead id, version).
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (app, key) = (Arc::clone(&app), key.clone());
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0..15 {
                    let lead = app.create_lead(
                        &key,
                        json!({ "contact_email": format!("w{w}-{i}@example.com") }),
                    );
                    got.push((id_of(&lead), lead["version"].as_i64().unwrap()));
                    let updated = app.update_lead(&key, &id_of(&lead), json!({ "score": i }));
                    got.push((id_of(&updated), updated["version"].as_i64().unwrap()));
                }
                got
            })
        })
        .collect();
    let written: Vec<Vec<(String, i64)>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    done.store(true, Ordering::SeqCst);
    let seen = poller.join().unwrap();

    let ids: Vec<String> = seen.iter().map(id_of).collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "no event twice"
    );
    let position: HashMap<(String, i64), usize> = seen
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let lead = &e["data"]["lead"];
            ((id_of(lead), lead["version"].as_i64().unwrap()), i)
        })
        .collect();
    let total: usize = written.iter().map(Vec::len).sum();
    assert_eq!(seen.len(), total, "every committed change, none more");
    for changes in &written {
        for change in changes {
            assert!(position.contains_key(change), "{change:?} was never seen");
        }
        // A writer's later change committed after its earlier one was answered.
        let order: Vec<usize> = changes.iter().map(|c| position[c]).collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "commit order: {order:?}"
        );
    }
    let seqs: Vec<String> = seen.iter().map(|e| str_of(&e["occurred_at"])).collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "oldest first");
}
