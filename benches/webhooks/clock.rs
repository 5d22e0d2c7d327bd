//! The one clock of the benchmark: microseconds since the UNIX epoch, read as a wall-clock
//! anchor taken once plus a monotonic offset, so that the stamp in a lead (`t`), the sinks'
//! receipt times and the load windows are all on one scale and never step backwards.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();

fn anchor() -> (Instant, u64) {
    *ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970");
        (Instant::now(), wall.as_micros() as u64)
    })
}

/// Fixes the anchor; call first thing, before any instant the benchmark converts is taken.
pub fn init() {
    anchor();
}

/// `at` as microseconds since the UNIX epoch.
pub fn unix_us(at: Instant) -> u64 {
    let (instant, wall) = anchor();
    wall + at.saturating_duration_since(instant).as_micros() as u64
}

/// Now, as microseconds since the UNIX epoch.
pub fn now_us() -> u64 {
    unix_us(Instant::now())
}

/// Hands out send stamps: now, in microseconds, but never the same value twice, so that a
/// stamp also names its lead and a second receipt of it is recognised as a duplicate.
#[derive(Default)]
pub struct Stamps {
    last: AtomicU64,
}

impl Stamps {
    pub fn next(&self) -> u64 {
        let now = now_us();
        let previous = self
            .last
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .expect("the closure always returns Some");
        now.max(previous + 1)
    }
}
