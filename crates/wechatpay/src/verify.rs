//! Verifying what WeChat Pay signs — API responses and callbacks — with platform certificates and/or the WeChat Pay
//! public key.
//!
//! Contract: the signed message is `TIMESTAMP\nNONCE\nRAW_BODY\n` over the body bytes exactly as received. The key is
//! chosen by `Wechatpay-Serial`: a `PUB_KEY_ID_…` value selects the public key, anything else the platform
//! certificate with that serial (compared as numbers). Both may be configured at once (the switch from certificates
//! to the public key mixes the two). The timestamp must be within ±5 minutes. A missing header, a bad timestamp, a
//! signature-probe value (`WECHATPAY/SIGNTEST/…`), bad base64, an unknown serial or a mismatch is a [`VerifyError`]
//! — never a panic, never a pass. Only this module constructs [`Verified`] values.

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("header {0} is missing or not ASCII")]
    MissingHeader(&'static str),
    #[error("Wechatpay-Timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("Wechatpay-Timestamp is {skew_secs}s away from this server's clock (more than 5 minutes)")]
    Stale { skew_secs: i64 },
    #[error("unsupported Wechatpay-Signature-Type `{0}`")]
    UnsupportedSignatureType(String),
    #[error("a signature-probe signature (WECHATPAY/SIGNTEST/…): treated as invalid")]
    Probe,
    #[error("Wechatpay-Signature is not base64")]
    BadSignatureEncoding,
    #[error("no platform certificate with serial {0} is known")]
    UnknownSerial(String),
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
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, VerifyError> {
        let get = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or(VerifyError::MissingHeader(name))
        };
        Ok(Self {
            timestamp: get("Wechatpay-Timestamp")?,
            nonce: get("Wechatpay-Nonce")?,
            signature: get("Wechatpay-Signature")?,
            serial: get("Wechatpay-Serial")?,
            signature_type: get("Wechatpay-Signature-Type").ok(),
        })
    }
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
    /// when configured, else the newest platform certificate.
    pub fn encryption_key(&self) -> Option<(String, RsaPublicKey)> {
        if let Some(public) = &self.public_key {
            return Some((public.id.clone(), public.key.clone()));
        }
        self.certificates().into_iter().next().map(|c| (c.serial, c.public_key))
    }

    /// Verify `body` as signed by WeChat Pay at about `now` (Unix seconds).
    pub fn verify(&self, headers: &SignatureHeaders, body: &[u8], now: i64) -> Result<(), VerifyError> {
        if let Some(kind) = &headers.signature_type
            && kind != SIGNATURE_TYPE
        {
            return Err(VerifyError::UnsupportedSignatureType(kind.clone()));
        }
        let timestamp: i64 = headers.timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
        let skew_secs = now - timestamp;
        if skew_secs.abs() > MAX_SKEW_SECS {
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
                Some(cert) => cert.public_key.verify_sha256(&message, &signature),
                None => return Err(VerifyError::UnknownSerial(headers.serial.clone())),
            }
        };
        if verified { Ok(()) } else { Err(VerifyError::Mismatch) }
    }
}
