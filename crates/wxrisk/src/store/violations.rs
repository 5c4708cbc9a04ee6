//! `violations` (one row per disposal record, keyed by WeChat's `record_id`), `violation_events` (every
//! notification about one), `merchant_limitations` and `merchant_risk`.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use std::collections::HashMap;

use super::conditions::{Arg, Conditions};
use super::{StoreResult, col};
use crate::domain::risk::RiskFigures;

#[derive(Debug, Clone)]
pub struct ViolationRow {
    pub id: i64,
    pub provider_id: i64,
    pub record_id: String,
    pub sub_mchid: String,
    pub company_name: String,
    /// `PUNISH`, `INTERCEPT` or `APPEAL`.
    pub kind: String,
    pub risk_type: String,
    pub risk_description: String,
    pub punish_plan: String,
    pub punish_time: String,
    pub punish_time_ms: Option<i64>,
    pub punish_description: String,
    pub appeal_state: Option<String>,
    pub appeal_detail: Option<String>,
    pub appeal_updated_at: Option<i64>,
    pub last_event_type: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug)]
pub struct ViolationWrite<'a> {
    pub provider_id: i64,
    pub record_id: &'a str,
    pub sub_mchid: &'a str,
    pub company_name: &'a str,
    pub kind: &'a str,
    pub risk_type: &'a str,
    pub risk_description: &'a str,
    pub punish_plan: &'a str,
    pub punish_time: &'a str,
    pub punish_time_ms: Option<i64>,
    pub punish_description: &'a str,
    pub event_type: &'a str,
}

const COLUMNS: &str = "id, provider_id, record_id, sub_mchid, company_name, kind, risk_type, risk_description, \
    punish_plan, punish_time, punish_time_ms, punish_description, appeal_state, appeal_detail, appeal_updated_at, \
    last_event_type, created_at, updated_at";

fn from_row(row: &AnyRow) -> StoreResult<ViolationRow> {
    Ok(ViolationRow {
        id: col(row, "id")?,
        provider_id: col(row, "provider_id")?,
        record_id: col(row, "record_id")?,
        sub_mchid: col(row, "sub_mchid")?,
        company_name: col(row, "company_name")?,
        kind: col(row, "kind")?,
        risk_type: col(row, "risk_type")?,
        risk_description: col(row, "risk_description")?,
        punish_plan: col(row, "punish_plan")?,
        punish_time: col(row, "punish_time")?,
        punish_time_ms: col(row, "punish_time_ms")?,
        punish_description: col(row, "punish_description")?,
        appeal_state: col(row, "appeal_state")?,
        appeal_detail: col(row, "appeal_detail")?,
        appeal_updated_at: col(row, "appeal_updated_at")?,
        last_event_type: col(row, "last_event_type")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

/// Insert the record unless known; returns its row id and whether it is new.
pub async fn insert_or_get(conn: &mut AnyConnection, v: &ViolationWrite<'_>, now: i64) -> StoreResult<(i64, bool)> {
    let inserted = sqlx::query(
        "insert into violations (provider_id, record_id, sub_mchid, company_name, kind, risk_type, risk_description, \
         punish_plan, punish_time, punish_time_ms, punish_description, last_event_type, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
         on conflict (provider_id, record_id) do nothing returning id",
    )
    .bind(v.provider_id)
    .bind(v.record_id)
    .bind(v.sub_mchid)
    .bind(v.company_name)
    .bind(v.kind)
    .bind(v.risk_type)
    .bind(v.risk_description)
    .bind(v.punish_plan)
    .bind(v.punish_time)
    .bind(v.punish_time_ms)
    .bind(v.punish_description)
    .bind(v.event_type)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = inserted {
        return Ok((col(&row, "id")?, true));
    }
    let row = sqlx::query("select id from violations where provider_id = $1 and record_id = $2")
        .bind(v.provider_id)
        .bind(v.record_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok((col(&row, "id")?, false))
}

/// Record an APPEAL event's state on its record.
pub async fn set_appeal(conn: &mut AnyConnection, id: i64, state: &str, detail: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "update violations set appeal_state = $1, appeal_detail = $2, appeal_updated_at = $3, \
         last_event_type = 'VIOLATION.APPEAL', updated_at = $3 where id = $4",
    )
    .bind(state)
    .bind(detail)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn touch(conn: &mut AnyConnection, id: i64, event_type: &str, now: i64) -> StoreResult<()> {
    sqlx::query("update violations set last_event_type = $1, updated_at = $2 where id = $3")
        .bind(event_type)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Record one notification about a record; `false` when it was recorded before.
pub async fn add_event(
    conn: &mut AnyConnection,
    violation_row_id: i64,
    notification_id: &str,
    event_type: &str,
    resource: &str,
    now: i64,
) -> StoreResult<bool> {
    let row = sqlx::query(
        "insert into violation_events (violation_row_id, notification_id, event_type, resource, received_at) \
         values ($1, $2, $3, $4, $5) on conflict (violation_row_id, notification_id) do nothing returning id",
    )
    .bind(violation_row_id)
    .bind(notification_id)
    .bind(event_type)
    .bind(resource)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

#[derive(Debug, Clone)]
pub struct EventRow {
    pub notification_id: String,
    pub event_type: String,
    pub resource: String,
    pub received_at: i64,
}

pub async fn events(conn: &mut AnyConnection, violation_row_id: i64) -> StoreResult<Vec<EventRow>> {
    let rows = sqlx::query(
        "select notification_id, event_type, resource, received_at from violation_events \
         where violation_row_id = $1 order by id",
    )
    .bind(violation_row_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(EventRow {
                notification_id: col(r, "notification_id")?,
                event_type: col(r, "event_type")?,
                resource: col(r, "resource")?,
                received_at: col(r, "received_at")?,
            })
        })
        .collect()
}

pub async fn get(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<ViolationRow>> {
    let sql = format!("select {COLUMNS} from violations where id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// The record WeChat calls `record_id`, of a provider.
pub async fn get_by_record(
    conn: &mut AnyConnection,
    provider_id: i64,
    record_id: &str,
) -> StoreResult<Option<ViolationRow>> {
    let sql = format!("select {COLUMNS} from violations where provider_id = $1 and record_id = $2");
    let row =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider_id).bind(record_id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// List filters; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct ViolationFilter {
    pub provider_id: Option<i64>,
    pub sub_mchid: Option<String>,
    pub kind: Option<String>,
    pub risk_type: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Newest first: at most `limit` records with an id below `before_id` (when given). Only the filters given become
/// conditions (`store::conditions`), so each combination is planned with its index: `violations_by_mchid` for a
/// sub-merchant, `violations_by_time` for a provider, `violations_created` for a date range.
pub async fn list(
    conn: &mut AnyConnection,
    filter: &ViolationFilter,
    before_id: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<ViolationRow>> {
    let mut c = Conditions::new();
    if let Some(before) = before_id {
        c.add("id < ?", [Arg::Int(before)]);
    }
    if let Some(provider_id) = filter.provider_id {
        c.add("provider_id = ?", [Arg::Int(provider_id)]);
    }
    if let Some(mchid) = &filter.sub_mchid {
        c.add("sub_mchid = ?", [Arg::Text(mchid.clone())]);
    }
    if let Some(kind) = &filter.kind {
        c.add("kind = ?", [Arg::Text(kind.clone())]);
    }
    if let Some(risk_type) = &filter.risk_type {
        c.add("risk_type = ?", [Arg::Text(risk_type.clone())]);
    }
    if let Some(since) = filter.since {
        c.add("created_at >= ?", [Arg::Int(since)]);
    }
    if let Some(until) = filter.until {
        c.add("created_at < ?", [Arg::Int(until)]);
    }
    let limit = c.param(Arg::Int(limit));
    let sql = format!("select {COLUMNS} from violations where {} order by id desc limit {limit}", c.sql());
    let rows = c.bind(sqlx::query(sqlx::AssertSqlSafe(sql))).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

#[derive(Debug, Clone)]
pub struct LimitationsRow {
    /// JSON array of `limited_functions`.
    pub limited_functions: String,
    /// JSON: the whole answer (recovery guidance included).
    pub details: String,
    pub checked_at: i64,
}

pub async fn limitations(
    conn: &mut AnyConnection,
    provider_id: i64,
    sub_mchid: &str,
) -> StoreResult<Option<LimitationsRow>> {
    let row = sqlx::query(
        "select limited_functions, details, checked_at from merchant_limitations where provider_id = $1 and sub_mchid = $2",
    )
    .bind(provider_id)
    .bind(sub_mchid)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref()
        .map(|r| {
            Ok(LimitationsRow {
                limited_functions: col(r, "limited_functions")?,
                details: col(r, "details")?,
                checked_at: col(r, "checked_at")?,
            })
        })
        .transpose()
}

/// The stored limitations of several sub-merchants (`(provider_id, sub_mchid)`), in one query by primary key.
pub async fn limitations_of(
    conn: &mut AnyConnection,
    merchants: &[(i64, String)],
) -> StoreResult<HashMap<(i64, String), LimitationsRow>> {
    if merchants.is_empty() {
        return Ok(HashMap::new());
    }
    let c = pairs_condition(merchants, "provider_id", "sub_mchid");
    let sql = format!(
        "select provider_id, sub_mchid, limited_functions, details, checked_at from merchant_limitations where {}",
        c.sql()
    );
    let rows = c.bind(sqlx::query(sqlx::AssertSqlSafe(sql))).fetch_all(&mut *conn).await?;
    let mut found = HashMap::new();
    for r in &rows {
        let key = (col(r, "provider_id")?, col(r, "sub_mchid")?);
        if merchants.contains(&key) {
            let row = LimitationsRow {
                limited_functions: col(r, "limited_functions")?,
                details: col(r, "details")?,
                checked_at: col(r, "checked_at")?,
            };
            found.insert(key, row);
        }
    }
    Ok(found)
}

pub async fn set_limitations(
    conn: &mut AnyConnection,
    provider_id: i64,
    sub_mchid: &str,
    limited_functions: &str,
    details: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "insert into merchant_limitations (provider_id, sub_mchid, limited_functions, details, checked_at) \
         values ($1, $2, $3, $4, $5) on conflict (provider_id, sub_mchid) do update set \
         limited_functions = excluded.limited_functions, details = excluded.details, checked_at = excluded.checked_at",
    )
    .bind(provider_id)
    .bind(sub_mchid)
    .bind(limited_functions)
    .bind(details)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The stored risk state: `(score, alerted_at, crossings)`.
pub async fn risk_state(
    conn: &mut AnyConnection,
    provider_id: i64,
    sub_mchid: &str,
) -> StoreResult<Option<(i64, Option<i64>, i64)>> {
    let row =
        sqlx::query("select score, alerted_at, crossings from merchant_risk where provider_id = $1 and sub_mchid = $2")
            .bind(provider_id)
            .bind(sub_mchid)
            .fetch_optional(&mut *conn)
            .await?;
    row.as_ref().map(|r| Ok((col(r, "score")?, col(r, "alerted_at")?, col(r, "crossings")?))).transpose()
}

pub async fn set_risk_state(
    conn: &mut AnyConnection,
    provider_id: i64,
    sub_mchid: &str,
    score: i64,
    alerted_at: Option<i64>,
    crossings: i64,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "insert into merchant_risk (provider_id, sub_mchid, score, alerted_at, crossings, computed_at) \
         values ($1, $2, $3, $4, $5, $6) on conflict (provider_id, sub_mchid) do update set score = excluded.score, \
         alerted_at = excluded.alerted_at, crossings = excluded.crossings, computed_at = excluded.computed_at",
    )
    .bind(provider_id)
    .bind(sub_mchid)
    .bind(score)
    .bind(alerted_at)
    .bind(crossings)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Per-window risk figures of one sub-merchant since `since` (Unix ms): complaints, repeat, platform-assisted,
/// deadline misses, refunds, violations by kind. The same queries as [`figures_of`], for one.
pub async fn figures(
    conn: &mut AnyConnection,
    provider_id: i64,
    sub_mchid: &str,
    since: i64,
) -> StoreResult<RiskFigures> {
    let key = (provider_id, sub_mchid.to_owned());
    let mut all = figures_of(conn, std::slice::from_ref(&key), since).await?;
    Ok(all.remove(&key).unwrap_or_default())
}

/// `provider_id in (…) and mchid in (…)`: a superset of the pairs (a pair of one's provider and another's mchid
/// can match too), which the caller narrows to the pairs asked for. Each column's index still applies.
fn pairs_condition(merchants: &[(i64, String)], provider_column: &str, mchid_column: &str) -> Conditions {
    let mut providers: Vec<i64> = merchants.iter().map(|(p, _)| *p).collect();
    providers.sort_unstable();
    providers.dedup();
    let mut mchids: Vec<&str> = merchants.iter().map(|(_, m)| m.as_str()).collect();
    mchids.sort_unstable();
    mchids.dedup();
    let mut c = Conditions::new();
    c.add_in(provider_column, providers.into_iter().map(Arg::Int));
    c.add_in(mchid_column, mchids.into_iter().map(|m| Arg::Text(m.to_owned())));
    c
}

/// `sql` with `{where}` (the pairs' condition, on `provider_column` and `mchid_column`) and `{since}` filled in.
async fn grouped(
    conn: &mut AnyConnection,
    merchants: &[(i64, String)],
    since: i64,
    sql: &str,
    mchid_column: &str,
    provider_column: &str,
) -> StoreResult<Vec<AnyRow>> {
    let mut c = pairs_condition(merchants, provider_column, mchid_column);
    let since = c.param(Arg::Int(since));
    let sql = sql.replace("{where}", &c.sql()).replace("{since}", &since);
    Ok(c.bind(sqlx::query(sqlx::AssertSqlSafe(sql))).fetch_all(&mut *conn).await?)
}

/// The risk figures since `since` (Unix ms) of several sub-merchants (`(provider_id, sub_mchid)`), in four grouped
/// queries whatever their number — a console page of 50 sub-merchants costs four queries, not two hundred. Each
/// reads through an index on the sub-merchant's mchid and time (`complaints_by_mchid`, `refunds_by_merchant`,
/// `violations_by_mchid`; deadline misses through `complaint_timeline_by_step`). Sub-merchants with nothing are
/// given zeros.
pub async fn figures_of(
    conn: &mut AnyConnection,
    merchants: &[(i64, String)],
    since: i64,
) -> StoreResult<HashMap<(i64, String), RiskFigures>> {
    let mut figures: HashMap<(i64, String), RiskFigures> =
        merchants.iter().map(|key| (key.clone(), RiskFigures::default())).collect();
    if merchants.is_empty() {
        return Ok(figures);
    }
    let key_of = |r: &AnyRow| -> StoreResult<(i64, String)> { Ok((col(r, "p")?, col(r, "m")?)) };

    let rows = grouped(
        conn,
        merchants,
        since,
        "select provider_id as p, complainted_mchid as m, count(*) as n, \
         coalesce(sum(case when user_complaint_times > 1 then 1 else 0 end), 0) as repeat_n, \
         coalesce(sum(case when platform_involved = 1 or in_platform_service = 1 then 1 else 0 end), 0) as platform_n \
         from complaints where {where} and complaint_time >= {since} group by provider_id, complainted_mchid",
        "complainted_mchid",
        "provider_id",
    )
    .await?;
    for r in &rows {
        if let Some(f) = figures.get_mut(&key_of(r)?) {
            f.complaints = col(r, "n")?;
            f.repeat_complaints = col(r, "repeat_n")?;
            f.platform_assisted = col(r, "platform_n")?;
        }
    }
    let rows = grouped(
        conn,
        merchants,
        since,
        "select c.provider_id as p, c.complainted_mchid as m, count(distinct c.id) as n \
         from complaint_timeline t join complaints c on c.id = t.complaint_row_id \
         where {where} and t.step = 'sla_overdue' and t.at >= {since} group by c.provider_id, c.complainted_mchid",
        "c.complainted_mchid",
        "c.provider_id",
    )
    .await?;
    for r in &rows {
        if let Some(f) = figures.get_mut(&key_of(r)?) {
            f.sla_misses = col(r, "n")?;
        }
    }
    let rows = grouped(
        conn,
        merchants,
        since,
        "select provider_id as p, sub_mchid as m, count(*) as n, cast(coalesce(sum(amount), 0) as bigint) as fen \
         from refunds where {where} and status in ('PROCESSING', 'SUCCESS') and created_at >= {since} \
         group by provider_id, sub_mchid",
        "sub_mchid",
        "provider_id",
    )
    .await?;
    for r in &rows {
        if let Some(f) = figures.get_mut(&key_of(r)?) {
            f.refunds = col(r, "n")?;
            f.refunded_fen = col(r, "fen")?;
        }
    }
    let rows = grouped(
        conn,
        merchants,
        since,
        "select provider_id as p, sub_mchid as m, \
         coalesce(sum(case when kind = 'PUNISH' then 1 else 0 end), 0) as punish_n, \
         coalesce(sum(case when kind = 'INTERCEPT' then 1 else 0 end), 0) as intercept_n, \
         coalesce(sum(case when kind = 'APPEAL' or appeal_state is not null then 1 else 0 end), 0) as appeal_n \
         from violations where {where} and created_at >= {since} group by provider_id, sub_mchid",
        "sub_mchid",
        "provider_id",
    )
    .await?;
    for r in &rows {
        if let Some(f) = figures.get_mut(&key_of(r)?) {
            f.punishments = col(r, "punish_n")?;
            f.interceptions = col(r, "intercept_n")?;
            f.appeals = col(r, "appeal_n")?;
        }
    }
    Ok(figures)
}

/// Every sub-merchant mchid that appears for a provider (registered, complained about, or punished).
pub async fn known_mchids(conn: &mut AnyConnection, provider_id: i64) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(
        "select mchid as m from merchants where provider_id = $1 \
         union select complainted_mchid as m from complaints where provider_id = $1 \
         union select sub_mchid as m from violations where provider_id = $1 order by m",
    )
    .bind(provider_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| col(r, "m")).collect()
}
