//! Standard Webhooks (v1, symmetric): `webhook-signature: v1,Base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))`
//! where the key is the base64 after `whsec_`. Receivers accept any of several space-separated signatures (key
//! rotation) within ±5 minutes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::{hmac_sha256, same};

pub const MAX_SKEW_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSignatureError {
    #[error("the secret is not whsec_ followed by base64")]
    Secret,
    #[error("webhook-timestamp is missing, not a number, or more than 5 minutes away")]
    Timestamp,
    #[error("no v1 signature matches")]
    Signature,
}

fn key(secret: &str) -> Result<Vec<u8>, WebhookSignatureError> {
    secret.strip_prefix("whsec_").and_then(|b| BASE64.decode(b).ok()).ok_or(WebhookSignatureError::Secret)
}

/// The `webhook-signature` header value for one secret.
pub fn sign(secret: &str, id: &str, timestamp_secs: i64, body: &[u8]) -> Result<String, WebhookSignatureError> {
    let mut message = format!("{id}.{timestamp_secs}.").into_bytes();
    message.extend_from_slice(body);
    Ok(format!("v1,{}", BASE64.encode(hmac_sha256(&key(secret)?, &message))))
}

pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now_secs: i64,
) -> Result<(), WebhookSignatureError> {
    let timestamp_secs: i64 = timestamp.trim().parse().map_err(|_| WebhookSignatureError::Timestamp)?;
    if now_secs.abs_diff(timestamp_secs) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(WebhookSignatureError::Timestamp);
    }
    let expected = sign(secret, id, timestamp_secs, body)?;
    if signatures.split_whitespace().any(|candidate| same(candidate.as_bytes(), expected.as_bytes())) {
        Ok(())
    } else {
        Err(WebhookSignatureError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_vector() {
        let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            sign(secret, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1_649_367_553, body).expect("sign"),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        let header = "v1,bm90IHRoaXMgb25l v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
        assert_eq!(
            verify(secret, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367553", header, body, 1_649_367_600),
            Ok(())
        );
        assert_eq!(
            verify(secret, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367553", header, b"{}", 1_649_367_600),
            Err(WebhookSignatureError::Signature)
        );
        assert_eq!(
            verify(secret, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "1649367553", header, body, 1_649_367_553 + 301),
            Err(WebhookSignatureError::Timestamp)
        );
        assert_eq!(sign("C2FV", "id", 1, b"").err(), Some(WebhookSignatureError::Secret));
    }

    #[test]
    fn timestamps_at_the_ends_of_the_range_are_refused_without_overflow() {
        let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        for (timestamp, now) in [(i64::MIN, i64::MAX), (i64::MAX, i64::MIN), (i64::MIN, 0)] {
            let signature = sign(secret, "id", timestamp, b"{}").expect("sign");
            assert_eq!(
                verify(secret, "id", &timestamp.to_string(), &signature, b"{}", now),
                Err(WebhookSignatureError::Timestamp),
                "{timestamp} at {now}"
            );
        }
        assert_eq!(
            verify(secret, "id", "99999999999999999999", "v1,x", b"{}", 0),
            Err(WebhookSignatureError::Timestamp),
            "beyond i64"
        );
    }
}
