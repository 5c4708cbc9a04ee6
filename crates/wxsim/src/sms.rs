//! Simulated Tencent Cloud SMS, API 3.0 `SendSms` at `POST /`.
//!
//! Contract: the request must be TC3-HMAC-SHA256 signed by a known SecretId over the headers it names (at least
//! `content-type` and `host`, as received) and the exact body, within five minutes; errors come as
//! `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}` with HTTP 200, as Tencent does. The app id, sign
//! name, template and parameter count are checked; each number gets its own status in `SendStatusSet`, including
//! Tencent's default per-number limits (same content once per 30 s, ten a day).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Sim;
use crate::clock::{china_day, real_now_secs};
use crate::faults::ErrorCode;
use crate::state::SmsMessage;
use protocols::tc3::{self, Tc3Authorization, Tc3Request};

pub fn router() -> Router<Arc<Sim>> {
    Router::new().route("/", post(send_sms))
}

fn request_id() -> String {
    let hex = wechatpay::crypto::random_alphanumeric(32).unwrap_or_default().to_ascii_lowercase();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn failure(code: &str, message: &str) -> Response {
    let mut response =
        Json(json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id()}}))
            .into_response();
    response.extensions_mut().insert(ErrorCode(code.to_owned()));
    response
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendSmsIn {
    #[serde(default)]
    phone_number_set: Vec<String>,
    #[serde(default)]
    sms_sdk_app_id: String,
    #[serde(default)]
    template_id: String,
    #[serde(default)]
    sign_name: String,
    #[serde(default)]
    template_param_set: Vec<String>,
    #[serde(default)]
    session_context: String,
}

/// Check the TC3 signature; on success the SecretId.
fn authenticate(sim: &Sim, headers: &HeaderMap, body: &[u8]) -> Result<String, Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let auth = header("authorization")
        .and_then(|h| Tc3Authorization::parse(&h))
        .ok_or_else(|| failure("AuthFailure.InvalidAuthorization", "Authorization header is not TC3-HMAC-SHA256"))?;
    let timestamp: i64 = header("x-tc-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| failure("MissingParameter", "X-TC-Timestamp is missing"))?;
    if real_now_secs().abs_diff(timestamp) > 300 {
        return Err(failure(
            "AuthFailure.SignatureExpire",
            "the request timestamp is more than 5 minutes from server time",
        ));
    }
    let secret_key = sim
        .state()
        .sms_apps
        .values()
        .find(|app| app.secret_id == auth.secret_id)
        .map(|app| app.secret_key.clone())
        .ok_or_else(|| failure("AuthFailure.SecretIdNotFound", "the SecretId does not exist"))?;
    if !auth.signed_headers.iter().any(|h| h == "content-type") || !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(failure("AuthFailure.SignatureFailure", "SignedHeaders must include content-type and host"));
    }
    let mut signed: Vec<(String, String)> = Vec::new();
    for name in &auth.signed_headers {
        let value = header(name)
            .ok_or_else(|| failure("AuthFailure.SignatureFailure", &format!("signed header {name} is missing")))?;
        signed.push((name.clone(), value));
    }
    let pairs: Vec<(&str, &str)> = signed.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let expected = tc3::sign(
        &Tc3Request { method: "POST", query: "", headers: &pairs, body, service: "sms", timestamp },
        &secret_key,
    );
    let matches = auth.service == "sms"
        && auth.date == expected.date
        && protocols::same(auth.signature.as_bytes(), expected.signature.as_bytes());
    if !matches {
        return Err(failure(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        ));
    }
    Ok(auth.secret_id)
}

async fn send_sms(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if header("x-tc-action") != "SendSms" {
        return failure("InvalidAction", "this simulator serves SendSms only");
    }
    if header("x-tc-version") != "2021-01-11" {
        return failure("InvalidParameterValue", "X-TC-Version must be 2021-01-11");
    }
    if header("x-tc-region").is_empty() {
        return failure("MissingParameter", "X-TC-Region is required for SMS");
    }
    let secret_id = match authenticate(&sim, &headers, &body) {
        Ok(id) => id,
        Err(e) => return e,
    };
    let Ok(input) = serde_json::from_slice::<SendSmsIn>(&body) else {
        return failure("InvalidParameter", "the body is not valid JSON");
    };
    if input.phone_number_set.is_empty() {
        return failure("MissingParameter", "PhoneNumberSet is required");
    }
    if input.phone_number_set.len() > 200 {
        return failure("LimitExceeded.PhoneNumberCountLimit", "at most 200 numbers per request");
    }
    if input.session_context.len() >= 512 {
        return failure("InvalidParameterValue", "SessionContext must be shorter than 512 bytes");
    }
    let now = sim.clock.now_ms();
    let mut state = sim.state();
    let Some(app) = state.sms_apps.get(&input.sms_sdk_app_id).cloned() else {
        return failure("InvalidParameterValue.SdkAppIdNotExist", "SmsSdkAppId does not exist");
    };
    if app.secret_id != secret_id {
        return failure("UnauthorizedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId does not belong to this account");
    }
    if !app.sign_names.contains(&input.sign_name) {
        return failure("FailedOperation.SignatureIncorrectOrUnapproved", "the signature is not approved");
    }
    let Some(count) = app.templates.get(&input.template_id) else {
        return failure("FailedOperation.TemplateIncorrectOrUnapproved", "the template is not approved");
    };
    if *count != input.template_param_set.len() {
        return failure(
            "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
            "TemplateParamSet does not match the template",
        );
    }
    if input.template_param_set.iter().any(|p| p.chars().count() > app.param_max_chars) {
        return failure("InvalidParameterValue.TemplateParameterLengthLimit", "a template parameter is too long");
    }
    if input.template_param_set.iter().any(|p| p.contains("http://") || p.contains("https://") || p.contains("www.")) {
        return failure(
            "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
            "URLs are not allowed in template parameters",
        );
    }
    let mut statuses = Vec::new();
    for raw in &input.phone_number_set {
        let status = |code: &str, message: &str, serial: &str, fee: u32| json!({"SerialNo": serial, "PhoneNumber": raw, "Fee": fee, "SessionContext": input.session_context, "Code": code, "Message": message, "IsoCode": "CN"});
        let Some(number) = protocols::phone::e164(raw) else {
            statuses.push(status("InvalidParameterValue.IncorrectPhoneNumber", "incorrect phone number", "", 0));
            continue;
        };
        let sent: Vec<&SmsMessage> = state.sms_messages.iter().filter(|m| m.phone_number == number).collect();
        let same_content_recently = sent.iter().any(|m| {
            m.template_id == input.template_id && m.params == input.template_param_set && now - m.at_ms < 30_000
        });
        let today = sent.iter().filter(|m| china_day(m.at_ms) == china_day(now)).count();
        if same_content_recently {
            statuses.push(status(
                "LimitExceeded.PhoneNumberThirtySecondLimit",
                "the same content to this number within 30 seconds",
                "",
                0,
            ));
            continue;
        }
        if today >= 10 {
            statuses.push(status(
                "LimitExceeded.PhoneNumberDailyLimit",
                "this number has reached its daily limit",
                "",
                0,
            ));
            continue;
        }
        let serial = format!("2433:{:030}", state.next());
        state.sms_messages.push(SmsMessage {
            at_ms: now,
            sdk_app_id: input.sms_sdk_app_id.clone(),
            phone_number: number,
            sign_name: input.sign_name.clone(),
            template_id: input.template_id.clone(),
            params: input.template_param_set.clone(),
            session_context: input.session_context.clone(),
            serial_no: serial.clone(),
        });
        statuses.push(status("Ok", "send success", &serial, 1));
    }
    Json(json!({"Response": {"SendStatusSet": Value::Array(statuses), "RequestId": request_id()}})).into_response()
}
