//! Chat robots: WeCom (markdown; plain text with mentions when urgent), DingTalk (markdown, 加签 in the query),
//! Feishu/Lark (rich `post`, signature in the body — not DingTalk's scheme). All answer errors with HTTP 200 and a
//! code in the body, so the body decides.

use std::time::Duration;

use protocols::{dingtalk as dingtalk_sign, feishu as feishu_sign};
use serde_json::{Value, json};

use super::{Destination, SendError, Sent, missing, post_json};
use crate::notify::Message;
use crate::state::AppState;

/// Bytes of message text in one Feishu post, leaving room for the JSON around it under the 20 KB limit.
const FEISHU_TEXT_BUDGET: usize = 12_000;

fn strings(value: &Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// Cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Markdown from a message: the subject in bold, the body as quoted lines.
fn markdown(message: &Message) -> String {
    let body: Vec<String> = message
        .text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("> {}", inert_markdown(l)))
        .collect();
    format!("**{}**\n{}", inert_markdown(&message.subject), body.join("\n"))
}

/// Complaint text is written by consumers: it must not become a link, an image or a `<font>`/`<@user>` tag in an
/// ops group. The robots' markdown has no escape character, so the markup characters become their full-width
/// look-alikes; URLs (which contain none of them) stay clickable.
fn inert_markdown(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '[' => '［',
            ']' => '］',
            '<' => '＜',
            '>' => '＞',
            '`' => '｀',
            c => c,
        })
        .collect()
}

async fn answer(state: &AppState, url: &str, body: &Value, code_field: &str) -> Result<(i64, String), SendError> {
    let (status, headers, text) = post_json(state, url, body).await?;
    if !(200..300).contains(&status) {
        return Err(super::http_status(status, &text, super::retry_after(&headers)));
    }
    let parsed: Value = serde_json::from_str(&text).map_err(|_| SendError::transient("answer", text.clone()))?;
    Ok((parsed[code_field].as_i64().unwrap_or(-1), text))
}

pub async fn wecom(state: &AppState, destination: &Destination<'_>, message: &Message) -> Result<Sent, SendError> {
    let key = destination.secret("webhook_key").ok_or_else(|| missing("webhook_key"))?;
    let base = state.config().notify.wecom_base.as_str().trim_end_matches('/').to_owned();
    let mentioned = strings(&destination.settings["mentioned_list"]);
    let mobiles = strings(&destination.settings["mentioned_mobile_list"]);
    // Markdown cannot mention people; urgent messages with mentions go as text.
    let body = if message.urgent && !(mentioned.is_empty() && mobiles.is_empty()) {
        json!({"msgtype": "text", "text": {"content": cut(&message.text, 2048), "mentioned_list": mentioned, "mentioned_mobile_list": mobiles}})
    } else {
        json!({"msgtype": "markdown", "markdown": {"content": cut(&markdown(message), 4096)}})
    };
    let url = format!(
        "{base}/cgi-bin/webhook/send?key={}",
        url::form_urlencoded::byte_serialize(key.as_bytes()).collect::<String>()
    );
    let (code, text) = answer(state, &url, &body, "errcode").await?;
    match code {
        0 => Ok(Sent { code: "0".into(), external_id: None, answer: text }),
        // 20 a minute: WeCom asks for a pause of about a minute.
        45009 => Err(SendError::Transient {
            code: code.to_string(),
            message: text,
            retry_after: Some(Duration::from_secs(65)),
        }),
        -1 => Err(SendError::transient(code.to_string(), text)),
        _ => Err(SendError::permanent(code.to_string(), text)),
    }
}

pub async fn dingtalk(state: &AppState, destination: &Destination<'_>, message: &Message) -> Result<Sent, SendError> {
    let token = destination.secret("access_token").ok_or_else(|| missing("access_token"))?;
    let base = state.config().notify.dingtalk_base.as_str().trim_end_matches('/').to_owned();
    let mut url = format!(
        "{base}/robot/send?access_token={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    if let Some(secret) = destination.secret("secret") {
        url.push_str(&dingtalk_sign::query_suffix(secret, time::OffsetDateTime::now_utc().unix_timestamp() * 1000));
    }
    let mobiles = if message.urgent { strings(&destination.settings["at_mobiles"]) } else { Vec::new() };
    let at_all = message.urgent && destination.settings["at_all"].as_bool().unwrap_or(false);
    // DingTalk renders a mention only when the `@mobile` also appears in the text.
    let mentions: String = mobiles.iter().map(|m| format!(" @{m}")).collect();
    let body = json!({
        "msgtype": "markdown",
        "markdown": {"title": message.subject, "text": cut(&format!("{}{mentions}", markdown(message)), 19_000)},
        "at": {"atMobiles": mobiles, "isAtAll": at_all},
    });
    let (code, text) = answer(state, &url, &body, "errcode").await?;
    match code {
        0 => Ok(Sent { code: "0".into(), external_id: None, answer: text }),
        // Over 20 a minute DingTalk throttles the robot for ten minutes.
        130101 | 410100 => Err(SendError::Transient {
            code: code.to_string(),
            message: text,
            retry_after: Some(Duration::from_secs(600)),
        }),
        -1 => Err(SendError::transient(code.to_string(), text)),
        _ => Err(SendError::permanent(code.to_string(), text)),
    }
}

pub async fn feishu(state: &AppState, destination: &Destination<'_>, message: &Message) -> Result<Sent, SendError> {
    let token = destination.secret("hook_token").ok_or_else(|| missing("hook_token"))?;
    let notify = &state.config().notify;
    let base = if destination.setting("domain") == Some("lark") { &notify.lark_base } else { &notify.feishu_base };
    let url = format!("{}/open-apis/bot/v2/hook/{token}", base.as_str().trim_end_matches('/'));
    // Feishu refuses bodies over 20 KB (9499): a long digest is cut, with a pointer to the console.
    let mut budget = FEISHU_TEXT_BUDGET;
    let mut lines: Vec<Value> = Vec::new();
    for line in message.text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        if line.len() > budget {
            lines.push(json!([{"tag": "text", "text": "…"}]));
            break;
        }
        budget -= line.len();
        lines.push(json!([{"tag": "text", "text": line}]));
    }
    if let Some(link) = &message.link {
        lines.push(json!([{"tag": "a", "text": link, "href": link}]));
    }
    if message.urgent {
        let mentions: Vec<Value> = strings(&destination.settings["at_user_ids"])
            .iter()
            .map(|id| json!({"tag": "at", "user_id": id}))
            .collect();
        if !mentions.is_empty() {
            lines.push(Value::Array(mentions));
        }
    }
    let mut body =
        json!({"msg_type": "post", "content": {"post": {"zh_cn": {"title": message.subject, "content": lines}}}});
    if let Some(secret) = destination.secret("secret") {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        body["timestamp"] = json!(now.to_string());
        body["sign"] = json!(feishu_sign::sign(secret, now));
    }
    let (code, text) = answer(state, &url, &body, "code").await?;
    match code {
        0 => Ok(Sent { code: "0".into(), external_id: None, answer: text }),
        11232 => Err(SendError::Transient {
            code: code.to_string(),
            message: text,
            retry_after: Some(Duration::from_secs(60)),
        }),
        _ => Err(SendError::permanent(code.to_string(), text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_text_cannot_add_links_images_or_mentions() {
        let message = Message {
            event_kind: "complaint_created".into(),
            subject: "【新投诉】店".into(),
            text: "【新投诉】店\n投诉内容：![x](https://evil.example/a.png) [点我](https://evil.example) <@all> <font color=\"warning\">\n查看详情：https://risk.example.com/c/1".into(),
            html: String::new(),
            fields: Default::default(),
            link: None,
            urgent: false,
        };
        let md = markdown(&message);
        assert!(!md.contains("](") && !md.contains("<@") && !md.contains("<font"), "{md}");
        assert!(md.contains("> 查看详情：https://risk.example.com/c/1"), "{md}");
        assert_eq!(cut("一二三四", 7), "一…");
    }
}
