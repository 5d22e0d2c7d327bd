//! Signatures of a delivery (spec §6), and their verification as a receiver does it.
//!
//! - `X-Mega-Signature: sha256=<hex>`: HMAC-SHA256 keyed with the secret string
//!   (`mega_whsec_...`), over `{timestamp}.{raw body}`.
//! - Standard Webhooks v1: HMAC-SHA256 keyed with the secret string's bytes over
//!   `{webhook-id}.{webhook-timestamp}.{raw body}`, base64; so a Standard Webhooks library is
//!   given `whsec_` + base64(secret string).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::token::ct_eq;

type HmacSha256 = Hmac<Sha256>;

/// Receivers should refuse deliveries whose timestamp is further than this from their clock.
pub const TOLERANCE_SECS: i64 = 300;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// `sha256=<lowercase hex>` over `{timestamp}.{body}`.
pub fn mega_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    format!(
        "sha256={}",
        hex::encode(hmac(secret.as_bytes(), &[ts.as_bytes(), b".", body]))
    )
}

/// `v1,<base64>` over `{id}.{timestamp}.{body}`, keyed with `key`.
pub fn standard_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mac = hmac(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", STANDARD.encode(mac))
}

/// The Standard Webhooks secret that verifies our `webhook-signature` for `secret`.
pub fn standard_secret(secret: &str) -> String {
    format!("whsec_{}", STANDARD.encode(secret.as_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing or malformed timestamp")]
    BadTimestamp,
    #[error("timestamp is more than {TOLERANCE_SECS} s away from now")]
    Stale,
    #[error("no signature matches")]
    BadSignature,
}

fn check_timestamp(raw: Option<&str>, now_secs: i64) -> Result<i64, VerifyError> {
    let ts: i64 = raw
        .and_then(|t| t.trim().parse().ok())
        .ok_or(VerifyError::BadTimestamp)?;
    if (now_secs - ts).abs() > TOLERANCE_SECS {
        return Err(VerifyError::Stale);
    }
    Ok(ts)
}

/// Verifies `X-Mega-Signature` (and `X-Mega-Signature-Previous`) as a receiver holding
/// `secret` would: fresh timestamp, then a constant-time comparison with either header.
pub fn verify_mega(
    secret: &str,
    timestamp: Option<&str>,
    signatures: &[&str],
    body: &[u8],
    now_secs: i64,
) -> Result<(), VerifyError> {
    let ts = check_timestamp(timestamp, now_secs)?;
    let expected = mega_signature(secret, ts, body);
    any_matches(signatures.iter().map(|s| s.trim()), &expected)
}

/// Verifies the Standard Webhooks headers with a `whsec_...` secret, as its libraries do.
pub fn verify_standard(
    whsec: &str,
    id: Option<&str>,
    timestamp: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), VerifyError> {
    let ts = check_timestamp(timestamp, now_secs)?;
    let key = STANDARD
        .decode(whsec.strip_prefix("whsec_").unwrap_or(whsec))
        .map_err(|_| VerifyError::BadSignature)?;
    let id = id.ok_or(VerifyError::BadSignature)?;
    let expected = standard_signature(&key, id, ts, body);
    any_matches(signature_header.unwrap_or("").split_whitespace(), &expected)
}

/// Whether any candidate equals the expected signature, compared in constant time.
fn any_matches<'a>(
    candidates: impl IntoIterator<Item = &'a str>,
    expected: &str,
) -> Result<(), VerifyError> {
    if candidates
        .into_iter()
        .any(|c| ct_eq(c.as_bytes(), expected.as_bytes()))
    {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_reference_vector() {
        // From the Standard Webhooks specification's example.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = standard_signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(
            verify_standard(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
                Some("1614265330"),
                Some(&format!("v1,bm90IGl0 {sig}")),
                br#"{"test": 2432232314}"#,
                1614265330 + 10,
            ),
            Ok(())
        );
    }

    #[test]
    fn mega_signature_is_hmac_of_timestamp_dot_body_with_the_secret_string() {
        // Independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'mega_whsec_test'
        let sig = mega_signature("mega_whsec_test", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            sig,
            "sha256=ee174c2b56e90b5d9503bfbfd6a1dbd1bc12c1db298934b67d6783c55888fc5f"
        );
    }

    #[test]
    fn verification_refuses_stale_forged_and_missing() {
        let body = br#"{"event":"lead.created"}"#;
        let secret = "mega_whsec_abc";
        let sig = mega_signature(secret, 1000, body);
        assert_eq!(
            verify_mega(secret, Some("1000"), &[&sig], body, 1100),
            Ok(())
        );
        assert_eq!(
            verify_mega(secret, Some("1000"), &["sha256=00", &sig], body, 1100),
            Ok(())
        );
        assert_eq!(
            verify_mega(secret, Some("1000"), &[&sig], body, 1000 + 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify_mega(secret, None, &[&sig], body, 1000),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify_mega("mega_whsec_other", Some("1000"), &[&sig], body, 1000),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify_mega(secret, Some("1000"), &[&sig], b"{}", 1000),
            Err(VerifyError::BadSignature)
        );
        let std_sig = standard_signature(secret.as_bytes(), "d1", 1000, body);
        let whsec = standard_secret(secret);
        assert_eq!(
            verify_standard(&whsec, Some("d1"), Some("1000"), Some(&std_sig), body, 1000),
            Ok(())
        );
        assert_eq!(
            verify_standard(&whsec, Some("d2"), Some("1000"), Some(&std_sig), body, 1000),
            Err(VerifyError::BadSignature)
        );
    }
}
