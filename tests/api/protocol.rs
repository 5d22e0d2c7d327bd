//! Requests no client library would send, written on a raw socket: methods HTTP does not
//! define, heads past leadbase's limits, bodies that never finish arriving.

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use crate::helpers::*;

#[test]
fn methods_http_does_not_define_are_refused_and_counted_as_other() {
    let app = TestApp::spawn();
    let invented = "X".repeat(4096);
    // No route: 501. A route that exists: 405 with what it allows.
    for (method, path, status, allow) in [
        (invented.as_str(), "/no-such-route", 501, None),
        ("FROBNICATE", "/healthz", 405, Some("GET, HEAD")),
        (
            "PROPFIND",
            "/api/agents/crm/leads",
            405,
            Some("GET, POST, HEAD"),
        ),
    ] {
        let res = exchange(
            &app,
            &format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        let kind = if status == 501 {
            "api_error"
        } else {
            "invalid_request_error"
        };
        let message = res.assert_error(status, kind);
        assert!(!message.contains(method), "{message}");
        assert!(res.header("x-request-id").is_some());
        if let Some(allow) = allow {
            assert_eq!(res.header("allow"), Some(allow), "{path}");
        }
    }
    let metrics = app.admin("GET", "/metrics").send().text;
    for (route, status) in [
        ("unmatched", 501),
        ("/healthz", 405),
        ("/api/agents/crm/leads", 405),
    ] {
        let series = format!(r#"{{route="{route}",method="other",status="{status}"}} 1"#);
        assert!(metrics.contains(&series), "{series}: {metrics}");
    }
    assert!(!metrics.contains("FROBNICATE"), "{metrics}");
    assert!(!metrics.contains("XXXX"), "{metrics}");
}

#[test]
fn heads_past_the_limits_are_431_in_the_envelope() {
    let app = TestApp::spawn();
    let large = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Large: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let many: String = (0..70).map(|i| format!("X-Field-{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n");
    for (request, named) in [(large, "bytes"), (many, "header fields")] {
        let res = exchange(&app, &request);
        let message = res.assert_error(431, "invalid_request_error");
        assert!(message.contains(named), "{message}");
        assert!(res.header("x-request-id").is_some());
    }
}

#[test]
fn a_body_that_trickles_in_is_answered_408_within_the_body_timeout() {
    let app = TestApp::spawn_with(|c| c.server.body_timeout_seconds = 1);
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    assert_trickled_body_times_out(&app, "/admin/api/tenants", &auth);
    // Bulk reads its body its own way (as text, row by row): the same timeout holds.
    let key = app.tenant_with_key("Acme");
    let auth = format!(
        "Authorization: Bearer {}\r\nx-customer-id: {}",
        key.token, key.tenant
    );
    assert_trickled_body_times_out(&app, "/api/agents/crm/leads/bulk", &auth);
}

/// Announces 1000 bytes of body and sends four a second: the server answers 408 and hangs up
/// within the (1 s) body timeout.
fn assert_trickled_body_times_out(app: &TestApp, path: &str, auth: &str) {
    let mut stream = connect(app);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).expect("sends the head");
    let started = Instant::now();
    let mut trickle = stream.try_clone().expect("a second handle");
    let trickler = thread::spawn(move || {
        for _ in 0..100 {
            if trickle.write_all(b" ").is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(250));
        }
    });
    let res = read_response(stream, &format!("POST {path}, trickled"));
    let waited = started.elapsed();
    let message = res.assert_error(408, "invalid_request_error");
    assert!(message.contains("1 s"), "{path}: {message}");
    assert_eq!(res.header("connection"), Some("close"), "{path}");
    assert!(
        waited < Duration::from_secs(3),
        "{path}: answered after {waited:?}"
    );
    trickler.join().expect("the trickler stops");
}
