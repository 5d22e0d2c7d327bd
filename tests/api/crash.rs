//! At least once across crashes: deliveries pending or in flight when the process is killed
//! with SIGKILL are all delivered after a restart.

use std::collections::HashSet;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

const LEAD_COUNT: usize = 20;

/// `leadbase serve` on `data`, delivering to plain-HTTP receivers on loopback, with `extra`
/// `--set` flags.
fn serve_plain(data: &Path, extra: &[&str]) -> Served {
    let admin_token = format!("admin.token={ADMIN_TOKEN}");
    let mut sets = vec![
        admin_token.as_str(),
        "webhooks.https_only=false",
        "webhooks.allowed_private_cidrs=127.0.0.0/8",
    ];
    sets.extend_from_slice(extra);
    serve(data, &sets)
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

    let extra = &[
        "webhooks.retry_schedule_seconds=1",
        "limits.per_minute=100000",
    ];
    let mut server = serve_plain(&data, extra);
    let key = server.client.tenant_with_key("Acme");
    let webhook = server
        .client
        .post_webhook(
            &key,
            &json!({ "url": format!("http://127.0.0.1:{port}/crash"), "timeout_seconds": 60, "retry_attempts": 10 }),
        )
        .expect(201);
    let secret = webhook["secret"].as_str().unwrap().to_string();
    let mut expected = HashSet::new();
    for i in 0..LEAD_COUNT {
        let lead = server
            .client
            .create_lead(&key, json!({ "contact_name": format!("Lead {i}") }));
        expected.insert(lead["id"].as_str().unwrap().to_string());
    }
    eventually(
        "attempts reached the receiver",
        Duration::from_secs(10),
        || match held.lock().unwrap().len() {
            n if n >= 2 => Ok(()),
            n => Err(format!("{n} connections")),
        },
    );

    server.sigkill();
    // Free the port: stop accepting and drop the connections the dead server left.
    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(("127.0.0.1", port));
    hang_thread.join().unwrap();
    held.lock().unwrap().clear();

    let receiver = receive(&secret, &format!("127.0.0.1:{port}"));
    let _restarted = serve_plain(&data, extra);

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
}

#[test]
fn sigterm_lets_an_attempt_in_flight_finish_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    let receiver = PlainReceiver::answering_after(Duration::from_millis(1500));
    let (port, seen) = (receiver.port, &receiver.seen);
    let extra = &[];
    let mut server = serve_plain(&data, extra);
    let key = server.client.tenant_with_key("Acme");
    let webhook = server
        .client
        .post_webhook(
            &key,
            &json!({ "url": format!("http://127.0.0.1:{port}/slow"), "timeout_seconds": 10 }),
        )
        .expect(201);
    let webhook = webhook["webhook"]["id"].as_str().unwrap().to_string();
    server
        .client
        .create_lead(&key, json!({ "contact_name": "Ada" }));
    eventually(
        "the attempt started",
        Duration::from_secs(10),
        || match seen.lock().unwrap().len() {
            0 => Err("no request read".to_string()),
            _ => Ok(()),
        },
    );

    let asked = Instant::now();
    server.sigterm();
    let status = server.wait();
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() >= Duration::from_millis(1000),
        "the stop waited for the attempt"
    );

    let restarted = serve_plain(&data, extra);
    let log = restarted
        .client
        .list_deliveries(&key, &webhook, "")
        .expect(200);
    // Delivered is final: the restarted dispatcher has nothing of this delivery's left to send,
    // so the count is settled once the log says so.
    assert_eq!(log["data"][0]["status"], "delivered", "{log}");
    assert_eq!(log["data"][0]["attempts"], 1);
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a finished attempt is not sent again"
    );
}

/// What [`PlainReceiver`] read: each request's delivery id and lead id.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A plain-HTTP receiver that records each request and answers 200 after `delay`, except that
/// the `hold`-th request it reads (if any) is answered only once the test says so through
/// `answer`: `arrived` hears when it came, `answered` when its answer was written.
struct PlainReceiver {
    port: u16,
    seen: Seen,
    delay: Arc<Mutex<Duration>>,
    arrived: mpsc::Receiver<()>,
    answer: mpsc::Sender<()>,
    answered: mpsc::Receiver<()>,
}

impl PlainReceiver {
    /// Answers every request after `delay`.
    fn answering_after(delay: Duration) -> PlainReceiver {
        PlainReceiver::holding(usize::MAX, delay)
    }

    fn holding(hold: usize, delay: Duration) -> PlainReceiver {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Seen = Arc::default();
        let delay = Arc::new(Mutex::new(delay));
        let (arrived_tx, arrived) = mpsc::channel();
        let (answer, answer_rx) = mpsc::channel::<()>();
        let (answered_tx, answered) = mpsc::channel();
        let gate = Arc::new(Mutex::new(Some((arrived_tx, answer_rx, answered_tx))));
        let (seen_by, delay_of) = (Arc::clone(&seen), Arc::clone(&delay));
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (seen, delay, gate) = (
                    Arc::clone(&seen_by),
                    Arc::clone(&delay_of),
                    Arc::clone(&gate),
                );
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let (mut length, mut delivery) = (0, String::new());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end().to_ascii_lowercase();
                        if line.is_empty() {
                            break;
                        }
                        if let Some(v) = line.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        if let Some(v) = line.strip_prefix("x-mega-delivery:") {
                            delivery = v.trim().to_string();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let body: Value = serde_json::from_slice(&body).unwrap();
                    let lead = body["lead"]["id"].as_str().unwrap().to_string();
                    let count = {
                        let mut seen = seen.lock().unwrap();
                        seen.push((delivery, lead));
                        seen.len()
                    };
                    let held = if count == hold {
                        gate.lock().unwrap().take()
                    } else {
                        None
                    };
                    match &held {
                        Some((arrived, answer, _)) => {
                            arrived.send(()).unwrap();
                            answer.recv().unwrap();
                        }
                        None => std::thread::sleep(*delay.lock().unwrap()),
                    }
                    let mut stream = stream;
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                    let _ = stream.flush();
                    if let Some((_, _, answered)) = held {
                        answered.send(()).unwrap();
                    }
                });
            }
        });
        PlainReceiver {
            port,
            seen,
            delay,
            arrived,
            answer,
            answered,
        }
    }
}

/// SIGSTOP, so the process reads nothing more until it is killed.
fn freeze(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_delivery_answered_but_not_recorded_at_sigkill_is_sent_again_and_nothing_leased_ahead_is_lost()
{
    const LEADS: usize = 200;
    const HOLD: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leadbase.redb");
    // Slow enough that deliveries pile up leased ahead while the leads are created.
    let receiver = PlainReceiver::holding(HOLD, Duration::from_millis(20));
    let extra = &["limits.per_minute=100000"];
    let mut server = serve_plain(&data, extra);
    let key = server.client.tenant_with_key("Acme");
    let webhook = server
        .client
        .post_webhook(
            &key,
            &json!({ "url": format!("http://127.0.0.1:{}/hook", receiver.port) }),
        )
        .expect(201);
    let webhook = webhook["webhook"]["id"].as_str().unwrap().to_string();
    let mut expected = HashSet::new();
    for i in 0..LEADS {
        let lead = server
            .client
            .create_lead(&key, json!({ "contact_name": format!("Lead {i}") }));
        expected.insert(lead["id"].as_str().unwrap().to_string());
    }
    receiver
        .arrived
        .recv_timeout(Duration::from_secs(30))
        .expect("the held request arrived");
    let (held_delivery, _) = receiver.seen.lock().unwrap()[HOLD - 1].clone();
    // Leased ahead: more deliveries are `delivering` than the two the webhook has on the wire
    // (the engine leases its next batch while the held request waits; on a loaded machine
    // that can come a moment after the request arrived).
    eventually("deliveries leased ahead", Duration::from_secs(20), || {
        let leased = server
            .client
            .list_deliveries(&key, &webhook, "?status=delivering&limit=100")
            .expect(200);
        let leased = leased["data"].as_array().unwrap().len();
        if leased > 2 {
            Ok(())
        } else {
            Err(format!("{leased} deliveries leased"))
        }
    });

    // The receiver answers the held request while the server cannot read the answer: for the
    // receiver it is delivered, for the server it was sent and never recorded.
    freeze(server.child.id());
    *receiver.delay.lock().unwrap() = Duration::ZERO;
    receiver.answer.send(()).unwrap();
    receiver
        .answered
        .recv_timeout(Duration::from_secs(5))
        .expect("the held request was answered");
    server.sigkill();

    let _restarted = serve_plain(&data, extra);
    let delivered = |seen: &[(String, String)]| -> HashSet<String> {
        seen.iter().map(|(_, lead)| lead.clone()).collect()
    };
    // Well within the leases' own expiry (the timeout plus 30 s): the restart takes them back.
    eventually("every lead delivered", Duration::from_secs(20), || {
        let seen = receiver.seen.lock().unwrap();
        let got = delivered(&seen);
        match expected.difference(&got).count() {
            0 => Ok(()),
            n => Err(format!("{n} of {LEADS} leads not delivered")),
        }
    });
    let seen = receiver.seen.lock().unwrap();
    let sends_of_held = seen.iter().filter(|(d, _)| *d == held_delivery).count();
    assert!(
        sends_of_held >= 2,
        "the answered but unrecorded delivery is sent again (sent {sends_of_held} times)"
    );
}
