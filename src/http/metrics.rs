//! Prometheus text metrics: requests by route, method and status, and a latency histogram.
//! Small enough that a registry crate would add more than it saves.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use parking_lot::Mutex;

use crate::store::delivery_queue::QueueGauges;
use crate::store::telemetry::{Histogram as StoreHistogram, OUTCOMES, Telemetry};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

/// Label values come from route patterns and methods, but escape anyway.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Every series lives as long as the process, so callers pass bounded labels only: a route
    /// pattern (or `unmatched`), a method HTTP defines (or `other`), a status leadbase answers.
    pub fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        let mut latency = self.latency.lock();
        let histogram = latency.entry(route.to_string()).or_default();
        for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The exposition text. `extra` lines (gauges owned elsewhere) are appended as given.
    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP leadbase_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE leadbase_http_requests_total counter\n");
        for ((route, method, status), n) in self.requests.lock().iter() {
            let _ = writeln!(
                out,
                "leadbase_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
        out.push_str(
            "# HELP leadbase_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE leadbase_http_request_duration_seconds histogram\n");
        for (route, h) in self.latency.lock().iter() {
            let route = escape(route);
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "leadbase_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "leadbase_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "leadbase_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "leadbase_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        for (name, help, value) in extra {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

/// A store histogram in exposition text.
fn histogram(out: &mut String, name: &str, help: &str, h: &StoreHistogram) {
    let (buckets, count, sum) = h.snapshot();
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (bound, n) in buckets {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {count}");
}

/// The store's part of `/metrics` (spec §14): deliveries owed by state, the oldest due
/// delivery's age, attempts by outcome and their latency, the writer's batches and commits,
/// the data file's size.
pub fn render_store(telemetry: &Telemetry, queue: Option<&QueueGauges>, file_bytes: u64) -> String {
    let mut out = String::new();
    if let Some(queue) = queue {
        queue_gauges(&mut out, queue);
    }
    attempts_and_writer(&mut out, telemetry);
    let _ = writeln!(
        out,
        "# HELP leadbase_data_file_bytes Size of the data file.\n# TYPE leadbase_data_file_bytes gauge\nleadbase_data_file_bytes {file_bytes}"
    );
    out
}

fn queue_gauges(out: &mut String, queue: &QueueGauges) {
    out.push_str("# HELP leadbase_deliveries Deliveries owed, by state: due (waiting for an attempt or leased to one) and held (their webhook is off).\n# TYPE leadbase_deliveries gauge\n");
    let _ = writeln!(out, "leadbase_deliveries{{status=\"due\"}} {}", queue.due);
    let _ = writeln!(out, "leadbase_deliveries{{status=\"held\"}} {}", queue.held);
    let _ = writeln!(
        out,
        "# HELP leadbase_delivery_oldest_due_seconds How long the most overdue delivery has been due (0 when none is).\n# TYPE leadbase_delivery_oldest_due_seconds gauge\nleadbase_delivery_oldest_due_seconds {}",
        queue.oldest_due_seconds
    );
}

fn attempts_and_writer(out: &mut String, telemetry: &Telemetry) {
    out.push_str("# HELP leadbase_attempts_total Delivery attempts recorded since start, by outcome: delivered (2xx), rejected (another answer), failed (no answer).\n# TYPE leadbase_attempts_total counter\n");
    for (outcome, n) in OUTCOMES.iter().zip(telemetry.attempts()) {
        let _ = writeln!(out, "leadbase_attempts_total{{outcome=\"{outcome}\"}} {n}");
    }
    histogram(
        out,
        "leadbase_attempt_duration_seconds",
        "Delivery attempt latency, request to answer.",
        &telemetry.attempt_seconds,
    );
    histogram(
        out,
        "leadbase_writer_batch_size",
        "Writes committed together in one transaction.",
        &telemetry.batch_size,
    );
    histogram(
        out,
        "leadbase_commit_duration_seconds",
        "The writer's durable commits.",
        &telemetry.commit_seconds,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("/healthz", "GET", 200, Duration::from_millis(3));
        m.observe("/healthz", "GET", 200, Duration::from_millis(30));
        let text = m.render(&[("leadbase_up", "Always 1.", 1.0)]);
        assert!(text.contains(
            "leadbase_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "leadbase_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "leadbase_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.05\"} 2"
        ));
        assert!(
            text.contains("leadbase_http_request_duration_seconds_count{route=\"/healthz\"} 2")
        );
        assert!(text.contains("leadbase_up 1"));
    }
}
