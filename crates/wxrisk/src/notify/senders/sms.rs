//! Tencent Cloud SMS `SendSms` (API 3.0), TC3-HMAC-SHA256 signed, one number per delivery. Every element of
//! `SendStatusSet` is checked (Tencent answers per-number failures with HTTP 200), and `SessionContext` carries our
//! delivery id.

use std::time::Duration;

use protocols::tc3;
use serde_json::{Value, json};

use super::{Destination, SendError, Sent, http_failure, missing};
use crate::notify::Message;
use crate::state::AppState;

/// Tencent's default for new accounts: template parameters of at most six characters.
const DEFAULT_PARAM_CHARS: usize = 6;

fn request_level(code: &str, message: &str) -> SendError {
    let transient = code.starts_with("RequestLimitExceeded")
        || code.starts_with("InternalError")
        || code == "LimitExceeded.DeliveryFrequencyLimit";
    if transient {
        SendError::Transient {
            code: code.to_owned(),
            message: message.to_owned(),
            retry_after: Some(Duration::from_secs(30)),
        }
    } else {
        // AuthFailure.*, FailedOperation.*, InvalidParameter*, UnauthorizedOperation.*: fix the channel.
        SendError::permanent(code, message)
    }
}

fn params(destination: &Destination<'_>, message: &Message) -> Vec<String> {
    let max = destination.settings["param_max_chars"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(DEFAULT_PARAM_CHARS);
    let names: Vec<String> = destination.settings["template_params"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_else(|| vec!["event_label".into(), "merchant_name".into()]);
    names
        .iter()
        .map(|name| {
            let value = message.fields.get(name).map(String::as_str).unwrap_or("-");
            // Tencent refuses URLs in parameters; keep them short.
            value.replace("http://", "").replace("https://", "").chars().take(max).collect()
        })
        .collect()
}

pub async fn send(state: &AppState, destination: &Destination<'_>, message: &Message) -> Result<Sent, SendError> {
    let secret_id = destination.setting("secret_id").ok_or_else(|| missing("secret_id"))?;
    let secret_key = destination.secret("secret_key").ok_or_else(|| missing("secret_key"))?;
    let body = json!({
        "PhoneNumberSet": [destination.recipient],
        "SmsSdkAppId": destination.setting("sdk_app_id").ok_or_else(|| missing("sdk_app_id"))?,
        "TemplateId": destination.setting("template_id").ok_or_else(|| missing("template_id"))?,
        "SignName": destination.setting("sign_name").ok_or_else(|| missing("sign_name"))?,
        "TemplateParamSet": params(destination, message),
        "SessionContext": format!("wxrisk-delivery-{}", destination.delivery_id),
    })
    .to_string();
    let endpoint = &state.config().notify.tencent_sms_endpoint;
    let host = match endpoint.port() {
        Some(port) => format!("{}:{port}", endpoint.host_str().unwrap_or_default()),
        None => endpoint.host_str().unwrap_or_default().to_owned(),
    };
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let headers = [("content-type", "application/json"), ("host", host.as_str())];
    let signature = tc3::sign(
        &tc3::Tc3Request {
            method: "POST",
            query: "",
            headers: &headers,
            body: body.as_bytes(),
            service: "sms",
            timestamp,
        },
        secret_key,
    );
    let response = state
        .http()
        .post(endpoint.as_str())
        .header("content-type", "application/json")
        .header("authorization", tc3::authorization(secret_id, "sms", &signature))
        .header("x-tc-action", "SendSms")
        .header("x-tc-version", "2021-01-11")
        .header("x-tc-region", destination.setting("region").unwrap_or("ap-guangzhou"))
        .header("x-tc-timestamp", timestamp.to_string())
        .body(body)
        .send()
        .await
        .map_err(http_failure)?;
    let status = response.status().as_u16();
    let text = super::read_answer(response).await?;
    if status >= 400 {
        return Err(super::http_status(status, &text, None));
    }
    let answer: Value = serde_json::from_str(&text).map_err(|_| SendError::transient("answer", text.clone()))?;
    let reply = &answer["Response"];
    if let Some(error) = reply.get("Error") {
        return Err(request_level(
            error["Code"].as_str().unwrap_or("Unknown"),
            error["Message"].as_str().unwrap_or_default(),
        ));
    }
    let statuses = reply["SendStatusSet"].as_array().cloned().unwrap_or_default();
    let Some(number) = statuses.first() else {
        return Err(SendError::transient("answer", format!("no SendStatusSet in {text}")));
    };
    let code = number["Code"].as_str().unwrap_or_default();
    let serial = number["SerialNo"].as_str().map(str::to_owned).filter(|s| !s.is_empty());
    match code {
        "Ok" => Ok(Sent { code: code.to_owned(), external_id: serial, answer: text }),
        // After a lost answer a resend meets the 30-second rule: the first one most likely went out.
        "LimitExceeded.PhoneNumberThirtySecondLimit" if destination.attempt > 1 => Ok(Sent {
            code: format!("{code} (probably sent by the previous attempt)"),
            external_id: None,
            answer: text,
        }),
        "LimitExceeded.PhoneNumberThirtySecondLimit" => Err(SendError::Transient {
            code: code.to_owned(),
            message: text,
            retry_after: Some(Duration::from_secs(31)),
        }),
        "LimitExceeded.PhoneNumberDailyLimit" | "LimitExceeded.PhoneNumberOneHourLimit" => Err(SendError::Transient {
            code: code.to_owned(),
            message: text,
            retry_after: Some(Duration::from_secs(3600)),
        }),
        other => Err(request_level(other, &text)),
    }
}
