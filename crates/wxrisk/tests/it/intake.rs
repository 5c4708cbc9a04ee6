//! The callback door: forged, probe, stale, undecryptable, malformed, oversized and misdirected callbacks are
//! refused with nothing stored as work; genuine ones are recorded once, on the new paths and the legacy one.

use serde_json::{Value, json};
use wechatpay::RsaPrivateKey;

use crate::complaints::{SP_MCHID, SUB_MCHID, world, world_with};
use crate::helpers::*;

/// name, headers, body, expected status, expected rejection reason.
type Case = (&'static str, Vec<(&'static str, String)>, String, u16, &'static str);

/// A callback as WeChat Pay would send it, signed with the platform key the provider trusts.
fn signed(body: &str, timestamp: i64, key_pem: &str, serial: &str) -> Vec<(&'static str, String)> {
    let key = RsaPrivateKey::from_pem(key_pem).expect("key");
    wechatpay::sign::sign_as_wechatpay(&key, serial, timestamp, "nonce0123456789", body.as_bytes()).expect("sign")
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A notification body as WeChat Pay sends it: `resource` encrypted under `apiv3_key`.
fn encrypted_body(apiv3_key: &[u8], id: &str, event_type: &str, resource: &Value) -> String {
    let key = wechatpay::Apiv3Key::new(apiv3_key).expect("key");
    let event_type = wechatpay::enums::EventType::parse(event_type);
    let original_type = event_type.as_str().split('.').next().unwrap_or_default().to_ascii_lowercase();
    let content = wechatpay::callback::NotificationContent {
        id,
        create_time: "2026-11-27T13:26:46+08:00",
        event_type,
        summary: "通知",
        original_type: &original_type,
        plaintext: &resource.to_string(),
        associated_data: &original_type,
    };
    serde_json::to_string(&wechatpay::Notification::encrypt(&key, &content).expect("encrypt")).expect("json")
}

/// A genuine complaint notification body, encrypted with the provider's APIv3 key.
fn genuine_body(id: &str, complaint_id: &str) -> String {
    let resource = json!({"complaint_id": complaint_id, "action_type": "CREATE_COMPLAINT"});
    encrypted_body(APIV3_KEY.as_bytes(), id, "COMPLAINT.CREATE", &resource)
}

async fn post(app: &TestApp, path: &str, headers: &[(&str, String)], body: impl Into<reqwest::Body>) -> (u16, Value) {
    let mut request = app.client.post(app.url(path)).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    decode(request.body(body).send().await.expect("POST")).await
}

async fn work_rows(app: &TestApp) -> (i64, i64) {
    (app.count("inbound_notifications").await, app.count("jobs").await)
}

#[tokio::test]
async fn forged_probe_stale_undecryptable_and_malformed_callbacks_are_refused_and_stored_nowhere_as_work() {
    let w = world().await;
    let app = &w.app;
    let path = format!("/callbacks/{}/complaints", w.provider_id);
    let platform_key = testdata("other_key.pem");
    let body = genuine_body("EV-GENUINE-0001", "200201820261127000000000001");

    let mut cases: Vec<Case> = Vec::new();
    // Signed by a key that is not WeChat Pay's (the merchant's own, say).
    cases.push((
        "forged",
        signed(&body, now_secs(), &testdata("merchant_key.pem"), PLATFORM_SERIAL),
        body.clone(),
        401,
        "SIGNATURE",
    ));
    // The body changed after signing.
    let tampered = body.replace("EV-GENUINE-0001", "EV-GENUINE-0002");
    cases.push(("tampered", signed(&body, now_secs(), &platform_key, PLATFORM_SERIAL), tampered, 401, "SIGNATURE"));
    // WeChat's signature probe.
    let mut probe = signed(&body, now_secs(), &platform_key, PLATFORM_SERIAL);
    for header in &mut probe {
        if header.0 == "Wechatpay-Signature" {
            header.1 = format!("WECHATPAY/SIGNTEST/{}", header.1);
        }
    }
    cases.push(("probe", probe, body.clone(), 401, "PROBE"));
    // Genuinely signed, but ten minutes old: a replay.
    cases.push(("stale", signed(&body, now_secs() - 600, &platform_key, PLATFORM_SERIAL), body.clone(), 401, "STALE"));
    // A serial nobody configured.
    cases.push((
        "unknown serial",
        signed(&body, now_secs(), &platform_key, "ABCDEF"),
        body.clone(),
        401,
        "UNKNOWN_KEY",
    ));
    // Genuinely signed, encrypted with another APIv3 key.
    let created = json!({"complaint_id": "1", "action_type": "CREATE_COMPLAINT"});
    let undecryptable =
        encrypted_body(b"ffffffffffffffffffffffffffffffff", "EV-OTHERKEY", "COMPLAINT.CREATE", &created);
    cases.push((
        "undecryptable",
        signed(&undecryptable, now_secs(), &platform_key, PLATFORM_SERIAL),
        undecryptable,
        400,
        "DECRYPT",
    ));
    // Genuinely signed nonsense.
    let nonsense = "{\"hello\": \"world\"}".to_owned();
    cases.push((
        "malformed",
        signed(&nonsense, now_secs(), &platform_key, PLATFORM_SERIAL),
        nonsense,
        400,
        "MALFORMED",
    ));
    // No signature headers at all.
    cases.push(("unsigned", Vec::new(), body.clone(), 401, "SIGNATURE"));

    for (name, headers, body, status, reason) in cases {
        let (got, answer) = post(app, &path, &headers, body).await;
        assert_eq!((got, answer["code"].as_str()), (status, Some("FAIL")), "{name}: {answer}");
        assert!(answer["message"].is_string(), "{name}");
        let mut conn = app.state.store().conn().await.expect("conn");
        let row = sqlx::query("select reason from callback_rejections order by id desc limit 1")
            .fetch_one(&mut *conn)
            .await
            .expect("logged");
        assert_eq!(sqlx::Row::get::<String, _>(&row, "reason"), reason, "{name}");
    }
    // A refund notification on the complaint path, genuinely signed: the wrong door.
    let refund = json!({"sub_mchid": SUB_MCHID, "out_refund_no": "R1", "refund_status": "SUCCESS",
                        "amount": {"total": 1, "refund": 1}});
    let wrong = encrypted_body(APIV3_KEY.as_bytes(), "EV-REFUND", "REFUND.SUCCESS", &refund);
    let (got, _) = post(app, &path, &signed(&wrong, now_secs(), &platform_key, PLATFORM_SERIAL), wrong).await;
    assert_eq!(got, 400);
    // Too big to be a callback.
    let (got, answer) = post(app, &path, &[], "x".repeat(70_000)).await;
    assert_eq!((got, answer["code"].as_str()), (413, Some("FAIL")));
    // A provider that does not exist.
    let (got, _) = post(
        app,
        "/callbacks/999999/complaints",
        &signed(&body, now_secs(), &platform_key, PLATFORM_SERIAL),
        body.clone(),
    )
    .await;
    assert_eq!(got, 404);

    assert_eq!(work_rows(app).await, (0, 0), "nothing stored as work");
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("GET").text().await.expect("text");
    assert!(metrics.contains("wxrisk_callback_rejections_total{reason=\"PROBE\"} 1"), "{metrics}");
    let (status, log) = app.get("/api/v1/callback-rejections").await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["items"].as_array().map(Vec::len), Some(11), "every refusal above");
    assert!(log["items"][0]["body_sha256"].as_str().is_some_and(|h| h.len() == 64));

    // The genuine one, twice: recorded once, 204 both times.
    let headers = signed(&body, now_secs(), &platform_key, PLATFORM_SERIAL);
    assert_eq!(post(app, &path, &headers, body.clone()).await.0, 204);
    assert_eq!(post(app, &path, &headers, body.clone()).await.0, 204, "a redelivery is acknowledged");
    assert_eq!(work_rows(app).await, (1, 1));
    w.sim.stop().await;
}

#[tokio::test]
async fn the_legacy_path_finds_its_provider_by_the_key_that_decrypts() {
    let w = world_with(&[("WXRISK_COMPLAINTS__LEGACY_PREFIX", "/prod-wxservicerisk-api")]).await;
    let app = &w.app;
    // A second provider with another APIv3 key and the same platform certificate.
    let mut other = provider_body("1900000200");
    other["apiv3_key"] = json!("ffffffffffffffffffffffffffffffff");
    other["platform_cert_serial"] = json!(PLATFORM_SERIAL);
    other["platform_cert_pem"] = json!(testdata("platform_cert.pem"));
    let (status, created) = app.post("/api/v1/providers", &other).await;
    assert_eq!(status, 201, "{created}");
    let platform_key = testdata("other_key.pem");
    for (n, path) in [
        "/complaint/complaintbaseinfo/notify/complaintNotifyCallBack",
        "/prod-wxservicerisk-api/complaint/complaintbaseinfo/notify/complaintNotifyCallBack",
    ]
    .into_iter()
    .enumerate()
    {
        let body = genuine_body(&format!("EV-LEGACY-{n}"), "200201820261127000000000009");
        let (status, answer) = post(app, path, &signed(&body, now_secs(), &platform_key, PLATFORM_SERIAL), body).await;
        assert_eq!(status, 204, "{path}: {answer}");
    }
    let mut conn = app.state.store().conn().await.expect("conn");
    let rows = sqlx::query("select provider_id from inbound_notifications").fetch_all(&mut *conn).await.expect("rows");
    let providers: Vec<i64> = rows.iter().map(|r| sqlx::Row::get(r, "provider_id")).collect();
    assert_eq!(providers, [w.provider_id, w.provider_id], "the provider whose APIv3 key opens it");
    drop(conn);
    // Signed by WeChat, but no provider's APIv3 key opens it.
    let created = json!({"complaint_id": "1", "action_type": "CREATE_COMPLAINT"});
    let body = encrypted_body(b"00000000000000000000000000000000", "EV-NOBODY", "COMPLAINT.CREATE", &created);
    let (status, _) = post(
        app,
        "/complaint/complaintbaseinfo/notify/complaintNotifyCallBack",
        &signed(&body, now_secs(), &platform_key, PLATFORM_SERIAL),
        body,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(app.count("inbound_notifications").await, 2);
    let _ = SP_MCHID;
    w.sim.stop().await;
}
