//! Where the deliveries go: a minimal plain-HTTP sink that answers `204 No Content`, or the test
//! kit's HTTPS receiver (rustls, a throw-away CA, answers `200 ok`). Either way the benchmark
//! reads [`Arrival`]s: which webhook, the lead's send stamp `t`, and when the request had been
//! read whole. And the isolation scenario's [`Tarpit`], which takes deliveries and never answers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use testkit::receiver::Receiver;

use crate::clock;

/// One delivery as the sink saw it.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// The webhook, from the path `/hook{n}`.
    pub hook: u32,
    /// The lead's `custom_fields.t`: microseconds since the UNIX epoch when it was sent.
    pub t: u64,
    /// When the sink had read the whole request, on the same scale.
    pub at: u64,
}

/// The path of webhook `hook` at a sink.
pub fn hook_path(hook: usize) -> String {
    format!("/hook{hook}")
}

/// The only part of a delivery's body the benchmark reads: `lead.custom_fields.t`.
#[derive(Deserialize)]
struct Event {
    lead: EventLead,
}

#[derive(Deserialize)]
struct EventLead {
    custom_fields: Stamp,
}

#[derive(Deserialize)]
struct Stamp {
    t: f64,
}

/// An arrival from a request's path and body; `None` for anything else (a test event, a path
/// that is no webhook's).
fn arrival(path: &str, body: &[u8], at: u64) -> Option<Arrival> {
    let hook = path.strip_prefix("/hook")?.parse().ok()?;
    let event: Event = serde_json::from_slice(body).ok()?;
    Some(Arrival {
        hook,
        t: event.lead.custom_fields.t as u64,
        at,
    })
}

/// Which sink a scenario delivers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkKind {
    Plain,
    Https,
}

impl SinkKind {
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Plain => "plain",
            SinkKind::Https => "https",
        }
    }
}

/// A running sink of either kind.
pub enum Sink {
    Plain(PlainSink),
    Https(Receiver),
}

impl Sink {
    pub fn start(kind: SinkKind) -> Sink {
        match kind {
            SinkKind::Plain => Sink::Plain(PlainSink::start()),
            SinkKind::Https => Sink::Https(Receiver::start()),
        }
    }

    /// The URL webhook `hook` is registered with.
    pub fn url(&self, hook: usize) -> String {
        match self {
            Sink::Plain(sink) => format!("http://{}{}", sink.addr, hook_path(hook)),
            Sink::Https(receiver) => receiver.url(&hook_path(hook)),
        }
    }

    /// Takes what arrived since the last call; counts the requests that were no delivery of a
    /// stamped lead in `other`.
    pub fn take(&self, other: &mut u64) -> Vec<Arrival> {
        match self {
            Sink::Plain(sink) => {
                *other += sink.shared.other.swap(0, Ordering::Relaxed);
                std::mem::take(&mut *sink.shared.lock())
            }
            Sink::Https(receiver) => {
                let recorded = receiver.take_all();
                let mut arrivals = Vec::with_capacity(recorded.len());
                for r in &recorded {
                    match arrival(&r.path, &r.body, clock::unix_us(r.at)) {
                        Some(a) => arrivals.push(a),
                        None => *other += 1,
                    }
                }
                arrivals
            }
        }
    }
}

#[derive(Default)]
struct Shared {
    arrivals: Mutex<Vec<Arrival>>,
    /// Requests that carried no stamped lead, or could not be parsed.
    other: AtomicU64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arrival>> {
        self.arrivals.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Plain HTTP/1.1 on 127.0.0.1, std only: one thread per connection, keep-alive, a request read
/// as its head plus `Content-Length` bytes, answered `204 No Content` at once. It does as little
/// as it can, since it shares the cores with the server and the load.
pub struct PlainSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

impl PlainSink {
    pub fn start() -> PlainSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        let addr = listener.local_addr().expect("sink address");
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("sink-accept".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let Ok(tcp) = conn else { continue };
                        let shared = Arc::clone(&shared);
                        let _ = std::thread::Builder::new()
                            .name("sink-conn".into())
                            .stack_size(64 * 1024)
                            .spawn(move || serve(tcp, &shared));
                    }
                })
                .expect("spawn the sink");
        }
        PlainSink { addr, shared, stop }
    }
}

impl Drop for PlainSink {
    fn drop(&mut self) {
        // Connection threads end when their peer (the server, stopped first) closes.
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

const NO_CONTENT: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// The parts of a request head the sink needs.
struct Head {
    path: String,
    length: usize,
    close: bool,
}

fn parse_head(head: &[u8]) -> Option<Head> {
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let (mut length, mut close) = (0, false);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Never sent by the server for a body of known size; not worth decoding.
            return None;
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    Some(Head {
        path,
        length,
        close,
    })
}

fn serve(mut tcp: TcpStream, shared: &Shared) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(300)));
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        // The head.
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            if buf.len() > 64 * 1024 {
                return;
            }
            match tcp.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let Some(head) = parse_head(&buf[..head_end]) else {
            shared.other.fetch_add(1, Ordering::Relaxed);
            let _ = tcp.write_all(BAD_REQUEST);
            return;
        };
        // The body.
        let body_start = head_end + 4;
        while buf.len() < body_start + head.length {
            match tcp.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let at = clock::now_us();
        let body = &buf[body_start..body_start + head.length];
        match arrival(&head.path, body, at) {
            Some(a) => shared.lock().push(a),
            None => {
                shared.other.fetch_add(1, Ordering::Relaxed);
            }
        }
        buf.drain(..body_start + head.length);
        if tcp.write_all(NO_CONTENT).is_err() || head.close {
            return;
        }
    }
}

/// A receiver that never answers: it accepts every connection, reads whatever comes and holds
/// the socket open until the peer closes it (the server, at its attempt's timeout or when it is
/// stopped). It counts connections and, per webhook (`/tarpit{n}`), the request heads it saw.
pub struct Tarpit {
    addr: SocketAddr,
    shared: Arc<TarpitShared>,
    stop: Arc<AtomicBool>,
}

struct TarpitShared {
    connections: AtomicU64,
    /// Request heads seen per webhook, by the `n` of `/tarpit{n}`.
    requests: Vec<AtomicU64>,
}

impl Tarpit {
    /// A tarpit for webhooks `0..hooks`.
    pub fn start(hooks: usize) -> Tarpit {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the tarpit");
        let addr = listener.local_addr().expect("tarpit address");
        let shared = Arc::new(TarpitShared {
            connections: AtomicU64::new(0),
            requests: (0..hooks).map(|_| AtomicU64::new(0)).collect(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("tarpit-accept".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let Ok(tcp) = conn else { continue };
                        shared.connections.fetch_add(1, Ordering::Relaxed);
                        let shared = Arc::clone(&shared);
                        let _ = std::thread::Builder::new()
                            .name("tarpit-conn".into())
                            .stack_size(64 * 1024)
                            .spawn(move || hold(tcp, &shared));
                    }
                })
                .expect("spawn the tarpit");
        }
        Tarpit { addr, shared, stop }
    }

    /// The URL webhook `hook` is registered with.
    pub fn url(&self, hook: usize) -> String {
        format!("http://{}/tarpit{hook}", self.addr)
    }

    /// Request heads seen so far for each webhook.
    pub fn requests(&self) -> Vec<u64> {
        self.shared
            .requests
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Tarpit {
    fn drop(&mut self) {
        // Connection threads end when their peer (the server, stopped first) closes.
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Reads until the peer closes, counting the first request line's webhook; never writes.
fn hold(mut tcp: TcpStream, shared: &TarpitShared) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(300)));
    let mut line: Vec<u8> = Vec::new();
    let mut counted = false;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match tcp.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if counted {
            continue;
        }
        line.extend_from_slice(&chunk[..n]);
        if let Some(end) = line.windows(2).position(|w| w == b"\r\n") {
            counted = true;
            // `POST /tarpit{n} HTTP/1.1`
            let hook = std::str::from_utf8(&line[..end])
                .ok()
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|path| path.strip_prefix("/tarpit"))
                .and_then(|n| n.parse::<usize>().ok());
            if let Some(counter) = hook.and_then(|h| shared.requests.get(h)) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        } else if line.len() > 64 * 1024 {
            counted = true;
        }
    }
}
