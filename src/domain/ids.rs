//! Typed identifiers. Every id is a UUIDv7 (time ordered), so ids sort by creation time and
//! fixed-width big-endian keys built from them give range scans in insertion order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }
            pub fn from_uuid(uuid: Uuid) -> Self {
                $name(uuid)
            }
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                $name(Uuid::from_bytes(bytes))
            }
            pub fn bytes(&self) -> [u8; 16] {
                *self.0.as_bytes()
            }
            pub fn uuid(&self) -> Uuid {
                self.0
            }
            /// Accepts any UUID spelling `uuid` accepts (hyphenated, simple, braced, urn).
            pub fn parse(raw: &str) -> Option<Self> {
                Uuid::parse_str(raw.trim()).ok().map($name)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }

        /// Stored and sent as the 16 raw bytes in binary formats, as the hyphenated string in JSON.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Uuid::deserialize(d).map($name)
            }
        }
    };
}

id_type!(
    /// A tenant (the MEGA API calls it a customer; `x-customer-id`).
    TenantId
);
id_type!(
    /// A personal access token's record (not the token itself).
    KeyId
);
id_type!(StageId);
id_type!(CustomFieldId);
id_type!(OwnerId);
id_type!(LeadId);
id_type!(WebhookId);
id_type!(EventId);
id_type!(InteractionId);
id_type!(
    /// One logical delivery of one event to one webhook; stable across retries.
    DeliveryId
);

impl TenantId {
    /// Only the hyphenated 8-4-4-4-12 form, in either case: the spelling the API hands out. The
    /// `x-customer-id` header takes this, so one tenant has one header value (for proxies' logs
    /// and rules, and for whatever a receiver compares) rather than the four `uuid` would read.
    pub fn parse_hyphenated(raw: &str) -> Option<TenantId> {
        let shape = raw.len() == 36
            && raw.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        shape.then(|| Uuid::parse_str(raw).ok().map(TenantId))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hyphenated_tenant_id_is_the_only_one() {
        let id = "01a2311d-974c-7559-8fe9-52ceded1481a";
        let tenant = TenantId::parse(id).unwrap();
        assert_eq!(TenantId::parse_hyphenated(id), Some(tenant));
        assert_eq!(TenantId::parse_hyphenated(&id.to_uppercase()), Some(tenant));
        for other in [
            format!("{{{id}}}"),
            id.replace('-', ""),
            format!("urn:uuid:{id}"),
            format!(" {id}"),
            "01a2311d-974c-7559-8fe9-52ceded1481g".into(),
            "01a2311d9-74c-7559-8fe9-52ceded1481a".into(),
        ] {
            assert_eq!(TenantId::parse_hyphenated(&other), None, "{other}");
        }
    }

    #[test]
    fn ids_are_time_ordered_and_round_trip() {
        let a = LeadId::new();
        let b = LeadId::new();
        assert!(a < b);
        assert!(a.bytes() < b.bytes(), "byte order is creation order");
        assert_eq!(LeadId::parse(&a.to_string()), Some(a));
        assert_eq!(LeadId::from_bytes(a.bytes()), a);
        assert_eq!(LeadId::parse("not-a-uuid"), None);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{a}\""));
    }
}
