//! Request signing: the five-line message and the `Authorization` header, and — for the simulator and for tests —
//! parsing and verifying such a header.
//!
//! Contract: the message is `METHOD\nCANONICAL_URL\nTIMESTAMP\nNONCE\nBODY\n` (every line, the last included, ends in
//! `\n`); the canonical URL is the path and query exactly as sent, never re-encoded; the body is the exact bytes
//! sent (for an image upload, the `meta` JSON). The signature is RSASSA-PKCS1-v1_5 / SHA-256 with the provider's
//! merchant private key, in standard base64.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::keys::{KeyError, RsaPrivateKey, RsaPublicKey};

pub const AUTH_SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// The signed message of a request.
pub fn request_message(method: &str, canonical_url: &str, timestamp: i64, nonce: &str, body: &str) -> String {
    format!("{method}\n{canonical_url}\n{timestamp}\n{nonce}\n{body}\n")
}

/// Signs requests for one merchant (for a service provider: always the provider's own mchid and key).
#[derive(Clone)]
pub struct Signer {
    mchid: String,
    serial: String,
    key: Arc<RsaPrivateKey>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("mchid", &self.mchid).field("serial", &self.serial).finish_non_exhaustive()
    }
}

impl Signer {
    /// `serial` is the merchant API certificate's serial number.
    pub fn new(mchid: impl Into<String>, serial: impl Into<String>, key: Arc<RsaPrivateKey>) -> Self {
        Self { mchid: mchid.into(), serial: serial.into(), key }
    }

    pub fn mchid(&self) -> &str {
        &self.mchid
    }

    pub fn key(&self) -> &RsaPrivateKey {
        &self.key
    }

    /// The `Authorization` header value for a request at `timestamp` (Unix seconds) with `nonce`.
    pub fn authorization(
        &self,
        method: &str,
        canonical_url: &str,
        body: &str,
        timestamp: i64,
        nonce: &str,
    ) -> Result<String, KeyError> {
        let message = request_message(method, canonical_url, timestamp, nonce, body);
        let signature = BASE64.encode(self.key.sign_sha256(message.as_bytes())?);
        Ok(format!(
            "{AUTH_SCHEME} mchid=\"{}\",nonce_str=\"{nonce}\",timestamp=\"{timestamp}\",serial_no=\"{}\",signature=\"{signature}\"",
            self.mchid, self.serial
        ))
    }
}

/// The `Wechatpay-*` headers WeChat Pay puts on an answer or a callback: what a simulator of WeChat Pay (or a
/// test) sends. `serial` is the platform certificate serial or the `PUB_KEY_ID_…` of `key`.
pub fn sign_as_wechatpay(
    key: &RsaPrivateKey,
    serial: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Result<Vec<(&'static str, String)>, KeyError> {
    let message = crate::verify::response_message(&timestamp.to_string(), nonce, body);
    let signature = BASE64.encode(key.sign_sha256(&message)?);
    Ok(vec![
        ("Wechatpay-Timestamp", timestamp.to_string()),
        ("Wechatpay-Nonce", nonce.to_owned()),
        ("Wechatpay-Signature", signature),
        ("Wechatpay-Serial", serial.to_owned()),
        ("Wechatpay-Signature-Type", AUTH_SCHEME.to_owned()),
    ])
}

/// 32 characters from `[0-9A-Za-z]`, like the official Go SDK's request nonce.
pub fn request_nonce() -> Result<String, KeyError> {
    crate::crypto::random_alphanumeric(32).map_err(|_| KeyError::Sign)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization header")]
    Missing,
    #[error("the Authorization scheme is not {AUTH_SCHEME}")]
    Scheme,
    #[error("the Authorization header lacks `{0}`")]
    MissingField(&'static str),
    #[error("the Authorization header is malformed: {0}")]
    Malformed(String),
    #[error("the Authorization timestamp is more than 5 minutes from now")]
    Stale,
    #[error("the signature does not verify")]
    Signature,
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub mchid: String,
    pub nonce_str: String,
    pub timestamp: i64,
    pub serial_no: String,
    pub signature: String,
}

impl Authorization {
    /// Parse `WECHATPAY2-SHA256-RSA2048 k="v",…` with the pairs in any order (the Go and Python SDKs differ).
    pub fn parse(header: &str) -> Result<Self, AuthError> {
        let header = header.trim();
        let rest = header.strip_prefix(AUTH_SCHEME).ok_or(AuthError::Scheme)?;
        if !rest.starts_with(' ') {
            return Err(AuthError::Scheme);
        }
        let mut fields: Vec<(&str, &str)> = Vec::new();
        for pair in rest.split(',') {
            let (key, value) = pair
                .trim()
                .split_once('=')
                .ok_or_else(|| AuthError::Malformed(format!("`{}` is not key=\"value\"", pair.trim())))?;
            let value = value
                .trim()
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| AuthError::Malformed(format!("the value of `{}` is not quoted", key.trim())))?;
            fields.push((key.trim(), value));
        }
        let get = |name: &'static str| {
            fields.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()).ok_or(AuthError::MissingField(name))
        };
        let timestamp = get("timestamp")?;
        Ok(Self {
            mchid: get("mchid")?,
            nonce_str: get("nonce_str")?,
            timestamp: timestamp.parse().map_err(|_| AuthError::Malformed(format!("timestamp `{timestamp}`")))?,
            serial_no: get("serial_no")?,
            signature: get("signature")?,
        })
    }

    /// Verify against the request as received and the merchant's public key, within ±5 minutes of `now`.
    pub fn verify(
        &self,
        method: &str,
        canonical_url: &str,
        body: &str,
        key: &RsaPublicKey,
        now: i64,
    ) -> Result<(), AuthError> {
        // `abs_diff`: an absurd timestamp cannot overflow the subtraction.
        if now.abs_diff(self.timestamp) > crate::verify::MAX_SKEW_SECS.unsigned_abs() {
            return Err(AuthError::Stale);
        }
        let signature = BASE64.decode(&self.signature).map_err(|_| AuthError::Signature)?;
        let message = request_message(method, canonical_url, self.timestamp, &self.nonce_str, body);
        if key.verify_sha256(message.as_bytes(), &signature) { Ok(()) } else { Err(AuthError::Signature) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_five_terminated_lines() {
        assert_eq!(
            request_message("GET", "/v3/certificates", 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242", ""),
            "GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
        );
    }

    #[test]
    fn parse_in_any_order_and_refuse_garbage() {
        let header = "WECHATPAY2-SHA256-RSA2048 mchid=\"1900009191\",nonce_str=\"593BEC0C930BF1AFEB40B4A08C8FB242\",signature=\"uOVRnA4qG/MNnYzdQxJanN+zU+lTgIcnU9BxGw5dKjK+VdEUz2FeIoC+D5sB/LN+nGzX3hfZg6r5wT1pl2ZobmIc6p0ldN7J6yDgUzbX8Uk3sD4a4eZVPTBvqNDoUqcYMlZ9uuDdCvNv4TM3c1WzsXUrExwVkI1XO5jCNbgDJ25nkT/c1gIFvqoogl7MdSFGc4W4xZsqCItnqbypR3RuGIlR9h9vlRsy7zJR9PBI83X8alLDIfR1ukt1P7tMnmogZ0cuDY8cZsd8ZlCgLadmvej58SLsIkVxFJ8XyUgx9FmutKSYTmYtWBZ0+tNvfGmbXU7cob8H/4nLBiCwIUFluw==\",timestamp=\"1554208460\",serial_no=\"1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C\"";
        let auth = Authorization::parse(header).expect("parses");
        assert_eq!(auth.mchid, "1900009191");
        assert_eq!(auth.timestamp, 1554208460);
        assert_eq!(auth.serial_no, "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C");
        assert_eq!(Authorization::parse("Bearer x"), Err(AuthError::Scheme));
        assert!(matches!(
            Authorization::parse("WECHATPAY2-SHA256-RSA2048 mchid=\"1\""),
            Err(AuthError::MissingField(_))
        ));
        assert!(matches!(Authorization::parse("WECHATPAY2-SHA256-RSA2048 mchid=1"), Err(AuthError::Malformed(_))));
        assert!(matches!(
            Authorization::parse(
                "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",nonce_str=\"n\",timestamp=\"soon\",serial_no=\"s\",signature=\"x\""
            ),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn absurd_timestamps_are_stale_not_an_overflow() {
        let key = RsaPublicKey::from_pem(include_str!("../../../testdata/wechatpay_public_key.pem")).expect("key");
        for (timestamp, now) in [(i64::MIN, 1), (i64::MAX, -1), (i64::MIN, i64::MAX)] {
            let header = format!(
                "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",nonce_str=\"n\",timestamp=\"{timestamp}\",serial_no=\"s\",signature=\"eA==\""
            );
            let auth = Authorization::parse(&header).expect("parses");
            assert_eq!(auth.verify("GET", "/v3/x", "", &key, now), Err(AuthError::Stale), "{timestamp} at {now}");
        }
    }
}
