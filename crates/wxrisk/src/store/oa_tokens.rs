//! `oa_tokens`: official-account access tokens, shared by every wxrisk instance (a token per appid; fetching one
//! per instance would waste the account's quota and, with the classic endpoint, invalidate each other's).

use sqlx::AnyConnection;

use super::{StoreResult, col};

/// The sealed token and its expiry (Unix ms), if one is stored.
pub async fn get(conn: &mut AnyConnection, appid: &str) -> StoreResult<Option<(String, i64)>> {
    let row = sqlx::query("select access_token_sealed, expires_at from oa_tokens where appid = $1")
        .bind(appid)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(|r| Ok((col(r, "access_token_sealed")?, col(r, "expires_at")?))).transpose()
}

pub async fn put(conn: &mut AnyConnection, appid: &str, sealed: &str, expires_at: i64, now: i64) -> StoreResult<()> {
    sqlx::query(
        "insert into oa_tokens (appid, access_token_sealed, expires_at, updated_at) values ($1, $2, $3, $4) \
         on conflict (appid) do update set access_token_sealed = excluded.access_token_sealed, \
         expires_at = excluded.expires_at, updated_at = excluded.updated_at",
    )
    .bind(appid)
    .bind(sealed)
    .bind(expires_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Forget a token WeChat refused.
pub async fn forget(conn: &mut AnyConnection, appid: &str, sealed: &str) -> StoreResult<()> {
    sqlx::query("delete from oa_tokens where appid = $1 and access_token_sealed = $2")
        .bind(appid)
        .bind(sealed)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
