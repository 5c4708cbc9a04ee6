//! What wxrisk does about complaints: job kinds, each one outside effect, each idempotent by construction.
//!
//! Contract (DESIGN.md "Fan-out as data"): a complaint notification becomes one [`SYNC`] job, which fetches the
//! complaint's detail and history, stores them, and — in the same transaction — enqueues one job per effect
//! ([`REPLY`], [`REFUND_PROGRESS`], [`REFUND`], [`COMPLETE`]), the notifications, and the deadline checks
//! ([`SLA`]). Every job's dedupe key is derived from what it is about, so a notification delivered five times,
//! two notifications for one complaint, or reconciliation finding a complaint a callback already brought, do each
//! effect once:
//!
//! | job | dedupe key | why that key |
//! |---|---|---|
//! | sync | `sync:{provider}:notification:{id}` / `sync:{provider}:{complaint}:{fingerprint}` | one per delivery / per observed change |
//! | reply | `reply:{provider}:{complaint}:{user_complaint_times}` | one reply per complaint, again per continued complaint |
//! | refund | `refund:{provider}:{out_refund_no}` | `out_refund_no` derives from complaint, order and round; the database allows one live refund per order |
//! | complete | `complete:{provider}:{complaint}:{user_complaint_times}` | |
//! | sla | `sla:{provider}:{complaint}:{times}:{deadline}:{stage}` | each alert once |
//! | backlog | `backlog:{provider}:{reconcile slot}` | one digest per reconciliation that met the provider's history |
//!
//! Before repeating a reply after an uncertain attempt, the negotiation history is checked; before completing,
//! the complaint's state and its refunds. Refunds need no check before asking again: the same `out_refund_no` is
//! the same refund at WeChat Pay. That an order is refunded once is the database's rule (`store::refunds`), and a
//! refused refund is failed only when WeChat Pay confirms it has no such refund (`effects::refund`).

pub mod certificates;
pub mod complaints;
pub mod effects;
pub mod reconcile;
pub mod retention;
pub mod sla;
pub mod violations;

use wechatpay::Client;

use crate::jobs::{AttemptRecord, BoxFuture, JobContext, JobFailure, JobHandler, JobRegistry, JobResult};
use crate::state::AppState;
use crate::store::StoreError;

pub const SYNC: &str = "complaint.sync";
pub const REPLY: &str = "complaint.reply";
pub const REFUND_PROGRESS: &str = "complaint.refund_progress";
pub const REFUND: &str = "complaint.refund";
pub const COMPLETE: &str = "complaint.complete";
pub const SLA: &str = "complaint.sla";
pub const RECONCILE: &str = "complaint.reconcile";
pub const BACKLOG: &str = "complaint.backlog";
pub const REFUND_QUERY: &str = "refund.query";
pub const REFUND_NOTIFICATION: &str = "refund.notification";
pub const VIOLATION: &str = "violation.record";
pub const LIMITATIONS: &str = "merchant.limitations";
pub const RISK_CHECK: &str = "merchant.risk";
/// Once a day per provider: certificates about to expire (`certificates`).
pub const CERTIFICATE_CHECK: &str = "provider.certificates";
/// Once a day: finished work older than `retention.days` deleted (`retention`).
pub const RETENTION: &str = "maintenance.retention";

/// A job handler that is a plain function.
struct FnHandler(for<'a> fn(&'a JobContext) -> BoxFuture<'a, JobResult>);

impl JobHandler for FnHandler {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, JobResult> {
        (self.0)(ctx)
    }
}

/// Register every workflow job kind.
pub fn register(registry: &mut JobRegistry) {
    registry.register(SYNC, FnHandler(|ctx| Box::pin(complaints::sync(ctx))));
    registry.register(REPLY, FnHandler(|ctx| Box::pin(effects::reply(ctx))));
    registry.register(REFUND_PROGRESS, FnHandler(|ctx| Box::pin(effects::refund_progress(ctx))));
    registry.register(REFUND, FnHandler(|ctx| Box::pin(effects::refund(ctx))));
    registry.register(COMPLETE, FnHandler(|ctx| Box::pin(effects::complete(ctx))));
    registry.register(REFUND_QUERY, FnHandler(|ctx| Box::pin(effects::refund_query(ctx))));
    registry.register(REFUND_NOTIFICATION, FnHandler(|ctx| Box::pin(effects::refund_notification(ctx))));
    registry.register(SLA, FnHandler(|ctx| Box::pin(sla::check(ctx))));
    registry.register(RECONCILE, FnHandler(|ctx| Box::pin(reconcile::run(ctx))));
    registry.register(BACKLOG, FnHandler(|ctx| Box::pin(reconcile::backlog_digest(ctx))));
    registry.register(VIOLATION, FnHandler(|ctx| Box::pin(violations::record(ctx))));
    registry.register(LIMITATIONS, FnHandler(|ctx| Box::pin(violations::check_limitations(ctx))));
    registry.register(RISK_CHECK, FnHandler(|ctx| Box::pin(violations::check_risk(ctx))));
    registry.register(CERTIFICATE_CHECK, FnHandler(|ctx| Box::pin(certificates::check(ctx))));
    registry.register(RETENTION, FnHandler(|ctx| Box::pin(retention::run(ctx))));
}

/// A database failure: worth retrying.
pub(crate) fn store_failure(e: StoreError) -> JobFailure {
    JobFailure::retry(format!("database: {e}"))
}

pub(crate) fn sqlx_failure(e: sqlx::Error) -> JobFailure {
    store_failure(StoreError::from(e))
}

/// A WeChat Pay failure, classified as the protocol crate says, with its answer kept for the attempt log.
pub(crate) fn wechat_failure(e: wechatpay::Error) -> JobFailure {
    let record = match e.api() {
        Some(api) => AttemptRecord {
            http_status: Some(i64::from(api.status)),
            code: Some(api.code.clone()).filter(|c| !c.is_empty()),
            message: Some(api.message.clone()),
            body: Some(api.body.clone()),
            external_id: api.request_id.clone(),
        },
        None => AttemptRecord { message: Some(e.to_string()), ..AttemptRecord::default() },
    };
    match e.retry() {
        wechatpay::Retry::Later { after } => JobFailure::Retry { record: Box::new(record), retry_after: after },
        wechatpay::Retry::Never => JobFailure::Permanent { record: Box::new(record) },
    }
}

/// The provider's WeChat Pay client; a deleted provider ends the job.
pub(crate) async fn client_for(state: &AppState, provider_id: i64) -> Result<Client, JobFailure> {
    match state.wechat().get(state, provider_id).await {
        Ok(Some(client)) => Ok(client),
        Ok(None) => Err(JobFailure::permanent(format!("provider {provider_id} no longer exists"))),
        Err(crate::wechat::ClientError::Store(e)) => Err(store_failure(e)),
        Err(e) => Err(JobFailure::permanent(e.to_string())),
    }
}

/// Hold the job back (no attempt used) while this provider's attempts of the same kind in the last minute have
/// reached `per_minute`: WeChat Pay's per-minute limits are the provider's, shared by all instances.
pub(crate) async fn pace(ctx: &JobContext, provider_id: i64, per_minute: i64) -> Result<(), JobFailure> {
    let now = ctx.state.now_ms();
    let mut conn = ctx.state.store().conn().await.map_err(store_failure)?;
    let (count, oldest) = crate::store::jobs::recent_attempts(
        &mut conn,
        provider_id,
        &ctx.job.job.kind,
        now - 60_000,
        ctx.job.attempt_id,
    )
    .await
    .map_err(store_failure)?;
    if count >= per_minute {
        // Spread the waiting jobs over the next second rather than waking them all at once.
        let spread = ctx.job.job.id.rem_euclid(1000);
        return Err(JobFailure::Defer { until: oldest.unwrap_or(now) + 60_000 + spread });
    }
    Ok(())
}

/// A successful attempt with a short note for the attempt log.
pub(crate) fn done(message: impl Into<String>) -> JobResult {
    Ok(AttemptRecord { message: Some(message.into()), ..AttemptRecord::default() })
}

/// Pick the wording for the provider's language.
pub(crate) fn say(locale: &str, zh: &str, en: &str) -> String {
    if locale.starts_with("en") { en.to_owned() } else { zh.to_owned() }
}
