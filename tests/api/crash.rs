//! At least once across crashes: deliveries pending or in flight when the process is killed
//! with SIGKILL are all delivered after a restart.

use std::collections::HashSet;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

const LEAD_COUNT: usize = 20;

fn call(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Value) -> Value {
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .header("content-type", "application/json")
        .body(body.to_string())
        .unwrap();
    let mut res = agent().run(req).expect("exchange");
    let text = res.body_mut().read_to_string().unwrap();
    assert!(res.status().is_success(), "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// A tenant and a key with every scope, through the admin API: (tenant id, `Bearer …`).
fn tenant_with_key(base: &str) -> (String, String) {
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let auth = [("authorization", admin.as_str())];
    let tenant = call(
        base,
        "POST",
        "/admin/api/tenants",
        &auth,
        json!({ "name": "Acme" }),
    );
    let tenant = tenant["tenant"]["id"].as_str().unwrap().to_string();
    let path = format!("/admin/api/tenants/{tenant}/keys");
    let key = call(
        base,
        "POST",
        &path,
        &auth,
        json!({ "name": "k", "scopes": ALL_SCOPES }),
    );
    let bearer = format!("Bearer {}", key["token"].as_str().unwrap());
    (tenant, bearer)
}

#[test]
fn deliveries_pending_or_in_flight_at_sigkill_are_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    // A receiver that accepts connections and never answers: attempts stay in flight.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hang.local_addr().unwrap().port();
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (holder, stopped) = (Arc::clone(&held), Arc::clone(&stop));
    let hang_thread = std::thread::spawn(move || {
        for stream in hang.incoming() {
            if stopped.load(Ordering::SeqCst) {
                break;
            }
            if let Ok(s) = stream {
                holder.lock().unwrap().push(s);
            }
        }
    });

    let admin_token = format!("admin.token={ADMIN_TOKEN}");
    let sets = [
        admin_token.as_str(),
        "webhooks.https_only=false",
        "webhooks.allowed_private_cidrs=127.0.0.0/8",
        "webhooks.retry_schedule_seconds=1",
        "limits.per_minute=100000",
    ];
    let (mut server, base, _) = serve(&data, &sets);
    let (tenant, bearer) = tenant_with_key(&base);
    let auth = [
        ("authorization", bearer.as_str()),
        ("x-customer-id", tenant.as_str()),
    ];
    let webhook = call(
        &base,
        "POST",
        HOOKS,
        &auth,
        json!({ "url": format!("http://127.0.0.1:{port}/crash"), "timeout_seconds": 60, "retry_attempts": 10 }),
    );
    let secret = webhook["secret"].as_str().unwrap().to_string();
    let mut expected = HashSet::new();
    for i in 0..LEAD_COUNT {
        let lead = call(
            &base,
            "POST",
            LEADS,
            &auth,
            json!({ "contact_name": format!("Lead {i}") }),
        );
        expected.insert(lead["lead"]["id"].as_str().unwrap().to_string());
    }
    eventually(
        "attempts reached the receiver",
        Duration::from_secs(10),
        || match held.lock().unwrap().len() {
            n if n >= 2 => Ok(()),
            n => Err(format!("{n} connections")),
        },
    );

    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    // Free the port: stop accepting and drop the connections the dead server left.
    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(("127.0.0.1", port));
    hang_thread.join().unwrap();
    held.lock().unwrap().clear();

    let receiver = receive(&secret, &format!("127.0.0.1:{port}"));
    let (mut restarted, _, _) = serve(&data, &sets);

    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !expected.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(line) = receiver.next_line(left) else {
            panic!(
                "only {} of {LEAD_COUNT} leads delivered after the restart",
                expected.intersection(&seen).count()
            );
        };
        let event: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["verified"], true);
        seen.insert(event["body"]["lead"]["id"].as_str().unwrap().to_string());
    }
    let _ = restarted.kill();
    let _ = restarted.wait();
}

/// A plain-HTTP receiver that reads each request, waits `delay`, then answers 200; it counts
/// the requests it has read.
fn slow_receiver(delay: Duration) -> (u16, Arc<Mutex<usize>>) {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<usize>> = Arc::default();
    let counter = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let counter = Arc::clone(&counter);
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = vec![0u8; 64 * 1024];
                let mut read = 0;
                // Headers and a small JSON body arrive in a few reads; stop at the end of the body.
                while let Ok(n) = stream.read(&mut buf[read..]) {
                    if n == 0 {
                        return;
                    }
                    read += n;
                    let text = String::from_utf8_lossy(&buf[..read]);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if read >= end + 4 + length {
                            break;
                        }
                    }
                }
                *counter.lock().unwrap() += 1;
                std::thread::sleep(delay);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            });
        }
    });
    (port, seen)
}

#[test]
fn sigterm_lets_an_attempt_in_flight_finish_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let (port, seen) = slow_receiver(Duration::from_millis(1500));
    let admin_token = format!("admin.token={ADMIN_TOKEN}");
    let sets = [
        admin_token.as_str(),
        "webhooks.https_only=false",
        "webhooks.allowed_private_cidrs=127.0.0.0/8",
    ];
    let (mut server, base, _) = serve(&data, &sets);
    let (tenant, bearer) = tenant_with_key(&base);
    let auth = [
        ("authorization", bearer.as_str()),
        ("x-customer-id", tenant.as_str()),
    ];
    let webhook = call(
        &base,
        "POST",
        HOOKS,
        &auth,
        json!({ "url": format!("http://127.0.0.1:{port}/slow"), "timeout_seconds": 10 }),
    );
    let webhook = webhook["webhook"]["id"].as_str().unwrap().to_string();
    call(
        &base,
        "POST",
        LEADS,
        &auth,
        json!({ "contact_name": "Ada" }),
    );
    eventually(
        "the attempt started",
        Duration::from_secs(10),
        || match *seen.lock().unwrap() {
            0 => Err("no request read".to_string()),
            _ => Ok(()),
        },
    );

    let asked = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = server.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() >= Duration::from_millis(1000),
        "the stop waited for the attempt"
    );

    let (mut restarted, base, _) = serve(&data, &sets);
    let log = call(
        &base,
        "GET",
        &format!("{HOOKS}/{webhook}/deliveries"),
        &auth,
        Value::Null,
    );
    assert_eq!(log["data"][0]["status"], "delivered", "{log}");
    assert_eq!(log["data"][0]["attempts"], 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        *seen.lock().unwrap(),
        1,
        "a finished attempt is not sent again"
    );
    let _ = restarted.kill();
    let _ = restarted.wait();
}
