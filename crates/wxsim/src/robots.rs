//! Simulated chat robots — WeCom, DingTalk, Feishu — and Standard Webhooks receivers.
//!
//! Contract: each robot is known by its key or token (registered through the control API); signatures are checked
//! where the robot has a secret (DingTalk: query `timestamp`/`sign`; Feishu: body `timestamp`/`sign`); each
//! service's documented per-minute limit and body size are enforced with its own error codes; accepted messages
//! are recorded. Webhook receivers check Standard Webhooks signatures.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::Sim;
use crate::clock::{real_now_ms, real_now_secs};
use crate::faults::ErrorCode;
use crate::state::{RobotMessage, WebhookMessage};
use protocols::{dingtalk, feishu, standard_webhooks};

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/cgi-bin/webhook/send", post(wecom))
        .route("/robot/send", post(dingtalk_send))
        .route("/open-apis/bot/v2/hook/{token}", post(feishu_send))
        .route("/webhooks/{name}", post(webhook_receive))
}

fn query(raw: Option<String>) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

fn wechat_style(code: i64, message: &str) -> Response {
    let mut response = Json(json!({"errcode": code, "errmsg": message})).into_response();
    if code != 0 {
        response.extensions_mut().insert(ErrorCode(code.to_string()));
    }
    response
}

fn feishu_style(code: i64, message: &str) -> Response {
    let body = if code == 0 {
        json!({"code": 0, "msg": "success", "data": {}})
    } else {
        json!({"code": code, "msg": message})
    };
    let mut response = Json(body).into_response();
    if code != 0 {
        response.extensions_mut().insert(ErrorCode(code.to_string()));
    }
    response
}

/// Count a message against a robot's limits: `per_minute` in the last minute and, when given, `per_second`.
/// `false` when over (the message is not counted).
fn within(sent: &mut Vec<i64>, now: i64, per_minute: usize, per_second: Option<usize>) -> bool {
    sent.retain(|at| now - at < 60_000);
    let last_second = sent.iter().filter(|at| now - **at < 1000).count();
    if sent.len() >= per_minute || per_second.is_some_and(|limit| last_second >= limit) {
        return false;
    }
    sent.push(now);
    true
}

fn record(sim: &Sim, kind: &str, token: &str, body: Value) {
    let now = sim.clock.now_ms();
    sim.state().robot_messages.push(RobotMessage { at_ms: now, kind: kind.to_owned(), token: token.to_owned(), body });
}

async fn wecom(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery, body: Bytes) -> Response {
    let key = query(raw).remove("key").unwrap_or_default();
    if !sim.state().robots.contains_key(&("wecom".to_owned(), key.clone())) {
        return wechat_style(93000, "invalid webhook url, hint: [key is invalid]");
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return wechat_style(40008, "invalid message type");
    };
    let msgtype = message["msgtype"].as_str().unwrap_or_default();
    let limit = match msgtype {
        "text" => 2048,
        "markdown" | "markdown_v2" => 4096,
        "news" | "image" | "file" | "voice" | "template_card" => usize::MAX,
        _ => return wechat_style(40008, "invalid message type"),
    };
    let content = message[msgtype]["content"].as_str().unwrap_or_default();
    if limit != usize::MAX && (content.is_empty() || content.len() > limit) {
        return wechat_style(40058, &format!("{msgtype}.content exceed max length {limit}"));
    }
    let now = sim.clock.now_ms();
    {
        let mut state = sim.state();
        let Some(robot) = state.robots.get_mut(&("wecom".to_owned(), key.clone())) else {
            return wechat_style(93000, "invalid webhook url, hint: [key is invalid]");
        };
        if !within(&mut robot.sent_at_ms, now, 20, None) {
            return wechat_style(45009, "api freq out of limit");
        }
    }
    record(&sim, "wecom", &key, message);
    wechat_style(0, "ok")
}

async fn dingtalk_send(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery, body: Bytes) -> Response {
    let params = query(raw);
    let token = params.get("access_token").cloned().unwrap_or_default();
    let now = sim.clock.now_ms();
    {
        let mut state = sim.state();
        let Some(robot) = state.robots.get_mut(&("dingtalk".to_owned(), token.clone())) else {
            return wechat_style(400101, "token is not exist");
        };
        if let Some(secret) = &robot.secret {
            let timestamp: Option<i64> = params.get("timestamp").and_then(|t| t.parse().ok());
            let sign = params.get("sign").cloned().unwrap_or_default();
            let valid = timestamp.is_some_and(|t| dingtalk::verify(secret, t, &sign, real_now_ms()));
            if !valid {
                return wechat_style(
                    310000,
                    "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
                );
            }
        }
        if robot.throttled_until_ms > now {
            return wechat_style(130101, "send too fast, exceed 20 times per minute");
        }
        if !within(&mut robot.sent_at_ms, now, 20, None) {
            // DingTalk throttles the robot for ten minutes once it exceeds its limit.
            robot.throttled_until_ms = now + 600_000;
            return wechat_style(130101, "send too fast, exceed 20 times per minute");
        }
    }
    if body.len() > 20_000 {
        return wechat_style(460101, "message too long, exceed 20000 bytes");
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return wechat_style(300001, "param error");
    };
    if !["text", "markdown", "link", "actionCard", "feedCard"]
        .contains(&message["msgtype"].as_str().unwrap_or_default())
    {
        return wechat_style(300001, "msgtype is invalid");
    }
    record(&sim, "dingtalk", &token, message);
    wechat_style(0, "ok")
}

async fn feishu_send(State(sim): State<Arc<Sim>>, Path(token): Path<String>, body: Bytes) -> Response {
    if body.len() > 20 * 1024 {
        return feishu_style(9499, "Bad Request: the request body is larger than 20 KB");
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return feishu_style(9499, "Bad Request");
    };
    let now = sim.clock.now_ms();
    {
        let mut state = sim.state();
        let Some(robot) = state.robots.get_mut(&("feishu".to_owned(), token.clone())) else {
            return feishu_style(19001, "param invalid: incoming webhook access token invalid");
        };
        if let Some(secret) = &robot.secret {
            let timestamp: Option<i64> = message["timestamp"].as_str().and_then(|t| t.parse().ok());
            let sign = message["sign"].as_str().unwrap_or_default();
            if !timestamp.is_some_and(|t| feishu::verify(secret, t, sign, real_now_secs())) {
                return feishu_style(19021, "sign match fail or timestamp is not within one hour from current time");
            }
        }
        if !within(&mut robot.sent_at_ms, now, 100, Some(5)) {
            return feishu_style(11232, "frequency limited");
        }
    }
    if !["text", "post", "interactive", "image", "share_chat"]
        .contains(&message["msg_type"].as_str().unwrap_or_default())
    {
        return feishu_style(19002, "params error, msg_type invalid");
    }
    record(&sim, "feishu", &token, message);
    feishu_style(0, "success")
}

async fn webhook_receive(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(secret) = sim.state().webhook_secrets.get(&name).cloned() else {
        return (StatusCode::NOT_FOUND, "no such webhook receiver").into_response();
    };
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (id, timestamp, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    if let Err(e) = standard_webhooks::verify(&secret, &id, &timestamp, &signature, &body, real_now_secs()) {
        let mut response = (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
        response.extensions_mut().insert(ErrorCode("signature".into()));
        return response;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let now = sim.clock.now_ms();
    sim.state().webhook_messages.push(WebhookMessage { at_ms: now, name, id, timestamp, body });
    StatusCode::NO_CONTENT.into_response()
}
