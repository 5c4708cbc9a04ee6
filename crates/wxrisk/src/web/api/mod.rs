//! The JSON API, version 1, and its OpenAPI document (`/api/v1/openapi.json`).

pub mod callbacks;
pub mod channels;
pub mod complaints;
pub mod deliveries;
pub mod jobs;
pub mod merchants;
pub mod providers;
pub mod rejections;
pub mod risk;
pub mod templates;
pub mod violations;

use axum::Json;
use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::auth::Actor;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Tx, audit};

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "wxrisk API", description = "Complaint and violation handling for WeChat Pay service providers."),
    servers((url = "/api/v1")),
    paths(
        providers::create, providers::list, providers::get, providers::update, providers::delete,
        merchants::create, merchants::list, merchants::get, merchants::update, merchants::delete,
        channels::create, channels::list, channels::get, channels::update, channels::delete, channels::test,
        deliveries::list, deliveries::get, deliveries::retry,
        complaints::list, complaints::get, complaints::reply, complaints::refund, complaints::complete,
        complaints::refund_progress, rejections::list, violations::list, violations::get, risk::merchant, risk::ranking,
        callbacks::show, callbacks::register,
        templates::list, templates::get, templates::put, templates::delete,
        jobs::list, jobs::get, jobs::retry,
    ),
    components(schemas(crate::error::ErrorBody, crate::domain::channel::ChannelKind)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token from `wxrisk token create --name NAME`."))
                    .build(),
            ),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/providers", get(providers::list).post(providers::create))
        .route("/providers/{id}", get(providers::get).patch(providers::update).delete(providers::delete))
        .route("/merchants", get(merchants::list).post(merchants::create))
        .route("/merchants/{id}", get(merchants::get).patch(merchants::update).delete(merchants::delete))
        .route("/channels", get(channels::list).post(channels::create))
        .route("/channels/{id}", get(channels::get).patch(channels::update).delete(channels::delete))
        .route("/channels/{id}/test", axum::routing::post(channels::test))
        .route("/complaints", get(complaints::list))
        .route("/complaints/{complaint_id}", get(complaints::get))
        .route("/complaints/{complaint_id}/reply", axum::routing::post(complaints::reply))
        .route("/complaints/{complaint_id}/refund", axum::routing::post(complaints::refund))
        .route("/complaints/{complaint_id}/complete", axum::routing::post(complaints::complete))
        .route("/complaints/{complaint_id}/refund-progress", axum::routing::post(complaints::refund_progress))
        .route("/callback-rejections", get(rejections::list))
        .route("/violations", get(violations::list))
        .route("/violations/{id}", get(violations::get))
        .route("/merchants/{id}/risk", get(risk::merchant))
        .route("/risk/merchants", get(risk::ranking))
        .route("/providers/{id}/callbacks", get(callbacks::show))
        .route("/providers/{id}/register-callbacks", axum::routing::post(callbacks::register))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{id}", get(deliveries::get))
        .route("/deliveries/{id}/retry", axum::routing::post(deliveries::retry))
        .route("/providers/{id}/templates", get(templates::list))
        .route(
            "/providers/{id}/templates/{event_kind}/{locale}",
            get(templates::get).put(templates::put).delete(templates::delete),
        )
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::get))
        .route("/jobs/{id}/retry", axum::routing::post(jobs::retry))
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Record in the audit log what `actor` did, and commit it together with the change itself.
pub(crate) async fn commit_audited(
    mut tx: Tx,
    now: i64,
    actor: &Actor,
    action: &str,
    (target_type, target_id): (&str, i64),
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    audit::record(&mut tx, now, &actor.label(), action, (target_type, &target_id.to_string()), &detail).await?;
    tx.commit().await?;
    tracing::info!(action, target_type, target_id, actor = actor.label(), %detail, "changed");
    Ok(())
}
