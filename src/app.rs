//! State shared by every request handler.

use std::collections::HashMap;

use ipnet::IpNet;
use parking_lot::Mutex;

use crate::config::Config;
use crate::http::idempotency::InFlight;
use crate::domain::ids::KeyId;
use crate::domain::time::Timestamp;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::store::Store;

/// `last_used_at` is written at most this often per key: a write per request would cost more
/// than the field is worth.
const TOUCH_EVERY_MS: i64 = 60_000;

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub limits: RateLimits,
    pub metrics: Metrics,
    pub admin_token_hash: [u8; 32],
    pub trusted_proxies: Vec<IpNet>,
    pub in_flight: InFlight,
    touched: Mutex<HashMap<KeyId, i64>>,
}

impl AppState {
    pub fn new(config: Config, store: Store, admin_token_hash: [u8; 32]) -> AppState {
        AppState {
            limits: RateLimits::new(&config.limits),
            trusted_proxies: config.trusted_proxies().unwrap_or_default(),
            config,
            store,
            metrics: Metrics::default(),
            admin_token_hash,
            in_flight: InFlight::default(),
            touched: Mutex::new(HashMap::new()),
        }
    }

    pub fn key_used(&self, key: KeyId) {
        let now = Timestamp::now();
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
