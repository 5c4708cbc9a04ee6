//! DingTalk custom robot signing (加签): `Base64(HMAC-SHA256(key = secret, msg = "{timestamp_ms}\n{secret}"))`,
//! URL-encoded into the query with the same millisecond timestamp. (Feishu's scheme differs; see `feishu`.)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::{hmac_sha256, same};

/// DingTalk accepts timestamps within an hour of its clock.
pub const MAX_SKEW_MS: i64 = 3_600_000;

/// The base64 signature (not yet URL-encoded).
pub fn sign(secret: &str, timestamp_ms: i64) -> String {
    BASE64.encode(hmac_sha256(secret.as_bytes(), format!("{timestamp_ms}\n{secret}").as_bytes()))
}

/// The query suffix to append to the webhook URL: `&timestamp=…&sign=…`.
pub fn query_suffix(secret: &str, timestamp_ms: i64) -> String {
    let encoded: String = form_urlencoded::byte_serialize(sign(secret, timestamp_ms).as_bytes()).collect();
    format!("&timestamp={timestamp_ms}&sign={encoded}")
}

/// Check a received (already URL-decoded) signature.
pub fn verify(secret: &str, timestamp_ms: i64, signature: &str, now_ms: i64) -> bool {
    now_ms.abs_diff(timestamp_ms) <= MAX_SKEW_MS.unsigned_abs()
        && same(sign(secret, timestamp_ms).as_bytes(), signature.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fact sheet's vector (`reference/channels.md`, computed there with Python's `hmac`); the independent
    /// check over many inputs is `tests/crosscheck.rs`.
    #[test]
    fn fact_sheet_vector() {
        assert_eq!(sign("SECtestsecret0123456789", 1_700_000_000_000), "zrLWzK97t62y5CpqN8Ok9UIdPvX+jL1PNoW8nKT5a9k=");
        assert_eq!(
            query_suffix("SECtestsecret0123456789", 1_700_000_000_000),
            "&timestamp=1700000000000&sign=zrLWzK97t62y5CpqN8Ok9UIdPvX%2BjL1PNoW8nKT5a9k%3D"
        );
        assert!(verify(
            "SECtestsecret0123456789",
            1_700_000_000_000,
            "zrLWzK97t62y5CpqN8Ok9UIdPvX+jL1PNoW8nKT5a9k=",
            1_700_000_000_000
        ));
        assert!(!verify(
            "SECtestsecret0123456789",
            1_700_000_000_000,
            "zrLWzK97t62y5CpqN8Ok9UIdPvX+jL1PNoW8nKT5a9k=",
            1_700_003_600_001
        ));
        assert!(!verify(
            "SECother",
            1_700_000_000_000,
            "zrLWzK97t62y5CpqN8Ok9UIdPvX+jL1PNoW8nKT5a9k=",
            1_700_000_000_000
        ));
    }

    #[test]
    fn timestamps_at_the_ends_of_the_range_are_refused_without_overflow() {
        for (timestamp, now) in [(i64::MIN, i64::MAX), (i64::MAX, i64::MIN), (i64::MIN, 0), (0, i64::MIN)] {
            assert!(!verify("SECs", timestamp, &sign("SECs", timestamp), now), "{timestamp} at {now}");
        }
        assert!(verify("SECs", i64::MAX, &sign("SECs", i64::MAX), i64::MAX));
    }
}
