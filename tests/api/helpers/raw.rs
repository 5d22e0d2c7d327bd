//! HTTP/1.1 on a raw socket, for requests no client library would send (or not in that way).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use testkit::{Resp, TestApp};

/// Far longer than any test here waits for an answer that is coming.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub fn connect(app: &TestApp) -> TcpStream {
    let addr = app.base().trim_start_matches("http://");
    let stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("read timeout");
    stream
}

/// Reads one response up to the server's close. A reset after the response counts as a close:
/// a server that hangs up on a client still sending makes its kernel answer the rest with RST.
pub fn read_response(mut stream: TcpStream, request: &str) -> Resp {
    let mut bytes = Vec::new();
    if let Err(e) = stream.read_to_end(&mut bytes) {
        assert!(!bytes.is_empty(), "{request}: no response: {e}");
    }
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
pub fn exchange(app: &TestApp, request: &str) -> Resp {
    let mut stream = connect(app);
    stream.write_all(request.as_bytes()).expect("sends");
    read_response(stream, request)
}
