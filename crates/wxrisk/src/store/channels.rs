//! `channels`: where a provider or a sub-merchant is notified.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{AnyQuery, Page, StoreError, StoreResult, col, flag, to_flag};

#[derive(Debug, Clone)]
pub struct ChannelRow {
    pub id: i64,
    pub provider_id: i64,
    /// `None`: the provider's own channel.
    pub merchant_id: Option<i64>,
    pub kind: String,
    pub name: String,
    pub enabled: bool,
    /// Public settings, JSON object text.
    pub settings: String,
    pub secrets_sealed: Option<String>,
    /// Credentials dropped when the destination changed and not set again since: the channel must not send.
    pub secrets_cleared: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug)]
pub struct ChannelWrite<'a> {
    pub provider_id: i64,
    pub merchant_id: Option<i64>,
    pub kind: &'a str,
    pub name: &'a str,
    pub enabled: bool,
    pub settings: &'a str,
    /// Sealed for this channel's row: `None` for a new row, whose secrets are sealed once it has an id and written
    /// with `store::secrets::put`.
    pub secrets_sealed: Option<&'a str>,
    pub secrets_cleared: &'a [String],
}

#[derive(Debug, Default, Clone)]
pub struct ChannelFilter {
    pub provider_id: Option<i64>,
    pub merchant_id: Option<i64>,
    /// Only the provider's own channels (no sub-merchant).
    pub provider_only: bool,
    pub kind: Option<String>,
}

const COLUMNS: &str = "id, provider_id, merchant_id, kind, name, enabled, settings, secrets_sealed, secrets_cleared, created_at, updated_at";

fn from_row(row: &AnyRow) -> StoreResult<ChannelRow> {
    Ok(ChannelRow {
        id: col(row, "id")?,
        provider_id: col(row, "provider_id")?,
        merchant_id: col(row, "merchant_id")?,
        kind: col(row, "kind")?,
        name: col(row, "name")?,
        enabled: flag(row, "enabled")?,
        settings: col(row, "settings")?,
        secrets_sealed: col(row, "secrets_sealed")?,
        secrets_cleared: match col::<Option<String>>(row, "secrets_cleared")? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("channels.secrets_cleared is not a JSON list: {e}")))?,
            None => Vec::new(),
        },
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

/// Bind `$1..$8` in the order insert and update both list the columns.
fn bind_write<'q>(query: AnyQuery<'q>, c: &ChannelWrite<'_>) -> AnyQuery<'q> {
    query
        .bind(c.provider_id)
        .bind(c.merchant_id)
        .bind(c.kind)
        .bind(c.name)
        .bind(to_flag(c.enabled))
        .bind(c.settings)
        .bind(c.secrets_sealed)
        .bind(if c.secrets_cleared.is_empty() {
            None
        } else {
            Some(serde_json::Value::from(c.secrets_cleared.to_vec()).to_string())
        })
}

pub async fn insert(conn: &mut AnyConnection, c: &ChannelWrite<'_>, now: i64) -> StoreResult<i64> {
    let row = bind_write(sqlx::query(
        "insert into channels (provider_id, merchant_id, kind, name, enabled, settings, secrets_sealed, secrets_cleared, \
         created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) returning id",
    ), c)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::from_write)?;
    col(&row, "id")
}

pub async fn update(conn: &mut AnyConnection, id: i64, c: &ChannelWrite<'_>, now: i64) -> StoreResult<()> {
    let done = bind_write(sqlx::query(
        "update channels set provider_id = $1, merchant_id = $2, kind = $3, name = $4, enabled = $5, settings = $6, \
         secrets_sealed = $7, secrets_cleared = $8, updated_at = $9 where id = $10",
    ), c)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from_write)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("channel"));
    }
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<ChannelRow>> {
    let sql = format!("select {COLUMNS} from channels where id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(conn: &mut AnyConnection, filter: &ChannelFilter, page: Page) -> StoreResult<Vec<ChannelRow>> {
    let sql = format!(
        "select {COLUMNS} from channels where id > $1 \
         and ($2 is null or provider_id = $2) and ($3 is null or merchant_id = $3) \
         and ($4 = 0 or merchant_id is null) and ($5 is null or kind = $5) \
         order by id limit $6"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(page.after_id)
        .bind(filter.provider_id)
        .bind(filter.merchant_id)
        .bind(to_flag(filter.provider_only))
        .bind(filter.kind.as_deref())
        .bind(page.limit + 1)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Switch a channel off (its receiver said it will never take messages again).
pub async fn disable(conn: &mut AnyConnection, id: i64, now: i64) -> StoreResult<()> {
    sqlx::query("update channels set enabled = 0, updated_at = $1 where id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A sub-merchant's channels follow it to another provider.
pub async fn move_with_merchant(conn: &mut AnyConnection, merchant_id: i64, provider_id: i64) -> StoreResult<()> {
    sqlx::query("update channels set provider_id = $1 where merchant_id = $2")
        .bind(provider_id)
        .bind(merchant_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, id: i64) -> StoreResult<bool> {
    let done = sqlx::query("delete from channels where id = $1").bind(id).execute(&mut *conn).await?;
    Ok(done.rows_affected() > 0)
}
