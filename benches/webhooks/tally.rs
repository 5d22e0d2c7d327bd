//! The arrivals of one scenario, counted: unique deliveries against the expected number,
//! duplicates (at least once allows them), the rates inside and after the load window, and the
//! create-to-receipt latency.

use crate::sink::Arrival;

/// p50, p99 and max of a sample, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spread {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    /// From samples in microseconds (sorted here); `None` when there are none.
    pub fn of_us(samples: &mut [u64]) -> Option<Spread> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[i] as f64 / 1000.0
        };
        Some(Spread {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

/// Every delivery received so far, each lead-and-webhook once (the first receipt), and how
/// many more receipts there were.
#[derive(Default)]
pub struct Tally {
    arrivals: Vec<Arrival>,
    /// Whether `arrivals` may hold a repeat since the last [`Tally::dedup`].
    unsorted: bool,
    pub duplicates: u64,
}

impl Tally {
    pub fn add(&mut self, batch: Vec<Arrival>) {
        if !batch.is_empty() {
            self.arrivals.extend(batch);
            self.unsorted = true;
        }
    }

    /// Keeps each (webhook, stamp) once, at its first receipt; counts the rest as duplicates.
    fn dedup(&mut self) {
        if !self.unsorted {
            return;
        }
        self.arrivals.sort_unstable_by_key(|a| (a.hook, a.t, a.at));
        let before = self.arrivals.len();
        self.arrivals.dedup_by_key(|a| (a.hook, a.t));
        self.duplicates += (before - self.arrivals.len()) as u64;
        self.unsorted = false;
    }

    /// Whether `expected` different deliveries have arrived. Cheap until there are enough
    /// receipts to be sure of nothing.
    pub fn has(&mut self, expected: usize) -> bool {
        if self.arrivals.len() < expected {
            return false;
        }
        self.dedup();
        self.arrivals.len() >= expected
    }

    /// The figures, with the load window `[start, end]` in microseconds on the clock's scale.
    pub fn summary(mut self, start: u64, end: u64) -> Summary {
        self.dedup();
        let during = self
            .arrivals
            .iter()
            .filter(|a| a.at >= start && a.at <= end)
            .count();
        let after = self.arrivals.iter().filter(|a| a.at > end).count();
        let last = self.arrivals.iter().map(|a| a.at).max();
        let mut e2e: Vec<u64> = self
            .arrivals
            .iter()
            .map(|a| a.at.saturating_sub(a.t))
            .collect();
        Summary {
            unique: self.arrivals.len(),
            duplicates: self.duplicates,
            during,
            after,
            last,
            e2e: Spread::of_us(&mut e2e),
        }
    }
}

pub struct Summary {
    /// Different deliveries received.
    pub unique: usize,
    pub duplicates: u64,
    /// Of `unique`, how many arrived inside the load window, and after it.
    pub during: usize,
    pub after: usize,
    /// When the last one arrived.
    pub last: Option<u64>,
    pub e2e: Option<Spread>,
}
