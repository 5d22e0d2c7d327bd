//! Stored values are `[format_version: u8][postcard bytes]`. A record type names its current
//! version; a reader that meets an older version upgrades it in `Record::upgrade`, so the file can
//! outlive the struct layout that wrote it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

pub trait Record: Serialize + DeserializeOwned {
    /// Bump when the layout changes, and teach `upgrade` the old one.
    const VERSION: u8;
    const NAME: &'static str;

    /// Decodes a value written under an older `version`.
    fn upgrade(version: u8, _bytes: &[u8]) -> Result<Self, StoreError> {
        Err(StoreError::Corrupt(format!(
            "{} record has format version {version}, this leadbase reads version {}; was the file written by a newer leadbase?",
            Self::NAME,
            Self::VERSION
        )))
    }
}

pub fn encode<T: Record>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![T::VERSION];
    let bytes = postcard::to_allocvec(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode {}: {e}", T::NAME)))?;
    out.extend_from_slice(&bytes);
    Ok(out)
}

pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, StoreError> {
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| StoreError::Corrupt(format!("empty {} record", T::NAME)))?;
    if version != T::VERSION {
        return T::upgrade(version, body);
    }
    postcard::from_bytes(body)
        .map_err(|e| StoreError::Corrupt(format!("cannot decode {} record: {e}", T::NAME)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Thing {
        name: String,
        n: Option<i64>,
    }

    impl Record for Thing {
        const VERSION: u8 = 2;
        const NAME: &'static str = "thing";
        fn upgrade(version: u8, bytes: &[u8]) -> Result<Self, StoreError> {
            #[derive(Deserialize)]
            struct ThingV1 {
                name: String,
            }
            match version {
                1 => {
                    let old: ThingV1 = postcard::from_bytes(bytes)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    Ok(Thing {
                        name: old.name,
                        n: None,
                    })
                }
                _ => Err(StoreError::Corrupt("unknown".into())),
            }
        }
    }

    #[test]
    fn round_trips_with_a_version_byte() {
        let thing = Thing {
            name: "x".into(),
            n: Some(-3),
        };
        let bytes = encode(&thing).unwrap();
        assert_eq!(bytes[0], 2);
        assert_eq!(decode::<Thing>(&bytes).unwrap(), thing);
    }

    #[test]
    fn older_versions_are_upgraded_and_unknown_ones_refused() {
        let mut v1 = vec![1u8];
        v1.extend(postcard::to_allocvec(&("old".to_string(),)).unwrap());
        assert_eq!(
            decode::<Thing>(&v1).unwrap(),
            Thing {
                name: "old".into(),
                n: None
            }
        );
        assert!(decode::<Thing>(&[9, 0]).is_err());
        assert!(decode::<Thing>(&[]).is_err());
    }
}
