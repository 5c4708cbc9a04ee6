//! Throughput of the two hot paths: verifying + decrypting one callback, and signing one request.
//!
//! Run with `cargo bench -p wechatpay --bench callbacks`. Each figure is the median of 5 rounds of about one second
//! each, on one thread. A bench binary rather than criterion: two numbers do not need a statistics framework.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;
use wechatpay::callback::{NotificationContent, verify_notification};
use wechatpay::enums::EventType;
use wechatpay::sign::{Signer, sign_as_wechatpay};
use wechatpay::{Apiv3Key, Event, Notification, PlatformCertificate, PlatformKeys, RsaPrivateKey};

fn testdata(name: &str) -> String {
    let path = format!("{}/../../testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Operations per second: median of `rounds` rounds of `round` each.
fn measure(rounds: usize, round: Duration, mut op: impl FnMut()) -> f64 {
    let mut rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let mut count = 0u64;
        while start.elapsed() < round {
            for _ in 0..64 {
                op();
            }
            count += 64;
        }
        rates.push(count as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it, in a debug build whose
    // figures mean nothing and at a cost of ten seconds: say how to run it instead.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("benchmark not run: `cargo bench -p wechatpay --bench callbacks` runs it");
        return;
    }
    let key = Apiv3Key::new(b"0123456789abcdefABCDEF0123456789").expect("key");
    let content = NotificationContent {
        id: "EV-2018022511223320873",
        create_time: "2026-11-27T13:26:46+08:00",
        event_type: EventType::ComplaintCreate,
        summary: "产生新投诉",
        original_type: "complaint",
        plaintext: r#"{"complaint_id":"200201820200101080076610000","action_type":"CREATE_COMPLAINT"}"#,
        associated_data: "",
    };
    let body = serde_json::to_vec(&Notification::encrypt(&key, &content).expect("encrypt")).expect("json");
    let platform = RsaPrivateKey::from_pem(&testdata("other_key.pem")).expect("platform key");
    let serial = "3F5A1B2C3D4E5F60718293A4B5C6D7E8F9012345";
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut headers = HeaderMap::new();
    for (name, value) in sign_as_wechatpay(&platform, serial, now, "fdasfwfe2322ewffsds", &body).expect("sign") {
        headers.insert(name, value.parse().expect("header"));
    }
    let keys =
        PlatformKeys::new(None, vec![PlatformCertificate::from_pem(&testdata("platform_cert.pem")).expect("cert")]);

    let callbacks = measure(5, Duration::from_secs(1), || {
        let verified = verify_notification(&keys, black_box(&headers), black_box(&body), now).expect("verifies");
        let event = verified.event(&key).expect("decrypts");
        assert!(matches!(event, Event::Complaint(_)));
        black_box(event);
    });

    let signer = Signer::new(
        "1900000100",
        "5E7ABC0123456789ABCDEF0123456789ABCDEF01",
        Arc::new(RsaPrivateKey::from_pem(&testdata("merchant_key.pem")).expect("merchant key")),
    );
    let request_body = r#"{"complainted_mchid":"1900000109","response_content":"您好，已为您处理"}"#;
    let signing = measure(5, Duration::from_secs(1), || {
        let header = signer
            .authorization(
                "POST",
                "/v3/merchant-service/complaints-v2/200201820200101080076610000/response",
                request_body,
                now,
                "593BEC0C930BF1AFEB40B4A08C8FB242",
            )
            .expect("sign");
        black_box(header);
    });

    println!("callback verify + decrypt + parse: {callbacks:>9.0} /s  ({:.1} µs each)", 1e6 / callbacks);
    println!("request signature (Authorization): {signing:>9.0} /s  ({:.1} µs each)", 1e6 / signing);
}
