//! Callbacks (notifications): the envelope, its verification, and the typed events inside.
//!
//! Contract: [`verify_notification`] checks the signature over the raw body first and only then parses it, so a
//! [`Verified<Notification>`] always describes bytes WeChat Pay signed. Decryption ([`Verified::event`]) opens the
//! AES-256-GCM resource with the APIv3 key and parses it into an [`Event`]: complaint, violation, refund, or
//! `Other` for event types this version does not type. Malformed envelopes and resources are errors naming what is
//! wrong; unknown enum values are kept, never rejected.

use http::HeaderMap;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use crate::crypto::{AeadError, Apiv3Key};
use crate::enums::{ActionType, EventType, RefundStatus, RiskType};
use crate::verify::{PlatformKeys, SignatureHeaders, Verified, VerifyError};

pub const AEAD_ALGORITHM: &str = "AEAD_AES_256_GCM";
pub const ENCRYPT_RESOURCE: &str = "encrypt-resource";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("signature: {0}")]
    Signature(#[from] VerifyError),
    #[error("the body is not a notification: {0}")]
    Malformed(String),
    #[error("resource_type `{0}` is not encrypt-resource")]
    NotEncrypted(String),
    #[error("resource algorithm `{0}` is not AEAD_AES_256_GCM")]
    UnsupportedAlgorithm(String),
    #[error("the resource does not decrypt: {0}")]
    Decrypt(#[from] AeadError),
    #[error("the decrypted resource is not what {event_type} carries: {message}")]
    Resource { event_type: String, message: String },
}

/// The encrypted part of a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedResource {
    pub algorithm: String,
    pub ciphertext: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associated_data: Option<String>,
    pub nonce: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_type: Option<String>,
}

/// A notification envelope as WeChat Pay sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Stays the same when WeChat delivers the notification again: the dedupe key.
    pub id: String,
    /// As sent; see [`Notification::created_at`].
    #[serde(default)]
    pub create_time: String,
    pub event_type: EventType,
    #[serde(default)]
    pub resource_type: String,
    #[serde(default)]
    pub summary: String,
    pub resource: EncryptedResource,
}

impl Notification {
    /// Parse an envelope (not yet verified: use [`verify_notification`] to act on one).
    pub fn parse(body: &[u8]) -> Result<Self, CallbackError> {
        let notification: Notification =
            serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        if notification.id.trim().is_empty() {
            return Err(CallbackError::Malformed("`id` is empty".into()));
        }
        Ok(notification)
    }

    /// `create_time` parsed leniently: RFC 3339 with or without fractions, or `yyyyMMddHHmmss` (China time).
    pub fn created_at(&self) -> Option<OffsetDateTime> {
        parse_wechat_time(&self.create_time)
    }

    /// Whether `key` opens the resource: how the legacy callback path tells which provider a notification is for.
    /// Says nothing about authenticity; verify before acting.
    pub fn opens_with(&self, key: &Apiv3Key) -> bool {
        self.decrypt_resource(key).is_ok()
    }

    fn decrypt_resource(&self, key: &Apiv3Key) -> Result<String, CallbackError> {
        if self.resource_type != ENCRYPT_RESOURCE {
            return Err(CallbackError::NotEncrypted(self.resource_type.clone()));
        }
        if self.resource.algorithm != AEAD_ALGORITHM {
            return Err(CallbackError::UnsupportedAlgorithm(self.resource.algorithm.clone()));
        }
        let aad = self.resource.associated_data.as_deref().filter(|a| !a.is_empty());
        Ok(key.decrypt(&self.resource.ciphertext, &self.resource.nonce, aad)?)
    }
}

/// What a notification says, before encryption (see [`Notification::encrypt`]).
#[derive(Debug, Clone)]
pub struct NotificationContent<'a> {
    pub id: &'a str,
    pub create_time: &'a str,
    pub event_type: EventType,
    pub summary: &'a str,
    pub original_type: &'a str,
    /// The resource's JSON.
    pub plaintext: &'a str,
    pub associated_data: &'a str,
}

impl Notification {
    /// Build a notification as WeChat Pay does: the resource encrypted under `key` with a fresh 12-character nonce
    /// (what a simulator sends; the body to sign is this value's JSON).
    pub fn encrypt(key: &Apiv3Key, content: &NotificationContent<'_>) -> Result<Self, CallbackError> {
        let nonce = crate::crypto::random_resource_nonce()?;
        let ciphertext = key.encrypt(content.plaintext, &nonce, Some(content.associated_data))?;
        Ok(Self {
            id: content.id.to_owned(),
            create_time: content.create_time.to_owned(),
            event_type: content.event_type.clone(),
            resource_type: ENCRYPT_RESOURCE.to_owned(),
            summary: content.summary.to_owned(),
            resource: EncryptedResource {
                algorithm: AEAD_ALGORITHM.to_owned(),
                ciphertext,
                associated_data: Some(content.associated_data.to_owned()),
                nonce,
                original_type: Some(content.original_type.to_owned()),
            },
        })
    }
}

/// Verify a callback's signature over its raw body, then parse it.
pub fn verify_notification(
    keys: &PlatformKeys,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verified<Notification>, CallbackError> {
    let signature = SignatureHeaders::from_headers(headers)?;
    verify_notification_headers(keys, &signature, body, now)
}

/// [`verify_notification`] for headers already read (and shape-checked) with [`SignatureHeaders::from_headers`],
/// for a receiver that refuses malformed headers before it looks anything up.
pub fn verify_notification_headers(
    keys: &PlatformKeys,
    signature: &SignatureHeaders,
    body: &[u8],
    now: i64,
) -> Result<Verified<Notification>, CallbackError> {
    keys.verify(signature, body, now)?;
    Ok(Verified::new(Notification::parse(body)?))
}

impl Verified<Notification> {
    /// Decrypt the resource and type it by `event_type`.
    pub fn event(&self, key: &Apiv3Key) -> Result<Event, CallbackError> {
        let plaintext = self.decrypt_resource(key)?;
        Event::from_plaintext(&self.event_type, &plaintext)
    }
}

/// The decrypted content of a notification.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Complaint(ComplaintNotice),
    Violation(ViolationNotice),
    Refund(RefundNotice),
    /// An event type this version does not type, with its decrypted JSON.
    Other {
        event_type: EventType,
        resource: serde_json::Value,
    },
}

impl Event {
    /// Type a decrypted resource by the notification's `event_type` family.
    pub fn from_plaintext(event_type: &EventType, plaintext: &str) -> Result<Self, CallbackError> {
        let family = event_type.as_str().split('.').next().unwrap_or_default();
        let resource_error = |e: serde_json::Error| CallbackError::Resource {
            event_type: event_type.to_string(),
            message: e.to_string(),
        };
        Ok(match family {
            "COMPLAINT" => Event::Complaint(serde_json::from_str(plaintext).map_err(resource_error)?),
            "VIOLATION" => Event::Violation(serde_json::from_str(plaintext).map_err(resource_error)?),
            "REFUND" => Event::Refund(serde_json::from_str(plaintext).map_err(resource_error)?),
            _ => Event::Other {
                event_type: event_type.clone(),
                resource: serde_json::from_str(plaintext).map_err(resource_error)?,
            },
        })
    }
}

/// `COMPLAINT.*`: which complaint changed and how. Fetch the detail for everything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintNotice {
    pub complaint_id: String,
    pub action_type: ActionType,
    /// Fields of the 1.0 notification that WeChat still sends sometimes; kept, never relied on.
    #[serde(flatten)]
    pub legacy: serde_json::Map<String, serde_json::Value>,
}

/// `VIOLATION.*`: a disposal record of a sub-merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationNotice {
    pub sub_mchid: String,
    /// Unique per disposal record: the dedupe key.
    pub record_id: String,
    #[serde(default)]
    pub company_name: String,
    /// Free text, not an enumeration.
    #[serde(default)]
    pub punish_plan: String,
    #[serde(default)]
    pub punish_time: String,
    #[serde(default)]
    pub punish_description: String,
    #[serde(default = "unknown_risk")]
    pub risk_type: RiskType,
    #[serde(default)]
    pub risk_description: String,
}

fn unknown_risk() -> RiskType {
    RiskType::Unknown(String::new())
}

impl ViolationNotice {
    pub fn punished_at(&self) -> Option<OffsetDateTime> {
        parse_wechat_time(&self.punish_time)
    }
}

/// `REFUND.*` for a service provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundNotice {
    #[serde(default)]
    pub sp_mchid: String,
    pub sub_mchid: String,
    #[serde(default)]
    pub out_trade_no: String,
    #[serde(default)]
    pub transaction_id: String,
    pub out_refund_no: String,
    #[serde(default)]
    pub refund_id: String,
    pub refund_status: RefundStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_received_account: Option<String>,
    pub amount: RefundNoticeAmount,
}

/// Amounts in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundNoticeAmount {
    pub total: i64,
    pub refund: i64,
    #[serde(default)]
    pub payer_total: i64,
    #[serde(default)]
    pub payer_refund: i64,
}

/// China Standard Time, for the undelimited `yyyyMMddHHmmss` form some documents show.
const CHINA: time::UtcOffset = match time::UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => time::UtcOffset::UTC,
};

/// Parse a WeChat time: RFC 3339 (`2015-05-20T13:29:35+08:00`, `…35.120+08:00`) or `20180225112233` (China time).
pub fn parse_wechat_time(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Some(at);
    }
    if text.len() == 14 && text.bytes().all(|b| b.is_ascii_digit()) {
        let format = time::macros::format_description!("[year][month][day][hour][minute][second]");
        return time::PrimitiveDateTime::parse(text, format).ok().map(|at| at.assume_offset(CHINA));
    }
    None
}

/// `complainted_mchid` arrives as a string, but some SDKs have seen a number: accept both.
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Either::deserialize(deserializer)? {
        Either::Text(text) => text,
        Either::Number(number) => number.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_documented_shape() {
        let expected = time::macros::datetime!(2015-05-20 13:29:35 +08:00);
        assert_eq!(parse_wechat_time("2015-05-20T13:29:35+08:00"), Some(expected));
        assert_eq!(
            parse_wechat_time("2015-05-20T13:29:35.120+08:00"),
            Some(time::macros::datetime!(2015-05-20 13:29:35.12 +08:00))
        );
        assert_eq!(parse_wechat_time("20150520132935"), Some(expected));
        assert_eq!(parse_wechat_time("yesterday"), None);
        assert_eq!(parse_wechat_time(""), None);
    }

    #[test]
    fn events_are_typed_by_family() {
        let complaint = Event::from_plaintext(
            &EventType::ComplaintCreate,
            r#"{"complaint_id":"200201820200101080076610000","action_type":"CREATE_COMPLAINT","complaint_state":"PAYER_COMPLAINTED"}"#,
        )
        .expect("complaint");
        let Event::Complaint(notice) = complaint else { panic!("not a complaint") };
        assert_eq!(notice.action_type, ActionType::CreateComplaint);
        assert_eq!(notice.legacy["complaint_state"], "PAYER_COMPLAINTED");

        let violation = Event::from_plaintext(
            &EventType::ViolationPunish,
            r#"{"sub_mchid":"1900000109","company_name":"某某公司","record_id":"R1","punish_plan":"关闭支付权限","punish_time":"2026-11-27T10:00:00+08:00","punish_description":"d","risk_type":"NEW_RISK","risk_description":"新风险"}"#,
        )
        .expect("violation");
        let Event::Violation(notice) = violation else { panic!("not a violation") };
        assert_eq!(notice.risk_type, RiskType::Unknown("NEW_RISK".into()));
        assert!(notice.punished_at().is_some());

        let missing = Event::from_plaintext(&EventType::ViolationPunish, r#"{"sub_mchid":"1900000109"}"#);
        assert!(
            matches!(missing, Err(CallbackError::Resource { .. })),
            "a violation without record_id cannot be deduplicated"
        );

        let refund = Event::from_plaintext(
            &EventType::RefundSuccess,
            r#"{"sp_mchid":"1900000100","sub_mchid":"1900000109","out_trade_no":"T1","transaction_id":"4200","out_refund_no":"R1","refund_id":"5030","refund_status":"SUCCESS","success_time":"2026-11-27T10:00:00+08:00","user_received_account":"支付用户零钱","amount":{"total":999,"refund":999,"payer_total":999,"payer_refund":999}}"#,
        )
        .expect("refund");
        assert!(matches!(refund, Event::Refund(RefundNotice { refund_status: RefundStatus::Success, .. })));

        let other = Event::from_plaintext(&EventType::parse("TRANSACTION.SUCCESS"), r#"{"a":1}"#).expect("other");
        assert!(matches!(other, Event::Other { .. }));
        assert!(Event::from_plaintext(&EventType::ComplaintCreate, "not json").is_err());
    }

    #[test]
    fn envelope_errors() {
        assert!(matches!(Notification::parse(b"{}"), Err(CallbackError::Malformed(_))));
        assert!(matches!(Notification::parse(&[0xff, 0xfe]), Err(CallbackError::Malformed(_))));
        assert!(matches!(
            Notification::parse(
                br#"{"id":" ","event_type":"X","resource":{"algorithm":"a","ciphertext":"c","nonce":"n"}}"#
            ),
            Err(CallbackError::Malformed(_))
        ));
    }
}
