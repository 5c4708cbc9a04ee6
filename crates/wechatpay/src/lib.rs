//! WeChat Pay APIv3 for service providers (服务商).
//!
//! This crate knows the protocol and nothing of the application that uses it: key material and its checks
//! ([`keys`]); request signing, verification, callbacks and typed API calls are added module by module.

pub mod keys;

pub use keys::{Certificate, KeyError, MerchantPrivateKey, RsaPublicKey};
