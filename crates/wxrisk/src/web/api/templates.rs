//! `/api/v1/providers/{id}/templates`: a provider's own wording for each event kind and language.
//!
//! Contract: every (event kind, language) has the built-in template until the provider saves its own; a saved
//! template must render the sample event of its kind (syntax, and the fuel limit against endless loops) or it is
//! refused with the part (`subject`, `text`, `html`) named. `html` is auto-escaped; `subject` and `text` are plain.
//! Deleting one goes back to the built-in template.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::clock::format_shanghai;
use crate::error::ApiError;
use crate::notify::message::{self, Templates};
use crate::notify::{EventKind, Locale};
use crate::state::AppState;
use crate::store::providers;
use crate::store::templates::{self, TemplateRow};
use crate::web::api::commit_audited;
use crate::web::json::{ApiJson, ApiPath, IdPath, ListOut};

/// Longest template part accepted, in bytes.
const MAX_TEMPLATE_BYTES: usize = 32 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateIn {
    /// One line; line breaks are replaced by spaces.
    pub subject: String,
    /// Plain text: email text part, robots, webhook.
    pub text: String,
    /// HTML (auto-escaped): email HTML part.
    pub html: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateOut {
    pub event_kind: String,
    pub locale: String,
    /// `false`: the built-in template.
    pub customized: bool,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub updated_at: Option<String>,
    /// The sample event rendered with it (on PUT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Templates>,
}

fn parse_key(event_kind: &str, locale: &str) -> Result<(EventKind, Locale), ApiError> {
    let kind = EventKind::parse(event_kind).ok_or(ApiError::NotFound("event kind"))?;
    let locale = Locale::parse_strict(locale).ok_or(ApiError::NotFound("locale"))?;
    Ok((kind, locale))
}

fn out_of(kind: EventKind, locale: Locale, row: Option<TemplateRow>) -> TemplateOut {
    match row {
        Some(row) => TemplateOut {
            event_kind: kind.as_str().to_owned(),
            locale: locale.as_str().to_owned(),
            customized: true,
            subject: row.subject,
            text: row.text_body,
            html: row.html_body,
            updated_at: Some(format_shanghai(row.updated_at)),
            preview: None,
        },
        None => {
            let built_in = message::default_templates(kind, locale);
            TemplateOut {
                event_kind: kind.as_str().to_owned(),
                locale: locale.as_str().to_owned(),
                customized: false,
                subject: built_in.subject,
                text: built_in.text,
                html: built_in.html,
                updated_at: None,
                preview: None,
            }
        }
    }
}

async fn provider_exists(conn: &mut sqlx::AnyConnection, id: i64) -> Result<(), ApiError> {
    providers::get(conn, id).await?.map(|_| ()).ok_or(ApiError::NotFound("provider"))
}

/// Every event kind in both languages: the provider's template where it has one, else the built-in one.
#[utoipa::path(get, path = "/providers/{id}/templates", tag = "templates", params(("id" = i64, Path)),
    responses((status = 200, body = ListOut<TemplateOut>), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _actor: Actor,
    IdPath(id): IdPath,
) -> Result<Json<ListOut<TemplateOut>>, ApiError> {
    let mut conn = state.store().conn().await?;
    provider_exists(&mut conn, id).await?;
    let mut saved = templates::list(&mut conn, id).await?;
    let mut items = Vec::new();
    for kind in EventKind::ALL {
        for locale in [Locale::Zh, Locale::En] {
            let position = saved.iter().position(|t| t.event_kind == kind.as_str() && t.locale == locale.as_str());
            items.push(out_of(kind, locale, position.map(|i| saved.swap_remove(i))));
        }
    }
    Ok(Json(ListOut::new(items, None)))
}

#[utoipa::path(get, path = "/providers/{id}/templates/{event_kind}/{locale}", tag = "templates",
    params(("id" = i64, Path), ("event_kind" = String, Path), ("locale" = String, Path, description = "zh-CN or en")),
    responses((status = 200, body = TemplateOut), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _actor: Actor,
    ApiPath((id, event_kind, locale)): ApiPath<(i64, String, String)>,
) -> Result<Json<TemplateOut>, ApiError> {
    let (kind, locale) = parse_key(&event_kind, &locale)?;
    let mut conn = state.store().conn().await?;
    provider_exists(&mut conn, id).await?;
    let row = templates::get(&mut conn, id, kind.as_str(), locale.as_str()).await?;
    Ok(Json(out_of(kind, locale, row)))
}

/// Save the provider's own template; it must render the sample event.
#[utoipa::path(put, path = "/providers/{id}/templates/{event_kind}/{locale}", tag = "templates",
    params(("id" = i64, Path), ("event_kind" = String, Path), ("locale" = String, Path, description = "zh-CN or en")),
    request_body = TemplateIn,
    responses((status = 200, body = TemplateOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((id, event_kind, locale)): ApiPath<(i64, String, String)>,
    ApiJson(input): ApiJson<TemplateIn>,
) -> Result<Json<TemplateOut>, ApiError> {
    let (kind, locale) = parse_key(&event_kind, &locale)?;
    for (part, value) in [("subject", &input.subject), ("text", &input.text), ("html", &input.html)] {
        if value.trim().is_empty() {
            return Err(ApiError::invalid(part, "must not be empty"));
        }
        if value.len() > MAX_TEMPLATE_BYTES {
            return Err(ApiError::invalid(part, format!("at most {MAX_TEMPLATE_BYTES} bytes")));
        }
    }
    let now = state.now_ms();
    let candidate = Templates { subject: input.subject, text: input.text, html: input.html };
    let sample = message::sample_data(kind, now);
    let rendered = message::render(kind, locale, &sample, state.config().public_base(), now, Some(&candidate))
        .map_err(|e| ApiError::invalid(e.part, e.message))?;
    if rendered.subject.is_empty() {
        return Err(ApiError::invalid("subject", "renders empty for the sample event"));
    }
    let mut tx = state.store().begin().await?;
    provider_exists(&mut tx, id).await?;
    let row = TemplateRow {
        provider_id: id,
        event_kind: kind.as_str().to_owned(),
        locale: locale.as_str().to_owned(),
        subject: candidate.subject,
        text_body: candidate.text,
        html_body: candidate.html,
        updated_at: now,
    };
    templates::put(&mut tx, &row).await?;
    let detail = serde_json::json!({"event_kind": kind.as_str(), "locale": locale.as_str()});
    commit_audited(tx, now, &actor, "template.put", ("provider", id), detail).await?;
    let mut out = out_of(kind, locale, Some(row));
    out.preview = Some(Templates { subject: rendered.subject, text: rendered.text, html: rendered.html });
    Ok(Json(out))
}

/// Go back to the built-in template.
#[utoipa::path(delete, path = "/providers/{id}/templates/{event_kind}/{locale}", tag = "templates",
    params(("id" = i64, Path), ("event_kind" = String, Path), ("locale" = String, Path, description = "zh-CN or en")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((id, event_kind, locale)): ApiPath<(i64, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (kind, locale) = parse_key(&event_kind, &locale)?;
    let now = state.now_ms();
    let mut tx = state.store().begin().await?;
    if !templates::delete(&mut tx, id, kind.as_str(), locale.as_str()).await? {
        return Err(ApiError::NotFound("template"));
    }
    let detail = serde_json::json!({"event_kind": kind.as_str(), "locale": locale.as_str()});
    commit_audited(tx, now, &actor, "template.delete", ("provider", id), detail).await?;
    Ok(StatusCode::NO_CONTENT)
}
