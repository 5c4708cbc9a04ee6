//! A sub-merchant (子商户) of a provider, and its settings.

use super::provider::MAX_REPLY_CHARS;
use super::{FieldError, Mchid, text_field};

/// A sub-merchant's settings, before validation.
#[derive(Debug)]
pub struct MerchantDraft {
    pub mchid: String,
    pub name: String,
    /// `None`: the provider's default reply is used.
    pub reply_text: Option<String>,
    pub auto_refund: bool,
    pub enabled: bool,
}

#[derive(Debug)]
pub struct ValidMerchant {
    pub mchid: Mchid,
    pub name: String,
    pub reply_text: Option<String>,
    pub auto_refund: bool,
    pub enabled: bool,
}

impl MerchantDraft {
    pub fn validate(self) -> Result<ValidMerchant, FieldError> {
        let reply_text = match self.reply_text.filter(|t| !t.trim().is_empty()) {
            None => None,
            Some(text) => Some(text_field("reply_text", &text, MAX_REPLY_CHARS)?),
        };
        Ok(ValidMerchant {
            mchid: Mchid::parse("mchid", &self.mchid)?,
            name: text_field("name", &self.name, 128)?,
            reply_text,
            auto_refund: self.auto_refund,
            enabled: self.enabled,
        })
    }
}
