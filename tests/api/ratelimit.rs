//! Per-key rate limits and the per-IP limit on failed authentication.

use crate::helpers::*;

fn limited() -> TestApp {
    TestApp::spawn_with(|c| {
        c.limits.per_minute = 5;
        c.limits.per_hour = 1000;
        c.limits.bulk_per_minute = 2;
        c.limits.unauthenticated_per_minute = 3;
    })
}

fn header_u64(res: &Resp, name: &str) -> u64 {
    res.header(name)
        .unwrap_or_else(|| panic!("{name} missing: {:?}", res.headers))
        .parse()
        .expect("a number")
}

#[test]
fn every_authenticated_response_carries_the_headers_and_a_spent_quota_is_429() {
    let app = limited();
    let key = app.tenant_with_key("Acme");
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let res = app.list_leads(&key, "");
        assert_eq!(res.status, 200);
        assert_eq!(header_u64(&res, "ratelimit-limit"), 5);
        remaining.push(header_u64(&res, "ratelimit-remaining"));
        assert!(header_u64(&res, "ratelimit-reset") <= 60);
    }
    assert_eq!(remaining, [4, 3, 2, 1, 0]);
    let refused = app.list_leads(&key, "");
    let message = refused.assert_error(429, "rate_limit_error");
    assert_eq!(message, "Rate limit exceeded. Please retry later.");
    let retry_after = header_u64(&refused, "retry-after");
    assert!(
        (1..=12).contains(&retry_after),
        "one request refills in 12 s: {retry_after}"
    );
    assert_eq!(header_u64(&refused, "ratelimit-remaining"), 0);

    // Error responses of an authenticated key carry the headers too.
    let other = app.tenant_with_key("Globex");
    let not_found = app.get_lead(&other, &uuid::Uuid::now_v7().to_string());
    not_found.assert_error(404, "not_found_error");
    assert_eq!(header_u64(&not_found, "ratelimit-remaining"), 4);
}

#[test]
fn the_bulk_bucket_is_independent() {
    let app = limited();
    let key = app.tenant_with_key("Acme");
    let body = serde_json::json!({ "leads": [{ "contact_name": "Ada" }], "dry_run": true });
    for expected in [1, 0] {
        let res = app.bulk(&key, &body);
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(header_u64(&res, "ratelimit-limit"), 2);
        assert_eq!(header_u64(&res, "ratelimit-remaining"), expected);
    }
    app.bulk(&key, &body).assert_error(429, "rate_limit_error");
    // The default bucket was not touched by bulk requests, nor is bulk by default requests.
    let res = app.list_leads(&key, "");
    assert_eq!(res.status, 200);
    assert_eq!(header_u64(&res, "ratelimit-remaining"), 4);
}

#[test]
fn failed_authentication_is_limited_per_ip_without_blocking_valid_keys() {
    let app = limited();
    let key = app.tenant_with_key("Acme");
    let bad = format!("mega_{}", "f".repeat(64));
    for expected in [2, 1, 0] {
        let res = app
            .req("GET", LEADS)
            .bearer(&bad)
            .header("x-customer-id", &key.tenant)
            .send();
        res.assert_error(401, "authentication_error");
        assert_eq!(header_u64(&res, "ratelimit-remaining"), expected);
    }
    let res = app
        .req("GET", LEADS)
        .bearer(&bad)
        .header("x-customer-id", &key.tenant)
        .send();
    res.assert_error(429, "rate_limit_error");
    assert!(res.header("retry-after").is_some());
    // A valid key from the same address is not blocked by those failures.
    assert_eq!(app.list_leads(&key, "").status, 200);
}
