//! The create load: `POST /api/agents/crm/leads` with a small body whose custom field `t` is the
//! send time, in a closed loop (N clients, each sending its next create when the last one was
//! answered) or an open loop (a fixed schedule of send times, kept by a pool of threads that
//! grows while it falls behind). Each client thread has its own keep-alive agent.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::Scope;
use std::time::{Duration, Instant};

use testkit::{Key, LEADS};

use crate::clock::Stamps;

/// At most this many open-loop threads.
const OPEN_MAX_THREADS: usize = 256;
/// The open-loop pool starts this big.
const OPEN_FIRST_THREADS: usize = 8;
/// An open-loop send that leaves later than this after its slot is counted late.
const LATE: Duration = Duration::from_millis(5);

/// The load, as a scenario asks for it.
#[derive(Clone, Copy, Debug)]
pub enum Load {
    /// `clients` threads, each sending one create after another, for `seconds`.
    Closed { clients: usize, seconds: u64 },
    /// `rate` creates a second on a fixed schedule, for `seconds`.
    Open { rate: u64, seconds: u64 },
}

impl Load {
    pub fn name(self) -> String {
        match self {
            Load::Closed { clients, .. } => format!("closed-c{clients}"),
            Load::Open { rate, .. } => format!("open-{rate}"),
        }
    }

    pub fn run(self, target: &Target) -> Report {
        match self {
            Load::Closed { clients, seconds } => {
                closed(target, clients, Duration::from_secs(seconds))
            }
            Load::Open { rate, seconds } => open(target, rate, Duration::from_secs(seconds)),
        }
    }
}

/// Where the creates go, and as whom.
pub struct Target {
    url: String,
    authorization: String,
    tenant: String,
    /// Numbers the leads, so that each has an email of its own (no merge).
    next_lead: AtomicU64,
    stamps: Stamps,
}

impl Target {
    pub fn new(base: &str, key: &Key) -> Target {
        Target {
            url: format!("{base}{LEADS}"),
            authorization: format!("Bearer {}", key.token),
            tenant: key.tenant.clone(),
            next_lead: AtomicU64::new(0),
            stamps: Stamps::default(),
        }
    }
}

/// What one load run did.
#[derive(Debug)]
pub struct Report {
    /// When the first create could leave (the start of the load window).
    pub started: Instant,
    /// When the last create had been answered (the end of the load window).
    pub ended: Instant,
    /// Creates answered 201.
    pub ok: u64,
    /// Creates answered otherwise, or not at all.
    pub errors: u64,
    /// Open loop: sends that left more than 5 ms after their slot.
    pub late: Option<u64>,
    /// The API latency of each 201, in microseconds.
    pub latencies_us: Vec<u64>,
}

/// One thread's part of a report.
#[derive(Default)]
struct Part {
    ok: u64,
    errors: u64,
    late: u64,
    latencies_us: Vec<u64>,
}

impl Part {
    fn create(&mut self, agent: &ureq::Agent, target: &Target) {
        let n = target.next_lead.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let t = target.stamps.next();
        let body = format!(
            r#"{{"contact_name":"Bench {n}","contact_email":"b{n}@bench.example","custom_fields":{{"t":{t}}}}}"#
        );
        let answered = agent
            .post(&target.url)
            .header("authorization", &target.authorization)
            .header("x-customer-id", &target.tenant)
            .content_type("application/json")
            .send(body.as_bytes())
            .map(|mut response| {
                // Read to the end, so that the connection goes back to the pool.
                let _ = response.body_mut().read_to_vec();
                response.status().as_u16()
            });
        if matches!(answered, Ok(201)) {
            self.ok += 1;
            self.latencies_us.push(sent.elapsed().as_micros() as u64);
        } else {
            self.errors += 1;
        }
    }
}

fn report(started: Instant, ended: Instant, parts: Vec<Part>, open: bool) -> Report {
    let mut report = Report {
        started,
        ended,
        ok: 0,
        errors: 0,
        late: open.then_some(0),
        latencies_us: Vec::new(),
    };
    for part in parts {
        report.ok += part.ok;
        report.errors += part.errors;
        if let Some(late) = &mut report.late {
            *late += part.late;
        }
        report.latencies_us.extend(part.latencies_us);
    }
    report
}

/// One keep-alive connection's agent. Per-phase timeouts and no overall one: with an overall
/// timeout ureq resolves even `127.0.0.1` on a thread of its own, once per request.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_send_body(Some(Duration::from_secs(60)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn closed(target: &Target, clients: usize, duration: Duration) -> Report {
    let deadline = Instant::now() + duration;
    clients_until(target, clients, || Instant::now() < deadline)
}

/// Exactly `total` creates (answered or not) from `clients` threads, each sending its next as soon
/// as the last was answered: a backlog, not a measurement.
pub fn count(target: &Target, clients: usize, total: u64) -> Report {
    let taken = AtomicU64::new(0);
    clients_until(target, clients, || {
        taken.fetch_add(1, Ordering::Relaxed) < total
    })
}

/// `clients` threads, each with its own agent, sending creates one after another for as long as
/// `more` says.
fn clients_until(target: &Target, clients: usize, more: impl Fn() -> bool + Sync) -> Report {
    let started = Instant::now();
    let parts = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let more = &more;
                scope.spawn(move || {
                    let agent = agent();
                    let mut part = Part::default();
                    while more() {
                        part.create(&agent, target);
                    }
                    part
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a load thread"))
            .collect()
    });
    report(started, Instant::now(), parts, false)
}

/// The open loop's schedule and its pool.
struct Schedule<'a> {
    target: &'a Target,
    start: Instant,
    interval_ns: u64,
    slots: u64,
    next_slot: AtomicU64,
    threads: AtomicUsize,
    parts: Mutex<Vec<Part>>,
}

impl Schedule<'_> {
    /// Takes one more thread into the pool, unless it is full.
    fn grow(&self) -> bool {
        self.threads
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < OPEN_MAX_THREADS).then_some(n + 1)
            })
            .is_ok()
    }
}

/// Takes the next free slot, waits for its time and sends; when its slot is already more than a
/// millisecond overdue (every thread is busy), adds a thread to the pool first.
fn open_worker<'scope>(scope: &'scope Scope<'scope, '_>, schedule: &'scope Schedule<'scope>) {
    let agent = agent();
    let mut part = Part::default();
    loop {
        let slot = schedule.next_slot.fetch_add(1, Ordering::Relaxed);
        if slot >= schedule.slots {
            break;
        }
        let due = schedule.start + Duration::from_nanos(slot * schedule.interval_ns);
        let now = Instant::now();
        if now < due {
            std::thread::sleep(due - now);
        } else if now - due > Duration::from_millis(1) && schedule.grow() {
            scope.spawn(move || open_worker(scope, schedule));
        }
        if Instant::now().saturating_duration_since(due) > LATE {
            part.late += 1;
        }
        part.create(&agent, schedule.target);
    }
    schedule
        .parts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(part);
}

fn open(target: &Target, rate: u64, duration: Duration) -> Report {
    let schedule = Schedule {
        target,
        // A moment for the first threads to be up.
        start: Instant::now() + Duration::from_millis(20),
        interval_ns: 1_000_000_000 / rate,
        slots: rate * duration.as_secs(),
        next_slot: AtomicU64::new(0),
        threads: AtomicUsize::new(OPEN_FIRST_THREADS),
        parts: Mutex::new(Vec::new()),
    };
    std::thread::scope(|scope| {
        let schedule = &schedule;
        for _ in 0..OPEN_FIRST_THREADS {
            scope.spawn(move || open_worker(scope, schedule));
        }
    });
    let ended = Instant::now();
    let parts = schedule
        .parts
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    report(schedule.start, ended, parts, true)
}
