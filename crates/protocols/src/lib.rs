//! What the notification channels' services require of a request: Tencent Cloud TC3-HMAC-SHA256, DingTalk and
//! Feishu robot signatures, Standard Webhooks, phone number forms.
//!
//! Contract: wxrisk's senders build requests with these functions and the simulator (`wxsim`) checks requests with
//! the same ones, so a mistake here would pass every test that only pits the two against each other. Each signer is
//! therefore anchored to something outside this crate: TC3 and Standard Webhooks to the vendors' published vectors
//! (unit tests in their modules), DingTalk and Feishu to an independent implementation with Python's standard
//! `hmac`/`hashlib`/`base64` (`tests/crosscheck.rs`), as the vendors' own samples do it. The crate depends on
//! neither the product nor the simulator.

pub mod dingtalk;
pub mod feishu;
pub mod phone;
pub mod standard_webhooks;
pub mod tc3;

use aws_lc_rs::hmac;

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message).as_ref().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

/// Constant-time comparison of two signatures (for checkers, such as the simulator's TC3 check).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}
