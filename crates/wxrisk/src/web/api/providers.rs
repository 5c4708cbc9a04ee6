//! `/api/v1/providers`: service providers, their keys and defaults.
//!
//! Contract: secrets (`merchant_private_key_pem`, `apiv3_key`) are accepted, sealed, and never returned; the
//! response lists which are set in `secrets_set`. Every write validates the complete resulting provider
//! (`ProviderDraft::validate`) and commits the row, its uploaded platform certificate and the audit entry in one
//! transaction.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::clock::format_shanghai;
use crate::domain::provider::{ProviderDraft, ValidProvider};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::providers::{self, PlatformCertRow, ProviderRow, ProviderWrite};
use crate::store::secrets::{self, PROVIDER_APIV3_KEY, PROVIDER_PRIVATE_KEY};
use crate::web::api::commit_audited;
use crate::web::json::{ApiJson, ApiQuery, IdPath, ListOut, PageQuery, Patch};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderIn {
    pub name: String,
    /// The provider's own merchant number (服务商商户号).
    pub mchid: String,
    pub appid: String,
    /// Serial of the merchant API certificate (`apiclient_cert.pem`).
    pub merchant_cert_serial: String,
    /// `apiclient_key.pem`. Write-only.
    #[schema(value_type = String, write_only)]
    pub merchant_private_key_pem: SecretString,
    /// Optional; when given, its serial and key are checked against the two fields above.
    pub merchant_cert_pem: Option<String>,
    pub platform_cert_serial: Option<String>,
    /// Optional: platform certificates are downloaded from WeChat Pay when no public key is configured.
    pub platform_cert_pem: Option<String>,
    /// `PUB_KEY_ID_…`, with `wechatpay_public_key_pem`.
    pub wechatpay_public_key_id: Option<String>,
    pub wechatpay_public_key_pem: Option<String>,
    /// 32 characters. Write-only.
    #[schema(value_type = String, write_only)]
    pub apiv3_key: SecretString,
    /// Where WeChat Pay reports refund results; default `<public_url>/callbacks/<id>/refunds`.
    pub refund_notify_url: Option<String>,
    /// Reply sent to consumers complaining about a sub-merchant that is not configured (≤200 characters).
    pub default_reply: Option<String>,
    /// Auto-refund for complaints against sub-merchants that are not configured.
    #[serde(default)]
    pub default_auto_refund: bool,
    /// Language of notifications: `zh-CN` (default) or `en`.
    pub locale: Option<String>,
    /// Complaints filed before this time (RFC 3339, or a date in Asia/Shanghai) are recorded, listed and summed up
    /// once, but neither replied to, refunded nor completed by wxrisk; default: now. Set it earlier only to let
    /// wxrisk act on complaints that were already there.
    pub automation_since: Option<String>,
}

/// Every field optional; `null` clears an optional field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderPatch {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub mchid: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub appid: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub merchant_cert_serial: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, write_only)]
    pub merchant_private_key_pem: Patch<SecretString>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub merchant_cert_pem: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub platform_cert_serial: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub platform_cert_pem: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub wechatpay_public_key_id: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub wechatpay_public_key_pem: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, write_only)]
    pub apiv3_key: Patch<SecretString>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub refund_notify_url: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub default_reply: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub default_auto_refund: Patch<bool>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub locale: Patch<String>,
    /// RFC 3339 or a date (Asia/Shanghai); `null` resets it to when the provider was created.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub automation_since: Patch<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformCertOut {
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    /// `uploaded` or `downloaded`.
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackUrls {
    pub complaints: String,
    pub violations: String,
    pub refunds: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderOut {
    pub id: i64,
    pub name: String,
    pub mchid: String,
    pub appid: String,
    pub merchant_cert_serial: String,
    pub merchant_cert_pem: Option<String>,
    /// The newest platform certificate's serial.
    pub platform_cert_serial: Option<String>,
    pub platform_certificates: Vec<PlatformCertOut>,
    pub wechatpay_public_key_id: Option<String>,
    pub wechatpay_public_key_pem: Option<String>,
    pub refund_notify_url: Option<String>,
    /// The URL refunds actually use: `refund_notify_url`, or the one derived from `WXRISK_PUBLIC_URL`.
    pub effective_refund_notify_url: Option<String>,
    pub default_reply: String,
    pub default_auto_refund: bool,
    /// Language of notifications: `zh-CN` or `en`.
    pub locale: String,
    /// Complaints filed before this are not acted on automatically (Asia/Shanghai).
    pub automation_since: String,
    /// Names of the write-only fields that hold a value.
    pub secrets_set: Vec<String>,
    /// What to register at WeChat Pay (needs `WXRISK_PUBLIC_URL`).
    pub callback_urls: Option<CallbackUrls>,
    pub created_at: String,
    pub updated_at: String,
}

fn to_out(state: &AppState, row: ProviderRow, certs: Vec<PlatformCertRow>) -> ProviderOut {
    let public = state.config().public_base();
    let callback_urls = public.as_ref().map(|base| CallbackUrls {
        complaints: format!("{base}/callbacks/{}/complaints", row.id),
        violations: format!("{base}/callbacks/{}/violations", row.id),
        refunds: format!("{base}/callbacks/{}/refunds", row.id),
    });
    let effective_refund_notify_url =
        row.refund_notify_url.clone().or_else(|| callback_urls.as_ref().map(|u| u.refunds.clone()));
    ProviderOut {
        id: row.id,
        name: row.name,
        mchid: row.mchid,
        appid: row.appid,
        merchant_cert_serial: row.merchant_cert_serial,
        merchant_cert_pem: row.merchant_cert_pem,
        platform_cert_serial: certs.first().map(|c| c.serial.clone()),
        platform_certificates: certs
            .into_iter()
            .map(|c| PlatformCertOut {
                serial: c.serial,
                not_before: format_shanghai(c.not_before * 1000),
                not_after: format_shanghai(c.not_after * 1000),
                source: c.source,
            })
            .collect(),
        wechatpay_public_key_id: row.wechatpay_public_key_id,
        wechatpay_public_key_pem: row.wechatpay_public_key_pem,
        refund_notify_url: row.refund_notify_url,
        effective_refund_notify_url,
        default_reply: row.default_reply,
        default_auto_refund: row.default_auto_refund,
        locale: row.locale,
        automation_since: format_shanghai(row.automation_since),
        secrets_set: vec!["merchant_private_key_pem".to_owned(), "apiv3_key".to_owned()],
        callback_urls,
        created_at: format_shanghai(row.created_at),
        updated_at: format_shanghai(row.updated_at),
    }
}

async fn load_out(state: &AppState, id: i64) -> Result<ProviderOut, ApiError> {
    let mut conn = state.store().conn().await?;
    let row = providers::get(&mut conn, id).await?.ok_or(ApiError::NotFound("provider"))?;
    let certs = providers::platform_certificates(&mut conn, id).await?;
    Ok(to_out(state, row, certs))
}

struct Sealed {
    private_key: String,
    apiv3_key: String,
}

fn write_of<'a>(valid: &'a ValidProvider, sealed: &'a Sealed) -> ProviderWrite<'a> {
    ProviderWrite {
        name: &valid.name,
        mchid: valid.mchid.as_str(),
        appid: valid.appid.as_str(),
        merchant_cert_serial: &valid.merchant_cert_serial,
        merchant_private_key_sealed: &sealed.private_key,
        merchant_cert_pem: valid.merchant_cert_pem.as_deref(),
        wechatpay_public_key_id: valid.public_key.as_ref().map(|(id, _)| id.as_str()),
        wechatpay_public_key_pem: valid.public_key.as_ref().map(|(_, pem)| pem.as_str()),
        apiv3_key_sealed: &sealed.apiv3_key,
        refund_notify_url: valid.refund_notify_url.as_deref(),
        default_reply: &valid.default_reply,
        default_auto_refund: valid.default_auto_refund,
    }
}

#[utoipa::path(post, path = "/providers", tag = "providers", request_body = ProviderIn,
    responses((status = 201, body = ProviderOut), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<ProviderIn>,
) -> Result<(StatusCode, Json<ProviderOut>), ApiError> {
    let now = state.now_ms();
    let locale = parse_locale(input.locale.as_deref().unwrap_or("zh-CN"))?;
    let automation_since = match input.automation_since.as_deref() {
        None => whole_second(now),
        Some(text) => parse_automation_since(text)?,
    };
    let valid = ProviderDraft {
        name: input.name,
        mchid: input.mchid,
        appid: input.appid,
        merchant_cert_serial: input.merchant_cert_serial,
        merchant_private_key_pem: input.merchant_private_key_pem,
        merchant_cert_pem: input.merchant_cert_pem,
        platform_cert_serial: input.platform_cert_serial,
        platform_cert_pem: input.platform_cert_pem,
        wechatpay_public_key_id: input.wechatpay_public_key_id,
        wechatpay_public_key_pem: input.wechatpay_public_key_pem,
        apiv3_key: input.apiv3_key,
        refund_notify_url: input.refund_notify_url,
        default_reply: input.default_reply,
        default_auto_refund: input.default_auto_refund,
    }
    .validate(now / 1000)?;
    let keyring = state.keyring();
    // Secrets are sealed for the row, so the row comes first: inserted with empty placeholders that the same
    // transaction replaces (a committed row never holds them).
    let unsealed = Sealed { private_key: String::new(), apiv3_key: String::new() };
    let mut tx = state.store().begin().await?;
    let id = providers::insert(&mut tx, &write_of(&valid, &unsealed), now).await.map_err(mchid_conflict)?;
    let private_key = keyring.seal_str(&PROVIDER_PRIVATE_KEY.row(id), &valid.merchant_private_key_pem)?;
    secrets::put(&mut tx, PROVIDER_PRIVATE_KEY, id, Some(&private_key)).await?;
    let apiv3_key = keyring.seal_str(&PROVIDER_APIV3_KEY.row(id), valid.apiv3_key.secret())?;
    secrets::put(&mut tx, PROVIDER_APIV3_KEY, id, Some(&apiv3_key)).await?;
    providers::replace_uploaded_certificate(&mut tx, id, valid.platform_cert.as_ref(), now).await?;
    providers::set_locale(&mut tx, id, locale.as_str()).await?;
    providers::set_automation_since(&mut tx, id, automation_since).await?;
    commit_audited(
        tx,
        now,
        &actor,
        "provider.create",
        ("provider", id),
        serde_json::json!({"mchid": valid.mchid.as_str()}),
    )
    .await?;
    // Its id may be remembered as unknown (a callback came before it existed): take its callbacks from now on.
    state.wechat().forget(id);
    Ok((StatusCode::CREATED, Json(load_out(&state, id).await?)))
}

/// WeChat gives complaint times to the second: a complaint filed in the second a provider was created is after it.
fn whole_second(ms: i64) -> i64 {
    ms - ms.rem_euclid(1000)
}

fn parse_automation_since(text: &str) -> Result<i64, ApiError> {
    crate::clock::parse_operator_time(text, false).ok_or_else(|| {
        ApiError::invalid("automation_since", format!("`{text}` is not an RFC 3339 time or a date (YYYY-MM-DD)"))
    })
}

fn parse_locale(text: &str) -> Result<crate::notify::Locale, ApiError> {
    crate::notify::Locale::parse_strict(text)
        .ok_or_else(|| ApiError::invalid("locale", format!("`{text}` is not one of zh-CN, en")))
}

/// `mchid` is the providers table's only unique column.
fn mchid_conflict(e: crate::store::StoreError) -> ApiError {
    match e {
        crate::store::StoreError::Conflict { .. } => ApiError::conflict("mchid", "a provider with this mchid exists"),
        other => other.into(),
    }
}

#[utoipa::path(get, path = "/providers", tag = "providers", params(PageQuery),
    responses((status = 200, body = ListOut<ProviderOut>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _actor: Actor,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListOut<ProviderOut>>, ApiError> {
    let page = query.page()?;
    let mut conn = state.store().conn().await?;
    let (rows, next) = page.finish(providers::list(&mut conn, page).await?, |p| p.id);
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let certs = providers::platform_certificates(&mut conn, row.id).await?;
        items.push(to_out(&state, row, certs));
    }
    Ok(Json(ListOut::new(items, next)))
}

#[utoipa::path(get, path = "/providers/{id}", tag = "providers", params(("id" = i64, Path)),
    responses((status = 200, body = ProviderOut), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _actor: Actor,
    IdPath(id): IdPath,
) -> Result<Json<ProviderOut>, ApiError> {
    Ok(Json(load_out(&state, id).await?))
}

#[utoipa::path(patch, path = "/providers/{id}", tag = "providers", params(("id" = i64, Path)), request_body = ProviderPatch,
    responses((status = 200, body = ProviderOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath,
    ApiJson(patch): ApiJson<ProviderPatch>,
) -> Result<Json<ProviderOut>, ApiError> {
    let now = state.now_ms();
    let keyring = state.keyring();
    let mut tx = state.store().begin().await?;
    let current = providers::get(&mut tx, id).await?.ok_or(ApiError::NotFound("provider"))?;
    let changed = changed_fields(&patch);
    let locale = match &patch.locale {
        Patch::Missing => None,
        Patch::Null => Some(crate::notify::Locale::Zh),
        Patch::Value(text) => Some(parse_locale(text)?),
    };
    let automation_since = match &patch.automation_since {
        Patch::Missing => None,
        Patch::Null => Some(whole_second(current.created_at)),
        Patch::Value(text) => Some(parse_automation_since(text)?),
    };
    let private_key_changed = !patch.merchant_private_key_pem.is_missing();
    let apiv3_changed = !patch.apiv3_key.is_missing();
    let private_key = match patch.merchant_private_key_pem {
        Patch::Missing => keyring.open_string(&PROVIDER_PRIVATE_KEY.row(id), &current.merchant_private_key_sealed)?,
        other => other.required("merchant_private_key_pem", SecretString::from(String::new()))?,
    };
    let apiv3_key = match patch.apiv3_key {
        Patch::Missing => keyring.open_string(&PROVIDER_APIV3_KEY.row(id), &current.apiv3_key_sealed)?,
        other => other.required("apiv3_key", SecretString::from(String::new()))?,
    };
    // The uploaded platform certificate is validated (and replaced) only when the request touches it.
    let platform_touched = !patch.platform_cert_pem.is_missing() || !patch.platform_cert_serial.is_missing();
    let (platform_cert_pem, platform_cert_serial) = if platform_touched {
        (patch.platform_cert_pem.nullable(None), patch.platform_cert_serial.nullable(None))
    } else {
        (None, None)
    };
    let valid = ProviderDraft {
        name: patch.name.required("name", current.name.clone())?,
        mchid: patch.mchid.required("mchid", current.mchid.clone())?,
        appid: patch.appid.required("appid", current.appid.clone())?,
        merchant_cert_serial: patch
            .merchant_cert_serial
            .required("merchant_cert_serial", current.merchant_cert_serial.clone())?,
        merchant_private_key_pem: private_key,
        merchant_cert_pem: patch.merchant_cert_pem.nullable(current.merchant_cert_pem.clone()),
        platform_cert_serial,
        platform_cert_pem,
        wechatpay_public_key_id: patch.wechatpay_public_key_id.nullable(current.wechatpay_public_key_id.clone()),
        wechatpay_public_key_pem: patch.wechatpay_public_key_pem.nullable(current.wechatpay_public_key_pem.clone()),
        apiv3_key,
        refund_notify_url: patch.refund_notify_url.nullable(current.refund_notify_url.clone()),
        default_reply: patch.default_reply.nullable(Some(current.default_reply.clone())),
        default_auto_refund: patch.default_auto_refund.required("default_auto_refund", current.default_auto_refund)?,
    }
    .validate(now / 1000)?;
    let sealed = Sealed {
        private_key: if private_key_changed {
            keyring.seal_str(&PROVIDER_PRIVATE_KEY.row(id), &valid.merchant_private_key_pem)?
        } else {
            current.merchant_private_key_sealed.clone()
        },
        apiv3_key: if apiv3_changed {
            keyring.seal_str(&PROVIDER_APIV3_KEY.row(id), valid.apiv3_key.secret())?
        } else {
            current.apiv3_key_sealed.clone()
        },
    };
    providers::update(&mut tx, id, &write_of(&valid, &sealed), now).await.map_err(mchid_conflict)?;
    if platform_touched {
        providers::replace_uploaded_certificate(&mut tx, id, valid.platform_cert.as_ref(), now).await?;
    }
    if let Some(locale) = locale {
        providers::set_locale(&mut tx, id, locale.as_str()).await?;
    }
    if let Some(since) = automation_since {
        providers::set_automation_since(&mut tx, id, since).await?;
    }
    commit_audited(tx, now, &actor, "provider.update", ("provider", id), serde_json::json!({"fields": changed}))
        .await?;
    Ok(Json(load_out(&state, id).await?))
}

/// Names of the fields a patch sets (values stay out of the audit log).
fn changed_fields(patch: &ProviderPatch) -> Vec<&'static str> {
    let fields: [(&'static str, bool); 16] = [
        ("name", patch.name.is_missing()),
        ("mchid", patch.mchid.is_missing()),
        ("appid", patch.appid.is_missing()),
        ("merchant_cert_serial", patch.merchant_cert_serial.is_missing()),
        ("merchant_private_key_pem", patch.merchant_private_key_pem.is_missing()),
        ("merchant_cert_pem", patch.merchant_cert_pem.is_missing()),
        ("platform_cert_serial", patch.platform_cert_serial.is_missing()),
        ("platform_cert_pem", patch.platform_cert_pem.is_missing()),
        ("wechatpay_public_key_id", patch.wechatpay_public_key_id.is_missing()),
        ("wechatpay_public_key_pem", patch.wechatpay_public_key_pem.is_missing()),
        ("apiv3_key", patch.apiv3_key.is_missing()),
        ("refund_notify_url", patch.refund_notify_url.is_missing()),
        ("default_reply", patch.default_reply.is_missing()),
        ("default_auto_refund", patch.default_auto_refund.is_missing()),
        ("locale", patch.locale.is_missing()),
        ("automation_since", patch.automation_since.is_missing()),
    ];
    fields.into_iter().filter(|(_, missing)| !missing).map(|(name, _)| name).collect()
}

#[utoipa::path(delete, path = "/providers/{id}", tag = "providers", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(State(state): State<AppState>, actor: Actor, IdPath(id): IdPath) -> Result<StatusCode, ApiError> {
    let now = state.now_ms();
    let mut tx = state.store().begin().await?;
    let row = providers::get(&mut tx, id).await?.ok_or(ApiError::NotFound("provider"))?;
    let merchants = providers::count_merchants(&mut tx, id).await?;
    if merchants > 0 {
        return Err(ApiError::Conflict {
            field: None,
            message: format!("provider {id} still has {merchants} sub-merchant(s); delete or move them first"),
        });
    }
    providers::delete(&mut tx, id).await?;
    commit_audited(tx, now, &actor, "provider.delete", ("provider", id), serde_json::json!({"mchid": row.mchid}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
