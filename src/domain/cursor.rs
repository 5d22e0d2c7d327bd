//! Opaque keyset-pagination cursor for lead listings.
//!
//! A cursor records where the previous page ended: the sort it was minted
//! for, the last row's sort value (epoch milliseconds) and the last row's id,
//! which breaks ties between rows with equal sort values. On the wire it is
//! base64url (no padding) of a compact JSON object:
//!
//! ```text
//! {"v":1,"s":"updated_at","d":"asc","t":1751464000000,"i":"0190…"}
//! ```
//!
//! JSON rather than a binary layout keeps it debuggable (a client can decode
//! one to file a bug) and, because every token starts with `{"`, makes every
//! cursor begin with `eyJ`, like the original API's examples. The `v` field
//! lets a future format be told apart from a corrupt token. Opaque does not
//! mean secret or tamper-proof: a forged cursor only repositions the
//! caller's own listing, which the query's other filters still bound.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Current cursor format version, written as `v`.
const VERSION: u32 = 1;

/// Longest accepted encoded cursor. A real one is under 150 characters;
/// the cap bounds the work done on hostile input before anything is decoded.
pub const MAX_ENCODED_LEN: usize = 512;

/// The column a lead listing is sorted by (`sort_by` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    CreatedAt,
    UpdatedAt,
    LastInteractionAt,
}

impl SortBy {
    /// Parses the wire name (`created_at`, `updated_at`,
    /// `last_interaction_at`); exact and case-sensitive, like the serde form.
    pub fn parse(s: &str) -> Option<SortBy> {
        match s {
            "created_at" => Some(Self::CreatedAt),
            "updated_at" => Some(Self::UpdatedAt),
            "last_interaction_at" => Some(Self::LastInteractionAt),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
            Self::LastInteractionAt => "last_interaction_at",
        }
    }
}

/// Sort direction (`sort_dir` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortDir {
    Asc,
    Desc,
}

impl SortDir {
    /// Parses the wire name (`asc`, `desc`); exact and case-sensitive.
    pub fn parse(s: &str) -> Option<SortDir> {
        match s {
            "asc" => Some(Self::Asc),
            "desc" => Some(Self::Desc),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }
}

/// Why a cursor could not be decoded. Not shown to clients (the token is
/// opaque to them, see [`CursorError`]), but kept for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedReason {
    /// Longer than [`MAX_ENCODED_LEN`] characters.
    TooLong,
    /// Not unpadded base64url (includes padding, standard-alphabet `+`/`/`,
    /// whitespace and non-canonical trailing bits).
    NotBase64,
    /// The decoded bytes are not a JSON object with an integer `v`.
    NotJson,
    /// A well-formed envelope with a `v` this build does not understand.
    UnsupportedVersion,
    /// Version 1, but fields are missing, unknown or of the wrong type.
    BadFields,
    /// `s` or `d` is not a known sort name.
    UnknownSort,
}

/// A cursor the API must refuse with HTTP 400. `Display` is the message,
/// naming the `cursor` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorError {
    /// The token is not one this API minted (or not in a format it still
    /// reads). The message deliberately does not include the reason.
    Malformed(MalformedReason),
    /// A valid cursor sent with a different `sort_by`/`sort_dir` than it was
    /// issued for; continuing would skip or repeat rows. Carries the sort
    /// the cursor was issued for, so the message can say what to send.
    SortMismatch { sort_by: SortBy, sort_dir: SortDir },
}

impl fmt::Display for CursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(_) => f.write_str("cursor is malformed"),
            Self::SortMismatch { sort_by, sort_dir } => write!(
                f,
                "cursor was issued for sort_by={} and sort_dir={}; send the same sort or drop the cursor",
                sort_by.as_str(),
                sort_dir.as_str()
            ),
        }
    }
}

impl std::error::Error for CursorError {}

/// Position after the last row of a page, for `sort_by`/`sort_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub sort_by: SortBy,
    pub sort_dir: SortDir,
    /// The last row's sort value, in milliseconds since the Unix epoch.
    pub last_value_ms: i64,
    /// The last row's id; the tie-breaker for equal sort values.
    pub last_id: Uuid,
}

/// Just the version, read first so that a future format with different
/// fields is reported as an unsupported version rather than bad fields.
#[derive(Deserialize)]
struct Envelope {
    v: u32,
}

/// The JSON body of a version-1 cursor. Sort names are plain strings so
/// that unknown names are told apart from other field errors.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireV1 {
    v: u32,
    s: String,
    d: String,
    t: i64,
    i: Uuid,
}

impl Cursor {
    /// The opaque token: base64url without padding of the compact JSON.
    pub fn encode(&self) -> String {
        let wire = WireV1 {
            v: VERSION,
            s: self.sort_by.as_str().to_owned(),
            d: self.sort_dir.as_str().to_owned(),
            t: self.last_value_ms,
            i: self.last_id,
        };
        // Serialising strings, integers and a UUID into memory cannot fail.
        let json = serde_json::to_vec(&wire).expect("cursor JSON serialisation is infallible");
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a token from [`Cursor::encode`], whatever sort it was minted
    /// for. Everything short of an exact version-1 cursor is
    /// [`CursorError::Malformed`]; an empty string is malformed too, so a
    /// handler that treats `cursor=` as "first page" must check for it first.
    pub fn decode(s: &str) -> Result<Cursor, CursorError> {
        use MalformedReason::*;
        let malformed = CursorError::Malformed;
        if s.len() > MAX_ENCODED_LEN {
            return Err(malformed(TooLong));
        }
        let json = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| malformed(NotBase64))?;
        let envelope: Envelope = serde_json::from_slice(&json).map_err(|_| malformed(NotJson))?;
        if envelope.v != VERSION {
            return Err(malformed(UnsupportedVersion));
        }
        let wire: WireV1 = serde_json::from_slice(&json).map_err(|_| malformed(BadFields))?;
        Ok(Cursor {
            sort_by: SortBy::parse(&wire.s).ok_or(malformed(UnknownSort))?,
            sort_dir: SortDir::parse(&wire.d).ok_or(malformed(UnknownSort))?,
            last_value_ms: wire.t,
            last_id: wire.i,
        })
    }

    /// [`Cursor::decode`], then checks the cursor was minted for this
    /// `sort_by`/`sort_dir`; a mismatch is [`CursorError::SortMismatch`]
    /// naming the sort it was issued for.
    pub fn decode_for(s: &str, sort_by: SortBy, sort_dir: SortDir) -> Result<Cursor, CursorError> {
        let cursor = Cursor::decode(s)?;
        if cursor.sort_by == sort_by && cursor.sort_dir == sort_dir {
            Ok(cursor)
        } else {
            Err(CursorError::SortMismatch {
                sort_by: cursor.sort_by,
                sort_dir: cursor.sort_dir,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0190a7b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b";

    fn sample() -> Cursor {
        Cursor {
            sort_by: SortBy::UpdatedAt,
            sort_dir: SortDir::Asc,
            last_value_ms: 1_751_464_000_000,
            last_id: Uuid::parse_str(ID).expect("valid uuid"),
        }
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn reason(token: &str) -> MalformedReason {
        match Cursor::decode(token) {
            Err(CursorError::Malformed(reason)) => reason,
            other => panic!("expected a malformed cursor, got {other:?}"),
        }
    }

    #[test]
    fn round_trips_every_sort() {
        for sort_by in [
            SortBy::CreatedAt,
            SortBy::UpdatedAt,
            SortBy::LastInteractionAt,
        ] {
            for sort_dir in [SortDir::Asc, SortDir::Desc] {
                for last_value_ms in [i64::MIN, -1, 0, 1_751_464_000_000, i64::MAX] {
                    let cursor = Cursor {
                        sort_by,
                        sort_dir,
                        last_value_ms,
                        last_id: Uuid::now_v7(),
                    };
                    assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
                }
            }
        }
    }

    #[test]
    fn encoding_is_base64url_of_compact_json() {
        let token = sample().encode();
        assert!(token.starts_with("eyJ"), "{token}");
        assert!(token.len() <= MAX_ENCODED_LEN);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{token}"
        );
        let json = URL_SAFE_NO_PAD.decode(&token).expect("base64url");
        assert_eq!(
            String::from_utf8(json).expect("utf-8"),
            format!(r#"{{"v":1,"s":"updated_at","d":"asc","t":1751464000000,"i":"{ID}"}}"#)
        );
    }

    #[test]
    fn longest_cursor_is_well_under_the_limit() {
        let cursor = Cursor {
            sort_by: SortBy::LastInteractionAt,
            sort_dir: SortDir::Desc,
            last_value_ms: i64::MIN,
            last_id: Uuid::max(),
        };
        assert!(cursor.encode().len() < 160);
    }

    #[test]
    fn decodes_a_hand_written_cursor() {
        let token = b64(&format!(
            r#"{{"v":1,"s":"updated_at","d":"asc","t":1751464000000,"i":"{ID}"}}"#
        ));
        assert_eq!(Cursor::decode(&token), Ok(sample()));
    }

    #[test]
    fn rejects_over_long_input() {
        assert_eq!(
            reason(&"A".repeat(MAX_ENCODED_LEN + 1)),
            MalformedReason::TooLong
        );
        // Exactly at the limit, it gets as far as decoding.
        assert_ne!(
            reason(&"A".repeat(MAX_ENCODED_LEN)),
            MalformedReason::TooLong
        );
    }

    #[test]
    fn rejects_non_base64url() {
        let token = sample().encode();
        for bad in [
            "not a cursor!".to_owned(),
            format!("{token}="),
            format!(" {token}"),
            token.replace('e', "+"),
            "A".to_owned(), // a lone sextet cannot encode a byte
        ] {
            assert_eq!(reason(&bad), MalformedReason::NotBase64, "{bad:?}");
        }
    }

    #[test]
    fn rejects_non_json() {
        for bad in ["", "hello", "[1,2]", "{\"v\":1", "{\"v\":\"1\"}", "{}"] {
            assert_eq!(reason(&b64(bad)), MalformedReason::NotJson, "{bad:?}");
        }
    }

    #[test]
    fn rejects_other_versions() {
        for v in [0, 2, 99] {
            let token = b64(&format!(
                r#"{{"v":{v},"s":"updated_at","d":"asc","t":1,"i":"{ID}"}}"#
            ));
            assert_eq!(reason(&token), MalformedReason::UnsupportedVersion, "v={v}");
        }
        // A future format need not share version 1's fields.
        assert_eq!(
            reason(&b64(r#"{"v":2,"k":"x"}"#)),
            MalformedReason::UnsupportedVersion
        );
    }

    #[test]
    fn rejects_missing_unknown_or_mistyped_fields() {
        for bad in [
            r#"{"v":1,"d":"asc","t":1,"i":"ID"}"#,
            r#"{"v":1,"s":"updated_at","t":1,"i":"ID"}"#,
            r#"{"v":1,"s":"updated_at","d":"asc","i":"ID"}"#,
            r#"{"v":1,"s":"updated_at","d":"asc","t":1}"#,
            r#"{"v":1,"s":"updated_at","d":"asc","t":1,"i":"ID","x":0}"#,
            r#"{"v":1,"s":"updated_at","d":"asc","t":"1","i":"ID"}"#,
            r#"{"v":1,"s":"updated_at","d":"asc","t":1.5,"i":"ID"}"#,
            r#"{"v":1,"s":"updated_at","d":"asc","t":1,"i":"not-a-uuid"}"#,
            r#"{"v":1,"s":null,"d":"asc","t":1,"i":"ID"}"#,
        ] {
            let json = bad.replace("ID", ID);
            assert_eq!(reason(&b64(&json)), MalformedReason::BadFields, "{json}");
        }
    }

    #[test]
    fn rejects_trailing_data() {
        let json = format!(r#"{{"v":1,"s":"updated_at","d":"asc","t":1,"i":"{ID}"}}x"#);
        assert_eq!(reason(&b64(&json)), MalformedReason::NotJson);
    }

    #[test]
    fn rejects_unknown_sort_names() {
        for (s, d) in [
            ("name", "asc"),
            ("UPDATED_AT", "asc"),
            ("updated_at", "up"),
            ("updated_at", "ASC"),
        ] {
            let token = b64(&format!(
                r#"{{"v":1,"s":"{s}","d":"{d}","t":1,"i":"{ID}"}}"#
            ));
            assert_eq!(reason(&token), MalformedReason::UnknownSort, "{s} {d}");
        }
    }

    #[test]
    fn malformed_message_names_the_parameter() {
        let err = Cursor::decode("!!").expect_err("malformed");
        assert_eq!(err.to_string(), "cursor is malformed");
    }

    #[test]
    fn decode_for_accepts_the_same_sort() {
        let token = sample().encode();
        assert_eq!(
            Cursor::decode_for(&token, SortBy::UpdatedAt, SortDir::Asc),
            Ok(sample())
        );
    }

    #[test]
    fn decode_for_rejects_another_sort() {
        let token = Cursor {
            sort_by: SortBy::CreatedAt,
            sort_dir: SortDir::Desc,
            ..sample()
        }
        .encode();
        for (sort_by, sort_dir) in [
            (SortBy::UpdatedAt, SortDir::Desc),
            (SortBy::CreatedAt, SortDir::Asc),
            (SortBy::LastInteractionAt, SortDir::Asc),
        ] {
            let err = Cursor::decode_for(&token, sort_by, sort_dir).expect_err("mismatch");
            assert_eq!(
                err,
                CursorError::SortMismatch {
                    sort_by: SortBy::CreatedAt,
                    sort_dir: SortDir::Desc
                }
            );
            assert_eq!(
                err.to_string(),
                "cursor was issued for sort_by=created_at and sort_dir=desc; send the same sort or drop the cursor"
            );
        }
    }

    #[test]
    fn decode_for_reports_malformed_before_sort() {
        assert_eq!(
            Cursor::decode_for("%%%", SortBy::CreatedAt, SortDir::Asc),
            Err(CursorError::Malformed(MalformedReason::NotBase64))
        );
    }

    #[test]
    fn sort_names_parse_and_print() {
        for sort_by in [
            SortBy::CreatedAt,
            SortBy::UpdatedAt,
            SortBy::LastInteractionAt,
        ] {
            assert_eq!(SortBy::parse(sort_by.as_str()), Some(sort_by));
        }
        for sort_dir in [SortDir::Asc, SortDir::Desc] {
            assert_eq!(SortDir::parse(sort_dir.as_str()), Some(sort_dir));
        }
        assert_eq!(SortBy::parse("Created_At"), None);
        assert_eq!(SortBy::parse(""), None);
        assert_eq!(SortDir::parse("descending"), None);
    }

    #[test]
    fn serde_names_match_wire_names() {
        for sort_by in [
            SortBy::CreatedAt,
            SortBy::UpdatedAt,
            SortBy::LastInteractionAt,
        ] {
            let json = serde_json::to_string(&sort_by).expect("serialise");
            assert_eq!(json, format!("\"{}\"", sort_by.as_str()));
            assert_eq!(serde_json::from_str::<SortBy>(&json).ok(), Some(sort_by));
        }
        for sort_dir in [SortDir::Asc, SortDir::Desc] {
            let json = serde_json::to_string(&sort_dir).expect("serialise");
            assert_eq!(json, format!("\"{}\"", sort_dir.as_str()));
            assert_eq!(serde_json::from_str::<SortDir>(&json).ok(), Some(sort_dir));
        }
    }
}
