//! `audit_log`: who changed what, when. Written in the same transaction as the change it records.

use sqlx::AnyConnection;

use super::{Page, StoreResult, col};

/// One audit entry. `detail` is a JSON object naming the fields touched, never their secret values.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub detail: String,
}

pub async fn record(
    conn: &mut AnyConnection,
    at: i64,
    actor: &str,
    action: &str,
    target: (&str, &str),
    detail: &serde_json::Value,
) -> StoreResult<()> {
    sqlx::query(
        "insert into audit_log (at, actor, action, target_type, target_id, detail) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(target.0)
    .bind(target.1)
    .bind(detail.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Newest first; `target` narrows to one record.
pub async fn list(conn: &mut AnyConnection, target: Option<(&str, &str)>, page: Page) -> StoreResult<Vec<AuditEntry>> {
    let after = if page.after_id == 0 { i64::MAX } else { page.after_id };
    let rows = sqlx::query(
        "select id, at, actor, action, target_type, target_id, detail from audit_log \
         where id < $1 and ($2 is null or target_type = $2) and ($3 is null or target_id = $3) \
         order by id desc limit $4",
    )
    .bind(after)
    .bind(target.map(|t| t.0))
    .bind(target.map(|t| t.1))
    .bind(page.limit + 1)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AuditEntry {
                id: col(row, "id")?,
                at: col(row, "at")?,
                actor: col(row, "actor")?,
                action: col(row, "action")?,
                target_type: col(row, "target_type")?,
                target_id: col(row, "target_id")?,
                detail: col(row, "detail")?,
            })
        })
        .collect()
}
