//! Simulated WeChat Pay, endpoint by endpoint, with `crates/wechatpay` as the client — and raw signed requests
//! where the client itself would refuse to send what the simulator must refuse.

use std::sync::Arc;

use serde_json::{Value, json};
use wechatpay::api::complaints::{ComplaintListQuery, RefundProgressRequest, ResponseRequest};
use wechatpay::api::refunds::{RefundAmountRequest, RefundRequest};
use wechatpay::enums::{ComplaintState, RefundStatus};
use wechatpay::sign::{Signer, request_nonce};
use wechatpay::{Error, RsaPrivateKey, VerifyError};
use wxsim::keys::SignMode;

use crate::helpers::*;

/// A request signed with the provider's key, sent as is (no client-side checks).
async fn raw(
    setup: &wxsim::ProviderSetup,
    method: &str,
    target: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let key = Arc::new(RsaPrivateKey::from_pem(&setup.merchant_private_key_pem).expect("key"));
    let signer = Signer::new(&setup.mchid, &setup.merchant_cert_serial, key);
    let auth = signer.authorization(method, target, body, now(), &request_nonce().expect("nonce")).expect("sign");
    let mut request = reqwest::Client::new()
        .request(method.parse().expect("method"), format!("{}{target}", setup.wechatpay_base_url))
        .header("authorization", auth)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body.to_owned()).send().await.expect("send");
    let status = response.status().as_u16();
    let text = response.text().await.expect("text");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

const STD: &[(&str, &str)] = &[("accept", "application/json"), ("user-agent", "test")];

/// A signed GET over a bare socket, with exactly one extra header line.
async fn bare_get(setup: &wxsim::ProviderSetup, target: &str, header: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let key = Arc::new(RsaPrivateKey::from_pem(&setup.merchant_private_key_pem).expect("key"));
    let auth = Signer::new(&setup.mchid, &setup.merchant_cert_serial, key)
        .authorization("GET", target, "", now(), "NONCE")
        .expect("sign");
    let host = setup.wechatpay_base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.expect("connect");
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n{header}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.expect("read");
    reply
}

#[tokio::test]
async fn authorization_and_headers_are_checked() {
    let sim = start(SignMode::Certificate).await;
    let setup = sim.provider();
    let (status, body) = raw(&setup, "GET", "/v3/certificates", "", STD).await;
    assert_eq!(status, 200, "{body}");
    // reqwest always sends an Accept header, so these two go over a bare socket.
    for (missing, header) in [("Accept", "User-Agent: test"), ("User-Agent", "Accept: application/json")] {
        let reply = bare_get(&setup, "/v3/certificates", header).await;
        assert!(reply.starts_with("HTTP/1.1 400") && reply.contains("INVALID_REQUEST"), "no {missing}: {reply}");
    }

    // Signed by another key, or for another mchid, or not signed at all.
    let mut other = setup.clone();
    other.merchant_private_key_pem = testdata("other_key.pem");
    let (status, body) = raw(&other, "GET", "/v3/certificates", "", STD).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("SIGN_ERROR")));
    let mut wrong_mchid = setup.clone();
    wrong_mchid.mchid = "1900000999".into();
    let (status, _) = raw(&wrong_mchid, "GET", "/v3/certificates", "", STD).await;
    assert_eq!(status, 401);
    let response = reqwest::Client::new()
        .get(format!("{}/v3/certificates", setup.wechatpay_base_url))
        .header("accept", "application/json")
        .header("user-agent", "x")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
    // A signature over one URL does not authorise another.
    let key = Arc::new(RsaPrivateKey::from_pem(&setup.merchant_private_key_pem).expect("key"));
    let auth = Signer::new(&setup.mchid, &setup.merchant_cert_serial, key)
        .authorization("GET", "/v3/certificates", "", now(), "NONCE")
        .expect("sign");
    let response = reqwest::Client::new()
        .get(format!("{}/v3/merchant-service/complaint-notifications", setup.wechatpay_base_url))
        .header("accept", "application/json")
        .header("user-agent", "x")
        .header("authorization", auth)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
    sim.stop().await;
}

#[tokio::test]
async fn certificates_public_key_mode_and_rotation() {
    let sim = start(SignMode::Certificate).await;
    let setup = sim.provider();
    let control = Control::new(&sim);
    // A client with nothing downloads the certificate, then verifies with it.
    let fresh = client(&setup, false, false);
    let certs = fresh.refresh_certificates().await.expect("download");
    assert_eq!(certs[0].serial, setup.platform_cert_serial);
    fresh.merchant_limitations(SUB_MCHID).await.expect("verified");

    // Rotation: a new certificate signs; a client holding only the old one refreshes on the unknown serial.
    let rotated = control.post("/certificates/rotate", json!({})).await;
    let new_serial = rotated["serial"].as_str().expect("serial").to_owned();
    assert_ne!(new_serial, setup.platform_cert_serial);
    let old = client(&setup, false, true);
    old.merchant_limitations(SUB_MCHID).await.expect("refreshes and verifies");
    assert!(old.keys().certificates().iter().any(|c| c.serial == new_serial));
    assert!(
        old.keys().certificates().iter().any(|c| c.serial == setup.platform_cert_serial),
        "the old one is still listed"
    );

    // Public-key mode: no certificates to download; the public key verifies.
    control.post("/sign-mode", json!({"mode": "public_key"})).await;
    let error = fresh.download_certificates().await.expect_err("refused");
    assert_eq!(error.code(), Some("RESOURCE_NOT_EXISTS"));
    let public = client(&setup, true, false);
    public.merchant_limitations(SUB_MCHID).await.expect("verified with the public key");
    // A certificate-only client cannot verify public-key answers.
    let cert_only = client(&setup, false, true);
    assert!(matches!(
        cert_only.merchant_limitations(SUB_MCHID).await,
        Err(Error::ResponseSignature(VerifyError::UnknownPublicKey(_)))
    ));

    // The switch: answers follow the Wechatpay-Serial sent.
    control.post("/sign-mode", json!({"mode": "both"})).await;
    public.merchant_limitations(SUB_MCHID).await.expect("public key");
    cert_only.merchant_limitations(SUB_MCHID).await.expect("certificate");
    sim.stop().await;
}

#[tokio::test]
async fn a_complaint_from_creation_to_completion() {
    let sim = start(SignMode::Certificate).await;
    let setup = sim.provider();
    let control = Control::new(&sim);
    let client = client(&setup, false, true);
    let id = control
        .complaint(json!({"sub_mchid": SUB_MCHID, "amount": 1500, "payer_phone": "13800138000", "images": 2}))
        .await;

    let complaint = client.complaint(&id).await.expect("detail");
    assert_eq!(complaint.complaint_state, ComplaintState::Pending);
    assert_eq!(complaint.complainted_mchid, SUB_MCHID);
    assert_eq!(complaint.complaint_order_info[0].amount, 1500);
    assert!(complaint.payer_openid.is_some());
    let phone = complaint.payer_phone.as_deref().expect("encrypted phone");
    assert_eq!(client.decrypt_sensitive(phone).expect("decrypts"), "13800138000");
    let urls = &complaint.complaint_media_list[0].media_url;
    assert_eq!(urls.len(), 2);
    assert!(urls[0].contains("%3D"), "media ids keep WeChat's escapes: {}", urls[0]);
    let image = client.download_image(&urls[0]).await.expect("download signed verbatim");
    assert!(image.bytes.starts_with(b"\x89PNG"));

    let today = time::OffsetDateTime::now_utc().date();
    let query = ComplaintListQuery {
        begin_date: today - time::Duration::days(1),
        end_date: today + time::Duration::days(1),
        limit: 10,
        offset: 0,
        complainted_mchid: Some(SUB_MCHID.into()),
    };
    let page = client.list_complaints(&query).await.expect("list");
    assert_eq!(page.total_count, Some(1));
    assert!(page.data[0].payer_openid.is_none(), "the list omits payer_openid");
    let other = ComplaintListQuery { complainted_mchid: Some("1900000199".into()), ..query.clone() };
    assert!(client.list_complaints(&other).await.expect("list").data.is_empty());

    // Replies name the sub-merchant; the provider's own mchid is refused (wechatpayv3's bug).
    let error = client.respond(&id, &ResponseRequest::text(&setup.mchid, "您好")).await.expect_err("wrong mchid");
    assert_eq!(error.code(), Some("PARAM_ERROR"));
    client.respond(&id, &ResponseRequest::text(SUB_MCHID, "您好，已为您处理")).await.expect("reply");
    assert_eq!(client.complaint(&id).await.expect("detail").complaint_state, ComplaintState::Processing);
    let history = client.full_negotiation_history(&id).await.expect("history");
    let kinds: Vec<&str> = history.iter().map(|e| e.operate_type.as_str()).collect();
    assert_eq!(kinds, ["USER_CREATE_COMPLAINT", "MERCHANT_RESPONSE"]);

    // Refund approval is only for refund-request complaints.
    let error =
        client.update_refund_progress(&id, &RefundProgressRequest::approve(0)).await.expect_err("not a refund request");
    assert_eq!(error.code(), Some("PARAM_ERROR"));

    client.complete_complaint(&id, SUB_MCHID).await.expect("complete");
    assert_eq!(client.complaint(&id).await.expect("detail").complaint_state, ComplaintState::Processed);
    let error = client.complete_complaint(&id, SUB_MCHID).await.expect_err("twice");
    assert_eq!(error.code(), Some("INVALID_REQUEST"));
    let error = client.respond(&id, &ResponseRequest::text(SUB_MCHID, "再次回复")).await.expect_err("processed");
    assert_eq!(error.code(), Some("INVALID_REQUEST"));
    assert_eq!(client.complaint("2002000000000").await.expect_err("unknown").code(), Some("RESOURCE_NOT_EXISTS"));

    // Immediate-service replies: only for complaints that need them, deduplicated by idempotent_id.
    let urgent = control.complaint(json!({"sub_mchid": SUB_MCHID, "need_immediate_service": true})).await;
    let request = wechatpay::api::complaints::ImmediateServiceRequest {
        complainted_mchid: SUB_MCHID.into(),
        message: wechatpay::api::complaints::ImmediateServiceMessage::text("您好"),
        idempotent_id: format!("reply-{urgent}"),
    };
    let first = client.respond_immediate_service(&urgent, &request).await.expect("immediate");
    assert_eq!(client.respond_immediate_service(&urgent, &request).await.expect("again"), first);
    assert_eq!(
        client.respond_immediate_service(&id, &request).await.expect_err("not needed").code(),
        Some("PARAM_ERROR")
    );

    // Uploaded images can go into replies; unknown ones cannot.
    let media_id = client.upload_image("evidence.png", b"\x89PNG upload").await.expect("upload");
    let mut with_image = ResponseRequest::text(SUB_MCHID, "附图说明");
    with_image.response_images = vec![media_id];
    client.respond(&urgent, &with_image).await.expect("reply with image");
    with_image.response_images = vec!["NOT_UPLOADED".into()];
    assert_eq!(client.respond(&urgent, &with_image).await.expect_err("unknown image").code(), Some("PARAM_ERROR"));
    sim.stop().await;
}

#[tokio::test]
async fn limits_are_enforced_by_the_simulator_itself() {
    let sim = start(SignMode::Certificate).await;
    let setup = sim.provider();
    let control = Control::new(&sim);
    let id = control.complaint(json!({"sub_mchid": SUB_MCHID})).await;
    let target = format!("/v3/merchant-service/complaints-v2/{id}/response");
    let long = json!({"complainted_mchid": SUB_MCHID, "response_content": "好".repeat(201)}).to_string();
    assert_eq!(raw(&setup, "POST", &target, &long, STD).await.1["code"], "PARAM_ERROR");
    let images =
        json!({"complainted_mchid": SUB_MCHID, "response_content": "ok", "response_images": ["a", "b", "c", "d", "e"]})
            .to_string();
    assert_eq!(raw(&setup, "POST", &target, &images, STD).await.1["code"], "PARAM_ERROR");
    let emoji = json!({"complainted_mchid": SUB_MCHID, "response_content": "好😀"}).to_string();
    assert_eq!(raw(&setup, "POST", &target, &emoji, STD).await.1["code"], "PARAM_ERROR");
    for query in [
        "limit=51&offset=0&begin_date=2026-11-01&end_date=2026-11-27",
        "limit=10&offset=0&begin_date=2026-10-01&end_date=2026-11-27",
        "limit=10&begin_date=2026-11-01",
    ] {
        let (status, body) = raw(&setup, "GET", &format!("/v3/merchant-service/complaints-v2?{query}"), "", STD).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("PARAM_ERROR")), "{query}");
    }
    // Replies: 60 a minute, then 429 until the next minute.
    let client = client(&setup, false, true);
    let mut limited = None;
    for i in 0..61 {
        if let Err(e) = client.respond(&id, &ResponseRequest::text(SUB_MCHID, format!("回复{i}"))).await {
            limited = Some((i, e));
            break;
        }
    }
    let (at, error) = limited.expect("the 61st reply is refused");
    assert!(at >= 59, "refused too early, at {at}");
    assert_eq!((error.code(), error.api().map(|a| a.status)), (Some("FREQUENCY_LIMITED"), Some(429)));
    assert!(matches!(error.retry(), wechatpay::Retry::Later { .. }));
    control.post("/clock/advance", json!({"seconds": 61})).await;
    client.respond(&id, &ResponseRequest::text(SUB_MCHID, "下一分钟")).await.expect("allowed again");
    sim.stop().await;
}

#[tokio::test]
async fn refunds_are_idempotent_and_complete_after_the_delay() {
    let sim = start(SignMode::Certificate).await;
    let setup = sim.provider();
    let control = Control::new(&sim);
    let (receiver, url) = Receiver::start().await;
    control.post("/refund-url", json!({"url": url})).await;
    let client = client(&setup, false, true);
    let created = control.post("/complaints", json!({"sub_mchid": SUB_MCHID, "amount": 990, "problem_type": "REFUND", "apply_refund_amount": 990, "notify": false})).await;
    let (complaint_id, transaction_id) =
        (created["complaint_id"].as_str().expect("id"), created["transaction_id"].as_str().expect("tx"));
    let request = |out_refund_no: &str, refund: i64, total: i64| RefundRequest {
        sub_mchid: SUB_MCHID.into(),
        transaction_id: Some(transaction_id.into()),
        out_trade_no: None,
        out_refund_no: out_refund_no.into(),
        reason: Some("投诉退款".into()),
        notify_url: None,
        funds_account: None,
        amount: RefundAmountRequest::cny(refund, total),
    };
    client.update_refund_progress(complaint_id, &RefundProgressRequest::approve(0)).await.expect("approve");
    let first = client.create_refund(&request("CR-1", 990, 990)).await.expect("refund");
    assert_eq!(first.status, RefundStatus::Processing);
    let again = client.create_refund(&request("CR-1", 990, 990)).await.expect("same refund");
    assert_eq!(again.refund_id, first.refund_id, "the same out_refund_no is the same refund");
    assert_eq!(
        client.create_refund(&request("CR-1", 500, 990)).await.expect_err("other amount").code(),
        Some("INVALID_REQUEST")
    );
    assert_eq!(
        client.create_refund(&request("CR-2", 1, 990)).await.expect_err("nothing left").code(),
        Some("INVALID_REQUEST")
    );
    assert_eq!(
        client.create_refund(&request("CR-3", 10, 999)).await.expect_err("wrong total").code(),
        Some("PARAM_ERROR")
    );
    let mut unknown = request("CR-4", 1, 990);
    unknown.transaction_id = Some("4200000000000000000000000000".into());
    assert_eq!(client.create_refund(&unknown).await.expect_err("no order").code(), Some("RESOURCE_NOT_EXISTS"));
    let mut no_sub = request("CR-5", 1, 990);
    no_sub.sub_mchid = "1900000199".into();
    assert_eq!(
        client.create_refund(&no_sub).await.expect_err("other sub-merchant").code(),
        Some("RESOURCE_NOT_EXISTS")
    );

    // PROCESSING until the simulated delay passes; then SUCCESS, a callback, and the complaint is processed.
    assert_eq!(client.query_refund("CR-1", SUB_MCHID).await.expect("query").status, RefundStatus::Processing);
    control.post("/clock/advance", json!({"seconds": 61})).await;
    assert_eq!(client.query_refund("CR-1", SUB_MCHID).await.expect("query").status, RefundStatus::Success);
    let callbacks = receiver.wait_for(1).await;
    let keys = platform_keys(&setup);
    let verified = wechatpay::verify_notification(&keys, &callbacks[0].0, &callbacks[0].1, now()).expect("signed");
    match verified.event(client.apiv3_key()).expect("decrypts") {
        wechatpay::Event::Refund(notice) => {
            assert_eq!((notice.out_refund_no.as_str(), notice.amount.refund), ("CR-1", 990));
            assert_eq!(notice.sub_mchid, SUB_MCHID);
        }
        other => panic!("{other:?}"),
    }
    let complaint = client.complaint(complaint_id).await.expect("detail");
    assert_eq!(complaint.complaint_state, ComplaintState::Processed);
    assert!(complaint.complaint_full_refunded);
    assert_eq!(client.query_refund("NOPE", SUB_MCHID).await.expect_err("unknown").code(), Some("RESOURCE_NOT_EXISTS"));

    // A sub-merchant WeChat has barred from refunding is refused.
    control.put("/limitations/1900000188", json!({"limited_functions": ["NO_REFUND"]})).await;
    let order = control.post("/orders", json!({"sub_mchid": "1900000188", "amount": 100})).await;
    let mut barred = request("CR-9", 100, 100);
    barred.sub_mchid = "1900000188".into();
    barred.transaction_id = order["transaction_id"].as_str().map(str::to_owned);
    assert_eq!(client.create_refund(&barred).await.expect_err("barred").code(), Some("NO_AUTH"));
    let limits = client.merchant_limitations("1900000188").await.expect("limitations");
    assert!(limits.is_limited(&wechatpay::enums::LimitedFunction::NoRefund));
    assert!(client.merchant_limitations(SUB_MCHID).await.expect("none").limited_functions.is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn notification_urls_and_faults() {
    let sim = start(SignMode::Certificate).await;
    let setup = sim.provider();
    let control = Control::new(&sim);
    let client = client(&setup, false, true);
    assert_eq!(client.complaint_notification_url().await.expect("none"), None);
    assert_eq!(
        client
            .set_complaint_notification_url("https://risk.example.com/c", true)
            .await
            .expect_err("update before create")
            .code(),
        Some("NOT_FOUND")
    );
    client.set_complaint_notification_url("https://risk.example.com/c", false).await.expect("create");
    assert_eq!(
        client
            .set_complaint_notification_url("https://risk.example.com/c2", false)
            .await
            .expect_err("create twice")
            .code(),
        Some("INVALID_REQUEST")
    );
    client.set_complaint_notification_url("https://risk.example.com/c2", true).await.expect("update");
    assert_eq!(
        client.complaint_notification_url().await.expect("get").map(|u| u.url).as_deref(),
        Some("https://risk.example.com/c2")
    );
    client.delete_complaint_notification_url().await.expect("delete");
    assert_eq!(client.violation_notification_url().await.expect("none"), None);
    client.set_violation_notification_url("https://risk.example.com/v", false).await.expect("create");
    assert_eq!(
        client.violation_notification_url().await.expect("get").map(|u| u.notify_url).as_deref(),
        Some("https://risk.example.com/v")
    );

    // Faults: an error status, a dropped connection, a probe signature, latency.
    control.post("/faults", json!({"path": "/v3/merchant-risk-manage", "count": 1, "action": {"kind": "respond", "status": 500, "code": "SYSTEM_ERROR"}})).await;
    let error = client.violation_notification_url().await.expect_err("injected");
    assert_eq!(error.code(), Some("SYSTEM_ERROR"));
    assert!(matches!(error.retry(), wechatpay::Retry::Later { .. }));
    control.post("/faults", json!({"path": "/v3/merchant-risk-manage", "action": {"kind": "respond", "status": 429, "code": "FREQUENCY_LIMITED", "retry_after": 7}})).await;
    let error = client.violation_notification_url().await.expect_err("limited");
    assert_eq!(error.retry(), wechatpay::Retry::Later { after: Some(std::time::Duration::from_secs(7)) });
    control
        .post("/faults", json!({"method": "GET", "path": "/v3/merchant-risk-manage", "action": {"kind": "drop"}}))
        .await;
    assert!(matches!(client.violation_notification_url().await, Err(Error::Transport { .. })));
    control.post("/faults", json!({"path": "/v3/merchant-risk-manage", "action": {"kind": "probe"}})).await;
    assert!(matches!(client.violation_notification_url().await, Err(Error::ResponseSignature(VerifyError::Probe))));
    control
        .post("/faults", json!({"path": "/v3/merchant-risk-manage", "action": {"kind": "latency", "ms": 300}}))
        .await;
    let started = std::time::Instant::now();
    client.violation_notification_url().await.expect("slow but fine");
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    client.violation_notification_url().await.expect("faults are used up");

    let requests = control.get("/requests").await;
    let codes: Vec<&str> = requests.as_array().expect("list").iter().filter_map(|r| r["code"].as_str()).collect();
    assert!(codes.contains(&"SYSTEM_ERROR") && codes.contains(&"FREQUENCY_LIMITED"), "{codes:?}");
    sim.stop().await;
}
