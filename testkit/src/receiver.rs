//! A real HTTPS webhook receiver for the delivery tests, on 127.0.0.1 only.
//!
//! At start it makes a throw-away CA (written as PEM to a temporary file, for
//! `webhooks.extra_ca_file`) and a leaf certificate for `127.0.0.1`, `localhost` and
//! `hook.test`, signed by that CA. It serves HTTP/1.1 over rustls with keep-alive, one thread per
//! connection, answers each path as the test programmed it, and records every request.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;

/// How the receiver answers a request.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Answer with this status, these headers and this body.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Wait this long (the request is recorded first), then behave as the inner one.
    Sleep(Duration, Box<Behaviour>),
    /// Close the connection without answering.
    Close,
}

impl Behaviour {
    pub fn status(status: u16) -> Behaviour {
        Behaviour::Respond {
            status,
            headers: Vec::new(),
            body: b"ok".to_vec(),
        }
    }

    pub fn header(self, name: &str, value: &str) -> Behaviour {
        match self {
            Behaviour::Respond {
                status,
                mut headers,
                body,
            } => {
                headers.push((name.into(), value.into()));
                Behaviour::Respond {
                    status,
                    headers,
                    body,
                }
            }
            Behaviour::Sleep(delay, inner) => {
                Behaviour::Sleep(delay, Box::new(inner.header(name, value)))
            }
            Behaviour::Close => panic!("a closed connection carries no header"),
        }
    }

    pub fn body(self, body: impl Into<Vec<u8>>) -> Behaviour {
        match self {
            Behaviour::Respond {
                status, headers, ..
            } => Behaviour::Respond {
                status,
                headers,
                body: body.into(),
            },
            Behaviour::Sleep(delay, inner) => Behaviour::Sleep(delay, Box::new(inner.body(body))),
            Behaviour::Close => panic!("a closed connection carries no body"),
        }
    }

    /// This behaviour after sleeping `ms` milliseconds.
    pub fn after_ms(self, ms: u64) -> Behaviour {
        Behaviour::Sleep(Duration::from_millis(ms), Box::new(self))
    }
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lower-cased names; a repeated header's values joined with ", ".
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// When the whole request had been read.
    pub at: Instant,
    /// The same moment as Unix milliseconds.
    pub unix_ms: i64,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// A header that must be there.
    pub fn must(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no `{name}` header in {:?}", self.headers))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// `X-Mega-Delivery`.
    pub fn delivery_id(&self) -> &str {
        self.must("x-mega-delivery")
    }
}

#[derive(Default)]
struct State {
    log: Vec<Recorded>,
    /// Per path: answers taken in order; the last one repeats.
    scripts: HashMap<String, VecDeque<Behaviour>>,
    /// Per path: requests read and not yet answered, and the most there ever were at once.
    open: HashMap<String, (usize, usize)>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    arrived: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Receiver {
    addr: SocketAddr,
    ca_path: PathBuf,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn make_pki() -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "leadbase test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf_params = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "hook.test".to_string(),
    ])
    .expect("leaf params");
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("leaf certificate");

    Pki {
        ca_pem: ca_cert.pem(),
        chain: vec![
            CertificateDer::from(leaf.der().to_vec()),
            CertificateDer::from(ca_cert.der().to_vec()),
        ],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Receiver {
    /// Starts on 127.0.0.1 at a free port. Every path answers 200 until told otherwise.
    pub fn start() -> Receiver {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = make_pki();
        let ca_path = dir.path().join("receiver-ca.pem");
        std::fs::write(&ca_path, &pki.ca_pem).expect("write the CA");
        let tls = Arc::new(
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(pki.chain, pki.key)
                .expect("server certificate"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("receiver-accept".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(tcp) = conn else { continue };
                        let (tls, shared, stop) =
                            (Arc::clone(&tls), Arc::clone(&shared), Arc::clone(&stop));
                        let _ = std::thread::Builder::new()
                            .name("receiver-conn".into())
                            .spawn(move || serve_connection(tcp, tls, &shared, &stop));
                    }
                })
                .expect("spawn the receiver")
        };
        Receiver {
            addr,
            ca_path,
            shared,
            stop,
            accept: Some(accept),
            _dir: dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The PEM file of the CA that signed the receiver's certificate.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// `https://127.0.0.1:<port><path>`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port())
    }

    /// From now on `path` answers with `behaviour`.
    pub fn set(&self, path: &str, behaviour: Behaviour) {
        self.script(path, vec![behaviour]);
    }

    /// From now on `path` answers with these in order, the last one repeating.
    pub fn script(&self, path: &str, behaviours: Vec<Behaviour>) {
        assert!(!behaviours.is_empty(), "a script needs at least one answer");
        self.shared
            .lock()
            .scripts
            .insert(path.to_string(), behaviours.into());
    }

    /// Every request to `path` so far, in arrival order.
    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Takes every request recorded so far, to any path, out of the log, in arrival order: a
    /// benchmark's way to read arrivals as they come while the log stays small. Not for use
    /// while a [`Receiver::wait_for`] on the same receiver is waiting.
    pub fn take_all(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.shared.lock().log)
    }

    /// The most requests to `path` that were open at once (read, not yet answered).
    pub fn max_open(&self, path: &str) -> usize {
        self.shared.lock().open.get(path).map_or(0, |o| o.1)
    }

    pub fn count(&self, path: &str) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// Blocks until at least `n` requests to `path` have arrived and returns them all; panics
    /// with what did arrive when `timeout` runs out first.
    pub fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        // The log only grows: each wake-up counts just what arrived since the last one, and the
        // requests are cloned once, when there are enough.
        let (mut scanned, mut got) = (0, 0);
        loop {
            got += state.log[scanned..]
                .iter()
                .filter(|r| r.path == path)
                .count();
            scanned = state.log.len();
            if got >= n {
                return state
                    .log
                    .iter()
                    .filter(|r| r.path == path)
                    .cloned()
                    .collect();
            }
            let now = Instant::now();
            if now >= deadline {
                let seen: Vec<String> = state
                    .log
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} (event {:?}, delivery {:?})",
                            r.method,
                            r.path,
                            r.header("x-mega-event"),
                            r.header("x-mega-delivery")
                        )
                    })
                    .collect();
                panic!(
                    "waited {timeout:?} for {n} request(s) to {path}, got {got}; every request: {seen:#?}"
                );
            }
            state = self
                .shared
                .arrived
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop; connection threads end at their peer's EOF or read timeout.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// A request's method, target, headers and body.
struct Parsed {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn serve_connection(tcp: TcpStream, tls: Arc<ServerConfig>, shared: &Shared, stop: &AtomicBool) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(conn) = ServerConnection::new(tls) else {
        return;
    };
    let mut stream = StreamOwned::new(conn, tcp);
    let mut buf = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let Some(request) = read_request(&mut stream, &mut buf) else {
            break;
        };
        let wants_close = request
            .headers
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let behaviour = {
            let mut state = shared.lock();
            let behaviour = match state.scripts.get_mut(&request.path) {
                Some(script) if script.len() > 1 => script.pop_front().expect("not empty"),
                Some(script) => script.front().cloned().expect("not empty"),
                None => Behaviour::status(200),
            };
            let open = state.open.entry(request.path.clone()).or_default();
            open.0 += 1;
            open.1 = open.1.max(open.0);
            state.log.push(Recorded {
                method: request.method,
                path: request.path.clone(),
                headers: request.headers,
                body: request.body,
                at: Instant::now(),
                unix_ms: unix_ms(),
            });
            shared.arrived.notify_all();
            behaviour
        };
        // The wait first; the request stops counting as open before its answer is written, so
        // a sender that starts its next request on hearing this one is never counted twice.
        let mut behaviour = behaviour;
        while let Behaviour::Sleep(delay, inner) = behaviour {
            std::thread::sleep(delay);
            behaviour = *inner;
        }
        if let Some(open) = shared.lock().open.get_mut(&request.path) {
            open.0 = open.0.saturating_sub(1);
        }
        let answered = answer(&mut stream, behaviour, wants_close);
        if !answered || wants_close {
            break;
        }
    }
    let _ = stream.sock.shutdown(Shutdown::Both);
}

/// Answers; false when the connection must close.
fn answer(
    stream: &mut StreamOwned<ServerConnection, TcpStream>,
    behaviour: Behaviour,
    close: bool,
) -> bool {
    match behaviour {
        Behaviour::Close => false,
        Behaviour::Sleep(delay, inner) => {
            std::thread::sleep(delay);
            answer(stream, *inner, close)
        }
        Behaviour::Respond {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\n",
                reason(status),
                body.len()
            );
            for (name, value) in &headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            if close {
                head.push_str("connection: close\r\n");
            }
            head.push_str("\r\n");
            let mut out = head.into_bytes();
            out.extend_from_slice(&body);
            stream.write_all(&out).is_ok() && stream.flush().is_ok()
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads more bytes into `buf`; None at EOF or on error.
fn read_more(stream: &mut impl Read, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

/// Takes the first `n` bytes of the stream (after what `buf` already holds).
fn take(stream: &mut impl Read, buf: &mut Vec<u8>, n: usize) -> Option<Vec<u8>> {
    while buf.len() < n {
        read_more(stream, buf)?;
    }
    Some(buf.drain(..n).collect())
}

/// Takes one CRLF-terminated line, without the CRLF.
fn take_line(stream: &mut impl Read, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = find(buf, b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 2);
            return Some(line);
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        read_more(stream, buf)?;
    }
}

/// Reads one request; `buf` keeps whatever arrived after it (the next request's start).
fn read_request(stream: &mut impl Read, buf: &mut Vec<u8>) -> Option<Parsed> {
    let head_end = loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            break end;
        }
        if buf.len() > 1024 * 1024 {
            return None;
        }
        read_more(stream, buf)?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?;
    let path = target.split('?').next().unwrap_or(target).to_string();
    let mut headers: HashMap<String, String> = HashMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        headers
            .entry(name.trim().to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.to_string());
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            let size_line = take_line(stream, buf)?;
            let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !take_line(stream, buf)?.is_empty() {}
                break body;
            }
            body.extend(take(stream, buf, size)?);
            take(stream, buf, 2)?;
        }
    } else {
        let length = match headers.get("content-length") {
            Some(v) => v.trim().parse::<usize>().ok()?,
            None => 0,
        };
        take(stream, buf, length)?
    };
    Some(Parsed {
        method,
        path,
        headers,
        body,
    })
}
