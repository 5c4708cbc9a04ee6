//! The outside effects, one job each: reply, approve a refund request, refund, complete; and following a refund
//! to its end (queries, WeChat's refund notifications).
//!
//! Contract: no transaction is open during a call to WeChat Pay; what the call achieved is recorded (refund row,
//! complaint timeline) in one short transaction afterwards. A reply attempt after an uncertain one first reads the
//! negotiation history: if our text is there, the reply is done. A completion first reads the complaint's state
//! and, when its round refunds, that each order's newest refund was accepted. A refund is asked for with its stored
//! `out_refund_no` every time, so WeChat Pay makes it once; a refusal is believed only after WeChat Pay, asked about
//! that number, says it has no such refund (`FAILED`); otherwise the refund keeps its unknown or reported status.

use serde::Deserialize;
use serde_json::json;
use sqlx::AnyConnection;
use wechatpay::api::complaints::{
    Complaint, ImmediateServiceMessage, ImmediateServiceRequest, RefundProgressRequest, ResponseRequest,
};
use wechatpay::api::refunds::{RefundAmountRequest, RefundRequest};
use wechatpay::callback::RefundNotice;
use wechatpay::enums::{ComplaintState, OperateType, RefundStatus};

use super::complaints::{RefundAsk, create_refunds, enqueue_complete, refund_plan};
use super::{REFUND_QUERY, client_for, done, say, sqlx_failure, store_failure, wechat_failure};
use crate::jobs::{JobContext, JobFailure, JobResult};
use crate::notify::{self, EventKind, NotificationEvent};
use crate::state::AppState;
use crate::store::complaints as complaint_store;
use crate::store::jobs::{self as queue, NewJob};
use crate::store::providers;
use crate::store::refunds::{self, RefundRow, RefundUpdate};
use crate::store::{StoreError, StoreResult};

/// WeChat's limit is 200 characters in the merchant documents (500 in one partner document): 200 is safe.
const MAX_REPLY_CHARS: usize = wechatpay::api::complaints::MAX_RESPONSE_CHARS;

#[derive(Debug, Deserialize)]
struct ReplyPayload {
    provider_id: i64,
    complaint_id: String,
    sub_mchid: String,
    text: String,
    #[serde(default)]
    immediate: bool,
    idempotent_id: String,
}

/// The reply as WeChat will take it: no 4-byte characters, at most 200 characters.
pub fn fit_reply(text: &str) -> String {
    wechatpay::api::strip_four_byte_chars(text.trim()).chars().take(MAX_REPLY_CHARS).collect()
}

/// Record a step on the complaint's timeline in its own transaction (after an outside call).
async fn step(
    state: &AppState,
    provider_id: i64,
    complaint_id: &str,
    name: &str,
    outcome: &str,
    detail: serde_json::Value,
) -> Result<Option<i64>, JobFailure> {
    let now = state.now_ms();
    let mut conn = state.store().conn().await.map_err(store_failure)?;
    let Some(row) = complaint_store::get(&mut conn, provider_id, complaint_id).await.map_err(store_failure)? else {
        return Ok(None);
    };
    complaint_store::add_step(&mut conn, row.id, name, outcome, &detail, now).await.map_err(store_failure)?;
    Ok(Some(row.id))
}

pub async fn reply(ctx: &JobContext) -> JobResult {
    let p: ReplyPayload = ctx.payload()?;
    let state = &ctx.state;
    super::pace(ctx, p.provider_id, state.config().complaints.reply_per_minute).await?;
    let client = client_for(state, p.provider_id).await?;
    let text = fit_reply(&p.text);
    if text.is_empty() {
        step(state, p.provider_id, &p.complaint_id, "replied", "skipped", json!({"reason": "no reply text"})).await?;
        return done("no reply text configured: nothing sent");
    }
    if p.immediate {
        let request = ImmediateServiceRequest {
            complainted_mchid: p.sub_mchid.clone(),
            message: ImmediateServiceMessage::text(&text),
            idempotent_id: p.idempotent_id.clone(),
        };
        let log_id = client.respond_immediate_service(&p.complaint_id, &request).await.map_err(wechat_failure)?;
        record_reply(ctx, &p, &text, json!({"immediate_service": true, "log_id": log_id})).await?;
        return done(format!("replied through immediate service (log {log_id})"));
    }
    // An earlier attempt may have been answered after we gave up on it: look before replying twice.
    if ctx.job.attempt > 1 {
        let history = client.full_negotiation_history(&p.complaint_id).await.map_err(wechat_failure)?;
        let already = history
            .iter()
            .any(|h| h.operate_type == OperateType::MerchantResponse && h.operate_details.trim() == text.trim());
        if already {
            record_reply(ctx, &p, &text, json!({"found_in_history": true})).await?;
            return done("the reply was already in the negotiation history");
        }
    }
    client.respond(&p.complaint_id, &ResponseRequest::text(&p.sub_mchid, &text)).await.map_err(wechat_failure)?;
    record_reply(ctx, &p, &text, json!({})).await?;
    done(format!("replied to {}", p.complaint_id))
}

async fn record_reply(
    ctx: &JobContext,
    p: &ReplyPayload,
    text: &str,
    extra: serde_json::Value,
) -> Result<(), JobFailure> {
    let state = &ctx.state;
    let now = state.now_ms();
    let mut conn = state.store().conn().await.map_err(store_failure)?;
    if let Some(row) = complaint_store::get(&mut conn, p.provider_id, &p.complaint_id).await.map_err(store_failure)? {
        complaint_store::mark_replied(&mut conn, row.id, now).await.map_err(store_failure)?;
        let mut detail = json!({"text": text});
        if let (Some(d), Some(e)) = (detail.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        complaint_store::add_step(&mut conn, row.id, "replied", "ok", &detail, now).await.map_err(store_failure)?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct ComplaintPayload {
    provider_id: i64,
    complaint_id: String,
    #[serde(default)]
    sub_mchid: Option<String>,
    /// The dedupe key of the reply that must go out first (a completed complaint takes no reply).
    #[serde(default)]
    after_reply: Option<String>,
    /// The round refunds the complaint's orders: complete only once each has a refund WeChat Pay accepted.
    #[serde(default)]
    expects_refund: bool,
}

#[derive(Debug, Deserialize)]
struct RefundProgressPayload {
    provider_id: i64,
    complaint_id: String,
    /// `APPROVE` (default) or `REJECT` (an operator's decision).
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    reject_reason: Option<String>,
}

/// Decide a refund-request complaint: APPROVE (refund today) and then refund it, or REJECT with a reason.
pub async fn refund_progress(ctx: &JobContext) -> JobResult {
    let p: RefundProgressPayload = ctx.payload()?;
    let state = &ctx.state;
    let client = client_for(state, p.provider_id).await?;
    if p.action.as_deref() == Some("REJECT") {
        let request = RefundProgressRequest {
            action: "REJECT".into(),
            launch_refund_day: None,
            reject_reason: p.reject_reason.clone(),
            reject_media_list: Vec::new(),
            remark: None,
        };
        client.update_refund_progress(&p.complaint_id, &request).await.map_err(wechat_failure)?;
        step(state, p.provider_id, &p.complaint_id, "refund_rejected", "ok", json!({"reason": p.reject_reason}))
            .await?;
        return done("refund request rejected");
    }
    client.update_refund_progress(&p.complaint_id, &RefundProgressRequest::approve(0)).await.map_err(wechat_failure)?;
    // The refund needs the orders: read the detail fresh (it is also the state after approval).
    let detail = client.complaint(&p.complaint_id).await.map_err(wechat_failure)?;
    let now = state.now_ms();
    let mut tx = state.store().begin().await.map_err(store_failure)?;
    let planned = async {
        let provider = providers::get(&mut tx, p.provider_id).await?.ok_or(StoreError::NotFound("provider"))?;
        if let Some(row) = complaint_store::get(&mut tx, p.provider_id, &p.complaint_id).await? {
            complaint_store::add_step(&mut tx, row.id, "refund_approved", "ok", &json!({"launch_refund_day": 0}), now)
                .await?;
        }
        // WeChat completes a refund-request complaint itself once the money arrives: no completion here.
        let times = detail.user_complaint_times.unwrap_or(1);
        let ask = RefundAsk { requested_by: "auto", complete_after: false, additional: false };
        create_refunds(&mut tx, state, &provider, &detail, ask, times).await
    }
    .await
    .map_err(store_failure)?;
    tx.commit().await.map_err(sqlx_failure)?;
    state.job_wakeup().notify_waiters();
    done(format!("refund request approved; {} refund(s) queued", planned.created.len()))
}

#[derive(Debug, Deserialize)]
struct RefundPayload {
    provider_id: i64,
    out_refund_no: String,
    #[serde(default)]
    complete_after: bool,
    #[serde(default = "one")]
    times: i64,
}

fn one() -> i64 {
    1
}

/// Where WeChat Pay reports this provider's refund results.
fn notify_url(state: &AppState, provider: &providers::ProviderRow) -> Option<String> {
    provider
        .refund_notify_url
        .clone()
        .or_else(|| state.config().public_base().map(|base| format!("{base}/callbacks/{}/refunds", provider.id)))
}

pub async fn refund(ctx: &JobContext) -> JobResult {
    let p: RefundPayload = ctx.payload()?;
    let state = &ctx.state;
    let (provider, row) = {
        let mut conn = state.store().conn().await.map_err(store_failure)?;
        let provider = providers::get(&mut conn, p.provider_id)
            .await
            .map_err(store_failure)?
            .ok_or_else(|| JobFailure::permanent("the provider no longer exists"))?;
        let row = refunds::get(&mut conn, p.provider_id, &p.out_refund_no)
            .await
            .map_err(store_failure)?
            .ok_or_else(|| JobFailure::permanent(format!("no refund {}", p.out_refund_no)))?;
        (provider, row)
    };
    if matches!(row.status.as_str(), "SUCCESS" | "CLOSED" | "FAILED") {
        // Settled meanwhile (WeChat's notification came first, e.g. after this job's earlier attempt died): what
        // follows an accepted refund still follows.
        if row.status == "SUCCESS" && p.complete_after {
            let mut tx = state.store().begin().await.map_err(store_failure)?;
            complete_when_all_accepted(&mut tx, &row, p.times, state.now_ms()).await.map_err(store_failure)?;
            tx.commit().await.map_err(sqlx_failure)?;
            state.job_wakeup().notify_waiters();
        }
        return done(format!("refund {} already {}", row.out_refund_no, row.status));
    }
    let client = client_for(state, p.provider_id).await?;
    let request = RefundRequest {
        sub_mchid: row.sub_mchid.clone(),
        transaction_id: Some(row.transaction_id.clone()),
        out_trade_no: None,
        out_refund_no: row.out_refund_no.clone(),
        reason: Some(say(&provider.locale, "投诉退款", "complaint refund")),
        notify_url: notify_url(state, &provider),
        funds_account: None,
        amount: RefundAmountRequest::cny(row.amount, row.total),
    };
    let answer = match client.create_refund(&request).await {
        Ok(answer) => answer,
        Err(e) => {
            let failure = wechat_failure(e);
            let JobFailure::Permanent { record } = &failure else { return Err(failure) };
            // Refused for good (INVALID_REQUEST, USER_ACCOUNT_ABNORMAL …) — or so the answer says. An earlier attempt
            // of this job may have been made and its answer lost, and a refusal is no proof that no money moved:
            // only WeChat Pay's own "no such refund", or the refund's status, settles it.
            let error =
                format!("{}: {}", record.code.clone().unwrap_or_default(), record.message.clone().unwrap_or_default());
            match client.query_refund(&row.out_refund_no, &row.sub_mchid).await {
                Ok(found) => found,
                Err(query_error) if is_no_such_refund(&query_error) => {
                    mark_not_made(state, &row, &error).await?;
                    // The dead job alerts the provider (see `on_dead`).
                    return Err(failure);
                }
                Err(query_error) => {
                    // Not known either way: the refund stays REQUESTED (it keeps holding its order) and the job
                    // asks again later, with the same number. If the retries run out, `on_dead` alerts.
                    return Err(JobFailure::retry(format!(
                        "refused ({error}), and asking whether the refund exists failed too ({query_error}): \
                         outcome unknown"
                    )));
                }
            }
        }
    };
    let now = state.now_ms();
    let mut tx = state.store().begin().await.map_err(store_failure)?;
    let summary = record_answer(&mut tx, state, &row, &answer).await.map_err(store_failure)?;
    // Accepted (or already done): complete the complaint once every refund of it is accepted.
    if p.complete_after && matches!(answer.status, RefundStatus::Processing | RefundStatus::Success) {
        complete_when_all_accepted(&mut tx, &row, p.times, now).await.map_err(store_failure)?;
    }
    if answer.status == RefundStatus::Processing {
        enqueue_query(&mut tx, p.provider_id, &row.out_refund_no, 1, now).await.map_err(store_failure)?;
    }
    tx.commit().await.map_err(sqlx_failure)?;
    state.job_wakeup().notify_waiters();
    done(summary)
}

/// WeChat Pay's own answer that it has no refund by this number (or a number it could never have taken).
fn is_no_such_refund(error: &wechatpay::Error) -> bool {
    match error {
        wechatpay::Error::Api(api) => {
            api.status == 404 && matches!(api.code.as_str(), "RESOURCE_NOT_EXISTS" | "NOT_FOUND")
        }
        // Refused before sending by the same rule WeChat Pay applies: no refund can carry this number.
        wechatpay::Error::Invalid(_) => true,
        _ => false,
    }
}

/// Record that WeChat Pay confirmed it has no such refund: `FAILED` (nothing paid), which frees the order.
async fn mark_not_made(state: &AppState, row: &RefundRow, error: &str) -> Result<(), JobFailure> {
    let error = format!("{error} (WeChat Pay has no refund {}: nothing was paid)", row.out_refund_no);
    let update = RefundUpdate { status: "FAILED", last_error: Some(&error), ..RefundUpdate::default() };
    let mut conn = state.store().conn().await.map_err(store_failure)?;
    refunds::update(&mut conn, row.provider_id, &row.out_refund_no, &update, state.now_ms())
        .await
        .map_err(store_failure)?;
    drop(conn);
    step(
        state,
        row.provider_id,
        &row.complaint_id,
        "refund_failed",
        "failed",
        json!({"out_refund_no": row.out_refund_no, "error": error, "confirmed_not_made": true}),
    )
    .await?;
    Ok(())
}

/// Enqueue the completion once every automatic refund of the complaint is accepted (PROCESSING or SUCCESS).
async fn complete_when_all_accepted(
    conn: &mut AnyConnection,
    row: &RefundRow,
    times: i64,
    now: i64,
) -> StoreResult<()> {
    let all = refunds::for_complaint(conn, row.provider_id, &row.complaint_id).await?;
    let accepted =
        all.iter().filter(|r| r.requested_by == "auto").all(|r| matches!(r.status.as_str(), "PROCESSING" | "SUCCESS"));
    if accepted {
        enqueue_complete(conn, row.provider_id, &row.complaint_id, &row.sub_mchid, times, true, now).await?;
    }
    Ok(())
}

/// How long after the n-th query (1-based) the next one is made: WeChat suggests 1 minute, then backing off.
fn query_delay_ms(round: i64) -> i64 {
    const MINUTES: [i64; 8] = [1, 5, 10, 20, 30, 60, 180, 360];
    let index = usize::try_from(round.saturating_sub(1)).unwrap_or(0).min(MINUTES.len() - 1);
    MINUTES[index] * 60_000
}

/// Refunds still processing after the last query are left to WeChat's notification and the operator.
const MAX_QUERY_ROUNDS: i64 = 12;

async fn enqueue_query(
    conn: &mut AnyConnection,
    provider_id: i64,
    out_refund_no: &str,
    round: i64,
    now: i64,
) -> StoreResult<()> {
    if round > MAX_QUERY_ROUNDS {
        return Ok(());
    }
    let job = NewJob {
        kind: REFUND_QUERY.to_owned(),
        dedupe_key: format!("refund-query:{provider_id}:{out_refund_no}:{round}"),
        payload: json!({"provider_id": provider_id, "out_refund_no": out_refund_no, "round": round}),
        provider_id: Some(provider_id),
        run_at: now + query_delay_ms(round),
    };
    queue::enqueue(conn, &job, now).await?;
    Ok(())
}

/// Store WeChat Pay's answer about a refund (to the request or a query).
async fn record_answer(
    conn: &mut AnyConnection,
    state: &AppState,
    row: &RefundRow,
    answer: &wechatpay::api::refunds::Refund,
) -> StoreResult<String> {
    let account = Some(answer.user_received_account.as_str()).filter(|a| !a.is_empty());
    record_refund_status(conn, state, row, &answer.status, Some(answer.refund_id.as_str()), account, "refund_accepted")
        .await
}

/// Store what WeChat Pay says of a refund; alert the provider when it failed. Returns a summary.
async fn record_refund_status(
    conn: &mut AnyConnection,
    state: &AppState,
    row: &RefundRow,
    status: &RefundStatus,
    refund_id: Option<&str>,
    account: Option<&str>,
    accepted_step: &str,
) -> StoreResult<String> {
    let now = state.now_ms();
    let status_text = status.as_str();
    let update = RefundUpdate {
        status: status_text,
        refund_id,
        user_received_account: account,
        last_error: None,
        succeeded_at: (*status == RefundStatus::Success).then_some(now),
    };
    let before = refunds::update(conn, row.provider_id, &row.out_refund_no, &update, now).await?;
    let complaint = complaint_store::get(conn, row.provider_id, &row.complaint_id).await?;
    let changed = before.as_deref() != Some(status_text);
    if let Some(complaint) = &complaint
        && changed
    {
        let step = match status {
            RefundStatus::Success => "refund_succeeded",
            RefundStatus::Processing => accepted_step,
            _ => "refund_failed",
        };
        let outcome = if matches!(status, RefundStatus::Closed | RefundStatus::Abnormal) { "failed" } else { "ok" };
        complaint_store::add_step(
            conn,
            complaint.id,
            step,
            outcome,
            &json!({"out_refund_no": row.out_refund_no, "status": status_text, "amount": row.amount}),
            now,
        )
        .await?;
    }
    if changed && matches!(status, RefundStatus::Closed | RefundStatus::Abnormal) {
        // The complaint stays open; people must act (top up and refund again, or the user's card).
        alert_refund_failed(conn, state, row, status_text, complaint.as_ref().map(|c| c.complainted_mchid.as_str()))
            .await?;
    }
    Ok(format!("refund {} {status_text}", row.out_refund_no))
}

/// Tell the provider a refund failed (CLOSED, ABNORMAL, or refused for good).
pub async fn alert_refund_failed(
    conn: &mut AnyConnection,
    state: &AppState,
    row: &RefundRow,
    status: &str,
    mchid: Option<&str>,
) -> StoreResult<()> {
    let event = NotificationEvent {
        kind: EventKind::RefundFailed,
        key: format!("refund:{}:{}:{status}", row.provider_id, row.out_refund_no),
        provider_id: row.provider_id,
        merchant_mchid: mchid.map(str::to_owned).or_else(|| Some(row.sub_mchid.clone())),
        to_merchant: false,
        data: json!({
            "complaint": {"id": row.complaint_id},
            "refund": {"out_refund_no": row.out_refund_no, "amount_fen": row.amount, "status": status},
            "time_ms": state.now_ms(),
            "link_path": notify::links::complaint(row.provider_id, &row.complaint_id),
        }),
    };
    notify::enqueue(conn, state, &event).await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
struct QueryPayload {
    provider_id: i64,
    out_refund_no: String,
    round: i64,
}

pub async fn refund_query(ctx: &JobContext) -> JobResult {
    let p: QueryPayload = ctx.payload()?;
    let state = &ctx.state;
    let row = {
        let mut conn = state.store().conn().await.map_err(store_failure)?;
        refunds::get(&mut conn, p.provider_id, &p.out_refund_no)
            .await
            .map_err(store_failure)?
            .ok_or_else(|| JobFailure::permanent(format!("no refund {}", p.out_refund_no)))?
    };
    if row.status != "PROCESSING" && row.status != "REQUESTED" {
        return done(format!("refund {} is {}: no query needed", row.out_refund_no, row.status));
    }
    let client = client_for(state, p.provider_id).await?;
    let answer = match client.query_refund(&row.out_refund_no, &row.sub_mchid).await {
        Ok(answer) => answer,
        // A refund whose request was refused (or marked failed by an earlier version without asking): WeChat Pay
        // has no such refund, so nothing was paid — unless our request is still under way.
        Err(e) if row.status == "REQUESTED" && is_no_such_refund(&e) => {
            let now = state.now_ms();
            let mut conn = state.store().conn().await.map_err(store_failure)?;
            let key = format!("refund:{}:{}", row.provider_id, row.out_refund_no);
            let request = queue::find_by_dedupe_key(&mut conn, &key).await.map_err(store_failure)?;
            if request.is_some_and(|j| j.status == "queued" || j.status == "running") {
                return Err(JobFailure::Defer { until: now + query_delay_ms(1) });
            }
            drop(conn);
            mark_not_made(state, &row, "not found when checked").await?;
            let mut tx = state.store().begin().await.map_err(store_failure)?;
            alert_refund_failed(&mut tx, state, &row, "FAILED", None).await.map_err(store_failure)?;
            tx.commit().await.map_err(sqlx_failure)?;
            return done(format!("refund {}: WeChat Pay has no such refund; recorded FAILED", row.out_refund_no));
        }
        Err(e) => return Err(wechat_failure(e)),
    };
    let now = state.now_ms();
    let mut tx = state.store().begin().await.map_err(store_failure)?;
    let summary = record_answer(&mut tx, state, &row, &answer).await.map_err(store_failure)?;
    if answer.status == RefundStatus::Processing {
        enqueue_query(&mut tx, p.provider_id, &row.out_refund_no, p.round + 1, now).await.map_err(store_failure)?;
    }
    tx.commit().await.map_err(sqlx_failure)?;
    done(summary)
}

#[derive(Debug, Deserialize)]
struct RefundNotificationPayload {
    provider_id: i64,
    notice: RefundNotice,
}

/// WeChat's `REFUND.*` notification: record the result; a refund we do not know is recorded nowhere but logged.
pub async fn refund_notification(ctx: &JobContext) -> JobResult {
    let p: RefundNotificationPayload = ctx.payload()?;
    let state = &ctx.state;
    let mut tx = state.store().begin().await.map_err(store_failure)?;
    let Some(row) = refunds::get(&mut tx, p.provider_id, &p.notice.out_refund_no).await.map_err(store_failure)? else {
        tx.commit().await.map_err(sqlx_failure)?;
        tracing::info!(out_refund_no = %p.notice.out_refund_no, "refund notification for a refund wxrisk did not make");
        return done(format!("refund {} was not made by wxrisk: ignored", p.notice.out_refund_no));
    };
    // Amounts are checked against what we asked before anything is believed.
    if p.notice.amount.refund != row.amount || p.notice.sub_mchid != row.sub_mchid {
        tx.commit().await.map_err(sqlx_failure)?;
        return Err(JobFailure::permanent(format!(
            "refund notification for {} does not match our record (amount {} vs {}, sub_mchid {} vs {})",
            row.out_refund_no, p.notice.amount.refund, row.amount, p.notice.sub_mchid, row.sub_mchid
        )));
    }
    let summary = record_refund_status(
        &mut tx,
        state,
        &row,
        &p.notice.refund_status,
        Some(p.notice.refund_id.as_str()).filter(|r| !r.is_empty()),
        p.notice.user_received_account.as_deref(),
        "refund_accepted",
    )
    .await
    .map_err(store_failure)?;
    tx.commit().await.map_err(sqlx_failure)?;
    done(summary)
}

/// Report the complaint handled, unless it already is.
pub async fn complete(ctx: &JobContext) -> JobResult {
    let p: ComplaintPayload = ctx.payload()?;
    let state = &ctx.state;
    if let Some(reply_key) = &p.after_reply {
        // WeChat refuses replies to a completed complaint: wait while our reply is still to be sent (a reply that
        // is dead does not hold the completion back).
        let mut conn = state.store().conn().await.map_err(store_failure)?;
        let reply = queue::find_by_dedupe_key(&mut conn, reply_key).await.map_err(store_failure)?;
        if let Some(reply) = reply.filter(|r| r.status == "queued" || r.status == "running") {
            // The reply wakes this job when it is sent; the short wait covers a reply finishing just now.
            let now = state.now_ms();
            let after = if reply.status == "running" { now } else { reply.run_at.max(now) };
            return Err(JobFailure::Defer { until: after + 200 });
        }
    }
    let client = client_for(state, p.provider_id).await?;
    let detail = client.complaint(&p.complaint_id).await.map_err(wechat_failure)?;
    if detail.complaint_state == ComplaintState::Processed {
        mark_completed(state, &p, json!({"already_processed": true})).await?;
        return done("already processed: not completed again");
    }
    if p.expects_refund && !detail.complaint_full_refunded {
        let mut conn = state.store().conn().await.map_err(store_failure)?;
        match refunds_settled(&mut conn, p.provider_id, &detail).await.map_err(store_failure)? {
            RefundsSettled::Accepted => {}
            RefundsSettled::Unanswered(number) => {
                // The order's refund (perhaps another complaint's) is not answered yet: look again later.
                tracing::debug!(complaint_id = %p.complaint_id, out_refund_no = %number, "completion waits for a refund");
                return Err(JobFailure::Defer { until: state.now_ms() + query_delay_ms(1) });
            }
            RefundsSettled::Refused(row) => {
                drop(conn);
                let why = json!({"reason": "a refund of the complaint's orders did not go through",
                                 "out_refund_no": row.out_refund_no, "status": row.status});
                step(state, p.provider_id, &p.complaint_id, "completion_withheld", "skipped", why).await?;
                return done(format!("not completed: refund {} is {}", row.out_refund_no, row.status));
            }
        }
    }
    let sub_mchid = p.sub_mchid.clone().unwrap_or_else(|| detail.complainted_mchid.clone());
    client.complete_complaint(&p.complaint_id, &sub_mchid).await.map_err(wechat_failure)?;
    mark_completed(state, &p, json!({})).await?;
    done(format!("completed {}", p.complaint_id))
}

/// Where the refunds of a complaint's orders stand, for its completion.
enum RefundsSettled {
    /// Every order the complaint refunds has a refund WeChat Pay accepted (`PROCESSING` or `SUCCESS`).
    Accepted,
    /// This refund has no answer yet.
    Unanswered(String),
    /// This refund failed or was closed: the complaint is not handled.
    Refused(Box<RefundRow>),
}

/// Look at the newest refund of each order the complaint asks to refund, whoever made it.
async fn refunds_settled(
    conn: &mut AnyConnection,
    provider_id: i64,
    detail: &Complaint,
) -> StoreResult<RefundsSettled> {
    for (index, _) in refund_plan(detail) {
        let transaction_id = &detail.complaint_order_info[index].transaction_id;
        let Some(latest) = refunds::latest_for_order(conn, provider_id, transaction_id).await? else {
            continue;
        };
        match latest.status.as_str() {
            "PROCESSING" | "SUCCESS" => {}
            "REQUESTED" => return Ok(RefundsSettled::Unanswered(latest.out_refund_no)),
            _ => return Ok(RefundsSettled::Refused(Box::new(latest))),
        }
    }
    Ok(RefundsSettled::Accepted)
}

async fn mark_completed(state: &AppState, p: &ComplaintPayload, detail: serde_json::Value) -> Result<(), JobFailure> {
    let now = state.now_ms();
    let mut conn = state.store().conn().await.map_err(store_failure)?;
    if let Some(row) = complaint_store::get(&mut conn, p.provider_id, &p.complaint_id).await.map_err(store_failure)? {
        complaint_store::mark_completed(&mut conn, row.id, now).await.map_err(store_failure)?;
        complaint_store::add_step(&mut conn, row.id, "completed", "ok", &detail, now).await.map_err(store_failure)?;
    }
    Ok(())
}

/// A job finished for good (succeeded or dead), in the transaction that records it: wake what waited for it. The
/// completion of a round waits for that round's reply (see `complete`); waking it here, where the reply's status
/// changes, leaves no moment in which the completion could see the reply neither running nor finished.
pub async fn on_finished(conn: &mut AnyConnection, job: &crate::store::jobs::JobRow, now: i64) -> StoreResult<()> {
    if job.kind == super::REPLY
        && let Some(round) = job.dedupe_key.strip_prefix("reply:")
    {
        queue::wake(conn, &format!("complete:{round}"), now).await?;
    }
    Ok(())
}

/// A workflow job is dead: the provider hears of it, in words that fit the job (called by the worker, in the
/// transaction that marks the job dead). `false` when the job kind has no alert of its own.
pub async fn on_dead(
    conn: &mut AnyConnection,
    state: &AppState,
    job: &crate::store::jobs::JobRow,
) -> StoreResult<bool> {
    if job.kind != super::REFUND {
        return Ok(false);
    }
    let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap_or_default();
    let (Some(provider_id), Some(out_refund_no)) = (payload["provider_id"].as_i64(), payload["out_refund_no"].as_str())
    else {
        return Ok(false);
    };
    let Some(row) = refunds::get(conn, provider_id, out_refund_no).await? else { return Ok(false) };
    let status = if row.status == "FAILED" { "FAILED" } else { "NOT_ACCEPTED" };
    alert_refund_failed(conn, state, &row, status, None).await?;
    Ok(true)
}
