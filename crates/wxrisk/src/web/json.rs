//! Request bodies and query strings for the JSON API, with errors that name the field at fault.
//!
//! Contract: [`ApiJson`] accepts only `application/json`, within the configured body limit, and turns every
//! serde failure into an [`ApiError`] with a stable code (`MALFORMED_JSON`, `UNKNOWN_FIELD`, `MISSING_FIELD`,
//! `INVALID_FIELD`) and the field's path. [`Patch`] tells an absent field from an explicit `null`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// A JSON body of type `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let essence = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest { code: "MALFORMED_JSON", field: None, message: rejection.body_text() }
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parse JSON text into `T`, classifying the failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        classify(&path, &inner)
    })?;
    deserializer.end().map_err(|e| classify(".", &e))?;
    Ok(value)
}

fn classify(path: &str, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let raw = e.to_string();
    // serde_json appends " at line L column C"; the field path says more.
    let message = match raw.rfind(" at line ") {
        Some(i) => raw[..i].to_owned(),
        None => raw.clone(),
    };
    let parent = if path == "." || path.is_empty() { None } else { Some(path.to_owned()) };
    let join = |name: &str| match &parent {
        Some(p) if !p.ends_with(name) => format!("{p}.{name}"),
        Some(p) => p.clone(),
        None => name.to_owned(),
    };
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::BadRequest {
            code: "MALFORMED_JSON",
            field: None,
            message: format!("the body is not valid JSON: {raw}"),
        },
        Category::Data => {
            if let Some(name) = backticked(&message, "unknown field `") {
                ApiError::BadRequest { code: "UNKNOWN_FIELD", field: Some(join(&name)), message }
            } else if let Some(name) = backticked(&message, "missing field `") {
                ApiError::BadRequest { code: "MISSING_FIELD", field: Some(join(&name)), message }
            } else {
                ApiError::BadRequest { code: "INVALID_FIELD", field: parent, message }
            }
        }
    }
}

fn backticked(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next().map(str::to_owned)
}

/// A field of a PATCH body: absent (leave as is), `null` (clear), or a new value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Missing,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Patch::Null, Patch::Value))
    }
}

impl<T> Patch<T> {
    pub fn is_missing(&self) -> bool {
        matches!(self, Patch::Missing)
    }

    /// For a field that cannot be cleared: `null` is an error, absent keeps `current`.
    pub fn required(self, field: &str, current: T) -> Result<T, ApiError> {
        match self {
            Patch::Missing => Ok(current),
            Patch::Null => Err(ApiError::invalid(field, "cannot be null")),
            Patch::Value(v) => Ok(v),
        }
    }

    /// For a nullable field: absent keeps `current`, `null` clears.
    pub fn nullable(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Missing => current,
            Patch::Null => None,
            Patch::Value(v) => Some(v),
        }
    }
}

/// Keyset pagination parameters shared by list endpoints.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1–200 (default 50).
    pub limit: Option<i64>,
}

impl PageQuery {
    pub fn page(&self) -> Result<crate::store::Page, ApiError> {
        use crate::store::Page;
        let after_id = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => 0,
            Some(c) => c
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API gave out"))?,
        };
        let limit = self.limit.unwrap_or(Page::DEFAULT_LIMIT);
        if !(1..=Page::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid("limit", format!("must be 1 to {}", Page::MAX_LIMIT)));
        }
        Ok(Page { after_id, limit })
    }
}

/// The list envelope: `{"items": [...], "next_cursor": "…" | null}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ListOut<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> ListOut<T> {
    pub fn new(items: Vec<T>, next: Option<i64>) -> Self {
        Self { items, next_cursor: next.map(|n| n.to_string()) }
    }
}

/// Query strings: unknown parameters and bad values are errors naming the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(ApiQuery).map_err(|e| {
            let field = e.path().to_string();
            let message = e.into_inner().to_string();
            let field = backticked(&message, "unknown field `").or(Some(field).filter(|f| f != "."));
            ApiError::BadRequest { code: "INVALID_QUERY", field, message }
        })
    }
}

/// A numeric `{id}` path segment; anything else names no record (404 in our JSON form, not axum's text).
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<i64>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| IdPath(id))
            .map_err(|_| ApiError::NotFound("record"))
    }
}

/// Several path segments (`/providers/{id}/templates/{kind}/{locale}`); a segment of the wrong type names no
/// record, like [`IdPath`].
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> axum::extract::FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|_| ApiError::NotFound("record"))
    }
}

/// A time filter of a list (`since`, `until`): RFC 3339, or a date meaning that day in Asia/Shanghai — its start,
/// or with `end_of_day` the start of the next day.
pub fn time_param(field: &str, value: Option<&str>, end_of_day: bool) -> Result<Option<i64>, ApiError> {
    match value.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => crate::clock::parse_operator_time(text, end_of_day).map(Some).ok_or_else(|| {
            ApiError::invalid(field, format!("`{text}` is neither RFC 3339 nor a date like 2026-11-27"))
        }),
    }
}
