//! `users`: people who log in to the console. Passwords are argon2id hashes.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{StoreError, StoreResult, col, flag};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, username, password_hash, disabled, created_at, updated_at";

fn from_row(row: &AnyRow) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: col(row, "id")?,
        username: col(row, "username")?,
        password_hash: col(row, "password_hash")?,
        disabled: flag(row, "disabled")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, username: &str, password_hash: &str, now: i64) -> StoreResult<i64> {
    let row = sqlx::query(
        "insert into users (username, password_hash, disabled, created_at, updated_at) values ($1, $2, 0, $3, $3) returning id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::from_write)?;
    col(&row, "id")
}

pub async fn set_password(
    conn: &mut AnyConnection,
    username: &str,
    password_hash: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query("update users set password_hash = $1, updated_at = $2 where username = $3")
        .bind(password_hash)
        .bind(now)
        .bind(username)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn get_by_username(conn: &mut AnyConnection, username: &str) -> StoreResult<Option<UserRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("select {COLUMNS} from users where username = $1")))
        .bind(username)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(conn: &mut AnyConnection) -> StoreResult<Vec<UserRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("select {COLUMNS} from users order by username")))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}
