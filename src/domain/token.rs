//! Personal access tokens (`mega_` + 64 lowercase hex), the admin token, and scopes.
//! Tokens are 32 bytes from the OS RNG; only their SHA-256 is ever stored.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const PAT_PREFIX: &str = "mega_";
/// How much of a token is kept in clear to let people tell keys apart (`mega_` + 8 hex).
const DISPLAY_PREFIX_LEN: usize = PAT_PREFIX.len() + 8;

/// 32 random bytes from the operating system, hex encoded.
pub fn random_hex32() -> String {
    let mut bytes = [0u8; 32];
    // The OS RNG failing means the machine cannot make secrets at all; nothing sane can go on.
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    hex::encode(bytes)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Constant-time equality for secrets and digests.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A syntactically valid personal access token. Holding one proves only its shape.
#[derive(Clone, PartialEq, Eq)]
pub struct Pat(String);

impl Pat {
    pub fn generate() -> Pat {
        Pat(format!("{PAT_PREFIX}{}", random_hex32()))
    }

    /// `mega_` followed by exactly 64 lowercase hex digits.
    pub fn parse(raw: &str) -> Option<Pat> {
        let hex = raw.strip_prefix(PAT_PREFIX)?;
        let well_formed = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| Pat(raw.to_string()))
    }

    pub fn hash(&self) -> [u8; 32] {
        sha256(self.0.as_bytes())
    }

    pub fn display_prefix(&self) -> String {
        self.0[..DISPLAY_PREFIX_LEN].to_string()
    }

    /// The token itself: shown once, at issue.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pat({}…)", self.display_prefix())
    }
}

pub const WEBHOOK_SECRET_PREFIX: &str = "mega_whsec_";
/// How much of a webhook secret is shown to tell secrets apart.
pub const WEBHOOK_SECRET_SHOWN: usize = 16;

/// A webhook signing secret: `mega_whsec_` + 64 hex (32 bytes from the OS RNG).
pub fn generate_webhook_secret() -> String {
    format!("{WEBHOOK_SECRET_PREFIX}{}", random_hex32())
}

/// Generates an admin token: `lbadm_` + 64 hex, visibly different from API keys.
pub fn generate_admin_token() -> String {
    format!("lbadm_{}", random_hex32())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Scope {
    #[serde(rename = "public_api:leads:read")]
    LeadsRead,
    #[serde(rename = "public_api:leads:write")]
    LeadsWrite,
    #[serde(rename = "public_api:webhooks:manage")]
    WebhooksManage,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::LeadsRead, Scope::LeadsWrite, Scope::WebhooksManage];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::LeadsRead => "public_api:leads:read",
            Scope::LeadsWrite => "public_api:leads:write",
            Scope::WebhooksManage => "public_api:webhooks:manage",
        }
    }

    pub fn parse(raw: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == raw.trim())
    }

    /// Parses a list, refusing unknown names and empty lists; duplicates collapse.
    pub fn parse_list<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for name in raw {
            let scope = Scope::parse(name).ok_or_else(|| {
                format!(
                    "unknown scope `{}`; scopes are {}",
                    name.trim(),
                    Scope::ALL.map(Scope::as_str).join(", ")
                )
            })?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err("scopes must name at least one scope".into());
        }
        scopes.sort();
        Ok(scopes)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let pat = Pat::generate();
        let raw = pat.reveal();
        assert_eq!(raw.len(), 5 + 64);
        assert!(raw.starts_with("mega_"));
        assert_eq!(Pat::parse(raw), Some(pat.clone()));
        assert_ne!(Pat::generate(), pat, "two tokens never collide");
        assert_eq!(pat.display_prefix(), &raw[..13]);
        assert!(
            !format!("{pat:?}").contains(&raw[13..]),
            "Debug never shows the secret part"
        );
    }

    #[test]
    fn parsing_refuses_every_other_shape() {
        let hex64 = "a".repeat(64);
        assert!(Pat::parse(&format!("mega_{hex64}")).is_some());
        for bad in [
            String::new(),
            hex64.clone(),
            format!("mega_{}", "a".repeat(63)),
            format!("mega_{}", "a".repeat(65)),
            format!("mega_{}", "A".repeat(64)),
            format!("mega_{}g", "a".repeat(63)),
            format!("MEGA_{hex64}"),
            format!(" mega_{hex64}"),
        ] {
            assert!(Pat::parse(&bad).is_none(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn hashing_is_sha256_of_the_whole_token() {
        let pat = Pat::parse(&format!("mega_{}", "0".repeat(64))).unwrap();
        // sha256("mega_" + 64 zeros), computed independently with coreutils' sha256sum.
        assert_eq!(
            hex::encode(pat.hash()),
            "443a2fb5c36700ce5be9c4b61ae6653da92031a70a9f823a26aa07911192f8f3"
        );
        assert!(ct_eq(&pat.hash(), &sha256(pat.reveal().as_bytes())));
        assert!(!ct_eq(&pat.hash(), &[0u8; 32]));
        assert!(!ct_eq(b"abc", b"abcd"));
    }

    #[test]
    fn scopes_parse_by_their_wire_names() {
        assert_eq!(
            Scope::parse_list([
                "public_api:webhooks:manage",
                "public_api:leads:read",
                "public_api:leads:read"
            ]),
            Ok(vec![Scope::LeadsRead, Scope::WebhooksManage])
        );
        assert!(
            Scope::parse_list(["leads:read"])
                .unwrap_err()
                .contains("unknown scope `leads:read`")
        );
        assert!(Scope::parse_list([]).is_err());
    }
}
