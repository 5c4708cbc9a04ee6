//! `refunds`: every refund wxrisk asked WeChat Pay for, and what became of it.
//!
//! Contract: a refund row is created (status `REQUESTED`) in the transaction that decides to refund, before any
//! request; its `out_refund_no` is unique per provider, so the same refund can be asked for any number of times
//! and is one refund at WeChat Pay.
//!
//! One refund per order is the database's rule, not a check before acting: a partial unique index
//! (`refunds_one_holder_per_order`) allows one row per provider and order with `holds_order = 1` that is not
//! finally failed. [`create`] inserts with `on conflict do nothing` and says which rule stopped it, so two workers
//! deciding about the same order at the same moment make one refund, and the other learns the order is already
//! being refunded ([`Created::OrderHeld`]). Only an operator's explicit additional refund does not hold the order.
//!
//! Statuses: `REQUESTED` (asked, or about to be; outcome unknown), `PROCESSING`, `SUCCESS`, `ABNORMAL` (not final at
//! WeChat Pay: the money may still go out through its abnormal-refund handling, so it keeps holding the order),
//! `CLOSED` (final failure) and `FAILED` (WeChat Pay confirmed it has no such refund: never set on an error alone,
//! see `workflow::effects::refund`). Only `CLOSED` and `FAILED` free the order.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{StoreError, StoreResult, col, flag, to_flag};

#[derive(Debug, Clone)]
pub struct RefundRow {
    pub id: i64,
    pub provider_id: i64,
    pub complaint_id: String,
    pub sub_mchid: String,
    pub transaction_id: String,
    pub out_trade_no: Option<String>,
    pub out_refund_no: String,
    pub amount: i64,
    pub total: i64,
    /// `REQUESTED`, `PROCESSING`, `SUCCESS`, `CLOSED`, `ABNORMAL`, `FAILED`.
    pub status: String,
    pub refund_id: Option<String>,
    pub user_received_account: Option<String>,
    pub last_error: Option<String>,
    pub requested_by: String,
    /// Holds its order (at most one live holder per order); `false` only for an operator's additional refund.
    pub holds_order: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub succeeded_at: Option<i64>,
}

#[derive(Debug)]
pub struct NewRefund<'a> {
    pub provider_id: i64,
    pub complaint_id: &'a str,
    pub sub_mchid: &'a str,
    pub transaction_id: &'a str,
    pub out_trade_no: Option<&'a str>,
    pub out_refund_no: &'a str,
    pub amount: i64,
    pub total: i64,
    pub requested_by: &'a str,
    pub holds_order: bool,
}

/// What [`create`] did.
#[derive(Debug, Clone)]
pub enum Created {
    /// A new refund row.
    New,
    /// A refund with this `out_refund_no` exists already (the same decision made again): nothing new.
    Exists,
    /// Another refund holds the order (made by another complaint, worker or operator): nothing new.
    OrderHeld(Box<RefundRow>),
}

/// Statuses after which a refund no longer counts for its order: nothing was or will be paid.
pub const FREED_ORDER: [&str; 2] = ["CLOSED", "FAILED"];

const COLUMNS: &str = "id, provider_id, complaint_id, sub_mchid, transaction_id, out_trade_no, out_refund_no, amount, \
    total, status, refund_id, user_received_account, last_error, requested_by, holds_order, created_at, updated_at, \
    succeeded_at";

fn from_row(row: &AnyRow) -> StoreResult<RefundRow> {
    Ok(RefundRow {
        id: col(row, "id")?,
        provider_id: col(row, "provider_id")?,
        complaint_id: col(row, "complaint_id")?,
        sub_mchid: col(row, "sub_mchid")?,
        transaction_id: col(row, "transaction_id")?,
        out_trade_no: col(row, "out_trade_no")?,
        out_refund_no: col(row, "out_refund_no")?,
        amount: col(row, "amount")?,
        total: col(row, "total")?,
        status: col(row, "status")?,
        refund_id: col(row, "refund_id")?,
        user_received_account: col(row, "user_received_account")?,
        last_error: col(row, "last_error")?,
        requested_by: col(row, "requested_by")?,
        holds_order: flag(row, "holds_order")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        succeeded_at: col(row, "succeeded_at")?,
    })
}

/// Create the refund unless it exists or another refund holds its order. The insert skips on either unique rule
/// (no conflict target: both backends then skip on any unique index), and what stopped it is read afterwards. On
/// PostgreSQL an insert racing another transaction's uncommitted holder waits for it, then skips.
pub async fn create(conn: &mut AnyConnection, r: &NewRefund<'_>, now: i64) -> StoreResult<Created> {
    let row = sqlx::query(
        "insert into refunds (provider_id, complaint_id, sub_mchid, transaction_id, out_trade_no, out_refund_no, amount, \
         total, status, requested_by, holds_order, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, \
         'REQUESTED', $9, $10, $11, $11) on conflict do nothing returning id",
    )
    .bind(r.provider_id)
    .bind(r.complaint_id)
    .bind(r.sub_mchid)
    .bind(r.transaction_id)
    .bind(r.out_trade_no)
    .bind(r.out_refund_no)
    .bind(r.amount)
    .bind(r.total)
    .bind(r.requested_by)
    .bind(to_flag(r.holds_order))
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if row.is_some() {
        return Ok(Created::New);
    }
    if get(conn, r.provider_id, r.out_refund_no).await?.is_some() {
        return Ok(Created::Exists);
    }
    match holder_of_order(conn, r.provider_id, r.transaction_id).await? {
        Some(holder) => Ok(Created::OrderHeld(Box::new(holder))),
        None => Err(StoreError::Corrupt(format!(
            "refund {} was not inserted, yet neither it nor a holder of order {} exists",
            r.out_refund_no, r.transaction_id
        ))),
    }
}

pub async fn get(conn: &mut AnyConnection, provider_id: i64, out_refund_no: &str) -> StoreResult<Option<RefundRow>> {
    let sql = format!("select {COLUMNS} from refunds where provider_id = $1 and out_refund_no = $2");
    let row =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider_id).bind(out_refund_no).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// The order's refunds that still count (not `CLOSED`, not `FAILED`), oldest first.
pub async fn live_for_order(
    conn: &mut AnyConnection,
    provider_id: i64,
    transaction_id: &str,
) -> StoreResult<Vec<RefundRow>> {
    let sql = format!(
        "select {COLUMNS} from refunds where provider_id = $1 and transaction_id = $2 \
         and status not in ('CLOSED', 'FAILED') order by id"
    );
    let rows =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider_id).bind(transaction_id).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

/// The refund holding the order, if any.
pub async fn holder_of_order(
    conn: &mut AnyConnection,
    provider_id: i64,
    transaction_id: &str,
) -> StoreResult<Option<RefundRow>> {
    let sql = format!(
        "select {COLUMNS} from refunds where provider_id = $1 and transaction_id = $2 and holds_order = 1 \
         and status not in ('CLOSED', 'FAILED')"
    );
    let row =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider_id).bind(transaction_id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// The order's newest refund, whatever its status.
pub async fn latest_for_order(
    conn: &mut AnyConnection,
    provider_id: i64,
    transaction_id: &str,
) -> StoreResult<Option<RefundRow>> {
    let sql = format!(
        "select {COLUMNS} from refunds where provider_id = $1 and transaction_id = $2 order by id desc limit 1"
    );
    let row =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider_id).bind(transaction_id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// How many refunds of this order were ever created (to number a new one after a closed one).
pub async fn count_for_order(conn: &mut AnyConnection, provider_id: i64, transaction_id: &str) -> StoreResult<i64> {
    let row = sqlx::query("select count(*) as n from refunds where provider_id = $1 and transaction_id = $2")
        .bind(provider_id)
        .bind(transaction_id)
        .fetch_one(&mut *conn)
        .await?;
    col(&row, "n")
}

pub async fn for_complaint(
    conn: &mut AnyConnection,
    provider_id: i64,
    complaint_id: &str,
) -> StoreResult<Vec<RefundRow>> {
    let sql = format!("select {COLUMNS} from refunds where provider_id = $1 and complaint_id = $2 order by id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider_id).bind(complaint_id).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

/// What WeChat Pay said of the refund.
#[derive(Debug, Default)]
pub struct RefundUpdate<'a> {
    pub status: &'a str,
    pub refund_id: Option<&'a str>,
    pub user_received_account: Option<&'a str>,
    pub last_error: Option<&'a str>,
    pub succeeded_at: Option<i64>,
}

/// Record a status. A final `SUCCESS` is never overwritten by a late `PROCESSING` (answers can arrive out of
/// order: the query, the callback, the create answer). Returns the status before.
pub async fn update(
    conn: &mut AnyConnection,
    provider_id: i64,
    out_refund_no: &str,
    u: &RefundUpdate<'_>,
    now: i64,
) -> StoreResult<Option<String>> {
    let Some(before) = get(conn, provider_id, out_refund_no).await? else { return Ok(None) };
    let downgrade = before.status == "SUCCESS" && u.status != "SUCCESS";
    let status = if downgrade { before.status.as_str() } else { u.status };
    sqlx::query(
        "update refunds set status = $1, refund_id = coalesce($2, refund_id), \
         user_received_account = coalesce($3, user_received_account), last_error = $4, \
         succeeded_at = coalesce(succeeded_at, $5), updated_at = $6 where id = $7",
    )
    .bind(status)
    .bind(u.refund_id)
    .bind(u.user_received_account)
    .bind(u.last_error)
    .bind(u.succeeded_at)
    .bind(now)
    .bind(before.id)
    .execute(&mut *conn)
    .await?;
    Ok(Some(before.status))
}
