//! Reconciliation: every `complaints.reconcile_interval`, each provider's complaint list is walked from the day
//! before the last completed run (the first run looks back `complaints.reconcile_backfill_days`) to today, and
//! every complaint we never saw, or saw in another state, gets a sync job — lost notifications must not mean lost
//! complaints. A sync of a complaint we never saw handles it as created; effects keep their dedupe keys, so a
//! complaint a callback already brought is not acted on twice.
//!
//! Contract: [`schedule`] enqueues one `complaint.reconcile` job per provider and interval (dedupe key
//! `reconcile:{provider}:{interval number}`, so any number of instances schedule it once). A run reads at most
//! [`PAGES_PER_RUN`] pages of 50, at most one page per [`PAGE_GAP`] (WeChat allows 200 list calls a minute), then
//! hands the rest to a continuation job; windows are at most 30 days, as the list API requires.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::Date;
use wechatpay::api::complaints::ComplaintListQuery;

use super::complaints::{enqueue_sync, fingerprint};
use super::wechat_failure;
use super::{BACKLOG, RECONCILE, SYNC, client_for, done, say, sqlx_failure, store_failure};
use crate::clock::SHANGHAI;
use crate::jobs::{JobContext, JobFailure, JobResult};
use crate::notify::{self, EventKind, NotificationEvent};
use crate::state::AppState;
use crate::store::complaints as store;
use crate::store::jobs::{self as queue, NewJob};
use crate::store::{StoreResult, providers};

pub const PAGES_PER_RUN: u32 = 10;
pub const PAGE_GAP: Duration = Duration::from_millis(300);
const PAGE_SIZE: u32 = 50;
/// Days from a window's first day to its last (the list API takes at most 30).
const WINDOW_DAYS: i64 = 29;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReconcilePayload {
    pub provider_id: i64,
    /// This window's first day and the run's last day, `YYYY-MM-DD` (Asia/Shanghai).
    pub begin: String,
    pub end: String,
    pub offset: u32,
    /// The interval number this run belongs to (names continuation jobs).
    pub slot: i64,
    /// The run met complaints we never saw from before the provider's automation start: one digest follows.
    #[serde(default)]
    pub backlog_seen: bool,
}

fn day(ms: i64) -> Date {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(SHANGHAI)
        .date()
}

fn format(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

fn parse(text: &str) -> Option<Date> {
    Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

/// Enqueue this interval's reconciliation of every provider; returns how many jobs were new.
pub async fn schedule(state: &AppState) -> StoreResult<usize> {
    let now = state.now_ms();
    let settings = &state.config().complaints;
    let interval = i64::try_from(settings.reconcile_interval.as_millis()).unwrap_or(600_000).max(60_000);
    let slot = now / interval;
    let today = day(now);
    let mut conn = state.store().conn().await?;
    let mut created = 0;
    for provider_id in providers::ids(&mut conn).await? {
        let begin = match store::reconciled_until(&mut conn, provider_id).await?.as_deref().and_then(parse) {
            // One day of overlap: a complaint from late yesterday may have changed since.
            Some(covered) => covered.previous_day().unwrap_or(covered),
            None => today - time::Duration::days(settings.reconcile_backfill_days),
        };
        let payload = ReconcilePayload {
            provider_id,
            begin: format(begin.min(today)),
            end: format(today),
            offset: 0,
            slot,
            backlog_seen: false,
        };
        if enqueue(&mut conn, &payload, &format!("reconcile:{provider_id}:{slot}"), now).await? {
            created += 1;
        }
    }
    if created > 0 {
        state.job_wakeup().notify_waiters();
    }
    Ok(created)
}

/// In worker processes, once a minute until stopped: schedule reconciliations (each provider once per interval),
/// the daily limitation checks (each sub-merchant once per day), the daily certificate checks (each provider once
/// per day) and the daily retention (once per day).
pub async fn run_scheduler(state: AppState, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        if let Err(error) = schedule(&state).await {
            tracing::warn!(%error, "could not schedule complaint reconciliation; trying again in a minute");
        }
        if let Err(error) = super::violations::schedule_daily(&state).await {
            tracing::warn!(%error, "could not schedule the daily limitation checks; trying again in a minute");
        }
        if let Err(error) = super::certificates::schedule_daily(&state).await {
            tracing::warn!(%error, "could not schedule the daily certificate checks; trying again in a minute");
        }
        if let Err(error) = super::retention::schedule_daily(&state).await {
            tracing::warn!(%error, "could not schedule the daily retention; trying again in a minute");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

async fn enqueue(conn: &mut sqlx::AnyConnection, payload: &ReconcilePayload, key: &str, now: i64) -> StoreResult<bool> {
    let job = NewJob {
        kind: RECONCILE.to_owned(),
        dedupe_key: key.to_owned(),
        payload: serde_json::to_value(payload).unwrap_or_default(),
        provider_id: Some(payload.provider_id),
        run_at: now,
    };
    Ok(queue::enqueue(conn, &job, now).await?.is_some())
}

pub async fn run(ctx: &JobContext) -> JobResult {
    let mut p: ReconcilePayload = ctx.payload()?;
    let state = &ctx.state;
    let (Some(mut begin), Some(end)) = (parse(&p.begin), parse(&p.end)) else {
        return Err(JobFailure::permanent(format!("bad window {} … {}", p.begin, p.end)));
    };
    let client = client_for(state, p.provider_id).await?;
    let automation_since = {
        let mut conn = state.store().conn().await.map_err(store_failure)?;
        let provider = providers::get(&mut conn, p.provider_id).await.map_err(store_failure)?;
        provider.ok_or_else(|| JobFailure::permanent("the provider no longer exists"))?.automation_since
    };
    let (mut seen, mut enqueued, mut pages) = (0usize, 0usize, 0u32);
    loop {
        let window_end = (begin + time::Duration::days(WINDOW_DAYS)).min(end);
        let query = ComplaintListQuery {
            begin_date: begin,
            end_date: window_end,
            limit: PAGE_SIZE,
            offset: p.offset,
            complainted_mchid: None,
        };
        if pages > 0 {
            tokio::time::sleep(PAGE_GAP).await;
        }
        let page = client.list_complaints(&query).await.map_err(wechat_failure)?;
        pages += 1;
        seen += page.data.len();
        let now = state.now_ms();
        let ids: Vec<String> = page.data.iter().map(|c| c.complaint_id.clone()).collect();
        let mut conn = state.store().conn().await.map_err(store_failure)?;
        let ours = store::fingerprints(&mut conn, p.provider_id, &ids).await.map_err(store_failure)?;
        for complaint in &page.data {
            let theirs = fingerprint(complaint);
            let known = ours.iter().find(|(id, _)| *id == complaint.complaint_id).map(|(_, f)| f.as_str());
            if known.is_none() && complaint.complained_at().is_some_and(|t| unix_ms(t) < automation_since) {
                p.backlog_seen = true;
            }
            if known != Some(theirs.as_str())
                && enqueue_sync(&mut conn, p.provider_id, &complaint.complaint_id, &format!("reconcile:{theirs}"), now)
                    .await
                    .map_err(store_failure)?
            {
                enqueued += 1;
            }
        }
        let full_page = u32::try_from(page.data.len()).unwrap_or(u32::MAX) >= PAGE_SIZE;
        if full_page {
            p.offset += PAGE_SIZE;
        } else if window_end < end {
            begin = window_end.next_day().unwrap_or(end);
            p.offset = 0;
        } else {
            store::set_reconciled_until(&mut conn, p.provider_id, &p.end, now).await.map_err(store_failure)?;
            if p.backlog_seen {
                enqueue_backlog_digest(&mut conn, p.provider_id, p.slot, now).await.map_err(store_failure)?;
            }
            if enqueued > 0 {
                state.job_wakeup().notify_waiters();
            }
            return done(format!("{seen} complaint(s) listed in {pages} page(s); {enqueued} to sync"));
        }
        if pages >= PAGES_PER_RUN {
            // Hand the rest over, so one job never holds a worker for long.
            p.begin = format(begin);
            let key = format!("reconcile:{}:{}:{}:{}", p.provider_id, p.slot, p.begin, p.offset);
            enqueue(&mut conn, &p, &key, now).await.map_err(store_failure)?;
            state.job_wakeup().notify_waiters();
            return done(
                json!({"listed": seen, "to_sync": enqueued, "continues_at": p.begin, "offset": p.offset}).to_string(),
            );
        }
    }
}

fn unix_ms(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// How long the digest waits before looking whether this run's syncs are done.
const BACKLOG_WAIT_MS: i64 = 60_000;

async fn enqueue_backlog_digest(
    conn: &mut sqlx::AnyConnection,
    provider_id: i64,
    slot: i64,
    now: i64,
) -> StoreResult<()> {
    let job = NewJob {
        kind: BACKLOG.to_owned(),
        dedupe_key: format!("backlog:{provider_id}:{slot}"),
        payload: json!({"provider_id": provider_id, "slot": slot}),
        provider_id: Some(provider_id),
        run_at: now + BACKLOG_WAIT_MS,
    };
    queue::enqueue(conn, &job, now).await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
struct BacklogPayload {
    provider_id: i64,
    slot: i64,
}

/// The `complaint.backlog` job: once reconciliation's syncs of a provider are done, tell the provider in one
/// message about the complaints from before its automation start that they recorded — how many, how many are
/// still open, the amount, and when they were filed — instead of a notification (and deadline alerts) per
/// complaint. Each complaint is counted in one digest only.
pub async fn backlog_digest(ctx: &JobContext) -> JobResult {
    let p: BacklogPayload = ctx.payload()?;
    let state = &ctx.state;
    let now = state.now_ms();
    let mut tx = state.store().begin().await.map_err(store_failure)?;
    let pending = queue::count_unfinished(&mut tx, p.provider_id, SYNC, &format!("sync:{}:", p.provider_id))
        .await
        .map_err(store_failure)?;
    if pending > 0 {
        tx.commit().await.map_err(sqlx_failure)?;
        return Err(JobFailure::Defer { until: now + BACKLOG_WAIT_MS });
    }
    let Some(provider) = providers::get(&mut tx, p.provider_id).await.map_err(store_failure)? else {
        return done("the provider no longer exists");
    };
    let backlog = store::take_backlog(&mut tx, p.provider_id).await.map_err(store_failure)?;
    if backlog.count == 0 {
        tx.commit().await.map_err(sqlx_failure)?;
        return done("no complaints from before the automation start left to sum up");
    }
    let event = NotificationEvent {
        kind: EventKind::ComplaintsBacklog,
        key: format!("backlog:{}:{}", p.provider_id, p.slot),
        provider_id: p.provider_id,
        merchant_mchid: None,
        to_merchant: false,
        data: json!({
            "backlog": {"count": backlog.count, "open": backlog.open, "amount_fen": backlog.amount_fen,
                        "first_ms": backlog.first_ms, "last_ms": backlog.last_ms,
                        "automation_since_ms": provider.automation_since},
            "actions": [say(&provider.locale,
                "这些投诉早于自动处理起始时间，已记录，未自动回复、退款或完结；请在控制台或 API 中查看（historical=true）并人工处理",
                "these complaints predate automation: recorded, but not replied to, refunded or completed; see them in the console or API (historical=true) and act by hand")],
            "time_ms": now,
            "link_path": notify::links::historical_complaints(p.provider_id),
        }),
    };
    notify::enqueue(&mut tx, state, &event).await.map_err(store_failure)?;
    tx.commit().await.map_err(sqlx_failure)?;
    state.job_wakeup().notify_waiters();
    done(format!("{} complaint(s) from before the automation start summed up ({} open)", backlog.count, backlog.open))
}
