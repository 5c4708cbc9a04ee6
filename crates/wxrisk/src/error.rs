//! The web layer's error: a stable JSON body `{"code", "message", "field"?}` and the HTTP status that goes with
//! it. Causes are logged here with their chain; clients get the stable code and a message without internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// A real token past its expiry (shown in Asia/Shanghai time).
    #[error("this token expired at {at}; ask an administrator for a new one (`wxrisk token create`)")]
    TokenExpired { at: String },
    /// A valid token whose scope is below what the route needs.
    #[error("{0}")]
    Forbidden(#[from] crate::auth::Denied),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is well-formed JSON but a value is wrong.
    #[error("{0}")]
    Invalid(#[from] FieldError),
    /// The body is not the JSON this endpoint takes.
    #[error("{message}")]
    BadRequest { code: &'static str, field: Option<String>, message: String },
    #[error("{message}")]
    Conflict { field: Option<String>, message: String },
    /// Understood but refused: an idempotency key reused for another request.
    #[error("{message}")]
    Unprocessable { field: Option<String>, message: String },
    #[error("requests must be sent as application/json")]
    UnsupportedMediaType,
    #[error("the request body is larger than this server accepts")]
    PayloadTooLarge,
    /// WeChat Pay (or another service we called for the request) refused or failed.
    #[error("{0}")]
    Upstream(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `INVALID_FIELD`, `UNKNOWN_FIELD`, `MISSING_FIELD`, `MALFORMED_JSON`, `NOT_FOUND`,
    /// `CONFLICT`, `IDEMPOTENCY_KEY_REUSED`, `UPSTREAM`, `UNAUTHORIZED`, `TOKEN_EXPIRED`, `FORBIDDEN` (the token's
    /// scope is too low), `UNSUPPORTED_MEDIA_TYPE`, `PAYLOAD_TOO_LARGE`, `INTERNAL`.
    pub code: String,
    pub message: String,
    /// The request field at fault, as a path (`settings.to[1]`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        ApiError::Conflict { field: Some(field.to_owned()), message: message.into() }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid(FieldError::new(field, message))
    }

    /// The HTTP status this error is answered with (the console answers the same statuses as the API).
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// What a person is shown: the message, without internals.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Invalid(e) => format!("{}: {}", e.field, e.message),
            other => other.to_string(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, Option<String>) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", None),
            ApiError::TokenExpired { .. } => (StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED", None),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN", None),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND", None),
            ApiError::Invalid(e) => (StatusCode::BAD_REQUEST, "INVALID_FIELD", Some(e.field.clone())),
            ApiError::BadRequest { code, field, .. } => (StatusCode::BAD_REQUEST, code, field.clone()),
            ApiError::Conflict { field, .. } => (StatusCode::CONFLICT, "CONFLICT", field.clone()),
            ApiError::Unprocessable { field, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED", field.clone())
            }
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", None),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", None),
            ApiError::Upstream(_) => (StatusCode::BAD_GATEWAY, "UPSTREAM", None),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", None),
        }
    }
}

impl ApiError {
    /// The `WWW-Authenticate` challenge of RFC 6750 §3 for authentication and scope refusals.
    fn bearer_challenge(&self) -> Option<axum::http::HeaderValue> {
        let value = match self {
            ApiError::Unauthorized => "Bearer realm=\"wxrisk\"".to_owned(),
            ApiError::TokenExpired { .. } => {
                "Bearer realm=\"wxrisk\", error=\"invalid_token\", error_description=\"the token expired\"".to_owned()
            }
            ApiError::Forbidden(denied) => {
                format!("Bearer realm=\"wxrisk\", error=\"insufficient_scope\", scope=\"{}\"", denied.need)
            }
            _ => return None,
        };
        axum::http::HeaderValue::from_str(&value).ok()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict { constraint } => {
                ApiError::Conflict { field: None, message: format!("conflicts with an existing record ({constraint})") }
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::from(e).into()
    }
}

impl From<crate::secrets::SecretsError> for ApiError {
    fn from(e: crate::secrets::SecretsError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = self.parts();
        if let ApiError::Internal(cause) = &self {
            // `{:#}` prints the whole cause chain on one line.
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let message = match &self {
            ApiError::Invalid(e) => e.message.clone(),
            other => other.to_string(),
        };
        let mut response = (status, axum::Json(ErrorBody { code: code.to_owned(), message, field })).into_response();
        if let Some(challenge) = self.bearer_challenge() {
            response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
