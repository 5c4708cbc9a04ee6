//! The client against a small WeChat Pay stand-in over real HTTP: the stand-in checks every Authorization header
//! with the merchant certificate and signs its answers with a platform key, as WeChat Pay does. (The full
//! simulator is `crates/wxsim`; this one only answers what each test scripts.)

use crate::testdata;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use wechatpay::api::complaints::{ComplaintListQuery, RefundProgressRequest, ResponseRequest};
use wechatpay::api::refunds::{RefundAmountRequest, RefundRequest};
use wechatpay::client::UnixClock;
use wechatpay::enums::{LimitedFunction, RefundStatus};
use wechatpay::sign::Authorization;
use wechatpay::{
    Apiv3Key, Client, ClientConfig, Credentials, Error, PlatformCertificate, Retry, RsaPrivateKey, RsaPublicKey,
    VerifyError, WechatPayPublicKey,
};

const MCHID: &str = "1900000100";
const MERCHANT_SERIAL: &str = "5E7ABC0123456789ABCDEF0123456789ABCDEF01";
const PLATFORM_SERIAL: &str = "3F5A1B2C3D4E5F60718293A4B5C6D7E8F9012345";
const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0116571234562024052000123400000000";
const APIV3_KEY: &[u8; 32] = b"0123456789abcdefABCDEF0123456789";

/// How the stand-in signs its answers.
#[derive(Debug, Clone, PartialEq)]
enum Signing {
    Certificate,
    PublicKey,
    Probe,
    /// Sign, then change the body.
    Tampered,
    None,
}

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    target: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A scripted answer: status, body, extra headers.
type Answer = (u16, Value, Vec<(&'static str, String)>);

struct Fake {
    merchant_key: RsaPublicKey,
    platform: RsaPrivateKey,
    signing: Mutex<Signing>,
    /// Scripted answers, first in first out: status, body, extra headers.
    answers: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<Recorded>>,
    delay: Mutex<Duration>,
    /// More certificates `/v3/certificates` lists after the platform certificate: (serial, PEM).
    extra_certificates: Mutex<Vec<(String, String)>>,
}

async fn handle(State(fake): State<Arc<Fake>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let target = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    fake.requests.lock().expect("lock").push(Recorded {
        method: method.clone(),
        target: target.clone(),
        headers: headers.clone(),
        body: body.to_vec(),
    });
    let delay = *fake.delay.lock().expect("lock");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if headers.get("accept").is_none() || headers.get("user-agent").is_none() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"code": "INVALID_REQUEST", "message": "Http头缺少Accept或User-Agent"})),
        )
            .into_response();
    }
    // Check the request's signature as WeChat does; for uploads the signed body is the `meta` part.
    let signed_body = if target.starts_with("/v3/merchant-service/images/upload") {
        let text = String::from_utf8_lossy(&body).into_owned();
        text.split("\r\n\r\n").nth(1).and_then(|rest| rest.split("\r\n").next()).unwrap_or_default().to_owned()
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|h| Authorization::parse(h).ok())
        .filter(|a| a.mchid == MCHID && a.serial_no == MERCHANT_SERIAL)
        .map(|a| a.verify(method.as_str(), &target, &signed_body, &fake.merchant_key, now()).is_ok())
        .unwrap_or(false);
    if !authorized {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"code": "SIGN_ERROR", "message": "签名错误"})))
            .into_response();
    }
    let (status, value, extra) = if target == "/v3/certificates" {
        (200, certificates_body(&fake.extra_certificates.lock().expect("lock")), Vec::new())
    } else {
        fake.answers.lock().expect("lock").pop_front().unwrap_or((204, Value::Null, Vec::new()))
    };
    let body = if value.is_null() { String::new() } else { value.to_string() };
    let mut response = (StatusCode::from_u16(status).expect("status"), body.clone()).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert("content-type", "application/json".parse().expect("header"));
    response_headers.insert("Request-ID", "08F78BB5AF0610D302A4B75A".parse().expect("header"));
    for (name, value) in extra {
        response_headers.insert(name, value.parse().expect("header"));
    }
    let signing = fake.signing.lock().expect("lock").clone();
    if (200..300).contains(&status) && signing != Signing::None {
        let timestamp = now().to_string();
        let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
        let message = format!("{timestamp}\n{nonce}\n{body}\n");
        let mut signature = base64::engine::general_purpose::STANDARD
            .encode(fake.platform.sign_sha256(message.as_bytes()).expect("sign"));
        let serial = if signing == Signing::PublicKey { PUBLIC_KEY_ID } else { PLATFORM_SERIAL };
        if signing == Signing::Probe {
            signature = format!("WECHATPAY/SIGNTEST/{signature}");
        }
        for (name, value) in [
            ("Wechatpay-Timestamp", timestamp),
            ("Wechatpay-Nonce", nonce.to_owned()),
            ("Wechatpay-Signature", signature),
            ("Wechatpay-Serial", serial.to_owned()),
            ("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048".to_owned()),
        ] {
            response.headers_mut().insert(name, value.parse().expect("header"));
        }
        if signing == Signing::Tampered {
            *response.body_mut() = axum::body::Body::from(body.replacen("1900000109", "1900000108", 1));
        }
    }
    response
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// What `/v3/certificates` answers: the platform certificate (and any `extra`), encrypted under the APIv3 key.
fn certificates_body(extra: &[(String, String)]) -> Value {
    let key = Apiv3Key::new(APIV3_KEY).expect("key");
    let nonce = "27cf2d9b1c5e";
    let entry = |serial: &str, pem: &str| {
        let ciphertext = key.encrypt(pem, nonce, Some("certificate")).expect("encrypt");
        json!({"serial_no": serial, "effective_time": "2026-11-27T13:31:00+08:00", "expire_time": "2036-11-24T13:31:00+08:00",
            "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce, "associated_data": "certificate", "ciphertext": ciphertext}})
    };
    let mut data = vec![entry(PLATFORM_SERIAL, &testdata("platform_cert.pem"))];
    data.extend(extra.iter().map(|(serial, pem)| entry(serial, pem)));
    json!({ "data": data })
}

/// A self-signed RSA certificate valid from `not_before` to `not_after` (Unix seconds): (serial, PEM).
fn certificate_valid(serial: [u8; 20], not_before: i64, not_after: i64) -> (String, String) {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).expect("time");
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).expect("time");
    let cert = params.self_signed(&key).expect("certificate");
    (hex::encode_upper(serial), cert.pem())
}

struct Setup {
    fake: Arc<Fake>,
    base: String,
}

impl Setup {
    async fn start() -> Self {
        let fake = Arc::new(Fake {
            merchant_key: wechatpay::Certificate::from_pem(&testdata("merchant_cert.pem"))
                .expect("merchant cert")
                .public_key,
            platform: RsaPrivateKey::from_pem(&testdata("other_key.pem")).expect("platform key"),
            signing: Mutex::new(Signing::Certificate),
            answers: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            delay: Mutex::new(Duration::ZERO),
            extra_certificates: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new().fallback(handle).with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { fake, base }
    }

    fn client_with(&self, public_key: bool, certificates: bool, clock: Option<UnixClock>) -> Client {
        let mut config = ClientConfig {
            base_url: url::Url::parse(&self.base).expect("url"),
            timeout: Duration::from_secs(5),
            ..ClientConfig::default()
        };
        if let Some(clock) = clock {
            config.clock = clock;
        }
        let credentials = Credentials {
            mchid: MCHID.into(),
            merchant_cert_serial: MERCHANT_SERIAL.into(),
            private_key: Arc::new(RsaPrivateKey::from_pem(&testdata("merchant_key.pem")).expect("key")),
            apiv3_key: Apiv3Key::new(APIV3_KEY).expect("apiv3"),
        };
        let public = public_key.then(|| {
            WechatPayPublicKey::from_pem(PUBLIC_KEY_ID, &testdata("wechatpay_public_key.pem")).expect("public key")
        });
        let certs = if certificates {
            vec![PlatformCertificate::from_pem(&testdata("platform_cert.pem")).expect("cert")]
        } else {
            Vec::new()
        };
        Client::new(config, credentials, public, certs).expect("client")
    }

    fn client(&self) -> Client {
        self.client_with(false, true, None)
    }

    fn answer(&self, status: u16, body: Value) {
        self.fake.answers.lock().expect("lock").push_back((status, body, Vec::new()));
    }

    fn answer_with(&self, status: u16, body: Value, headers: Vec<(&'static str, String)>) {
        self.fake.answers.lock().expect("lock").push_back((status, body, headers));
    }

    fn requests(&self) -> Vec<Recorded> {
        self.fake.requests.lock().expect("lock").clone()
    }

    fn last(&self) -> Recorded {
        self.requests().last().cloned().expect("a request")
    }

    fn signing(&self, signing: Signing) {
        *self.fake.signing.lock().expect("lock") = signing;
    }
}

fn complaint_json(id: &str) -> Value {
    json!({"complaint_id": id, "complaint_time": "2026-11-20T10:00:00+08:00", "complaint_detail": "重复扣费", "complaint_state": "PENDING",
           "complainted_mchid": "1900000109", "complaint_order_info": [{"transaction_id": "4200000001", "out_trade_no": "T1", "amount": 990}],
           "complaint_media_list": [], "complaint_full_refunded": false, "incoming_user_response": false})
}

#[tokio::test]
async fn complaint_calls_are_signed_and_answers_verified() {
    let setup = Setup::start().await;
    let client = setup.client();

    setup.answer(200, complaint_json("200201820200101080076610000"));
    let complaint = client.complaint("200201820200101080076610000").await.expect("detail");
    assert_eq!(complaint.complainted_mchid, "1900000109");
    let request = setup.last();
    assert_eq!(request.target, "/v3/merchant-service/complaints-v2/200201820200101080076610000");
    assert_eq!(request.headers["accept"], "application/json");
    assert!(request.headers.get("wechatpay-serial").is_none(), "no public key, nothing encrypted: no Wechatpay-Serial");

    setup.answer(200, json!({"data": [complaint_json("1")], "limit": 10, "offset": 0, "total_count": 1}));
    let query = ComplaintListQuery {
        begin_date: time::macros::date!(2026 - 11 - 01),
        end_date: time::macros::date!(2026 - 11 - 27),
        limit: 10,
        offset: 0,
        complainted_mchid: Some("1900000109".into()),
    };
    let page = client.list_complaints(&query).await.expect("list");
    assert_eq!(page.total_count, Some(1));
    assert_eq!(
        setup.last().target,
        "/v3/merchant-service/complaints-v2?limit=10&offset=0&begin_date=2026-11-01&end_date=2026-11-27&complainted_mchid=1900000109"
    );

    client
        .respond("200201820200101080076610000", &ResponseRequest::text("1900000109", "您好😀，已为您处理"))
        .await
        .expect("reply");
    let request = setup.last();
    assert_eq!(request.method, Method::POST);
    let body: Value = serde_json::from_slice(&request.body).expect("json");
    assert_eq!(
        body,
        json!({"complainted_mchid": "1900000109", "response_content": "您好，已为您处理"}),
        "4-byte characters dropped"
    );

    client.complete_complaint("200201820200101080076610000", "1900000109").await.expect("complete");
    assert_eq!(
        serde_json::from_slice::<Value>(&setup.last().body).expect("json"),
        json!({"complainted_mchid": "1900000109"})
    );

    client
        .update_refund_progress("200201820200101080076610000", &RefundProgressRequest::approve(0))
        .await
        .expect("approve");
    assert_eq!(
        serde_json::from_slice::<Value>(&setup.last().body).expect("json"),
        json!({"action": "APPROVE", "launch_refund_day": 0})
    );

    setup.answer(200, json!({"log_id": "300285320210322170000071077"}));
    let request = wechatpay::api::complaints::ImmediateServiceRequest {
        complainted_mchid: "1900000109".into(),
        message: wechatpay::api::complaints::ImmediateServiceMessage::text("您好"),
        idempotent_id: "reply-200201820200101080076610000-1".into(),
    };
    assert_eq!(
        client.respond_immediate_service("200201820200101080076610000", &request).await.expect("immediate"),
        "300285320210322170000071077"
    );

    setup.answer(200, json!({"data": [{"log_id": "1", "operator": "投诉人", "operate_time": "2026-11-20T10:00:00+08:00", "operate_type": "USER_CREATE_COMPLAINT", "operate_details": "x", "image_list": []}], "limit": 100, "offset": 0, "total_count": 1}));
    let history = client.full_negotiation_history("200201820200101080076610000").await.expect("history");
    assert_eq!(history.len(), 1);
    assert!(setup.last().target.ends_with("/negotiation-historys?limit=100&offset=0"));
}

#[tokio::test]
async fn requests_wechat_would_refuse_are_refused_before_sending() {
    let setup = Setup::start().await;
    let client = setup.client();
    let too_long = ResponseRequest::text("1900000109", "好".repeat(201));
    let empty = ResponseRequest::text("1900000109", "😀😀");
    let mut five_images = ResponseRequest::text("1900000109", "ok");
    five_images.response_images = vec!["m".into(); 5];
    for request in [too_long, empty, five_images] {
        assert!(matches!(client.respond("1", &request).await, Err(Error::Invalid(_))));
    }
    let refund = |out_refund_no: &str, refund: i64, total: i64| RefundRequest {
        sub_mchid: "1900000109".into(),
        transaction_id: Some("4200000001".into()),
        out_trade_no: None,
        out_refund_no: out_refund_no.into(),
        reason: None,
        notify_url: None,
        funds_account: None,
        amount: RefundAmountRequest::cny(refund, total),
    };
    for bad in [refund("has space", 1, 2), refund(&"x".repeat(65), 1, 2), refund("R1", 3, 2), refund("R1", 0, 2)] {
        assert!(matches!(client.create_refund(&bad).await, Err(Error::Invalid(_))), "{bad:?}");
    }
    let wide = ComplaintListQuery {
        begin_date: time::macros::date!(2026 - 01 - 01),
        end_date: time::macros::date!(2026 - 03 - 01),
        limit: 10,
        offset: 0,
        complainted_mchid: None,
    };
    assert!(matches!(client.list_complaints(&wide).await, Err(Error::Invalid(_))));
    assert!(matches!(
        client.list_complaints(&ComplaintListQuery { limit: 51, end_date: wide.begin_date, ..wide.clone() }).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(client.negotiation_history("1", 301, 0).await, Err(Error::Invalid(_))));
    assert!(matches!(
        client.set_complaint_notification_url("http://risk.example.com/x", false).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(client.complaint("../../v3/refund").await, Err(Error::Invalid(_))));
    assert!(matches!(client.upload_image("a.gif", b"GIF89a").await, Err(Error::Invalid(_))));
    assert!(matches!(
        client.download_image("https://evil.example.com/v3/merchant-service/images/x").await,
        Err(Error::Invalid(_))
    ));
    assert!(setup.requests().is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn refunds_notifications_limitations_and_images() {
    let setup = Setup::start().await;
    let client = setup.client();
    setup.answer(200, json!({"refund_id": "50000000382019052709732678859", "out_refund_no": "CR-1-4200000001", "transaction_id": "4200000001", "out_trade_no": "T1",
        "channel": "ORIGINAL", "user_received_account": "支付用户零钱", "create_time": "2026-11-27T10:00:00+08:00", "status": "PROCESSING",
        "amount": {"total": 990, "refund": 990, "payer_total": 990, "payer_refund": 990, "settlement_refund": 990, "settlement_total": 990, "discount_refund": 0, "currency": "CNY"}}));
    let refund = client
        .create_refund(&RefundRequest {
            sub_mchid: "1900000109".into(),
            transaction_id: Some("4200000001".into()),
            out_trade_no: None,
            out_refund_no: "CR-1-4200000001".into(),
            reason: Some("投诉退款".into()),
            notify_url: Some("https://risk.example.com/callbacks/1/refunds".into()),
            funds_account: None,
            amount: RefundAmountRequest::cny(990, 990),
        })
        .await
        .expect("refund");
    assert_eq!(refund.status, RefundStatus::Processing);
    let body: Value = serde_json::from_slice(&setup.last().body).expect("json");
    assert_eq!(body["sub_mchid"], "1900000109");
    assert_eq!(body["amount"], json!({"refund": 990, "total": 990, "currency": "CNY"}));
    assert!(body.get("out_trade_no").is_none(), "no nulls: WeChat refuses them");

    setup.answer(200, serde_json::to_value(&refund).expect("json"));
    client.query_refund("CR-1|4200000001", "1900000109").await.expect("query");
    assert_eq!(setup.last().target, "/v3/refund/domestic/refunds/CR-1%7C4200000001?sub_mchid=1900000109");

    setup.answer(404, json!({"code": "NOT_FOUND", "message": "没有配置"}));
    assert_eq!(client.complaint_notification_url().await.expect("query"), None);
    setup.answer(200, json!({"mchid": MCHID, "url": "https://risk.example.com/callbacks/1/complaints"}));
    let url = client
        .set_complaint_notification_url("https://risk.example.com/callbacks/1/complaints", false)
        .await
        .expect("create");
    assert_eq!(url.url, "https://risk.example.com/callbacks/1/complaints");
    assert_eq!(setup.last().method, Method::POST);
    setup.answer(200, json!({"notify_url": "https://risk.example.com/callbacks/1/violations"}));
    client
        .set_violation_notification_url("https://risk.example.com/callbacks/1/violations", true)
        .await
        .expect("update");
    let request = setup.last();
    assert_eq!(
        (request.method, request.target.as_str()),
        (Method::PUT, "/v3/merchant-risk-manage/violation-notifications")
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&request.body).expect("json"),
        json!({"notify_url": "https://risk.example.com/callbacks/1/violations"})
    );

    setup.answer(200, json!({"mchid": "1900000109", "limited_functions": ["NO_REFUND", "NO_SOMETHING_NEW"], "recovery_specifications": [{"limitation_case_id": "C1", "limitation_reason_type": "RISK_ABNORMAL", "limitation_reason": "风险", "recover_way": "LETTER"}]}));
    let limits = client.merchant_limitations("1900000109").await.expect("limitations");
    assert!(limits.is_limited(&LimitedFunction::NoRefund));
    assert_eq!(limits.recovery_specifications[0].limitation_case_id, "C1");

    setup.answer(200, json!({"media_id": "BB04A5DEEFE5E"}));
    let media_id = client.upload_image("evidence.png", b"\x89PNG fake image bytes").await.expect("upload");
    assert_eq!(media_id, "BB04A5DEEFE5E");
    let request = setup.last();
    assert!(request.headers["content-type"].to_str().expect("type").starts_with("multipart/form-data; boundary="));
    let text = String::from_utf8_lossy(&request.body);
    assert!(text.contains("{\"filename\":\"evidence.png\",\"sha256\":\""), "{text}");

    // Image URLs are used verbatim (escapes included) and their answers are not signed.
    setup.signing(Signing::None);
    setup.answer(200, Value::Null);
    let media_url =
        format!("{}/v3/merchant-service/images/ChsyMDIyMDUxMDE4MzI0OTYyNzQwNjE0NjUaCjE2ODA3MzA1MjQ%3D", setup.base);
    client.download_image(&media_url).await.expect("download");
    assert_eq!(
        setup.last().target,
        "/v3/merchant-service/images/ChsyMDIyMDUxMDE4MzI0OTYyNzQwNjE0NjUaCjE2ODA3MzA1MjQ%3D"
    );
}

#[tokio::test]
async fn bad_answers_are_classified() {
    let setup = Setup::start().await;
    let client = setup.client();
    setup.answer_with(
        429,
        json!({"code": "FREQUENCY_LIMITED", "message": "频率超限"}),
        vec![("Retry-After", "30".into())],
    );
    let error = client.complaint("1").await.expect_err("limited");
    assert_eq!(error.retry(), Retry::Later { after: Some(Duration::from_secs(30)) });
    let api = error.api().expect("api error");
    assert_eq!(api.request_id.as_deref(), Some("08F78BB5AF0610D302A4B75A"));

    setup.answer(400, json!({"code": "PARAM_ERROR", "message": "参数错误", "detail": {"field": "/amount/currency", "value": "XYZ", "issue": "x", "location": "body"}}));
    let error = client.complaint("1").await.expect_err("param");
    assert_eq!((error.retry(), error.code()), (Retry::Never, Some("PARAM_ERROR")));
    assert_eq!(error.api().and_then(|a| a.detail.clone()).map(|d| d["field"].clone()), Some(json!("/amount/currency")));

    setup.answer(500, json!({"code": "SYSTEM_ERROR", "message": "系统错误"}));
    assert!(matches!(client.complaint("1").await.expect_err("500").retry(), Retry::Later { .. }));

    for (signing, expected) in [(Signing::Probe, VerifyError::Probe), (Signing::Tampered, VerifyError::Mismatch)] {
        setup.signing(signing);
        setup.answer(200, complaint_json("1"));
        match client.complaint("1").await {
            Err(Error::ResponseSignature(e)) => assert_eq!(e, expected),
            other => panic!("expected a signature failure, got {other:?}"),
        }
    }
    setup.signing(Signing::None);
    setup.answer(200, complaint_json("1"));
    assert!(matches!(client.complaint("1").await, Err(Error::ResponseSignature(VerifyError::MissingHeader(_)))));

    setup.signing(Signing::Certificate);
    setup.answer(200, json!({"complaint_id": 5}));
    let error = client.complaint("1").await.expect_err("bad shape");
    assert!(matches!(error, Error::Decode(_)), "{error:?}");

    *setup.fake.delay.lock().expect("lock") = Duration::from_secs(3);
    let mut config = ClientConfig {
        base_url: url::Url::parse(&setup.base).expect("url"),
        timeout: Duration::from_millis(300),
        ..ClientConfig::default()
    };
    config.connect_timeout = Duration::from_millis(300);
    let slow = Client::new(
        config,
        Credentials {
            mchid: MCHID.into(),
            merchant_cert_serial: MERCHANT_SERIAL.into(),
            private_key: Arc::new(RsaPrivateKey::from_pem(&testdata("merchant_key.pem")).expect("key")),
            apiv3_key: Apiv3Key::new(APIV3_KEY).expect("apiv3"),
        },
        None,
        vec![PlatformCertificate::from_pem(&testdata("platform_cert.pem")).expect("cert")],
    )
    .expect("client");
    let error = slow.complaint("1").await.expect_err("timeout");
    assert!(matches!(error, Error::Transport { kind: wechatpay::error::TransportKind::Timeout, .. }), "{error:?}");
    assert!(matches!(error.retry(), Retry::Later { .. }));

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let refused = Setup { fake: setup.fake.clone(), base: format!("http://{closed}") }.client();
    let error = refused.complaint("1").await.expect_err("refused");
    assert!(matches!(error, Error::Transport { kind: wechatpay::error::TransportKind::Connect, .. }), "{error:?}");
}

#[tokio::test]
async fn certificates_are_downloaded_only_when_needed() {
    let setup = Setup::start().await;
    // Public key only: never /v3/certificates.
    setup.signing(Signing::PublicKey);
    let public_only = setup.client_with(true, false, None);
    setup.answer(200, complaint_json("1"));
    public_only.complaint("1").await.expect("verified with the public key");
    assert!(setup.requests().iter().all(|r| r.target != "/v3/certificates"));
    assert_eq!(setup.last().headers["wechatpay-serial"], PUBLIC_KEY_ID, "the public key id goes on every request");

    // Neither: the first call downloads, decrypts and then verifies with the downloaded certificate.
    setup.signing(Signing::Certificate);
    let clock_value = Arc::new(std::sync::atomic::AtomicI64::new(now()));
    let clock_reader = clock_value.clone();
    let clock: UnixClock = Arc::new(move || clock_reader.load(std::sync::atomic::Ordering::SeqCst));
    let fresh = setup.client_with(false, false, Some(clock));
    setup.answer(200, complaint_json("1"));
    fresh.complaint("1").await.expect("detail after download");
    let downloads = || setup.requests().iter().filter(|r| r.target == "/v3/certificates").count();
    assert_eq!(downloads(), 1);
    assert_eq!(fresh.keys().certificates()[0].serial, PLATFORM_SERIAL);
    setup.answer(200, complaint_json("1"));
    fresh.complaint("1").await.expect("detail");
    assert_eq!(downloads(), 1, "not again within 12 hours");

    // Both configured (the switch period): answers signed either way verify.
    let both = setup.client_with(true, true, None);
    for signing in [Signing::PublicKey, Signing::Certificate] {
        setup.signing(signing);
        setup.answer(200, complaint_json("1"));
        both.complaint("1").await.expect("both kinds verify");
    }

    // Sensitive fields: encrypted for the platform, decrypted by the platform key; phone decrypted by us.
    let (serial, ciphertext) = fresh.encrypt_sensitive("13800138000").expect("encrypt");
    assert_eq!(serial, PLATFORM_SERIAL);
    let platform = RsaPrivateKey::from_pem(&testdata("other_key.pem")).expect("key");
    assert_eq!(platform.decrypt_oaep_base64(&ciphertext).expect("decrypt"), "13800138000");
    let (serial, _) = both.encrypt_sensitive("x").expect("encrypt");
    assert_eq!(serial, PUBLIC_KEY_ID, "the public key wins when configured");
    let merchant_public = wechatpay::Certificate::from_pem(&testdata("merchant_cert.pem")).expect("cert").public_key;
    let phone = merchant_public.encrypt_oaep_base64("13900139000").expect("encrypt");
    assert_eq!(fresh.decrypt_sensitive(&phone).expect("decrypt"), "13900139000");
    assert!(fresh.decrypt_sensitive("bm90IGEgY2lwaGVydGV4dA==").is_err());
}

#[tokio::test]
async fn an_unknown_serial_refreshes_at_most_once_a_minute() {
    let setup = Setup::start().await;
    let clock_value = Arc::new(std::sync::atomic::AtomicI64::new(now()));
    let reader = clock_value.clone();
    let clock: UnixClock = Arc::new(move || reader.load(std::sync::atomic::Ordering::SeqCst));
    // Holds only an unrelated certificate: the answers' serial is unknown to it.
    let mut config = ClientConfig { base_url: url::Url::parse(&setup.base).expect("url"), ..ClientConfig::default() };
    config.clock = clock;
    let client = Client::new(
        config,
        Credentials {
            mchid: MCHID.into(),
            merchant_cert_serial: MERCHANT_SERIAL.into(),
            private_key: Arc::new(RsaPrivateKey::from_pem(&testdata("merchant_key.pem")).expect("key")),
            apiv3_key: Apiv3Key::new(APIV3_KEY).expect("apiv3"),
        },
        None,
        vec![PlatformCertificate::from_pem(&testdata("merchant_cert.pem")).expect("cert")],
    )
    .expect("client");
    let downloads = || setup.requests().iter().filter(|r| r.target == "/v3/certificates").count();
    setup.answer(200, complaint_json("1"));
    client.complaint("1").await.expect("verified after the refresh");
    let after_first = downloads();
    assert!(after_first >= 1);
    assert!(client.keys().certificates().iter().any(|c| c.serial == PLATFORM_SERIAL));

    // A callback signed by a key we do not have: one refresh, then a refusal; within the minute, no second one.
    let notification = json!({"id": "EV-1", "create_time": "2026-11-27T10:00:00+08:00", "event_type": "COMPLAINT.CREATE", "resource_type": "encrypt-resource", "summary": "x",
        "resource": {"algorithm": "AEAD_AES_256_GCM", "ciphertext": "AAAA", "nonce": "abcdefghijkl", "original_type": "complaint"}})
    .to_string();
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("Wechatpay-Timestamp", now().to_string()),
        ("Wechatpay-Nonce", "n".into()),
        ("Wechatpay-Signature", "AAAA".into()),
        ("Wechatpay-Serial", "ABCDEF0123".into()),
    ] {
        headers.insert(name, value.parse().expect("header"));
    }
    let before = downloads();
    assert!(client.verify_notification(&headers, notification.as_bytes()).await.is_err());
    let after = downloads();
    assert!(client.verify_notification(&headers, notification.as_bytes()).await.is_err());
    assert_eq!(downloads(), after, "no second download within a minute");
    assert!(after <= before + 1);
    clock_value.fetch_add(61, std::sync::atomic::Ordering::SeqCst);
    assert!(client.verify_notification(&headers, notification.as_bytes()).await.is_err());
    assert_eq!(downloads(), after + 1, "a minute later, one more");
}

#[tokio::test]
async fn expired_certificates_are_not_taken_from_a_download_nor_used_when_held() {
    let setup = Setup::start().await;
    let now = now();
    // WeChat lists one certificate that expired yesterday and one that starts tomorrow, beside the current one.
    let expired = certificate_valid([0x41; 20], now - 400 * 86_400, now - 86_400);
    let future = certificate_valid([0x42; 20], now + 86_400, now + 400 * 86_400);
    setup.fake.extra_certificates.lock().expect("lock").extend([expired.clone(), future.clone()]);
    let client = setup.client_with(false, false, None);
    let held: Vec<String> =
        client.refresh_certificates().await.expect("download").into_iter().map(|c| c.serial).collect();
    assert!(held.contains(&PLATFORM_SERIAL.to_owned()), "{held:?}");
    assert!(!held.contains(&expired.0), "an expired certificate is not taken: {held:?}");
    assert!(held.contains(&future.0), "a successor is held until it becomes valid: {held:?}");
    // The one not yet valid is never the encryption key, though its expiry is the latest.
    assert_eq!(client.encrypt_sensitive("x").expect("encrypt").0, PLATFORM_SERIAL);

    // Given one that has expired (loaded from storage, say): kept only to refuse its signatures by name.
    let pem = PlatformCertificate::from_pem(&expired.1).expect("cert");
    let loaded = Client::new(
        ClientConfig { base_url: url::Url::parse(&setup.base).expect("url"), ..ClientConfig::default() },
        Credentials {
            mchid: MCHID.into(),
            merchant_cert_serial: MERCHANT_SERIAL.into(),
            private_key: Arc::new(RsaPrivateKey::from_pem(&testdata("merchant_key.pem")).expect("key")),
            apiv3_key: Apiv3Key::new(APIV3_KEY).expect("apiv3"),
        },
        None,
        vec![pem],
    )
    .expect("client");
    assert!(loaded.encrypt_sensitive("x").is_err(), "an expired certificate encrypts nothing");
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("Wechatpay-Timestamp", now.to_string()),
        ("Wechatpay-Nonce", "n".into()),
        ("Wechatpay-Signature", "AAAA".into()),
        ("Wechatpay-Serial", expired.0.clone()),
    ] {
        headers.insert(name, value.parse().expect("header"));
    }
    match loaded.verify_notification(&headers, b"{}").await {
        Err(wechatpay::callback::CallbackError::Signature(VerifyError::CertificateExpired { serial, .. })) => {
            assert_eq!(serial, expired.0);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        setup.requests().iter().filter(|r| r.target == "/v3/certificates").count() == 1,
        "an expired serial is not unknown: no download for it"
    );
}

#[tokio::test]
async fn the_walker_reads_every_window_and_page() {
    let setup = Setup::start().await;
    let client = setup.client();
    // 2026-10-01 .. 2026-11-27 is 58 days: two windows. The first has 50 + 3 complaints, the second 1.
    let page = |ids: std::ops::Range<u32>, total: Option<u32>| {
        let data: Vec<Value> = ids.map(|i| complaint_json(&i.to_string())).collect();
        json!({"data": data, "limit": 50, "offset": 0, "total_count": total})
    };
    setup.answer(200, page(0..50, Some(53)));
    setup.answer(200, page(50..53, None));
    setup.answer(200, page(100..101, Some(1)));
    let all = client
        .complaints_between(time::macros::date!(2026 - 10 - 01), time::macros::date!(2026 - 11 - 27), None)
        .collect_all()
        .await
        .expect("walk");
    assert_eq!(all.len(), 54);
    let targets: Vec<String> = setup.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [
            "/v3/merchant-service/complaints-v2?limit=50&offset=0&begin_date=2026-10-01&end_date=2026-10-30",
            "/v3/merchant-service/complaints-v2?limit=50&offset=50&begin_date=2026-10-01&end_date=2026-10-30",
            "/v3/merchant-service/complaints-v2?limit=50&offset=0&begin_date=2026-10-31&end_date=2026-11-27",
        ]
    );
}
