//! One scenario from start to finish: a sink, a fresh server delivering to it, a tenant with the
//! `t` field and its webhooks, the load, then the drain; measured into a [`Row`].

use std::time::{Duration, Instant};

use serde_json::json;

use crate::clock;
use crate::load::{Load, Target};
use crate::server::Server;
use crate::sink::{Sink, SinkKind};
use crate::table::Row;
use crate::tally::{Spread, Tally};

/// After the load, wait at most this long for the rest of the deliveries.
pub const DRAIN_CAP: Duration = Duration::from_secs(120);
/// A drain shorter than this gets no rate (`-`).
const MIN_DRAIN: Duration = Duration::from_millis(250);
/// How often the sink is read while the load runs and while it drains.
const POLL: Duration = Duration::from_millis(50);

/// The `--set` flags every scenario's server gets beyond its defaults: an admin token (set by
/// [`Server::start`]), rate limits out of reach, room for the webhooks, loopback receivers
/// allowed.
pub fn common_sets() -> Vec<String> {
    let high = u32::MAX / 2;
    vec![
        format!("limits.per_minute={high}"),
        format!("limits.per_hour={high}"),
        format!("limits.bulk_per_minute={high}"),
        "webhooks.max_per_tenant=1000".into(),
        "webhooks.allowed_private_cidrs=127.0.0.0/8".into(),
    ]
}

#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub sink: SinkKind,
    pub webhooks: usize,
    pub load: Load,
}

impl Scenario {
    /// `plain/1wh/closed-c64`, `https/10wh/open-1000`, ...: what `LEADBASE_BENCH_ONLY` matches.
    pub fn name(&self) -> String {
        format!(
            "{}/{}wh/{}",
            self.sink.name(),
            self.webhooks,
            self.load.name()
        )
    }

    /// Runs it against `bin`, with `extra` `--set` flags after the benchmark's own.
    pub fn run(&self, bin: &str, extra: &[String]) -> Row {
        let sink = Sink::start(self.sink);
        let server = Server::start(bin, &sets_for(&sink, extra));

        let client = &server.client;
        let key = client.tenant_with_key("Bench");
        client.add_custom_field(&key.tenant, "t", "number");
        for hook in 0..self.webhooks {
            client
                .post_webhook(&key, &json!({ "url": sink.url(hook) }))
                .expect(201);
        }
        let target = Target::new(client.base(), &key);
        let rss_idle = server.rss_mib();
        measure(Measure {
            name: self.name(),
            server,
            sink,
            target: &target,
            load: self.load,
            webhooks: self.webhooks,
            drain_cap: DRAIN_CAP,
            rss_idle,
        })
    }
}

/// The server's `--set` flags for a scenario delivering to `sink`: [`common_sets`], what the
/// sink needs, then `extra`.
pub fn sets_for(sink: &Sink, extra: &[String]) -> Vec<String> {
    let mut sets = common_sets();
    match sink {
        Sink::Plain(_) => sets.push("webhooks.https_only=false".into()),
        Sink::Https(receiver) => sets.push(format!(
            "webhooks.extra_ca_file={}",
            receiver.ca_path().display()
        )),
    }
    sets.extend(extra.iter().cloned());
    sets
}

/// What [`measure`] runs and against what.
pub struct Measure<'a> {
    pub name: String,
    /// Set up, with `webhooks` webhooks of `target`'s tenant pointing at `sink`.
    pub server: Server,
    pub sink: Sink,
    pub target: &'a Target,
    pub load: Load,
    pub webhooks: usize,
    /// After the load, wait at most this long for the rest of the deliveries.
    pub drain_cap: Duration,
    /// `VmRSS` after the setup.
    pub rss_idle: f64,
}

/// The load, then the drain, measured into a [`Row`]; the server is stopped (and then the sink)
/// before it returns. Server CPU is counted from here on.
pub fn measure(m: Measure<'_>) -> Row {
    let Measure {
        name,
        mut server,
        sink,
        target,
        load,
        webhooks,
        drain_cap,
        rss_idle,
    } = m;
    let cpu_before = server.cpu_ms();

    let mut tally = Tally::default();
    let mut other = 0;
    let mut report = std::thread::scope(|scope| {
        let load = scope.spawn(|| load.run(target));
        while !load.is_finished() {
            std::thread::sleep(POLL);
            tally.add(sink.take(&mut other));
        }
        load.join().expect("the load")
    });

    let expected = report.ok as usize * webhooks;
    let mut note = None;
    loop {
        tally.add(sink.take(&mut other));
        if tally.has(expected) {
            break;
        }
        if report.ended.elapsed() >= drain_cap {
            break;
        }
        if !server.alive() {
            note = Some(format!("the server exited: {}", server.stderr()));
            break;
        }
        std::thread::sleep(POLL);
    }
    let drain_stopped = Instant::now();
    let (cpu_ms, rss_peak) = if server.alive() {
        (server.cpu_ms() - cpu_before, server.peak_rss_mib())
    } else {
        (f64::NAN, f64::NAN)
    };
    drop(server);
    drop(sink);
    if other > 0 {
        let more = format!("{other} request(s) at the sink carried no stamped lead");
        note = Some(match note {
            Some(n) => format!("{n}; {more}"),
            None => more,
        });
    }

    let (start, end) = (clock::unix_us(report.started), clock::unix_us(report.ended));
    let window = (end - start) as f64 / 1e6;
    let summary = tally.summary(start, end);
    let drain_s = summary
        .last
        .map_or(0.0, |last| last.saturating_sub(end) as f64 / 1e6);
    Row {
        name,
        creates_per_s: report.ok as f64 / window,
        errors: report.errors,
        late: report.late,
        api: Spread::of_us(&mut report.latencies_us),
        during_per_s: summary.during as f64 / window,
        // A tail of a few milliseconds makes no rate.
        drain_per_s: (summary.after > 0 && drain_s >= MIN_DRAIN.as_secs_f64())
            .then(|| summary.after as f64 / drain_s),
        drain_s,
        capped: summary.unique < expected,
        drain_wall_s: drain_stopped.duration_since(report.ended).as_secs_f64(),
        e2e: summary.e2e,
        delivered: summary.unique,
        expected,
        duplicates: summary.duplicates,
        cpu_ms_per_msg: (summary.unique > 0).then(|| cpu_ms / summary.unique as f64),
        rss_idle,
        rss_peak,
        note,
    }
}
