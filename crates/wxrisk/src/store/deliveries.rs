//! `deliveries`: one notification to one recipient on one channel, carried by one job. Its status is its job's.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{StoreError, StoreResult, col};

#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: i64,
    pub job_id: i64,
    pub provider_id: i64,
    pub channel_id: i64,
    pub channel_kind: String,
    pub recipient: String,
    pub event_kind: String,
    pub event_key: String,
    pub subject: String,
    /// JSON of the rendered message.
    pub message: String,
    pub locale: String,
    pub last_code: Option<String>,
    pub external_id: Option<String>,
    pub digested_into: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
    /// The job's status (for a digested delivery, its carrier's): `queued`, `running`, `succeeded`, `dead`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

#[derive(Debug)]
pub struct NewDelivery<'a> {
    pub job_id: i64,
    pub provider_id: i64,
    pub channel_id: i64,
    pub channel_kind: &'a str,
    pub recipient: &'a str,
    pub event_kind: &'a str,
    pub event_key: &'a str,
    pub subject: &'a str,
    pub message: &'a str,
    pub locale: &'a str,
}

const COLUMNS: &str = "d.id, d.job_id, d.provider_id, d.channel_id, d.channel_kind, d.recipient, d.event_kind, d.event_key, \
    d.subject, d.message, d.locale, d.last_code, d.external_id, d.digested_into, d.created_at, d.updated_at, d.delivered_at, \
    coalesce(cj.status, j.status) as status, j.attempts, coalesce(cj.last_error, j.last_error) as last_error";

/// A delivery sent inside another's digest shares that one's fate: its status is the carrier's job's.
const FROM: &str = "deliveries d join jobs j on j.id = d.job_id \
    left join deliveries c on c.id = d.digested_into left join jobs cj on cj.id = c.job_id";

fn from_row(row: &AnyRow) -> StoreResult<DeliveryRow> {
    Ok(DeliveryRow {
        id: col(row, "id")?,
        job_id: col(row, "job_id")?,
        provider_id: col(row, "provider_id")?,
        channel_id: col(row, "channel_id")?,
        channel_kind: col(row, "channel_kind")?,
        recipient: col(row, "recipient")?,
        event_kind: col(row, "event_kind")?,
        event_key: col(row, "event_key")?,
        subject: col(row, "subject")?,
        message: col(row, "message")?,
        locale: col(row, "locale")?,
        last_code: col(row, "last_code")?,
        external_id: col(row, "external_id")?,
        digested_into: col(row, "digested_into")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        delivered_at: col(row, "delivered_at")?,
        status: col(row, "status")?,
        attempts: col(row, "attempts")?,
        last_error: col(row, "last_error")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, d: &NewDelivery<'_>, now: i64) -> StoreResult<i64> {
    let row = sqlx::query(
        "insert into deliveries (job_id, provider_id, channel_id, channel_kind, recipient, event_kind, event_key, subject, \
         message, locale, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) returning id",
    )
    .bind(d.job_id)
    .bind(d.provider_id)
    .bind(d.channel_id)
    .bind(d.channel_kind)
    .bind(d.recipient)
    .bind(d.event_kind)
    .bind(d.event_key)
    .bind(d.subject)
    .bind(d.message)
    .bind(d.locale)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::from_write)?;
    col(&row, "id")
}

pub async fn by_job(conn: &mut AnyConnection, job_id: i64) -> StoreResult<Option<DeliveryRow>> {
    let sql = format!("select {COLUMNS} from {FROM} where d.job_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(job_id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn get(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<DeliveryRow>> {
    let sql = format!("select {COLUMNS} from {FROM} where d.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// How many messages went to this destination since `since` (for its rate limit).
pub async fn sent_since(
    conn: &mut AnyConnection,
    channel_id: i64,
    recipient: &str,
    since: i64,
) -> StoreResult<Vec<i64>> {
    let rows = sqlx::query(
        "select delivered_at from deliveries where channel_id = $1 and recipient = $2 and delivered_at >= $3 \
         and digested_into is null order by delivered_at",
    )
    .bind(channel_id)
    .bind(recipient)
    .bind(since)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| col(r, "delivered_at")).collect()
}

/// Other deliveries to the same destination waiting for their first attempt (new, or deferred by the rate limit):
/// candidates for a digest.
pub async fn waiting_for(
    conn: &mut AnyConnection,
    channel_id: i64,
    recipient: &str,
    except_id: i64,
) -> StoreResult<Vec<DeliveryRow>> {
    let sql = format!(
        "select {COLUMNS} from {FROM} where d.channel_id = $1 and d.recipient = $2 \
         and d.id <> $3 and j.status = 'queued' and j.attempts = 0 order by d.id limit 50"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(channel_id)
        .bind(recipient)
        .bind(except_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Take a waiting delivery's job for a digest: `true` when it was still waiting (no worker has it).
pub async fn take_for_digest(
    conn: &mut AnyConnection,
    delivery: &DeliveryRow,
    into: i64,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "update jobs set status = 'succeeded', finished_at = $1, updated_at = $1, last_error = null \
         where id = $2 and status = 'queued' and attempts = 0",
    )
    .bind(now)
    .bind(delivery.job_id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    // `delivered_at` is set when the digest itself is delivered (`record_answer`).
    sqlx::query("update deliveries set digested_into = $1, updated_at = $2 where id = $3")
        .bind(into)
        .bind(now)
        .bind(delivery.id)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// The deliveries that went (or go) out inside this one's digest, oldest first.
pub async fn digest_members(conn: &mut AnyConnection, carrier_id: i64) -> StoreResult<Vec<DeliveryRow>> {
    let sql = format!("select {COLUMNS} from {FROM} where d.digested_into = $1 order by d.id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(carrier_id).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

/// Record what the provider answered; `delivered` marks it sent.
pub async fn record_answer(
    conn: &mut AnyConnection,
    id: i64,
    code: Option<&str>,
    external_id: Option<&str>,
    delivered: bool,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "update deliveries set last_code = $1, external_id = coalesce($2, external_id), updated_at = $3, \
         delivered_at = case when $4 = 1 then $3 else delivered_at end where id = $5",
    )
    .bind(code)
    .bind(external_id)
    .bind(now)
    .bind(i64::from(delivered))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// List filters; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct DeliveryFilter {
    pub channel_id: Option<i64>,
    pub provider_id: Option<i64>,
    pub status: Option<String>,
    pub event_kind: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Newest first.
pub async fn list(
    conn: &mut AnyConnection,
    filter: &DeliveryFilter,
    before_id: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<DeliveryRow>> {
    let sql = format!(
        "select {COLUMNS} from {FROM} where d.id < $1 \
         and ($2 is null or d.channel_id = $2) and ($3 is null or d.provider_id = $3) and ($4 is null or coalesce(cj.status, j.status) = $4) \
         and ($5 is null or d.event_kind = $5) and ($6 is null or d.created_at >= $6) and ($7 is null or d.created_at < $7) \
         order by d.id desc limit $8"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(filter.channel_id)
        .bind(filter.provider_id)
        .bind(filter.status.as_deref())
        .bind(filter.event_kind.as_deref())
        .bind(filter.since)
        .bind(filter.until)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}
