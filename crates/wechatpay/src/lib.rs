//! WeChat Pay APIv3 for service providers (服务商): what a system handling sub-merchants' consumer complaints and
//! platform violations needs, built on aws-lc-rs.
//!
//! - [`keys`]: merchant private key, certificates, public keys; RSA-OAEP for sensitive fields.
//! - [`sign`]: the request signature and `Authorization` header (and verifying one, for simulators).
//! - [`verify`]: verifying responses and callbacks with platform certificates and/or the WeChat Pay public key.
//! - [`crypto`]: AEAD_AES_256_GCM under the APIv3 key.
//! - [`callback`]: notification envelopes, their verification, typed complaint/violation/refund events.
//! - [`client`]: the signed HTTP client of one provider, with certificate refresh and error classification.
//! - [`api`]: complaints, images, notification URLs, refunds, sub-merchant limitations.
//!
//! Nothing here is global: each provider has its own [`Client`] and its own keys.

pub mod api;
pub mod callback;
pub mod client;
pub mod crypto;
pub mod enums;
pub mod error;
pub mod keys;
pub mod sign;
pub mod verify;

pub use callback::{Event, Notification, verify_notification};
pub use client::{Client, ClientConfig, Credentials};
pub use crypto::Apiv3Key;
pub use error::{ApiError, Error, Retry};
pub use keys::{Certificate, KeyError, RsaPrivateKey, RsaPublicKey};
pub use verify::{PlatformCertificate, PlatformKeys, Verified, VerifyError, WechatPayPublicKey};
