//! Official-account template messages. The access token comes from `stable_token` (which never invalidates
//! tokens other instances hold), cached per appid in the database for every instance; a token WeChat refuses
//! (40001, 40014, 42001) is fetched again once and the send retried once.

use std::time::Duration;

use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::{Destination, SendError, Sent, missing, post_json, short_id};
use crate::notify::Message;
use crate::state::AppState;
use crate::store::oa_tokens;
use crate::store::secrets::OA_ACCESS_TOKEN;

/// Fetch a new token when the cached one has less than this left (WeChat rolls stable tokens 5 minutes early).
const REFRESH_MARGIN_MS: i64 = 300_000;

fn base(state: &AppState) -> String {
    state.config().notify.wechat_api_base.as_str().trim_end_matches('/').to_owned()
}

async fn cached_token(state: &AppState, appid: &str) -> Result<Option<(String, String)>, SendError> {
    let mut conn = state.store().conn().await.map_err(|e| SendError::transient("database", e.to_string()))?;
    let Some((sealed, expires_at)) =
        oa_tokens::get(&mut conn, appid).await.map_err(|e| SendError::transient("database", e.to_string()))?
    else {
        return Ok(None);
    };
    if expires_at - state.now_ms() < REFRESH_MARGIN_MS {
        return Ok(None);
    }
    match state.keyring().open_string(&OA_ACCESS_TOKEN.keyed(appid), &sealed) {
        Ok(token) => Ok(Some((token.expose_secret().to_owned(), sealed))),
        Err(_) => Ok(None),
    }
}

async fn fetch_token(state: &AppState, appid: &str, secret: &str) -> Result<(String, String), SendError> {
    let body = json!({"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": false});
    let (status, _, text) = post_json(state, &format!("{}/cgi-bin/stable_token", base(state)), &body).await?;
    if status >= 400 {
        return Err(super::http_status(status, &text, None));
    }
    let answer: Value = serde_json::from_str(&text).map_err(|_| SendError::transient("answer", text.clone()))?;
    let Some(token) = answer["access_token"].as_str() else {
        return Err(classify(answer["errcode"].as_i64().unwrap_or(-1), &text));
    };
    let expires_in = answer["expires_in"].as_i64().unwrap_or(7200);
    let now = state.now_ms();
    let sealed = state
        .keyring()
        .seal(&OA_ACCESS_TOKEN.keyed(appid), token.as_bytes())
        .map_err(|e| SendError::transient("seal", e.to_string()))?;
    let mut conn = state.store().conn().await.map_err(|e| SendError::transient("database", e.to_string()))?;
    oa_tokens::put(&mut conn, appid, &sealed, now + expires_in * 1000, now)
        .await
        .map_err(|e| SendError::transient("database", e.to_string()))?;
    Ok((token.to_owned(), sealed))
}

/// WeChat's error codes: transient, or a configuration to fix.
fn classify(errcode: i64, answer: &str) -> SendError {
    let code = errcode.to_string();
    match errcode {
        -1 | 45011 => {
            SendError::Transient { code, message: answer.to_owned(), retry_after: Some(Duration::from_secs(60)) }
        }
        // The day's quota: try again in an hour (it resets at midnight).
        45009 => {
            SendError::Transient { code, message: answer.to_owned(), retry_after: Some(Duration::from_secs(3600)) }
        }
        _ => SendError::permanent(code, answer),
    }
}

/// Fit a value to a template keyword's type (2023 rules): `thing` ≤20 characters, `character_string` ≤32 without
/// CJK, `phrase` ≤5 Chinese characters, `time` as `2026年11月27日 15:01`, no line breaks anywhere.
pub fn fit(keyword: &str, value: &str) -> String {
    let kind = keyword.trim_end_matches(|c: char| c.is_ascii_digit());
    let single_line: String = value.replace(['\n', '\r'], " ");
    let take = |text: &str, n: usize| text.chars().take(n).collect::<String>();
    let is_cjk = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c);
    match kind {
        "character_string" => take(&single_line.chars().filter(char::is_ascii_graphic).collect::<String>(), 32),
        "number" => take(&single_line.chars().filter(|c| c.is_ascii_digit() || *c == '.').collect::<String>(), 32),
        "letter" => take(&single_line.chars().filter(char::is_ascii_alphabetic).collect::<String>(), 32),
        "symbol" => take(&single_line, 5),
        "phrase" => take(&single_line.chars().filter(|c| is_cjk(*c)).collect::<String>(), 5),
        "phone_number" => {
            take(&single_line.chars().filter(|c| c.is_ascii_digit() || "+-".contains(*c)).collect::<String>(), 17)
        }
        "car_number" => take(&single_line, 8),
        "name" => take(&single_line, 10),
        "time" | "date" => {
            // `2026-11-27 15:01` → `2026年11月27日 15:01`
            let parts: Vec<&str> = single_line.splitn(2, ' ').collect();
            let ymd: Vec<&str> = parts[0].split('-').collect();
            if ymd.len() == 3 {
                let date =
                    format!("{}年{}月{}日", ymd[0], ymd[1].trim_start_matches('0'), ymd[2].trim_start_matches('0'));
                parts.get(1).map(|t| format!("{date} {t}")).unwrap_or(date)
            } else {
                take(&single_line, 40)
            }
        }
        _ => take(&single_line, 20),
    }
}

fn message_body(destination: &Destination<'_>, message: &Message) -> Result<Value, SendError> {
    let template_id = destination.setting("template_id").ok_or_else(|| missing("template_id"))?;
    let field_map =
        destination.settings["field_map"].as_object().filter(|m| !m.is_empty()).ok_or_else(|| missing("field_map"))?;
    let mut data = serde_json::Map::new();
    for (keyword, field) in field_map {
        let value = field.as_str().and_then(|f| message.fields.get(f)).map(String::as_str).unwrap_or("-");
        data.insert(keyword.clone(), json!({"value": fit(keyword, value)}));
    }
    let mut body = json!({
        "touser": destination.recipient,
        "template_id": template_id,
        "data": data,
        // WeChat sends one message per openid and client_msg_id within ten minutes.
        "client_msg_id": short_id(destination.idempotency_key),
    });
    if let Some(url) = destination.setting("url").map(str::to_owned).or_else(|| message.link.clone()) {
        body["url"] = json!(url);
    }
    Ok(body)
}

pub async fn send(state: &AppState, destination: &Destination<'_>, message: &Message) -> Result<Sent, SendError> {
    let appid = destination.setting("appid").ok_or_else(|| missing("appid"))?;
    let secret = destination.secret("secret").ok_or_else(|| missing("secret"))?;
    let body = message_body(destination, message)?;
    let (mut token, mut sealed) = match cached_token(state, appid).await? {
        Some(cached) => cached,
        None => fetch_token(state, appid, secret).await?,
    };
    for try_number in 0..2 {
        let url = format!("{}/cgi-bin/message/template/send?access_token={token}", base(state));
        let (status, _, text) = post_json(state, &url, &body).await?;
        if status >= 400 {
            return Err(super::http_status(status, &text, None));
        }
        let answer: Value = serde_json::from_str(&text).map_err(|_| SendError::transient("answer", text.clone()))?;
        let errcode = answer["errcode"].as_i64().unwrap_or(-1);
        match errcode {
            0 => {
                let msgid = answer["msgid"].as_i64().map(|m| m.to_string());
                return Ok(Sent { code: "0".into(), external_id: msgid, answer: text });
            }
            40001 | 40014 | 42001 if try_number == 0 => {
                // Refused token: forget it, fetch a new one, try once more.
                if let Ok(mut conn) = state.store().conn().await {
                    let _ = oa_tokens::forget(&mut conn, appid, &sealed).await;
                }
                (token, sealed) = fetch_token(state, appid, secret).await?;
            }
            _ => return Err(classify(errcode, &text)),
        }
    }
    Err(SendError::transient("token", "the new access token was refused too"))
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn values_fit_their_keywords() {
        assert_eq!(
            fit("thing1", "一号店收到一条新的消费者投诉请尽快处理谢谢配合"),
            "一号店收到一条新的消费者投诉请尽快处理谢"
        );
        assert_eq!(fit("thing1", "two\nlines"), "two lines");
        assert_eq!(fit("character_string2", "投诉200201820200101080076610000"), "200201820200101080076610000");
        assert_eq!(fit("time3", "2026-11-27 15:01"), "2026年11月27日 15:01");
        assert_eq!(fit("phrase4", "新投诉 New"), "新投诉");
        assert_eq!(fit("amount5", "¥9.90"), "¥9.90");
    }
}
