//! Webhooks: the record, the settings a client chooses (parsed into ranges that cannot be
//! wrong), which events one receives, secret rotation with overlap, and delivery health.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::event::EventType;
use super::ids::{TenantId, WebhookId};
use super::retry::{AttemptResult, Next, RetryPolicy};
use super::time::Timestamp;
use super::url_policy::{WebhookUrl, loggable_url};
use super::webhook_controls::{
    CustomHeaders, EventFacts, Filter, MAX_CONCURRENCY, MAX_RATE_PER_MINUTE,
};

/// The longest one attempt may take (spec §5: `timeout_seconds` 1–60).
pub const MAX_TIMEOUT_SECS: u32 = 60;
const DEFAULT_TIMEOUT_SECS: u32 = 10;
const MAX_RETRY_ATTEMPTS: u32 = 10;
const DEFAULT_RETRY_ATTEMPTS: u32 = 5;
const MAX_DESCRIPTION: usize = 200;
/// A rotation's overlap may last a week at most.
const MAX_OVERLAP_HOURS: u32 = 168;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub tenant_id: TenantId,
    pub url: String,
    pub event_types: Vec<EventType>,
    pub is_active: bool,
    pub timeout_seconds: u32,
    pub retry_attempts: u32,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Soft delete: a deleted webhook is invisible everywhere and receives nothing.
    pub deleted_at: Option<Timestamp>,
    /// The newest signing secret (`mega_whsec_` + 64 hex).
    pub secret: String,
    /// The secret before the last rotation, signing alongside until it expires.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<Timestamp>,
    pub last_delivery_at: Option<Timestamp>,
    pub last_delivery_status: Option<u16>,
    pub consecutive_failures: u32,
    /// When the current run of failures began; cleared by a success.
    pub failing_since: Option<Timestamp>,
    pub disabled_reason: Option<String>,
    /// Which lead events it gets (spec §13); `None`: all it subscribes to.
    pub filter: Option<Filter>,
    /// Sent with every delivery; never logged, sensitive values redacted in responses.
    pub headers: CustomHeaders,
    /// Attempts in flight at most; `None`: `webhooks.max_in_flight_per_webhook`.
    pub max_concurrency: Option<u32>,
    /// Attempts started in any minute at most; `None`: no limit.
    pub rate_limit_per_minute: Option<u32>,
}

/// Secrets stay out of logs, whatever gets printed: the signing secrets, and what the URL's
/// query may carry.
impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("url", &loggable_url(&self.url))
            .field("is_active", &self.is_active)
            .field("deleted_at", &self.deleted_at)
            .field("secret", &"<redacted>")
            .field("headers", &self.headers.0.len())
            .finish_non_exhaustive()
    }
}

/// A new secret, and how long the current one keeps signing beside it.
pub struct Rotation {
    pub secret: String,
    pub overlap: OverlapHours,
}

/// The settings of a new webhook, every one within its bounds.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: WebhookUrl,
    pub event_types: EventTypes,
    pub is_active: bool,
    pub timeout_seconds: TimeoutSeconds,
    pub retry_attempts: RetryAttempts,
    pub description: Description,
    pub filter: Option<Filter>,
    pub headers: CustomHeaders,
    pub max_concurrency: Option<u32>,
    pub rate_limit_per_minute: Option<u32>,
}

impl WebhookSettings {
    /// A new webhook's settings: the given ones, the spec's defaults for the rest.
    pub fn new(url: WebhookUrl, given: WebhookPatch) -> WebhookSettings {
        WebhookSettings {
            url,
            event_types: given.event_types.unwrap_or_default(),
            is_active: given.is_active.unwrap_or(true),
            timeout_seconds: given.timeout_seconds.unwrap_or_default(),
            retry_attempts: given.retry_attempts.unwrap_or_default(),
            description: given.description.unwrap_or_default(),
            filter: given.filter.flatten(),
            headers: given.headers.unwrap_or_default(),
            max_concurrency: given.max_concurrency.flatten(),
            rate_limit_per_minute: given.rate_limit_per_minute.flatten(),
        }
    }
}

/// Changes to a webhook's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<WebhookUrl>,
    pub event_types: Option<EventTypes>,
    pub is_active: Option<bool>,
    pub timeout_seconds: Option<TimeoutSeconds>,
    pub retry_attempts: Option<RetryAttempts>,
    pub description: Option<Description>,
    /// `Some(None)` clears the filter.
    pub filter: Option<Option<Filter>>,
    pub headers: Option<CustomHeaders>,
    /// `Some(None)`: back to the configured default.
    pub max_concurrency: Option<Option<u32>>,
    /// `Some(None)`: no limit.
    pub rate_limit_per_minute: Option<Option<u32>>,
    /// With `is_active: true`: cancel the held deliveries instead of releasing them.
    pub discard_held: bool,
}

/// `max_concurrency`: 1–64.
pub fn parse_max_concurrency(value: i64) -> Result<u32, String> {
    in_range("max_concurrency", value, 1, MAX_CONCURRENCY)
}

/// `rate_limit_per_minute`: 1–600,000.
pub fn parse_rate_limit(value: i64) -> Result<u32, String> {
    in_range("rate_limit_per_minute", value, 1, MAX_RATE_PER_MINUTE)
}

fn in_range(name: &str, value: i64, min: u32, max: u32) -> Result<u32, String> {
    u32::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| format!("{name} must be between {min} and {max}"))
}

macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:expr, $max:expr, $default:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(u32);

        impl $name {
            pub fn parse(value: i64) -> Result<$name, String> {
                in_range($field, value, $min, $max).map($name)
            }

            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> $name {
                $name($default)
            }
        }
    };
}

bounded!(
    /// How long one attempt may take, in seconds.
    TimeoutSeconds, "timeout_seconds", 1, MAX_TIMEOUT_SECS, DEFAULT_TIMEOUT_SECS
);
bounded!(
    /// Retries after the first attempt.
    RetryAttempts, "retry_attempts", 0, MAX_RETRY_ATTEMPTS, DEFAULT_RETRY_ATTEMPTS
);
bounded!(
    /// How long a rotated-out secret keeps signing; the default comes from the config.
    OverlapHours, "overlap_hours", 0, MAX_OVERLAP_HOURS, 24
);

impl OverlapHours {
    /// The configured default, which the config validates to the same bounds.
    pub fn configured(hours: u32) -> OverlapHours {
        OverlapHours(hours.min(MAX_OVERLAP_HOURS))
    }

    fn ms(self) -> i64 {
        i64::from(self.0) * 3_600_000
    }
}

/// The event types a webhook subscribes to: at least one, no repeats, subscribable ones only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypes(Vec<EventType>);

impl EventTypes {
    pub fn parse(raw: &[String]) -> Result<EventTypes, String> {
        let mut types = Vec::new();
        for name in raw {
            let t = EventType::parse_subscribable(name).map_err(|e| format!("event_types: {e}"))?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
        if types.is_empty() {
            return Err("event_types must name at least one event type".into());
        }
        Ok(EventTypes(types))
    }

    pub fn into_vec(self) -> Vec<EventType> {
        self.0
    }
}

impl Default for EventTypes {
    fn default() -> EventTypes {
        EventTypes(vec![EventType::LeadCreated])
    }
}

/// An optional description of at most 200 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description(Option<String>);

impl Description {
    pub fn parse(raw: Option<String>) -> Result<Description, String> {
        match raw {
            Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(format!(
                "description must be at most {MAX_DESCRIPTION} characters"
            )),
            other => Ok(Description(other)),
        }
    }
}

impl Webhook {
    pub fn new(
        id: WebhookId,
        tenant: TenantId,
        settings: WebhookSettings,
        secret: String,
        now: Timestamp,
    ) -> Webhook {
        Webhook {
            id,
            tenant_id: tenant,
            url: settings.url.into_string(),
            event_types: settings.event_types.into_vec(),
            is_active: settings.is_active,
            timeout_seconds: settings.timeout_seconds.get(),
            retry_attempts: settings.retry_attempts.get(),
            description: settings.description.0,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            secret,
            previous_secret: None,
            previous_secret_expires_at: None,
            last_delivery_at: None,
            last_delivery_status: None,
            consecutive_failures: 0,
            failing_since: None,
            disabled_reason: None,
            filter: settings.filter,
            headers: settings.headers,
            max_concurrency: settings.max_concurrency,
            rate_limit_per_minute: settings.rate_limit_per_minute,
        }
    }

    /// The secrets that sign a delivery made at `now`: the newest first, then the previous one
    /// while its overlap lasts.
    pub fn live_secrets(&self, now: Timestamp) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some(previous) = self.previous_secret_at(now) {
            secrets.push(previous);
        }
        secrets
    }

    /// When the previous secret stops signing, if it still signs at `now`.
    pub fn overlap_ends(&self, now: Timestamp) -> Option<Timestamp> {
        self.previous_secret_at(now)
            .and(self.previous_secret_expires_at)
    }

    fn previous_secret_at(&self, now: Timestamp) -> Option<&str> {
        match (&self.previous_secret, self.previous_secret_expires_at) {
            (Some(previous), Some(until)) if until > now => Some(previous),
            _ => None,
        }
    }

    /// Whether an event of `event_type` is sent to this webhook now.
    pub fn receives(&self, event_type: EventType) -> bool {
        self.is_active && self.subscribes(event_type)
    }

    /// Whether an event of `event_type` is queued for this webhook: sent while it is active,
    /// held while it is not (spec §13). A deleted webhook subscribes to nothing.
    pub fn subscribes(&self, event_type: EventType) -> bool {
        self.deleted_at.is_none() && self.event_types.contains(&event_type)
    }

    /// For a rate-limited webhook: how many deliveries the engine may lease ahead (ten seconds
    /// of its rate, at least one), and how much longer than usual their lease must last for the
    /// last of them to start before it runs out (their spacing times that many).
    pub fn throttled_ahead(&self) -> Option<(usize, i64)> {
        let rate = self.rate_limit_per_minute.filter(|r| *r > 0)?;
        let depth = (rate as usize / 6).max(1);
        let extra_ms = (depth as u64 * 60_000).div_ceil(u64::from(rate)) as i64;
        Some((depth, extra_ms))
    }

    /// Whether its filter lets a lead event with these facts through (an event without a lead
    /// always passes).
    pub fn admits(&self, facts: Option<&EventFacts<'_>>) -> bool {
        match (&self.filter, facts) {
            (Some(filter), Some(facts)) => filter.passes(facts),
            _ => true,
        }
    }

    pub fn apply(&mut self, patch: WebhookPatch, now: Timestamp) {
        if let Some(url) = patch.url {
            self.url = url.into_string();
        }
        if let Some(types) = patch.event_types {
            self.event_types = types.into_vec();
        }
        if let Some(active) = patch.is_active {
            if active && !self.is_active {
                // Turning a webhook back on forgives its past failures.
                self.disabled_reason = None;
                self.consecutive_failures = 0;
                self.failing_since = None;
            }
            self.is_active = active;
        }
        if let Some(timeout) = patch.timeout_seconds {
            self.timeout_seconds = timeout.get();
        }
        if let Some(retries) = patch.retry_attempts {
            self.retry_attempts = retries.get();
        }
        if let Some(description) = patch.description {
            self.description = description.0;
        }
        if let Some(filter) = patch.filter {
            self.filter = filter;
        }
        if let Some(headers) = patch.headers {
            self.headers = headers;
        }
        if let Some(max) = patch.max_concurrency {
            self.max_concurrency = max;
        }
        if let Some(rate) = patch.rate_limit_per_minute {
            self.rate_limit_per_minute = rate;
        }
        self.updated_at = now;
    }

    /// The new secret signs at once; the current one keeps signing for the overlap. Two
    /// rotations within one overlap: the oldest secret stops at once, the one before the newest
    /// keeps signing.
    pub fn rotate(&mut self, rotation: Rotation, now: Timestamp) {
        let previous = std::mem::replace(&mut self.secret, rotation.secret);
        if rotation.overlap.get() > 0 {
            self.previous_secret = Some(previous);
            self.previous_secret_expires_at = Some(now.plus_ms(rotation.overlap.ms()));
        } else {
            self.previous_secret = None;
            self.previous_secret_expires_at = None;
        }
        self.updated_at = now;
    }

    pub fn delete(&mut self, now: Timestamp) {
        self.deleted_at = Some(now);
        self.updated_at = now;
        self.is_active = false;
    }

    /// Keeps the delivery health current after an attempt: last status, the failure streak,
    /// and turning the webhook off after 410 or after failing without a break for the
    /// policy's limit. Returns the reason when this attempt turned it off.
    pub fn note_attempt(
        &mut self,
        result: &AttemptResult,
        next: &Next,
        policy: &RetryPolicy,
        now: Timestamp,
    ) -> Option<String> {
        self.last_delivery_at = Some(now);
        self.last_delivery_status = result.response_status;
        if result.succeeded() {
            self.consecutive_failures = 0;
            self.failing_since = None;
            return None;
        }
        self.consecutive_failures += 1;
        let since = *self.failing_since.get_or_insert(result.started_at);
        let reason = match next {
            Next::Disable(reason) => reason.clone(),
            _ if now.ms() - since.ms() >= policy.disable_after_failing_ms => format!(
                "every delivery failed for {} hours",
                policy.disable_after_failing_ms / 3_600_000
            ),
            _ => return None,
        };
        if !self.is_active {
            return None;
        }
        self.is_active = false;
        self.disabled_reason = Some(reason.clone());
        self.updated_at = now;
        Some(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::retry::AttemptError;

    const T0: Timestamp = Timestamp(1_780_000_000_000);
    const HOUR: i64 = 3_600_000;

    fn webhook() -> Webhook {
        webhook_at("https://8.8.8.8/hook")
    }

    fn webhook_at(raw: &str) -> Webhook {
        let settings = WebhookSettings {
            url: WebhookUrl::literal(raw),
            event_types: EventTypes::default(),
            is_active: true,
            timeout_seconds: TimeoutSeconds::default(),
            retry_attempts: RetryAttempts::default(),
            description: Description::default(),
            filter: None,
            headers: Default::default(),
            max_concurrency: None,
            rate_limit_per_minute: None,
        };
        Webhook::new(
            WebhookId::from_bytes([3; 16]),
            TenantId::from_bytes([1; 16]),
            settings,
            "mega_whsec_first".into(),
            T0,
        )
    }

    fn rotation(secret: &str, hours: i64) -> Rotation {
        Rotation {
            secret: secret.into(),
            overlap: OverlapHours::parse(hours).unwrap(),
        }
    }

    fn attempt(status: Option<u16>, started_at: Timestamp) -> AttemptResult {
        AttemptResult {
            started_at,
            latency_ms: 5,
            response_status: status,
            error: match status {
                Some(200..=299) => None,
                Some(_) => Some(AttemptError::HttpStatus),
                None => Some(AttemptError::Connect),
            },
            response_body_excerpt: String::new(),
            retry_after_secs: None,
        }
    }

    /// The spec's 120 hours.
    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: vec![5, 300],
            disable_after_failing_ms: 120 * HOUR,
        }
    }

    #[test]
    fn debug_shows_where_a_webhook_points_but_not_its_query() {
        let raw = "https://8.8.8.8:8443/hooks/crm?token=tok3n-value#fragment";
        for shown in [
            format!("{:?}", webhook_at(raw)),
            format!("{:?}", WebhookUrl::literal(raw)),
        ] {
            assert!(shown.contains("https://8.8.8.8:8443/hooks/crm"), "{shown}");
            assert!(!shown.contains("tok3n-value"), "{shown}");
            assert!(!shown.contains("token="), "{shown}");
            assert!(!shown.contains("fragment"), "{shown}");
        }
    }

    #[test]
    fn settings_take_the_spec_defaults_and_bounds() {
        let w = webhook();
        assert_eq!(w.event_types, [EventType::LeadCreated]);
        assert_eq!((w.timeout_seconds, w.retry_attempts), (10, 5));
        assert!(TimeoutSeconds::parse(0).is_err());
        assert!(TimeoutSeconds::parse(61).is_err());
        assert_eq!(TimeoutSeconds::parse(60).map(TimeoutSeconds::get), Ok(60));
        assert_eq!(
            RetryAttempts::parse(11).unwrap_err(),
            "retry_attempts must be between 0 and 10"
        );
        assert_eq!(
            OverlapHours::parse(169).unwrap_err(),
            "overlap_hours must be between 0 and 168"
        );
        assert!(OverlapHours::parse(-1).is_err());
        assert!(Description::parse(Some("x".repeat(201))).is_err());
        let repeated = ["lead.updated", "lead.updated"].map(String::from);
        assert_eq!(
            EventTypes::parse(&repeated).unwrap().into_vec(),
            [EventType::LeadUpdated]
        );
        assert!(EventTypes::parse(&[]).is_err());
        assert!(EventTypes::parse(&["webhook.test".into()]).is_err());
    }

    #[test]
    fn rotated_secret_signs_both_during_overlap() {
        let mut w = webhook();
        w.rotate(rotation("mega_whsec_second", 24), T0);
        assert_eq!(
            w.live_secrets(T0),
            ["mega_whsec_second", "mega_whsec_first"]
        );
        let end = T0.plus_ms(24 * HOUR);
        assert_eq!(w.overlap_ends(T0), Some(end));
        assert_eq!(w.live_secrets(end.plus_ms(-1)).len(), 2);
        assert_eq!(
            w.live_secrets(end),
            ["mega_whsec_second"],
            "expired at its end"
        );
        assert_eq!(w.overlap_ends(end), None);
    }

    #[test]
    fn two_rotations_inside_one_overlap_drop_the_oldest_at_once() {
        let mut w = webhook();
        w.rotate(rotation("mega_whsec_second", 24), T0);
        w.rotate(rotation("mega_whsec_third", 24), T0.plus_ms(HOUR));
        assert_eq!(
            w.live_secrets(T0.plus_ms(HOUR)),
            ["mega_whsec_third", "mega_whsec_second"]
        );
    }

    #[test]
    fn rotation_without_overlap_stops_the_old_secret_at_once() {
        let mut w = webhook();
        w.rotate(rotation("mega_whsec_second", 0), T0);
        assert_eq!(w.live_secrets(T0), ["mega_whsec_second"]);
        assert_eq!(w.previous_secret, None);
    }

    #[test]
    fn receives_only_subscribed_events_while_active_and_not_deleted() {
        let mut w = webhook();
        assert!(w.receives(EventType::LeadCreated));
        assert!(!w.receives(EventType::LeadUpdated));
        w.apply(
            WebhookPatch {
                is_active: Some(false),
                ..WebhookPatch::default()
            },
            T0,
        );
        assert!(!w.receives(EventType::LeadCreated));
        let mut deleted = webhook();
        deleted.delete(T0);
        assert!(!deleted.receives(EventType::LeadCreated));
    }

    #[test]
    fn a_success_clears_the_failure_streak() {
        let mut w = webhook();
        let failed = attempt(Some(500), T0);
        let retry = Next::RetryAt(T0.plus_ms(5_000));
        assert_eq!(w.note_attempt(&failed, &retry, &policy(), T0), None);
        assert_eq!(w.note_attempt(&failed, &retry, &policy(), T0), None);
        assert_eq!((w.consecutive_failures, w.failing_since), (2, Some(T0)));
        assert_eq!(w.last_delivery_status, Some(500));
        let ok = attempt(Some(204), T0.plus_ms(1));
        w.note_attempt(&ok, &Next::Delivered, &policy(), T0.plus_ms(1));
        assert_eq!((w.consecutive_failures, w.failing_since), (0, None));
        assert_eq!(w.last_delivery_status, Some(204));
        assert!(w.is_active);
    }

    #[test]
    fn gone_turns_the_webhook_off_with_the_reason() {
        let mut w = webhook();
        let gone = Next::Disable("the receiver answered 410 Gone".into());
        let reason = w.note_attempt(&attempt(Some(410), T0), &gone, &policy(), T0);
        assert_eq!(reason.as_deref(), Some("the receiver answered 410 Gone"));
        assert!(!w.is_active);
        assert_eq!(w.disabled_reason, reason);
    }

    #[test]
    fn failing_for_the_whole_limit_turns_the_webhook_off_and_patch_forgives() {
        let mut w = webhook();
        let retry = Next::RetryAt(T0);
        let almost = T0.plus_ms(120 * HOUR - 1);
        w.note_attempt(&attempt(None, T0), &retry, &policy(), T0);
        assert_eq!(
            w.note_attempt(&attempt(None, almost), &retry, &policy(), almost),
            None
        );
        assert!(w.is_active, "one millisecond short of 120 hours");
        let limit = T0.plus_ms(120 * HOUR);
        let reason = w.note_attempt(&attempt(None, limit), &retry, &policy(), limit);
        assert_eq!(
            reason.as_deref(),
            Some("every delivery failed for 120 hours")
        );
        assert!(!w.is_active);

        w.apply(
            WebhookPatch {
                is_active: Some(true),
                ..WebhookPatch::default()
            },
            limit,
        );
        assert!(w.is_active);
        assert_eq!(
            (w.consecutive_failures, w.failing_since, w.disabled_reason),
            (0, None, None)
        );
    }
}
