//! `api_tokens`: bearer tokens for the JSON API, stored as SHA-256 hashes (a token is 256 random bits, so a
//! fast hash is enough; the token itself is shown once, when created). Each has a scope (`read`, `operate`,
//! `admin`, see [`crate::auth::Scope`]) and may have an expiry; whether a token may act is decided in `auth`.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{StoreError, StoreResult, col};

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub token_prefix: String,
    /// `read`, `operate` or `admin` (the database refuses anything else).
    pub scope: String,
    /// Unix milliseconds; `None`: never expires.
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, name, token_prefix, scope, expires_at, created_at, last_used_at, revoked_at";

fn from_row(row: &AnyRow) -> StoreResult<TokenRow> {
    Ok(TokenRow {
        id: col(row, "id")?,
        name: col(row, "name")?,
        token_prefix: col(row, "token_prefix")?,
        scope: col(row, "scope")?,
        expires_at: col(row, "expires_at")?,
        created_at: col(row, "created_at")?,
        last_used_at: col(row, "last_used_at")?,
        revoked_at: col(row, "revoked_at")?,
    })
}

/// A token to store: its name, hash, the prefix shown in lists, scope and expiry.
#[derive(Debug, Clone, Copy)]
pub struct NewTokenRow<'a> {
    pub name: &'a str,
    pub token_hash: &'a str,
    pub token_prefix: &'a str,
    pub scope: &'a str,
    pub expires_at: Option<i64>,
}

pub async fn insert(conn: &mut AnyConnection, token: &NewTokenRow<'_>, now: i64) -> StoreResult<i64> {
    let row = sqlx::query(
        "insert into api_tokens (name, token_hash, token_prefix, scope, expires_at, created_at) \
         values ($1, $2, $3, $4, $5, $6) returning id",
    )
    .bind(token.name)
    .bind(token.token_hash)
    .bind(token.token_prefix)
    .bind(token.scope)
    .bind(token.expires_at)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::from_write)?;
    col(&row, "id")
}

/// The unrevoked token with this hash (expired or not: the caller tells an expired token from an unknown one).
pub async fn find_active(conn: &mut AnyConnection, token_hash: &str) -> StoreResult<Option<TokenRow>> {
    let sql = format!("select {COLUMNS} from api_tokens where token_hash = $1 and revoked_at is null");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(token_hash).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// Record use at most once a minute per token, so reads do not turn into a write per request.
pub async fn touch(conn: &mut AnyConnection, id: i64, now: i64) -> StoreResult<()> {
    sqlx::query(
        "update api_tokens set last_used_at = $1 where id = $2 and (last_used_at is null or last_used_at < $3)",
    )
    .bind(now)
    .bind(id)
    .bind(now - 60_000)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Revoke the active token named `name_or_id` (a name, or a numeric id). Returns the revoked token.
pub async fn revoke(conn: &mut AnyConnection, name_or_id: &str, now: i64) -> StoreResult<Option<TokenRow>> {
    let id: Option<i64> = name_or_id.parse().ok();
    let sql = format!(
        "update api_tokens set revoked_at = $1 where revoked_at is null and (name = $2 or id = $3) returning {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(name_or_id)
        .bind(id.unwrap_or(-1))
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(conn: &mut AnyConnection) -> StoreResult<Vec<TokenRow>> {
    let sql = format!("select {COLUMNS} from api_tokens order by id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}
