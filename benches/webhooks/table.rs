//! The printed result: one aligned row per scenario, and whether the targets held for
//! the plain-sink, one-webhook rows and the isolation row.

pub use crate::common::{ms, thousands};
use crate::isolation;
use crate::tally::Spread;

/// One scenario's figures.
pub struct Row {
    pub name: String,
    /// Creates answered 201 per second of the load window.
    pub creates_per_s: f64,
    pub errors: u64,
    pub late: Option<u64>,
    /// API latency of the creates.
    pub api: Option<Spread>,
    /// Different deliveries received inside the load window, per second of it.
    pub during_per_s: f64,
    /// Those received after it, per second from its end to the last receipt.
    pub drain_per_s: Option<f64>,
    /// From the end of the load to the last receipt.
    pub drain_s: f64,
    /// Whether the drain stopped (at its cap, or because the server exited) before everything
    /// arrived.
    pub capped: bool,
    /// From the end of the load to when the benchmark stopped waiting.
    pub drain_wall_s: f64,
    /// Create-to-receipt latency of each delivery (its first receipt).
    pub e2e: Option<Spread>,
    pub delivered: usize,
    pub expected: usize,
    pub duplicates: u64,
    /// Server user + system CPU over load and drain, per delivered message.
    pub cpu_ms_per_msg: Option<f64>,
    /// `VmRSS` after start and setup, and `VmHWM` at the end, in MiB.
    pub rss_idle: f64,
    pub rss_peak: f64,
    pub note: Option<String>,
}

/// A rate or a count, rounded.
fn whole(v: f64) -> String {
    thousands(v.round() as u64)
}

fn mib(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.1}")
    }
}

const DASH: &str = "-";

const HEADER: [&str; 16] = [
    "scenario",
    "creates/s",
    "err",
    "late",
    "API p50/p99 ms",
    "deliv/s load",
    "deliv/s drain",
    "drain s",
    "e2e p50 ms",
    "e2e p99 ms",
    "e2e max ms",
    "delivered",
    "dup",
    "CPU ms/msg",
    "RSS idle MiB",
    "RSS peak MiB",
];

impl Row {
    fn cells(&self) -> Vec<String> {
        let e2e = |f: fn(&Spread) -> f64| self.e2e.as_ref().map_or(DASH.into(), |s| ms(f(s)));
        vec![
            self.name.clone(),
            whole(self.creates_per_s),
            thousands(self.errors),
            self.late.map_or(DASH.into(), thousands),
            self.api
                .as_ref()
                .map_or(DASH.into(), |s| format!("{}/{}", ms(s.p50), ms(s.p99))),
            whole(self.during_per_s),
            self.drain_per_s.map_or(DASH.into(), whole),
            if self.capped {
                format!("{:.0}+", self.drain_wall_s)
            } else {
                format!("{:.1}", self.drain_s)
            },
            e2e(|s| s.p50),
            e2e(|s| s.p99),
            e2e(|s| s.max),
            if self.complete() {
                format!("yes {}", thousands(self.expected as u64))
            } else {
                format!(
                    "NO {}/{}",
                    thousands(self.delivered as u64),
                    thousands(self.expected as u64)
                )
            },
            thousands(self.duplicates),
            self.cpu_ms_per_msg
                .filter(|v| v.is_finite())
                .map_or(DASH.into(), |v| format!("{v:.3}")),
            mib(self.rss_idle),
            mib(self.rss_peak),
        ]
    }

    pub fn complete(&self) -> bool {
        self.delivered >= self.expected
    }
}

/// The table: the scenario name left-aligned, figures right-aligned; then the rows' notes.
pub fn print(rows: &[Row]) {
    let mut lines: Vec<Vec<String>> = vec![HEADER.iter().map(|h| h.to_string()).collect()];
    lines.extend(rows.iter().map(Row::cells));
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in &lines {
        let mut out = String::new();
        for (c, cell) in line.iter().enumerate() {
            if c == 0 {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                out.push_str(&format!("  {cell:>w$}", w = widths[c]));
            }
        }
        println!("{}", out.trim_end());
    }
    for row in rows {
        if let Some(note) = &row.note {
            println!("note, {}: {note}", row.name);
        }
    }
}

/// One target: what it asks, what was measured, whether it held.
struct Check {
    what: String,
    measured: String,
    held: bool,
}

/// Prints whether each of the targets held (plain sink, one webhook, defaults; the
/// isolation row's healthy tenant has one webhook to the plain sink too); a target whose
/// scenario did not run says so.
pub fn print_targets(rows: &[Row], defaults: bool) {
    let find = |name: &str| rows.iter().find(|r| r.name == name);
    let mut checks: Vec<Result<Check, String>> = Vec::new();
    let missing = |what: &str, name: &str| Err(format!("{what}: not run ({name})"));

    let saturation = "plain/1wh/closed-c64";
    match find(saturation) {
        Some(r) => {
            checks.push(Ok(Check {
                what: "saturation: deliveries during the load >= 0.9 x creates".into(),
                measured: format!(
                    "{}/s vs 0.9 x {}/s = {}/s",
                    whole(r.during_per_s),
                    whole(r.creates_per_s),
                    whole(0.9 * r.creates_per_s)
                ),
                held: r.during_per_s >= 0.9 * r.creates_per_s,
            }));
            checks.push(Ok(Check {
                what: "saturation: deliveries during the load >= 3,500/s".into(),
                measured: format!("{}/s", whole(r.during_per_s)),
                held: r.during_per_s >= 3500.0,
            }));
            checks.push(Ok(p99_check("saturation: e2e p99 <= 200 ms", r, 200.0)));
            let cpu = r.cpu_ms_per_msg.filter(|v| v.is_finite());
            checks.push(Ok(Check {
                what: "saturation: server CPU <= 0.3 ms per delivered message".into(),
                measured: cpu.map_or("no deliveries".into(), |v| format!("{v:.3} ms")),
                held: cpu.is_some_and(|v| v <= 0.3),
            }));
            checks.push(Ok(Check {
                what: "saturation: peak RSS <= 96 MiB".into(),
                measured: format!("{} MiB", mib(r.rss_peak)),
                held: r.rss_peak <= 96.0,
            }));
            checks.push(Ok(Check {
                what: "idle RSS <= 20 MiB".into(),
                measured: format!("{} MiB", mib(r.rss_idle)),
                held: r.rss_idle <= 20.0,
            }));
        }
        None => checks.push(missing("saturation targets", saturation)),
    }
    let open1000 = "plain/1wh/open-1000";
    match find(open1000) {
        Some(r) => checks.push(Ok(p99_check("open 1,000/s: e2e p99 <= 20 ms", r, 20.0))),
        None => checks.push(missing("open 1,000/s target", open1000)),
    }
    let open2000 = "plain/1wh/open-2000";
    match find(open2000) {
        Some(r) => checks.push(Ok(p99_check(
            "open 2,000/s: e2e p99 <= 50 ms, all delivered",
            r,
            50.0,
        ))),
        None => checks.push(missing("open 2,000/s target", open2000)),
    }
    match find(isolation::NAME) {
        Some(r) => checks.push(Ok(p99_check(
            "isolation: healthy tenant e2e p99 <= 50 ms beside two tarpits with a 10,000 backlog",
            r,
            50.0,
        ))),
        None => checks.push(missing("isolation target", isolation::NAME)),
    }

    let held = checks
        .iter()
        .filter(|c| matches!(c, Ok(c) if c.held))
        .count();
    let checked = checks.iter().filter(|c| c.is_ok()).count();
    println!(
        "targets (issue 10; plain sink, 1 webhook{}): {held} of {checked} held",
        if defaults {
            ", defaults"
        } else {
            "; NOT defaults: LEADBASE_BENCH_SET was given"
        }
    );
    for check in checks {
        match check {
            Ok(c) => println!(
                "  {:<7} {}: {}",
                if c.held { "held" } else { "MISSED" },
                c.what,
                c.measured
            ),
            Err(line) => println!("  {line}"),
        }
    }
}

/// e2e p99 within `limit` ms, with every delivery made (a p99 of only those that arrived says
/// nothing of the rest).
fn p99_check(what: &str, r: &Row, limit: f64) -> Check {
    let p99 = r.e2e.map(|s| s.p99);
    let measured = match (p99, r.complete()) {
        (None, _) => "nothing delivered".into(),
        (Some(p), true) => format!("{} ms", ms(p)),
        (Some(p), false) => format!(
            "{} ms over those delivered, but only {} of {} arrived",
            ms(p),
            thousands(r.delivered as u64),
            thousands(r.expected as u64)
        ),
    };
    Check {
        what: what.into(),
        measured,
        held: r.complete() && p99.is_some_and(|p| p <= limit),
    }
}
