//! Spec §15: `GET /admin/api/stats` counts leads created, events and attempts by outcome per
//! minute, for one tenant and for the server, and shows the queue; the counts survive a restart.

use serde_json::{Value, json};

use crate::helpers::*;

fn stats(app: &TestApp, query: &str) -> Value {
    app.admin("GET", &format!("/admin/api/stats{query}"))
        .send()
        .expect(200)["stats"]
        .clone()
}

fn total(stats: &Value, series: &str) -> u64 {
    stats["series"][series]
        .as_array()
        .unwrap_or_else(|| panic!("{series} in {stats}"))
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum()
}

#[test]
fn stats_count_each_minute_per_tenant_and_for_the_server() {
    let env = DeliveryEnv::start();
    let (app, key) = (&env.app, &env.key);
    // A second into a minute, so that everything until the clock is moved on below falls in
    // this one minute, on the slowest machine.
    let into = (app.now().ms() % 60_000) as u32;
    app.advance_clock(60_000 - into + 1_000);
    let other = app.tenant_with_key("Beta");
    env.rx.set("/fail", Behaviour::status(500));
    let ok = env.hook("/ok", json!({ "event_types": ["lead.created"] }));
    let failing = env.hook(
        "/fail",
        json!({ "event_types": ["lead.created"], "retry_attempts": 0 }),
    );
    for i in 0..3 {
        env.lead(json!({ "contact_email": format!("a{i}@example.com") }));
    }
    app.post_lead(&other, &json!({ "contact_email": "b@example.com" }))
        .expect(201);
    // A dry run counts nothing; a bulk import counts its created leads, not its merged ones.
    let rows = json!([
        { "contact_email": "bulk1@example.com" },
        { "contact_email": "a0@example.com" },
    ]);
    app.bulk(key, &json!({ "dry_run": true, "leads": rows }))
        .expect(200);
    app.bulk(key, &json!({ "leads": rows })).expect(200);
    env.all_final(&ok);
    env.all_final(&failing);

    let mine = stats(app, &format!("?tenant_id={}", key.tenant));
    assert_eq!(mine["tenant_id"], key.tenant.as_str());
    assert_eq!(mine["minutes"], 60);
    assert_eq!(mine["series"]["minute"].as_array().unwrap().len(), 60);
    assert_eq!(total(&mine, "leads_created"), 4, "{mine}");
    // Three lead.created and three delivery.exhausted; the bulk import emits none.
    assert_eq!(total(&mine, "events"), 6, "{mine}");
    assert_eq!(total(&mine, "delivered"), 3, "{mine}");
    assert_eq!(total(&mine, "failed"), 3, "{mine}");
    // Everything happened in this minute or the one before: the last entries hold it.
    let minutes = mine["series"]["minute"].as_array().unwrap();
    let last = minutes.last().unwrap().as_str().unwrap();
    assert!(last.ends_with(":00.000Z"), "{last}");
    assert!(last <= app.now().to_iso().as_str());
    assert_eq!(
        mine["queue"],
        json!({ "due": 0, "held": 0, "oldest_due_age_seconds": null })
    );

    let server = stats(app, "?minutes=5");
    assert_eq!(server["tenant_id"], Value::Null);
    assert_eq!(server["series"]["minute"].as_array().unwrap().len(), 5);
    assert_eq!(total(&server, "leads_created"), 5, "{server}");
    assert_eq!(total(&server, "events"), 7, "{server}");

    // A minute later, the counts move one place left.
    app.advance_clock(60_000);
    let later = stats(app, &format!("?tenant_id={}&minutes=2", key.tenant));
    assert_eq!(later["series"]["leads_created"][1], 0, "{later}");
    assert_eq!(
        total(&later, "leads_created") + total(&mine, "leads_created"),
        8
    );

    // The queue of one tenant: a paused webhook's held deliveries.
    app.patch_webhook(key, &ok.id, &json!({ "is_active": false }))
        .expect(200);
    env.lead(json!({ "contact_email": "held@example.com" }));
    let queue = &stats(app, &format!("?tenant_id={}", key.tenant))["queue"];
    assert_eq!(queue["held"], 1, "{queue}");
    let others = &stats(app, &format!("?tenant_id={}", other.tenant))["queue"];
    assert_eq!(others["held"], 0, "{others}");

    // The counts are in the data file: a restart keeps them.
    env.all_final(&failing);
    let before = stats(app, "?minutes=10");
    let DeliveryEnv { app, rx, .. } = env;
    let app = app.restart();
    drop(rx);
    // By minute: a restart that crosses into the next minute moves the window, not the counts.
    let by_minute = |stats: &Value| -> Vec<(String, u64, u64, u64, u64)> {
        let s = &stats["series"];
        (0..s["minute"].as_array().unwrap().len())
            .map(|i| {
                let n = |name: &str| s[name][i].as_u64().unwrap();
                let minute = s["minute"][i].as_str().unwrap().to_string();
                (
                    minute,
                    n("leads_created"),
                    n("events"),
                    n("delivered"),
                    n("failed"),
                )
            })
            .filter(|row| row.1 + row.2 + row.3 + row.4 > 0)
            .collect()
    };
    let after = stats(&app, "?minutes=10");
    assert_eq!(by_minute(&after), by_minute(&before), "{after}");
    assert!(!by_minute(&before).is_empty());
}

#[test]
fn stats_refuse_bad_parameters_in_the_envelope() {
    let app = TestApp::spawn();
    for query in ["?minutes=0", "?minutes=1441", "?minutes=abc", "?minute=5"] {
        let message = app
            .admin("GET", &format!("/admin/api/stats{query}"))
            .send()
            .assert_error(400, "invalid_request_error");
        assert!(message.contains("minute"), "{query}: {message}");
    }
    assert_eq!(
        stats(&app, "?minutes=1440")["series"]["minute"]
            .as_array()
            .unwrap()
            .len(),
        1440
    );
    app.admin(
        "GET",
        "/admin/api/stats?tenant_id=01900000-0000-7000-8000-000000000000",
    )
    .send()
    .assert_error(404, "not_found_error");
    app.admin("GET", "/admin/api/stats?tenant_id=nope")
        .send()
        .assert_error(404, "not_found_error");
    app.req("GET", "/admin/api/stats")
        .send()
        .assert_error(401, "authentication_error");
}
