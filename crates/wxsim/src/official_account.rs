//! Simulated WeChat official-account API: access tokens (`cgi-bin/token`, `cgi-bin/stable_token`) and template
//! messages, with WeChat's `errcode`s and token semantics.
//!
//! Contract: a classic token call issues a new token and leaves the previous one valid five more minutes; a stable
//! token call returns the same token while it has more than five minutes left (`force_refresh` replaces it, at most
//! once per 30 s); the two kinds never invalidate each other. Template sends check the token (41001, 40001, 42001),
//! the recipient (43004), the template (40037) and each keyword value against its type (47003), and deduplicate by
//! `client_msg_id` for ten minutes.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Sim;
use crate::faults::ErrorCode;
use crate::state::OaAccount;

const TOKEN_LIFETIME_MS: i64 = 7_200_000;
const OVERLAP_MS: i64 = 300_000;
const DEDUPE_MS: i64 = 600_000;

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/cgi-bin/token", get(classic_token))
        .route("/cgi-bin/stable_token", post(stable_token))
        .route("/cgi-bin/message/template/send", post(send_template))
}

fn errcode(code: i64, message: &str) -> Response {
    let mut response = Json(json!({"errcode": code, "errmsg": message})).into_response();
    if code != 0 {
        response.extensions_mut().insert(ErrorCode(code.to_string()));
    }
    response
}

fn query(raw: Option<String>) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

fn new_token() -> String {
    format!("SIMTOKEN_{}", wechatpay::crypto::random_alphanumeric(100).unwrap_or_default())
}

/// Check the app id and secret; on success, the account.
fn account<'a>(
    accounts: &'a mut std::collections::HashMap<String, OaAccount>,
    appid: &str,
    secret: &str,
) -> Result<&'a mut OaAccount, Response> {
    let account = accounts.get_mut(appid).ok_or_else(|| errcode(40013, "invalid appid"))?;
    if account.secret != secret {
        return Err(errcode(40001, "invalid credential, access_token is invalid or not latest"));
    }
    Ok(account)
}

async fn classic_token(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery) -> Response {
    let params = query(raw);
    if params.get("grant_type").map(String::as_str) != Some("client_credential") {
        return errcode(40002, "invalid grant_type");
    }
    let now = sim.clock.now_ms();
    let mut state = sim.state();
    let account = match account(
        &mut state.oa,
        params.get("appid").map(String::as_str).unwrap_or_default(),
        params.get("secret").map(String::as_str).unwrap_or_default(),
    ) {
        Ok(a) => a,
        Err(e) => return e,
    };
    // The previous token keeps working for five minutes; older ones stop now.
    account.classic.retain(|(_, expires)| *expires > now);
    if let Some(last) = account.classic.last_mut() {
        last.1 = last.1.min(now + OVERLAP_MS);
    }
    let keep = account.classic.len().saturating_sub(1);
    account.classic.drain(..keep);
    let token = new_token();
    account.classic.push((token.clone(), now + TOKEN_LIFETIME_MS));
    Json(json!({"access_token": token, "expires_in": 7200})).into_response()
}

#[derive(Deserialize)]
struct StableIn {
    grant_type: String,
    appid: String,
    secret: String,
    #[serde(default)]
    force_refresh: bool,
}

async fn stable_token(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let Ok(input) = serde_json::from_slice::<StableIn>(&body) else {
        return errcode(47001, "data format error");
    };
    if input.grant_type != "client_credential" {
        return errcode(40002, "invalid grant_type");
    }
    let now = sim.clock.now_ms();
    let mut state = sim.state();
    let account = match account(&mut state.oa, &input.appid, &input.secret) {
        Ok(a) => a,
        Err(e) => return e,
    };
    account.stable.retain(|(_, expires)| *expires > now);
    let current = account.stable.last().cloned();
    let issued_recently = current.as_ref().is_some_and(|(_, expires)| expires - TOKEN_LIFETIME_MS > now - 30_000);
    let (token, expires) = match current {
        // Force: replace now (not more than once per 30 s), the old token stops.
        Some(_) if input.force_refresh && !issued_recently => {
            account.stable.clear();
            let token = (new_token(), now + TOKEN_LIFETIME_MS);
            account.stable.push(token.clone());
            token
        }
        // Normal: the same token while more than five minutes remain; then a new one, the old still valid.
        Some((token, expires)) if input.force_refresh || expires - now > OVERLAP_MS => (token, expires),
        _ => {
            let token = (new_token(), now + TOKEN_LIFETIME_MS);
            account.stable.push(token.clone());
            token
        }
    };
    Json(json!({"access_token": token, "expires_in": (expires - now) / 1000})).into_response()
}

/// Whether a keyword value fits its type (the prefix of the keyword name: `thing1` is a `thing`).
fn value_fits(keyword: &str, value: &str) -> bool {
    let kind = keyword.trim_end_matches(|c: char| c.is_ascii_digit());
    let chars = value.chars().count();
    if value.trim().is_empty() || value.contains(['\n', '\r']) {
        return false;
    }
    let is_cjk = |c: char| ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c);
    match kind {
        "thing" | "const" => chars <= 20,
        "number" => chars <= 32 && value.chars().all(|c| c.is_ascii_digit() || c == '.'),
        "letter" => chars <= 32 && value.chars().all(|c| c.is_ascii_alphabetic()),
        "symbol" => chars <= 5,
        "character_string" => chars <= 32 && value.chars().all(|c| c.is_ascii_graphic()),
        "time" | "date" => chars <= 40 && value.chars().any(|c| c.is_ascii_digit()),
        "amount" => {
            let digits = value.trim_start_matches(['¥', '￥', '$']).trim_end_matches('元');
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
            !whole.is_empty()
                && whole.len() <= 12
                && fraction.len() <= 2
                && whole.chars().all(|c| c.is_ascii_digit())
                && fraction.chars().all(|c| c.is_ascii_digit())
        }
        "phone_number" => chars <= 17 && value.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c)),
        "car_number" => chars <= 8,
        "phrase" => chars <= 5 && value.chars().all(is_cjk),
        "name" => {
            (chars <= 10 && value.chars().all(is_cjk))
                || (chars <= 20 && value.chars().all(|c| c.is_ascii_alphabetic() || c == ' '))
        }
        _ => chars <= 20,
    }
}

async fn send_template(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery, body: Bytes) -> Response {
    let Some(token) = query(raw).remove("access_token") else {
        return errcode(41001, "access_token missing");
    };
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return errcode(47001, "data format error");
    };
    let now = sim.clock.now_ms();
    let mut state = sim.state();
    let counter = state.next();
    let found = state.oa.iter_mut().find_map(|(appid, account)| {
        account
            .classic
            .iter()
            .chain(account.stable.iter())
            .find(|(t, _)| *t == token)
            .map(|(_, expires)| *expires)
            .map(|e| (appid.clone(), e))
    });
    let Some((appid, expires)) = found else {
        return errcode(40001, "invalid credential, access_token is invalid or not latest");
    };
    if expires <= now {
        return errcode(42001, "access_token expired");
    }
    let Some(account) = state.oa.get_mut(&appid) else { return errcode(-1, "system error") };
    let touser = message["touser"].as_str().unwrap_or_default().to_owned();
    if touser.is_empty() {
        return errcode(40003, "invalid openid");
    }
    if !account.followers.contains(&touser) {
        return errcode(43004, "require subscribe");
    }
    let template_id = message["template_id"].as_str().unwrap_or_default();
    let Some(keywords) = account.templates.get(template_id) else {
        return errcode(40037, "invalid template_id");
    };
    for keyword in keywords {
        let value = message["data"][keyword]["value"].as_str().unwrap_or_default();
        if !value_fits(keyword, value) {
            return errcode(47003, &format!("argument invalid! data.{keyword}.value invalid"));
        }
    }
    if let Some(client_msg_id) = message["client_msg_id"].as_str() {
        let key = (touser.clone(), client_msg_id.to_owned());
        if let Some((msgid, at)) = account.client_msg_ids.get(&key)
            && now - at < DEDUPE_MS
        {
            return Json(json!({"errcode": 0, "errmsg": "ok", "msgid": msgid})).into_response();
        }
        account.client_msg_ids.insert(key, (i64::try_from(counter).unwrap_or(0), now));
    }
    let msgid = i64::try_from(counter).unwrap_or(0);
    let mut recorded = message.clone();
    recorded["msgid"] = json!(msgid);
    recorded["appid"] = json!(appid);
    account.messages.push(recorded);
    Json(json!({"errcode": 0, "errmsg": "ok", "msgid": msgid})).into_response()
}

#[cfg(test)]
mod tests {
    use super::value_fits;

    #[test]
    fn keyword_types() {
        assert!(value_fits("thing1", "某某商户收到新投诉"));
        assert!(!value_fits("thing1", &"长".repeat(21)));
        assert!(!value_fits("thing1", "two\nlines"));
        assert!(value_fits("character_string2", "200201820200101080076610000"));
        assert!(!value_fits("character_string2", "投诉200201"));
        assert!(value_fits("amount3", "¥9.90"));
        assert!(value_fits("amount3", "9.90元"));
        assert!(!value_fits("amount3", "九块九"));
        assert!(value_fits("phrase4", "待处理"));
        assert!(!value_fits("phrase4", "待处理中的投诉"));
        assert!(value_fits("time5", "2026年11月27日 15:01"));
        assert!(!value_fits("time5", ""));
    }
}
