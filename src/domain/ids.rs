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
id_type!(
    /// One logical delivery of one event to one webhook; stable across retries.
    DeliveryId
);

#[cfg(test)]
mod tests {
    use super::*;

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
