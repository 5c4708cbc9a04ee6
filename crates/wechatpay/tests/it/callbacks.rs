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
/// 2026-11-27T17:20:00Z: inside the validity of `testdata/platform_cert.pem` (2026-11-27T05:31Z to 2036-11-24T05:31Z).
const NOW: i64 = 1_795_800_000;
/// The test platform certificate's validity, Unix seconds.
const CERT_NOT_BEFORE: i64 = 1_795_757_460;
const CERT_NOT_AFTER: i64 = 2_111_117_460;

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
    garbage.insert("Wechatpay-Signature", "abc".parse().expect("h"));
    assert_eq!(expect_signature_error(&keys, &garbage, &body, NOW), VerifyError::BadSignatureEncoding);

    assert!(matches!(expect_signature_error(&keys, &headers, &body, NOW + 301), VerifyError::Stale { .. }));
    assert!(matches!(expect_signature_error(&keys, &headers, &body, NOW - 301), VerifyError::Stale { .. }));
    verify_notification(&keys, &headers, &body, NOW + 300).expect("exactly 5 minutes is still fine");

    let mut bad_time = headers.clone();
    bad_time.insert("Wechatpay-Timestamp", "9999999999999999999".parse().expect("h"));
    assert_eq!(expect_signature_error(&keys, &bad_time, &body, NOW), VerifyError::BadTimestamp, "over i64::MAX");

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

#[test]
fn malformed_headers_are_refused_before_any_key_is_looked_up() {
    let key = Apiv3Key::new(APIV3).expect("key");
    let body = complaint_body(&key);
    let headers = headers_for(&body, SERIAL, NOW);
    // No keys at all: a well-formed header would be an unknown serial; a malformed one never gets that far.
    let nobody = PlatformKeys::default();
    assert!(matches!(expect_signature_error(&nobody, &headers, &body, NOW), VerifyError::UnknownSerial(_)));
    let signature = headers["Wechatpay-Signature"].to_str().expect("ascii").to_owned();
    let cases: Vec<(&str, String)> = vec![
        ("Wechatpay-Serial", "A".repeat(41)),
        ("Wechatpay-Serial", "XYZ".into()),
        ("Wechatpay-Serial", "PUB_KEY_ID_12ab".into()),
        ("Wechatpay-Serial", format!("PUB_KEY_ID_{}", "1".repeat(41))),
        ("Wechatpay-Signature", "A".repeat(1025)),
        ("Wechatpay-Signature", "!!! not base64 !!!".into()),
        ("Wechatpay-Signature", format!("{signature}%")),
        ("Wechatpay-Timestamp", "yesterday".into()),
        ("Wechatpay-Timestamp", "-5".into()),
        ("Wechatpay-Timestamp", "99999999999999999999".into()),
        ("Wechatpay-Timestamp", "1795800000.5".into()),
        ("Wechatpay-Nonce", "n".repeat(65)),
        ("Wechatpay-Nonce", "two words".into()),
        ("Wechatpay-Signature-Type", "W".repeat(65)),
    ];
    for (name, value) in cases {
        let mut bad = headers.clone();
        bad.insert(name, value.parse().expect("header"));
        for keys in [&nobody, &cert_keys()] {
            match expect_signature_error(keys, &bad, &body, NOW) {
                VerifyError::MalformedHeader { header, .. } => assert_eq!(header, name, "{value}"),
                other => panic!("{name} = {value}: {other:?}"),
            }
        }
        // What an error says quotes little of what was sent.
        let message = expect_signature_error(&nobody, &bad, &body, NOW).to_string();
        assert!(message.len() < 200 && !message.contains(&value), "{message}");
    }
    // At the limits, still well-formed.
    let mut edge = headers.clone();
    edge.insert("Wechatpay-Nonce", "n".repeat(64).parse().expect("h"));
    assert_eq!(expect_signature_error(&cert_keys(), &edge, &body, NOW), VerifyError::Mismatch);
    edge.insert("Wechatpay-Serial", format!("PUB_KEY_ID_{}", "1".repeat(40)).parse().expect("h"));
    assert!(matches!(expect_signature_error(&cert_keys(), &edge, &body, NOW), VerifyError::UnknownPublicKey(_)));
}

#[test]
fn timestamps_at_the_ends_of_the_range_are_refused_without_overflow() {
    let key = Apiv3Key::new(APIV3).expect("key");
    let body = complaint_body(&key);
    let keys = cert_keys();
    let headers = headers_for(&body, SERIAL, NOW);
    let mut max = headers.clone();
    max.insert("Wechatpay-Timestamp", i64::MAX.to_string().parse().expect("h"));
    let mut huge = headers.clone();
    huge.insert("Wechatpay-Timestamp", "99999999999999999999".parse().expect("h"));
    for now in [NOW, 0, -1, i64::MIN, i64::MAX] {
        let stale = expect_signature_error(&keys, &max, &body, now);
        if now == i64::MAX {
            assert!(
                matches!(stale, VerifyError::CertificateExpired { .. }),
                "in the window, but long after the certificate: {stale:?}"
            );
        } else {
            assert!(matches!(stale, VerifyError::Stale { .. }), "{now}: {stale:?}");
        }
        assert!(
            matches!(
                expect_signature_error(&keys, &huge, &body, now),
                VerifyError::MalformedHeader { header: "Wechatpay-Timestamp", .. }
            ),
            "{now}"
        );
    }
    // The genuine headers against clocks at the ends of the range.
    for now in [i64::MIN, i64::MAX] {
        assert!(matches!(expect_signature_error(&keys, &headers, &body, now), VerifyError::Stale { .. }));
    }
}

#[test]
fn a_platform_certificate_outside_its_validity_verifies_nothing_and_encrypts_nothing() {
    let key = Apiv3Key::new(APIV3).expect("key");
    let body = complaint_body(&key);
    let keys = cert_keys();
    // Signed in the last second of the certificate's validity: fine; one second later: expired.
    let at_end = headers_for(&body, SERIAL, CERT_NOT_AFTER);
    verify_notification(&keys, &at_end, &body, CERT_NOT_AFTER).expect("the last valid second");
    let after = headers_for(&body, SERIAL, CERT_NOT_AFTER + 1);
    assert_eq!(
        expect_signature_error(&keys, &after, &body, CERT_NOT_AFTER + 1),
        VerifyError::CertificateExpired { serial: SERIAL.into(), not_after: CERT_NOT_AFTER }
    );
    let before = headers_for(&body, SERIAL, CERT_NOT_BEFORE - 1);
    assert_eq!(
        expect_signature_error(&keys, &before, &body, CERT_NOT_BEFORE - 1),
        VerifyError::CertificateNotYetValid { serial: SERIAL.into(), not_before: CERT_NOT_BEFORE }
    );
    let refused = expect_signature_error(&keys, &after, &body, CERT_NOT_AFTER + 1).to_string();
    assert!(refused.contains("expired") && refused.contains(SERIAL), "{refused}");
    assert!(!VerifyError::CertificateExpired { serial: SERIAL.into(), not_after: 0 }.wants_certificate_refresh());

    // Nor is it used to encrypt; the public key still is.
    assert_eq!(keys.encryption_key(NOW).map(|(serial, _)| serial).as_deref(), Some(SERIAL));
    assert!(keys.encryption_key(CERT_NOT_AFTER + 1).is_none());
    assert!(keys.encryption_key(CERT_NOT_BEFORE - 1).is_none());
    assert!(public_keys().encryption_key(CERT_NOT_AFTER + 1).is_some());

    // Dropped once expired.
    assert!(keys.remove_expired(CERT_NOT_AFTER).is_empty());
    assert_eq!(keys.remove_expired(CERT_NOT_AFTER + 1), vec![SERIAL.to_owned()]);
    assert!(!keys.has_certificates());
}
