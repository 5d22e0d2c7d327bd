//! The pull scenarios: each a named generator of `GET /leads` query strings (a page of 20,
//! values drawn from a seeded stream so repetitions vary), measured one request at a time.

use std::time::{Duration, Instant};

use testkit::{Client, Key};

use crate::common;
use crate::data::{self, Rng};
use crate::table::{Row, Target, thousands};

/// Repetitions of the two paging rows, which are cheap.
pub const PAGE_SAMPLES: usize = 200;
/// Where the `*_since` bounds sit in the tenant's order (the share matching is 1 − q).
const QUANTILES: [f64; 9] = [0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999];
/// How many deep cursors, spread over 80–99 % of the tenant.
const CURSORS: usize = 10;
/// Queries of one or two characters: scans by any plan (`zq` matches nothing).
const SHORT: [&str; 10] = ["a", "e", "o", "k", "ka", "lo", "mi", "ra", "42", "zq"];

const DIRS: [&str; 2] = ["asc", "desc"];
const LINES: [&str; 2] = ["buyer", "seller"];

/// What the queries draw on: the catalogue's stages and values read back from the loaded tenant.
pub struct Context {
    /// Leads `0..leads` exist (the generator's indexes), and the tenant holds exactly these.
    pub leads: u64,
    /// `(id, slug)` of every stage.
    pub stages: Vec<(String, String)>,
    /// `created_at` and `updated_at` of the leads at [`QUANTILES`] of each order.
    pub created: Vec<String>,
    pub updated: Vec<String>,
    /// `updated_at` at the last three quantiles: what a sync that polls finds changed.
    pub recent: Vec<String>,
    /// Cursors of the default order 80–99 % of the way in.
    pub cursors: Vec<String>,
}

impl Context {
    /// Reads the bounds and cursors back from the server (offset paging, once each).
    pub fn read(app: &Client, key: &Key, leads: u64) -> Context {
        let total = app.lead_total(key);
        assert_eq!(total, leads, "the tenant holds every generated lead");
        let stages = app.list_stages(&key.tenant).expect(200)["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .map(|s| (string(&s["id"]), string(&s["slug"])))
            .collect();
        let at = |sort: &str, q: f64| {
            let offset = ((total as f64 * q) as u64).min(total - 1);
            let page = app
                .list_leads(key, &format!("?sort_by={sort}&limit=1&offset={offset}"))
                .expect(200);
            string(&page["leads"][0][sort])
        };
        let created = QUANTILES.iter().map(|&q| at("created_at", q)).collect();
        let updated: Vec<String> = QUANTILES.iter().map(|&q| at("updated_at", q)).collect();
        let recent = updated[updated.len() - 3..].to_vec();
        let cursors = (0..CURSORS)
            .map(|c| {
                let offset = total * (80 + 19 * c as u64 / (CURSORS as u64 - 1)) / 100;
                let page = app
                    .list_leads(key, &format!("?limit=1&offset={offset}"))
                    .expect(200);
                string(&page["next_cursor"])
            })
            .collect();
        Context {
            leads,
            stages,
            created,
            updated,
            recent,
            cursors,
        }
    }
}

fn string(v: &serde_json::Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("a string: {v}"))
        .to_string()
}

type Query<'a> = Box<dyn Fn(&mut Rng) -> String + 'a>;

pub struct Scenario<'a> {
    pub name: &'static str,
    pub target: Target,
    pub samples: usize,
    /// Whether the page starts at the first match, so it must hold min(20, total) leads.
    pub first_page: bool,
    pub query: Query<'a>,
}

fn dir(rng: &mut Rng) -> &'static str {
    DIRS[rng.below(DIRS.len() as u64) as usize]
}

fn status(rng: &mut Rng) -> &'static str {
    rng.pick(&data::STATUSES).0
}

fn lead_line(rng: &mut Rng) -> &'static str {
    LINES[rng.below(LINES.len() as u64) as usize]
}

/// The surname of a lead that exists, lower-cased as a user might type it.
fn surname(rng: &mut Rng, leads: u64) -> String {
    data::surname(rng.below(leads)).to_lowercase()
}

/// `BBB-CCCC` of a lead that has a phone: 7 digits, formatted.
fn phone_digits(rng: &mut Rng, leads: u64) -> String {
    loop {
        if let Some(phone) = data::phone(rng.below(leads)) {
            break phone[phone.len() - 8..].to_string();
        }
    }
}

/// Every row of the pull part of the table, in order; `samples` repetitions of each filter
/// and search row.
pub fn scenarios<'a>(cx: &'a Context, samples: usize) -> Vec<Scenario<'a>> {
    let n = cx.leads;
    let row = |name, target, query: Query<'a>| Scenario {
        name,
        target,
        samples,
        first_page: true,
        query,
    };
    use Target::*;
    vec![
        Scenario {
            name: "page/first (no filter)",
            target: Report,
            samples: PAGE_SAMPLES,
            first_page: true,
            query: Box::new(|_| "?limit=20".into()),
        },
        Scenario {
            name: "page/deep cursor (80-99 % in)",
            target: Report,
            samples: PAGE_SAMPLES,
            first_page: false,
            query: Box::new(|r| format!("?limit=20&cursor={}", r.pick(&cx.cursors))),
        },
        row(
            "filter/status",
            SingleFilter,
            Box::new(|r| format!("?limit=20&status={}&sort_dir={}", status(r), dir(r))),
        ),
        row(
            "filter/stageId",
            SingleFilter,
            Box::new(|r| {
                format!(
                    "?limit=20&stageId={}&sort_dir={}",
                    r.pick(&cx.stages).0,
                    dir(r)
                )
            }),
        ),
        row(
            "filter/stage_slug",
            SingleFilter,
            Box::new(|r| {
                format!(
                    "?limit=20&stage_slug={}&sort_dir={}",
                    r.pick(&cx.stages).1,
                    dir(r)
                )
            }),
        ),
        row(
            "filter/lead_line",
            SingleFilter,
            Box::new(|r| format!("?limit=20&lead_line={}&sort_dir={}", lead_line(r), dir(r))),
        ),
        row(
            "filter/created_since, sort updated_at",
            SingleFilter,
            Box::new(|r| {
                format!(
                    "?limit=20&created_since={}&sort_by=updated_at&sort_dir={}",
                    r.pick(&cx.created),
                    dir(r)
                )
            }),
        ),
        row(
            "filter/updated_since, sort created_at",
            SingleFilter,
            Box::new(|r| {
                format!(
                    "?limit=20&updated_since={}&sort_by=created_at&sort_dir={}",
                    r.pick(&cx.updated),
                    dir(r)
                )
            }),
        ),
        row(
            "filter/updated_since, sort updated_at",
            SingleFilter,
            Box::new(|r| {
                format!(
                    "?limit=20&updated_since={}&sort_by=updated_at&sort_dir={}",
                    r.pick(&cx.updated),
                    dir(r)
                )
            }),
        ),
        row(
            "pair/status + lead_line",
            Combined,
            Box::new(|r| {
                format!(
                    "?limit=20&status={}&lead_line={}&sort_dir={}",
                    status(r),
                    lead_line(r),
                    dir(r)
                )
            }),
        ),
        row(
            "pair/stageId + created_since, sort updated_at",
            Combined,
            Box::new(|r| {
                format!(
                    "?limit=20&stageId={}&created_since={}&sort_by=updated_at&sort_dir={}",
                    r.pick(&cx.stages).0,
                    r.pick(&cx.created),
                    dir(r)
                )
            }),
        ),
        row(
            "pair/stage_slug + lead_line",
            Combined,
            Box::new(|r| {
                format!(
                    "?limit=20&stage_slug={}&lead_line={}&sort_dir={}",
                    r.pick(&cx.stages).1,
                    lead_line(r),
                    dir(r)
                )
            }),
        ),
        row(
            "pair/status + updated_since (a sync's poll)",
            Combined,
            Box::new(|r| {
                format!(
                    "?limit=20&status={}&updated_since={}&sort_by=updated_at&sort_dir=asc",
                    status(r),
                    r.pick(&cx.recent)
                )
            }),
        ),
        row(
            "pair/search surname + status",
            Combined,
            Box::new(move |r| format!("?limit=20&search={}&status={}", surname(r, n), status(r))),
        ),
        row(
            "search/surname (3+ chars, few leads)",
            Search,
            Box::new(move |r| format!("?limit=20&search={}", surname(r, n))),
        ),
        row(
            "search/phone digits BBB-CCCC",
            Search,
            Box::new(move |r| format!("?limit=20&search={}", phone_digits(r, n))),
        ),
        row(
            "search/common domain gmail.com (40 %)",
            SearchEvery,
            Box::new(|_| format!("?limit=20&search={}", data::COMMON_DOMAIN)),
        ),
        row(
            "search/.com (in every lead)",
            SearchEvery,
            Box::new(|_| format!("?limit=20&search={}", data::EVERY_LEAD)),
        ),
        row(
            "search/1-2 characters",
            Report,
            Box::new(|r| format!("?limit=20&search={}", r.pick(&SHORT))),
        ),
    ]
}

impl Scenario<'_> {
    /// One request to warm up, then `samples` timed ones, each a fresh query from the stream.
    pub fn run(&self, app: &Client, key: &Key, seed: u64, tenant: u64) -> Row {
        let mut rng = Rng::new(seed);
        // BENCH_SLOW=ms prints each request that took at least that long (to find out why).
        let slow: Option<f64> = std::env::var("BENCH_SLOW")
            .ok()
            .and_then(|v| v.trim().parse().ok());
        app.list_leads(key, &(self.query)(&mut rng)).expect(200);
        let mut times: Vec<Duration> = Vec::with_capacity(self.samples);
        let mut totals: Vec<u64> = Vec::with_capacity(self.samples);
        let mut short_pages = 0;
        for _ in 0..self.samples {
            let query = (self.query)(&mut rng);
            let t = Instant::now();
            let res = app.list_leads(key, &query);
            let took = t.elapsed();
            times.push(took);
            if slow.is_some_and(|ms| took.as_secs_f64() * 1000.0 >= ms) {
                eprintln!("  slow: {:.1} ms {query}", took.as_secs_f64() * 1000.0);
            }
            let body = res.expect(200);
            let total = body["total"]
                .as_u64()
                .unwrap_or_else(|| panic!("{query}: no total"));
            let len = body["leads"].as_array().map_or(0, Vec::len) as u64;
            if self.first_page && len != total.min(20) {
                short_pages += 1;
            }
            totals.push(total);
        }
        let (p50, p99) = common::percentiles(&mut times);
        let mut figure = matches(&totals, tenant);
        if short_pages > 0 {
            figure.push_str(&format!("; {short_pages} pages NOT min(20, total) long"));
        }
        Row {
            name: self.name.into(),
            requests: self.samples,
            p50: Some(p50),
            p99: Some(p99),
            figure,
            target: self.target,
        }
    }
}

/// `total 1,020,000 (100 %)`, or `total avg 61,200 (6.0 %), 30,600-816,000` when it varies.
fn matches(totals: &[u64], tenant: u64) -> String {
    let (min, max) = (
        totals.iter().min().copied().unwrap_or(0),
        totals.iter().max().copied().unwrap_or(0),
    );
    let avg = totals.iter().sum::<u64>() as f64 / totals.len().max(1) as f64;
    let share = |v: f64| 100.0 * v / tenant.max(1) as f64;
    if min == max {
        format!("total {} ({:.1} %)", thousands(min), share(avg))
    } else {
        format!(
            "total avg {} ({:.1} %), {}-{}",
            thousands(avg.round() as u64),
            share(avg),
            thousands(min),
            thousands(max)
        )
    }
}
