//! The printed result: one aligned row per scenario, then whether each of the targets
//! held. A missed target is reported, never a failure.

pub use crate::common::{ms, thousands};

/// One row: a write's latency per request and its rate, or a pull scenario's latency and the
/// `total` it answered.
pub struct Row {
    pub name: String,
    pub requests: usize,
    /// Milliseconds; none when the row has no requests (a file size).
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    /// The rate, the file size, or the `total` the queries answered.
    pub figure: String,
    pub target: Target,
}

/// The latency targets (p99, page of 20 with exact `total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Printed only: a figure to compare against another build, or no target at all.
    Report,
    SingleFilter,
    Combined,
    Search,
    SearchEvery,
}

impl Target {
    const CHECKED: [Target; 4] = [
        Target::SingleFilter,
        Target::Combined,
        Target::Search,
        Target::SearchEvery,
    ];

    fn limit_ms(self) -> Option<f64> {
        match self {
            Target::Report => None,
            Target::SingleFilter => Some(5.0),
            Target::Combined | Target::Search => Some(20.0),
            Target::SearchEvery => Some(50.0),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Target::Report => "",
            Target::SingleFilter => "every single filter",
            Target::Combined => "two filters combined",
            Target::Search => "search with 3+ characters (or 3+ digits)",
            Target::SearchEvery => "search for a string in every lead (and gmail.com, in 40 %)",
        }
    }
}

fn held(row: &Row) -> Option<bool> {
    Some(row.p99? <= row.target.limit_ms()?)
}

pub fn print(rows: &[Row]) {
    let header = [
        "scenario",
        "reqs",
        "p50 ms",
        "p99 ms",
        "target p99",
        "",
        "figure",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                if r.requests == 0 {
                    "-".into()
                } else {
                    thousands(r.requests as u64)
                },
                r.p50.map_or("-".into(), ms),
                r.p99.map_or("-".into(), ms),
                r.target
                    .limit_ms()
                    .map_or("-".into(), |l| format!("<= {l:.0} ms")),
                match held(r) {
                    Some(true) => "held".into(),
                    Some(false) => "MISSED".into(),
                    None => String::new(),
                },
                r.figure.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w - cell.chars().count();
            match i {
                0 | 5 | 6 => out.push_str(&format!("{cell}{}", " ".repeat(pad))),
                _ => out.push_str(&format!("{}{cell}", " ".repeat(pad))),
            }
            out.push_str("  ");
        }
        println!("{}", out.trim_end());
    };
    line(&header.map(String::from));
    println!(
        "{}",
        "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1))
    );
    for row in &cells {
        line(row);
    }
}

/// One line per latency target: held, or which rows missed it and the worst of them.
pub fn print_targets(rows: &[Row]) {
    for target in Target::CHECKED {
        let limit = target.limit_ms().unwrap_or_default();
        let of: Vec<&Row> = rows.iter().filter(|r| r.target == target).collect();
        let missed: Vec<&Row> = of
            .iter()
            .copied()
            .filter(|r| held(r) == Some(false))
            .collect();
        let worst = of
            .iter()
            .filter_map(|r| Some((r.p99?, r)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let verdict = match (of.is_empty(), missed.len(), worst) {
            (true, _, _) | (_, _, None) => "not run".to_string(),
            (false, 0, Some((p99, r))) => format!("held (worst {} p99 {} ms)", r.name, ms(p99)),
            (false, k, Some((p99, r))) => format!(
                "MISSED by {k} of {} rows (worst {} p99 {} ms)",
                of.len(),
                r.name,
                ms(p99)
            ),
        };
        println!("  {}: p99 <= {limit:.0} ms: {verdict}", target.describe());
    }
}
