//! `/healthz` (the process is alive), `/readyz` (the database answers and the schema is current), `/metrics`.
//!
//! Contract: the probes are public (a load balancer or orchestrator calls them without credentials, and they say
//! nothing but up/ready); `/metrics` is public unless `metrics.token` is set, then it answers 401 to any request
//! without `Authorization: Bearer <metrics.token>`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{jobs, migrate};
use crate::web::access::bearer_matches;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// A probe must answer quickly even when the database hangs.
const READINESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store();
    let unavailable =
        |reason: &str| (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "reason": reason})));
    match tokio::time::timeout(READINESS_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            return unavailable("database unreachable");
        }
        Err(_) => return unavailable("database did not answer in time"),
    }
    match tokio::time::timeout(READINESS_TIMEOUT, migrate::pending(store)).await {
        Ok(Ok(pending)) if pending.is_empty() => {
            (StatusCode::OK, Json(json!({"status": "ready", "database": store.backend().name()})))
        }
        Ok(Ok(pending)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": "migrations not applied", "pending": pending})),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: cannot read migrations");
            unavailable("cannot read migrations")
        }
        Err(_) => unavailable("database did not answer in time"),
    }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config().metrics.token
        && !bearer_matches(&headers, token)
    {
        return ApiError::Unauthorized.into_response();
    }
    let mut gauges = Vec::new();
    let counts = match state.store().conn().await {
        Ok(mut conn) => jobs::count_by_status(&mut conn).await.ok(),
        Err(_) => None,
    };
    gauges.push(("wxrisk_database_up", Vec::new(), i64::from(counts.is_some())));
    let counts = counts.unwrap_or_default();
    let status_names: Vec<&'static str> = jobs::JobStatus::ALL.iter().map(|s| s.as_str()).collect();
    for status in status_names {
        let n = counts.iter().find(|(s, _)| s == status).map(|(_, n)| *n).unwrap_or(0);
        gauges.push(("wxrisk_jobs", vec![("status", status)], n));
    }
    (
        [(header::CONTENT_TYPE, prometheus_client::encoding::prometheus_text::CONTENT_TYPE)],
        state.metrics().render(&gauges),
    )
        .into_response()
}
