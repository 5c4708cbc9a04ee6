//! `/api/v1/providers/{id}/callbacks` and `/register-callbacks`: the complaint and violation notification URLs
//! WeChat Pay has for a provider, and registering ours (from `WXRISK_PUBLIC_URL`) there.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::api::commit_audited;
use crate::web::json::IdPath;
use crate::wechat::{RegistrationError, Registrations, current_urls, expected_urls, register_callbacks};

impl From<RegistrationError> for ApiError {
    fn from(e: RegistrationError) -> Self {
        match e {
            RegistrationError::UnknownProvider(_) => ApiError::NotFound("provider"),
            RegistrationError::PublicUrl(message) => ApiError::invalid("WXRISK_PUBLIC_URL", message),
            RegistrationError::Wechat(e) => ApiError::Upstream(format!("WeChat Pay: {e}")),
            RegistrationError::Client(e) => ApiError::internal(e),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbacksOut {
    /// What WeChat Pay has now (`null`: nothing registered).
    pub complaints: Option<String>,
    pub violations: Option<String>,
    /// What wxrisk would register (`null` without a usable public URL).
    pub expected_complaints: Option<String>,
    pub expected_violations: Option<String>,
    /// Both registered as expected.
    pub in_place: bool,
    /// Why nothing can be registered yet, when so.
    pub problem: Option<String>,
}

#[utoipa::path(get, path = "/providers/{id}/callbacks", tag = "providers", params(("id" = i64, Path)),
    responses((status = 200, body = CallbacksOut), (status = 404, body = crate::error::ErrorBody), (status = 502, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    _actor: Actor,
    IdPath(id): IdPath,
) -> Result<Json<CallbacksOut>, ApiError> {
    let (complaints, violations) = current_urls(&state, id).await?;
    let (expected, problem) = match expected_urls(&state, id) {
        Ok(urls) => (Some(urls), None),
        Err(RegistrationError::PublicUrl(message)) => (None, Some(message)),
        Err(other) => return Err(other.into()),
    };
    let in_place =
        expected.as_ref().is_some_and(|(c, v)| complaints.as_ref() == Some(c) && violations.as_ref() == Some(v));
    Ok(Json(CallbacksOut {
        complaints,
        violations,
        expected_complaints: expected.as_ref().map(|(c, _)| c.clone()),
        expected_violations: expected.map(|(_, v)| v),
        in_place,
        problem,
    }))
}

/// Create or update both notification URLs at WeChat Pay (unchanged ones are left alone).
#[utoipa::path(post, path = "/providers/{id}/register-callbacks", tag = "providers", params(("id" = i64, Path)),
    responses((status = 200, body = Registrations), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 502, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn register(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath,
) -> Result<Json<Registrations>, ApiError> {
    let done = register_callbacks(&state, id).await?;
    let now = state.now_ms();
    let tx = state.store().begin().await?;
    let detail = serde_json::json!({"complaints": done.complaints.action, "violations": done.violations.action});
    commit_audited(tx, now, &actor, "provider.register_callbacks", ("provider", id), detail).await?;
    Ok(Json(done))
}
