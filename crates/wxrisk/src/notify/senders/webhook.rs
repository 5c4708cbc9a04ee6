//! A signed webhook (Standard Webhooks v1) to a provider's own system: JSON `{type, timestamp, data}`, with a
//! `webhook-id` that stays the same across retries so the receiver can deduplicate. The URL comes from channel
//! settings, so it goes through the destination guard (`notify::destinations`): a literal address is checked
//! here, a name (`localhost` included) by the guarded client's resolver, on the addresses it connects to.

use protocols::standard_webhooks;
use serde_json::json;

use super::{Destination, SendError, Sent, http_failure, missing, short_id};
use crate::notify::Message;
use crate::state::AppState;

pub async fn send(state: &AppState, destination: &Destination<'_>, message: &Message) -> Result<Sent, SendError> {
    let url = destination.setting("url").ok_or_else(|| missing("url"))?;
    let parsed = url::Url::parse(url).map_err(|e| SendError::permanent("config", format!("url: {e}")))?;
    crate::notify::destinations::check_url_address(&parsed, state.config().notify.allow_private_destinations)
        .map_err(|e| super::refused(&e))?;
    let secret = destination.secret("secret").ok_or_else(|| missing("secret"))?;
    let id = format!("msg_{}", short_id(destination.idempotency_key));
    let now = time::OffsetDateTime::now_utc();
    let body = json!({
        "type": message.event_kind.replacen('_', ".", 1),
        "timestamp": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "data": {"subject": message.subject, "text": message.text, "fields": message.fields, "link": message.link, "urgent": message.urgent},
    })
    .to_string();
    let signature = standard_webhooks::sign(secret, &id, now.unix_timestamp(), body.as_bytes())
        .map_err(|e| SendError::permanent("config", e.to_string()))?;
    let response = state
        .guarded_http()
        .post(parsed)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", now.unix_timestamp().to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(http_failure)?;
    let status = response.status().as_u16();
    let retry_after = super::retry_after(response.headers());
    let text = super::read_answer(response).await.unwrap_or_default();
    match status {
        200..=299 => Ok(Sent { code: status.to_string(), external_id: Some(id), answer: text }),
        // Redirects are not followed: the configured URL is wrong.
        300..=399 => {
            Err(SendError::permanent(status.to_string(), format!("redirected; configure the final URL ({text})")))
        }
        _ => Err(super::http_status(status, &text, retry_after)),
    }
}
