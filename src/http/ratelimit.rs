//! Per-key quotas (GCRA, through `governor`) and the `RateLimit-*` headers.
//!
//! Every key has a default bucket (per minute and per hour) used by every route but bulk import,
//! and an independent bulk bucket. Requests that fail authentication are limited per client IP
//! (per /64 for IPv6). Idle keys' state is reclaimed by [`RateLimits::reclaim`], which the
//! server calls periodically.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::config::LimitsConfig;
use crate::domain::ids::KeyId;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Default,
    Bulk,
}

/// One bucket's state after a request was counted against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Set when the request was refused: seconds until it may be retried.
    pub retry_after: Option<u64>,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.retry_after.is_none()
    }

    pub fn headers(&self) -> [(HeaderName, HeaderValue); 3] {
        [
            (
                HeaderName::from_static("ratelimit-limit"),
                self.limit.into(),
            ),
            (
                HeaderName::from_static("ratelimit-remaining"),
                self.remaining.into(),
            ),
            (
                HeaderName::from_static("ratelimit-reset"),
                self.reset_secs.into(),
            ),
        ]
    }

    /// Of two buckets a request passed through, the one to report: a refusal first, then the
    /// one with the least remaining.
    fn tighter(self, other: Verdict) -> Verdict {
        match (self.allowed(), other.allowed()) {
            (false, true) => self,
            (true, false) => other,
            _ if other.remaining < self.remaining => other,
            _ => self,
        }
    }
}

struct Limiter<K: Hash + Eq + Clone> {
    quota: Quota,
    state: Keyed<K>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(count: u32, period: Duration) -> Limiter<K> {
        let burst = NonZeroU32::new(count.max(1)).unwrap_or(NonZeroU32::MIN);
        // `count` per `period`, all of it available at once, refilling one cell at a time.
        let quota = Quota::with_period(period / burst.get())
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        Limiter {
            quota,
            state: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        }
    }

    fn check(&self, key: &K) -> Verdict {
        let limit = self.quota.burst_size().get();
        let interval = self.quota.replenish_interval();
        match self.state.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Verdict {
                    limit,
                    remaining,
                    reset_secs: ceil_secs(interval * (limit - remaining)),
                    retry_after: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.state.clock().now());
                Verdict {
                    limit,
                    remaining: 0,
                    reset_secs: ceil_secs(wait + interval * (limit - 1)),
                    retry_after: Some(ceil_secs(wait).max(1)),
                }
            }
        }
    }

    fn reclaim(&self) {
        self.state.retain_recent();
        self.state.shrink_to_fit();
    }

    fn tracked(&self) -> usize {
        self.state.len()
    }
}

/// The unit a failed-auth bucket belongs to. One IPv6 client is usually given a whole /64 (a
/// LAN's prefix, SLAAC and privacy addresses inside it), so per address it could draw a fresh
/// bucket for every guess; an IPv4 client rarely has more than its one address. A v4-mapped
/// address (a dual-stack socket's view of an IPv4 peer) is its IPv4 address, not a shared /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = v6.to_bits() & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from_bits(prefix))
        }
        v4 => v4,
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

pub struct RateLimits {
    per_minute: Limiter<KeyId>,
    per_hour: Limiter<KeyId>,
    bulk: Limiter<KeyId>,
    unauthenticated: Limiter<IpAddr>,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

impl RateLimits {
    pub fn new(config: &LimitsConfig) -> RateLimits {
        RateLimits {
            per_minute: Limiter::new(config.per_minute, MINUTE),
            per_hour: Limiter::new(config.per_hour, HOUR),
            bulk: Limiter::new(config.bulk_per_minute, MINUTE),
            unauthenticated: Limiter::new(config.unauthenticated_per_minute, MINUTE),
        }
    }

    /// Counts one request of `key` against the buckets of its route.
    pub fn check_key(&self, key: KeyId, bucket: Bucket) -> Verdict {
        match bucket {
            Bucket::Bulk => self.bulk.check(&key),
            Bucket::Default => {
                let minute = self.per_minute.check(&key);
                if !minute.allowed() {
                    // Refused by the minute bucket: the hour bucket is not charged.
                    return minute;
                }
                minute.tighter(self.per_hour.check(&key))
            }
        }
    }

    /// Counts one failed authentication from `ip`.
    pub fn check_failed_auth(&self, ip: IpAddr) -> Verdict {
        self.unauthenticated.check(&client_key(ip))
    }

    /// Forgets keys and addresses whose buckets are full again: their state carries no
    /// information, and an attacker cycling addresses must not grow memory without bound.
    pub fn reclaim(&self) {
        self.per_minute.reclaim();
        self.per_hour.reclaim();
        self.bulk.reclaim();
        self.unauthenticated.reclaim();
    }

    /// How many keys and addresses currently hold state (for metrics and tests).
    pub fn tracked(&self) -> usize {
        self.per_minute.tracked()
            + self.per_hour.tracked()
            + self.bulk.tracked()
            + self.unauthenticated.tracked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32, per_hour: u32, bulk: u32) -> RateLimits {
        RateLimits::new(&LimitsConfig {
            per_minute,
            per_hour,
            bulk_per_minute: bulk,
            unauthenticated_per_minute: 2,
        })
    }

    #[test]
    fn default_bucket_counts_down_then_refuses() {
        let limits = limits(3, 100, 10);
        let key = KeyId::new();
        let seen: Vec<u32> = (0..3)
            .map(|_| limits.check_key(key, Bucket::Default).remaining)
            .collect();
        assert_eq!(seen, [2, 1, 0]);
        let refused = limits.check_key(key, Bucket::Default);
        assert!(!refused.allowed());
        assert_eq!(refused.limit, 3);
        let retry = refused.retry_after.unwrap();
        assert!(
            (1..=20).contains(&retry),
            "one cell refills in 20 s, got {retry}"
        );
        assert!(refused.reset_secs >= retry);
    }

    #[test]
    fn the_tighter_bucket_is_reported() {
        let limits = limits(60, 2, 10);
        let key = KeyId::new();
        let first = limits.check_key(key, Bucket::Default);
        assert_eq!(
            (first.limit, first.remaining),
            (2, 1),
            "the hour bucket has less left"
        );
        limits.check_key(key, Bucket::Default);
        assert!(!limits.check_key(key, Bucket::Default).allowed());
    }

    #[test]
    fn bulk_bucket_is_independent() {
        let limits = limits(1, 100, 2);
        let key = KeyId::new();
        assert!(limits.check_key(key, Bucket::Default).allowed());
        assert!(!limits.check_key(key, Bucket::Default).allowed());
        assert!(limits.check_key(key, Bucket::Bulk).allowed());
        assert!(limits.check_key(key, Bucket::Bulk).allowed());
        assert!(!limits.check_key(key, Bucket::Bulk).allowed());
        assert!(
            limits.check_key(KeyId::new(), Bucket::Default).allowed(),
            "keys do not share buckets"
        );
    }

    #[test]
    fn failed_auth_is_limited_per_ip() {
        let limits = limits(10, 10, 10);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limits.check_failed_auth(ip).allowed());
        assert!(limits.check_failed_auth(ip).allowed());
        assert!(!limits.check_failed_auth(ip).allowed());
        assert!(
            limits
                .check_failed_auth("192.0.2.2".parse().unwrap())
                .allowed()
        );
    }

    #[test]
    fn failed_auth_keys_ipv6_clients_by_their_64() {
        let limits = limits(10, 10, 10);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(limits.check_failed_auth(ip("2001:db8:1:2::1")).allowed());
        assert!(
            limits
                .check_failed_auth(ip("2001:db8:1:2:ffff::9"))
                .allowed()
        );
        assert!(
            !limits
                .check_failed_auth(ip("2001:db8:1:2:abcd::1"))
                .allowed(),
            "one /64 is one client"
        );
        assert!(
            limits.check_failed_auth(ip("2001:db8:1:3::1")).allowed(),
            "the next /64 is another"
        );
        assert!(limits.check_failed_auth(ip("::ffff:192.0.2.7")).allowed());
        assert!(limits.check_failed_auth(ip("192.0.2.7")).allowed());
        assert!(
            !limits.check_failed_auth(ip("192.0.2.7")).allowed(),
            "a v4-mapped address is its IPv4 address"
        );
        assert!(
            limits.check_failed_auth(ip("::ffff:192.0.2.8")).allowed(),
            "and IPv4 stays per address"
        );
    }
}
