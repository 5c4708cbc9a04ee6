//! Forms posted to the console: the CSRF token is checked before the fields are read.
//!
//! Contract: every form has a hidden `csrf` field holding the session's token (the layout's `ctx.csrf`);
//! [`ConsoleForm<T>`] refuses a post whose token is missing or not the session's (403, nothing done), then gives
//! the handler the other fields as `T` (`application/x-www-form-urlencoded`). Forms with files use
//! [`ConsoleMultipart`], which checks the same token, sent first in the form.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use serde::de::DeserializeOwned;

use super::page::ConsoleError;
use super::session::Console;

/// Largest form body read (a reply with its text, a PEM key pasted in…); files go through [`ConsoleMultipart`].
pub const MAX_FORM_BYTES: usize = 256 * 1024;

/// The fields of a console form, after its CSRF token was checked.
#[derive(Debug)]
pub struct ConsoleForm<T>(pub T);

/// Constant-time comparison of the form's token with the session's.
pub fn csrf_matches(given: &str, expected: &str) -> bool {
    let digest = |t: &str| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes());
    !expected.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(digest(given).as_ref(), digest(expected).as_ref()).is_ok()
}

fn csrf_refused() -> ConsoleError {
    ConsoleError::Forbidden("the form's security token is missing or out of date: reload the page and try again".into())
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ConsoleForm<T> {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let console = request.extensions().get::<Console>().cloned();
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| ConsoleError::BadRequest(format!("the form could not be read: {e}")))?;
        if bytes.len() > MAX_FORM_BYTES {
            return Err(ConsoleError::BadRequest("the form is too large".into()));
        }
        let console =
            console.ok_or_else(|| ConsoleError::Internal(anyhow::anyhow!("a console form without a session")))?;
        let mut fields: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
        let token = fields.iter().position(|(k, _)| k == "csrf").map(|i| fields.remove(i).1);
        if !token.is_some_and(|t| csrf_matches(&t, &console.csrf_token)) {
            return Err(csrf_refused());
        }
        let rest = serde_urlencoded::to_string(&fields).map_err(|e| ConsoleError::Internal(e.into()))?;
        let value =
            serde_urlencoded::from_str(&rest).map_err(|e| ConsoleError::BadRequest(format!("the form: {e}")))?;
        Ok(ConsoleForm(value))
    }
}

/// A console form with files (`multipart/form-data`), after its CSRF token — the form's first field, `csrf` —
/// was checked. Read the remaining fields from `.0`.
#[derive(Debug)]
pub struct ConsoleMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for ConsoleMultipart {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let console = request
            .extensions()
            .get::<Console>()
            .cloned()
            .ok_or_else(|| ConsoleError::Internal(anyhow::anyhow!("a console form without a session")))?;
        let mut multipart = Multipart::from_request(request, state)
            .await
            .map_err(|e| ConsoleError::BadRequest(format!("the form could not be read: {e}")))?;
        let first = multipart.next_field().await.map_err(|e| ConsoleError::BadRequest(e.to_string()))?;
        let Some(first) = first.filter(|f| f.name() == Some("csrf")) else { return Err(csrf_refused()) };
        let token = first.text().await.map_err(|e| ConsoleError::BadRequest(e.to_string()))?;
        if !csrf_matches(&token, &console.csrf_token) {
            return Err(csrf_refused());
        }
        Ok(ConsoleMultipart(multipart))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_whole() {
        assert!(csrf_matches("abc", "abc"));
        assert!(!csrf_matches("abd", "abc"));
        assert!(!csrf_matches("", ""));
        assert!(!csrf_matches("ab", "abc"));
    }
}
