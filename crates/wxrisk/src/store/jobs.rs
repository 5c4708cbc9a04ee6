//! `jobs` and `job_attempts`: the durable queue every outside effect goes through.
//!
//! Contract (DESIGN.md §2–§5): a job is inserted in the transaction of the write that causes it, unique by its
//! `dedupe_key`; [`claim_next`] takes one due job (queued and due, or running with an expired lease) under a
//! lease in a short transaction of its own; the caller makes the outside call with no transaction open; then
//! [`finish`] records the outcome, but changes the job only while the caller still holds the lease (same worker,
//! same attempt), so a worker that lost its lease cannot overwrite the work of the one that took over.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{Store, StoreError, StoreResult, col};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Dead,
}

impl JobStatus {
    pub const ALL: [JobStatus; 4] = [JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded, JobStatus::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    /// Unique for what the job does (`refund:{complaint_id}:{transaction_id}`): a second enqueue is a no-op.
    pub dedupe_key: String,
    pub payload: serde_json::Value,
    pub provider_id: Option<i64>,
    /// When it may run first (Unix ms).
    pub run_at: i64,
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub dedupe_key: String,
    pub payload: String,
    pub provider_id: Option<i64>,
    pub status: String,
    pub attempts: i64,
    pub run_at: i64,
    pub locked_until: Option<i64>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// A job this worker holds a lease on.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub job: JobRow,
    /// The attempt number this claim is (1 for the first).
    pub attempt: i64,
    pub attempt_id: i64,
    pub worker: String,
}

#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub id: i64,
    pub attempt: i64,
    pub worker: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub outcome: String,
    pub http_status: Option<i64>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub body: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub external_id: Option<String>,
}

/// What an attempt found out, recorded on its row.
#[derive(Debug, Clone, Default)]
pub struct AttemptRecord {
    pub http_status: Option<i64>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub body: Option<String>,
    /// The other side's id for what was done: a WeChat `msgid`, an SMS `SerialNo`, an SMTP reply, a refund id.
    pub external_id: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Queued again, to run at this time.
    Retry {
        next_at: i64,
    },
    Dead,
    /// Not attempted after all (a destination's rate limit): queued again for `until`, without using up an
    /// attempt, and with no attempt logged.
    Deferred {
        until: i64,
    },
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Retry { .. } => "retry",
            Outcome::Dead => "dead",
            Outcome::Deferred { .. } => "deferred",
        }
    }
}

const COLUMNS: &str = "id, kind, dedupe_key, payload, provider_id, status, attempts, run_at, locked_until, locked_by, \
    last_error, created_at, updated_at, finished_at";

fn from_row(row: &AnyRow) -> StoreResult<JobRow> {
    Ok(JobRow {
        id: col(row, "id")?,
        kind: col(row, "kind")?,
        dedupe_key: col(row, "dedupe_key")?,
        payload: col(row, "payload")?,
        provider_id: col(row, "provider_id")?,
        status: col(row, "status")?,
        attempts: col(row, "attempts")?,
        run_at: col(row, "run_at")?,
        locked_until: col(row, "locked_until")?,
        locked_by: col(row, "locked_by")?,
        last_error: col(row, "last_error")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        finished_at: col(row, "finished_at")?,
    })
}

/// Insert a job unless one with the same dedupe key exists. `Some(id)` when inserted now.
pub async fn enqueue(conn: &mut AnyConnection, job: &NewJob, now: i64) -> StoreResult<Option<i64>> {
    let row = sqlx::query(
        "insert into jobs (kind, dedupe_key, payload, provider_id, status, attempts, run_at, created_at, updated_at) \
         values ($1, $2, $3, $4, 'queued', 0, $5, $6, $6) on conflict (dedupe_key) do nothing returning id",
    )
    .bind(&job.kind)
    .bind(&job.dedupe_key)
    .bind(job.payload.to_string())
    .bind(job.provider_id)
    .bind(job.run_at)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(|r| col(r, "id")).transpose()
}

/// Insert many jobs in one statement, skipping those whose dedupe key exists.
pub async fn enqueue_many(conn: &mut AnyConnection, jobs: &[&NewJob], now: i64) -> StoreResult<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "insert into jobs (kind, dedupe_key, payload, provider_id, status, attempts, run_at, created_at, updated_at) values ",
    );
    for i in 0..jobs.len() {
        let b = i * 6;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, 'queued', 0, ${}, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 6
        ));
    }
    sql.push_str(" on conflict (dedupe_key) do nothing");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for job in jobs {
        query = query
            .bind(&job.kind)
            .bind(&job.dedupe_key)
            .bind(job.payload.to_string())
            .bind(job.provider_id)
            .bind(job.run_at)
            .bind(now);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Claim the next due job for `worker` until `now + lease_ms`, and open its attempt row.
pub async fn claim_next(store: &Store, worker: &str, now: i64, lease_ms: i64) -> StoreResult<Option<ClaimedJob>> {
    let mut tx = store.begin().await?;
    // The due condition is repeated outside the subquery so a row another claim changed meanwhile is re-checked.
    let sql = format!(
        "update jobs set status = 'running', attempts = attempts + 1, locked_until = $1, locked_by = $2, updated_at = $3 \
         where id = (select id from jobs \
                     where (status = 'queued' and run_at <= $3) or (status = 'running' and locked_until <= $3) \
                     order by run_at, id limit 1{}) \
         and ((status = 'queued' and run_at <= $3) or (status = 'running' and locked_until <= $3)) \
         returning {COLUMNS}",
        store.skip_locked()
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now + lease_ms)
        .bind(worker)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else {
        tx.commit().await?;
        return Ok(None);
    };
    let job = from_row(&row)?;
    // A previous attempt still marked running lost its worker (crash, or a lease that ran out).
    sqlx::query(
        "update job_attempts set outcome = 'lease_expired', finished_at = $1 where job_id = $2 and outcome = 'running'",
    )
    .bind(now)
    .bind(job.id)
    .execute(&mut *tx)
    .await?;
    let attempt_row = sqlx::query(
        "insert into job_attempts (job_id, attempt, worker, started_at, outcome) values ($1, $2, $3, $4, 'running') returning id",
    )
    .bind(job.id)
    .bind(job.attempts)
    .bind(worker)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let attempt_id = col(&attempt_row, "id")?;
    tx.commit().await?;
    Ok(Some(ClaimedJob { attempt: job.attempts, attempt_id, worker: worker.to_owned(), job }))
}

/// Record how an attempt ended. Returns `false` when the lease had been lost: the attempt is recorded, the job
/// (now another worker's) is left alone.
pub async fn finish(
    store: &Store,
    claimed: &ClaimedJob,
    outcome: Outcome,
    record: &AttemptRecord,
    now: i64,
    duration_ms: i64,
) -> StoreResult<bool> {
    let mut tx = store.begin().await?;
    let held = finish_in(&mut tx, claimed, outcome, record, now, duration_ms).await?;
    tx.commit().await?;
    Ok(held)
}

/// [`finish`] inside the caller's transaction, so what a dead job causes (an alert) commits with it.
pub async fn finish_in(
    tx: &mut AnyConnection,
    claimed: &ClaimedJob,
    outcome: Outcome,
    record: &AttemptRecord,
    now: i64,
    duration_ms: i64,
) -> StoreResult<bool> {
    if let Outcome::Deferred { until } = outcome {
        let done = sqlx::query(
            "update jobs set status = 'queued', run_at = $1, attempts = attempts - 1, locked_until = null, locked_by = null, \
             updated_at = $2 where id = $3 and status = 'running' and locked_by = $4 and attempts = $5",
        )
        .bind(until)
        .bind(now)
        .bind(claimed.job.id)
        .bind(&claimed.worker)
        .bind(claimed.attempt)
        .execute(&mut *tx)
        .await?;
        sqlx::query("delete from job_attempts where id = $1").bind(claimed.attempt_id).execute(&mut *tx).await?;
        return Ok(done.rows_affected() == 1);
    }
    let (status, run_at, finished_at) = match outcome {
        Outcome::Succeeded => ("succeeded", None, Some(now)),
        Outcome::Retry { next_at } => ("queued", Some(next_at), None),
        Outcome::Dead | Outcome::Deferred { .. } => ("dead", None, Some(now)),
    };
    let last_error = match outcome {
        Outcome::Succeeded => None,
        _ => Some(describe(record)),
    };
    let done = sqlx::query(
        "update jobs set status = $1, run_at = coalesce($2, run_at), locked_until = null, locked_by = null, \
         last_error = $3, updated_at = $4, finished_at = $5 \
         where id = $6 and status = 'running' and locked_by = $7 and attempts = $8",
    )
    .bind(status)
    .bind(run_at)
    .bind(last_error)
    .bind(now)
    .bind(finished_at)
    .bind(claimed.job.id)
    .bind(&claimed.worker)
    .bind(claimed.attempt)
    .execute(&mut *tx)
    .await?;
    let next_attempt_at = match outcome {
        Outcome::Retry { next_at } => Some(next_at),
        _ => None,
    };
    sqlx::query(
        "update job_attempts set finished_at = $1, duration_ms = $2, outcome = $3, http_status = $4, \
         code = $5, message = $6, body = $7, next_attempt_at = $8, external_id = $9 where id = $10",
    )
    .bind(now)
    .bind(duration_ms)
    .bind(outcome.as_str())
    .bind(record.http_status)
    .bind(record.code.as_deref())
    .bind(record.message.as_deref())
    .bind(record.body.as_deref())
    .bind(next_attempt_at)
    .bind(record.external_id.as_deref())
    .bind(claimed.attempt_id)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

fn describe(record: &AttemptRecord) -> String {
    let mut parts = Vec::new();
    if let Some(status) = record.http_status {
        parts.push(format!("HTTP {status}"));
    }
    if let Some(code) = &record.code {
        parts.push(code.clone());
    }
    if let Some(message) = &record.message {
        parts.push(message.clone());
    }
    if parts.is_empty() { "failed".to_owned() } else { parts.join(": ") }
}

/// Make a dead job, or a queued one waiting for its next attempt, run now with a fresh retry budget.
/// Running and succeeded jobs are refused: a running one has a worker, and repeating a finished outside effect
/// by hand is not what "retry" means.
pub async fn retry_now(conn: &mut AnyConnection, id: i64, now: i64) -> StoreResult<JobRow> {
    let sql = format!(
        "update jobs set status = 'queued', attempts = 0, run_at = $1, finished_at = null, updated_at = $1 \
         where id = $2 and status in ('dead', 'queued') returning {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(id).fetch_optional(&mut *conn).await?;
    match row {
        Some(row) => from_row(&row),
        None => match get(conn, id).await? {
            None => Err(StoreError::NotFound("job")),
            Some(job) => Err(StoreError::Conflict { constraint: format!("job status `{}`", job.status) }),
        },
    }
}

pub async fn get(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<JobRow>> {
    let sql = format!("select {COLUMNS} from jobs where id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn get_by_dedupe_key(conn: &mut AnyConnection, key: &str) -> StoreResult<Option<JobRow>> {
    let sql = format!("select {COLUMNS} from jobs where dedupe_key = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

#[derive(Debug, Default, Clone)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub kind: Option<String>,
    pub provider_id: Option<i64>,
}

/// Newest first.
pub async fn list(
    conn: &mut AnyConnection,
    filter: &JobFilter,
    before_id: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<JobRow>> {
    let sql = format!(
        "select {COLUMNS} from jobs where id < $1 and ($2 is null or status = $2) and ($3 is null or kind = $3) \
         and ($4 is null or provider_id = $4) order by id desc limit $5"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(filter.status.map(JobStatus::as_str))
        .bind(filter.kind.as_deref())
        .bind(filter.provider_id)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Attempts of `kind` for a provider started since `since` (Unix ms), excluding `except_attempt`, and the
/// oldest of them: what a per-minute limit of WeChat Pay's counts.
pub async fn recent_attempts(
    conn: &mut AnyConnection,
    provider_id: i64,
    kind: &str,
    since: i64,
    except_attempt: i64,
) -> StoreResult<(i64, Option<i64>)> {
    let row = sqlx::query(
        "select count(*) as n, min(a.started_at) as oldest from job_attempts a join jobs j on j.id = a.job_id \
         where j.provider_id = $1 and j.kind = $2 and a.started_at >= $3 and a.id <> $4",
    )
    .bind(provider_id)
    .bind(kind)
    .bind(since)
    .bind(except_attempt)
    .fetch_one(&mut *conn)
    .await?;
    Ok((col(&row, "n")?, col(&row, "oldest")?))
}

/// When the next queued job is due (Unix ms), if any: an idle worker sleeps until then rather than a whole poll
/// interval, so short waits (deferrals, quick retries) are not stretched.
pub async fn next_run_at(store: &Store) -> StoreResult<Option<i64>> {
    let mut conn = store.conn().await?;
    let row = sqlx::query("select min(run_at) as next from jobs where status = 'queued'").fetch_one(&mut *conn).await?;
    col(&row, "next")
}

/// Make a waiting job due now (a job deferred until something else finished, when it has).
pub async fn wake(conn: &mut AnyConnection, dedupe_key: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "update jobs set run_at = $1, updated_at = $1 where dedupe_key = $2 and status = 'queued' and run_at > $1",
    )
    .bind(now)
    .bind(dedupe_key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn find_by_dedupe_key(conn: &mut AnyConnection, dedupe_key: &str) -> StoreResult<Option<JobRow>> {
    let sql = format!("select {COLUMNS} from jobs where dedupe_key = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(dedupe_key).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// How many of a provider's jobs of `kind` whose dedupe key starts with `key_prefix` are still to run.
pub async fn count_unfinished(
    conn: &mut AnyConnection,
    provider_id: i64,
    kind: &str,
    key_prefix: &str,
) -> StoreResult<i64> {
    let pattern = format!("{}%", key_prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let row = sqlx::query(
        "select count(*) as n from jobs where provider_id = $1 and kind = $2 and status in ('queued', 'running') \
         and dedupe_key like $3 escape '\\'",
    )
    .bind(provider_id)
    .bind(kind)
    .bind(pattern)
    .fetch_one(&mut *conn)
    .await?;
    col(&row, "n")
}

/// A provider's jobs whose payload mentions `needle` (a complaint id: its sync, reply, refunds …), oldest first.
pub async fn mentioning(
    conn: &mut AnyConnection,
    provider_id: i64,
    needle: &str,
    limit: i64,
) -> StoreResult<Vec<JobRow>> {
    let pattern = format!("%{}%", needle.replace(['%', '_', '\\'], ""));
    let sql = format!("select {COLUMNS} from jobs where provider_id = $1 and payload like $2 order by id limit $3");
    let rows =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider_id).bind(pattern).bind(limit).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

pub async fn attempts(conn: &mut AnyConnection, job_id: i64) -> StoreResult<Vec<AttemptRow>> {
    let rows = sqlx::query(
        "select id, attempt, worker, started_at, finished_at, duration_ms, outcome, http_status, code, message, body, \
         next_attempt_at, external_id from job_attempts where job_id = $1 order by id",
    )
    .bind(job_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AttemptRow {
                id: col(row, "id")?,
                attempt: col(row, "attempt")?,
                worker: col(row, "worker")?,
                started_at: col(row, "started_at")?,
                finished_at: col(row, "finished_at")?,
                duration_ms: col(row, "duration_ms")?,
                outcome: col(row, "outcome")?,
                http_status: col(row, "http_status")?,
                code: col(row, "code")?,
                message: col(row, "message")?,
                body: col(row, "body")?,
                next_attempt_at: col(row, "next_attempt_at")?,
                external_id: col(row, "external_id")?,
            })
        })
        .collect()
}

/// Jobs per status, for `/metrics`.
pub async fn count_by_status(conn: &mut AnyConnection) -> StoreResult<Vec<(String, i64)>> {
    let rows = sqlx::query("select status, count(*) as n from jobs group by status").fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((col(r, "status")?, col(r, "n")?))).collect()
}
