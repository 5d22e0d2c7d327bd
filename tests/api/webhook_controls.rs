//! Spec §13: filters, custom headers, a webhook's own limits, held deliveries while it is off,
//! and recovery with a preview, against the real HTTPS receiver.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

/// How many deliveries the webhook's log holds (queued in the event's own commit: no wait).
fn queued(env: &DeliveryEnv, hook: &Hook) -> usize {
    env.deliveries(hook, "?limit=100")["data"]
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn a_filter_passes_and_refuses_on_each_key() {
    let env = DeliveryEnv::on_demand();
    let everything = json!(["lead.created", "lead.updated"]);
    let hook = |filter: Value| {
        env.hook(
            &format!("/f{}", rand_suffix(&filter)),
            json!({ "event_types": everything, "filter": filter }),
        )
    };
    let meta = hook(json!({ "source_platform": ["meta_ads", "referral"] }));
    let forms = hook(json!({ "source_type": ["form"] }));
    let sellers = hook(json!({ "lead_line": ["seller"] }));
    let contacted = hook(json!({ "stage_slug": ["contacted"] }));
    let won = hook(json!({ "status": ["won"] }));
    let status_changes = hook(json!({ "changed_fields": ["status"] }));
    let both = hook(json!({ "source_platform": ["google_ads"], "lead_line": ["buyer"] }));

    // Google Ads, a form, a buyer, at `new`, active.
    let lead = env.lead(json!({
        "contact_email": "ada@example.com",
        "source_platform": "google_ads",
        "source_type": "form",
        "lead_line": "buyer",
    }));
    for (h, n, why) in [
        (&meta, 0, "source_platform refuses google_ads"),
        (&forms, 1, "source_type passes form"),
        (&sellers, 0, "lead_line refuses buyer"),
        (&contacted, 0, "stage_slug refuses new"),
        (&won, 0, "status refuses active"),
        (
            &status_changes,
            1,
            "changed_fields: a creation is not an update",
        ),
        (&both, 1, "keys AND: both pass"),
    ] {
        assert_eq!(queued(&env, h), n, "{why}");
    }
    // A PATCH to `won` at `contacted`: status and stage change.
    env.app.update_lead(
        &env.key,
        &id_of(&lead),
        json!({ "status": "won", "stage_slug": "contacted" }),
    );
    for (h, n, why) in [
        (&contacted, 1, "stage_slug passes contacted"),
        (&won, 1, "status passes won"),
        (&status_changes, 2, "changed_fields passes a status change"),
        (&meta, 0, "still google_ads"),
    ] {
        assert_eq!(queued(&env, h), n, "{why}");
    }
    // A change of the score only: changed_fields refuses it.
    env.app
        .update_lead(&env.key, &id_of(&lead), json!({ "score": 5 }));
    assert_eq!(queued(&env, &status_changes), 2);
    let meta_lead =
        env.lead(json!({ "contact_email": "m@example.com", "source_platform": "referral" }));
    assert_eq!(queued(&env, &meta), 1, "values OR: referral passes");
    assert_eq!(
        queued(&env, &both),
        3,
        "keys AND: referral fails one (3: Ada and her updates)"
    );
    assert!(meta_lead["id"].is_string());

    // The webhook shows the keys it sets; PATCH null clears.
    let shown = env.webhook(&both);
    assert_eq!(
        shown["filter"],
        json!({ "source_platform": ["google_ads"], "lead_line": ["buyer"] })
    );
    let cleared = env
        .app
        .patch_webhook(&env.key, &both.id, &json!({ "filter": null }))
        .expect(200);
    assert_eq!(cleared["webhook"]["filter"], Value::Null);
}

/// A path per filter, so that each hook has a URL of its own.
fn rand_suffix(filter: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    filter.to_string().hash(&mut h);
    format!("{:x}", h.finish())
}

#[test]
fn bad_controls_are_400_naming_what_is_wrong() {
    let env = DeliveryEnv::on_demand();
    let url = env.rx.url("/bad");
    for (extra, words) in [
        (
            json!({ "filter": { "colour": ["red"] } }),
            vec!["filter", "colour"],
        ),
        (
            json!({ "filter": { "status": ["open"] } }),
            vec!["status", "open"],
        ),
        (
            json!({ "filter": { "stage_slug": ["nowhere"] } }),
            vec!["stage_slug", "nowhere"],
        ),
        (
            json!({ "filter": { "source_type": [] } }),
            vec!["source_type"],
        ),
        (
            json!({ "headers": { "X-Mega-Signature": "x" } }),
            vec!["x-mega-signature"],
        ),
        (
            json!({ "headers": { "Content-Type": "text/plain" } }),
            vec!["content-type"],
        ),
        (
            json!({ "headers": { "X-A": "a\r\nInjected: yes" } }),
            vec!["x-a"],
        ),
        (json!({ "max_concurrency": 0 }), vec!["max_concurrency"]),
        (json!({ "max_concurrency": 65 }), vec!["max_concurrency"]),
        (
            json!({ "rate_limit_per_minute": 0 }),
            vec!["rate_limit_per_minute"],
        ),
        (
            json!({ "rate_limit_per_minute": 1.5 }),
            vec!["rate_limit_per_minute"],
        ),
    ] {
        let mut body = extra.clone();
        body["url"] = json!(url);
        let res = env.app.post_webhook(&env.key, &body);
        let message = res.assert_error(400, "invalid_request_error");
        for word in words {
            assert!(message.contains(word), "{extra}: {message}");
        }
    }
    let eleven: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("x-h{i}"), json!("v"))).collect();
    let res = env
        .app
        .post_webhook(&env.key, &json!({ "url": url, "headers": eleven }));
    assert!(
        res.assert_error(400, "invalid_request_error")
            .contains("at most 10")
    );
    assert_eq!(
        env.app.list_webhooks(&env.key).expect(200)["webhooks"],
        json!([]),
        "nothing was created"
    );
}

#[test]
fn custom_headers_arrive_and_read_redacted() {
    let env = DeliveryEnv::start();
    let hook = env.hook(
        "/h",
        json!({ "headers": { "X-Api-Key": "k-123", "X-Tenant": "acme", "Authorization": "Bearer s3cret" } }),
    );
    env.lead(json!({ "contact_email": "ada@example.com" }));
    let req = env.rx.wait_for("/h", 1, ARRIVE).remove(0);
    assert_eq!(req.header("x-api-key"), Some("k-123"));
    assert_eq!(req.header("x-tenant"), Some("acme"));
    assert_eq!(req.header("authorization"), Some("Bearer s3cret"));
    assert!(
        req.header("x-mega-signature").is_some(),
        "ours are still there"
    );
    let redacted =
        json!({ "x-api-key": "[redacted]", "x-tenant": "acme", "authorization": "[redacted]" });
    assert_eq!(env.webhook(&hook)["headers"], redacted);
    let listed = env.app.list_webhooks(&env.key).expect(200);
    assert_eq!(listed["webhooks"][0]["headers"], redacted);
    assert!(!listed.to_string().contains("k-123") && !listed.to_string().contains("s3cret"));

    // GET, edit one header, PATCH back what GET showed: the redacted values keep theirs.
    let mut headers = env.webhook(&hook)["headers"].clone();
    headers["x-tenant"] = json!("globex");
    env.app
        .patch_webhook(&env.key, &hook.id, &json!({ "headers": headers }))
        .expect(200);
    env.lead(json!({ "contact_email": "grace@example.com" }));
    let req = env.rx.wait_for("/h", 2, ARRIVE).remove(1);
    assert_eq!(req.header("x-api-key"), Some("k-123"));
    assert_eq!(req.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(req.header("x-tenant"), Some("globex"));
    // A new sensitive header cannot be "[redacted]": there is nothing to keep.
    let res = env.app.patch_webhook(
        &env.key,
        &hook.id,
        &json!({ "headers": { "x-secret-token": "[redacted]" } }),
    );
    res.assert_error(400, "invalid_request_error");
}

#[test]
fn max_concurrency_1_never_overlaps_and_a_slow_receiver_does_not_slow_a_third() {
    // Sixteen threads: the tenant's share is eight attempts at once, more than the three
    // webhooks below can use, so only their own limits hold them back.
    let rx = Receiver::start();
    let app = TestApp::spawn_with(|c| {
        deliver_to(c, &rx);
        c.webhooks.delivery_threads = 16;
    });
    let env = DeliveryEnv::around(app, rx);
    env.rx.set("/one", Behaviour::status(200).after_ms(150));
    env.rx.set("/two", Behaviour::status(200).after_ms(150));
    env.rx.set("/slow", Behaviour::status(200).after_ms(3_000));
    let one = env.hook("/one", json!({ "max_concurrency": 1 }));
    // The control: the same receiver allowed two at once has two open.
    let _two = env.hook("/two", json!({ "max_concurrency": 2 }));
    // A slow receiver held to one attempt at a time cannot take its tenant's whole share.
    let _slow = env.hook("/slow", json!({ "max_concurrency": 1 }));
    let third = env.hook("/third", json!({}));
    assert_eq!(env.webhook(&one)["max_concurrency"], 1);
    assert_eq!(
        env.webhook(&third)["max_concurrency"],
        env.app.config.webhooks.max_in_flight_per_webhook
    );
    // Six events in one commit: all due at once, so only the limit keeps them apart.
    let started = Instant::now();
    let rows: Vec<Value> = (0..6)
        .map(|i| json!({ "contact_email": format!("l{i}@example.com") }))
        .collect();
    env.app
        .bulk(&env.key, &json!({ "leads": rows, "emit_events": true }))
        .expect(200);
    env.rx.wait_for("/third", 6, ARRIVE);
    let third_took = started.elapsed();
    env.rx.wait_for("/one", 6, Duration::from_secs(10));
    env.rx.wait_for("/two", 6, Duration::from_secs(10));
    assert_eq!(
        env.rx.max_open("/one"),
        1,
        "never two attempts open at once"
    );
    assert_eq!(env.rx.max_open("/two"), 2, "the control overlaps");
    assert_eq!(env.rx.max_open("/slow"), 1);
    assert!(
        third_took < Duration::from_millis(2_500),
        "the third webhook did not wait for the slow one: {third_took:?}"
    );
}

#[test]
fn a_rate_limit_is_kept_at_the_receiver_and_everything_arrives() {
    let env = DeliveryEnv::start();
    // 600 a minute: one every 100 ms.
    let hook = env.hook("/paced", json!({ "rate_limit_per_minute": 600 }));
    assert_eq!(env.webhook(&hook)["rate_limit_per_minute"], 600);
    let n = 31;
    let rows: Vec<Value> = (0..n)
        .map(|i| json!({ "contact_email": format!("r{i}@example.com") }))
        .collect();
    env.app
        .bulk(&env.key, &json!({ "leads": rows, "emit_events": true }))
        .expect(200);
    let reqs = env.rx.wait_for("/paced", n, Duration::from_secs(15));
    let span = reqs[n - 1].at.duration_since(reqs[0].at).as_secs_f64();
    let rate = (n - 1) as f64 / span * 60.0;
    eprintln!("rate_limit_per_minute 600: {rate:.0} a minute over {span:.2} s");
    assert!(
        (540.0..=660.0).contains(&rate),
        "{rate:.0} a minute over {span:.2} s; the limit is 600 (±10 %)"
    );
    assert_eq!(env.all_final(&hook).len(), n);
}

#[test]
fn a_paused_webhook_holds_its_events_and_resuming_sends_exactly_them() {
    let env = DeliveryEnv::start();
    let hook = env.hook("/p", json!({ "event_types": ["lead.created"] }));
    env.app
        .patch_webhook(&env.key, &hook.id, &json!({ "is_active": false }))
        .expect(200);
    for i in 0..5 {
        env.lead(json!({ "contact_email": format!("p{i}@example.com") }));
    }
    assert_eq!(env.webhook(&hook)["held_count"], 5);
    let held = env.deliveries(&hook, "?status=held");
    assert_eq!(held["data"].as_array().unwrap().len(), 5);
    assert_eq!(env.rx.count("/p"), 0);

    let resumed = env
        .app
        .patch_webhook(&env.key, &hook.id, &json!({ "is_active": true }))
        .expect(200);
    assert_eq!(resumed["webhook"]["held_count"], 0);
    let reqs = env.rx.wait_for("/p", 5, ARRIVE);
    let emails: Vec<String> = reqs
        .iter()
        .map(|r| str_of(&r.json()["lead"]["contact_email"]))
        .collect();
    let mut sorted = emails.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (0..5)
            .map(|i| format!("p{i}@example.com"))
            .collect::<Vec<_>>()
    );
    assert_eq!(env.all_final(&hook).len(), 5);
    assert_eq!(env.rx.count("/p"), 5, "exactly the held ones");

    // Paused again, then resumed with discard_held: nothing arrives, they read cancelled.
    env.app
        .patch_webhook(&env.key, &hook.id, &json!({ "is_active": false }))
        .expect(200);
    for i in 0..3 {
        env.lead(json!({ "contact_email": format!("d{i}@example.com") }));
    }
    env.app
        .patch_webhook(
            &env.key,
            &hook.id,
            &json!({ "is_active": true, "discard_held": true }),
        )
        .expect(200);
    let cancelled = env.deliveries(&hook, "?status=cancelled");
    assert_eq!(cancelled["data"].as_array().unwrap().len(), 3);
    env.lead(json!({ "contact_email": "after@example.com" }));
    env.rx.wait_for("/p", 6, ARRIVE);
    env.all_final(&hook);
    assert_eq!(env.rx.count("/p"), 6, "the discarded ones never arrive");
    // discard_held without turning it on is refused.
    env.app
        .patch_webhook(&env.key, &hook.id, &json!({ "discard_held": true }))
        .assert_error(400, "invalid_request_error");
}

#[test]
fn a_webhook_turned_off_by_a_410_holds_and_re_enabling_releases() {
    let env = DeliveryEnv::start();
    env.rx.script(
        "/gone",
        vec![Behaviour::status(410), Behaviour::status(200)],
    );
    let hook = env.hook("/gone", json!({}));
    env.lead(json!({ "contact_email": "first@example.com" }));
    env.all_final(&hook);
    assert_eq!(env.webhook(&hook)["is_active"], false);
    env.lead(json!({ "contact_email": "second@example.com" }));
    env.lead(json!({ "contact_email": "third@example.com" }));
    assert_eq!(env.webhook(&hook)["held_count"], 2);
    env.app
        .patch_webhook(&env.key, &hook.id, &json!({ "is_active": true }))
        .expect(200);
    let reqs = env.rx.wait_for("/gone", 3, ARRIVE);
    let later: Vec<String> = reqs[1..]
        .iter()
        .map(|r| str_of(&r.json()["lead"]["contact_email"]))
        .collect();
    assert_eq!(later.len(), 2);
    assert!(later.contains(&"second@example.com".to_string()));
    assert!(later.contains(&"third@example.com".to_string()));
}

#[test]
fn recover_previews_exactly_what_it_then_requeues_and_the_log_filters() {
    let env = DeliveryEnv::start();
    env.rx.set("/r", Behaviour::status(500));
    let hook = env.hook(
        "/r",
        json!({ "retry_attempts": 0, "event_types": ["lead.created", "lead.updated"] }),
    );
    let lead = env.lead(json!({ "contact_email": "a@example.com" }));
    env.lead(json!({ "contact_email": "b@example.com" }));
    env.app
        .update_lead(&env.key, &id_of(&lead), json!({ "score": 1 }));
    env.all_final(&hook);
    let since = "2000-01-01T00:00:00Z";
    let preview = |body: Value| {
        env.app.recover(&env.key, &hook.id, &body).expect(200)["would_requeue"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(preview(json!({ "since": since, "dry_run": true })), 3);
    assert_eq!(
        preview(json!({ "since": since, "dry_run": true, "event_types": ["lead.updated"] })),
        1
    );
    assert_eq!(
        preview(json!({ "since": since, "dry_run": true, "until": "2001-01-01T00:00:00Z" })),
        0
    );
    assert_eq!(
        preview(json!({ "since": since, "dry_run": true, "statuses": ["cancelled"] })),
        0
    );
    // The delivery log's filters.
    let count = |q: &str| {
        env.deliveries(&hook, q)["data"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(count("?event=lead.created"), 2);
    assert_eq!(count("?response_status=500"), 3);
    assert_eq!(count("?response_status=200"), 0);
    assert_eq!(
        count(&format!("?since={since}&until=2001-01-01T00:00:00Z")),
        0
    );
    env.app
        .list_deliveries(&env.key, &hook.id, "?response_status=abc")
        .assert_error(400, "invalid_request_error");
    env.app
        .recover(
            &env.key,
            &hook.id,
            &json!({ "since": since, "statuses": ["delivered"] }),
        )
        .assert_error(400, "invalid_request_error");

    // Nothing changed: the same preview, then the real thing requeues that many.
    env.rx.set("/r", Behaviour::status(200));
    let would =
        preview(json!({ "since": since, "dry_run": true, "event_types": ["lead.created"] }));
    let done = env
        .app
        .recover(
            &env.key,
            &hook.id,
            &json!({ "since": since, "event_types": ["lead.created"] }),
        )
        .expect(202)["requeued"]
        .as_u64()
        .unwrap();
    assert_eq!((would, done), (2, 2));
    env.rx.wait_for("/r", 5, ARRIVE);
    env.all_final(&hook);

    // Recovered while the webhook is off: held, not sent.
    env.app
        .patch_webhook(&env.key, &hook.id, &json!({ "is_active": false }))
        .expect(200);
    let held = env
        .app
        .recover(&env.key, &hook.id, &json!({ "since": since }))
        .expect(202)["requeued"]
        .as_u64()
        .unwrap();
    assert_eq!(held, 1, "the failed update");
    assert_eq!(env.webhook(&hook)["held_count"], 1);
    assert_eq!(env.rx.count("/r"), 5);
}
