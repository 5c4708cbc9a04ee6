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

/// Genuine headers with one of them replaced.
fn with_header(headers: &[(&'static str, String)], name: &str, value: &str) -> Vec<(&'static str, String)> {
    headers.iter().map(|(n, v)| (*n, if n.eq_ignore_ascii_case(name) { value.to_owned() } else { v.clone() })).collect()
}

async fn last_rejection(app: &TestApp) -> (String, Option<String>, String, String) {
    let mut conn = app.state.store().conn().await.expect("conn");
    let row = sqlx::query("select reason, serial, detail, path from callback_rejections order by id desc limit 1")
        .fetch_one(&mut *conn)
        .await
        .expect("logged");
    (
        sqlx::Row::get(&row, "reason"),
        sqlx::Row::get(&row, "serial"),
        sqlx::Row::get(&row, "detail"),
        sqlx::Row::get(&row, "path"),
    )
}

#[tokio::test]
async fn each_malformed_header_is_refused_with_its_reason_before_any_lookup_and_stores_nothing_as_work() {
    let w = world().await;
    let app = &w.app;
    let body = genuine_body("EV-SHAPE-0001", "200201820261127000000000001");
    let genuine = signed(&body, now_secs(), &testdata("other_key.pem"), PLATFORM_SERIAL);
    let signature = genuine.iter().find(|(n, _)| *n == "Wechatpay-Signature").expect("signature").1.clone();
    let cases: Vec<(&str, String)> = vec![
        ("Wechatpay-Serial", "A".repeat(41)),
        ("Wechatpay-Serial", "NOT-HEX".into()),
        ("Wechatpay-Serial", "PUB_KEY_ID_12ab".into()),
        ("Wechatpay-Signature", "A".repeat(1025)),
        ("Wechatpay-Signature", format!("{signature}!")),
        ("Wechatpay-Timestamp", "yesterday".into()),
        ("Wechatpay-Timestamp", "-1".into()),
        ("Wechatpay-Timestamp", "99999999999999999999".into()),
        ("Wechatpay-Nonce", "n".repeat(65)),
    ];
    let lookups = app.state.wechat().lookups();
    for (header, value) in &cases {
        let headers = with_header(&genuine, header, value);
        // To a provider, and to an id no provider has: the shape is refused first, either way.
        for path in [format!("/callbacks/{}/complaints", w.provider_id), "/callbacks/999999/complaints".to_owned()] {
            let (status, answer) = post(app, &path, &headers, body.clone()).await;
            assert_eq!((status, answer["code"].as_str()), (400, Some("FAIL")), "{header}={value}: {answer}");
            let message = answer["message"].as_str().expect("message");
            assert!(message.contains(header), "the message names {header}: {message}");
            assert!(message.chars().count() <= 300 && !message.contains(value.as_str()), "{message}");
            let (reason, _, detail, _) = last_rejection(app).await;
            assert_eq!(reason, "MALFORMED_HEADER", "{header}={value}");
            assert!(detail.contains(header), "{detail}");
        }
    }
    assert_eq!(app.state.wechat().lookups(), lookups, "no provider was looked up for a malformed header");
    assert_eq!(work_rows(app).await, (0, 0), "nothing stored as work");
    // The genuine headers still pass.
    assert_eq!(post(app, &format!("/callbacks/{}/complaints", w.provider_id), &genuine, body).await.0, 204);
    w.sim.stop().await;
}

#[tokio::test]
async fn long_values_are_stored_and_echoed_cut_and_the_rejection_log_stays_within_its_byte_bound() {
    let keep = 10;
    let app = spawn_app_env(TestDb::new().await, &[("WXRISK_COMPLAINTS__REJECTION_LOG_SIZE", "10")], |b| b).await;
    let body = genuine_body("EV-LONG-0001", "200201820261127000000000001");
    let genuine = signed(&body, now_secs(), &testdata("other_key.pem"), PLATFORM_SERIAL);
    let long_serial = "ABCDEF0123".repeat(500);
    // A path segment of 3,000 characters, most of them 3 bytes in UTF-8.
    let segment: String = std::iter::repeat_n("投诉", 1500).collect();
    let encoded = url::form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>();
    for i in 0..(keep * 4) {
        app.advance(std::time::Duration::from_secs(1));
        let (path, headers) = if i % 2 == 0 {
            (format!("/callbacks/{encoded}/complaints"), with_header(&genuine, "Wechatpay-Serial", &long_serial))
        } else {
            (
                format!("/callbacks/{i}{}/violations", "9".repeat(4000)),
                with_header(&genuine, "Wechatpay-Nonce", &"n".repeat(4000)),
            )
        };
        let (status, answer) = post(&app, &path, &headers, body.clone()).await;
        assert_eq!(status, 400, "{answer}");
        let message = answer["message"].as_str().expect("message");
        assert!(message.chars().count() <= 300, "echo is bounded: {} characters", message.chars().count());
        if i % 2 == 0 {
            let (reason, serial, _, path) = last_rejection(&app).await;
            assert_eq!(reason, "MALFORMED_HEADER");
            assert_eq!(serial.as_deref(), Some(&long_serial[..64]), "the serial is stored cut to 64 characters");
            assert_eq!(path, format!("/callbacks/{}/complaints", "投诉".repeat(32)), "cut on a character boundary");
        }
    }
    let mut conn = app.state.store().conn().await.expect("conn");
    let rows = sqlx::query("select path, reason, detail, serial, body_sha256 from callback_rejections")
        .fetch_all(&mut *conn)
        .await
        .expect("rows");
    assert!(rows.len() as i64 <= keep, "at most {keep} rows, found {}", rows.len());
    let bytes: usize = rows
        .iter()
        .map(|r| {
            ["path", "reason", "detail", "body_sha256"]
                .iter()
                .map(|c| sqlx::Row::get::<String, _>(r, *c).len())
                .sum::<usize>()
                + sqlx::Row::get::<Option<String>, _>(r, "serial").map_or(0, |s| s.len())
                + 4 * 8
        })
        .sum();
    let bound = usize::try_from(keep).expect("keep") * wxrisk::store::inbound::MAX_REJECTION_ROW_BYTES;
    assert!(bytes <= bound, "{bytes} bytes stored, bound {bound}");
    assert!(bytes < 40 * 4000, "far below what was sent");
}

#[tokio::test]
async fn an_unknown_provider_id_is_looked_up_once_a_minute_and_a_new_provider_is_taken_at_once() {
    let app = spawn_app().await;
    let body = genuine_body("EV-UNKNOWN-0001", "200201820261127000000000001");
    let headers = signed(&body, now_secs(), &testdata("other_key.pem"), PLATFORM_SERIAL);
    let before = app.state.wechat().lookups();
    for _ in 0..30 {
        let (status, answer) = post(&app, "/callbacks/1/complaints", &headers, body.clone()).await;
        assert_eq!(status, 404, "{answer}");
    }
    assert_eq!(app.state.wechat().lookups(), before + 1, "30 requests, one database read");
    // Not a provider id at all: no read.
    for segment in ["abc", "0", "-5", "99999999999999999999999"] {
        let (status, _) = post(&app, &format!("/callbacks/{segment}/complaints"), &headers, body.clone()).await;
        assert_eq!(status, 404, "{segment}");
    }
    assert_eq!(app.state.wechat().lookups(), before + 1);
    // A minute later, one more read.
    app.advance(std::time::Duration::from_secs(61));
    for _ in 0..5 {
        assert_eq!(post(&app, "/callbacks/1/complaints", &headers, body.clone()).await.0, 404);
    }
    assert_eq!(app.state.wechat().lookups(), before + 2);

    // Created now: its callbacks are taken at once, not a minute later.
    let mut provider = provider_body("1900000100");
    provider["platform_cert_serial"] = json!(PLATFORM_SERIAL);
    provider["platform_cert_pem"] = json!(testdata("platform_cert.pem"));
    let (status, created) = app.post("/api/v1/providers", &provider).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id"], 1, "the id the callbacks named");
    let (status, answer) = post(&app, "/callbacks/1/complaints", &headers, body).await;
    assert_eq!(status, 204, "{answer}");
    assert_eq!(work_rows(&app).await, (1, 1));
}

#[tokio::test]
async fn a_flood_of_unknown_serials_starts_one_certificate_download() {
    let w = world().await;
    let app = &w.app;
    let path = format!("/callbacks/{}/complaints", w.provider_id);
    let body = genuine_body("EV-FLOOD-0001", "200201820261127000000000001");
    for _ in 0..25 {
        let headers = signed(&body, now_secs(), &testdata("other_key.pem"), "ABCDEF0123456789");
        let (status, answer) = post(app, &path, &headers, body.clone()).await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(last_rejection(app).await.0, "UNKNOWN_KEY");
    }
    assert_eq!(app.state.intake_guards().certificate_refreshes_started(), 1, "one download, not one per request");
    assert_eq!(work_rows(app).await, (0, 0));
    w.sim.stop().await;
}

#[tokio::test]
async fn a_platform_certificate_outside_its_validity_is_not_used() {
    let w = world().await;
    let app = &w.app;
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let expired = wxsim::keys::Identity::generate_valid("Tenpay.com", "Tenpay.com Root CA", now - day * 400, now - day)
        .expect("expired certificate");
    let future = wxsim::keys::Identity::generate_valid("Tenpay.com", "Tenpay.com Root CA", now + day, now + day * 400)
        .expect("future certificate");
    // Held by the provider (stored when it was valid, say), with the provider's current one.
    {
        let mut conn = app.state.store().conn().await.expect("conn");
        for identity in [&expired, &future] {
            let cert = wechatpay::Certificate::from_pem(&identity.cert_pem).expect("cert");
            sqlx::query(
                "insert into platform_certificates (provider_id, serial, pem, not_before, not_after, source, created_at) \
                 values ($1, $2, $3, $4, $5, 'downloaded', $6)",
            )
            .bind(w.provider_id)
            .bind(&cert.serial)
            .bind(&identity.cert_pem)
            .bind(cert.not_before)
            .bind(cert.not_after)
            .bind(app.now())
            .execute(&mut *conn)
            .await
            .expect("insert");
        }
    }
    app.state.wechat().forget(w.provider_id);
    let path = format!("/callbacks/{}/complaints", w.provider_id);
    let body = genuine_body("EV-EXPIRED-0001", "200201820261127000000000001");
    for (identity, reason) in [(&expired, "CERT_EXPIRED"), (&future, "CERT_NOT_YET_VALID")] {
        let headers = signed(&body, now_secs(), &identity.key_pem, &identity.serial);
        let (status, answer) = post(app, &path, &headers, body.clone()).await;
        assert_eq!(status, 401, "{answer}");
        assert!(answer["message"].as_str().is_some_and(|m| m.contains(&identity.serial)), "{answer}");
        let (logged, serial, _, _) = last_rejection(app).await;
        assert_eq!(logged, reason);
        assert_eq!(serial.as_deref(), Some(identity.serial.as_str()));
    }
    assert_eq!(app.state.intake_guards().certificate_refreshes_started(), 0, "a known serial is not a new one");
    assert_eq!(work_rows(app).await, (0, 0), "nothing stored as work");
    // The valid certificate still verifies.
    let headers = signed(&body, now_secs(), &testdata("other_key.pem"), PLATFORM_SERIAL);
    assert_eq!(post(app, &path, &headers, body).await.0, 204);
    w.sim.stop().await;
}
