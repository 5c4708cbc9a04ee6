//! Notifications: from an event to a message on every channel that should hear of it.
//!
//! Contract: [`enqueue`] runs inside the transaction of the write that causes the event. It renders the message
//! once per language, and creates one delivery — carried by one `notify` job with the dedupe key
//! `notify:{event key}:{channel}:{recipient}` — per channel and recipient: the provider's own channels, and the
//! sub-merchant's when the sub-merchant is registered (a disabled sub-merchant: nobody is notified on its behalf).
//! The job worker sends them ([`handler`]), within each destination's rate limit, folding waiting messages for
//! the same recipient into one digest, and records every attempt.

pub mod destinations;
pub mod handler;
pub mod limits;
pub mod message;
pub mod senders;

use serde_json::Value;
use sqlx::AnyConnection;

pub use message::{EventKind, Locale, Message};

use crate::domain::channel::ChannelKind;
use crate::state::AppState;
use crate::store::channels::{self, ChannelFilter};
use crate::store::deliveries::{self, NewDelivery};
use crate::store::jobs::{self, NewJob};
use crate::store::{Page, StoreError, StoreResult, merchants, providers, templates};

/// The job kind that sends one delivery.
pub const JOB_KIND: &str = "notify";

/// Something to tell people about.
#[derive(Debug, Clone)]
pub struct NotificationEvent {
    pub kind: EventKind,
    /// Unique for what happened (`complaint:{id}:{notification id}`); a second enqueue of the same key is a no-op.
    pub key: String,
    pub provider_id: i64,
    /// The sub-merchant concerned, if any.
    pub merchant_mchid: Option<String>,
    /// Tell the sub-merchant's own channels too (not for the provider's internal events).
    pub to_merchant: bool,
    /// Template data (see `message::facts` for the fields used): `merchant`, `complaint`, `refund`, `violation`,
    /// `job`, `actions`, `time_ms`, and `link_path` (the console page, joined to the public URL).
    pub data: Value,
}

/// Who receives a channel's messages: one delivery each.
pub fn recipients(kind: ChannelKind, settings: &Value) -> Vec<String> {
    let list = |key: &str| -> Vec<String> {
        settings[key]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    match kind {
        // One message to every address; one SMS or template message per phone number or follower.
        ChannelKind::WechatTemplate => list("openids"),
        ChannelKind::TencentSms => list("phone_numbers"),
        ChannelKind::Email
        | ChannelKind::WecomRobot
        | ChannelKind::DingtalkRobot
        | ChannelKind::FeishuRobot
        | ChannelKind::Webhook => vec!["*".to_owned()],
    }
}

/// Create the deliveries for an event; returns their ids (empty when nobody is to be told, or when the event was
/// enqueued before).
pub async fn enqueue(conn: &mut AnyConnection, state: &AppState, event: &NotificationEvent) -> StoreResult<Vec<i64>> {
    let now = state.now_ms();
    let provider = providers::get(conn, event.provider_id).await?.ok_or(StoreError::NotFound("provider"))?;
    let merchant = match &event.merchant_mchid {
        Some(mchid) => merchants::find_by_mchid(conn, Some(provider.id), mchid).await?.into_iter().next(),
        None => None,
    };
    if merchant.as_ref().is_some_and(|m| !m.enabled) && event.kind != EventKind::JobDead {
        tracing::info!(
            provider_id = provider.id,
            mchid = event.merchant_mchid.as_deref(),
            kind = event.kind.as_str(),
            "sub-merchant disabled: nobody notified"
        );
        return Ok(Vec::new());
    }
    let mut channels = channels::list(
        conn,
        &ChannelFilter { provider_id: Some(provider.id), provider_only: true, ..ChannelFilter::default() },
        Page { after_id: 0, limit: 1000 },
    )
    .await?;
    if let Some(merchant) = merchant.as_ref().filter(|_| event.to_merchant) {
        let filter = ChannelFilter { merchant_id: Some(merchant.id), ..ChannelFilter::default() };
        channels.extend(channels::list(conn, &filter, Page { after_id: 0, limit: 1000 }).await?);
    }
    channels.retain(|c| c.enabled);
    if channels.is_empty() {
        return Ok(Vec::new());
    }

    let locale = Locale::parse(&provider.locale);
    let overrides = templates::get(conn, provider.id, event.kind.as_str(), locale.as_str())
        .await?
        .map(|t| message::Templates { subject: t.subject, text: t.text_body, html: t.html_body });
    let mut data = event.data.clone();
    data["provider"] = serde_json::json!({"id": provider.id, "name": provider.name, "mchid": provider.mchid});
    if data["merchant"].is_null()
        && let Some(mchid) = &event.merchant_mchid
    {
        data["merchant"] = serde_json::json!({"mchid": mchid, "name": merchant.as_ref().map(|m| m.name.clone())});
    }
    let link = match (state.config().public_base(), data["link_path"].as_str()) {
        (Some(base), Some(path)) => Some(format!("{base}{path}")),
        _ => None,
    };
    let rendered = match message::render(event.kind, locale, &data, link.clone(), now, overrides.as_ref()) {
        Ok(message) => message,
        // A broken provider template must not lose the notification: fall back to the built-in one.
        Err(error) => {
            tracing::warn!(provider_id = provider.id, %error, "provider template failed; using the built-in one");
            message::render(event.kind, locale, &data, link, now, None)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
        }
    };
    let message_json = serde_json::to_string(&rendered).map_err(|e| StoreError::Corrupt(e.to_string()))?;

    let mut created = Vec::new();
    for channel in &channels {
        let Some(kind) = ChannelKind::parse(&channel.kind) else { continue };
        let settings: Value = serde_json::from_str(&channel.settings).unwrap_or(Value::Null);
        for recipient in recipients(kind, &settings) {
            let job = NewJob {
                kind: JOB_KIND.to_owned(),
                dedupe_key: format!("notify:{}:{}:{recipient}", event.key, channel.id),
                payload: serde_json::json!({"event_key": event.key, "channel_id": channel.id, "recipient": recipient}),
                provider_id: Some(provider.id),
                run_at: now,
            };
            let Some(job_id) = jobs::enqueue(conn, &job, now).await? else { continue };
            let delivery = NewDelivery {
                job_id,
                provider_id: provider.id,
                channel_id: channel.id,
                channel_kind: kind.as_str(),
                recipient: &recipient,
                event_kind: event.kind.as_str(),
                event_key: &event.key,
                subject: &rendered.subject,
                message: &message_json,
                locale: locale.as_str(),
            };
            created.push(deliveries::insert(conn, &delivery, now).await?);
        }
    }
    if !created.is_empty() {
        state.job_wakeup().notify_waiters();
    }
    Ok(created)
}

/// Console pages that notifications link to (joined to `WXRISK_PUBLIC_URL`).
pub mod links {
    pub fn complaint(provider_id: i64, complaint_id: &str) -> String {
        format!("/console/providers/{provider_id}/complaints/{complaint_id}")
    }

    pub fn violation(provider_id: i64, record_id: &str) -> String {
        format!("/console/providers/{provider_id}/violations/{record_id}")
    }

    pub fn merchant_risk(provider_id: i64, mchid: &str) -> String {
        format!("/console/providers/{provider_id}/merchants/{mchid}/risk")
    }

    /// The provider's complaints from before its automation start.
    pub fn historical_complaints(provider_id: i64) -> String {
        format!("/console/providers/{provider_id}/complaints?historical=true")
    }

    pub fn job(job_id: i64) -> String {
        format!("/console/jobs/{job_id}")
    }

    pub fn provider(provider_id: i64) -> String {
        format!("/console/providers/{provider_id}")
    }
}

/// Tell the provider that one of its jobs (a reply, a refund …) is dead, inside the transaction that marks it so.
/// Not for `notify` jobs: a notification that cannot be delivered shows as a dead delivery instead of causing more
/// notifications (which could fail the same way, in a loop).
pub async fn alert_dead_job(
    conn: &mut AnyConnection,
    state: &AppState,
    job: &jobs::JobRow,
    record: &crate::jobs::AttemptRecord,
) -> StoreResult<()> {
    let Some(provider_id) = job.provider_id else { return Ok(()) };
    if job.kind == JOB_KIND {
        return Ok(());
    }
    // Kinds with an alert of their own (a refund that cannot be made is a refund failure).
    if crate::workflow::effects::on_dead(conn, state, job).await? {
        return Ok(());
    }
    let error =
        [record.code.as_deref(), record.message.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(": ");
    let event = NotificationEvent {
        kind: EventKind::JobDead,
        key: format!("job:{}:dead:{}", job.id, job.attempts),
        provider_id,
        merchant_mchid: None,
        to_merchant: false,
        data: serde_json::json!({
            "job": {"id": job.id, "kind": job.kind, "error": error, "attempts": job.attempts},
            "time_ms": state.now_ms(),
            "link_path": links::job(job.id),
        }),
    };
    match enqueue(conn, state, &event).await {
        Ok(_) => Ok(()),
        // The provider was deleted meanwhile: nobody to tell.
        Err(StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What a test send got back.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TestSendOut {
    pub ok: bool,
    pub recipient: String,
    /// The service's code (`250`, `0`, `Ok`, `535` …).
    pub code: String,
    /// The service's id for the message, when it gave one.
    pub external_id: Option<String>,
    /// Whether retrying could help (for failures).
    pub transient: bool,
    /// The answer as received, or the error: at most [`TEST_ANSWER_MAX_BYTES`] (2 KiB) of it, cut on a character
    /// boundary and then ending in `… [cut: N bytes in all]`.
    pub answer: String,
    /// Whether `answer` (or `external_id`) was cut.
    pub answer_truncated: bool,
}

/// The most of a service's answer a test send shows: enough to read an error, not a way to pull pages off a
/// server through wxrisk.
pub const TEST_ANSWER_MAX_BYTES: usize = 2048;

/// `text` cut to [`TEST_ANSWER_MAX_BYTES`] on a character boundary, saying so; and whether it was cut.
pub fn cut_answer(text: &str) -> (String, bool) {
    if text.len() <= TEST_ANSWER_MAX_BYTES {
        return (text.to_owned(), false);
    }
    let mut end = TEST_ANSWER_MAX_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}… [cut: {} bytes in all]", &text[..end], text.len()), true)
}

/// Send a sample message through a channel now (not through the queue) and report the answer verbatim.
pub async fn test_send(state: &AppState, channel: &channels::ChannelRow) -> Result<TestSendOut, String> {
    let kind = ChannelKind::parse(&channel.kind).ok_or("unknown channel kind")?;
    let settings: Value = serde_json::from_str(&channel.settings).map_err(|e| e.to_string())?;
    let secrets = handler::open_secrets(state, channel)?;
    let recipient = recipients(kind, &settings).into_iter().next().ok_or("the channel has no recipient")?;
    let locale = {
        let mut conn = state.store().conn().await.map_err(|e| e.to_string())?;
        let provider = providers::get(&mut conn, channel.provider_id).await.map_err(|e| e.to_string())?;
        Locale::parse(provider.as_ref().map_or("zh-CN", |p| p.locale.as_str()))
    };
    let now = state.now_ms();
    let mut data = message::sample_data(EventKind::ComplaintCreated, now);
    data["actions"] = serde_json::json!([match locale {
        Locale::Zh => "这是一条测试消息",
        Locale::En => "This is a test message",
    }]);
    let message = message::render(EventKind::ComplaintCreated, locale, &data, state.config().public_base(), now, None)
        .map_err(|e| e.to_string())?;
    let key = format!("test:{}:{now}", channel.id);
    let destination = senders::Destination {
        channel_id: channel.id,
        kind,
        settings: &settings,
        secrets: &secrets,
        secrets_cleared: &channel.secrets_cleared,
        recipient: &recipient,
        idempotency_key: &key,
        delivery_id: 0,
        attempt: 1,
    };
    Ok(match senders::send(state, &destination, &message).await {
        Ok(sent) => {
            let (answer, answer_cut) = cut_answer(&sent.answer);
            let external = sent.external_id.as_deref().map(cut_answer);
            let external_cut = external.as_ref().is_some_and(|(_, cut)| *cut);
            TestSendOut {
                ok: true,
                recipient,
                code: cut_answer(&sent.code).0,
                external_id: external.map(|(id, _)| id),
                transient: false,
                answer,
                answer_truncated: answer_cut || external_cut,
            }
        }
        Err(e) => {
            let transient = matches!(e, senders::SendError::Transient { .. });
            let (code, message) = match e {
                senders::SendError::Transient { code, message, .. }
                | senders::SendError::Permanent { code, message } => (code, message),
            };
            let (answer, answer_truncated) = cut_answer(&message);
            TestSendOut {
                ok: false,
                recipient,
                code: cut_answer(&code).0,
                external_id: None,
                transient,
                answer,
                answer_truncated,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_answers_are_cut_to_2_kib_on_a_character_boundary() {
        assert_eq!(cut_answer("short"), ("short".to_owned(), false));
        let long = "答".repeat(1000);
        let (cut, was_cut) = cut_answer(&long);
        assert!(was_cut);
        let kept = cut.split('…').next().expect("text");
        assert!(kept.len() <= TEST_ANSWER_MAX_BYTES && kept.len() > TEST_ANSWER_MAX_BYTES - 3, "{}", kept.len());
        assert!(kept.chars().all(|c| c == '答'));
        assert!(cut.ends_with("[cut: 3000 bytes in all]"), "{cut}");
        let exact = "a".repeat(TEST_ANSWER_MAX_BYTES);
        assert_eq!(cut_answer(&exact), (exact.clone(), false));
    }
}
