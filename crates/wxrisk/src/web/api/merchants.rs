//! `/api/v1/merchants`: sub-merchants (子商户) of a provider: name, reply text, auto-refund, enabled.
//!
//! Contract: creating, changing and deleting a sub-merchant needs the `operate` scope (the console's operator role):
//! running the sub-merchant list is part of a provider's daily operations. The actions are the `pub(crate)`
//! functions here ([`create_merchant`], [`update_merchant`], [`delete_merchant`]), which the API handlers and the
//! console's pages both call: validation, the audit log and conflicts are the same whichever door was used.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::clock::format_shanghai;
use crate::domain::merchant::{MerchantDraft, ValidMerchant};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::merchants::{self, MerchantFilter, MerchantRow, MerchantWrite};
use crate::store::{StoreError, channels, providers};
use crate::web::api::commit_audited;
use crate::web::json::{ApiJson, ApiQuery, IdPath, ListOut, PageQuery, Patch};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MerchantIn {
    pub provider_id: i64,
    /// The sub-merchant's merchant number (子商户号).
    pub mchid: String,
    pub name: String,
    /// Reply sent to complaining consumers (≤200 characters); absent: the provider's default reply.
    pub reply_text: Option<String>,
    #[serde(default)]
    pub auto_refund: bool,
    /// A disabled sub-merchant's complaints are stored but nothing is done or sent for them.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MerchantPatch {
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    pub provider_id: Patch<i64>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub mchid: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub reply_text: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub auto_refund: Patch<bool>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub enabled: Patch<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantOut {
    pub id: i64,
    pub provider_id: i64,
    pub mchid: String,
    pub name: String,
    pub reply_text: Option<String>,
    /// The text consumers actually get: `reply_text`, or the provider's default reply.
    pub effective_reply_text: String,
    pub auto_refund: bool,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MerchantListQuery {
    pub provider_id: Option<i64>,
    pub mchid: Option<String>,
    pub enabled: Option<bool>,
    /// The mchid, the start of an mchid, or part of the name.
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

async fn to_out(conn: &mut sqlx::AnyConnection, row: MerchantRow) -> Result<MerchantOut, ApiError> {
    let effective_reply_text = match &row.reply_text {
        Some(text) => text.clone(),
        None => providers::get(conn, row.provider_id).await?.map(|p| p.default_reply).unwrap_or_default(),
    };
    Ok(MerchantOut {
        id: row.id,
        provider_id: row.provider_id,
        mchid: row.mchid,
        name: row.name,
        reply_text: row.reply_text,
        effective_reply_text,
        auto_refund: row.auto_refund,
        enabled: row.enabled,
        created_at: format_shanghai(row.created_at),
        updated_at: format_shanghai(row.updated_at),
    })
}

/// One sub-merchant as the API shows it.
pub(crate) async fn load_out(state: &AppState, id: i64) -> Result<MerchantOut, ApiError> {
    let mut conn = state.store().conn().await?;
    let row = merchants::get(&mut conn, id).await?.ok_or(ApiError::NotFound("merchant"))?;
    to_out(&mut conn, row).await
}

fn write_of(provider_id: i64, valid: &ValidMerchant) -> MerchantWrite<'_> {
    MerchantWrite {
        provider_id,
        mchid: valid.mchid.as_str(),
        name: &valid.name,
        reply_text: valid.reply_text.as_deref(),
        auto_refund: valid.auto_refund,
        enabled: valid.enabled,
    }
}

async fn ensure_provider(conn: &mut sqlx::AnyConnection, provider_id: i64) -> Result<(), ApiError> {
    match providers::get(conn, provider_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::invalid("provider_id", format!("no provider has id {provider_id}"))),
    }
}

/// `(provider_id, mchid)` is the merchants table's only unique key.
fn mchid_conflict(valid: &ValidMerchant) -> impl FnOnce(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::Conflict { .. } => {
            ApiError::conflict("mchid", format!("this provider already has a sub-merchant with mchid {}", valid.mchid))
        }
        other => other.into(),
    }
}

#[utoipa::path(post, path = "/merchants", tag = "merchants", request_body = MerchantIn,
    responses((status = 201, body = MerchantOut), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<MerchantIn>,
) -> Result<(StatusCode, Json<MerchantOut>), ApiError> {
    let id = create_merchant(&state, &actor, input).await?;
    Ok((StatusCode::CREATED, Json(load_out(&state, id).await?)))
}

/// Create a sub-merchant (audited `merchant.create`); returns its id.
pub(crate) async fn create_merchant(state: &AppState, actor: &Actor, input: MerchantIn) -> Result<i64, ApiError> {
    let now = state.now_ms();
    let valid = MerchantDraft {
        mchid: input.mchid,
        name: input.name,
        reply_text: input.reply_text,
        auto_refund: input.auto_refund,
        enabled: input.enabled,
    }
    .validate()?;
    let mut tx = state.store().begin().await?;
    ensure_provider(&mut tx, input.provider_id).await?;
    let id =
        merchants::insert(&mut tx, &write_of(input.provider_id, &valid), now).await.map_err(mchid_conflict(&valid))?;
    let detail = serde_json::json!({"provider_id": input.provider_id, "mchid": valid.mchid.as_str()});
    commit_audited(tx, now, actor, "merchant.create", ("merchant", id), detail).await?;
    Ok(id)
}

#[utoipa::path(get, path = "/merchants", tag = "merchants", params(MerchantListQuery),
    responses((status = 200, body = ListOut<MerchantOut>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _actor: Actor,
    ApiQuery(query): ApiQuery<MerchantListQuery>,
) -> Result<Json<ListOut<MerchantOut>>, ApiError> {
    let page = PageQuery { cursor: query.cursor, limit: query.limit }.page()?;
    let filter = MerchantFilter {
        provider_id: query.provider_id,
        mchid: query.mchid,
        enabled: query.enabled,
        search: query.q.filter(|q| !q.trim().is_empty()),
    };
    let mut conn = state.store().conn().await?;
    let (rows, next) = page.finish(merchants::list(&mut conn, &filter, page).await?, |m| m.id);
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        items.push(to_out(&mut conn, row).await?);
    }
    Ok(Json(ListOut::new(items, next)))
}

#[utoipa::path(get, path = "/merchants/{id}", tag = "merchants", params(("id" = i64, Path)),
    responses((status = 200, body = MerchantOut), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _actor: Actor,
    IdPath(id): IdPath,
) -> Result<Json<MerchantOut>, ApiError> {
    Ok(Json(load_out(&state, id).await?))
}

#[utoipa::path(patch, path = "/merchants/{id}", tag = "merchants", params(("id" = i64, Path)), request_body = MerchantPatch,
    responses((status = 200, body = MerchantOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath,
    ApiJson(patch): ApiJson<MerchantPatch>,
) -> Result<Json<MerchantOut>, ApiError> {
    update_merchant(&state, &actor, id, patch).await?;
    Ok(Json(load_out(&state, id).await?))
}

/// Change a sub-merchant (audited `merchant.update`, naming the fields given).
pub(crate) async fn update_merchant(
    state: &AppState,
    actor: &Actor,
    id: i64,
    patch: MerchantPatch,
) -> Result<(), ApiError> {
    let now = state.now_ms();
    let mut tx = state.store().begin().await?;
    let current = merchants::get(&mut tx, id).await?.ok_or(ApiError::NotFound("merchant"))?;
    let changed: Vec<&str> = [
        ("provider_id", patch.provider_id.is_missing()),
        ("mchid", patch.mchid.is_missing()),
        ("name", patch.name.is_missing()),
        ("reply_text", patch.reply_text.is_missing()),
        ("auto_refund", patch.auto_refund.is_missing()),
        ("enabled", patch.enabled.is_missing()),
    ]
    .into_iter()
    .filter(|(_, missing)| !missing)
    .map(|(name, _)| name)
    .collect();
    let provider_id = patch.provider_id.required("provider_id", current.provider_id)?;
    let valid = MerchantDraft {
        mchid: patch.mchid.required("mchid", current.mchid)?,
        name: patch.name.required("name", current.name)?,
        reply_text: patch.reply_text.nullable(current.reply_text),
        auto_refund: patch.auto_refund.required("auto_refund", current.auto_refund)?,
        enabled: patch.enabled.required("enabled", current.enabled)?,
    }
    .validate()?;
    if provider_id != current.provider_id {
        ensure_provider(&mut tx, provider_id).await?;
        // A sub-merchant's channels belong to its provider too; they move with it.
        channels::move_with_merchant(&mut tx, id, provider_id).await?;
    }
    merchants::update(&mut tx, id, &write_of(provider_id, &valid), now).await.map_err(mchid_conflict(&valid))?;
    commit_audited(tx, now, actor, "merchant.update", ("merchant", id), serde_json::json!({"fields": changed})).await
}

#[utoipa::path(delete, path = "/merchants/{id}", tag = "merchants", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn delete(State(state): State<AppState>, actor: Actor, IdPath(id): IdPath) -> Result<StatusCode, ApiError> {
    delete_merchant(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a sub-merchant and its channels (audited `merchant.delete`). Its complaints and violations stay: they
/// are WeChat's records, and the sub-merchant is then "unknown" (the provider's defaults apply).
pub(crate) async fn delete_merchant(state: &AppState, actor: &Actor, id: i64) -> Result<(), ApiError> {
    let now = state.now_ms();
    let mut tx = state.store().begin().await?;
    let row = merchants::get(&mut tx, id).await?.ok_or(ApiError::NotFound("merchant"))?;
    merchants::delete(&mut tx, id).await?;
    let detail = serde_json::json!({"provider_id": row.provider_id, "mchid": row.mchid});
    commit_audited(tx, now, actor, "merchant.delete", ("merchant", id), detail).await
}
