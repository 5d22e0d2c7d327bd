//! What the store counts for `/metrics` (spec §14): the writer's batch sizes and commit
//! latency, and the delivery attempts it records, by outcome and latency. Plain atomics: the
//! writer and the recorder add without a lock, a scrape reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::domain::retry::AttemptResult;

/// A histogram of fixed upper bounds; `observe` is lock-free.
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    /// The sum, in millionths of the unit.
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * 1e6).max(0.0) as u64, Ordering::Relaxed);
    }

    /// `(upper bound, cumulative count)` per bucket, the count and the sum.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut running = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.counts)
            .map(|(b, c)| {
                running += c.load(Ordering::Relaxed);
                (*b, running)
            })
            .collect();
        // `observe` adds to a bucket before the count: a scrape between the two must still
        // show a count no smaller than the buckets.
        let count = self.count.load(Ordering::Relaxed).max(running);
        (
            buckets,
            count,
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}

/// An attempt's outcome as `/metrics` labels it.
pub const OUTCOMES: [&str; 3] = ["delivered", "rejected", "failed"];

pub struct Telemetry {
    pub batch_size: Histogram,
    pub commit_seconds: Histogram,
    pub attempt_seconds: Histogram,
    /// By [`OUTCOMES`]: a 2xx answer, another answer, no answer (timeout, connect, TLS, DNS,
    /// blocked address, redirect).
    attempts: [AtomicU64; 3],
}

const BATCH_BOUNDS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
const SECONDS_BOUNDS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

impl Default for Telemetry {
    fn default() -> Telemetry {
        Telemetry {
            batch_size: Histogram::new(&BATCH_BOUNDS),
            commit_seconds: Histogram::new(&SECONDS_BOUNDS),
            attempt_seconds: Histogram::new(&SECONDS_BOUNDS),
            attempts: Default::default(),
        }
    }
}

impl Telemetry {
    pub fn batch(&self, jobs: usize, commit: Duration) {
        self.batch_size.observe(jobs as f64);
        self.commit_seconds.observe(commit.as_secs_f64());
    }

    pub fn attempt(&self, result: &AttemptResult) {
        let outcome = match (result.error, result.response_status) {
            (None, _) => 0,
            (Some(_), Some(_)) => 1,
            (Some(_), None) => 2,
        };
        self.attempts[outcome].fetch_add(1, Ordering::Relaxed);
        self.attempt_seconds
            .observe(f64::from(result.latency_ms) / 1000.0);
    }

    /// Attempts recorded since start, by [`OUTCOMES`].
    pub fn attempts(&self) -> [u64; 3] {
        [0, 1, 2].map(|i| self.attempts[i].load(Ordering::Relaxed))
    }
}
