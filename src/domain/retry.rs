//! What happens after an attempt (spec §6): success, retry at a time, give up, or turn the
//! webhook off. Pure: the clock and the jitter are arguments.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::domain::time::Timestamp;

/// A `Retry-After` is honoured up to this long (spec: ≤ 1 h).
const MAX_RETRY_AFTER_SECS: u64 = 3_600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptError {
    #[serde(rename = "timeout")]
    Timeout,
    #[serde(rename = "connect")]
    Connect,
    #[serde(rename = "tls")]
    Tls,
    #[serde(rename = "dns")]
    Dns,
    #[serde(rename = "ssrf_blocked")]
    SsrfBlocked,
    #[serde(rename = "redirect")]
    Redirect,
    #[serde(rename = "http_status")]
    HttpStatus,
}

/// How the engine retries, from the config.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Delays after failure 1, 2, … in seconds; the last repeats.
    pub schedule: Vec<u64>,
    /// A webhook that has done nothing but fail for this long is turned off.
    pub disable_after_failing_ms: i64,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    pub started_at: Timestamp,
    pub latency_ms: u32,
    pub response_status: Option<u16>,
    pub error: Option<AttemptError>,
    pub response_body_excerpt: String,
    /// From a 429 or 503 answer's `Retry-After`, in seconds.
    pub retry_after_secs: Option<u64>,
}

impl AttemptResult {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
            && self
                .response_status
                .is_some_and(|s| (200..300).contains(&s))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Delivered,
    RetryAt(Timestamp),
    /// Retries exhausted.
    GiveUp,
    /// The receiver asked for no more (410 Gone): the delivery fails and the webhook is turned off.
    Disable(String),
}

/// Classifies a received status the way the spec does: 2xx success, 3xx failure (never
/// followed), everything else failure.
pub fn status_error(status: u16) -> Option<AttemptError> {
    match status {
        200..=299 => None,
        300..=399 => Some(AttemptError::Redirect),
        _ => Some(AttemptError::HttpStatus),
    }
}

/// `Retry-After` as delta-seconds or an HTTP date, only on 429 and 503.
pub fn retry_after(status: u16, header: Option<&str>, now: Timestamp) -> Option<u64> {
    if !matches!(status, 429 | 503) {
        return None;
    }
    let raw = header?.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(seconds);
    }
    let at = OffsetDateTime::parse(raw, &Rfc2822).ok()?;
    let secs = at.unix_timestamp() - now.seconds();
    Some(secs.max(0) as u64)
}

/// Decides what follows attempt number `attempt` (1-based, within the current cycle).
/// `retry_attempts` counts retries after the first attempt. `jitter` is in [-1, 1] and scales
/// the delay by ±10 %.
pub fn next_step(
    result: &AttemptResult,
    attempt: u32,
    retry_attempts: u32,
    schedule: &[u64],
    now: Timestamp,
    jitter: f64,
) -> Next {
    if result.succeeded() {
        return Next::Delivered;
    }
    if result.response_status == Some(410) {
        return Next::Disable("the receiver answered 410 Gone".into());
    }
    let retries_used = attempt.saturating_sub(1);
    if retries_used >= retry_attempts {
        return Next::GiveUp;
    }
    let base = schedule
        .get(retries_used as usize)
        .or(schedule.last())
        .copied()
        .unwrap_or(60);
    let jittered = (base as f64 * (1.0 + 0.1 * jitter.clamp(-1.0, 1.0))).max(1.0);
    let mut delay_ms = (jittered * 1000.0) as i64;
    if let Some(wait) = result.retry_after_secs {
        delay_ms = delay_ms.max((wait.min(MAX_RETRY_AFTER_SECS) * 1000) as i64);
    }
    Next::RetryAt(now.plus_ms(delay_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    /// The spec's delays (§6): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 14 h, 20 h, 24 h.
    const DEFAULT_RETRY_SCHEDULE: [u64; 10] = [
        5, 300, 1_800, 7_200, 18_000, 36_000, 36_000, 50_400, 72_000, 86_400,
    ];

    fn result(status: Option<u16>, error: Option<AttemptError>) -> AttemptResult {
        AttemptResult {
            started_at: Timestamp(0),
            latency_ms: 1,
            response_status: status,
            error,
            response_body_excerpt: String::new(),
            retry_after_secs: None,
        }
    }

    const NOW: Timestamp = Timestamp(1_000_000);

    #[test]
    fn success_is_any_2xx() {
        for status in [200, 201, 204, 299] {
            assert_eq!(
                next_step(
                    &result(Some(status), None),
                    1,
                    5,
                    &DEFAULT_RETRY_SCHEDULE,
                    NOW,
                    0.0
                ),
                Next::Delivered
            );
        }
        assert_eq!(status_error(302), Some(AttemptError::Redirect));
        assert_eq!(status_error(500), Some(AttemptError::HttpStatus));
        assert_eq!(status_error(204), None);
    }

    #[test]
    fn the_schedule_is_followed_with_jitter_within_ten_percent() {
        let failed = result(Some(500), Some(AttemptError::HttpStatus));
        for (attempt, expected) in (1..=10).zip(DEFAULT_RETRY_SCHEDULE) {
            let plain = next_step(&failed, attempt, 10, &DEFAULT_RETRY_SCHEDULE, NOW, 0.0);
            assert_eq!(
                plain,
                Next::RetryAt(NOW.plus_ms(expected as i64 * 1000)),
                "after attempt {attempt}"
            );
            let Next::RetryAt(high) =
                next_step(&failed, attempt, 10, &DEFAULT_RETRY_SCHEDULE, NOW, 1.0)
            else {
                panic!()
            };
            let Next::RetryAt(low) =
                next_step(&failed, attempt, 10, &DEFAULT_RETRY_SCHEDULE, NOW, -1.0)
            else {
                panic!()
            };
            assert_eq!(high.ms() - NOW.ms(), (expected as f64 * 1100.0) as i64);
            assert_eq!(low.ms() - NOW.ms(), (expected as f64 * 900.0) as i64);
        }
    }

    #[test]
    fn retry_attempts_counts_retries_after_the_first() {
        let failed = result(None, Some(AttemptError::Connect));
        assert_eq!(
            next_step(&failed, 1, 0, &DEFAULT_RETRY_SCHEDULE, NOW, 0.0),
            Next::GiveUp
        );
        assert!(matches!(
            next_step(&failed, 3, 3, &DEFAULT_RETRY_SCHEDULE, NOW, 0.0),
            Next::RetryAt(_)
        ));
        assert_eq!(
            next_step(&failed, 4, 3, &DEFAULT_RETRY_SCHEDULE, NOW, 0.0),
            Next::GiveUp
        );
    }

    #[test]
    fn gone_disables_and_retry_after_delays_up_to_an_hour() {
        assert!(matches!(
            next_step(
                &result(Some(410), Some(AttemptError::HttpStatus)),
                1,
                5,
                &[5],
                NOW,
                0.0
            ),
            Next::Disable(_)
        ));
        let mut limited = result(Some(429), Some(AttemptError::HttpStatus));
        limited.retry_after_secs = Some(120);
        assert_eq!(
            next_step(&limited, 1, 5, &[5], NOW, 0.0),
            Next::RetryAt(NOW.plus_ms(120_000))
        );
        limited.retry_after_secs = Some(86_400);
        assert_eq!(
            next_step(&limited, 1, 5, &[5], NOW, 0.0),
            Next::RetryAt(NOW.plus_ms(3_600_000))
        );
        limited.retry_after_secs = Some(1);
        assert_eq!(
            next_step(&limited, 1, 5, &[5], NOW, 0.0),
            Next::RetryAt(NOW.plus_ms(5_000)),
            "never sooner than the schedule"
        );
    }

    #[test]
    fn retry_after_is_read_only_on_429_and_503() {
        assert_eq!(retry_after(429, Some("30"), NOW), Some(30));
        assert_eq!(retry_after(503, Some(" 7 "), NOW), Some(7));
        assert_eq!(retry_after(500, Some("30"), NOW), None);
        assert_eq!(retry_after(429, Some("soon"), NOW), None);
        let now = Timestamp(784_111_777_000); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            retry_after(503, Some("Sun, 06 Nov 1994 08:50:37 GMT"), now),
            Some(60)
        );
    }
}
