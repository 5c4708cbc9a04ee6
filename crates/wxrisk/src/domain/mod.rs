//! Pure domain types: parsed, validated values and the rules about them. No I/O here.
//!
//! Values that come from operators or WeChat are parsed once into newtypes (`Mchid`, `Appid`, `Apiv3Key`); code
//! past the parse never re-checks them.

pub mod channel;
pub mod merchant;
pub mod provider;
pub mod risk;
pub mod values;

pub use values::{Apiv3Key, Appid, Mchid};

/// A value that failed validation: which field, and why, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Check a free-text field: trimmed, not empty when `required`, at most `max` characters.
pub fn text_field(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters (got {chars})")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}
