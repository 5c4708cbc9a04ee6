//! What the notification channels' services require of a request: Tencent Cloud TC3-HMAC-SHA256, DingTalk and
//! Feishu robot signatures, Standard Webhooks, phone number forms. The simulator checks with them; wxrisk's channels
//! build with them, so both sides share one implementation, checked against the services' published vectors.

pub mod dingtalk;
pub mod feishu;
pub mod phone;
pub mod standard_webhooks;
pub mod tc3;

use aws_lc_rs::hmac;

pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message).as_ref().to_vec()
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

/// Constant-time comparison of two signatures.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}
