//! Shared by the benchmarks: an in-process server on a temporary data file, a blocking client,
//! and percentile arithmetic.

#![allow(dead_code)]

use std::net::TcpListener;
use std::time::Duration;

use leadbase::config::Config;
use leadbase::{Options, Running};
use serde_json::{Value, json};

pub const ADMIN: &str = "bench-admin-token-0123456789abcdef";

pub struct Bench {
    pub base: String,
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub agent: ureq::Agent,
}

pub fn config(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.storage.path = dir.join("leadbase.redb");
    config.admin.token = Some(ADMIN.into());
    config.limits.per_minute = u32::MAX / 2;
    config.limits.per_hour = u32::MAX / 2;
    config.limits.bulk_per_minute = u32::MAX / 2;
    config
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .max_idle_connections_per_host(256)
        .build()
        .into()
}

pub fn start(adjust: impl FnOnce(&mut Config)) -> Bench {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(dir.path());
    adjust(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let running = leadbase::start(config, listener, Options::default()).expect("start");
    Bench {
        base: format!("http://{}", running.addr()),
        running: Some(running),
        dir,
        agent: agent(),
    }
}

impl Bench {
    pub fn call(
        &self,
        method: &str,
        path: &str,
        auth: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in auth {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                b.to_string()
            }
            None => String::new(),
        };
        let mut res = self
            .agent
            .run(req.body(body).expect("request"))
            .expect("exchange");
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A tenant and a key with every scope: (tenant id, token).
    pub fn tenant(&self) -> (String, String) {
        let admin = format!("Bearer {ADMIN}");
        let (_, t) = self.call(
            "POST",
            "/admin/api/tenants",
            &[("authorization", &admin)],
            Some(&json!({"name": "Bench"})),
        );
        let tenant = t["tenant"]["id"].as_str().expect("tenant").to_string();
        let (_, k) = self.call(
            "POST",
            &format!("/admin/api/tenants/{tenant}/keys"),
            &[("authorization", &admin)],
            Some(&json!({"name": "bench", "scopes": ["public_api:leads:read", "public_api:leads:write", "public_api:webhooks:manage"]})),
        );
        (tenant, k["token"].as_str().expect("token").to_string())
    }

    pub fn data_file_size(&self) -> u64 {
        std::fs::metadata(self.dir.path().join("leadbase.redb")).map_or(0, |m| m.len())
    }

    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }
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

pub mod tls_receiver;
