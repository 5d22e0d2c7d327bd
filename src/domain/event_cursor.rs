//! The event log's cursor (spec §11.4): a position in one tenant's log, the sequence number of
//! the last event a poller has seen. On the wire it is base64url (no padding) of a compact JSON
//! object, like the lead cursors:
//!
//! ```text
//! {"v":1,"e":"01a2…","q":1234}
//! ```
//!
//! The tenant is in it so that a cursor handed to another tenant's key is refused rather than
//! read as a position in a log it was not minted for. Opaque, not secret: a forged one only
//! repositions the caller's own reading.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::cursor::MAX_ENCODED_LEN;
use super::ids::TenantId;

const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    pub tenant: TenantId,
    /// The last sequence number seen; the next page starts after it.
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventCursorError {
    #[error("after is not a cursor this API minted")]
    Malformed,
    #[error("after is a cursor of another customer's event log")]
    OtherTenant,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    v: u32,
    e: uuid::Uuid,
    q: u64,
}

impl EventCursor {
    pub fn encode(&self) -> String {
        let wire = Wire {
            v: VERSION,
            e: self.tenant.uuid(),
            q: self.seq,
        };
        URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&wire).expect("cursor JSON serialisation is infallible"))
    }

    /// Decodes a token minted for `tenant`.
    pub fn decode_for(raw: &str, tenant: TenantId) -> Result<EventCursor, EventCursorError> {
        if raw.len() > MAX_ENCODED_LEN {
            return Err(EventCursorError::Malformed);
        }
        let json = URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| EventCursorError::Malformed)?;
        let wire: Wire = serde_json::from_slice(&json).map_err(|_| EventCursorError::Malformed)?;
        if wire.v != VERSION {
            return Err(EventCursorError::Malformed);
        }
        if wire.e != tenant.uuid() {
            return Err(EventCursorError::OtherTenant);
        }
        Ok(EventCursor {
            tenant,
            seq: wire.q,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_for_its_tenant_only() {
        let tenant = TenantId::from_bytes([3; 16]);
        let cursor = EventCursor { tenant, seq: 42 };
        let token = cursor.encode();
        assert!(token.starts_with("eyJ"), "{token}");
        assert_eq!(EventCursor::decode_for(&token, tenant), Ok(cursor));
        assert_eq!(
            EventCursor::decode_for(&token, TenantId::from_bytes([4; 16])),
            Err(EventCursorError::OtherTenant)
        );
    }

    #[test]
    fn anything_else_is_malformed() {
        let tenant = TenantId::from_bytes([3; 16]);
        let bad = |raw: &str| EventCursor::decode_for(raw, tenant);
        assert_eq!(bad(""), Err(EventCursorError::Malformed));
        assert_eq!(bad("not base64!"), Err(EventCursorError::Malformed));
        let other_version =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"v":2,"e":"{}","q":1}}"#, tenant.uuid()));
        assert_eq!(bad(&other_version), Err(EventCursorError::Malformed));
        let negative =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"v":1,"e":"{}","q":-1}}"#, tenant.uuid()));
        assert_eq!(bad(&negative), Err(EventCursorError::Malformed));
        assert_eq!(bad(&"e".repeat(600)), Err(EventCursorError::Malformed));
    }
}
