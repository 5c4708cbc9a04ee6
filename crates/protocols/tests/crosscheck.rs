//! The robot signers checked against an implementation we did not share with the simulator: Python's standard
//! `hmac`, `hashlib` and `base64` (`robot_signatures.py`, written from the vendors' documented recipes). The
//! simulator verifies with this crate too, so without this check a wrong signer would pass every other test.

#[path = "../../../testdata/test_support.rs"]
mod test_support;

use protocols::{dingtalk, feishu};
use serde_json::{Value, json};

/// Secrets that stress the encodings: the fact sheet's, empty, CJK and emoji (multi-byte UTF-8), a line break (the
/// separator of the string to sign), URL and base64 specials, and keys at and beyond HMAC-SHA256's 64-byte block
/// (a longer key is hashed first).
fn secrets() -> Vec<String> {
    vec![
        "SECtestsecret0123456789".to_owned(),
        "testsecret0123456789".to_owned(),
        String::new(),
        "SEC密钥-钉钉飞书".to_owned(),
        "SEC🔑✓ é".to_owned(),
        "line\nbreak\r\n".to_owned(),
        "+/=&%?#".to_owned(),
        "S".repeat(64),
        format!("SEC{}", "0123456789abcdef".repeat(5)),
    ]
}

fn run_python(request: &Value) -> Value {
    let script = format!("{}/tests/robot_signatures.py", env!("CARGO_MANIFEST_DIR"));
    let output = test_support::run_python(&script, &[], request.to_string().as_bytes());
    serde_json::from_slice(&output).expect("python answers JSON")
}

#[test]
fn dingtalk_and_feishu_signatures_match_pythons_hmac() {
    let dingtalk_times: [i64; 5] = [0, 1, 1_700_000_000_000, 1_893_456_000_123, i64::MAX];
    let feishu_times: [i64; 5] = [0, 1, 1_700_000_000, 4_102_444_800, i64::MAX];
    let mut dingtalk_cases = Vec::new();
    let mut feishu_cases = Vec::new();
    for secret in secrets() {
        for timestamp_ms in dingtalk_times {
            dingtalk_cases.push((secret.clone(), timestamp_ms));
        }
        for timestamp_secs in feishu_times {
            feishu_cases.push((secret.clone(), timestamp_secs));
        }
    }
    let request = json!({
        "dingtalk": dingtalk_cases.iter().map(|(s, t)| json!({"secret": s, "timestamp_ms": t})).collect::<Vec<_>>(),
        "feishu": feishu_cases.iter().map(|(s, t)| json!({"secret": s, "timestamp_secs": t})).collect::<Vec<_>>(),
    });
    let answer = run_python(&request);

    let python_dingtalk = answer["dingtalk"].as_array().expect("dingtalk answers");
    assert_eq!(python_dingtalk.len(), dingtalk_cases.len());
    for ((secret, timestamp_ms), python) in dingtalk_cases.iter().zip(python_dingtalk) {
        let sign = dingtalk::sign(secret, *timestamp_ms);
        assert_eq!(sign, python["sign"].as_str().expect("sign"), "DingTalk sign, secret {secret:?}, {timestamp_ms}");
        assert_eq!(
            dingtalk::query_suffix(secret, *timestamp_ms),
            python["query_suffix"].as_str().expect("query_suffix"),
            "DingTalk query, secret {secret:?}, {timestamp_ms}"
        );
        assert!(dingtalk::verify(secret, *timestamp_ms, &sign, *timestamp_ms));
    }

    let python_feishu = answer["feishu"].as_array().expect("feishu answers");
    assert_eq!(python_feishu.len(), feishu_cases.len());
    for ((secret, timestamp_secs), python) in feishu_cases.iter().zip(python_feishu) {
        let sign = feishu::sign(secret, *timestamp_secs);
        assert_eq!(sign, python["sign"].as_str().expect("sign"), "Feishu sign, secret {secret:?}, {timestamp_secs}");
        assert!(feishu::verify(secret, *timestamp_secs, &sign, *timestamp_secs));
        // The two arrangements differ for every input: a signer mixing them up cannot pass.
        assert_ne!(sign, dingtalk::sign(secret, *timestamp_secs), "secret {secret:?}, {timestamp_secs}");
    }
}
