//! State shared by every request handler.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ipnet::IpNet;
use parking_lot::Mutex;

use crate::config::Config;
use crate::delivery::client::Lookup;
use crate::domain::ids::KeyId;
use crate::domain::url_policy::UrlPolicy;
use crate::http::metrics::Metrics;
use crate::http::ratelimit::RateLimits;
use crate::store::Store;
use crate::store::idempotency::IdempotencyKey;

/// `last_used_at` is written at most this often per key: a write per request would cost more
/// than the field is worth.
const TOUCH_EVERY_MS: i64 = 60_000;

/// Idempotency keys whose first request is still running, in this process.
#[derive(Default, Clone)]
pub struct InFlight(Arc<Mutex<HashSet<IdempotencyKey>>>);

impl InFlight {
    /// Takes `key` for one request; false while another holds it.
    pub fn take(&self, key: &IdempotencyKey) -> bool {
        self.0.lock().insert(key.clone())
    }

    pub fn release(&self, key: &IdempotencyKey) {
        self.0.lock().remove(key);
    }
}

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub limits: RateLimits,
    pub metrics: Metrics,
    pub admin_token_hash: [u8; 32],
    pub trusted_proxies: Vec<IpNet>,
    pub in_flight: InFlight,
    /// The SSRF rules for webhook URLs, shared with the delivery client.
    pub url_policy: UrlPolicy,
    /// Name resolution for webhook hosts when not the system's (tests).
    pub lookup: Option<Lookup>,
    touched: Mutex<HashMap<KeyId, i64>>,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Store,
        admin_token_hash: [u8; 32],
        url_policy: UrlPolicy,
        lookup: Option<Lookup>,
    ) -> AppState {
        AppState {
            limits: RateLimits::new(&config.limits),
            trusted_proxies: config.server.trusted_proxies.clone(),
            config,
            store,
            metrics: Metrics::default(),
            admin_token_hash,
            in_flight: InFlight::default(),
            url_policy,
            lookup,
            touched: Mutex::new(HashMap::new()),
        }
    }

    pub fn key_used(&self, key: KeyId) {
        let now = self.store.now();
        let mut touched = self.touched.lock();
        let due = touched
            .get(&key)
            .is_none_or(|last| now.ms() - last >= TOUCH_EVERY_MS);
        if due {
            touched.insert(key, now.ms());
            drop(touched);
            self.store.touch_key(key, now);
        }
    }
}
