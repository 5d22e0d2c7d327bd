//! Shared by the benchmarks: the test kit's server, set up for measuring, percentile
//! arithmetic and the tables' number formats.

// Each benchmark uses only part of this.
#![allow(dead_code)]

use std::time::Duration;

use leadbase::config::Config;
use testkit::TestApp;

/// Keeps up to 256 idle connections per host for the concurrent clients, with a longer timeout
/// for the full-scan queries.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .max_idle_connections_per_host(256)
        .build()
        .into()
}

/// An in-process server on a temporary data file, with limits out of reach and the default
/// worker count (the tests pin it to 2), then `adjust`.
pub fn start(adjust: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(|c| {
        c.server.workers = Config::default().server.workers;
        c.limits.per_minute = u32::MAX / 2;
        c.limits.per_hour = u32::MAX / 2;
        c.limits.bulk_per_minute = u32::MAX / 2;
        adjust(c);
    })
    .with_agent(agent())
}

/// (p50, p99) in milliseconds.
pub fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

/// Resident memory of this process, in MiB.
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds, with the precision that means something at their size.
pub fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 1000.0 {
        format!("{v:.1}")
    } else {
        thousands(v.round() as u64)
    }
}
