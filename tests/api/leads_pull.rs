//! Pulling leads: GET /api/agents/crm/leads (filters, search, keyset and offset paging), GET one
//! lead, and the admin view of a tenant's leads.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// The Lead object's fields, `custom_fields` aside.
const LEAD_FIELDS: [&str; 17] = [
    "id",
    "customer_id",
    "source_platform",
    "source_type",
    "status",
    "created_at",
    "updated_at",
    "contact_name",
    "contact_phone",
    "contact_email",
    "score",
    "qualified",
    "current_stage",
    "owner",
    "last_interaction_at",
    "interaction_count",
    "version",
];

/// Creates the rows in one bulk import; returns the new leads' ids.
fn bulk_create(app: &TestApp, key: &Key, rows: Vec<Value>) -> Vec<String> {
    let body = app.bulk(key, &json!({ "leads": rows })).expect(200);
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "created", "{r}");
            r["lead_id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn ids(page: &Value) -> Vec<String> {
    page["leads"]
        .as_array()
        .expect("leads")
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_string())
        .collect()
}

fn total(page: &Value) -> u64 {
    page["total"].as_u64().expect("total")
}

/// The ids in the order the contract promises: by `field`, ties broken by id.
fn expected_order(leads: &[Value], field: &str, desc: bool) -> Vec<String> {
    let mut keyed: Vec<(String, String)> = leads
        .iter()
        .map(|l| {
            (
                l[field].as_str().expect("time").to_string(),
                l["id"].as_str().expect("id").to_string(),
            )
        })
        .collect();
    keyed.sort();
    if desc {
        keyed.reverse();
    }
    keyed.into_iter().map(|(_, id)| id).collect()
}

/// Follows `next_cursor` from the first page to the last; returns every page.
fn walk(app: &TestApp, key: &Key, params: &[(&str, &str)]) -> Vec<Value> {
    let mut pages: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = params.to_vec();
        if let Some(c) = &cursor {
            params.push(("cursor", c));
        }
        let page = app.list_leads(key, &query(&params)).expect(200);
        cursor = page["next_cursor"].as_str().map(String::from);
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
        assert!(pages.len() < 200, "paging does not end");
    }
}

/// Paces the concurrency test's reader and writer (real time, not the server's clock).
fn sleep_ms(ms: u64) {
    thread::sleep(Duration::from_millis(ms));
}

#[test]
fn list_defaults_to_twenty_leads_by_updated_at_ascending() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let mut created = Vec::new();
    for i in 0..23 {
        created.push(app.create_lead(&key, json!({ "contact_name": format!("Lead {i}"), "contact_email": format!("lead{i}@example.com") })));
    }
    // The oldest lead is touched last: sorted by updated_at, it comes last.
    app.advance_clock(3);
    let first_id = id_of(&created[0]);
    app.update_lead(&key, &first_id, json!({ "score": 7 }));

    let page = app.list_leads(&key, &query(&[])).expect(200);
    assert_eq!(
        keys(&page),
        set_of(&["leads", "limit", "next_cursor", "offset", "total"])
    );
    assert_eq!(page["limit"], 20);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["total"], 23);
    assert!(page["next_cursor"].is_string(), "{page}");
    let leads = page["leads"].as_array().unwrap();
    assert_eq!(leads.len(), 20);
    for lead in leads {
        assert_eq!(
            keys(lead),
            set_of(&LEAD_FIELDS),
            "custom_fields only when asked for"
        );
        assert_eq!(lead["customer_id"], key.tenant.as_str());
    }

    let everything = app
        .list_leads(&key, &query(&[("limit", "100")]))
        .expect(200);
    let all = everything["leads"].as_array().unwrap().clone();
    assert_eq!(all.len(), 23);
    assert_eq!(everything["next_cursor"], Value::Null);
    assert_eq!(ids(&everything), expected_order(&all, "updated_at", false));
    assert_eq!(
        ids(&everything).last(),
        Some(&first_id),
        "updated_at, not created_at"
    );
    assert_eq!(ids(&page), ids(&everything)[..20]);
    let explicit = app
        .list_leads(
            &key,
            &query(&[
                ("sort_by", "updated_at"),
                ("sort_dir", "asc"),
                ("limit", "20"),
                ("offset", "0"),
            ]),
        )
        .expect(200);
    assert_eq!(explicit, page);
    // Empty values, as an HTML form sends them, count as absent.
    let blanks: Vec<(&str, &str)> = [
        "status",
        "stageId",
        "stage_id",
        "stage_slug",
        "search",
        "created_since",
        "updated_since",
        "lead_line",
        "sort_by",
        "sort_dir",
        "include_custom_fields",
        "cursor",
        "limit",
        "offset",
    ]
    .into_iter()
    .map(|name| (name, ""))
    .collect();
    assert_eq!(app.list_leads(&key, &query(&blanks)).expect(200), page);

    let with_custom = app
        .list_leads(&key, &query(&[("include_custom_fields", "true")]))
        .expect(200);
    for lead in with_custom["leads"].as_array().unwrap() {
        assert!(lead["custom_fields"].is_object(), "{lead}");
        assert_eq!(lead.as_object().unwrap().len(), LEAD_FIELDS.len() + 1);
    }
    let without = app
        .list_leads(&key, &query(&[("include_custom_fields", "false")]))
        .expect(200);
    assert_eq!(without, page);

    let one = app.get_lead(&key, &first_id).expect(200);
    assert_eq!(one.as_object().unwrap().len(), 1, "only `lead`: {one}");
    assert!(one["lead"]["custom_fields"].is_object(), "{one}");
    assert_eq!(one["lead"]["score"], 7);
    let listed = all.iter().find(|l| l["id"] == first_id.as_str()).unwrap();
    let mut stripped = one["lead"].clone();
    stripped.as_object_mut().unwrap().remove("custom_fields");
    assert_eq!(&stripped, listed);
}

#[test]
fn invalid_query_parameters_are_400_naming_the_parameter() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    for i in 0..3 {
        app.create_lead(
            &key,
            json!({ "contact_email": format!("p{i}@example.com") }),
        );
    }
    let created_asc = app
        .list_leads(&key, &query(&[("sort_by", "created_at"), ("limit", "1")]))
        .expect(200);
    let cursor = created_asc["next_cursor"]
        .as_str()
        .expect("a cursor")
        .to_string();
    let c = cursor.as_str();

    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "101")], "limit"),
        (vec![("limit", "x")], "limit"),
        (vec![("limit", "-1")], "limit"),
        (vec![("offset", "-1")], "offset"),
        (vec![("offset", "x")], "offset"),
        (vec![("status", "open")], "status"),
        (vec![("status", "Active")], "status"),
        (vec![("sort_by", "name")], "sort_by"),
        (vec![("sort_dir", "up")], "sort_dir"),
        (vec![("lead_line", "renter")], "lead_line"),
        (vec![("stageId", "not-a-uuid")], "stageId"),
        (vec![("stage_id", "not-a-uuid")], "stage"),
        (vec![("stage_slug", "nope")], "stage_slug"),
        (vec![("created_since", "yesterday")], "created_since"),
        (
            vec![("updated_since", "2026-13-45T00:00:00Z")],
            "updated_since",
        ),
        (
            vec![("include_custom_fields", "maybe")],
            "include_custom_fields",
        ),
        (vec![("cursor", "abc")], "cursor"),
        (vec![("cursor", "eyJ")], "cursor"),
        // Minted for created_at asc: refused for any other sort.
        (vec![("cursor", c)], "cursor"),
        (vec![("sort_by", "updated_at"), ("cursor", c)], "cursor"),
        (
            vec![
                ("sort_by", "created_at"),
                ("sort_dir", "desc"),
                ("cursor", c),
            ],
            "cursor",
        ),
        (
            vec![("sort_by", "created_at"), ("cursor", c), ("offset", "1")],
            "cursor",
        ),
        (
            vec![("sort_by", "last_interaction_at"), ("cursor", c)],
            "cursor",
        ),
    ];
    for (params, name) in cases {
        let res = app.list_leads(&key, &query(&params));
        let message = res.assert_error(400, "invalid_request_error");
        assert!(message.contains(name), "{params:?}: {message}");
    }
    // The spec's own wording for the limit rule.
    let message = app
        .list_leads(&key, &query(&[("limit", "0")]))
        .assert_error(400, "invalid_request_error");
    assert!(
        message.contains("limit must be between 1 and 100"),
        "{message}"
    );

    // The cursor is accepted with the sort it was minted for, and offset=0 is fine with it.
    let next = app
        .list_leads(
            &key,
            &query(&[
                ("sort_by", "created_at"),
                ("limit", "1"),
                ("offset", "0"),
                ("cursor", c),
            ]),
        )
        .expect(200);
    assert_eq!(next["leads"].as_array().unwrap().len(), 1);
    assert_ne!(ids(&next), ids(&created_asc));
}

#[test]
fn status_filter() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let a = app.create_lead(&key, json!({ "contact_name": "A" }));
    app.create_lead(&key, json!({ "contact_name": "B" }));
    app.create_lead(&key, json!({ "contact_name": "C" }));
    let a_id = a["id"].as_str().unwrap();
    app.update_lead(&key, a_id, json!({ "status": "won" }));

    let won = app
        .list_leads(&key, &query(&[("status", "won")]))
        .expect(200);
    assert_eq!(ids(&won), [a_id]);
    assert_eq!(total(&won), 1);
    assert_eq!(won["leads"][0]["status"], "won");
    let active = app
        .list_leads(&key, &query(&[("status", "active")]))
        .expect(200);
    assert_eq!(total(&active), 2);
    assert!(!ids(&active).contains(&a_id.to_string()));
    assert_eq!(
        total(
            &app.list_leads(&key, &query(&[("status", "archived")]))
                .expect(200)
        ),
        0
    );
}

#[test]
fn stage_filters_by_stage_id_and_slug() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let stages = app.list_stages(&key.tenant).expect(200);
    let stage_id = |slug: &str| {
        stages["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["slug"] == slug)
            .unwrap_or_else(|| panic!("stage {slug}: {stages}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let contacted = stage_id("contacted");
    let new = stage_id("new");
    let c1 = app.create_lead(
        &key,
        json!({ "contact_name": "C1", "stage_slug": "contacted" }),
    );
    let c2 = app.create_lead(
        &key,
        json!({ "contact_name": "C2", "stage_slug": "contacted" }),
    );
    let n = app.create_lead(&key, json!({ "contact_name": "N" }));
    let mut contacted_ids = vec![id_of(&c1), id_of(&c2)];
    contacted_ids.sort();

    for params in [
        vec![("stageId", contacted.as_str())],
        vec![("stage_id", contacted.as_str())],
        vec![("stage_slug", "contacted")],
    ] {
        let page = app.list_leads(&key, &query(&params)).expect(200);
        let mut got = ids(&page);
        got.sort();
        assert_eq!(got, contacted_ids, "{params:?}");
        assert_eq!(total(&page), 2);
        assert!(
            page["leads"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["current_stage"]["id"] == contacted.as_str()
                    && l["current_stage"]["slug"] == "contacted")
        );
    }
    let page = app
        .list_leads(&key, &query(&[("stageId", new.as_str())]))
        .expect(200);
    assert_eq!(ids(&page), [n["id"].as_str().unwrap()]);
    assert_eq!(
        ids(&app
            .list_leads(&key, &query(&[("stage_slug", "new")]))
            .expect(200)),
        ids(&page)
    );
    assert_eq!(
        total(
            &app.list_leads(&key, &query(&[("stage_slug", "won")]))
                .expect(200)
        ),
        0
    );
    // A well-formed id that names no stage matches nothing.
    let nowhere = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        total(
            &app.list_leads(&key, &query(&[("stageId", nowhere.as_str())]))
                .expect(200)
        ),
        0
    );
}

#[test]
fn lead_line_filter() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let b1 = app.create_lead(&key, json!({ "contact_name": "B1", "lead_line": "buyer" }));
    let b2 = app.create_lead(&key, json!({ "contact_name": "B2", "lead_line": "buyer" }));
    let s = app.create_lead(&key, json!({ "contact_name": "S", "lead_line": "seller" }));
    app.create_lead(&key, json!({ "contact_name": "None" }));

    let buyers = app
        .list_leads(
            &key,
            &query(&[("lead_line", "buyer"), ("include_custom_fields", "true")]),
        )
        .expect(200);
    let mut got = ids(&buyers);
    got.sort();
    let mut want = vec![id_of(&b1), id_of(&b2)];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(total(&buyers), 2);
    for lead in buyers["leads"].as_array().unwrap() {
        assert_eq!(lead["custom_fields"]["lead_line"], "buyer");
    }
    let sellers = app
        .list_leads(&key, &query(&[("lead_line", "seller")]))
        .expect(200);
    assert_eq!(ids(&sellers), [s["id"].as_str().unwrap()]);
    assert_eq!(total(&app.list_leads(&key, &query(&[])).expect(200)), 4);
}

#[test]
fn since_filters_are_inclusive() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let a = app.create_lead(&key, json!({ "contact_name": "A" }));
    app.advance_clock(5);
    let b = app.create_lead(&key, json!({ "contact_name": "B" }));
    app.advance_clock(5);
    let c = app.create_lead(&key, json!({ "contact_name": "C" }));
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let b_created = b["created_at"].as_str().unwrap();
    let b_updated = b["updated_at"].as_str().unwrap();

    // Answered from the sort index (bound on the sort column) and by a scan (any other shape).
    for sort_by in ["created_at", "updated_at"] {
        for extra in [None, Some(("status", "active"))] {
            let mut params = vec![("created_since", b_created), ("sort_by", sort_by)];
            params.extend(extra);
            let page = app.list_leads(&key, &query(&params)).expect(200);
            assert_eq!(
                sorted(ids(&page)),
                sorted(vec![id_of(&b), id_of(&c)]),
                "{params:?}"
            );
            assert_eq!(total(&page), 2, "{params:?}");

            let mut params = vec![("updated_since", b_updated), ("sort_by", sort_by)];
            params.extend(extra);
            let page = app.list_leads(&key, &query(&params)).expect(200);
            assert_eq!(
                sorted(ids(&page)),
                sorted(vec![id_of(&b), id_of(&c)]),
                "{params:?}"
            );
            assert_eq!(total(&page), 2, "{params:?}");
        }
    }
    // The bound itself, to the millisecond, is included.
    let c_created = c["created_at"].as_str().unwrap();
    assert_eq!(
        ids(&app
            .list_leads(&key, &query(&[("created_since", c_created)]))
            .expect(200)),
        [id_of(&c)]
    );

    // Touching A brings it inside updated_since but not created_since.
    app.advance_clock(5);
    app.update_lead(&key, &id_of(&a), json!({ "score": 1 }));
    let page = app
        .list_leads(&key, &query(&[("updated_since", b_updated)]))
        .expect(200);
    assert_eq!(total(&page), 3);
    assert_eq!(ids(&page).last(), Some(&id_of(&a)));
    assert_eq!(
        total(
            &app.list_leads(&key, &query(&[("created_since", b_created)]))
                .expect(200)
        ),
        2
    );

    // Other ISO-8601 shapes parse; the far future matches nothing.
    assert_eq!(
        total(
            &app.list_leads(&key, &query(&[("created_since", "2000-01-01")]))
                .expect(200)
        ),
        3
    );
    assert_eq!(
        total(
            &app.list_leads(
                &key,
                &query(&[("updated_since", "2000-01-01T00:00:00+02:00")])
            )
            .expect(200)
        ),
        3
    );
    assert_eq!(
        total(
            &app.list_leads(&key, &query(&[("created_since", "2999-01-01T00:00:00Z")]))
                .expect(200)
        ),
        0
    );
    assert_eq!(
        total(
            &app.list_leads(
                &key,
                &query(&[
                    ("created_since", "2999-01-01T00:00:00Z"),
                    ("status", "active")
                ])
            )
            .expect(200)
        ),
        0
    );
}

#[test]
fn search_matches_name_email_or_phone_digits() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let alice = app.create_lead(&key, json!({ "contact_name": "Alice Smith", "contact_email": "alice@example.com", "contact_phone": "(206) 555-0123" }));
    let bob = app.create_lead(&key, json!({ "contact_name": "Bob Jones", "contact_email": "bob@corp.io", "contact_phone": "503.555.0299" }));
    let carol = app.create_lead(
        &key,
        json!({ "contact_name": "Carol", "contact_email": "carol@EXAMPLE.org" }),
    );
    let phone_only = app.create_lead(&key, json!({ "contact_phone": "312-555-0147" }));
    let found = |q: &str| {
        let page = app
            .list_leads(&key, &query(&[("search", q), ("limit", "100")]))
            .expect(200);
        let mut got = ids(&page);
        got.sort();
        assert_eq!(total(&page), got.len() as u64, "{q}");
        got
    };
    let set = |leads: &[&Value]| {
        let mut v: Vec<String> = leads.iter().map(|l| id_of(l)).collect();
        v.sort();
        v
    };

    assert_eq!(found("ALICE"), set(&[&alice]), "name, case-insensitive");
    assert_eq!(found("smi"), set(&[&alice]), "name substring");
    assert_eq!(found("corp.io"), set(&[&bob]), "email substring");
    assert_eq!(
        found("Example"),
        set(&[&alice, &carol]),
        "email, case-insensitive"
    );
    assert_eq!(
        found("555-01"),
        set(&[&alice, &phone_only]),
        "phone digits, formatting ignored"
    );
    assert_eq!(found("(206) 555"), set(&[&alice]));
    assert_eq!(found("+1 312"), set(&[&phone_only]));
    assert_eq!(found("5550299"), set(&[&bob]));
    assert_eq!(
        found("31"),
        set(&[]),
        "fewer than 3 digits never match a phone"
    );
    assert_eq!(found("20"), set(&[]));
    assert_eq!(found("nobody"), set(&[]));

    // `total` counts every match, not the page.
    let page = app
        .list_leads(&key, &query(&[("search", "example"), ("limit", "1")]))
        .expect(200);
    assert_eq!(page["leads"].as_array().unwrap().len(), 1);
    assert_eq!(total(&page), 2);
    assert!(page["next_cursor"].is_string());
    // Search combines with other filters.
    app.update_lead(&key, &id_of(&carol), json!({ "status": "lost" }));
    let page = app
        .list_leads(&key, &query(&[("search", "example"), ("status", "lost")]))
        .expect(200);
    assert_eq!(ids(&page), [id_of(&carol)]);
}

#[test]
fn keyset_paging_visits_every_lead_once_in_order() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let mut ids_made = Vec::new();
    for i in 0..4 {
        let lead = app.create_lead(
            &key,
            json!({ "contact_email": format!("one{i}@example.com") }),
        );
        ids_made.push(id_of(&lead));
    }
    // One bulk import: five leads sharing their timestamps, so ties are broken by id.
    ids_made.extend(bulk_create(
        &app,
        &key,
        (0..5)
            .map(|i| json!({ "contact_email": format!("bulk{i}@example.com") }))
            .collect(),
    ));
    for i in 4..8 {
        let lead = app.create_lead(
            &key,
            json!({ "contact_email": format!("one{i}@example.com") }),
        );
        ids_made.push(id_of(&lead));
    }
    // Updates reorder updated_at against created_at.
    app.advance_clock(3);
    for id in [&ids_made[1], &ids_made[5], &ids_made[0]] {
        app.update_lead(&key, id, json!({ "score": 3 }));
    }
    let all = app
        .list_leads(&key, &query(&[("limit", "100")]))
        .expect(200)["leads"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(all.len(), 13);

    for sort_by in ["created_at", "updated_at"] {
        for sort_dir in ["asc", "desc"] {
            let want = expected_order(&all, sort_by, sort_dir == "desc");
            // Plain (the sort index) and filtered (a scan) plans.
            for filter in [None, Some(("search", "example.com"))] {
                let mut params = vec![("sort_by", sort_by), ("sort_dir", sort_dir), ("limit", "3")];
                params.extend(filter);
                let pages = walk(&app, &key, &params);
                assert_eq!(pages.len(), 5, "{params:?}");
                let mut seen = Vec::new();
                for (n, page) in pages.iter().enumerate() {
                    assert_eq!(total(page), 13, "{params:?}");
                    assert_eq!(page["limit"], 3);
                    assert_eq!(page["offset"], 0);
                    let last = n == pages.len() - 1;
                    assert_eq!(page["next_cursor"].is_null(), last, "{params:?} page {n}");
                    assert_eq!(
                        page["leads"].as_array().unwrap().len(),
                        if last { 1 } else { 3 }
                    );
                    seen.extend(ids(page));
                }
                assert_eq!(seen, want, "{params:?}");
            }
        }
    }
}

#[test]
fn next_cursor_is_null_on_an_exactly_full_last_page() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    for i in 0..6 {
        app.create_lead(
            &key,
            json!({ "contact_email": format!("full{i}@example.com") }),
        );
    }
    for sort_dir in ["asc", "desc"] {
        for filter in [None, Some(("status", "active"))] {
            let mut params = vec![("sort_dir", sort_dir), ("limit", "3")];
            params.extend(filter);
            let pages = walk(&app, &key, &params);
            assert_eq!(pages.len(), 2, "{params:?}");
            assert!(pages[0]["next_cursor"].is_string());
            assert_eq!(pages[1]["leads"].as_array().unwrap().len(), 3);
            assert_eq!(pages[1]["next_cursor"], Value::Null, "{params:?}");

            let mut params = vec![("sort_dir", sort_dir), ("limit", "6")];
            params.extend(filter);
            let page = app.list_leads(&key, &query(&params)).expect(200);
            assert_eq!(page["leads"].as_array().unwrap().len(), 6);
            assert_eq!(page["next_cursor"], Value::Null);
        }
    }
}

#[test]
fn paging_while_leads_are_inserted_sees_every_original_lead_exactly_once() {
    let app = TestApp::relaxed();
    for (sort_by, sort_dir) in [
        ("updated_at", "asc"),
        ("updated_at", "desc"),
        ("created_at", "desc"),
    ] {
        let key = app.tenant_with_key("Acme");
        let mut originals: HashSet<String> = bulk_create(
            &app,
            &key,
            (0..25)
                .map(|i| json!({ "contact_email": format!("orig{i}@example.com") }))
                .collect(),
        )
        .into_iter()
        .collect();
        for i in 25..40 {
            let lead = app.create_lead(
                &key,
                json!({ "contact_email": format!("orig{i}@example.com") }),
            );
            originals.insert(id_of(&lead));
        }
        assert_eq!(originals.len(), 40);
        let writer = app.issue_key(&key.tenant, &["public_api:leads:write"]);
        let made = AtomicUsize::new(0);

        let seen = thread::scope(|s| {
            let background = s.spawn(|| {
                for i in 0..60 {
                    app.create_lead(
                        &writer,
                        json!({ "contact_email": format!("new{i}@example.com") }),
                    );
                    made.fetch_add(1, Ordering::SeqCst);
                }
            });
            while made.load(Ordering::SeqCst) < 3 {
                sleep_ms(1);
            }
            let mut seen = HashSet::new();
            let mut cursor: Option<String> = None;
            let mut pages = 0;
            loop {
                let mut params = vec![("sort_by", sort_by), ("sort_dir", sort_dir), ("limit", "7")];
                if let Some(c) = &cursor {
                    params.push(("cursor", c));
                }
                let page = app.list_leads(&key, &query(&params)).expect(200);
                for id in ids(&page) {
                    assert!(
                        seen.insert(id.clone()),
                        "{sort_by} {sort_dir}: {id} seen twice"
                    );
                }
                cursor = page["next_cursor"].as_str().map(String::from);
                pages += 1;
                assert!(pages < 100, "paging does not end");
                if cursor.is_none() {
                    break;
                }
                sleep_ms(2);
            }
            background.join().expect("background writer");
            seen
        });
        let missing: Vec<&String> = originals.difference(&seen).collect();
        assert!(
            missing.is_empty(),
            "{sort_by} {sort_dir}: never seen: {missing:?}"
        );
        assert_eq!(total(&app.list_leads(&key, &query(&[])).expect(200)), 100);
    }
}

#[test]
fn offset_paging_and_last_interaction_at() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    for i in 0..5 {
        app.create_lead(
            &key,
            json!({ "contact_email": format!("off{i}@example.com") }),
        );
    }
    let all = app.list_leads(&key, &query(&[])).expect(200);
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), 5);

    let page = app
        .list_leads(&key, &query(&[("offset", "2"), ("limit", "2")]))
        .expect(200);
    assert_eq!(ids(&page), all_ids[2..4]);
    assert_eq!(page["offset"], 2);
    assert_eq!(page["limit"], 2);
    assert_eq!(total(&page), 5);
    let filtered = app
        .list_leads(
            &key,
            &query(&[("offset", "2"), ("limit", "2"), ("status", "active")]),
        )
        .expect(200);
    assert_eq!(ids(&filtered), all_ids[2..4]);
    let tail = app
        .list_leads(&key, &query(&[("offset", "4"), ("limit", "2")]))
        .expect(200);
    assert_eq!(ids(&tail), all_ids[4..]);
    assert_eq!(tail["next_cursor"], Value::Null);
    let past = app
        .list_leads(&key, &query(&[("offset", "50")]))
        .expect(200);
    assert_eq!(ids(&past), Vec::<String>::new());
    assert_eq!(total(&past), 5);
    assert_eq!(past["next_cursor"], Value::Null);
    // Offsets far past the end, on the index path and on the scan path, are empty pages: the
    // server neither reserves memory for them nor overflows.
    let huge = usize::MAX.to_string();
    for extra in [
        None,
        Some(("search", "off")),
        Some(("sort_by", "last_interaction_at")),
    ] {
        let mut params = vec![("offset", huge.as_str())];
        params.extend(extra);
        let page = app.list_leads(&key, &query(&params)).expect(200);
        assert_eq!(ids(&page), Vec::<String>::new(), "{extra:?}");
        assert_eq!(total(&page), 5, "{extra:?}");
    }

    // last_interaction_at (nulls last) pages by offset, and by cursor (spec §12.2 gave it data).
    for sort_dir in ["asc", "desc"] {
        let mut seen = Vec::new();
        for offset in ["0", "2", "4"] {
            let page = app
                .list_leads(
                    &key,
                    &query(&[
                        ("sort_by", "last_interaction_at"),
                        ("sort_dir", sort_dir),
                        ("limit", "2"),
                        ("offset", offset),
                    ]),
                )
                .expect(200);
            assert_eq!(total(&page), 5);
            seen.extend(ids(&page));
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(seen.len(), 5, "{sort_dir}");
        assert_eq!(unique.len(), 5, "{sort_dir}: {seen:?}");
        let mut by_cursor = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut params = vec![
                ("sort_by", "last_interaction_at"),
                ("sort_dir", sort_dir),
                ("limit", "2"),
            ];
            if let Some(c) = &cursor {
                params.push(("cursor", c));
            }
            let page = app.list_leads(&key, &query(&params)).expect(200);
            by_cursor.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(
            by_cursor, seen,
            "{sort_dir}: the cursor walk is the offset walk"
        );
    }
}

#[test]
fn tenants_never_see_each_others_leads() {
    let app = TestApp::relaxed();
    let a = app.tenant_with_key("Acme");
    let b = app.tenant_with_key("Bravo");
    let lead_a = app.create_lead(&a, json!({ "contact_name": "Zelda Acme", "contact_email": "zelda@example.com", "contact_phone": "(206) 555-0188" }));
    let a_id = lead_a["id"].as_str().unwrap();
    // The same contact in another tenant is another lead, not a merge.
    let res = app
        .post_lead(
            &b,
            &json!({ "contact_name": "Zed Bravo", "contact_email": "zelda@example.com" }),
        )
        .expect(201);
    assert_eq!(res["merged"], false);
    let b_id = id_of(&res["lead"]);
    assert_ne!(a_id, b_id);

    let in_b = app.list_leads(&b, &query(&[])).expect(200);
    assert_eq!(ids(&in_b), std::slice::from_ref(&b_id));
    assert_eq!(total(&in_b), 1);
    let in_a = app.list_leads(&a, &query(&[])).expect(200);
    assert_eq!(ids(&in_a), [a_id]);
    assert_eq!(
        total(
            &app.list_leads(&b, &query(&[("search", "Acme")]))
                .expect(200)
        ),
        0
    );
    assert_eq!(
        total(
            &app.list_leads(&b, &query(&[("search", "555-0188")]))
                .expect(200)
        ),
        0
    );
    assert_eq!(
        total(
            &app.list_leads(&b, &query(&[("search", "zelda")]))
                .expect(200)
        ),
        1
    );

    app.get_lead(&b, a_id).assert_error(404, "not_found_error");
    app.get_lead(&a, &b_id).assert_error(404, "not_found_error");
    assert_eq!(app.get_lead(&a, a_id).status, 200);
}

#[test]
fn get_one_for_an_unknown_or_malformed_id_is_404() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    app.create_lead(&key, json!({ "contact_name": "Someone" }));
    let unknown = uuid::Uuid::now_v7().to_string();
    app.get_lead(&key, &unknown)
        .assert_error(404, "not_found_error");
    let message = app
        .get_lead(&key, "not-a-uuid")
        .assert_error(404, "not_found_error");
    assert_eq!(message, "lead not-a-uuid not found");
}

#[test]
fn admin_list_mirrors_the_public_list() {
    let app = TestApp::relaxed();
    let key = app.tenant_with_key("Acme");
    let other = app.tenant_with_key("Other");
    app.create_lead(&other, json!({ "contact_name": "Not Acme" }));
    for i in 0..5 {
        app.create_lead(&key, json!({ "contact_name": format!("Lead {i}"), "lead_line": if i % 2 == 0 { "buyer" } else { "seller" } }));
    }
    for params in [
        vec![],
        vec![("include_custom_fields", "true"), ("limit", "2")],
        vec![("lead_line", "buyer"), ("sort_dir", "desc")],
        vec![("search", "lead 3")],
        vec![("sort_by", "created_at"), ("offset", "1")],
    ] {
        let public = app.list_leads(&key, &query(&params)).expect(200);
        let admin = app
            .admin_list_leads(&key.tenant, &query(&params))
            .expect(200);
        assert_eq!(admin, public, "{params:?}");
    }
    // Its cursors continue like the public ones.
    let first = app.admin_list_leads(&key.tenant, "?limit=2").expect(200);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .admin_list_leads(&key.tenant, &query(&[("limit", "2"), ("cursor", cursor)]))
        .expect(200);
    assert_eq!(
        second,
        app.list_leads(&key, &query(&[("limit", "2"), ("cursor", cursor)]))
            .expect(200)
    );
    let message = app
        .admin_list_leads(&key.tenant, "?limit=0")
        .assert_error(400, "invalid_request_error");
    assert!(message.contains("limit"), "{message}");

    let unknown = uuid::Uuid::now_v7();
    app.admin_list_leads(&unknown.to_string(), "")
        .assert_error(404, "not_found_error");
    let message = app
        .admin_list_leads("not-a-uuid", "")
        .assert_error(404, "not_found_error");
    assert_eq!(message, "tenant not-a-uuid not found");
    // And it needs the admin token, not a tenant key.
    let admin_path = format!("/admin/api/tenants/{}/leads", key.tenant);
    let res = app.api("GET", &admin_path, &key).send();
    assert_eq!(res.status, 401, "{}", res.text);
}
