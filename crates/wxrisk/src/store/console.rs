//! The console's sign-in state: `console_sessions`, `login_failures` and `setup_tokens`.
//!
//! Contract: a session row is keyed by the SHA-256 of its cookie's token (a copy of the database cannot be replayed
//! as a cookie); sessions live in the database so every instance behind a load balancer knows them. Failed
//! sign-ins are rows, counted over a window per account and per address, so throttling holds across instances
//! too. A setup token is spent in the transaction that creates the first user, at most once.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{StoreResult, col};

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub flash: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

fn session_from_row(row: &AnyRow) -> StoreResult<SessionRow> {
    Ok(SessionRow {
        id: col(row, "id")?,
        user_id: col(row, "user_id")?,
        csrf_token: col(row, "csrf_token")?,
        flash: col(row, "flash")?,
        created_at: col(row, "created_at")?,
        last_seen_at: col(row, "last_seen_at")?,
        expires_at: col(row, "expires_at")?,
    })
}

#[derive(Debug)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: i64,
    pub csrf_token: &'a str,
    pub expires_at: i64,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

pub async fn insert_session(conn: &mut AnyConnection, s: &NewSession<'_>, now: i64) -> StoreResult<()> {
    sqlx::query(
        "insert into console_sessions (id, user_id, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent) \
         values ($1, $2, $3, $4, $4, $5, $6, $7)",
    )
    .bind(s.id)
    .bind(s.user_id)
    .bind(s.csrf_token)
    .bind(now)
    .bind(s.expires_at)
    .bind(s.ip)
    .bind(s.user_agent)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The session, if it exists and has not expired.
pub async fn live_session(conn: &mut AnyConnection, id: &str, now: i64) -> StoreResult<Option<SessionRow>> {
    let row = sqlx::query(
        "select id, user_id, csrf_token, flash, created_at, last_seen_at, expires_at from console_sessions \
         where id = $1 and expires_at > $2",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(session_from_row).transpose()
}

/// Extend a session in use (idle timeout from now).
pub async fn extend_session(conn: &mut AnyConnection, id: &str, expires_at: i64, now: i64) -> StoreResult<()> {
    sqlx::query("update console_sessions set last_seen_at = $1, expires_at = $2 where id = $3")
        .bind(now)
        .bind(expires_at)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete_session(conn: &mut AnyConnection, id: &str) -> StoreResult<()> {
    sqlx::query("delete from console_sessions where id = $1").bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Sign a user out everywhere (password changed, user disabled), except the session `keep`.
pub async fn delete_user_sessions(conn: &mut AnyConnection, user_id: i64, keep: Option<&str>) -> StoreResult<u64> {
    let done = sqlx::query("delete from console_sessions where user_id = $1 and ($2 is null or id <> $2)")
        .bind(user_id)
        .bind(keep)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Leave a message for the session's next page.
pub async fn set_flash(conn: &mut AnyConnection, id: &str, flash: Option<&str>) -> StoreResult<()> {
    sqlx::query("update console_sessions set flash = $1 where id = $2")
        .bind(flash)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Expired sessions and old failures go (called now and then by the scheduler).
pub async fn purge(conn: &mut AnyConnection, now: i64, failures_before: i64) -> StoreResult<()> {
    sqlx::query("delete from console_sessions where expires_at <= $1").bind(now).execute(&mut *conn).await?;
    sqlx::query("delete from login_failures where at < $1").bind(failures_before).execute(&mut *conn).await?;
    sqlx::query("delete from setup_tokens where expires_at <= $1").bind(now).execute(&mut *conn).await?;
    Ok(())
}

pub async fn record_failure(conn: &mut AnyConnection, username: &str, ip: &str, now: i64) -> StoreResult<()> {
    sqlx::query("insert into login_failures (username, ip, at) values ($1, $2, $3)")
        .bind(username)
        .bind(ip)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Failures since `since`: (for this account, from this address, the oldest of the account's).
pub async fn failures_since(
    conn: &mut AnyConnection,
    username: &str,
    ip: &str,
    since: i64,
) -> StoreResult<(i64, i64, Option<i64>, Option<i64>)> {
    let row = sqlx::query(
        "select (select count(*) from login_failures where username = $1 and at >= $3) as by_user, \
         (select count(*) from login_failures where ip = $2 and at >= $3) as by_ip, \
         (select min(at) from login_failures where username = $1 and at >= $3) as user_oldest, \
         (select min(at) from login_failures where ip = $2 and at >= $3) as ip_oldest",
    )
    .bind(username)
    .bind(ip)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    Ok((col(&row, "by_user")?, col(&row, "by_ip")?, col(&row, "user_oldest")?, col(&row, "ip_oldest")?))
}

/// A successful sign-in forgets the account's failures.
pub async fn clear_failures(conn: &mut AnyConnection, username: &str) -> StoreResult<()> {
    sqlx::query("delete from login_failures where username = $1").bind(username).execute(&mut *conn).await?;
    Ok(())
}

/// A new setup link's token. Links printed by earlier starts keep working until they expire: each was printed to
/// whoever runs the server, and the first one used ends them all (no user may be made by a link once one exists).
pub async fn put_setup_token(conn: &mut AnyConnection, token_hash: &str, expires_at: i64, now: i64) -> StoreResult<()> {
    sqlx::query("insert into setup_tokens (token_hash, created_at, expires_at) values ($1, $2, $3)")
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether the token is valid now (unspent, not expired).
pub async fn setup_token_valid(conn: &mut AnyConnection, token_hash: &str, now: i64) -> StoreResult<bool> {
    let row = sqlx::query(
        "select count(*) as n from setup_tokens where token_hash = $1 and used_at is null and expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(col::<i64>(&row, "n")? > 0)
}

/// Spend the token; `false` when it was not valid (spent by someone else in the meantime, or expired).
pub async fn spend_setup_token(conn: &mut AnyConnection, token_hash: &str, now: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "update setup_tokens set used_at = $1 where token_hash = $2 and used_at is null and expires_at > $1",
    )
    .bind(now)
    .bind(token_hash)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}
