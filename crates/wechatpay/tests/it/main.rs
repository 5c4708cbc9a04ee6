//! The wechatpay crate's integration tests: one binary.

mod callbacks;
mod client;
mod crosscheck;
mod keys;
#[path = "../../../../testdata/test_support.rs"]
mod support;

pub use support::{python, testdata};
