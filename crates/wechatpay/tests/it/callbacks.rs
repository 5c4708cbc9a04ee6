//! Callback verification and decryption, and every way a callback can be wrong. (The same checks against
//! callbacks made by Python's `cryptography` and `wechatpayv3` are in `crosscheck`.)

use http::HeaderMap;
use serde_json::json;
use wechatpay::callback::{CallbackError, NotificationContent, verify_notification};
use wechatpay::enums::{ActionType, EventType};
use wechatpay::sign::sign_as_wechatpay;
use wechatpay::{
    Apiv3Key, Event, Notification, PlatformCertificate, PlatformKeys, RsaPrivateKey, VerifyError, WechatPayPublicKey,
};

use crate::testdata;

const APIV3: &[u8; 32] = b"0123456789abcdefABCDEF0123456789";
const SERIAL: &str = "3F5A1B2C3D4E5F60718293A4B5C6D7E8F9012345";
const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0116571234562024052000123400000000";
const NOW: i64 = 1_764_217_606;

fn platform_key() -> RsaPrivateKey {
    RsaPrivateKey::from_pem(&testdata("other_key.pem")).expect("platform key")
}

fn cert_keys() -> PlatformKeys {
    PlatformKeys::new(None, vec![PlatformCertificate::from_pem(&testdata("platform_cert.pem")).expect("cert")])
}

fn public_keys() -> PlatformKeys {
    PlatformKeys::new(
        Some(WechatPayPublicKey::from_pem(PUBLIC_KEY_ID, &testdata("wechatpay_public_key.pem")).expect("pk")),
        Vec::new(),
    )
}

fn complaint_body(key: &Apiv3Key) -> Vec<u8> {
    let content = NotificationContent {
        id: "EV-2018022511223320873",
        create_time: "2026-11-27T13:26:46+08:00",
        event_type: EventType::ComplaintCreate,
        summary: "产生新投诉",
        original_type: "complaint",
        plaintext: r#"{"complaint_id":"200201820200101080076610000","action_type":"CREATE_COMPLAINT"}"#,
        associated_data: "",
    };
    serde_json::to_vec(&Notification::encrypt(key, &content).expect("encrypt")).expect("json")
}

fn headers_for(body: &[u8], serial: &str, timestamp: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in
        sign_as_wechatpay(&platform_key(), serial, timestamp, "fdasfwfe2322ewffsds", body).expect("sign")
    {
        headers.insert(name, value.parse().expect("header"));
    }
    headers
}

#[test]
fn a_genuine_callback_verifies_and_decrypts_with_certificate_or_public_key() {
    let key = Apiv3Key::new(APIV3).expect("key");
    let body = complaint_body(&key);
    for (keys, serial) in [(cert_keys(), SERIAL), (public_keys(), PUBLIC_KEY_ID)] {
        let verified =
            verify_notification(&keys, &headers_for(&body, serial, NOW), &body, NOW + 120).expect("verifies");
        assert_eq!(verified.id, "EV-2018022511223320873");
        assert!(verified.created_at().is_some());
        match verified.event(&key).expect("decrypts") {
            Event::Complaint(notice) => {
                assert_eq!(notice.complaint_id, "200201820200101080076610000");
                assert_eq!(notice.action_type, ActionType::CreateComplaint);
            }
            other => panic!("{other:?}"),
        }
    }
    // During the switch both kinds arrive; a verifier holding both accepts both.
    let both = PlatformKeys::new(public_keys().public_key().cloned(), cert_keys().certificates());
    for serial in [SERIAL, PUBLIC_KEY_ID] {
        verify_notification(&both, &headers_for(&body, serial, NOW), &body, NOW).expect("both");
    }
}

fn expect_signature_error(keys: &PlatformKeys, headers: &HeaderMap, body: &[u8], now: i64) -> VerifyError {
    match verify_notification(keys, headers, body, now) {
        Err(CallbackError::Signature(e)) => e,
        other => panic!("expected a signature failure, got {other:?}"),
    }
}

#[test]
fn every_tampering_is_refused() {
    let key = Apiv3Key::new(APIV3).expect("key");
    let keys = cert_keys();
    let body = complaint_body(&key);
    let headers = headers_for(&body, SERIAL, NOW);

    let mut tampered_body = body.clone();
    let at = tampered_body.len() / 2;
    tampered_body[at] ^= 1;
    assert_eq!(expect_signature_error(&keys, &headers, &tampered_body, NOW), VerifyError::Mismatch);

    // Re-serialised JSON (same content, different bytes) is not what was signed.
    let reserialised =
        serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(&body).expect("json")).expect("json");
    assert_eq!(expect_signature_error(&keys, &headers, &reserialised, NOW), VerifyError::Mismatch);

    let mut changed = headers.clone();
    changed.insert("Wechatpay-Nonce", "another-nonce".parse().expect("h"));
    assert_eq!(expect_signature_error(&keys, &changed, &body, NOW), VerifyError::Mismatch);

    let mut changed = headers.clone();
    changed.insert("Wechatpay-Timestamp", (NOW + 1).to_string().parse().expect("h"));
    assert_eq!(expect_signature_error(&keys, &changed, &body, NOW), VerifyError::Mismatch);

    let mut changed = headers.clone();
    changed.insert("Wechatpay-Serial", "3F5A1B2C3D4E5F60718293A4B5C6D7E8F9012346".parse().expect("h"));
    assert!(matches!(expect_signature_error(&keys, &changed, &body, NOW), VerifyError::UnknownSerial(_)));

    let mut changed = headers.clone();
    changed.insert("Wechatpay-Serial", PUBLIC_KEY_ID.parse().expect("h"));
    assert!(matches!(expect_signature_error(&keys, &changed, &body, NOW), VerifyError::UnknownPublicKey(_)));

    let signature = headers["Wechatpay-Signature"].to_str().expect("ascii").to_owned();
    let mut probe = headers.clone();
    probe.insert("Wechatpay-Signature", format!("WECHATPAY/SIGNTEST/{signature}").parse().expect("h"));
    assert_eq!(expect_signature_error(&keys, &probe, &body, NOW), VerifyError::Probe);

    let mut garbage = headers.clone();
    garbage.insert("Wechatpay-Signature", "!!! not base64 !!!".parse().expect("h"));
    assert_eq!(expect_signature_error(&keys, &garbage, &body, NOW), VerifyError::BadSignatureEncoding);

    assert!(matches!(expect_signature_error(&keys, &headers, &body, NOW + 301), VerifyError::Stale { .. }));
    assert!(matches!(expect_signature_error(&keys, &headers, &body, NOW - 301), VerifyError::Stale { .. }));
    verify_notification(&keys, &headers, &body, NOW + 300).expect("exactly 5 minutes is still fine");

    let mut bad_time = headers.clone();
    bad_time.insert("Wechatpay-Timestamp", "yesterday".parse().expect("h"));
    assert_eq!(expect_signature_error(&keys, &bad_time, &body, NOW), VerifyError::BadTimestamp);

    let mut other_type = headers.clone();
    other_type.insert("Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3".parse().expect("h"));
    assert!(matches!(expect_signature_error(&keys, &other_type, &body, NOW), VerifyError::UnsupportedSignatureType(_)));

    for name in ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"] {
        let mut missing = headers.clone();
        missing.remove(name);
        assert_eq!(expect_signature_error(&keys, &missing, &body, NOW), VerifyError::MissingHeader(name));
    }
    // A missing signature type is the default (the Go SDK does the same).
    let mut no_type = headers.clone();
    no_type.remove("Wechatpay-Signature-Type");
    verify_notification(&keys, &no_type, &body, NOW).expect("default type");
}

#[test]
fn signed_but_undecryptable_or_malformed_bodies_are_errors() {
    let key = Apiv3Key::new(APIV3).expect("key");
    let keys = cert_keys();
    let body = complaint_body(&key);
    let verified = verify_notification(&keys, &headers_for(&body, SERIAL, NOW), &body, NOW).expect("verifies");
    let wrong = Apiv3Key::new(b"ZYXWVUTSRQPONMLKJIHGFEDCBA987654").expect("key");
    assert!(matches!(verified.event(&wrong), Err(CallbackError::Decrypt(_))));
    assert!(!verified.opens_with(&wrong) && verified.opens_with(&key));

    // Truncated ciphertext, signed as such.
    let mut value: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let ciphertext = value["resource"]["ciphertext"].as_str().expect("text").to_owned();
    value["resource"]["ciphertext"] = json!(&ciphertext[..ciphertext.len() - 12]);
    let truncated = serde_json::to_vec(&value).expect("json");
    let verified = verify_notification(&keys, &headers_for(&truncated, SERIAL, NOW), &truncated, NOW).expect("signed");
    assert!(matches!(verified.event(&key), Err(CallbackError::Decrypt(_))));

    value["resource"]["ciphertext"] = json!(ciphertext);
    value["resource"]["algorithm"] = json!("AEAD_SM4_GCM");
    let sm4 = serde_json::to_vec(&value).expect("json");
    let verified = verify_notification(&keys, &headers_for(&sm4, SERIAL, NOW), &sm4, NOW).expect("signed");
    assert!(matches!(verified.event(&key), Err(CallbackError::UnsupportedAlgorithm(_))));

    for bad in [b"\xff\xfe\x00 not utf-8".to_vec(), b"{\"id\": 1}".to_vec(), b"[]".to_vec(), Vec::new()] {
        let result = verify_notification(&keys, &headers_for(&bad, SERIAL, NOW), &bad, NOW);
        assert!(matches!(result, Err(CallbackError::Malformed(_))), "{result:?}");
    }
}
