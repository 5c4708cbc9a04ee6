//! A service provider (服务商): its WeChat Pay identity, keys and defaults, and the rules that make a set of
//! them consistent.
//!
//! Contract: [`ProviderDraft::validate`] is the one place that decides whether a provider's settings can work at
//! WeChat: keys parse, the merchant certificate belongs to the private key and carries the configured serial, a
//! public key comes with its id. It is used for creation and, on the merged result, for every update.

use secrecy::SecretString;
use wechatpay::keys::{self, Certificate, RsaPrivateKey, RsaPublicKey};

use super::values::{PublicKeyId, notify_url};
use super::{Apiv3Key, Appid, FieldError, Mchid, text_field};

/// WeChat allows 200 characters in a reply to the consumer.
pub const MAX_REPLY_CHARS: usize = 200;

/// Used when a provider sets no default reply: polite, neutral, and within WeChat's limit.
pub const BUILT_IN_DEFAULT_REPLY: &str =
    "您好，我们已收到您的反馈，正在为您核实处理，会尽快给您答复。给您带来不便，敬请谅解。";

/// Everything an operator sets on a provider, before validation.
#[derive(Debug)]
pub struct ProviderDraft {
    pub name: String,
    pub mchid: String,
    pub appid: String,
    pub merchant_cert_serial: String,
    pub merchant_private_key_pem: SecretString,
    pub merchant_cert_pem: Option<String>,
    pub platform_cert_serial: Option<String>,
    pub platform_cert_pem: Option<String>,
    pub wechatpay_public_key_id: Option<String>,
    pub wechatpay_public_key_pem: Option<String>,
    pub apiv3_key: SecretString,
    pub refund_notify_url: Option<String>,
    pub default_reply: Option<String>,
    pub default_auto_refund: bool,
}

/// A platform certificate an operator uploaded.
#[derive(Debug, Clone)]
pub struct PlatformCertificate {
    pub serial: String,
    pub pem: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// A provider whose settings have been checked against each other.
#[derive(Debug)]
pub struct ValidProvider {
    pub name: String,
    pub mchid: Mchid,
    pub appid: Appid,
    pub merchant_cert_serial: String,
    pub merchant_private_key_pem: SecretString,
    pub merchant_cert_pem: Option<String>,
    pub platform_cert: Option<PlatformCertificate>,
    pub public_key: Option<(PublicKeyId, String)>,
    pub apiv3_key: Apiv3Key,
    pub refund_notify_url: Option<String>,
    pub default_reply: String,
    pub default_auto_refund: bool,
}

fn key_error(field: &str, e: keys::KeyError) -> FieldError {
    FieldError::new(field, e.to_string())
}

impl ProviderDraft {
    /// `now` (Unix seconds) is used to refuse an expired certificate.
    pub fn validate(self, now: i64) -> Result<ValidProvider, FieldError> {
        use secrecy::ExposeSecret as _;

        let name = text_field("name", &self.name, 128)?;
        let mchid = Mchid::parse("mchid", &self.mchid)?;
        let appid = Appid::parse("appid", &self.appid)?;
        let merchant_cert_serial =
            keys::normalize_serial(&self.merchant_cert_serial).map_err(|e| key_error("merchant_cert_serial", e))?;
        let private_key = RsaPrivateKey::from_pem(self.merchant_private_key_pem.expose_secret())
            .map_err(|e| key_error("merchant_private_key_pem", e))?;

        let merchant_cert_pem = match non_empty(self.merchant_cert_pem) {
            None => None,
            Some(pem) => {
                let cert = Certificate::from_pem(&pem).map_err(|e| key_error("merchant_cert_pem", e))?;
                if !keys::same_serial(&cert.serial, &merchant_cert_serial) {
                    return Err(FieldError::new(
                        "merchant_cert_pem",
                        format!(
                            "this certificate's serial is {}, but merchant_cert_serial is {}",
                            cert.serial, merchant_cert_serial
                        ),
                    ));
                }
                if !private_key.matches(&cert.public_key) {
                    return Err(FieldError::new(
                        "merchant_cert_pem",
                        "this certificate does not belong to merchant_private_key_pem (the public keys differ)",
                    ));
                }
                if cert.not_after < now {
                    return Err(FieldError::new("merchant_cert_pem", "this certificate has expired"));
                }
                Some(pem.trim().to_owned())
            }
        };

        let platform_cert = match (non_empty(self.platform_cert_pem), non_empty(self.platform_cert_serial)) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(FieldError::new(
                    "platform_cert_serial",
                    "give platform_cert_pem with it (platform certificates are otherwise downloaded from WeChat Pay)",
                ));
            }
            (Some(pem), serial) => {
                let cert = Certificate::from_pem(&pem).map_err(|e| key_error("platform_cert_pem", e))?;
                if let Some(serial) = serial {
                    let serial = keys::normalize_serial(&serial).map_err(|e| key_error("platform_cert_serial", e))?;
                    if !keys::same_serial(&cert.serial, &serial) {
                        return Err(FieldError::new(
                            "platform_cert_serial",
                            format!("platform_cert_pem has serial {}, not {serial}", cert.serial),
                        ));
                    }
                }
                if cert.not_after < now {
                    return Err(FieldError::new("platform_cert_pem", "this platform certificate has expired"));
                }
                Some(PlatformCertificate {
                    serial: cert.serial,
                    pem: pem.trim().to_owned(),
                    not_before: cert.not_before,
                    not_after: cert.not_after,
                })
            }
        };

        let public_key = match (non_empty(self.wechatpay_public_key_id), non_empty(self.wechatpay_public_key_pem)) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(FieldError::new("wechatpay_public_key_pem", "required with wechatpay_public_key_id"));
            }
            (None, Some(_)) => {
                return Err(FieldError::new("wechatpay_public_key_id", "required with wechatpay_public_key_pem"));
            }
            (Some(id), Some(pem)) => {
                let id = PublicKeyId::parse("wechatpay_public_key_id", &id)?;
                RsaPublicKey::from_pem(&pem).map_err(|e| key_error("wechatpay_public_key_pem", e))?;
                Some((id, pem.trim().to_owned()))
            }
        };

        let apiv3_key = Apiv3Key::parse("apiv3_key", &self.apiv3_key)?;
        let refund_notify_url = match non_empty(self.refund_notify_url) {
            None => None,
            Some(url) => Some(notify_url("refund_notify_url", &url)?),
        };
        let default_reply = match non_empty(self.default_reply) {
            None => BUILT_IN_DEFAULT_REPLY.to_owned(),
            Some(text) => text_field("default_reply", &text, MAX_REPLY_CHARS)?,
        };
        Ok(ValidProvider {
            name,
            mchid,
            appid,
            merchant_cert_serial,
            merchant_private_key_pem: self.merchant_private_key_pem,
            merchant_cert_pem,
            platform_cert,
            public_key,
            apiv3_key,
            refund_notify_url,
            default_reply,
            default_auto_refund: self.default_auto_refund,
        })
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_reply_fits_wechats_limit() {
        assert!(BUILT_IN_DEFAULT_REPLY.chars().count() <= MAX_REPLY_CHARS);
        assert!(text_field("default_reply", BUILT_IN_DEFAULT_REPLY, MAX_REPLY_CHARS).is_ok());
    }
}
