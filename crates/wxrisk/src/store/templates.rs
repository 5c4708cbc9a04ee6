//! `notification_templates`: a provider's own wording for an event kind and language.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{StoreResult, col};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    pub provider_id: i64,
    pub event_kind: String,
    pub locale: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub updated_at: i64,
}

fn from_row(row: &AnyRow) -> StoreResult<TemplateRow> {
    Ok(TemplateRow {
        provider_id: col(row, "provider_id")?,
        event_kind: col(row, "event_kind")?,
        locale: col(row, "locale")?,
        subject: col(row, "subject")?,
        text_body: col(row, "text_body")?,
        html_body: col(row, "html_body")?,
        updated_at: col(row, "updated_at")?,
    })
}

const COLUMNS: &str = "provider_id, event_kind, locale, subject, text_body, html_body, updated_at";

pub async fn get(
    conn: &mut AnyConnection,
    provider_id: i64,
    event_kind: &str,
    locale: &str,
) -> StoreResult<Option<TemplateRow>> {
    let sql = format!(
        "select {COLUMNS} from notification_templates where provider_id = $1 and event_kind = $2 and locale = $3"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(provider_id)
        .bind(event_kind)
        .bind(locale)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(conn: &mut AnyConnection, provider_id: i64) -> StoreResult<Vec<TemplateRow>> {
    let sql =
        format!("select {COLUMNS} from notification_templates where provider_id = $1 order by event_kind, locale");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(provider_id).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

pub async fn put(conn: &mut AnyConnection, t: &TemplateRow) -> StoreResult<()> {
    sqlx::query(
        "insert into notification_templates (provider_id, event_kind, locale, subject, text_body, html_body, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7) on conflict (provider_id, event_kind, locale) do update set \
         subject = excluded.subject, text_body = excluded.text_body, html_body = excluded.html_body, updated_at = excluded.updated_at",
    )
    .bind(t.provider_id)
    .bind(&t.event_kind)
    .bind(&t.locale)
    .bind(&t.subject)
    .bind(&t.text_body)
    .bind(&t.html_body)
    .bind(t.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, provider_id: i64, event_kind: &str, locale: &str) -> StoreResult<bool> {
    let done =
        sqlx::query("delete from notification_templates where provider_id = $1 and event_kind = $2 and locale = $3")
            .bind(provider_id)
            .bind(event_kind)
            .bind(locale)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() > 0)
}
