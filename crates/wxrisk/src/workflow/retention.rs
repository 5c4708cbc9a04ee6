//! Retention: tables do not grow forever. Once a day (the scheduler enqueues one `maintenance.retention` job per
//! China day, so any number of instances run it once) finished work older than `retention.days` (default 180) is
//! deleted in batches of [`BATCH`] rows, each batch its own short transaction, with a [`PAUSE`] between full
//! batches; a run stops after [`RUN_BUDGET`] (or half of `jobs.timeout`) and hands the rest to a continuation job.
//!
//! **Deleted**, by age (`finished_at` / `received_at` before the cutoff):
//! - jobs that **succeeded**, with their attempts and their deliveries;
//! - inbound notifications (the inbox of callbacks).
//!
//! **Kept**: jobs still queued or running (never touched), **dead** jobs with their attempts and deliveries (an
//! operator's to-do list: retrying one by hand turns it into a queued job, and it goes once it succeeds and ages),
//! a delivery that carries other deliveries' messages while any of them is stored, a delivery carried in a digest
//! whose carrier has not succeeded (a dead carrier retried by hand rebuilds its digest from its members), and
//! everything that is not work in flight: complaints and their timelines, refunds, violations and their events,
//! merchant risk state, certificate alerts, the audit log.
//!
//! **Why deleting cannot make an effect happen twice.** A job's `dedupe_key` is what makes an effect happen once;
//! once the job is deleted, its key no longer stops a new one. Each effect has a guard that outlives its job:
//!
//! | effect (dedupe key) | what else guards it |
//! |---|---|
//! | a notification's processing (`sync:{p}:notification:{id}`, inbox row `(provider, notification id)`) | WeChat redelivers for about a day, a replayed callback is refused as `STALE` (±5 minutes), and intake ignores any notification WeChat created more than `retention.days - 1` days ago (`intake::is_older_than_retention`) — so a deleted inbox row is never needed again |
//! | reply (`reply:{p}:{c}:{times}`), completion (`complete:…`), deadline alerts (`sla:…`), "new/continued complaint" notifications | enqueued only by a sync that handles a complaint as created or continued: from a notification (see above), or from reconciliation when the complaint is new to us or its `user_complaint_times` grew. Complaint rows are never deleted, so reconciliation of an old complaint is "sync only". A completion also reads WeChat's state first; a reply on a `PROCESSED` complaint is never planned |
//! | refund (`refund:{p}:{out_refund_no}`), refund queries (`refund-query:…`, `refund-verify:…`) | the `refunds` rows (kept): a new refund is planned only for an order without one that counts — the one-holder-per-order unique index — and its `out_refund_no` is derived, so WeChat Pay makes a repeated request once |
//! | backlog digest (`backlog:{p}:{slot}`) | each complaint's `backlog_notified` flag (kept): a complaint is counted in one digest only |
//! | reconciliation (`reconcile:{p}:{slot}`), limitation checks (`…:day:{day}`), certificate checks, retention | keyed by a time slot or day that never comes again |
//! | dead-job alerts (`job:{id}:dead:{n}`) | job ids are never reused (SQLite `autoincrement`, PostgreSQL identity) |
//! | risk alerts, interception alerts, violation notifications, certificate alerts | `merchant_risk`, `violations`/`violation_events`, `certificate_alerts` rows (kept) |
//! | refund notifications (`refund-notification:{p}:{id}`) | the inbox guard above; the refund row's status (an alert only on a change) |
//!
//! Reconciliation looks back at most `complaints.reconcile_backfill_days` (30 by default) and then a day before its
//! last run; it compares with complaint rows, never with jobs, so no retention setting makes it act on an old
//! complaint again. A complaint's page lists its jobs: jobs older than the retention no longer appear there, its
//! timeline still does.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use super::{RETENTION, done, store_failure};
use crate::jobs::{JobContext, JobResult};
use crate::state::AppState;
use crate::store::StoreResult;
use crate::store::jobs::{self as queue, NewJob};
use crate::store::retention::{self as store, PurgedJobs};

/// Rows deleted per statement.
pub const BATCH: i64 = 500;
/// Rest between two full batches, so other writers (the callbacks' writer above all) go first.
pub const PAUSE: Duration = Duration::from_millis(50);
/// Longest one run works before it hands the rest to a continuation job (also at most half of `jobs.timeout`).
pub const RUN_BUDGET: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
struct RetentionPayload {
    day: String,
    #[serde(default)]
    part: u32,
}

/// Enqueue today's retention run; `true` when it was new.
pub async fn schedule_daily(state: &AppState) -> StoreResult<bool> {
    let now = state.now_ms();
    let day = super::violations::china_day(now);
    let mut conn = state.store().conn().await?;
    let created = enqueue(&mut conn, &day, 0, now).await?;
    if created {
        state.job_wakeup().notify_waiters();
    }
    Ok(created)
}

async fn enqueue(conn: &mut sqlx::AnyConnection, day: &str, part: u32, now: i64) -> StoreResult<bool> {
    let key = if part == 0 { format!("retention:{day}") } else { format!("retention:{day}:{part}") };
    let job = NewJob {
        kind: RETENTION.to_owned(),
        dedupe_key: key,
        payload: json!({"day": day, "part": part}),
        provider_id: None,
        run_at: now,
    };
    Ok(queue::enqueue(conn, &job, now).await?.is_some())
}

pub async fn run(ctx: &JobContext) -> JobResult {
    let p: RetentionPayload = ctx.payload()?;
    let state = &ctx.state;
    let now = state.now_ms();
    let cutoff = now.saturating_sub(state.config().retention.millis());
    let budget = RUN_BUDGET.min(state.config().jobs.timeout / 2);
    let started = Instant::now();
    let mut purged = PurgedJobs::default();
    let mut inbound = 0u64;
    let mut finished = false;
    // Jobs first (their deliveries and attempts with them), then the inbox.
    let mut jobs_done = false;
    while started.elapsed() < budget {
        if !jobs_done {
            let batch = store::purge_finished_jobs(state.store(), cutoff, BATCH).await.map_err(store_failure)?;
            purged.jobs += batch.jobs;
            purged.attempts += batch.attempts;
            purged.deliveries += batch.deliveries;
            // A batch may have been only carriers' members: the carriers come in the next one.
            jobs_done = batch.jobs == 0;
            if i64::try_from(batch.jobs).unwrap_or(i64::MAX) >= BATCH {
                tokio::time::sleep(PAUSE).await;
            }
            continue;
        }
        let deleted = store::purge_inbound(state.store(), cutoff, BATCH).await.map_err(store_failure)?;
        inbound += deleted;
        if i64::try_from(deleted).unwrap_or(i64::MAX) < BATCH {
            finished = true;
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    let summary = json!({"cutoff": crate::clock::format_shanghai(cutoff), "jobs": purged.jobs,
                         "attempts": purged.attempts, "deliveries": purged.deliveries,
                         "inbound_notifications": inbound, "finished": finished});
    if !finished {
        let mut conn = state.store().conn().await.map_err(store_failure)?;
        enqueue(&mut conn, &p.day, p.part + 1, now).await.map_err(store_failure)?;
        state.job_wakeup().notify_waiters();
    }
    tracing::info!(%summary, "retention");
    done(summary.to_string())
}
