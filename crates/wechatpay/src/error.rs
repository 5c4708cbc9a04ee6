//! Errors of API calls, and whether retrying can help.
//!
//! Contract: every failure is one [`Error`]; [`Error::retry`] classifies it for a job queue. Worth retrying: 5xx,
//! `SYSTEM_ERROR`, any 429 or `FREQUENCY_LIMITED` (whatever WeChat names the code), timeouts, connection errors,
//! a response whose signature does not verify, and `NOT_ENOUGH` (insufficient balance: later, after funding).
//! Permanent: `PARAM_ERROR`, `INVALID_REQUEST`, `SIGN_ERROR`, `NO_AUTH`, `RESOURCE_NOT_EXISTS`,
//! `USER_ACCOUNT_ABNORMAL` and every other 4xx, and requests refused before sending.

use std::time::Duration;

use crate::crypto::AeadError;
use crate::keys::KeyError;
use crate::verify::VerifyError;

/// WeChat Pay's error answer, with what the response said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// `PARAM_ERROR`, `SYSTEM_ERROR`, … (empty when the body carried none).
    pub code: String,
    pub message: String,
    /// `detail` as sent (field, value, issue, location; `sign_information` on `SIGN_ERROR`).
    pub detail: Option<serde_json::Value>,
    /// The `Request-ID` header: quote it to WeChat support.
    pub request_id: Option<String>,
    /// The `Retry-After` header, when given.
    pub retry_after: Option<Duration>,
    /// The body, truncated, for the attempt log.
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The connection could not be made; the request was not sent.
    Connect,
    /// No complete answer in time; the request may or may not have been processed.
    Timeout,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("WeChat Pay answered HTTP {} {}: {}", .0.status, .0.code, .0.message)]
    Api(Box<ApiError>),
    #[error("the response's signature does not verify: {0}")]
    ResponseSignature(VerifyError),
    #[error("{kind:?} error talking to WeChat Pay: {message}")]
    Transport { kind: TransportKind, message: String },
    #[error("WeChat Pay's answer is not as documented: {0}")]
    Decode(String),
    /// Refused before sending: the request breaks a documented rule.
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Aead(#[from] AeadError),
}

/// What a job queue should do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again, not before `after` when WeChat said so.
    Later { after: Option<Duration> },
    /// Trying again cannot help.
    Never,
}

/// How long to wait before retrying `NOT_ENOUGH`: balance is topped up by people, not in seconds.
const NOT_ENOUGH_WAIT: Duration = Duration::from_secs(30 * 60);

impl Error {
    pub fn retry(&self) -> Retry {
        match self {
            Error::Api(api) => {
                let retry_after = api.retry_after;
                match (api.status, api.code.as_str()) {
                    (429, _) | (_, "FREQUENCY_LIMITED" | "RATELIMIT_EXCEEDED" | "RATE_LIMITED") => {
                        Retry::Later { after: retry_after }
                    }
                    (_, "NOT_ENOUGH") => Retry::Later { after: Some(retry_after.unwrap_or(NOT_ENOUGH_WAIT)) },
                    (_, "SYSTEM_ERROR" | "SERVICE_UNAVAILABLE") => Retry::Later { after: retry_after },
                    (500..=599, _) => Retry::Later { after: retry_after },
                    _ => Retry::Never,
                }
            }
            Error::ResponseSignature(_) | Error::Transport { .. } | Error::Decode(_) => Retry::Later { after: None },
            Error::Invalid(_) | Error::Key(_) | Error::Aead(_) => Retry::Never,
        }
    }

    /// The API error, when WeChat answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) => Some(api),
            _ => None,
        }
    }

    /// WeChat's error code (`PARAM_ERROR` …), when it answered with one.
    pub fn code(&self) -> Option<&str> {
        self.api().map(|api| api.code.as_str())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> Error {
        Error::Api(Box::new(ApiError {
            status,
            code: code.into(),
            message: String::new(),
            detail: None,
            request_id: None,
            retry_after: None,
            body: String::new(),
        }))
    }

    #[test]
    fn classification() {
        for (status, code) in [
            (500, "SYSTEM_ERROR"),
            (502, ""),
            (503, "SERVICE_UNAVAILABLE"),
            (429, "FREQUENCY_LIMITED"),
            (429, "RATELIMIT_EXCEEDED"),
            (429, ""),
        ] {
            assert!(matches!(api(status, code).retry(), Retry::Later { .. }), "{status} {code}");
        }
        assert_eq!(api(403, "NOT_ENOUGH").retry(), Retry::Later { after: Some(NOT_ENOUGH_WAIT) });
        for (status, code) in [
            (400, "PARAM_ERROR"),
            (400, "INVALID_REQUEST"),
            (401, "SIGN_ERROR"),
            (403, "NO_AUTH"),
            (404, "RESOURCE_NOT_EXISTS"),
            (403, "USER_ACCOUNT_ABNORMAL"),
            (404, "MCH_NOT_EXISTS"),
        ] {
            assert_eq!(api(status, code).retry(), Retry::Never, "{status} {code}");
        }
        assert!(matches!(
            Error::Transport { kind: TransportKind::Timeout, message: String::new() }.retry(),
            Retry::Later { .. }
        ));
        assert!(matches!(Error::ResponseSignature(VerifyError::Probe).retry(), Retry::Later { .. }));
        assert_eq!(Error::Invalid("x".into()).retry(), Retry::Never);
    }
}
