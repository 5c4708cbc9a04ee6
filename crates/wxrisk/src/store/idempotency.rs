//! `idempotency_keys`: operator actions taken under an `Idempotency-Key`, and what they answered.
//!
//! Contract: [`reserve`] claims a key before the action runs (a second request with the same key meanwhile sees
//! it in progress); [`finish`] stores the answer; [`release`] frees the key of an action that failed, so the
//! operator can try again with it.

use sqlx::AnyConnection;

use super::{StoreResult, col};

#[derive(Debug, Clone)]
pub struct SavedResponse {
    pub request_hash: String,
    /// 0 while the action runs.
    pub status: i64,
    pub response: String,
}

/// Claim `key` for `actor`; `None` when claimed now, else what is saved under it.
pub async fn reserve(
    conn: &mut AnyConnection,
    actor: &str,
    key: &str,
    request_hash: &str,
    now: i64,
) -> StoreResult<Option<SavedResponse>> {
    let inserted = sqlx::query(
        "insert into idempotency_keys (actor, key, request_hash, status, response, created_at) values ($1, $2, $3, 0, '', $4) \
         on conflict (actor, key) do nothing returning key",
    )
    .bind(actor)
    .bind(key)
    .bind(request_hash)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        return Ok(None);
    }
    let row = sqlx::query("select request_hash, status, response from idempotency_keys where actor = $1 and key = $2")
        .bind(actor)
        .bind(key)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Some(SavedResponse {
        request_hash: col(&row, "request_hash")?,
        status: col(&row, "status")?,
        response: col(&row, "response")?,
    }))
}

pub async fn finish(conn: &mut AnyConnection, actor: &str, key: &str, status: i64, response: &str) -> StoreResult<()> {
    sqlx::query("update idempotency_keys set status = $1, response = $2 where actor = $3 and key = $4")
        .bind(status)
        .bind(response)
        .bind(actor)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn release(conn: &mut AnyConnection, actor: &str, key: &str) -> StoreResult<()> {
    sqlx::query("delete from idempotency_keys where actor = $1 and key = $2 and status = 0")
        .bind(actor)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
