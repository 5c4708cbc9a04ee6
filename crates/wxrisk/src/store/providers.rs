//! `providers` and their `platform_certificates`.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{AnyQuery, Page, StoreError, StoreResult, col, flag, to_flag};

/// A provider as stored: secrets still sealed.
#[derive(Debug, Clone)]
pub struct ProviderRow {
    pub id: i64,
    pub name: String,
    pub mchid: String,
    pub appid: String,
    pub merchant_cert_serial: String,
    pub merchant_private_key_sealed: String,
    pub merchant_cert_pem: Option<String>,
    pub wechatpay_public_key_id: Option<String>,
    pub wechatpay_public_key_pem: Option<String>,
    pub apiv3_key_sealed: String,
    pub refund_notify_url: Option<String>,
    pub default_reply: String,
    pub default_auto_refund: bool,
    /// Language of notifications: `zh-CN` or `en`.
    pub locale: String,
    /// Unix ms. Complaints filed before it are recorded and listed but never acted on by wxrisk itself (so
    /// connecting an existing provider does not reply to and refund its history); default: when it was created.
    pub automation_since: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What is written for a provider; secrets already sealed.
#[derive(Debug)]
pub struct ProviderWrite<'a> {
    pub name: &'a str,
    pub mchid: &'a str,
    pub appid: &'a str,
    pub merchant_cert_serial: &'a str,
    pub merchant_private_key_sealed: &'a str,
    pub merchant_cert_pem: Option<&'a str>,
    pub wechatpay_public_key_id: Option<&'a str>,
    pub wechatpay_public_key_pem: Option<&'a str>,
    pub apiv3_key_sealed: &'a str,
    pub refund_notify_url: Option<&'a str>,
    pub default_reply: &'a str,
    pub default_auto_refund: bool,
}

#[derive(Debug, Clone)]
pub struct PlatformCertRow {
    pub serial: String,
    pub pem: String,
    pub not_before: i64,
    pub not_after: i64,
    /// `uploaded` by an operator or `downloaded` from WeChat Pay.
    pub source: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, name, mchid, appid, merchant_cert_serial, merchant_private_key_sealed, merchant_cert_pem, \
    wechatpay_public_key_id, wechatpay_public_key_pem, apiv3_key_sealed, refund_notify_url, default_reply, \
    default_auto_refund, locale, automation_since, created_at, updated_at";

fn from_row(row: &AnyRow) -> StoreResult<ProviderRow> {
    Ok(ProviderRow {
        id: col(row, "id")?,
        name: col(row, "name")?,
        mchid: col(row, "mchid")?,
        appid: col(row, "appid")?,
        merchant_cert_serial: col(row, "merchant_cert_serial")?,
        merchant_private_key_sealed: col(row, "merchant_private_key_sealed")?,
        merchant_cert_pem: col(row, "merchant_cert_pem")?,
        wechatpay_public_key_id: col(row, "wechatpay_public_key_id")?,
        wechatpay_public_key_pem: col(row, "wechatpay_public_key_pem")?,
        apiv3_key_sealed: col(row, "apiv3_key_sealed")?,
        refund_notify_url: col(row, "refund_notify_url")?,
        default_reply: col(row, "default_reply")?,
        default_auto_refund: flag(row, "default_auto_refund")?,
        locale: col(row, "locale")?,
        automation_since: col(row, "automation_since")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

/// Bind `$1..$12` in the order insert and update both list the columns.
fn bind_write<'q>(query: AnyQuery<'q>, p: &ProviderWrite<'_>) -> AnyQuery<'q> {
    query
        .bind(p.name)
        .bind(p.mchid)
        .bind(p.appid)
        .bind(p.merchant_cert_serial)
        .bind(p.merchant_private_key_sealed)
        .bind(p.merchant_cert_pem)
        .bind(p.wechatpay_public_key_id)
        .bind(p.wechatpay_public_key_pem)
        .bind(p.apiv3_key_sealed)
        .bind(p.refund_notify_url)
        .bind(p.default_reply)
        .bind(to_flag(p.default_auto_refund))
}

pub async fn insert(conn: &mut AnyConnection, p: &ProviderWrite<'_>, now: i64) -> StoreResult<i64> {
    let row = bind_write(sqlx::query(
        "insert into providers (name, mchid, appid, merchant_cert_serial, merchant_private_key_sealed, merchant_cert_pem, \
         wechatpay_public_key_id, wechatpay_public_key_pem, apiv3_key_sealed, refund_notify_url, default_reply, \
         default_auto_refund, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) returning id",
    ), p)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::from_write)?;
    col(&row, "id")
}

pub async fn update(conn: &mut AnyConnection, id: i64, p: &ProviderWrite<'_>, now: i64) -> StoreResult<()> {
    let done = bind_write(
        sqlx::query(
            "update providers set name = $1, mchid = $2, appid = $3, merchant_cert_serial = $4, \
         merchant_private_key_sealed = $5, merchant_cert_pem = $6, wechatpay_public_key_id = $7, \
         wechatpay_public_key_pem = $8, apiv3_key_sealed = $9, refund_notify_url = $10, default_reply = $11, \
         default_auto_refund = $12, updated_at = $13 where id = $14",
        ),
        p,
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from_write)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("provider"));
    }
    Ok(())
}

/// Set the language of a provider's notifications (`zh-CN` or `en`, checked by the caller).
pub async fn set_locale(conn: &mut AnyConnection, id: i64, locale: &str) -> StoreResult<()> {
    sqlx::query("update providers set locale = $1 where id = $2").bind(locale).bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// From when complaints are acted on automatically (Unix ms).
pub async fn set_automation_since(conn: &mut AnyConnection, id: i64, since_ms: i64) -> StoreResult<()> {
    sqlx::query("update providers set automation_since = $1 where id = $2")
        .bind(since_ms)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// When the provider was last changed; `None` when it does not exist.
pub async fn updated_at(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<i64>> {
    let row = sqlx::query("select updated_at from providers where id = $1").bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(|r| col(r, "updated_at")).transpose()
}

/// Every provider's id, in order.
pub async fn ids(conn: &mut AnyConnection) -> StoreResult<Vec<i64>> {
    let rows = sqlx::query("select id from providers order by id").fetch_all(&mut *conn).await?;
    rows.iter().map(|r| col(r, "id")).collect()
}

pub async fn get(conn: &mut AnyConnection, id: i64) -> StoreResult<Option<ProviderRow>> {
    let sql = format!("select {COLUMNS} from providers where id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(conn: &mut AnyConnection, page: Page) -> StoreResult<Vec<ProviderRow>> {
    let sql = format!("select {COLUMNS} from providers where id > $1 order by id limit $2");
    let rows =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(page.after_id).bind(page.limit + 1).fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

/// All providers (few per deployment), for callbacks that must find theirs by key.
pub async fn all(conn: &mut AnyConnection) -> StoreResult<Vec<ProviderRow>> {
    list(conn, Page { after_id: 0, limit: i64::MAX - 1 }).await
}

/// Delete a provider with no sub-merchants; its channels and certificates go with it.
pub async fn delete(conn: &mut AnyConnection, id: i64) -> StoreResult<bool> {
    sqlx::query("delete from channels where provider_id = $1 and merchant_id is null")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("delete from providers where id = $1").bind(id).execute(&mut *conn).await?;
    Ok(done.rows_affected() > 0)
}

pub async fn count_merchants(conn: &mut AnyConnection, id: i64) -> StoreResult<i64> {
    let row = sqlx::query("select count(*) as n from merchants where provider_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    col(&row, "n")
}

pub async fn platform_certificates(conn: &mut AnyConnection, provider_id: i64) -> StoreResult<Vec<PlatformCertRow>> {
    let rows = sqlx::query(
        "select serial, pem, not_before, not_after, source, created_at from platform_certificates \
         where provider_id = $1 order by not_after desc, id desc",
    )
    .bind(provider_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(PlatformCertRow {
                serial: col(row, "serial")?,
                pem: col(row, "pem")?,
                not_before: col(row, "not_before")?,
                not_after: col(row, "not_after")?,
                source: col(row, "source")?,
                created_at: col(row, "created_at")?,
            })
        })
        .collect()
}

/// Replace the operator-uploaded certificate (there is at most one); downloaded ones are left alone.
pub async fn replace_uploaded_certificate(
    conn: &mut AnyConnection,
    provider_id: i64,
    cert: Option<&crate::domain::provider::PlatformCertificate>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("delete from platform_certificates where provider_id = $1 and source = 'uploaded'")
        .bind(provider_id)
        .execute(&mut *conn)
        .await?;
    if let Some(cert) = cert {
        // The same certificate may already be known from a download; the upload then changes nothing.
        sqlx::query(
            "insert into platform_certificates (provider_id, serial, pem, not_before, not_after, source, created_at) \
             values ($1, $2, $3, $4, $5, 'uploaded', $6) on conflict (provider_id, serial) do nothing",
        )
        .bind(provider_id)
        .bind(&cert.serial)
        .bind(&cert.pem)
        .bind(cert.not_before)
        .bind(cert.not_after)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
