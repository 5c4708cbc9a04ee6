//! Verifying what WeChat Pay signs — API responses and callbacks — with platform certificates and/or the WeChat Pay
//! public key.
//!
//! Contract: the signed message is `TIMESTAMP\nNONCE\nRAW_BODY\n` over the body bytes exactly as received. The key is
//! chosen by `Wechatpay-Serial`: a `PUB_KEY_ID_…` value selects the public key, anything else the platform
//! certificate with that serial (compared as numbers). Both may be configured at once (the switch from certificates
//! to the public key mixes the two). The timestamp must be within ±5 minutes. A missing header, a bad timestamp, a
//! signature-probe value (`WECHATPAY/SIGNTEST/…`), bad base64, an unknown serial or a mismatch is a [`VerifyError`]
//! — never a panic, never a pass. Only this module constructs [`Verified`] values.
//!
//! Headers are checked for shape before anything else (before a key is looked up or a signature decoded), so a
//! caller never carries an unbounded value further: `Wechatpay-Serial` is 1–40 hex digits or `PUB_KEY_ID_` and
//! 1–40 digits, `Wechatpay-Signature` is at most 1 KiB of base64, `Wechatpay-Timestamp` is 1–19 digits (it must
//! fit Unix seconds in an `i64`; the skew is computed with `abs_diff`, so no value can overflow), `Wechatpay-Nonce`
//! is at most 64 characters and `Wechatpay-Signature-Type` at most 64. Each error therefore quotes at most 64
//! characters of what the sender sent.
//!
//! A platform certificate is used only inside its validity at the time given (`now`): a signature made with one not
//! yet valid or already expired is refused with [`VerifyError::CertificateNotYetValid`] or
//! [`VerifyError::CertificateExpired`], and such a certificate never encrypts.

use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderMap;

use crate::keys::{self, Certificate, KeyError, RsaPublicKey};

pub const SIGNATURE_TYPE: &str = "WECHATPAY2-SHA256-RSA2048";
/// WeChat's deliberately wrong signatures start with this; they must fail like any other wrong signature.
pub const PROBE_PREFIX: &str = "WECHATPAY/SIGNTEST/";
pub const PUBLIC_KEY_ID_PREFIX: &str = "PUB_KEY_ID_";
/// Both official SDKs refuse signatures more than five minutes from the local clock.
pub const MAX_SKEW_SECS: i64 = 300;
/// Longest certificate serial accepted (WeChat's are 40 hex digits).
pub const MAX_SERIAL_HEX: usize = 40;
/// Most digits after `PUB_KEY_ID_` accepted (WeChat's ids have 32).
pub const MAX_PUBLIC_KEY_ID_DIGITS: usize = 40;
/// Longest `Wechatpay-Signature` accepted: base64 of an RSA-4096 signature is 684 characters.
pub const MAX_SIGNATURE_LEN: usize = 1024;
/// Longest `Wechatpay-Nonce` accepted (WeChat's are 32 characters).
pub const MAX_NONCE_LEN: usize = 64;
/// Longest `Wechatpay-Signature-Type` accepted.
pub const MAX_SIGNATURE_TYPE_LEN: usize = 64;
/// Most digits of `Wechatpay-Timestamp`: `i64::MAX` has 19.
pub const MAX_TIMESTAMP_DIGITS: usize = 19;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("header {0} is missing or not ASCII")]
    MissingHeader(&'static str),
    /// A header of the wrong shape, refused before any key is looked up or anything decoded.
    #[error("header {header} is malformed: expected {expected}")]
    MalformedHeader { header: &'static str, expected: &'static str },
    #[error("Wechatpay-Timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("Wechatpay-Timestamp is {skew_secs}s away from this server's clock (more than 5 minutes)")]
    Stale { skew_secs: u64 },
    #[error("unsupported Wechatpay-Signature-Type `{0}`")]
    UnsupportedSignatureType(String),
    #[error("a signature-probe signature (WECHATPAY/SIGNTEST/…): treated as invalid")]
    Probe,
    #[error("Wechatpay-Signature is not base64")]
    BadSignatureEncoding,
    #[error("no platform certificate with serial {0} is known")]
    UnknownSerial(String),
    /// Signed with a platform certificate whose validity has ended (Unix seconds).
    #[error("platform certificate {serial} expired at {not_after} (Unix seconds): it verifies nothing")]
    CertificateExpired { serial: String, not_after: i64 },
    /// Signed with a platform certificate whose validity has not begun (Unix seconds).
    #[error("platform certificate {serial} is not valid before {not_before} (Unix seconds)")]
    CertificateNotYetValid { serial: String, not_before: i64 },
    #[error("signed with WeChat Pay public key {0}, which is not configured")]
    UnknownPublicKey(String),
    #[error("the signature does not match the body")]
    Mismatch,
}

impl VerifyError {
    /// An unknown certificate serial may become known after downloading certificates again.
    pub fn wants_certificate_refresh(&self) -> bool {
        matches!(self, VerifyError::UnknownSerial(_))
    }
}

/// The `Wechatpay-*` headers of a signed response or callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
    pub serial: String,
    pub signature_type: Option<String>,
}

impl SignatureHeaders {
    /// Read the headers and check their shape (see the module's contract).
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, VerifyError> {
        let get = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or(VerifyError::MissingHeader(name))
        };
        let parsed = Self {
            timestamp: get("Wechatpay-Timestamp")?,
            nonce: get("Wechatpay-Nonce")?,
            signature: get("Wechatpay-Signature")?,
            serial: get("Wechatpay-Serial")?,
            signature_type: get("Wechatpay-Signature-Type").ok(),
        };
        parsed.check_shape()?;
        Ok(parsed)
    }

    /// Refuse values of the wrong shape: what a caller may carry on (log, store, echo) is then bounded.
    pub fn check_shape(&self) -> Result<(), VerifyError> {
        let malformed = |header, expected| Err(VerifyError::MalformedHeader { header, expected });
        if !is_serial_shape(&self.serial) {
            return malformed("Wechatpay-Serial", "1 to 40 hex digits, or PUB_KEY_ID_ and 1 to 40 digits");
        }
        if self.signature.is_empty()
            || self.signature.len() > MAX_SIGNATURE_LEN
            || !self.signature.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            return malformed("Wechatpay-Signature", "base64, at most 1024 characters");
        }
        if !is_timestamp_shape(&self.timestamp) {
            return malformed("Wechatpay-Timestamp", "Unix seconds: 1 to 19 digits");
        }
        if self.nonce.is_empty()
            || self.nonce.len() > MAX_NONCE_LEN
            || !self.nonce.bytes().all(|b| b.is_ascii_graphic())
        {
            return malformed("Wechatpay-Nonce", "1 to 64 visible ASCII characters");
        }
        if let Some(kind) = &self.signature_type
            && (kind.len() > MAX_SIGNATURE_TYPE_LEN || !kind.bytes().all(|b| b.is_ascii_graphic()))
        {
            return malformed("Wechatpay-Signature-Type", "at most 64 visible ASCII characters");
        }
        Ok(())
    }
}

/// `Wechatpay-Serial`'s shape: a certificate serial (hex) or a WeChat Pay public key id.
pub fn is_serial_shape(serial: &str) -> bool {
    match serial.strip_prefix(PUBLIC_KEY_ID_PREFIX) {
        Some(digits) => {
            (1..=MAX_PUBLIC_KEY_ID_DIGITS).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        }
        None => (1..=MAX_SERIAL_HEX).contains(&serial.len()) && serial.bytes().all(|b| b.is_ascii_hexdigit()),
    }
}

/// `Wechatpay-Timestamp`'s shape: digits only (no sign, no spaces), at most 19 of them.
fn is_timestamp_shape(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_TIMESTAMP_DIGITS && text.bytes().all(|b| b.is_ascii_digit())
}

/// The signed message of a response or callback.
pub fn response_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(nonce.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(body);
    message.push(b'\n');
    message
}

/// A value whose signature checked out. Only the verifier makes these.
#[derive(Debug, Clone)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(value)
    }

    pub fn get(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A WeChat Pay platform certificate held for verification and encryption.
#[derive(Debug, Clone)]
pub struct PlatformCertificate {
    pub serial: String,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    pub pem: String,
    pub public_key: RsaPublicKey,
}

impl PlatformCertificate {
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let cert = Certificate::from_pem(pem)?;
        Ok(Self {
            serial: cert.serial,
            not_before: cert.not_before,
            not_after: cert.not_after,
            pem: pem.trim().to_owned(),
            public_key: cert.public_key,
        })
    }

    /// Whether the certificate is inside its validity at `now` (Unix seconds; both ends included).
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// The WeChat Pay public key (微信支付公钥) and its `PUB_KEY_ID_…`.
#[derive(Debug, Clone)]
pub struct WechatPayPublicKey {
    pub id: String,
    pub key: RsaPublicKey,
}

impl WechatPayPublicKey {
    pub fn from_pem(id: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        Ok(Self { id: id.into(), key: RsaPublicKey::from_pem(pem)? })
    }
}

/// One provider's WeChat Pay verification keys: its public key and/or its platform certificates. Each provider
/// has its own; nothing here is global.
#[derive(Debug, Default)]
pub struct PlatformKeys {
    public_key: Option<WechatPayPublicKey>,
    certificates: RwLock<Vec<PlatformCertificate>>,
}

impl PlatformKeys {
    pub fn new(public_key: Option<WechatPayPublicKey>, certificates: Vec<PlatformCertificate>) -> Self {
        let keys = Self { public_key, certificates: RwLock::default() };
        for cert in certificates {
            keys.add_certificate(cert);
        }
        keys
    }

    pub fn public_key(&self) -> Option<&WechatPayPublicKey> {
        self.public_key.as_ref()
    }

    /// Add a certificate, replacing one with the same serial.
    pub fn add_certificate(&self, cert: PlatformCertificate) {
        let mut certs = self.certificates.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        certs.retain(|c| !keys::same_serial(&c.serial, &cert.serial));
        certs.push(cert);
        certs.sort_by_key(|c| std::cmp::Reverse(c.not_after));
    }

    /// Certificates held, newest (latest expiry) first.
    pub fn certificates(&self) -> Vec<PlatformCertificate> {
        self.certificates.read().map(|c| c.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    pub fn has_certificates(&self) -> bool {
        !self.certificates().is_empty()
    }

    /// What to send as `Wechatpay-Serial` on every request: the public key's id, so that WeChat signs its answer
    /// with the key we hold.
    pub fn request_serial(&self) -> Option<&str> {
        self.public_key.as_ref().map(|k| k.id.as_str())
    }

    /// The key to encrypt sensitive request fields with, and the serial or key id to name it by: the public key
    /// when configured, else the newest platform certificate valid at `now` (Unix seconds).
    pub fn encryption_key(&self, now: i64) -> Option<(String, RsaPublicKey)> {
        if let Some(public) = &self.public_key {
            return Some((public.id.clone(), public.key.clone()));
        }
        self.certificates().into_iter().find(|c| c.is_valid_at(now)).map(|c| (c.serial, c.public_key))
    }

    /// Drop the certificates whose validity ended before `now` (Unix seconds); returns their serials.
    pub fn remove_expired(&self, now: i64) -> Vec<String> {
        let mut certs = self.certificates.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let expired = certs.iter().filter(|c| c.not_after < now).map(|c| c.serial.clone()).collect();
        certs.retain(|c| c.not_after >= now);
        expired
    }

    /// Verify `body` as signed by WeChat Pay at about `now` (Unix seconds).
    pub fn verify(&self, headers: &SignatureHeaders, body: &[u8], now: i64) -> Result<(), VerifyError> {
        // The fields are public: a value built by hand is held to the same shape as one read from headers.
        headers.check_shape()?;
        if let Some(kind) = &headers.signature_type
            && kind != SIGNATURE_TYPE
        {
            return Err(VerifyError::UnsupportedSignatureType(kind.clone()));
        }
        // The shape is checked above; 19 digits can still exceed `i64::MAX`.
        let timestamp: i64 = headers.timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
        // `abs_diff`: no timestamp and no clock value can overflow the subtraction.
        let skew_secs = now.abs_diff(timestamp);
        if skew_secs > MAX_SKEW_SECS.unsigned_abs() {
            return Err(VerifyError::Stale { skew_secs });
        }
        if headers.signature.starts_with(PROBE_PREFIX) {
            return Err(VerifyError::Probe);
        }
        let signature = BASE64.decode(&headers.signature).map_err(|_| VerifyError::BadSignatureEncoding)?;
        let message = response_message(&headers.timestamp, &headers.nonce, body);
        let verified = if headers.serial.starts_with(PUBLIC_KEY_ID_PREFIX) {
            match &self.public_key {
                Some(public) if public.id == headers.serial => public.key.verify_sha256(&message, &signature),
                _ => return Err(VerifyError::UnknownPublicKey(headers.serial.clone())),
            }
        } else {
            let certs = self.certificates.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            match certs.iter().find(|c| keys::same_serial(&c.serial, &headers.serial)) {
                Some(cert) if now > cert.not_after => {
                    return Err(VerifyError::CertificateExpired {
                        serial: cert.serial.clone(),
                        not_after: cert.not_after,
                    });
                }
                Some(cert) if now < cert.not_before => {
                    return Err(VerifyError::CertificateNotYetValid {
                        serial: cert.serial.clone(),
                        not_before: cert.not_before,
                    });
                }
                Some(cert) => cert.public_key.verify_sha256(&message, &signature),
                None => return Err(VerifyError::UnknownSerial(headers.serial.clone())),
            }
        };
        if verified { Ok(()) } else { Err(VerifyError::Mismatch) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(timestamp: &str) -> SignatureHeaders {
        SignatureHeaders {
            timestamp: timestamp.to_owned(),
            nonce: "fdasfwfe2322ewffsds".to_owned(),
            signature: "c2lnbmF0dXJl".to_owned(),
            serial: "3F5A1B2C3D4E5F60718293A4B5C6D7E8F9012345".to_owned(),
            signature_type: None,
        }
    }

    #[test]
    fn serial_shapes() {
        assert!(is_serial_shape("3F5A1B2C3D4E5F60718293A4B5C6D7E8F9012345"));
        assert!(is_serial_shape("abcdef"));
        assert!(is_serial_shape("PUB_KEY_ID_0116571234562024052000123400000000"));
        assert!(!is_serial_shape(&"A".repeat(41)));
        assert!(!is_serial_shape("XYZ"));
        assert!(!is_serial_shape("PUB_KEY_ID_"));
        assert!(!is_serial_shape("PUB_KEY_ID_12ab"));
        assert!(!is_serial_shape(&format!("PUB_KEY_ID_{}", "1".repeat(41))));
        assert!(!is_serial_shape(""));
    }

    #[test]
    fn timestamps_far_from_now_are_stale_or_malformed_never_an_overflow() {
        let keys = PlatformKeys::default();
        // The largest timestamp there is, against clocks at both ends of the range: the old `(now - t).abs()`
        // overflowed here.
        for now in [i64::MIN, -1, 0, 1_795_800_000, i64::MAX] {
            for timestamp in [i64::MAX, 0] {
                let result = keys.verify(&headers(&timestamp.to_string()), b"{}", now);
                let in_window = (i128::from(now) - i128::from(timestamp)).abs() <= 300;
                if in_window {
                    assert!(matches!(result, Err(VerifyError::UnknownSerial(_))), "{timestamp} at {now}: {result:?}");
                } else {
                    assert!(matches!(result, Err(VerifyError::Stale { .. })), "{timestamp} at {now}: {result:?}");
                }
            }
        }
        for bad in ["99999999999999999999", "-9223372036854775808", "-1", "+5", "1e9", " 1"] {
            let result = keys.verify(&headers(bad), b"{}", 1_795_800_000);
            assert!(
                matches!(result, Err(VerifyError::MalformedHeader { header: "Wechatpay-Timestamp", .. })),
                "{bad}: {result:?}"
            );
        }
        for over in ["9999999999999999999", "9223372036854775808"] {
            assert_eq!(
                keys.verify(&headers(over), b"{}", 0),
                Err(VerifyError::BadTimestamp),
                "19 digits over i64::MAX"
            );
        }
    }
}
