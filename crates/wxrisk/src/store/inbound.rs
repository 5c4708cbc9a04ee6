//! `inbound_notifications` (verified, decrypted callbacks: the inbox) and `callback_rejections` (the capped log
//! of refused ones).
//!
//! The rejection log is bounded in rows and in bytes: [`reject`] keeps the newest `keep` rows, and cuts every text
//! it stores (path, reason, detail, serial) to a fixed number of characters, so no row is larger than
//! [`MAX_REJECTION_ROW_BYTES`] and the log never holds more than `keep × MAX_REJECTION_ROW_BYTES` bytes of values
//! (about 2.3 MB at the default `complaints.rejection_log_size` of 1,000), whatever a sender puts in its request.

use sqlx::AnyConnection;

use super::{StoreResult, col};

#[derive(Debug)]
pub struct NewInbound<'a> {
    pub provider_id: i64,
    /// WeChat's notification `id`.
    pub notification_id: &'a str,
    pub event_type: &'a str,
    /// The decrypted resource, JSON.
    pub resource: &'a str,
    pub create_time: &'a str,
}

/// Record a notification; `None` when this provider already has one with the same WeChat id (a redelivery).
pub async fn insert(conn: &mut AnyConnection, n: &NewInbound<'_>, now: i64) -> StoreResult<Option<i64>> {
    let row = sqlx::query(
        "insert into inbound_notifications (provider_id, notification_id, event_type, resource, create_time, received_at) \
         values ($1, $2, $3, $4, $5, $6) on conflict (provider_id, notification_id) do nothing returning id",
    )
    .bind(n.provider_id)
    .bind(n.notification_id)
    .bind(n.event_type)
    .bind(n.resource)
    .bind(n.create_time)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(|r| col(r, "id")).transpose()
}

/// Record many notifications in one statement; returns the WeChat ids of those new (redeliveries are skipped).
pub async fn insert_many(conn: &mut AnyConnection, batch: &[NewInbound<'_>], now: i64) -> StoreResult<Vec<String>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = String::from(
        "insert into inbound_notifications (provider_id, notification_id, event_type, resource, create_time, received_at) values ",
    );
    for i in 0..batch.len() {
        let b = i * 6;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6));
    }
    sql.push_str(" on conflict (provider_id, notification_id) do nothing returning provider_id, notification_id");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for n in batch {
        query = query
            .bind(n.provider_id)
            .bind(n.notification_id)
            .bind(n.event_type)
            .bind(n.resource)
            .bind(n.create_time)
            .bind(now);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            let provider_id: i64 = col(r, "provider_id")?;
            let id: String = col(r, "notification_id")?;
            Ok(format!("{provider_id}:{id}"))
        })
        .collect()
}

/// Most characters kept of a value taken from a refused request (a header, a path segment).
pub const MAX_ECHO_CHARS: usize = 64;
/// Most characters kept of a rejection's path, reason, detail and serial.
pub const MAX_PATH_CHARS: usize = 160;
pub const MAX_REASON_CHARS: usize = 32;
pub const MAX_DETAIL_CHARS: usize = 300;
pub const MAX_SERIAL_CHARS: usize = MAX_ECHO_CHARS;
/// The largest row [`reject`] writes, counting 4 bytes per character (UTF-8's worst), the 64-character hash and
/// four 8-byte numbers.
pub const MAX_REJECTION_ROW_BYTES: usize =
    4 * (MAX_PATH_CHARS + MAX_REASON_CHARS + MAX_DETAIL_CHARS + MAX_SERIAL_CHARS) + 64 + 4 * 8;

/// `text` cut to at most `max_chars` characters, on a character boundary.
pub fn cut(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[derive(Debug)]
pub struct Rejection<'a> {
    pub provider_id: Option<i64>,
    pub path: &'a str,
    /// `SIGNATURE`, `PROBE`, `STALE`, `UNKNOWN_KEY`, `DECRYPT`, `MALFORMED`, `WRONG_EVENT`, `UNKNOWN_PROVIDER`.
    pub reason: &'a str,
    pub detail: &'a str,
    pub serial: Option<&'a str>,
    pub body_sha256: &'a str,
    pub body_len: i64,
}

/// Log a refused callback (each text cut to its bound) and drop the oldest beyond `keep`.
pub async fn reject(conn: &mut AnyConnection, r: &Rejection<'_>, keep: i64, now: i64) -> StoreResult<()> {
    let row = sqlx::query(
        "insert into callback_rejections (provider_id, path, reason, detail, serial, body_sha256, body_len, received_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
    )
    .bind(r.provider_id)
    .bind(cut(r.path, MAX_PATH_CHARS))
    .bind(cut(r.reason, MAX_REASON_CHARS))
    .bind(cut(r.detail, MAX_DETAIL_CHARS))
    .bind(r.serial.map(|s| cut(s, MAX_SERIAL_CHARS)))
    .bind(cut(r.body_sha256, 64))
    .bind(r.body_len)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let id: i64 = col(&row, "id")?;
    // Every insert trims (an index range that is empty but for the row now beyond `keep`), so the log never
    // exceeds `keep` rows, even where ids skip (PostgreSQL sequences do).
    sqlx::query("delete from callback_rejections where id <= $1").bind(id - keep).execute(&mut *conn).await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct RejectionRow {
    pub id: i64,
    pub provider_id: Option<i64>,
    pub path: String,
    pub reason: String,
    pub detail: String,
    pub serial: Option<String>,
    pub body_sha256: String,
    pub body_len: i64,
    pub received_at: i64,
}

/// Newest first.
pub async fn rejections(
    conn: &mut AnyConnection,
    before_id: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<RejectionRow>> {
    let rows = sqlx::query(
        "select id, provider_id, path, reason, detail, serial, body_sha256, body_len, received_at \
         from callback_rejections where id < $1 order by id desc limit $2",
    )
    .bind(before_id.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RejectionRow {
                id: col(r, "id")?,
                provider_id: col(r, "provider_id")?,
                path: col(r, "path")?,
                reason: col(r, "reason")?,
                detail: col(r, "detail")?,
                serial: col(r, "serial")?,
                body_sha256: col(r, "body_sha256")?,
                body_len: col(r, "body_len")?,
                received_at: col(r, "received_at")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_on_character_boundaries() {
        assert_eq!(cut("abc", 64), "abc");
        assert_eq!(cut("abcdef", 3), "abc");
        assert_eq!(cut("投诉投诉", 3), "投诉投");
        assert_eq!(cut("", 3), "");
        assert_eq!(cut(&"é".repeat(100), MAX_ECHO_CHARS).chars().count(), MAX_ECHO_CHARS);
    }
}
