//! Time as Unix milliseconds inside leadbase; ISO-8601 UTC with milliseconds on the wire
//! (`2026-07-02T14:04:59.000Z`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// A point in time, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// Where leadbase reads the time: the system clock, shifted by an offset that only tests move.
/// The server holds one and hands clones to the store, the handlers and the delivery engine, so
/// a test can make key expiry, secret overlaps and retry backoff happen without waiting.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(system.saturating_add(self.offset_ms.load(Ordering::Relaxed)))
    }

    /// Moves this clock and every clone of it forward by `ms`. Never back: ids are time ordered
    /// by the system clock, and the delivery log and pruning rely on ids and times agreeing.
    pub fn advance(&self, ms: u32) {
        self.offset_ms.fetch_add(i64::from(ms), Ordering::Relaxed);
    }
}

impl Timestamp {
    /// The system clock's time. Code that decides something from the time reads a [`Clock`]
    /// instead; this is for timestamps nobody can move (log lines, the receive tool).
    pub fn now() -> Timestamp {
        Clock::default().now()
    }

    pub fn ms(self) -> i64 {
        self.0
    }

    pub fn seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn plus_ms(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    pub fn plus_hours(self, hours: u32) -> Timestamp {
        self.plus_ms(i64::from(hours) * 3_600_000)
    }

    /// `2026-07-02T14:04:59.000Z`
    pub fn to_iso(self) -> String {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&format).ok())
            .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into())
    }

    /// Accepts RFC 3339 (`2026-07-02T14:04:59Z`, `...+02:00`, fractional seconds) and the other
    /// ISO-8601 date-time forms; a bare date means its midnight UTC.
    pub fn parse_iso(raw: &str) -> Option<Timestamp> {
        let raw = raw.trim();
        let parsed = OffsetDateTime::parse(raw, &Rfc3339)
            .or_else(|_| OffsetDateTime::parse(raw, &Iso8601::DEFAULT))
            .ok()
            .or_else(|| {
                let date =
                    time::Date::parse(raw, format_description!("[year]-[month]-[day]")).ok()?;
                Some(date.midnight().assume_offset(UtcOffset::UTC))
            })?;
        let ms = parsed.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(ms).ok().map(Timestamp)
    }
}

/// ISO text in human-readable formats (JSON), plain milliseconds in binary ones (stored records).
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_iso())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return i64::deserialize(d).map(Timestamp);
        }
        let raw = String::deserialize(d)?;
        Timestamp::parse_iso(&raw).ok_or_else(|| {
            serde::de::Error::custom(format!("`{raw}` is not an ISO-8601 date-time"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_in_utc() {
        assert_eq!(Timestamp(0).to_iso(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_783_001_099_000).to_iso(),
            "2026-07-02T14:04:59.000Z"
        );
        assert_eq!(
            Timestamp(1_783_001_099_123).to_iso(),
            "2026-07-02T14:04:59.123Z"
        );
    }

    #[test]
    fn parses_iso_forms() {
        let t = Timestamp(1_783_001_099_000);
        assert_eq!(Timestamp::parse_iso("2026-07-02T14:04:59.000Z"), Some(t));
        assert_eq!(Timestamp::parse_iso("2026-07-02T14:04:59Z"), Some(t));
        assert_eq!(Timestamp::parse_iso("2026-07-02T16:04:59+02:00"), Some(t));
        assert_eq!(
            Timestamp::parse_iso("2026-07-02"),
            Some(Timestamp(1_782_950_400_000))
        );
        assert_eq!(Timestamp::parse_iso("yesterday"), None);
        assert_eq!(Timestamp::parse_iso("2026-13-02T00:00:00Z"), None);
    }

    #[test]
    fn binary_formats_store_milliseconds() {
        let t = Timestamp(1_783_001_099_123);
        let bytes = postcard::to_allocvec(&t).unwrap();
        assert_eq!(postcard::from_bytes::<Timestamp>(&bytes).unwrap(), t);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-07-02T14:04:59.123Z\""
        );
    }
}
