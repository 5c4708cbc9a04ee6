//! Simulated WeChat Pay (service-provider mode), `/v3/…`.
//!
//! Contract: every request passes [`gate`] first — `Accept` and `User-Agent` present (else `400 INVALID_REQUEST`),
//! `Authorization` naming the provider's mchid and merchant certificate serial and verifying over the request as
//! received (else `401 SIGN_ERROR`) — and every 2xx answer leaves signed with the platform certificate or the
//! WeChat Pay public key, as the sign mode and the request's `Wechatpay-Serial` say. Image downloads are answered
//! unsigned, as WeChat does.

mod complaints;
mod media;
mod refunds;
mod setup;

pub(crate) use complaints::log as complaints_log;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use wechatpay::sign::{Authorization, sign_as_wechatpay};
use wechatpay::verify::{PROBE_PREFIX, PUBLIC_KEY_ID_PREFIX};

use crate::Sim;
use crate::clock::real_now_secs;
use crate::faults::{ErrorCode, ProbeSignature};
use crate::keys::SignMode;

pub fn router(sim: &Arc<Sim>) -> Router<Arc<Sim>> {
    Router::new()
        .route("/v3/certificates", get(setup::certificates))
        .route("/v3/merchant-service/complaints-v2", get(complaints::list))
        .route("/v3/merchant-service/complaints-v2/{id}", get(complaints::detail))
        .route("/v3/merchant-service/complaints-v2/{id}/negotiation-historys", get(complaints::history))
        .route("/v3/merchant-service/complaints-v2/{id}/response", post(complaints::respond))
        .route(
            "/v3/merchant-service/complaints-v2/{id}/response-immediate-service",
            post(complaints::respond_immediate),
        )
        .route("/v3/merchant-service/complaints-v2/{id}/complete", post(complaints::complete))
        .route("/v3/merchant-service/complaints-v2/{id}/update-refund-progress", post(complaints::refund_progress))
        .route("/v3/merchant-service/images/upload", post(media::upload))
        .route("/v3/merchant-service/images/{media_id}", get(media::download))
        .route(
            "/v3/merchant-service/complaint-notifications",
            get(setup::complaint_url_get)
                .post(setup::complaint_url_create)
                .put(setup::complaint_url_update)
                .delete(setup::complaint_url_delete),
        )
        .route(
            "/v3/merchant-risk-manage/violation-notifications",
            get(setup::violation_url_get)
                .post(setup::violation_url_create)
                .put(setup::violation_url_update)
                .delete(setup::violation_url_delete),
        )
        .route("/v3/refund/domestic/refunds", post(refunds::create))
        .route("/v3/refund/domestic/refunds/{out_refund_no}", get(refunds::query))
        .route("/v3/mch-operation-manage/merchant-limitations/sub-mchid/{sub_mchid}", get(setup::limitations))
        .route_layer(axum::middleware::from_fn_with_state(sim.clone(), gate))
}

/// Any path no simulated service serves.
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", "接口不存在")
}

/// WeChat's error answer.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (status, axum::Json(serde_json::json!({"code": code, "message": message}))).into_response();
    response.extensions_mut().insert(ErrorCode(code.to_owned()));
    response
}

pub(crate) fn param_error(message: impl AsRef<str>) -> Response {
    error(StatusCode::BAD_REQUEST, "PARAM_ERROR", message.as_ref())
}

pub(crate) fn invalid_request(message: impl AsRef<str>) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message.as_ref())
}

pub(crate) fn frequency_limited() -> Response {
    error(StatusCode::TOO_MANY_REQUESTS, "FREQUENCY_LIMITED", "频率超限")
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (status, [("content-type", "application/json")], bytes).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "SYSTEM_ERROR", "系统错误"),
    }
}

/// Parse a JSON body, answering `PARAM_ERROR` as WeChat does when it does not fit.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| param_error(format!("请求参数格式错误: {e}")))
}

/// The `meta` part of a multipart upload: what its signature covers.
pub(crate) fn multipart_meta(body: &[u8]) -> Option<String> {
    media::parse_multipart(body).map(|parts| parts.meta)
}

/// Check headers and signature; then answer, signing what goes out.
pub async fn gate(State(sim): State<Arc<Sim>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, 8 * 1024 * 1024).await else {
        return param_error("请求体过大");
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if header("accept").is_none() || header("user-agent").is_none() {
        return invalid_request("Http头缺少Accept或User-Agent");
    }
    let target = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let signed_body = if parts.uri.path() == "/v3/merchant-service/images/upload" {
        multipart_meta(&bytes).unwrap_or_default()
    } else {
        match std::str::from_utf8(&bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => return param_error("请求体不是UTF-8"),
        }
    };
    if let Err(message) =
        check_authorization(&sim, header("authorization"), parts.method.as_str(), &target, &signed_body)
    {
        let mut response = error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", &message);
        response.extensions_mut().insert(ErrorCode("SIGN_ERROR".into()));
        return response;
    }
    let probe = parts.extensions.get::<ProbeSignature>().is_some();
    let request_serial = header("wechatpay-serial");
    let unsigned_answer =
        parts.method == http::Method::GET && parts.uri.path().starts_with("/v3/merchant-service/images/");
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if unsigned_answer || !response.status().is_success() {
        return response;
    }
    sign_response(&sim, response, request_serial.as_deref(), probe).await
}

fn check_authorization(
    sim: &Sim,
    header: Option<String>,
    method: &str,
    target: &str,
    body: &str,
) -> Result<(), String> {
    let header = header.ok_or("Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》")?;
    let auth = Authorization::parse(&header).map_err(|e| format!("Http头Authorization值格式错误: {e}"))?;
    if auth.mchid != sim.config.sp_mchid {
        return Err(format!("商户号 {} 与签名不匹配", auth.mchid));
    }
    let keys = sim.keys();
    if !wechatpay::keys::same_serial(&auth.serial_no, &keys.merchant.serial) {
        return Err(format!("商户证书序列号 {} 有误", auth.serial_no));
    }
    auth.verify(method, target, body, &keys.merchant.public, real_now_secs()).map_err(|e| match e {
        wechatpay::sign::AuthError::Stale => "Http头Authorization中的timestamp与发起请求的时间不得超过5分钟".to_owned(),
        _ => "签名错误，请检查后再试".to_owned(),
    })
}

/// Which key signs: the public key, or the newest platform certificate.
pub(crate) fn signing_key(
    sim: &Sim,
    request_serial: Option<&str>,
    prefer_public: bool,
) -> (Arc<wechatpay::RsaPrivateKey>, String) {
    let keys = sim.keys();
    let use_public = match keys.mode {
        SignMode::PublicKey => true,
        SignMode::Certificate => false,
        SignMode::Both => request_serial.map(|s| s.starts_with(PUBLIC_KEY_ID_PREFIX)).unwrap_or(prefer_public),
    };
    if use_public {
        (keys.public_key.key.clone(), keys.public_key.id.clone())
    } else {
        let newest = keys.platform.last().cloned();
        match newest {
            Some(identity) => (identity.key, identity.serial),
            None => (keys.public_key.key.clone(), keys.public_key.id.clone()),
        }
    }
}

/// `Wechatpay-*` headers for `body`, optionally with a probe signature.
pub(crate) fn signature_headers(
    sim: &Sim,
    request_serial: Option<&str>,
    prefer_public: bool,
    body: &[u8],
    probe: bool,
) -> Vec<(&'static str, String)> {
    let (key, serial) = signing_key(sim, request_serial, prefer_public);
    let nonce = wechatpay::crypto::random_alphanumeric(32).unwrap_or_else(|_| "SIMULATORNONCE".into());
    let mut headers = sign_as_wechatpay(&key, &serial, real_now_secs(), &nonce, body).unwrap_or_default();
    if probe {
        for (name, value) in &mut headers {
            if *name == "Wechatpay-Signature" {
                *value = format!("{PROBE_PREFIX}{value}");
            }
        }
    }
    headers
}

async fn sign_response(sim: &Sim, response: Response, request_serial: Option<&str>, probe: bool) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, 16 * 1024 * 1024).await else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "SYSTEM_ERROR", "系统错误");
    };
    for (name, value) in signature_headers(sim, request_serial, false, &bytes, probe) {
        if let Ok(value) = value.parse() {
            parts.headers.insert(name, value);
        }
    }
    insert_request_id(&mut parts.headers);
    Response::from_parts(parts, Body::from(bytes))
}

fn insert_request_id(headers: &mut HeaderMap) {
    let id = wechatpay::crypto::random_alphanumeric(24).unwrap_or_default();
    if let Ok(value) = id.parse() {
        headers.insert("Request-ID", value);
    }
}
