//! Platform certificates, notification URLs and sub-merchant limitations.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use wechatpay::Apiv3Key;
use wechatpay::api::limitations::MerchantLimitations;

use super::{error, invalid_request, json, param_error, parse};
use crate::Sim;
use crate::clock::rfc3339_china;
use crate::keys::SignMode;

/// Every platform certificate in use, each encrypted under the APIv3 key with associated data `certificate`.
/// Refused in public-key mode: those merchants have no platform certificates.
pub async fn certificates(State(sim): State<Arc<Sim>>) -> Response {
    let keys = sim.keys();
    if keys.mode == SignMode::PublicKey {
        return error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "商户未申请平台证书，请使用微信支付公钥");
    }
    let Ok(key) = Apiv3Key::new(sim.apiv3_key.as_bytes()) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "SYSTEM_ERROR", "系统错误");
    };
    let mut data = Vec::new();
    for identity in &keys.platform {
        let Ok(nonce) = wechatpay::crypto::random_resource_nonce() else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "SYSTEM_ERROR", "系统错误");
        };
        let Ok(ciphertext) = key.encrypt(&identity.cert_pem, &nonce, Some("certificate")) else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "SYSTEM_ERROR", "系统错误");
        };
        data.push(serde_json::json!({
            "serial_no": identity.serial,
            "effective_time": rfc3339_china(sim.clock.now_ms() - 86_400_000),
            "expire_time": rfc3339_china(identity.not_after * 1000),
            "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce, "associated_data": "certificate", "ciphertext": ciphertext},
        }));
    }
    json(StatusCode::OK, &serde_json::json!({"data": data}))
}

/// Which notification URL a handler manages.
#[derive(Clone, Copy)]
enum Which {
    Complaint,
    Violation,
}

fn slot(state: &mut crate::state::State, which: Which) -> &mut Option<String> {
    match which {
        Which::Complaint => &mut state.complaint_url,
        Which::Violation => &mut state.violation_url,
    }
}

fn url_answer(sim: &Sim, which: Which, url: &str) -> Response {
    match which {
        Which::Complaint => json(StatusCode::OK, &serde_json::json!({"mchid": sim.config.sp_mchid, "url": url})),
        Which::Violation => json(StatusCode::OK, &serde_json::json!({"notify_url": url})),
    }
}

#[derive(Deserialize)]
struct ComplaintUrlBody {
    url: String,
}

#[derive(Deserialize)]
struct ViolationUrlBody {
    notify_url: String,
}

fn url_from(which: Which, body: &Bytes) -> Result<String, Response> {
    let url = match which {
        Which::Complaint => parse::<ComplaintUrlBody>(body)?.url,
        Which::Violation => parse::<ViolationUrlBody>(body)?.notify_url,
    };
    let parsed = url::Url::parse(&url).map_err(|_| param_error("通知地址格式错误"))?;
    // WeChat calls https only; the simulator also accepts http to this machine, where tests and demos listen.
    let local = parsed.host_str().is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]");
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && local) {
        return Err(param_error("通知地址必须为https"));
    }
    if parsed.query().is_some() {
        return Err(param_error("通知地址不能携带参数"));
    }
    if url.len() > 255 {
        return Err(param_error("通知地址过长"));
    }
    Ok(url)
}

fn get_url(sim: &Sim, which: Which) -> Response {
    match slot(&mut sim.state(), which).clone() {
        Some(url) => url_answer(sim, which, &url),
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND", "未配置通知地址"),
    }
}

fn set_url(sim: &Sim, which: Which, body: &Bytes, create: bool) -> Response {
    let url = match url_from(which, body) {
        Ok(url) => url,
        Err(e) => return e,
    };
    let mut state = sim.state();
    let current = slot(&mut state, which);
    match (create, current.is_some()) {
        (true, true) => return invalid_request("通知地址已存在，请使用更新接口"),
        (false, false) => return error(StatusCode::NOT_FOUND, "NOT_FOUND", "未配置通知地址，请使用创建接口"),
        _ => {}
    }
    *current = Some(url.clone());
    drop(state);
    url_answer(sim, which, &url)
}

fn delete_url(sim: &Sim, which: Which) -> Response {
    let mut state = sim.state();
    match slot(&mut state, which).take() {
        Some(_) => {
            Response::builder().status(StatusCode::NO_CONTENT).body(axum::body::Body::empty()).unwrap_or_default()
        }
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND", "未配置通知地址"),
    }
}

pub async fn complaint_url_get(State(sim): State<Arc<Sim>>) -> Response {
    get_url(&sim, Which::Complaint)
}
pub async fn complaint_url_create(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    set_url(&sim, Which::Complaint, &body, true)
}
pub async fn complaint_url_update(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    set_url(&sim, Which::Complaint, &body, false)
}
pub async fn complaint_url_delete(State(sim): State<Arc<Sim>>) -> Response {
    delete_url(&sim, Which::Complaint)
}
pub async fn violation_url_get(State(sim): State<Arc<Sim>>) -> Response {
    get_url(&sim, Which::Violation)
}
pub async fn violation_url_create(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    set_url(&sim, Which::Violation, &body, true)
}
pub async fn violation_url_update(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    set_url(&sim, Which::Violation, &body, false)
}
pub async fn violation_url_delete(State(sim): State<Arc<Sim>>) -> Response {
    delete_url(&sim, Which::Violation)
}

pub async fn limitations(State(sim): State<Arc<Sim>>, Path(sub_mchid): Path<String>) -> Response {
    let limits = sim.state().limitations.get(&sub_mchid).cloned();
    json(StatusCode::OK, &limits.unwrap_or(MerchantLimitations { mchid: sub_mchid, ..MerchantLimitations::default() }))
}
