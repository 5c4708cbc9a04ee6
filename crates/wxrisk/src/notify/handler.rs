//! The `notify` job: send one delivery.
//!
//! Contract: a delivery waits (deferred, no attempt used) while its destination is at its rate limit; otherwise
//! it takes every other delivery still waiting for the same recipient into one digest, sends, and records the
//! answer. No database connection is held during the send. A webhook answering `410 Gone` disables its channel.
//! A send refused before anything went out — a credential cleared by a destination change, a destination the
//! guard refused — is permanent and written to the audit log as `channel.send_refused`.

use serde_json::{Map, Value};

use super::senders::{self, Destination, SendError, Sent};
use super::{Locale, Message, limits, message};
use crate::domain::channel::ChannelKind;
use crate::jobs::{AttemptRecord, BoxFuture, JobContext, JobFailure, JobHandler, JobResult};
use crate::state::AppState;
use crate::store::channels::{self, ChannelRow};
use crate::store::deliveries::{self, DeliveryRow};
use crate::store::secrets::CHANNEL_SECRETS;
use crate::store::{StoreError, audit};

#[derive(Debug, Default, Clone, Copy)]
pub struct NotifyHandler;

/// Codes of sends refused before anything went out, for the audit log.
pub const REFUSAL_CODES: &[&str] = &["credential_cleared", "destination_refused"];

impl JobHandler for NotifyHandler {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, JobResult> {
        Box::pin(deliver(ctx))
    }
}

fn store_failure(e: StoreError) -> JobFailure {
    JobFailure::retry(format!("database: {e}"))
}

/// A channel's secrets, opened.
pub fn open_secrets(state: &AppState, channel: &ChannelRow) -> Result<Map<String, Value>, String> {
    let Some(sealed) = &channel.secrets_sealed else { return Ok(Map::new()) };
    let plain = state.keyring().open(&CHANNEL_SECRETS.row(channel.id), sealed).map_err(|e| e.to_string())?;
    serde_json::from_slice(secrecy::ExposeSecret::expose_secret(&plain)).map_err(|e| e.to_string())
}

#[tracing::instrument(skip_all, fields(job_id = ctx.job.job.id, attempt = ctx.job.attempt))]
async fn deliver(ctx: &JobContext) -> JobResult {
    let state = &ctx.state;
    let now = state.now_ms();
    let mut conn = state.store().conn().await.map_err(store_failure)?;
    let delivery = deliveries::by_job(&mut conn, ctx.job.job.id)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| JobFailure::permanent("this notify job has no delivery"))?;
    let channel = channels::get(&mut conn, delivery.channel_id)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| JobFailure::permanent("the channel was deleted"))?;
    if !channel.enabled {
        return Err(JobFailure::permanent("the channel is disabled"));
    }
    let kind = ChannelKind::parse(&channel.kind)
        .ok_or_else(|| JobFailure::permanent(format!("unknown channel kind {}", channel.kind)))?;
    if let Some(until) =
        limits::next_free_slot(&mut conn, kind, channel.id, &delivery.recipient, now).await.map_err(store_failure)?
    {
        return Err(JobFailure::Defer { until });
    }

    drop(conn);

    // Everything else waiting for this recipient goes along, as one digest. One transaction: a member is either
    // still its own job or recorded in this delivery's digest, never neither. A member taken by an earlier attempt
    // of this job that crashed before sending is found again by `digest_members`.
    let mut tx = state.store().begin().await.map_err(store_failure)?;
    for waiting in
        deliveries::waiting_for(&mut tx, channel.id, &delivery.recipient, delivery.id).await.map_err(store_failure)?
    {
        deliveries::take_for_digest(&mut tx, &waiting, delivery.id, now).await.map_err(store_failure)?;
    }
    let members = deliveries::digest_members(&mut tx, delivery.id).await.map_err(store_failure)?;
    tx.commit().await.map_err(|e| store_failure(e.into()))?;
    let own: Message =
        serde_json::from_str(&delivery.message).map_err(|e| JobFailure::permanent(format!("stored message: {e}")))?;
    let message = if members.is_empty() {
        own
    } else {
        let mut all = vec![own];
        all.extend(members.iter().filter_map(|m| serde_json::from_str::<Message>(&m.message).ok()));
        message::digest(&all, Locale::parse(&delivery.locale))
    };

    let secrets = open_secrets(state, &channel).map_err(|e| JobFailure::permanent(format!("channel secrets: {e}")))?;
    let settings: Value = serde_json::from_str(&channel.settings).unwrap_or(Value::Null);
    let destination = Destination {
        channel_id: channel.id,
        kind,
        settings: &settings,
        secrets: &secrets,
        secrets_cleared: &channel.secrets_cleared,
        recipient: &delivery.recipient,
        idempotency_key: &ctx.job.job.dedupe_key,
        delivery_id: delivery.id,
        attempt: ctx.job.attempt,
    };
    let result = senders::send(state, &destination, &message).await;
    record(state, &delivery, &members, &channel, &result).await.map_err(store_failure)?;
    match result {
        Ok(sent) => Ok(AttemptRecord {
            http_status: None,
            code: Some(sent.code),
            message: Some(if members.is_empty() {
                message.subject
            } else {
                format!("digest of {} messages", members.len() + 1)
            }),
            body: Some(sent.answer),
            external_id: sent.external_id,
        }),
        Err(SendError::Transient { code, message, retry_after }) => Err(JobFailure::Retry {
            record: Box::new(AttemptRecord { code: Some(code), message: Some(message), ..AttemptRecord::default() }),
            retry_after,
        }),
        Err(SendError::Permanent { code, message }) => Err(JobFailure::Permanent {
            record: Box::new(AttemptRecord { code: Some(code), message: Some(message), ..AttemptRecord::default() }),
        }),
    }
}

async fn record(
    state: &AppState,
    delivery: &DeliveryRow,
    members: &[DeliveryRow],
    channel: &ChannelRow,
    result: &Result<Sent, SendError>,
) -> Result<(), StoreError> {
    let now = state.now_ms();
    let mut tx = state.store().begin().await?;
    let (code, external_id, delivered) = match result {
        Ok(sent) => (sent.code.clone(), sent.external_id.clone(), true),
        Err(e) => (e.code().to_owned(), None, false),
    };
    for id in std::iter::once(delivery.id).chain(members.iter().map(|m| m.id)) {
        deliveries::record_answer(&mut tx, id, Some(&code), external_id.as_deref(), delivered, now).await?;
    }
    if let Err(SendError::Permanent { code: refused, message }) = result
        && REFUSAL_CODES.contains(&refused.as_str())
    {
        audit::record(
            &mut tx,
            now,
            "system",
            "channel.send_refused",
            ("channel", &channel.id.to_string()),
            &serde_json::json!({"delivery_id": delivery.id, "code": refused, "reason": message}),
        )
        .await?;
    }
    if channel.kind == "webhook" && code == "410" {
        // 410 Gone: the receiver says it will never take these again.
        channels::disable(&mut tx, channel.id, now).await?;
        audit::record(
            &mut tx,
            now,
            "system",
            "channel.disable",
            ("channel", &channel.id.to_string()),
            &serde_json::json!({"reason": "410 Gone"}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
