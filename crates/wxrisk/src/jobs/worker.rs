//! The worker: claims due jobs, runs their handlers with no transaction open, records the outcome.
//!
//! Contract: [`Worker::run_one`] is one claim-run-record step and [`Worker::run_pending`] repeats it until nothing
//! is due (tests drive the queue this way, moving the injected clock between calls). [`Worker::run`] is the
//! long-running form: `concurrency` slots, each sleeping `poll_interval` (or until woken by a local enqueue) when
//! idle; on shutdown the slots stop claiming and finish the jobs in hand.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{JobContext, JobFailure, RetryPolicy};
use crate::state::AppState;
use crate::store::StoreResult;
use crate::store::jobs::{self as queue, AttemptRecord, ClaimedJob, Outcome};

/// What one step did, for tests and logs.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub job_id: i64,
    pub kind: String,
    pub attempt: i64,
    pub outcome: Outcome,
    /// False when another worker had taken the job over meanwhile.
    pub lease_held: bool,
}

#[derive(Debug, Clone)]
pub struct Worker {
    state: AppState,
    id: String,
    policy: RetryPolicy,
}

impl Worker {
    /// `id` names this worker in leases and attempt rows; unique per process and slot.
    pub fn new(state: AppState, id: impl Into<String>) -> Self {
        let policy = RetryPolicy::from_config(&state.config().jobs);
        Self { state, id: id.into(), policy }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Claim one due job and run it. `None` when nothing is due.
    pub async fn run_one(&self) -> StoreResult<Option<StepReport>> {
        let jobs = &self.state.config().jobs;
        let lease_ms = i64::try_from(jobs.lease.as_millis()).unwrap_or(i64::MAX / 2);
        let now = self.state.now_ms();
        let Some(claimed) = queue::claim_next(self.state.store(), &self.id, now, lease_ms).await? else {
            return Ok(None);
        };
        let started = Instant::now();
        let result = self.execute(claimed.clone()).await;
        let elapsed = started.elapsed();
        let (outcome, record) = match result {
            Ok(record) => (Outcome::Succeeded, record),
            Err(JobFailure::Defer { until }) => (Outcome::Deferred { until }, AttemptRecord::default()),
            Err(JobFailure::Permanent { record }) => (Outcome::Dead, *record),
            Err(JobFailure::Retry { record, retry_after }) => {
                match self.policy.delay_after(claimed.attempt, retry_after) {
                    Some(delay) => {
                        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
                        (Outcome::Retry { next_at: self.state.now_ms().saturating_add(delay_ms) }, *record)
                    }
                    None => (Outcome::Dead, *record),
                }
            }
        };
        // Whatever a handler hands back, the attempt log keeps a bounded amount of it.
        let record = AttemptRecord {
            body: record.body.as_deref().map(super::truncate_body),
            message: record.message.as_deref().map(super::truncate_body),
            ..record
        };
        let duration_ms = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.state.store().begin().await?;
        let lease_held =
            queue::finish_in(&mut tx, &claimed, outcome, &record, self.state.now_ms(), duration_ms).await?;
        if lease_held && matches!(outcome, Outcome::Dead) {
            // The provider hears of it in the same transaction that marks the job dead.
            crate::notify::alert_dead_job(&mut tx, &self.state, &claimed.job, &record).await?;
        }
        if lease_held && matches!(outcome, Outcome::Dead | Outcome::Succeeded) {
            crate::workflow::effects::on_finished(&mut tx, &claimed.job, self.state.now_ms()).await?;
        }
        tx.commit().await?;
        if lease_held && matches!(outcome, Outcome::Dead | Outcome::Succeeded) {
            self.state.job_wakeup().notify_waiters();
        }
        let kind = claimed.job.kind.clone();
        let outcome_name = match outcome {
            Outcome::Succeeded => "succeeded",
            Outcome::Retry { .. } => "retry",
            Outcome::Dead => "dead",
            Outcome::Deferred { .. } => "deferred",
        };
        let metrics = self.state.metrics();
        metrics.inc("wxrisk_jobs_finished_total", &[("kind", &kind), ("outcome", outcome_name)]);
        metrics.observe("wxrisk_job_attempt_duration_seconds", &[("kind", &kind)], elapsed.as_secs_f64());
        match outcome {
            Outcome::Dead => {
                tracing::warn!(
                    job_id = claimed.job.id,
                    kind,
                    attempt = claimed.attempt,
                    error = record.message.as_deref(),
                    "job is dead"
                )
            }
            Outcome::Retry { next_at } => {
                tracing::info!(
                    job_id = claimed.job.id,
                    kind,
                    attempt = claimed.attempt,
                    next_at,
                    error = record.message.as_deref(),
                    "job will be retried"
                )
            }
            Outcome::Succeeded => tracing::debug!(job_id = claimed.job.id, kind, attempt = claimed.attempt, "job done"),
            Outcome::Deferred { until } => tracing::debug!(job_id = claimed.job.id, kind, until, "job deferred"),
        }
        if !lease_held {
            tracing::warn!(job_id = claimed.job.id, kind, "job finished after its lease had passed to another worker");
        }
        Ok(Some(StepReport { job_id: claimed.job.id, kind, attempt: claimed.attempt, outcome, lease_held }))
    }

    /// Run the handler in a task of its own (a panic becomes a retryable failure) under the attempt timeout.
    async fn execute(&self, claimed: ClaimedJob) -> Result<AttemptRecord, JobFailure> {
        let Some(handler) = self.state.job_registry().get(&claimed.job.kind) else {
            // Another version of wxrisk may know this kind (rolling upgrade): leave it for a later attempt.
            return Err(JobFailure::retry(format!(
                "this wxrisk process has no handler for job kind `{}`",
                claimed.job.kind
            )));
        };
        let timeout = self.state.config().jobs.timeout;
        let ctx = JobContext { state: self.state.clone(), job: claimed };
        let task = tokio::spawn(async move { tokio::time::timeout(timeout, handler.run(&ctx)).await });
        match task.await {
            Ok(Ok(result)) => result,
            Ok(Err(_elapsed)) => Err(JobFailure::retry(format!(
                "the attempt took longer than jobs.timeout ({})",
                crate::config::format_duration(timeout)
            ))),
            Err(join_error) => Err(JobFailure::retry(format!("the job handler failed: {join_error}"))),
        }
    }

    /// Run jobs until none is due now. Returns how many attempts were made.
    pub async fn run_pending(&self) -> StoreResult<Vec<StepReport>> {
        let mut reports = Vec::new();
        while let Some(report) = self.run_one().await? {
            reports.push(report);
        }
        Ok(reports)
    }

    /// The long-running worker: `concurrency` slots until `shutdown`, then finish the jobs in hand.
    pub async fn run(self, shutdown: CancellationToken) {
        let concurrency = self.state.config().jobs.concurrency;
        let mut slots = tokio::task::JoinSet::new();
        for slot in 0..concurrency {
            let worker = Worker { id: format!("{}/{slot}", self.id), ..self.clone() };
            slots.spawn(worker.slot_loop(shutdown.clone()));
        }
        while slots.join_next().await.is_some() {}
    }

    async fn slot_loop(self, shutdown: CancellationToken) {
        let poll = self.state.config().jobs.poll_interval;
        let wakeup = Arc::clone(self.state.job_wakeup());
        while !shutdown.is_cancelled() {
            match self.run_one().await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => tracing::error!(worker = %self.id, error = %e, "job queue unavailable"),
            }
            let nap = match queue::next_run_at(self.state.store()).await {
                Ok(Some(next)) => {
                    let wait = u64::try_from(next.saturating_sub(self.state.now_ms())).unwrap_or(0);
                    poll.min(std::time::Duration::from_millis(wait.max(5)))
                }
                _ => poll,
            };
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                () = wakeup.notified() => {}
                () = shutdown.cancelled() => {}
            }
        }
    }
}
