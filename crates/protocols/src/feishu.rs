//! Feishu/Lark custom bot signing: `Base64(HMAC-SHA256(key = "{timestamp_s}\n{secret}", msg = ""))`, sent in the
//! JSON body as `timestamp` (seconds, a string) and `sign`. Not DingTalk's arrangement: the key is the string to
//! sign and the message is empty.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::{hmac_sha256, same};

/// Feishu accepts timestamps within an hour of its clock.
pub const MAX_SKEW_SECS: i64 = 3600;

pub fn sign(secret: &str, timestamp_secs: i64) -> String {
    BASE64.encode(hmac_sha256(format!("{timestamp_secs}\n{secret}").as_bytes(), b""))
}

pub fn verify(secret: &str, timestamp_secs: i64, signature: &str, now_secs: i64) -> bool {
    now_secs.abs_diff(timestamp_secs) <= MAX_SKEW_SECS.unsigned_abs()
        && same(sign(secret, timestamp_secs).as_bytes(), signature.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fact sheet's vector (`reference/channels.md`, computed there with Python's `hmac`); the independent
    /// check over many inputs is `tests/crosscheck.rs`.
    #[test]
    fn fact_sheet_vector_and_not_dingtalks() {
        assert_eq!(sign("testsecret0123456789", 1_700_000_000), "LdoES5/4RBBnLX70aU1OVYfzo6p+0m723NJ7oBZs1tw=");
        // The DingTalk arrangement of the same inputs gives another value, and must not verify.
        assert!(!verify(
            "testsecret0123456789",
            1_700_000_000,
            "BAGzE4GBBi6p3bWTqFGKYmKaa9/3cHUAcQqKiwN2e5s=",
            1_700_000_000
        ));
        assert!(verify(
            "testsecret0123456789",
            1_700_000_000,
            "LdoES5/4RBBnLX70aU1OVYfzo6p+0m723NJ7oBZs1tw=",
            1_700_003_600
        ));
        assert!(!verify(
            "testsecret0123456789",
            1_700_000_000,
            "LdoES5/4RBBnLX70aU1OVYfzo6p+0m723NJ7oBZs1tw=",
            1_700_003_601
        ));
    }

    #[test]
    fn timestamps_at_the_ends_of_the_range_are_refused_without_overflow() {
        for (timestamp, now) in [(i64::MIN, i64::MAX), (i64::MAX, i64::MIN), (i64::MIN, 0), (0, i64::MIN)] {
            assert!(!verify("s", timestamp, &sign("s", timestamp), now), "{timestamp} at {now}");
        }
        assert!(verify("s", i64::MIN, &sign("s", i64::MIN), i64::MIN));
    }
}
