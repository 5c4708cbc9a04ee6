//! HTTP: the operator console under `/console` (`console`), the JSON API under `/api/v1`, WeChat Pay's callbacks
//! (`crate::intake`), health and metrics.
//!
//! Contract: every route answers errors as `{"code","message","field"?}` JSON; request bodies are limited to
//! `http.max_body_bytes`; `Authorization` and `Cookie` headers never reach a log line; every API route declares
//! the scope it needs (`access`).

pub mod access;
pub mod api;
pub mod console;
pub mod health;
pub mod json;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let http = &state.config().http;
    Router::new()
        .merge(health::router())
        .nest("/api/v1", api::router(&state))
        .merge(crate::intake::router(&state))
        .merge(console::router(&state))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), track_metrics))
        .layer(DefaultBodyLimit::max(http.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, http.request_timeout))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION, COOKIE]))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()))
        .with_state(state)
}

/// A path nothing serves: a page under `/console`, JSON elsewhere.
async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/console") {
        return console::security_headers_on(console::ConsoleError::NotFound.into_response());
    }
    ApiError::NotFound("route").into_response()
}

/// Count and time every request by its route pattern (never the raw path: ids would explode the label set).
async fn track_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let metrics = state.metrics();
    metrics.inc("wxrisk_http_requests_total", &[("route", &route), ("status", &status)]);
    metrics.observe("wxrisk_http_request_duration_seconds", &[("route", &route)], started.elapsed().as_secs_f64());
    response
}
