//! `/api/v1/channels`: notification channels of a provider or of a sub-merchant.
//!
//! Contract: a channel belongs to a provider (`provider_id` alone) or to a sub-merchant (`merchant_id`, or
//! `merchant_mchid` — with `provider_id` when two providers share that mchid). Settings are validated per kind
//! (`domain::channel`); credentials among them are sealed for the channel's row and never returned
//! (`secrets_set` names them). A PATCH of `settings` merges: keys given replace, keys set to `null` are removed,
//! secrets not given are kept — except a secret whose destination the PATCH changes (`domain::channel::
//! credentials_to_clear`: the SMTP host, port, security or CA of a password, a webhook's URL …): that one is
//! dropped unless the same PATCH gives it again, and stays listed in `secrets_cleared` (audited) until it is set or
//! removed; the channel sends nothing meanwhile. A destination that is a literal non-public address is refused
//! unless `notify.allow_private_destinations` (`notify::destinations`).
//!
//! Who may change what: a sub-merchant's channels need the `operate` scope (the console's operator keeps its
//! sub-merchants' channels), the provider's own channels `admin` (they are the provider's setup). The routes declare
//! `operate`; [`require_for_owner`] asks the caller's [`Grant`] for `admin` once the channel's owner is known (one
//! permission check, `Grant::permits`). Test-sending through any channel needs `operate`. The actions are the
//! `pub(crate)` functions here, which the API handlers and the console's pages both call.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::{Caller, Grant, Scope};
use crate::clock::format_shanghai;
use crate::domain::channel::{ChannelKind, SplitSettings, credentials_to_clear, validate_settings};
use crate::domain::{FieldError, Mchid};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::channels::{self, ChannelFilter, ChannelRow, ChannelWrite};
use crate::store::secrets::{self, CHANNEL_SECRETS};
use crate::store::{merchants, providers};
use crate::web::api::commit_audited;
use crate::web::json::{ApiJson, ApiQuery, IdPath, ListOut, PageQuery, Patch};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelIn {
    /// The provider; alone, the channel is the provider's own.
    pub provider_id: Option<i64>,
    /// The sub-merchant the channel belongs to.
    pub merchant_id: Option<i64>,
    /// The sub-merchant, by its mchid.
    pub merchant_mchid: Option<String>,
    pub kind: ChannelKind,
    /// A label for people; defaults to the kind.
    pub name: Option<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Per kind; see the channel documentation. Credentials are write-only.
    #[schema(value_type = Object)]
    pub settings: Value,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub enabled: Patch<bool>,
    /// Merged into the stored settings.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub settings: Patch<Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelOut {
    pub id: i64,
    pub provider_id: i64,
    pub merchant_id: Option<i64>,
    pub merchant_mchid: Option<String>,
    pub kind: ChannelKind,
    pub name: String,
    pub enabled: bool,
    /// Settings without credentials.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Credential keys that hold a value.
    pub secrets_set: Vec<String>,
    /// Credentials dropped because an update changed where they are sent (host, port, security, CA, URL, robot)
    /// without giving them again — including by the update that answers this. Until each is set again (or removed
    /// with `null`), test sends and deliveries fail with `credential_cleared` instead of sending without it.
    pub secrets_cleared: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChannelListQuery {
    pub provider_id: Option<i64>,
    pub merchant_id: Option<i64>,
    pub merchant_mchid: Option<String>,
    /// `true`: only the providers' own channels.
    pub provider_only: Option<bool>,
    pub kind: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

fn parse_kind(row: &ChannelRow) -> Result<ChannelKind, ApiError> {
    ChannelKind::parse(&row.kind)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("channel {} has unknown kind {}", row.id, row.kind)))
}

/// The channel's secrets, or `None` (logged) when they do not open — sealed for another row, tampered with, or in
/// the refused old format. Such a channel can still be shown and given its credentials again; test sends and
/// deliveries report the error.
fn open_secrets(state: &AppState, row: &ChannelRow) -> Option<Map<String, Value>> {
    match crate::notify::handler::open_secrets(state, row) {
        Ok(secrets) => Some(secrets),
        Err(error) => {
            tracing::warn!(channel_id = row.id, %error, "channel secrets do not open; set them again");
            None
        }
    }
}

/// A stored channel as the API shows it.
pub(crate) async fn to_out(
    conn: &mut sqlx::AnyConnection,
    state: &AppState,
    row: ChannelRow,
) -> Result<ChannelOut, ApiError> {
    let kind = parse_kind(&row)?;
    let secrets_set = open_secrets(state, &row).map(|s| s.keys().cloned().collect()).unwrap_or_default();
    let merchant_mchid = match row.merchant_id {
        Some(id) => merchants::get(conn, id).await?.map(|m| m.mchid),
        None => None,
    };
    let settings = serde_json::from_str(&row.settings)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("channel {} settings are not JSON: {e}", row.id)))?;
    Ok(ChannelOut {
        id: row.id,
        provider_id: row.provider_id,
        merchant_id: row.merchant_id,
        merchant_mchid,
        kind,
        name: row.name,
        enabled: row.enabled,
        settings,
        secrets_set,
        secrets_cleared: row.secrets_cleared,
        created_at: format_shanghai(row.created_at),
        updated_at: format_shanghai(row.updated_at),
    })
}

/// One channel as the API shows it (credentials never; which are set, and which were cleared).
pub(crate) async fn load_out(state: &AppState, id: i64) -> Result<ChannelOut, ApiError> {
    let mut conn = state.store().conn().await?;
    let row = channels::get(&mut conn, id).await?.ok_or(ApiError::NotFound("channel"))?;
    to_out(&mut conn, state, row).await
}

/// A sub-merchant's channel (`merchant_id`) needs `operate`, a provider's own channel `admin`.
pub(crate) fn require_for_owner(grant: &Grant, merchant_id: Option<i64>) -> Result<(), ApiError> {
    let need = if merchant_id.is_some() { Scope::Operate } else { Scope::Admin };
    Ok(grant.permits(need)?)
}

/// Work out which provider (and sub-merchant) a new channel belongs to.
async fn resolve_owner(conn: &mut sqlx::AnyConnection, input: &ChannelIn) -> Result<(i64, Option<i64>), ApiError> {
    if input.merchant_id.is_some() && input.merchant_mchid.is_some() {
        return Err(ApiError::invalid("merchant_mchid", "give merchant_id or merchant_mchid, not both"));
    }
    if let Some(merchant_id) = input.merchant_id {
        let merchant = merchants::get(conn, merchant_id)
            .await?
            .ok_or_else(|| ApiError::invalid("merchant_id", format!("no sub-merchant has id {merchant_id}")))?;
        if input.provider_id.is_some_and(|p| p != merchant.provider_id) {
            return Err(ApiError::invalid("provider_id", "is not the provider of this sub-merchant"));
        }
        return Ok((merchant.provider_id, Some(merchant.id)));
    }
    if let Some(mchid) = &input.merchant_mchid {
        let mchid = Mchid::parse("merchant_mchid", mchid)?;
        let found = merchants::find_by_mchid(conn, input.provider_id, mchid.as_str()).await?;
        return match found.as_slice() {
            [merchant] => Ok((merchant.provider_id, Some(merchant.id))),
            [] => Err(ApiError::invalid("merchant_mchid", format!("no sub-merchant has mchid {mchid}"))),
            _ => Err(ApiError::invalid(
                "merchant_mchid",
                format!("several providers have a sub-merchant {mchid}; give provider_id too"),
            )),
        };
    }
    match input.provider_id {
        Some(provider_id) => match providers::get(conn, provider_id).await? {
            Some(_) => Ok((provider_id, None)),
            None => Err(ApiError::invalid("provider_id", format!("no provider has id {provider_id}"))),
        },
        None => Err(ApiError::invalid("provider_id", "give provider_id, merchant_id or merchant_mchid")),
    }
}

fn channel_name(kind: ChannelKind, name: Option<String>) -> Result<String, FieldError> {
    match name.filter(|n| !n.trim().is_empty()) {
        Some(name) => crate::domain::text_field("name", &name, 128),
        None => Ok(kind.as_str().to_owned()),
    }
}

/// Seal a channel's secrets for its row (`None` when it has none).
fn seal_secrets(state: &AppState, id: i64, split: &SplitSettings) -> Result<Option<String>, ApiError> {
    if split.secrets.is_empty() {
        return Ok(None);
    }
    let json = Value::Object(split.secrets.clone()).to_string();
    Ok(Some(state.keyring().seal(&CHANNEL_SECRETS.row(id), json.as_bytes())?))
}

/// A destination that is a literal non-public address, refused unless the operator allows them.
fn check_destination(state: &AppState, kind: ChannelKind, split: &SplitSettings) -> Result<(), FieldError> {
    let allow = state.config().notify.allow_private_destinations;
    crate::notify::destinations::check_settings(kind, &split.public, allow)
}

/// Create a channel.
///
/// A sub-merchant's channel needs the `operate` scope; the provider's own channel needs `admin` (403 otherwise).
#[utoipa::path(post, path = "/channels", tag = "channels", request_body = ChannelIn,
    responses((status = 201, body = ChannelOut), (status = 400, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<ChannelIn>,
) -> Result<(StatusCode, Json<ChannelOut>), ApiError> {
    let id = create_channel(&state, &caller, input).await?;
    Ok((StatusCode::CREATED, Json(load_out(&state, id).await?)))
}

/// Create a channel (audited `channel.create`); returns its id. The owner is resolved and the caller's grant
/// checked for it before the settings are looked at: a caller who may not make the channel learns nothing more.
pub(crate) async fn create_channel(state: &AppState, caller: &Caller, input: ChannelIn) -> Result<i64, ApiError> {
    let now = state.now_ms();
    let mut tx = state.store().begin().await?;
    let (provider_id, merchant_id) = resolve_owner(&mut tx, &input).await?;
    require_for_owner(&caller.grant, merchant_id)?;
    let name = channel_name(input.kind, input.name.clone())?;
    let split = validate_settings(input.kind, input.settings.clone())?;
    check_destination(state, input.kind, &split)?;
    let settings = Value::Object(split.public.clone()).to_string();
    let write = ChannelWrite {
        provider_id,
        merchant_id,
        kind: input.kind.as_str(),
        name: &name,
        enabled: input.enabled,
        settings: &settings,
        // Sealed for the row once it has an id, below, in this transaction.
        secrets_sealed: None,
        secrets_cleared: &[],
    };
    let id = channels::insert(&mut tx, &write, now).await?;
    if let Some(sealed) = seal_secrets(state, id, &split)? {
        secrets::put(&mut tx, CHANNEL_SECRETS, id, Some(&sealed)).await?;
    }
    let detail =
        serde_json::json!({"provider_id": provider_id, "merchant_id": merchant_id, "kind": input.kind.as_str()});
    commit_audited(tx, now, &caller.actor, "channel.create", ("channel", id), detail).await?;
    Ok(id)
}

#[utoipa::path(get, path = "/channels", tag = "channels", params(ChannelListQuery),
    responses((status = 200, body = ListOut<ChannelOut>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<ChannelListQuery>,
) -> Result<Json<ListOut<ChannelOut>>, ApiError> {
    let page = PageQuery { cursor: query.cursor, limit: query.limit }.page()?;
    let mut conn = state.store().conn().await?;
    let mut merchant_id = query.merchant_id;
    if let Some(mchid) = &query.merchant_mchid {
        let found = merchants::find_by_mchid(&mut conn, query.provider_id, mchid).await?;
        match found.first() {
            Some(m) => merchant_id = Some(m.id),
            None => return Ok(Json(ListOut::new(Vec::new(), None))),
        }
    }
    if let Some(kind) = &query.kind
        && ChannelKind::parse(kind).is_none()
    {
        return Err(ApiError::invalid("kind", format!("`{kind}` is not a channel kind")));
    }
    let filter = ChannelFilter {
        provider_id: query.provider_id,
        merchant_id,
        provider_only: query.provider_only.unwrap_or(false),
        kind: query.kind,
    };
    let (rows, next) = page.finish(channels::list(&mut conn, &filter, page).await?, |c| c.id);
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        items.push(to_out(&mut conn, &state, row).await?);
    }
    Ok(Json(ListOut::new(items, next)))
}

#[utoipa::path(get, path = "/channels/{id}", tag = "channels", params(("id" = i64, Path)),
    responses((status = 200, body = ChannelOut), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<ChannelOut>, ApiError> {
    Ok(Json(load_out(&state, id).await?))
}

/// Change a channel (settings merge; see the module contract).
///
/// A sub-merchant's channel needs the `operate` scope; the provider's own channel needs `admin` (403 otherwise).
#[utoipa::path(patch, path = "/channels/{id}", tag = "channels", params(("id" = i64, Path)), request_body = ChannelPatch,
    responses((status = 200, body = ChannelOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(patch): ApiJson<ChannelPatch>,
) -> Result<Json<ChannelOut>, ApiError> {
    update_channel(&state, &caller, id, patch).await?;
    Ok(Json(load_out(&state, id).await?))
}

/// Change a channel (audited `channel.update`, naming the fields given and any credential the change cleared).
/// What was cleared stays in the channel's `secrets_cleared` (see [`ChannelOut`]) for the caller to show.
pub(crate) async fn update_channel(
    state: &AppState,
    caller: &Caller,
    id: i64,
    patch: ChannelPatch,
) -> Result<(), ApiError> {
    let now = state.now_ms();
    let mut tx = state.store().begin().await?;
    let current = channels::get(&mut tx, id).await?.ok_or(ApiError::NotFound("channel"))?;
    require_for_owner(&caller.grant, current.merchant_id)?;
    let kind = parse_kind(&current)?;
    let mut changed: Vec<String> = Vec::new();
    let name = match patch.name {
        Patch::Missing => current.name.clone(),
        Patch::Null => kind.as_str().to_owned(),
        Patch::Value(name) => channel_name(kind, Some(name))?,
    };
    if name != current.name {
        changed.push("name".to_owned());
    }
    let enabled = patch.enabled.required("enabled", current.enabled)?;
    if enabled != current.enabled {
        changed.push("enabled".to_owned());
    }
    let mut cleared_now: Vec<String> = Vec::new();
    let mut clear_reason = "destination changed without the credential";
    let (settings, sealed, secrets_cleared) = match patch.settings {
        Patch::Missing => (current.settings.clone(), current.secrets_sealed.clone(), current.secrets_cleared.clone()),
        Patch::Null => return Err(ApiError::invalid("settings", "cannot be null")),
        Patch::Value(update) => {
            let mut before: Map<String, Value> = serde_json::from_str(&current.settings)
                .map_err(|e| ApiError::internal(anyhow::anyhow!("channel {id} settings are not JSON: {e}")))?;
            let stored_secrets = open_secrets(state, &current);
            let unreadable = stored_secrets.is_none();
            before.extend(stored_secrets.unwrap_or_default());
            let mut merged = before.clone();
            // Keys this update sets to a value: a credential among them is "given again".
            let mut given: Vec<String> = Vec::new();
            let mut touched: Vec<String> = Vec::new();
            for (key, value) in update {
                changed.push(format!("settings.{key}"));
                touched.push(key.clone());
                if value.is_null() {
                    merged.remove(&key);
                } else {
                    given.push(key.clone());
                    merged.insert(key, value);
                }
            }
            let mut split = validate_settings(kind, Value::Object(merged))
                .map_err(|e| explain_cleared(e, &current.secrets_cleared))?;
            check_destination(state, kind, &split)?;
            // Compare normalised with normalised: what was stored is normalised; what the update gave is now.
            let mut after = split.public.clone();
            after.extend(split.secrets.clone());
            cleared_now = credentials_to_clear(kind, &before, &after, &given);
            if unreadable {
                clear_reason = "the stored secrets do not open";
                // Secrets that no longer open are as good as gone: each one not given now must be set again (or
                // removed with null) before the channel sends, never silently dropped.
                for key in kind.secret_keys() {
                    let key = (*key).to_owned();
                    if !touched.contains(&key) && !cleared_now.contains(&key) {
                        cleared_now.push(key);
                    }
                }
            }
            for key in &cleared_now {
                split.secrets.remove(key);
            }
            let mut secrets_cleared: Vec<String> =
                current.secrets_cleared.iter().filter(|k| !touched.contains(k)).cloned().collect();
            for key in &cleared_now {
                if !secrets_cleared.contains(key) {
                    secrets_cleared.push(key.clone());
                }
            }
            (Value::Object(split.public.clone()).to_string(), seal_secrets(state, id, &split)?, secrets_cleared)
        }
    };
    let write = ChannelWrite {
        provider_id: current.provider_id,
        merchant_id: current.merchant_id,
        kind: kind.as_str(),
        name: &name,
        enabled,
        settings: &settings,
        secrets_sealed: sealed.as_deref(),
        secrets_cleared: &secrets_cleared,
    };
    channels::update(&mut tx, id, &write, now).await?;
    let mut detail = serde_json::json!({"fields": changed});
    if !cleared_now.is_empty() {
        // Which credentials this change dropped, and why (their values never reach the log).
        detail["secrets_cleared"] = serde_json::json!(cleared_now);
        detail["reason"] = serde_json::json!(clear_reason);
    }
    commit_audited(tx, now, &caller.actor, "channel.update", ("channel", id), detail).await
}

/// A required credential that is missing because a destination change cleared it: say so.
fn explain_cleared(error: FieldError, cleared: &[String]) -> FieldError {
    match error.field.strip_prefix("settings.") {
        Some(key) if cleared.iter().any(|c| c == key) => FieldError::new(
            error.field.clone(),
            "was cleared when the channel's destination changed; give it again in this update",
        ),
        _ => error,
    }
}

/// Delete a channel.
///
/// A sub-merchant's channel needs the `operate` scope; the provider's own channel needs `admin` (403 otherwise).
#[utoipa::path(delete, path = "/channels/{id}", tag = "channels", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn delete(State(state): State<AppState>, caller: Caller, IdPath(id): IdPath) -> Result<StatusCode, ApiError> {
    delete_channel(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a channel (audited `channel.delete`).
pub(crate) async fn delete_channel(state: &AppState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    let now = state.now_ms();
    let mut tx = state.store().begin().await?;
    let current = channels::get(&mut tx, id).await?.ok_or(ApiError::NotFound("channel"))?;
    require_for_owner(&caller.grant, current.merchant_id)?;
    channels::delete(&mut tx, id).await?;
    let detail = serde_json::json!({"provider_id": current.provider_id, "merchant_id": current.merchant_id});
    commit_audited(tx, now, &caller.actor, "channel.delete", ("channel", id), detail).await
}

/// Send a sample message through the channel now (not through the queue, not rate limited) and report the
/// service's answer verbatim, so a wrong authorization code or template id shows at once.
#[utoipa::path(post, path = "/channels/{id}/test", tag = "channels", params(("id" = i64, Path)),
    responses((status = 200, body = crate::notify::TestSendOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<crate::notify::TestSendOut>, ApiError> {
    Ok(Json(test_channel_audited(&state, &caller, id).await?))
}

/// Test-send through a channel and record it in the audit log (`channel.test`, with the outcome and the service's
/// code). The answer is already cut to 2 KiB (`notify::cut_answer`).
pub(crate) async fn test_channel_audited(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<crate::notify::TestSendOut, ApiError> {
    caller.grant.permits(Scope::Operate)?;
    let (row, out) = test_channel(state, id).await?;
    let now = state.now_ms();
    let tx = state.store().begin().await?;
    let detail = serde_json::json!({"kind": row.kind, "ok": out.ok, "code": out.code});
    commit_audited(tx, now, &caller.actor, "channel.test", ("channel", id), detail).await?;
    Ok(out)
}

/// Shared by the API and `wxrisk channel test`.
pub async fn test_channel(state: &AppState, id: i64) -> Result<(ChannelRow, crate::notify::TestSendOut), ApiError> {
    let row = {
        let mut conn = state.store().conn().await?;
        channels::get(&mut conn, id).await?.ok_or(ApiError::NotFound("channel"))?
    };
    let out = crate::notify::test_send(state, &row).await.map_err(|e| ApiError::invalid("channel", e))?;
    Ok((row, out))
}
