//! Requests no client library would send, written on a raw socket: methods HTTP does not
//! define, heads past leadbase's limits, bodies that never finish arriving.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::helpers::*;

/// Far longer than any test here waits for an answer that is coming.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(app: &TestApp) -> TcpStream {
    let addr = app.base().trim_start_matches("http://");
    let stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("read timeout");
    stream
}

/// Reads one response up to the server's close.
fn read_response(mut stream: TcpStream, request: &str) -> Resp {
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .expect("the server answers and closes");
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Resp {
        request: request.chars().take(80).collect(),
        status,
        headers,
        text: body.to_string(),
    }
}

/// Sends `request` whole on a fresh connection (it asks for `Connection: close`).
fn exchange(app: &TestApp, request: &str) -> Resp {
    let mut stream = connect(app);
    stream.write_all(request.as_bytes()).expect("sends");
    read_response(stream, request)
}

#[test]
fn methods_http_does_not_define_are_501_and_counted_as_other() {
    let app = TestApp::spawn();
    let invented = "X".repeat(4096);
    for (method, path) in [
        (invented.as_str(), "/no-such-route"),
        ("FROBNICATE", "/healthz"),
        ("PROPFIND", "/api/agents/crm/leads"),
    ] {
        let res = exchange(
            &app,
            &format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        let message = res.assert_error(501, "api_error");
        assert!(!message.contains(method), "{message}");
        assert!(res.header("x-request-id").is_some());
    }
    let metrics = app.admin("GET", "/metrics").send().text;
    for route in ["unmatched", "/healthz", "/api/agents/crm/leads"] {
        let series = format!(r#"{{route="{route}",method="other",status="501"}} 1"#);
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
