//! Deadline checks: a complaint's first reply is due 24 hours after it arrived and its resolution 72 hours after
//! (`complaints.reply_deadline`, `resolve_deadline`; a continued complaint starts both again). Each deadline has a
//! "due soon" check (`complaints.due_soon` before) and an "overdue" check, enqueued with the complaint and run at
//! their moment; each alerts the provider once, only if the deadline is not met by then.
//!
//! Met means: the reply — we replied, or the complaint left `PENDING` (someone replied in WeChat's console); the
//! resolution — the complaint is `PROCESSED`. Our row may lag behind WeChat, so before alerting, the detail is
//! read again.

use serde::Deserialize;
use serde_json::json;
use wechatpay::enums::ComplaintState;

use super::{client_for, done, store_failure, wechat_failure};
use crate::jobs::{JobContext, JobResult};
use crate::notify::{self, EventKind, NotificationEvent};
use crate::store::complaints::{self as store, ComplaintRow};

#[derive(Debug, Deserialize)]
struct SlaPayload {
    provider_id: i64,
    complaint_id: String,
    /// `reply` or `resolve`.
    deadline: String,
    /// `due_soon` or `overdue`.
    stage: String,
    due_at: i64,
    times: i64,
}

fn met(deadline: &str, state: &str, replied: bool) -> bool {
    match deadline {
        "reply" => replied || state != "PENDING",
        _ => state == "PROCESSED",
    }
}

fn replied(row: &ComplaintRow) -> bool {
    row.replied_at.is_some()
}

pub async fn check(ctx: &JobContext) -> JobResult {
    let p: SlaPayload = ctx.payload()?;
    let state = &ctx.state;
    let row = {
        let mut conn = state.store().conn().await.map_err(store_failure)?;
        store::get(&mut conn, p.provider_id, &p.complaint_id).await.map_err(store_failure)?
    };
    let Some(row) = row else { return done("the complaint is gone") };
    if row.user_complaint_times != p.times {
        return done("the complaint was continued: its new deadlines are checked instead");
    }
    if met(&p.deadline, &row.state, replied(&row)) {
        return done(format!("{} deadline met", p.deadline));
    }
    // Ours may be stale (a reply made in WeChat's console sends no notification): ask.
    let client = client_for(state, p.provider_id).await?;
    let detail = client.complaint(&p.complaint_id).await.map_err(wechat_failure)?;
    let fresh_state = detail.complaint_state.as_str().to_owned();
    if met(&p.deadline, &fresh_state, replied(&row)) || detail.complaint_state == ComplaintState::Processed {
        let mut conn = state.store().conn().await.map_err(store_failure)?;
        store::set_state(&mut conn, row.id, &fresh_state, state.now_ms()).await.map_err(store_failure)?;
        return done(format!("{} deadline met (state {fresh_state})", p.deadline));
    }
    let kind = if p.stage == "due_soon" { EventKind::SlaDueSoon } else { EventKind::SlaOverdue };
    let now = state.now_ms();
    let event = NotificationEvent {
        kind,
        key: format!("sla:{}:{}:{}:{}:{}", p.provider_id, p.complaint_id, p.times, p.deadline, p.stage),
        provider_id: p.provider_id,
        merchant_mchid: Some(row.complainted_mchid.clone()),
        to_merchant: false,
        data: json!({
            "complaint": {"id": row.complaint_id, "time_ms": row.complaint_time, "amount_fen": row.amount_total,
                          "problem": row.problem_description, "detail": row.detail, "deadline_ms": p.due_at},
            "deadline": p.deadline,
            "time_ms": now,
            "link_path": notify::links::complaint(row.provider_id, &row.complaint_id),
        }),
    };
    let mut tx = state.store().begin().await.map_err(store_failure)?;
    let deliveries = notify::enqueue(&mut tx, state, &event).await.map_err(store_failure)?;
    store::add_step(
        &mut tx,
        row.id,
        &format!("sla_{}", p.stage),
        "failed",
        &json!({"deadline": p.deadline, "due_at": p.due_at, "deliveries": deliveries}),
        now,
    )
    .await
    .map_err(store_failure)?;
    tx.commit().await.map_err(super::sqlx_failure)?;
    state.job_wakeup().notify_waiters();
    done(format!("{} {}: provider alerted ({} deliveries)", p.deadline, p.stage, deliveries.len()))
}
