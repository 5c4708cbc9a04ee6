//! The console dashboard's figures: what needs a person now, and how the last days went.
//!
//! Contract: read-only, a fixed number of queries whatever the data's size, each bounded by an index
//! (migration 0016 adds those the other modules did not need):
//! - open complaints near or past a deadline: `complaints_reply_due` (unreplied, by reply deadline, partial) and
//!   `complaints_open` (state, resolve deadline);
//! - refunds that failed or came back abnormal: `refunds_created`;
//! - dead jobs and dead deliveries: `jobs_due` (status first);
//! - callbacks refused in the last hour: `callback_rejections_received`;
//! - complaints per day and state: `complaints_time_state` (complaint time, state), covering;
//! - refunds per day and status: `refunds_created` (created, status, amount), covering;
//! - violations per day and kind: `violations_created`.
//!
//! Historical complaints (from before a provider's automation start) are left out of "needs a person now": a
//! provider connecting with a year of history would otherwise see only its past; they are counted apart.

use sqlx::AnyConnection;

use super::{StoreResult, col, flag};

/// One day in milliseconds.
const DAY_MS: i64 = 86_400_000;
/// Asia/Shanghai is UTC+8 all year: days are counted from its midnight.
const SHANGHAI_OFFSET_MS: i64 = 8 * 3_600_000;

/// The Asia/Shanghai day number (days since 1970-01-01 there) of a Unix ms time.
pub fn shanghai_day(ms: i64) -> i64 {
    (ms + SHANGHAI_OFFSET_MS).div_euclid(DAY_MS)
}

/// The Unix ms time at which Asia/Shanghai day `day` starts.
pub fn shanghai_day_start(day: i64) -> i64 {
    day * DAY_MS - SHANGHAI_OFFSET_MS
}

/// An open complaint near or past one of its deadlines.
#[derive(Debug, Clone)]
pub struct DueComplaint {
    pub provider_id: i64,
    pub complaint_id: String,
    pub complainted_mchid: String,
    pub state: String,
    pub amount_total: i64,
    pub problem_type: Option<String>,
    /// The deadline that comes first and is not met: the reply's while unreplied, else the resolution's.
    pub due_at: i64,
    /// `reply` or `resolve`.
    pub deadline: &'static str,
}

/// Open, non-historical complaints whose first unmet deadline is before `before` (Unix ms), soonest first, at
/// most `limit`; and how many there are in all (up to `count_cap`, so a huge backlog stays cheap to count).
pub async fn due_complaints(
    conn: &mut AnyConnection,
    before: i64,
    limit: i64,
    count_cap: i64,
) -> StoreResult<(Vec<DueComplaint>, i64)> {
    // Two index ranges: unreplied ones by their reply deadline, replied ones by their resolution deadline.
    let sql = "select provider_id, complaint_id, complainted_mchid, state, amount_total, problem_type, \
               reply_due_at as due_at, 1 as unreplied from complaints \
               where replied_at is null and state <> 'PROCESSED' and reply_due_at < $1 and historical = 0 \
               union all \
               select provider_id, complaint_id, complainted_mchid, state, amount_total, problem_type, \
               resolve_due_at as due_at, 0 as unreplied from complaints \
               where state in ('PENDING', 'PROCESSING') and resolve_due_at < $1 and replied_at is not null \
               and historical = 0 \
               order by due_at limit $2";
    let rows = sqlx::query(sql).bind(before).bind(limit).fetch_all(&mut *conn).await?;
    let items = rows
        .iter()
        .map(|row| {
            Ok(DueComplaint {
                provider_id: col(row, "provider_id")?,
                complaint_id: col(row, "complaint_id")?,
                complainted_mchid: col(row, "complainted_mchid")?,
                state: col(row, "state")?,
                amount_total: col(row, "amount_total")?,
                problem_type: col(row, "problem_type")?,
                due_at: col(row, "due_at")?,
                deadline: if flag(row, "unreplied")? { "reply" } else { "resolve" },
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let count_sql = "select count(*) as n from (\
               select id from complaints \
               where replied_at is null and state <> 'PROCESSED' and reply_due_at < $1 and historical = 0 \
               union all \
               select id from complaints \
               where state in ('PENDING', 'PROCESSING') and resolve_due_at < $1 and replied_at is not null \
               and historical = 0 limit $2) as due";
    let total: i64 = col(&sqlx::query(count_sql).bind(before).bind(count_cap).fetch_one(&mut *conn).await?, "n")?;
    Ok((items, total))
}

/// Open historical complaints (the provider's past, which wxrisk does not act on by itself).
pub async fn open_historical(conn: &mut AnyConnection, count_cap: i64) -> StoreResult<i64> {
    let sql = "select count(*) as n from (select id from complaints \
               where state in ('PENDING', 'PROCESSING') and historical = 1 limit $1) as open";
    col(&sqlx::query(sql).bind(count_cap).fetch_one(&mut *conn).await?, "n")
}

/// A refund WeChat Pay refused or reported abnormal.
#[derive(Debug, Clone)]
pub struct FailedRefund {
    pub provider_id: i64,
    pub complaint_id: String,
    pub sub_mchid: String,
    pub out_refund_no: String,
    pub amount: i64,
    pub status: String,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// Refunds created since `since` that ended `FAILED` or `ABNORMAL`, newest first, at most `limit`; and their count.
pub async fn failed_refunds(conn: &mut AnyConnection, since: i64, limit: i64) -> StoreResult<(Vec<FailedRefund>, i64)> {
    let sql = "select provider_id, complaint_id, sub_mchid, out_refund_no, amount, status, last_error, created_at \
               from refunds where created_at >= $1 and status in ('FAILED', 'ABNORMAL') \
               order by created_at desc, id desc limit $2";
    let rows = sqlx::query(sql).bind(since).bind(limit).fetch_all(&mut *conn).await?;
    let items = rows
        .iter()
        .map(|row| {
            Ok(FailedRefund {
                provider_id: col(row, "provider_id")?,
                complaint_id: col(row, "complaint_id")?,
                sub_mchid: col(row, "sub_mchid")?,
                out_refund_no: col(row, "out_refund_no")?,
                amount: col(row, "amount")?,
                status: col(row, "status")?,
                last_error: col(row, "last_error")?,
                created_at: col(row, "created_at")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let count_sql = "select count(*) as n from refunds where created_at >= $1 and status in ('FAILED', 'ABNORMAL')";
    let total: i64 = col(&sqlx::query(count_sql).bind(since).fetch_one(&mut *conn).await?, "n")?;
    Ok((items, total))
}

/// A job the queue gave up on.
#[derive(Debug, Clone)]
pub struct DeadJob {
    pub id: i64,
    pub kind: String,
    pub provider_id: Option<i64>,
    pub last_error: Option<String>,
    pub updated_at: i64,
    /// Set when the job is a notification's delivery: the channel it was for.
    pub channel_kind: Option<String>,
    pub event_kind: Option<String>,
}

/// Dead jobs, newest first (deliveries among them carry their channel and event), at most `limit`; and how many
/// dead jobs and dead deliveries there are.
pub async fn dead_jobs(conn: &mut AnyConnection, limit: i64) -> StoreResult<(Vec<DeadJob>, i64, i64)> {
    let sql = "select j.id, j.kind, j.provider_id, j.last_error, j.updated_at, d.channel_kind, d.event_kind \
               from jobs j left join deliveries d on d.job_id = j.id \
               where j.status = 'dead' order by j.id desc limit $1";
    let rows = sqlx::query(sql).bind(limit).fetch_all(&mut *conn).await?;
    let items = rows
        .iter()
        .map(|row| {
            Ok(DeadJob {
                id: col(row, "id")?,
                kind: col(row, "kind")?,
                provider_id: col(row, "provider_id")?,
                last_error: col(row, "last_error")?,
                updated_at: col(row, "updated_at")?,
                channel_kind: col(row, "channel_kind")?,
                event_kind: col(row, "event_kind")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let counts = sqlx::query(
        "select count(*) as jobs, count(d.id) as deliveries from jobs j left join deliveries d on d.job_id = j.id \
         where j.status = 'dead'",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((items, col(&counts, "jobs")?, col(&counts, "deliveries")?))
}

/// Callbacks refused since `since`, by provider, path and reason, most first. (The provider is known only when
/// the callback proved whose it was; the path is what the sender chose.)
#[derive(Debug, Clone)]
pub struct RejectionCount {
    pub provider_id: Option<i64>,
    pub path: String,
    pub reason: String,
    pub count: i64,
    pub last_at: i64,
}

pub async fn rejections_since(conn: &mut AnyConnection, since: i64) -> StoreResult<Vec<RejectionCount>> {
    let sql = "select provider_id, path, reason, count(*) as n, max(received_at) as last_at \
               from callback_rejections where received_at >= $1 group by provider_id, path, reason \
               order by n desc, last_at desc";
    let rows = sqlx::query(sql).bind(since).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            Ok(RejectionCount {
                provider_id: col(row, "provider_id")?,
                path: col(row, "path")?,
                reason: col(row, "reason")?,
                count: col(row, "n")?,
                last_at: col(row, "last_at")?,
            })
        })
        .collect()
}

/// Counts of one Asia/Shanghai day: `(day number, key, count, fen)` (`fen` is 0 where nothing is summed).
pub type DayCounts = Vec<(i64, String, i64, i64)>;

/// `(column + offset) / day`: the Asia/Shanghai day number of a Unix ms column (integer division of a
/// non-negative number: the same in both databases).
fn day_of(column: &str) -> String {
    format!("({column} + {SHANGHAI_OFFSET_MS}) / {DAY_MS}")
}

/// Complaints filed since `since`, per day and state (the state each has now).
pub async fn complaints_per_day(conn: &mut AnyConnection, since: i64) -> StoreResult<DayCounts> {
    let sql = format!(
        "select {d} as day, state as k, count(*) as n, 0 as fen from complaints where complaint_time >= $1 \
         group by {d}, state",
        d = day_of("complaint_time")
    );
    day_counts(conn, sql, since).await
}

/// Refunds asked for since `since`, per day and status, with their amounts.
pub async fn refunds_per_day(conn: &mut AnyConnection, since: i64) -> StoreResult<DayCounts> {
    // PostgreSQL's sum of bigints is numeric: cast back.
    let sql = format!(
        "select {d} as day, status as k, count(*) as n, cast(coalesce(sum(amount), 0) as bigint) as fen \
         from refunds where created_at >= $1 group by {d}, status",
        d = day_of("created_at")
    );
    day_counts(conn, sql, since).await
}

/// Violation records first received since `since`, per day and kind.
pub async fn violations_per_day(conn: &mut AnyConnection, since: i64) -> StoreResult<DayCounts> {
    let sql = format!(
        "select {d} as day, kind as k, count(*) as n, 0 as fen from violations where created_at >= $1 \
         group by {d}, kind",
        d = day_of("created_at")
    );
    day_counts(conn, sql, since).await
}

async fn day_counts(conn: &mut AnyConnection, sql: String, since: i64) -> StoreResult<DayCounts> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(since).fetch_all(&mut *conn).await?;
    rows.iter().map(|row| Ok((col(row, "day")?, col(row, "k")?, col(row, "n")?, col(row, "fen")?))).collect()
}

/// The sub-merchants whose last computed risk score is highest: `(provider_id, sub_mchid)`, at most `limit`.
/// Scores are stored when a complaint or violation changes them and fall as days pass, so callers recompute
/// the current score of these candidates (`workflow::violations::current_scores`) before ranking them.
pub async fn risk_candidates(conn: &mut AnyConnection, limit: i64) -> StoreResult<Vec<(i64, String)>> {
    let sql = "select provider_id, sub_mchid from merchant_risk where score > 0 \
               order by score desc, computed_at desc limit $1";
    let rows = sqlx::query(sql).bind(limit).fetch_all(&mut *conn).await?;
    rows.iter().map(|row| Ok((col(row, "provider_id")?, col(row, "sub_mchid")?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_days_start_at_its_midnight() {
        // 2025-12-07 00:00 in Shanghai is 2025-12-06 16:00 UTC.
        let midnight = 1_765_036_800_000;
        let day = shanghai_day(midnight);
        assert_eq!(shanghai_day_start(day), midnight);
        assert_eq!(shanghai_day(midnight - 1), day - 1);
        assert_eq!(shanghai_day(midnight + DAY_MS - 1), day);
        assert_eq!(crate::web::console::page::shanghai(midnight), "2025-12-07 00:00:00");
    }
}
