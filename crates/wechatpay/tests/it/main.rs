//! The wechatpay crate's integration tests: one binary.

mod callbacks;
mod client;
mod crosscheck;
mod keys;

/// A file of `testdata/` (keys and certificates made with OpenSSL).
pub fn testdata(name: &str) -> String {
    let path = format!("{}/../../testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
