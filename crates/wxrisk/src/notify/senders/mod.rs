//! One sender per channel kind. Each speaks its service's protocol and classifies the answer (channels.md §6):
//! transient (network, timeouts, 5xx/429, SMTP 4xx, rate codes) is retried; permanent (credentials, parameters,
//! templates, recipients, a destination the guard refuses, a credential cleared by a destination change) is not.
//! A service's answer is read up to [`MAX_ANSWER_BYTES`]: a receiver cannot make wxrisk buffer without end.

pub mod email;
pub mod robots;
pub mod sms;
pub mod webhook;
pub mod wechat_template;

use std::time::Duration;

use serde_json::{Map, Value};

use super::Message;
use crate::domain::channel::ChannelKind;
use crate::state::AppState;

/// Where one message goes.
#[derive(Debug)]
pub struct Destination<'a> {
    pub channel_id: i64,
    pub kind: ChannelKind,
    pub settings: &'a Value,
    pub secrets: &'a Map<String, Value>,
    /// Credentials a destination change dropped and nobody set again: nothing is sent while any is listed.
    pub secrets_cleared: &'a [String],
    pub recipient: &'a str,
    /// Stable for the message across retries: Message-ID, client_msg_id, webhook-id.
    pub idempotency_key: &'a str,
    /// Our delivery id, for SMS `SessionContext`.
    pub delivery_id: i64,
    /// 1 for the first attempt.
    pub attempt: i64,
}

impl Destination<'_> {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings[key].as_str()
    }

    pub fn secret(&self, key: &str) -> Option<&str> {
        self.secrets.get(key).and_then(Value::as_str)
    }
}

/// What the service answered to an accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// `250`, `0`, `Ok` …
    pub code: String,
    /// The service's id for the message: `msgid`, `SerialNo`, the SMTP reply.
    pub external_id: Option<String>,
    /// The answer as received (for test sends and the attempt log).
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("{code}: {message}")]
    Transient { code: String, message: String, retry_after: Option<Duration> },
    #[error("{code}: {message}")]
    Permanent { code: String, message: String },
}

impl SendError {
    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> Self {
        SendError::Transient { code: code.into(), message: message.into(), retry_after: None }
    }

    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        SendError::Permanent { code: code.into(), message: message.into() }
    }

    pub fn code(&self) -> &str {
        match self {
            SendError::Transient { code, .. } | SendError::Permanent { code, .. } => code,
        }
    }
}

/// A misconfigured channel: permanent.
pub(crate) fn missing(key: &str) -> SendError {
    SendError::permanent("config", format!("the channel has no `{key}`"))
}

/// The most of a service's answer that is read; the rest is dropped unread.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The permanent error of a destination the guard refused.
pub(crate) fn refused(error: &super::destinations::DestinationRefused) -> SendError {
    SendError::permanent("destination_refused", error.to_string())
}

/// Classify an HTTP failure that is not the service's own error body.
pub(crate) fn http_failure(error: reqwest::Error) -> SendError {
    if let Some(refusal) = super::destinations::refusal_in(&error) {
        return refused(refusal);
    }
    // reqwest's message alone ("error sending request") hides the cause an operator needs: refused, timed out, TLS.
    let code = if error.is_timeout() { "timeout" } else { "network" };
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    SendError::transient(code, message)
}

pub(crate) fn http_status(status: u16, body: &str, retry_after: Option<Duration>) -> SendError {
    let message = format!("HTTP {status}: {}", crate::jobs::truncate_body(body));
    if status == 429 || status >= 500 {
        SendError::Transient { code: status.to_string(), message, retry_after }
    } else {
        SendError::permanent(status.to_string(), message)
    }
}

pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_secs)
}

/// Read a response's body, at most [`MAX_ANSWER_BYTES`] of it (as text, invalid UTF-8 replaced).
pub(crate) async fn read_answer(mut response: reqwest::Response) -> Result<String, SendError> {
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http_failure)? {
        let room = MAX_ANSWER_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// POST a JSON body and return (status, headers, body text).
pub(crate) async fn post_json(
    state: &AppState,
    url: &str,
    body: &Value,
) -> Result<(u16, reqwest::header::HeaderMap, String), SendError> {
    let response = state
        .http()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(http_failure)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = read_answer(response).await?;
    Ok((status, headers, text))
}

/// Send `message` to `destination`.
pub async fn send(state: &AppState, destination: &Destination<'_>, message: &Message) -> Result<Sent, SendError> {
    if !destination.secrets_cleared.is_empty() {
        return Err(credential_cleared(destination));
    }
    match destination.kind {
        ChannelKind::Email => email::send(state, destination, message).await,
        ChannelKind::WechatTemplate => wechat_template::send(state, destination, message).await,
        ChannelKind::TencentSms => sms::send(state, destination, message).await,
        ChannelKind::WecomRobot => robots::wecom(state, destination, message).await,
        ChannelKind::DingtalkRobot => robots::dingtalk(state, destination, message).await,
        ChannelKind::FeishuRobot => robots::feishu(state, destination, message).await,
        ChannelKind::Webhook => webhook::send(state, destination, message).await,
    }
}

/// A channel whose credential was dropped by a destination change sends nothing (not even without it).
fn credential_cleared(destination: &Destination<'_>) -> SendError {
    SendError::permanent(
        "credential_cleared",
        format!(
            "credential {} cleared when the destination changed; set it again (PATCH /api/v1/channels/{} with \
             the settings) or remove it with null",
            destination.secrets_cleared.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
            destination.channel_id
        ),
    )
}

/// A short stable id from a key (for Message-ID, client_msg_id, webhook-id).
pub(crate) fn short_id(key: &str) -> String {
    hex::encode(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes()).as_ref()[..16])
}
