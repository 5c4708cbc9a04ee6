//! `merchants`: a provider's sub-merchants.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::conditions::{Arg, Conditions, like_literal};
use super::{AnyQuery, Page, StoreError, StoreResult, col, flag, to_flag};

#[derive(Debug, Clone)]
pub struct MerchantRow {
    pub id: i64,
    pub provider_id: i64,
    pub mchid: String,
    pub name: String,
    pub reply_text: Option<String>,
    pub auto_refund: bool,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug)]
pub struct MerchantWrite<'a> {
    pub provider_id: i64,
    pub mchid: &'a str,
    pub name: &'a str,
    pub reply_text: Option<&'a str>,
    pub auto_refund: bool,
    pub enabled: bool,
}

/// List filters; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct MerchantFilter {
    pub provider_id: Option<i64>,
    pub mchid: Option<String>,
    pub enabled: Option<bool>,
    /// Words a person typed: the mchid itself, the start of an mchid, or part of the name (case-insensitive for
    /// Latin letters). A name search reads the provider's sub-merchants in id order until the page is full, which
    /// a few tens of thousands of rows allow; mchids are found by index.
    pub search: Option<String>,
}

const COLUMNS: &str = "id, provider_id, mchid, name, reply_text, auto_refund, enabled, created_at, updated_at";

fn from_row(row: &AnyRow) -> StoreResult<MerchantRow> {
    Ok(MerchantRow {
        id: col(row, "id")?,
        provider_id: col(row, "provider_id")?,
        mchid: col(row, "mchid")?,
        name: col(row, "name")?,
        reply_text: col(row, "reply_text")?,
        auto_refund: flag(row, "auto_refund")?,
        enabled: flag(row, "enabled")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

/// Bind `$1..$6` in the order insert and update both list the columns.
fn bind_write<'q>(query: AnyQuery<'q>, m: &MerchantWrite<'_>) -> AnyQuery<'q> {
    query
        .bind(m.provider_id)
        .bind(m.mchid)
        .bind(m.name)
        .bind(m.reply_text)
        .bind(to_flag(m.auto_refund))
        .bind(to_flag(m.enabled))
}

pub async fn insert(conn: &mut AnyConnection, m: &MerchantWrite<'_>, now: i64) -> StoreResult<i64> {
    let row = bind_write(sqlx::query(
        "insert into merchants (provider_id, mchid, name, reply_text, auto_refund, enabled, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $7) returning id",
    ), m)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::from_write)?;
    col(&row, "id")
}

pub async fn update(conn: &mut AnyConnection, id: i64, m: &MerchantWrite<'_>, now: i64) -> StoreResult<()> {
    let done = bind_write(
        sqlx::query(
            "update merchants set provider_id = $1, mchid = $2, name = $3, reply_text = $4, auto_refund = $5, \
         enabled = $6, updated_at = $7 where id = $8",
        ),
        m,
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from_write)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("merchant"));
    }
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<MerchantRow>> {
    let sql = format!("select {COLUMNS} from merchants where id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// Sub-merchants with this mchid, across providers (normally one).
pub async fn find_by_mchid(
    conn: &mut AnyConnection,
    provider_id: Option<i64>,
    mchid: &str,
) -> StoreResult<Vec<MerchantRow>> {
    let filter = MerchantFilter { provider_id, mchid: Some(mchid.to_owned()), ..MerchantFilter::default() };
    list(conn, &filter, Page { after_id: 0, limit: 10 }).await
}

/// Every sub-merchant of a provider.
pub async fn for_provider(conn: &mut AnyConnection, provider_id: i64) -> StoreResult<Vec<MerchantRow>> {
    let sql = format!("select {COLUMNS} from merchants where provider_id = $1 order by id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider_id).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

/// Oldest first, after `page.after_id` (the API's order): at most `page.limit + 1` rows.
pub async fn list(conn: &mut AnyConnection, filter: &MerchantFilter, page: Page) -> StoreResult<Vec<MerchantRow>> {
    select(conn, filter, Order::OldestAfter(page.after_id), page.limit + 1).await
}

/// Newest first, before `before_id` when given (the console's order): at most `limit` rows.
pub async fn list_newest(
    conn: &mut AnyConnection,
    filter: &MerchantFilter,
    before_id: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<MerchantRow>> {
    select(conn, filter, Order::NewestBefore(before_id), limit).await
}

enum Order {
    OldestAfter(i64),
    NewestBefore(Option<i64>),
}

async fn select(
    conn: &mut AnyConnection,
    filter: &MerchantFilter,
    order: Order,
    limit: i64,
) -> StoreResult<Vec<MerchantRow>> {
    let mut c = Conditions::new();
    let order_by = match order {
        Order::OldestAfter(after) => {
            c.add("id > ?", [Arg::Int(after)]);
            "id"
        }
        Order::NewestBefore(before) => {
            if let Some(before) = before {
                c.add("id < ?", [Arg::Int(before)]);
            }
            "id desc"
        }
    };
    if let Some(provider_id) = filter.provider_id {
        c.add("provider_id = ?", [Arg::Int(provider_id)]);
    }
    if let Some(mchid) = &filter.mchid {
        c.add("mchid = ?", [Arg::Text(mchid.clone())]);
    }
    if let Some(enabled) = filter.enabled {
        c.add("enabled = ?", [Arg::Int(to_flag(enabled))]);
    }
    if let Some(words) = filter.search.as_deref().map(str::trim).filter(|w| !w.is_empty()) {
        let literal = like_literal(words);
        c.add(
            "(mchid = ? or mchid like ? escape '\\' or lower(name) like ? escape '\\')",
            [
                Arg::Text(words.to_owned()),
                Arg::Text(format!("{literal}%")),
                Arg::Text(format!("%{}%", literal.to_lowercase())),
            ],
        );
    }
    let limit = c.param(Arg::Int(limit));
    let sql = format!("select {COLUMNS} from merchants where {} order by {order_by} limit {limit}", c.sql());
    let rows = c.bind(sqlx::query(sqlx::AssertSqlSafe(sql))).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

/// Delete a sub-merchant and its channels.
pub async fn delete(conn: &mut AnyConnection, id: i64) -> StoreResult<bool> {
    sqlx::query("delete from channels where merchant_id = $1").bind(id).execute(&mut *conn).await?;
    let done = sqlx::query("delete from merchants where id = $1").bind(id).execute(&mut *conn).await?;
    Ok(done.rows_affected() > 0)
}

/// The registered sub-merchants among these `(provider_id, mchid)` pairs, in one query whatever their number (for
/// pages that show names beside mchids). Pairs not registered are absent.
pub async fn of_pairs(
    conn: &mut AnyConnection,
    pairs: &[(i64, String)],
) -> StoreResult<std::collections::HashMap<(i64, String), MerchantRow>> {
    let mut found = std::collections::HashMap::new();
    if pairs.is_empty() {
        return Ok(found);
    }
    let mut c = Conditions::new();
    let mut mchids: Vec<&str> = pairs.iter().map(|(_, m)| m.as_str()).collect();
    mchids.sort_unstable();
    mchids.dedup();
    // By mchid (index `merchants_mchid`); the provider is matched below.
    c.add_in("mchid", mchids.into_iter().map(|m| Arg::Text(m.to_owned())));
    let sql = format!("select {COLUMNS} from merchants where {}", c.sql());
    let rows = c.bind(sqlx::query(sqlx::AssertSqlSafe(sql))).fetch_all(&mut *conn).await?;
    for row in &rows {
        let m = from_row(row)?;
        let key = (m.provider_id, m.mchid.clone());
        if pairs.contains(&key) {
            found.insert(key, m);
        }
    }
    Ok(found)
}
