//! `users`: people who sign in to the console. Passwords are argon2id hashes; `role` is `viewer`, `operator` or
//! `admin` (see `auth::Role`).

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{StoreError, StoreResult, col, flag};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub disabled: bool,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, username, password_hash, disabled, role, last_login_at, created_at, updated_at";

fn from_row(row: &AnyRow) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: col(row, "id")?,
        username: col(row, "username")?,
        password_hash: col(row, "password_hash")?,
        disabled: flag(row, "disabled")?,
        role: col(row, "role")?,
        last_login_at: col(row, "last_login_at")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

pub async fn insert(
    conn: &mut AnyConnection,
    username: &str,
    password_hash: &str,
    role: &str,
    now: i64,
) -> StoreResult<i64> {
    let row = sqlx::query(
        "insert into users (username, password_hash, disabled, role, created_at, updated_at) \
         values ($1, $2, 0, $3, $4, $4) returning id",
    )
    .bind(username)
    .bind(password_hash)
    .bind(role)
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

pub async fn get(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<UserRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("select {COLUMNS} from users where id = $1")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// How many users exist (none: the first-run setup link is offered).
pub async fn count(conn: &mut AnyConnection) -> StoreResult<i64> {
    let row = sqlx::query("select count(*) as n from users").fetch_one(&mut *conn).await?;
    col(&row, "n")
}

/// How many enabled admins exist (the last one cannot be demoted or disabled).
pub async fn count_active_admins(conn: &mut AnyConnection) -> StoreResult<i64> {
    let row = sqlx::query("select count(*) as n from users where role = 'admin' and disabled = 0")
        .fetch_one(&mut *conn)
        .await?;
    col(&row, "n")
}

pub async fn set_role(conn: &mut AnyConnection, id: i64, role: &str, now: i64) -> StoreResult<bool> {
    let done = sqlx::query("update users set role = $1, updated_at = $2 where id = $3")
        .bind(role)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn set_disabled(conn: &mut AnyConnection, id: i64, disabled: bool, now: i64) -> StoreResult<bool> {
    let done = sqlx::query("update users set disabled = $1, updated_at = $2 where id = $3")
        .bind(super::to_flag(disabled))
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn touch_login(conn: &mut AnyConnection, id: i64, now: i64) -> StoreResult<()> {
    sqlx::query("update users set last_login_at = $1 where id = $2").bind(now).bind(id).execute(&mut *conn).await?;
    Ok(())
}
