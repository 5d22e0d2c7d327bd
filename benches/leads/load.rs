//! Filling the tenant: the bulk import, the single creates at 64 clients, then the PATCHes that
//! give a fifth of the leads another status. Each returns its row of the table.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{Client, Key};

use crate::common;
use crate::data;
use crate::table::{Row, Target, thousands};

pub const BULK_ROWS: usize = 500;
pub const BULK_CLIENTS: usize = 4;
pub const CLIENTS: usize = 64;
pub const CREATES: usize = 20_000;

/// A lead to PATCH after the import: its id and the status it gets.
pub struct Pending {
    pub id: String,
    pub status: &'static str,
}

/// `clients` threads taking job numbers `0..jobs` in turn; `run` does one and returns what it
/// produced. The latency of each job, the outputs, and the wall time.
fn closed_loop<T: Send>(
    clients: usize,
    jobs: usize,
    run: impl Fn(usize) -> Vec<T> + Sync,
) -> (Vec<Duration>, Vec<T>, Duration) {
    let next = AtomicUsize::new(0);
    let out = Mutex::new((Vec::with_capacity(jobs), Vec::new()));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                let (mut times, mut produced) = (Vec::new(), Vec::new());
                loop {
                    let job = next.fetch_add(1, Ordering::Relaxed);
                    if job >= jobs {
                        break;
                    }
                    let t = Instant::now();
                    produced.extend(run(job));
                    times.push(t.elapsed());
                }
                let mut out = out.lock().expect("no client panicked");
                out.0.extend(times);
                out.1.extend(produced);
            });
        }
    });
    let elapsed = started.elapsed();
    let (times, produced) = out.into_inner().expect("no client panicked");
    (times, produced, elapsed)
}

fn write_row(name: String, mut times: Vec<Duration>, figure: String) -> Row {
    let spread = (!times.is_empty()).then(|| common::percentiles(&mut times));
    Row {
        name,
        requests: times.len(),
        p50: spread.map(|s| s.0),
        p99: spread.map(|s| s.1),
        figure,
        target: Target::Report,
    }
}

/// Leads `0..total` in requests of [`BULK_ROWS`] from [`BULK_CLIENTS`] clients; returns the row
/// and the leads whose status is not `active`.
pub fn bulk_import(
    app: &Client,
    key: &Key,
    total: usize,
    owners: &[String],
) -> (Row, Vec<Pending>) {
    let requests = total.div_ceil(BULK_ROWS);
    let (times, pending, elapsed) = closed_loop(BULK_CLIENTS, requests, |r| {
        let from = r * BULK_ROWS;
        let indexes = from..(from + BULK_ROWS).min(total);
        let rows: Vec<Value> = indexes
            .clone()
            .map(|i| {
                let mut row = data::lead(i as u64, owners);
                row["row_ref"] = i.to_string().into();
                row
            })
            .collect();
        let body = app.bulk(key, &json!({ "leads": rows })).expect(200);
        assert_eq!(body["summary"]["created"], rows.len(), "{body}");
        indexes
            .zip(body["results"].as_array().expect("results"))
            .filter_map(|(i, result)| {
                let status = data::status(i as u64);
                (status != "active").then(|| Pending {
                    id: result["lead_id"].as_str().expect("lead_id").to_string(),
                    status,
                })
            })
            .collect()
    });
    let rate = total as f64 / elapsed.as_secs_f64();
    let row = write_row(
        format!("write/bulk import ({BULK_ROWS} rows/request, {BULK_CLIENTS} clients)"),
        times,
        format!(
            "{} leads/s, {:.1} s",
            thousands(rate as u64),
            elapsed.as_secs_f64()
        ),
    );
    (row, pending)
}

/// Rounds the single creates are split into (alternating between servers when comparing).
pub const CREATE_ROUNDS: usize = 4;

/// The single creates' latencies and time so far.
#[derive(Default)]
pub struct Creates {
    times: Vec<Duration>,
    elapsed: Duration,
    done: usize,
}

impl Creates {
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }

    pub fn row(self) -> Row {
        let rate = self.rate();
        write_row(
            format!("write/single create ({CLIENTS} clients)"),
            self.times,
            format!("{} creates/s", thousands(rate as u64)),
        )
    }
}

/// Round `round` of [`CREATE_ROUNDS`] of [`CREATES`] single creates (leads `from..`) from
/// [`CLIENTS`] concurrent clients.
pub fn single_creates(
    app: &Client,
    key: &Key,
    from: usize,
    owners: &[String],
    round: usize,
    into: &mut Creates,
) {
    let per_round = CREATES / CREATE_ROUNDS;
    let from = from + round * per_round;
    let (times, _, elapsed) = closed_loop(CLIENTS, per_round, |j| {
        let body = data::lead((from + j) as u64, owners);
        let created = app.post_lead(key, &body).expect(201);
        assert_eq!(created["merged"], false, "{created}");
        Vec::<()>::new()
    });
    into.times.extend(times);
    into.elapsed += elapsed;
    into.done += per_round;
}

/// One PATCH per pending lead, from [`CLIENTS`] concurrent clients.
pub fn patch_statuses(app: &Client, key: &Key, pending: &[Pending]) -> Row {
    let (times, _, elapsed) = closed_loop(CLIENTS, pending.len(), |j| {
        let lead = &pending[j];
        app.patch_lead(key, &lead.id, &json!({ "status": lead.status }))
            .expect(200);
        Vec::<()>::new()
    });
    write_row(
        format!("write/PATCH status ({CLIENTS} clients)"),
        times,
        format!(
            "{} patches/s",
            thousands((pending.len() as f64 / elapsed.as_secs_f64()) as u64)
        ),
    )
}
