//! Spec §14: `/metrics` in Prometheus exposition text, with the queue, the attempts, the
//! writer and the data file; read here the way a scraper reads it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

/// Every sample line as `name{labels}` → value; panics on a line a scraper would refuse.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut typed = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                typed.insert(name.to_string(), kind.to_string()).is_none(),
                "typed twice: {line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "an unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            typed.contains_key(family),
            "a sample before its # TYPE: {line}"
        );
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
        }
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "twice: {line}"
        );
    }
    samples
}

#[test]
fn metrics_show_the_queue_the_attempts_the_writer_and_the_file() {
    let env = DeliveryEnv::start();
    env.hook("/hook", json!({ "event_types": ["lead.created"] }));
    for i in 0..3 {
        env.lead(json!({ "contact_email": format!("m{i}@example.com") }));
    }
    env.rx.wait_for("/hook", 3, Duration::from_secs(10));
    // Attempts are counted when recorded; the queue shows them gone once that commits.
    let samples = eventually("the attempts are recorded", Duration::from_secs(10), || {
        let s = parse(&env.app.admin("GET", "/metrics").send().text);
        let delivered = s.get("leadbase_attempts_total{outcome=\"delivered\"}");
        let due = s.get("leadbase_deliveries{status=\"due\"}");
        match (delivered, due) {
            (Some(n), Some(d)) if *n >= 3.0 && *d == 0.0 => Ok(s),
            other => Err(format!("delivered, due: {other:?}")),
        }
    });
    for series in [
        "leadbase_deliveries{status=\"due\"}",
        "leadbase_deliveries{status=\"held\"}",
        "leadbase_delivery_oldest_due_seconds",
        "leadbase_attempts_total{outcome=\"rejected\"}",
        "leadbase_attempts_total{outcome=\"failed\"}",
        "leadbase_attempt_duration_seconds_count",
        "leadbase_writer_batch_size_count",
        "leadbase_commit_duration_seconds_count",
        "leadbase_data_file_bytes",
    ] {
        assert!(samples.contains_key(series), "{series} missing");
    }
    assert!(samples["leadbase_attempt_duration_seconds_count"] >= 3.0);
    assert!(samples["leadbase_attempt_duration_seconds_bucket{le=\"+Inf\"}"] >= 3.0);
    assert!(
        samples["leadbase_writer_batch_size_count"] >= 4.0,
        "creates and records committed"
    );
    assert!(samples["leadbase_commit_duration_seconds_sum"] > 0.0);
    assert!(samples["leadbase_data_file_bytes"] > 0.0);
    // Buckets are cumulative: counts never fall as the bound grows, +Inf holds them all.
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix("leadbase_writer_batch_size_bucket{le=\"")?;
            let le = le.strip_suffix("\"}")?;
            Some((
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                },
                *v,
            ))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 5, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(
        buckets.last().map(|b| b.1),
        Some(samples["leadbase_writer_batch_size_count"])
    );
}

#[test]
fn a_paused_webhook_s_deliveries_show_as_held() {
    let env = DeliveryEnv::start();
    let hook = env.hook("/paused", json!({ "event_types": ["lead.created"] }));
    env.app
        .patch_webhook(&env.key, &hook.id, &json!({ "is_active": false }))
        .expect(200);
    env.lead(json!({ "contact_email": "held@example.com" }));
    let samples = parse(&env.app.admin("GET", "/metrics").send().text);
    assert_eq!(samples["leadbase_deliveries{status=\"held\"}"], 1.0);
}
