//! Arbitrary headers and bodies through callback verification, envelope parsing, resource decryption and event
//! typing, and arbitrary text through the Authorization parser: nothing may panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wechatpay::callback::verify_notification;
use wechatpay::enums::EventType;
use wechatpay::sign::Authorization;
use wechatpay::{Apiv3Key, Event, Notification, PlatformCertificate, PlatformKeys, WechatPayPublicKey};

const CERT: &str = include_str!("../../../../testdata/platform_cert.pem");
const PUBLIC_KEY: &str = include_str!("../../../../testdata/wechatpay_public_key.pem");

fn keys() -> &'static PlatformKeys {
    static KEYS: OnceLock<PlatformKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let public = WechatPayPublicKey::from_pem("PUB_KEY_ID_0116571234562024052000123400000000", PUBLIC_KEY).ok();
        PlatformKeys::new(public, PlatformCertificate::from_pem(CERT).into_iter().collect())
    })
}

fuzz_target!(|data: &[u8]| {
    // Layout: four header values separated by 0x00, then the body.
    let mut parts = data.splitn(5, |b| *b == 0);
    let names = ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"];
    let mut headers = http::HeaderMap::new();
    for name in names {
        if let Some(value) = parts.next()
            && let Ok(value) = http::HeaderValue::from_bytes(value)
        {
            headers.insert(name, value);
        }
    }
    let body = parts.next().unwrap_or_default();
    let _ = verify_notification(keys(), &headers, body, 1_764_217_606);

    let key = Apiv3Key::new(b"0123456789abcdefABCDEF0123456789").expect("32 bytes");
    if let Ok(notification) = Notification::parse(body) {
        let _ = notification.opens_with(&key);
        let _ = notification.created_at();
    }
    if let Ok(text) = std::str::from_utf8(body) {
        for event_type in ["COMPLAINT.CREATE", "VIOLATION.PUNISH", "REFUND.SUCCESS", "OTHER.X"] {
            let _: Result<Event, _> = Event::from_plaintext(&EventType::parse(event_type), text);
        }
        let _ = Authorization::parse(text);
        let _ = wechatpay::callback::parse_wechat_time(text);
    }
});
