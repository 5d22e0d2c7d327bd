//! Idempotency-Key on POST /leads, POST /leads/bulk and PATCH /leads/{id}.

use std::sync::Barrier;
use std::thread;

use serde_json::json;

use crate::helpers::*;

const REPLAYED: &str = "idempotent-replayed";

fn assert_fresh(res: &Resp, status: u16) {
    assert_eq!(res.status, status, "{}", res.text);
    assert_eq!(
        res.header(REPLAYED),
        None,
        "a first response is not a replay"
    );
}

fn assert_replay_of(res: &Resp, original: &Resp) {
    assert_eq!(res.status, original.status, "{}", res.text);
    assert_eq!(res.text, original.text, "the stored body, byte for byte");
    assert_eq!(res.header(REPLAYED), Some("true"));
}

#[test]
fn a_replay_returns_the_stored_response_and_writes_nothing() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    // No email or phone: without the key, a second request would make a second lead.
    let ivy = r#"{"contact_name": "Ivy", "source_platform": "referral", "custom_fields": {"b": 1, "a": 2}}"#;
    let first = app.idempotent("create-1").post_lead_raw(&key, ivy);
    assert_fresh(&first, 201);
    assert_eq!(first.json()["lead"]["contact_name"], "Ivy");
    assert_eq!(app.lead_total(&key), 1);

    let again = app.idempotent("create-1").post_lead_raw(&key, ivy);
    assert_replay_of(&again, &first);
    // Key order does not matter: the bodies are compared as canonical JSON.
    let reordered = app.idempotent("create-1").post_lead_raw(
        &key,
        r#"{ "custom_fields": {"a": 2, "b": 1}, "source_platform": "referral",
             "contact_name": "Ivy" }"#,
    );
    assert_replay_of(&reordered, &first);
    assert_eq!(app.lead_total(&key), 1, "a replay writes nothing");
    let id = id_of(&first.json()["lead"]);
    assert_eq!(
        app.get_lead(&key, &id).expect(200)["lead"]["updated_at"],
        first.json()["lead"]["updated_at"]
    );

    // A bulk import replays the same way.
    let body = json!({ "leads": [{ "row_ref": 1, "contact_name": "Row" }, { "row_ref": 2, "contact_name": "Row" }] });
    let bulk = app.idempotent("bulk-1").bulk(&key, &body);
    assert_fresh(&bulk, 200);
    assert_eq!(bulk.json()["summary"]["created"], 2);
    let bulk_again = app.idempotent("bulk-1").bulk(&key, &body);
    assert_replay_of(&bulk_again, &bulk);
    assert_eq!(app.lead_total(&key), 3);

    // Without a key, the same request is simply made again.
    let res = app
        .api("POST", LEADS, &key)
        .json(&json!({ "contact_name": "Ivy" }))
        .send();
    assert_fresh(&res, 201);
    assert_eq!(app.lead_total(&key), 4);
}

#[test]
fn the_same_key_with_a_different_body_is_409() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let first = app
        .idempotent("k")
        .post_lead(&key, &json!({ "contact_name": "One" }));
    assert_fresh(&first, 201);
    let message = app
        .idempotent("k")
        .post_lead(&key, &json!({ "contact_name": "Two" }))
        .assert_error(409, "api_error");
    assert!(message.contains("Idempotency-Key"), "{message}");
    app.idempotent("k")
        .post_lead(&key, &json!({ "contact_name": "One", "score": 1 }))
        .assert_error(409, "api_error");
    assert_eq!(app.lead_total(&key), 1);

    let rows = json!({ "leads": [{ "contact_name": "Bulk" }] });
    assert_fresh(&app.idempotent("b").bulk(&key, &rows), 200);
    let other_rows = json!({ "leads": [{ "contact_name": "Bulk" }], "on_duplicate": "skip" });
    app.idempotent("b")
        .bulk(&key, &other_rows)
        .assert_error(409, "api_error");
    assert_eq!(app.lead_total(&key), 2);
    // The original still replays.
    let replay = app
        .idempotent("k")
        .post_lead(&key, &json!({ "contact_name": "One" }));
    assert_replay_of(&replay, &first);
}

#[test]
fn keys_are_scoped_per_route_and_per_tenant() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let create = app
        .idempotent("shared")
        .post_lead(&key, &json!({ "contact_name": "Sam" }));
    assert_fresh(&create, 201);
    let id = id_of(&create.json()["lead"]);

    let bulk = app
        .idempotent("shared")
        .bulk(&key, &json!({ "leads": [{ "contact_name": "Sam" }] }));
    assert_fresh(&bulk, 200);
    assert_eq!(bulk.json()["summary"]["created"], 1);
    let patched = app
        .idempotent("shared")
        .patch_lead(&key, &id, &json!({ "score": 9 }));
    assert_fresh(&patched, 200);
    assert_eq!(patched.json()["lead"]["score"], 9);
    assert_eq!(app.lead_total(&key), 2);

    // Another tenant, same key and body: its own fresh request.
    let other = app.tenant_with_key("Bravo");
    let theirs = app
        .idempotent("shared")
        .post_lead(&other, &json!({ "contact_name": "Sam" }));
    assert_fresh(&theirs, 201);
    assert_ne!(theirs.json()["lead"]["id"], create.json()["lead"]["id"]);
    assert_eq!(theirs.json()["lead"]["customer_id"], other.tenant.as_str());
    assert_eq!(app.lead_total(&other), 1);
    // And both still replay their own response.
    assert_replay_of(
        &app.idempotent("shared")
            .post_lead(&other, &json!({ "contact_name": "Sam" })),
        &theirs,
    );
    assert_replay_of(
        &app.idempotent("shared")
            .post_lead(&key, &json!({ "contact_name": "Sam" })),
        &create,
    );
}

#[test]
fn validation_errors_are_stored_and_replayed() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let bad = json!({ "contact_email": "nope" });
    let first = app.idempotent("bad-1").post_lead(&key, &bad);
    first.assert_error(400, "invalid_request_error");
    assert_eq!(first.header(REPLAYED), None);
    let again = app.idempotent("bad-1").post_lead(&key, &bad);
    again.assert_error(400, "invalid_request_error");
    assert_replay_of(&again, &first);
    // The key is used up: a corrected body under it is a different request.
    app.idempotent("bad-1")
        .post_lead(&key, &json!({ "contact_email": "ok@example.com" }))
        .assert_error(409, "api_error");

    // A refusal found against the tenant's catalogue (unknown stage) is stored as well.
    let unknown_stage = json!({ "contact_name": "S", "stage_slug": "nope" });
    let first = app.idempotent("bad-2").post_lead(&key, &unknown_stage);
    first.assert_error(400, "invalid_request_error");
    assert_replay_of(
        &app.idempotent("bad-2").post_lead(&key, &unknown_stage),
        &first,
    );

    // And on PATCH: a 404 for an unknown lead, a 400 for a bad value.
    let missing = uuid::Uuid::now_v7().to_string();
    let first = app
        .idempotent("bad-3")
        .patch_lead(&key, &missing, &json!({ "score": 1 }));
    first.assert_error(404, "not_found_error");
    assert_replay_of(
        &app.idempotent("bad-3")
            .patch_lead(&key, &missing, &json!({ "score": 1 })),
        &first,
    );
    assert_eq!(app.lead_total(&key), 0);
}

#[test]
fn bulk_validation_errors_are_stored_and_replayed() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    for (idem, body) in [
        ("no-rows", json!({ "leads": [] })),
        (
            "merge",
            json!({ "leads": [{ "contact_name": "x" }], "on_duplicate": "merge" }),
        ),
    ] {
        let first = app.idempotent(idem).bulk(&key, &body);
        first.assert_error(400, "invalid_request_error");
        assert_eq!(first.header(REPLAYED), None);
        let again = app.idempotent(idem).bulk(&key, &body);
        again.assert_error(400, "invalid_request_error");
        assert_replay_of(&again, &first);
    }
    assert_eq!(app.lead_total(&key), 0);
}

#[test]
fn dry_runs_are_not_stored() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let rows = json!([{ "row_ref": "a", "contact_email": "a@example.com" }, { "row_ref": "b", "contact_name": "B" }]);
    let dry_body = json!({ "leads": rows, "dry_run": true });
    let dry = app.idempotent("import-1").bulk(&key, &dry_body);
    assert_fresh(&dry, 200);
    assert_eq!(dry.json()["dry_run"], true);
    // The same dry run again is computed again, not replayed.
    let dry_again = app.idempotent("import-1").bulk(&key, &dry_body);
    assert_fresh(&dry_again, 200);
    assert_eq!(app.lead_total(&key), 0);

    let real_body = json!({ "leads": rows, "dry_run": false });
    let real = app.idempotent("import-1").bulk(&key, &real_body);
    assert_fresh(&real, 200);
    let body = real.json();
    assert_eq!(body["dry_run"], false);
    assert_eq!(body["summary"]["created"], 2);
    assert!(body["results"][0]["lead_id"].is_string());
    assert_eq!(body["summary"], dry.json()["summary"]);
    assert_eq!(app.lead_total(&key), 2);
    assert_replay_of(&app.idempotent("import-1").bulk(&key, &real_body), &real);
    assert_eq!(app.lead_total(&key), 2);
}

#[test]
fn patch_honours_idempotency_keys() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let id = id_of(&app.create_lead(&key, json!({ "contact_name": "Pat" })));
    let first = app
        .idempotent("p-1")
        .patch_lead(&key, &id, &json!({ "score": 5 }));
    assert_fresh(&first, 200);
    assert_eq!(first.json()["lead"]["score"], 5);

    app.update_lead(&key, &id, json!({ "score": 7 }));

    // The replay answers with the stored response and does not set the score back.
    let replay = app
        .idempotent("p-1")
        .patch_lead(&key, &id, &json!({ "score": 5 }));
    assert_replay_of(&replay, &first);
    assert_eq!(replay.json()["lead"]["score"], 5);
    assert_eq!(app.get_lead(&key, &id).expect(200)["lead"]["score"], 7);
    app.idempotent("p-1")
        .patch_lead(&key, &id, &json!({ "score": 6 }))
        .assert_error(409, "api_error");
    // The same key on another lead's PATCH never answers with the first lead's response.
    let other = id_of(&app.create_lead(&key, json!({ "contact_name": "Other" })));
    let res = app
        .idempotent("p-1")
        .patch_lead(&key, &other, &json!({ "score": 5 }));
    assert_eq!(res.header(REPLAYED), None, "{}", res.text);
    assert_ne!(res.text, first.text);
    assert_eq!(app.get_lead(&key, &id).expect(200)["lead"]["score"], 7);
}

#[test]
fn malformed_keys_are_400() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let body = json!({ "contact_name": "K" });
    for idem in [
        "k".repeat(256),
        "clé-1".to_string(),
        "tab\there".to_string(),
    ] {
        let message = app
            .idempotent(&idem)
            .post_lead(&key, &body)
            .assert_error(400, "invalid_request_error");
        assert!(message.contains("Idempotency-Key"), "{message}");
        let message = app
            .idempotent(&idem)
            .bulk(&key, &json!({ "leads": [body] }))
            .assert_error(400, "invalid_request_error");
        assert!(message.contains("Idempotency-Key"), "{message}");
        // A dry run stores nothing, but a malformed header is still refused.
        let dry = json!({ "leads": [body], "dry_run": true });
        let message = app
            .idempotent(&idem)
            .bulk(&key, &dry)
            .assert_error(400, "invalid_request_error");
        assert!(message.contains("Idempotency-Key"), "{message}");
    }
    assert_eq!(app.lead_total(&key), 0, "nothing written");
    let longest = "k".repeat(255);
    assert_fresh(&app.idempotent(&longest).post_lead(&key, &body), 201);
    let printable = "order-42 ~!@#$%^&*()_+{}|:<>?";
    assert_fresh(&app.idempotent(printable).post_lead(&key, &body), 201);
    assert_eq!(app.lead_total(&key), 2);
}

#[test]
fn concurrent_duplicates_with_one_key_make_one_lead() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let body = json!({ "contact_name": "Concurrent" });
    let threads = 8;
    let barrier = Barrier::new(threads);
    let responses: Vec<Resp> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    app.idempotent("once").post_lead(&key, &body)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });

    let mut originals = Vec::new();
    for res in &responses {
        match res.status {
            201 => {
                if res.header(REPLAYED).is_none() {
                    originals.push(res);
                } else {
                    assert_eq!(res.header(REPLAYED), Some("true"));
                }
            }
            409 => {
                res.assert_error(409, "api_error");
            }
            other => panic!("unexpected {other}: {}", res.text),
        }
    }
    assert_eq!(originals.len(), 1, "exactly one request did the work");
    for res in responses.iter().filter(|r| r.status == 201) {
        assert_eq!(
            res.text, originals[0].text,
            "every 201 is the same response"
        );
    }
    assert_eq!(app.lead_total(&key), 1);
    assert_replay_of(&app.idempotent("once").post_lead(&key, &body), originals[0]);
}
