//! `complaints` (one row per complaint, the latest we know of it), `complaint_timeline` (every step wxrisk took,
//! with its outcome) and `reconcile_state`.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{AnyQuery, StoreResult, col, flag, to_flag};

#[derive(Debug, Clone)]
pub struct ComplaintRow {
    pub id: i64,
    pub provider_id: i64,
    pub complaint_id: String,
    pub complainted_mchid: String,
    /// `PENDING`, `PROCESSING`, `PROCESSED`.
    pub state: String,
    pub complaint_time: i64,
    pub detail: String,
    pub problem_type: Option<String>,
    pub problem_description: Option<String>,
    pub apply_refund_amount: Option<i64>,
    pub amount_total: i64,
    pub payer_phone_sealed: Option<String>,
    pub payer_phone_masked: Option<String>,
    pub payer_openid: Option<String>,
    pub user_complaint_times: i64,
    pub full_refunded: bool,
    pub incoming_user_response: bool,
    pub in_platform_service: bool,
    pub need_immediate_service: bool,
    /// JSON `[{transaction_id, out_trade_no, amount}]`.
    pub orders: String,
    /// The whole detail as WeChat sent it, `payer_phone` removed.
    pub detail_json: String,
    pub history_json: String,
    pub last_action_type: Option<String>,
    pub reply_due_at: i64,
    pub resolve_due_at: i64,
    pub replied_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub fingerprint: String,
    /// From before the provider's automation start: recorded and listed, never acted on by wxrisk by itself.
    pub historical: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a sync writes.
#[derive(Debug)]
pub struct ComplaintWrite<'a> {
    pub provider_id: i64,
    pub complaint_id: &'a str,
    pub complainted_mchid: &'a str,
    pub state: &'a str,
    pub complaint_time: i64,
    pub detail: &'a str,
    pub problem_type: Option<&'a str>,
    pub problem_description: Option<&'a str>,
    pub apply_refund_amount: Option<i64>,
    pub amount_total: i64,
    // The sealed phone is not part of the write: it is sealed for the row once the row exists
    // (sealed for `PAYER_PHONE.row(id)`, written with `store::secrets::put`), in the same transaction.
    pub payer_phone_masked: Option<&'a str>,
    pub payer_openid: Option<&'a str>,
    pub user_complaint_times: i64,
    pub full_refunded: bool,
    pub incoming_user_response: bool,
    pub in_platform_service: bool,
    pub need_immediate_service: bool,
    pub orders: &'a str,
    pub detail_json: &'a str,
    pub history_json: &'a str,
    pub last_action_type: Option<&'a str>,
    pub reply_due_at: i64,
    pub resolve_due_at: i64,
    pub fingerprint: &'a str,
}

const COLUMNS: &str = "id, provider_id, complaint_id, complainted_mchid, state, complaint_time, detail, problem_type, \
    problem_description, apply_refund_amount, amount_total, payer_phone_sealed, payer_phone_masked, payer_openid, \
    user_complaint_times, full_refunded, incoming_user_response, in_platform_service, need_immediate_service, orders, \
    detail_json, history_json, last_action_type, reply_due_at, resolve_due_at, replied_at, completed_at, fingerprint, \
    historical, created_at, updated_at";

fn from_row(row: &AnyRow) -> StoreResult<ComplaintRow> {
    Ok(ComplaintRow {
        id: col(row, "id")?,
        provider_id: col(row, "provider_id")?,
        complaint_id: col(row, "complaint_id")?,
        complainted_mchid: col(row, "complainted_mchid")?,
        state: col(row, "state")?,
        complaint_time: col(row, "complaint_time")?,
        detail: col(row, "detail")?,
        problem_type: col(row, "problem_type")?,
        problem_description: col(row, "problem_description")?,
        apply_refund_amount: col(row, "apply_refund_amount")?,
        amount_total: col(row, "amount_total")?,
        payer_phone_sealed: col(row, "payer_phone_sealed")?,
        payer_phone_masked: col(row, "payer_phone_masked")?,
        payer_openid: col(row, "payer_openid")?,
        user_complaint_times: col(row, "user_complaint_times")?,
        full_refunded: flag(row, "full_refunded")?,
        incoming_user_response: flag(row, "incoming_user_response")?,
        in_platform_service: flag(row, "in_platform_service")?,
        need_immediate_service: flag(row, "need_immediate_service")?,
        orders: col(row, "orders")?,
        detail_json: col(row, "detail_json")?,
        history_json: col(row, "history_json")?,
        last_action_type: col(row, "last_action_type")?,
        reply_due_at: col(row, "reply_due_at")?,
        resolve_due_at: col(row, "resolve_due_at")?,
        replied_at: col(row, "replied_at")?,
        completed_at: col(row, "completed_at")?,
        fingerprint: col(row, "fingerprint")?,
        historical: flag(row, "historical")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

pub async fn get(conn: &mut AnyConnection, provider_id: i64, complaint_id: &str) -> StoreResult<Option<ComplaintRow>> {
    let sql = format!("select {COLUMNS} from complaints where provider_id = $1 and complaint_id = $2");
    let row =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider_id).bind(complaint_id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_row_id(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<ComplaintRow>> {
    let sql = format!("select {COLUMNS} from complaints where id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// Find complaints by WeChat's complaint id across providers (the API addresses complaints by that id).
pub async fn find(conn: &mut AnyConnection, complaint_id: &str) -> StoreResult<Vec<ComplaintRow>> {
    let sql = format!("select {COLUMNS} from complaints where complaint_id = $1 order by id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(complaint_id).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

/// Bind `$1..$26` in the order insert and update both number them.
fn bind_write<'q>(query: AnyQuery<'q>, c: &ComplaintWrite<'q>, now: i64) -> AnyQuery<'q> {
    query
        .bind(c.provider_id)
        .bind(c.complaint_id)
        .bind(c.complainted_mchid)
        .bind(c.state)
        .bind(c.complaint_time)
        .bind(c.detail)
        .bind(c.problem_type)
        .bind(c.problem_description)
        .bind(c.apply_refund_amount)
        .bind(c.amount_total)
        // $11, payer_phone_sealed: NULL on insert, kept on update (see `ComplaintWrite`).
        .bind(None::<&str>)
        .bind(c.payer_phone_masked)
        .bind(c.payer_openid)
        .bind(c.user_complaint_times)
        .bind(to_flag(c.full_refunded))
        .bind(to_flag(c.incoming_user_response))
        .bind(to_flag(c.in_platform_service))
        .bind(to_flag(c.need_immediate_service))
        .bind(c.orders)
        .bind(c.detail_json)
        .bind(c.history_json)
        .bind(c.last_action_type)
        .bind(c.reply_due_at)
        .bind(c.resolve_due_at)
        .bind(c.fingerprint)
        .bind(now)
}

/// Insert or update; returns the row id and whether it was new.
pub async fn upsert(conn: &mut AnyConnection, c: &ComplaintWrite<'_>, now: i64) -> StoreResult<(i64, bool)> {
    let insert = sqlx::query(
        "insert into complaints (provider_id, complaint_id, complainted_mchid, state, complaint_time, detail, \
         problem_type, problem_description, apply_refund_amount, amount_total, payer_phone_sealed, payer_phone_masked, \
         payer_openid, user_complaint_times, full_refunded, incoming_user_response, in_platform_service, \
         need_immediate_service, orders, detail_json, history_json, last_action_type, reply_due_at, resolve_due_at, \
         fingerprint, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $26) on conflict (provider_id, complaint_id) do nothing \
         returning id",
    );
    let inserted = bind_write(insert, c, now).fetch_optional(&mut *conn).await?;
    if let Some(row) = inserted {
        return Ok((col(&row, "id")?, true));
    }
    let update = sqlx::query(
        "update complaints set complainted_mchid = $3, state = $4, complaint_time = $5, detail = $6, problem_type = $7, \
         problem_description = $8, apply_refund_amount = $9, amount_total = $10, \
         payer_phone_sealed = coalesce($11, payer_phone_sealed), payer_phone_masked = coalesce($12, payer_phone_masked), \
         payer_openid = coalesce($13, payer_openid), user_complaint_times = $14, full_refunded = $15, \
         incoming_user_response = $16, in_platform_service = $17, need_immediate_service = $18, orders = $19, \
         detail_json = $20, history_json = $21, last_action_type = coalesce($22, last_action_type), \
         reply_due_at = $23, resolve_due_at = $24, fingerprint = $25, updated_at = $26 \
         where provider_id = $1 and complaint_id = $2 returning id",
    );
    let row = bind_write(update, c, now).fetch_one(&mut *conn).await?;
    Ok((col(&row, "id")?, false))
}

/// Record that a reply went out (the first one sets `replied_at`).
pub async fn mark_replied(conn: &mut AnyConnection, id: i64, now: i64) -> StoreResult<()> {
    sqlx::query(
        "update complaints set replied_at = coalesce(replied_at, $1), \
         state = case when state = 'PENDING' then 'PROCESSING' else state end, updated_at = $1 where id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Complaints from before the automation start that no digest has counted yet, summed up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    pub count: i64,
    /// Not `PROCESSED` at WeChat Pay when last synced.
    pub open: i64,
    pub amount_fen: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// Sum up the provider's historical complaints no digest has counted, and mark them counted (in the caller's
/// transaction, so a digest that is not sent counts them again next time).
pub async fn take_backlog(conn: &mut AnyConnection, provider_id: i64) -> StoreResult<Backlog> {
    let row = sqlx::query(
        "select count(*) as n, cast(coalesce(sum(case when state <> 'PROCESSED' then 1 else 0 end), 0) as bigint) as open, \
         cast(coalesce(sum(amount_total), 0) as bigint) as amount, min(complaint_time) as first, \
         max(complaint_time) as last, max(id) as last_id \
         from complaints where provider_id = $1 and historical = 1 and backlog_notified = 0",
    )
    .bind(provider_id)
    .fetch_one(&mut *conn)
    .await?;
    let Some(last_id) = col::<Option<i64>>(&row, "last_id")? else { return Ok(Backlog::default()) };
    sqlx::query(
        "update complaints set backlog_notified = 1 where provider_id = $1 and historical = 1 \
         and backlog_notified = 0 and id <= $2",
    )
    .bind(provider_id)
    .bind(last_id)
    .execute(&mut *conn)
    .await?;
    Ok(Backlog {
        count: col(&row, "n")?,
        open: col(&row, "open")?,
        amount_fen: col(&row, "amount")?,
        first_ms: col::<Option<i64>>(&row, "first")?.unwrap_or_default(),
        last_ms: col::<Option<i64>>(&row, "last")?.unwrap_or_default(),
    })
}

/// The complaint was told about on its own: no digest counts it.
pub async fn mark_backlog_notified(conn: &mut AnyConnection, id: i64) -> StoreResult<()> {
    sqlx::query("update complaints set backlog_notified = 1 where id = $1").bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Whether the complaint is from before its provider's automation start (see `workflow::complaints`).
pub async fn set_historical(conn: &mut AnyConnection, id: i64, historical: bool) -> StoreResult<()> {
    sqlx::query("update complaints set historical = $1 where id = $2")
        .bind(to_flag(historical))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn mark_platform_involved(conn: &mut AnyConnection, id: i64) -> StoreResult<()> {
    sqlx::query("update complaints set platform_involved = 1 where id = $1").bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Take WeChat's state for the complaint (read outside a sync, e.g. by a deadline check).
pub async fn set_state(conn: &mut AnyConnection, id: i64, state: &str, now: i64) -> StoreResult<()> {
    sqlx::query("update complaints set state = $1, updated_at = $2 where id = $3")
        .bind(state)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn mark_completed(conn: &mut AnyConnection, id: i64, now: i64) -> StoreResult<()> {
    sqlx::query(
        "update complaints set completed_at = coalesce(completed_at, $1), state = 'PROCESSED', updated_at = $1 where id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// List filters; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct ComplaintFilter {
    pub provider_id: Option<i64>,
    pub complainted_mchid: Option<String>,
    pub state: Option<String>,
    /// Complaint time at or after / before (Unix ms).
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Past a deadline it has not met, at this time (Unix ms).
    pub overdue_at: Option<i64>,
    /// Only complaints from before (`true`) or since (`false`) the provider's automation start.
    pub historical: Option<bool>,
}

/// Newest first (by row id, which follows arrival).
pub async fn list(
    conn: &mut AnyConnection,
    filter: &ComplaintFilter,
    before_id: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<ComplaintRow>> {
    let sql = format!(
        "select {COLUMNS} from complaints where id < $1 and ($2 is null or provider_id = $2) \
         and ($3 is null or complainted_mchid = $3) and ($4 is null or state = $4) \
         and ($5 is null or complaint_time >= $5) and ($6 is null or complaint_time < $6) \
         and ($7 is null or (state <> 'PROCESSED' and (resolve_due_at < $7 or (replied_at is null and reply_due_at < $7)))) \
         and ($9 is null or historical = $9) \
         order by id desc limit $8"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(filter.provider_id)
        .bind(filter.complainted_mchid.as_deref())
        .bind(filter.state.as_deref())
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.overdue_at)
        .bind(limit)
        .bind(filter.historical.map(to_flag))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// The fingerprints we hold for these complaint ids (reconciliation compares them with WeChat's list).
pub async fn fingerprints(
    conn: &mut AnyConnection,
    provider_id: i64,
    complaint_ids: &[String],
) -> StoreResult<Vec<(String, String)>> {
    if complaint_ids.is_empty() {
        return Ok(Vec::new());
    }
    // One statement for the page (at most 50 ids).
    let placeholders: Vec<String> = (0..complaint_ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "select complaint_id, fingerprint from complaints where provider_id = $1 and complaint_id in ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider_id);
    for id in complaint_ids {
        query = query.bind(id);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((col(r, "complaint_id")?, col(r, "fingerprint")?))).collect()
}

#[derive(Debug, Clone)]
pub struct TimelineRow {
    pub id: i64,
    pub at: i64,
    pub step: String,
    /// `ok`, `failed`, `skipped`, `info`.
    pub outcome: String,
    /// JSON.
    pub detail: String,
}

/// Add a step to a complaint's timeline.
pub async fn add_step(
    conn: &mut AnyConnection,
    complaint_row_id: i64,
    step: &str,
    outcome: &str,
    detail: &serde_json::Value,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "insert into complaint_timeline (complaint_row_id, at, step, outcome, detail) values ($1, $2, $3, $4, $5)",
    )
    .bind(complaint_row_id)
    .bind(now)
    .bind(step)
    .bind(outcome)
    .bind(detail.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn timeline(conn: &mut AnyConnection, complaint_row_id: i64) -> StoreResult<Vec<TimelineRow>> {
    let rows = sqlx::query(
        "select id, at, step, outcome, detail from complaint_timeline where complaint_row_id = $1 order by id",
    )
    .bind(complaint_row_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TimelineRow {
                id: col(r, "id")?,
                at: col(r, "at")?,
                step: col(r, "step")?,
                outcome: col(r, "outcome")?,
                detail: col(r, "detail")?,
            })
        })
        .collect()
}

/// The last day a completed reconciliation of this provider covered, if any.
pub async fn reconciled_until(conn: &mut AnyConnection, provider_id: i64) -> StoreResult<Option<String>> {
    let row = sqlx::query("select covered_until from reconcile_state where provider_id = $1")
        .bind(provider_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(|r| col(r, "covered_until")).transpose()
}

pub async fn set_reconciled_until(
    conn: &mut AnyConnection,
    provider_id: i64,
    covered_until: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "insert into reconcile_state (provider_id, covered_until, last_run_at) values ($1, $2, $3) \
         on conflict (provider_id) do update set covered_until = excluded.covered_until, last_run_at = excluded.last_run_at",
    )
    .bind(provider_id)
    .bind(covered_until)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
