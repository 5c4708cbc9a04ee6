//! `certificate_alerts`: the certificates a provider has been told will expire. One row per (provider, kind,
//! serial) is what makes the expiry alert go out once, whatever happens to the job and deliveries that carried it.

use sqlx::AnyConnection;

use super::StoreResult;

/// Record that the provider is being told about this certificate; `false` when it was told before.
pub async fn record(
    conn: &mut AnyConnection,
    provider_id: i64,
    kind: &str,
    serial: &str,
    not_after_ms: i64,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "insert into certificate_alerts (provider_id, kind, serial, not_after, alerted_at) values ($1, $2, $3, $4, $5) \
         on conflict (provider_id, kind, serial) do nothing",
    )
    .bind(provider_id)
    .bind(kind)
    .bind(serial)
    .bind(not_after_ms)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
