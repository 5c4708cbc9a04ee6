//! The crate checked against implementations we did not write: PyPI `cryptography` and `wechatpayv3` (installed
//! in `.venv` by `scripts/test`). Python makes what WeChat Pay sends — a platform certificate, a `/v3/certificates`
//! answer, callbacks genuine and tampered, an encrypted `payer_phone`, an Authorization header — and our code must
//! accept the genuine ones and refuse the rest; then Python judges what our code makes.

use base64::Engine as _;
use http::HeaderMap;
use serde_json::{Value, json};
use wechatpay::api::certificates::decrypt_certificates;
use wechatpay::callback::{CallbackError, NotificationContent, verify_notification};
use wechatpay::enums::EventType;
use wechatpay::sign::{Authorization, Signer, request_nonce, sign_as_wechatpay};
use wechatpay::verify::SignatureHeaders;
use wechatpay::{Apiv3Key, Certificate, Event, Notification, PlatformKeys, RsaPrivateKey, WechatPayPublicKey};

use crate::testdata;

const APIV3: &str = "0123456789abcdefABCDEF0123456789";
const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0116571234562024052000123400000000";

fn run_python(command: &str, request: &Value) -> Value {
    let script = format!("{}/tests/it/crosscheck.py", env!("CARGO_MANIFEST_DIR"));
    let output = crate::support::run_python(&script, &[command], request.to_string().as_bytes());
    serde_json::from_slice(&output).expect("python answers JSON")
}

fn header_map(headers: &Value) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers.as_object().expect("object") {
        let name: http::HeaderName = name.parse().expect("name");
        map.insert(name, value.as_str().expect("text").parse().expect("value"));
    }
    map
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[test]
fn what_python_makes_we_verify_decrypt_or_refuse() {
    let produced = run_python(
        "produce",
        &json!({"apiv3_key": APIV3, "merchant_key_pem": testdata("merchant_key.pem"), "merchant_cert_pem": testdata("merchant_cert.pem")}),
    );
    let key = Apiv3Key::new(APIV3.as_bytes()).expect("key");

    // The /v3/certificates answer: decrypted, serial checked, and its signature verified by the certificate it brings.
    let answer = &produced["certificates_answer"];
    let body = answer["body"].as_str().expect("body").as_bytes();
    let certificates = decrypt_certificates(body, &key).expect("decrypts");
    assert_eq!(certificates.len(), 1);
    // Python writes the serial as a number (`%X`, no leading zero); ours keeps the certificate's bytes: the same
    // serial either way, as WeChat Pay compares them (a random serial starts with a 0 digit one time in sixteen).
    let python_serial = produced["platform_serial"].as_str().expect("serial");
    assert!(
        wechatpay::keys::same_serial(&certificates[0].serial, python_serial),
        "{} vs {python_serial}",
        certificates[0].serial
    );
    assert_eq!(certificates[0].pem.trim(), produced["platform_cert_pem"].as_str().expect("pem").trim());
    let keys = PlatformKeys::new(None, certificates);
    let headers = SignatureHeaders::from_headers(&header_map(&answer["headers"])).expect("headers");
    keys.verify(&headers, body, now()).expect("certificates answer verifies");
    let wrong = Apiv3Key::new(b"ZYXWVUTSRQPONMLKJIHGFEDCBA987654").expect("key");
    assert!(decrypt_certificates(body, &wrong).is_err());

    let detail = &produced["detail_answer"];
    let headers = SignatureHeaders::from_headers(&header_map(&detail["headers"])).expect("headers");
    keys.verify(&headers, detail["body"].as_str().expect("body").as_bytes(), now()).expect("answer verifies");

    let callbacks = produced["callbacks"].as_array().expect("callbacks");
    assert!(callbacks.len() >= 14);
    for case in callbacks {
        let name = case["name"].as_str().expect("name");
        let body =
            base64::engine::general_purpose::STANDARD.decode(case["body_b64"].as_str().expect("b64")).expect("body");
        let result = verify_notification(&keys, &header_map(&case["headers"]), &body, now());
        match case["expect"].as_str().expect("expect") {
            "ok" => {
                let verified = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                let event = verified.event(&key).unwrap_or_else(|e| panic!("{name}: {e}"));
                let expected = &case["plaintext"];
                match event {
                    Event::Complaint(notice) => assert_eq!(notice.complaint_id, expected["complaint_id"], "{name}"),
                    Event::Violation(notice) => {
                        assert_eq!(notice.record_id, expected["record_id"], "{name}");
                        assert_eq!(notice.company_name, expected["company_name"], "{name}");
                        assert_eq!(notice.risk_type.as_str(), "FRAUD");
                    }
                    Event::Refund(notice) => assert_eq!(notice.amount.refund, 990, "{name}"),
                    Event::Other { .. } => panic!("{name}: untyped"),
                }
            }
            "signature" => assert!(matches!(result, Err(CallbackError::Signature(_))), "{name}: {result:?}"),
            "decrypt" => {
                let verified = result.unwrap_or_else(|e| panic!("{name}: the signature is genuine: {e}"));
                assert!(matches!(verified.event(&key), Err(CallbackError::Decrypt(_))), "{name}");
            }
            "malformed" => assert!(matches!(result, Err(CallbackError::Malformed(_))), "{name}: {result:?}"),
            other => panic!("unknown expectation {other}"),
        }
    }

    // payer_phone, encrypted by Python with the merchant certificate's public key.
    let merchant_key = RsaPrivateKey::from_pem(&testdata("merchant_key.pem")).expect("key");
    let phone = &produced["payer_phone"];
    assert_eq!(
        merchant_key.decrypt_oaep_base64(phone["ciphertext"].as_str().expect("text")).expect("decrypts"),
        phone["plaintext"]
    );

    // An Authorization header made by wechatpayv3 passes our verification.
    let auth = &produced["authorization"];
    let parsed =
        Authorization::parse(auth["header"].as_str().expect("header")).expect("parses wechatpayv3's field order");
    let merchant_public = Certificate::from_pem(&testdata("merchant_cert.pem")).expect("cert").public_key;
    let url = auth["url"].as_str().expect("url");
    parsed.verify("GET", url, "", &merchant_public, now()).expect("verifies");
    assert!(parsed.verify("POST", url, "", &merchant_public, now()).is_err());
}

#[test]
fn what_we_make_python_accepts() {
    let merchant_key = std::sync::Arc::new(RsaPrivateKey::from_pem(&testdata("merchant_key.pem")).expect("key"));
    let signer = Signer::new("1900000100", "5E7ABC0123456789ABCDEF0123456789ABCDEF01", merchant_key);
    let url = "/v3/merchant-service/complaints-v2/200201820200101080076610000/response";
    let body = r#"{"complainted_mchid":"1900000109","response_content":"您好，已为您处理"}"#;
    let header = signer.authorization("POST", url, body, now(), &request_nonce().expect("nonce")).expect("sign");

    // A callback as our simulator sends it, signed with the WeChat Pay public key's private half.
    let key = Apiv3Key::new(APIV3.as_bytes()).expect("key");
    let plaintext = r#"{"complaint_id":"200201820200101080076610000","action_type":"USER_RESPONSE"}"#;
    let notification = Notification::encrypt(
        &key,
        &NotificationContent {
            id: "EV-2018022511223320873",
            create_time: "2026-11-27T13:26:46+08:00",
            event_type: EventType::ComplaintStateChange,
            summary: "投诉单状态变化",
            original_type: "complaint",
            plaintext,
            associated_data: "complaint",
        },
    )
    .expect("encrypt");
    let callback_body = serde_json::to_string(&notification).expect("json");
    let platform = RsaPrivateKey::from_pem(&testdata("other_key.pem")).expect("platform key");
    let headers: serde_json::Map<String, Value> =
        sign_as_wechatpay(&platform, PUBLIC_KEY_ID, now(), "fdasfwfe2322ewffsds", callback_body.as_bytes())
            .expect("sign")
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect();

    // A sensitive field for the platform (here: the public key).
    let public = WechatPayPublicKey::from_pem(PUBLIC_KEY_ID, &testdata("wechatpay_public_key.pem")).expect("pk");
    let sensitive = public.key.encrypt_oaep_base64("张三").expect("encrypt");

    let verdict = run_python(
        "check",
        &json!({
            "authorization": {"method": "POST", "url": url, "body": body, "header": header},
            "merchant_cert_pem": testdata("merchant_cert.pem"),
            "merchant_key_pem": testdata("merchant_key.pem"),
            "apiv3_key": APIV3,
            "public_key_pem": testdata("wechatpay_public_key.pem"),
            "public_key_id": PUBLIC_KEY_ID,
            "platform_key_pem": testdata("other_key.pem"),
            "callback": {"headers": headers, "body": callback_body},
            "sensitive_ciphertext": sensitive,
        }),
    );
    assert_eq!(verdict["authorization_ok"], true, "Python verifies our Authorization header");
    assert_eq!(verdict["tampered_authorization_ok"], false, "and refuses it for another body");
    assert_eq!(verdict["callback_plaintext"], plaintext, "wechatpayv3 verifies and decrypts our callback");
    assert_eq!(verdict["tampered_callback_plaintext"], Value::Null, "and refuses a changed one");
    assert_eq!(verdict["sensitive_plaintext"], "张三");
}
