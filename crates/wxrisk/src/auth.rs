//! Who is acting: API tokens (bearer) and console users (argon2id passwords).
//!
//! Contract: tokens are `wxr_` + 43 base64url characters (256 random bits), shown once and stored as their
//! SHA-256; the first characters are kept to tell tokens apart in lists. Passwords are hashed with argon2id
//! (RFC 9106 "second recommended" parameters, argon2's defaults) and verified in constant time by argon2.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

use crate::store::{Store, StoreError, StoreResult, tokens, users};

pub const TOKEN_PREFIX: &str = "wxr_";

/// Someone who changed something, as written in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Token {
        id: i64,
        name: String,
    },
    User {
        username: String,
    },
    /// The command line on the server itself.
    Cli,
    /// wxrisk acting on its own (workers, reconciliation).
    System,
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Actor::Token { name, .. } => format!("token:{name}"),
            Actor::User { username } => format!("user:{username}"),
            Actor::Cli => "cli".to_owned(),
            Actor::System => "system".to_owned(),
        }
    }
}

pub fn hash_token(token: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}

/// Create an API token named `name`. Returns its id and the token itself (shown once).
pub async fn create_token(store: &Store, name: &str, now: i64, actor: &Actor) -> StoreResult<(i64, SecretString)> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| StoreError::Corrupt("no randomness available".into()))?;
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let prefix: String = token.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let mut tx = store.begin().await?;
    let id = tokens::insert(&mut tx, name, &hash_token(&token), &prefix, now).await?;
    crate::store::audit::record(
        &mut tx,
        now,
        &actor.label(),
        "token.create",
        ("api_token", &id.to_string()),
        &serde_json::json!({"name": name}),
    )
    .await?;
    tx.commit().await?;
    Ok((id, SecretString::from(token)))
}

/// The actor behind a bearer token, if the token is active.
pub async fn authenticate_token(store: &Store, token: &str, now: i64) -> StoreResult<Option<Actor>> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let mut conn = store.conn().await?;
    let Some(row) = tokens::find_active(&mut conn, &hash_token(token)).await? else {
        return Ok(None);
    };
    tokens::touch(&mut conn, row.id, now).await?;
    Ok(Some(Actor::Token { id: row.id, name: row.name }))
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user names are 1 to 64 letters, digits, `.`, `-`, `_` or `@`")]
    BadUsername,
    #[error("passwords must be at least 10 characters")]
    WeakPassword,
    #[error("user `{0}` exists")]
    Exists(String),
    #[error("no user `{0}`")]
    NotFound(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for UserError {
    fn from(e: sqlx::Error) -> Self {
        UserError::Store(e.into())
    }
}

fn check_username(username: &str) -> Result<(), UserError> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_@".contains(&b));
    if ok { Ok(()) } else { Err(UserError::BadUsername) }
}

pub fn hash_password(password: &SecretString) -> Result<String, UserError> {
    if password.expose_secret().chars().count() < 10 {
        return Err(UserError::WeakPassword);
    }
    argon2::Argon2::default()
        .hash_password(password.expose_secret().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

pub fn verify_password(password: &SecretString, hash: &str) -> bool {
    let Ok(parsed) = argon2::password_hash::phc::PasswordHash::new(hash) else {
        return false;
    };
    argon2::Argon2::default().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok()
}

pub async fn add_user(
    store: &Store,
    username: &str,
    password: &SecretString,
    now: i64,
    actor: &Actor,
) -> Result<i64, UserError> {
    check_username(username)?;
    let hash = hash_password(password)?;
    let mut tx = store.begin().await?;
    let id = match users::insert(&mut tx, username, &hash, now).await {
        Err(StoreError::Conflict { .. }) => return Err(UserError::Exists(username.to_owned())),
        other => other?,
    };
    crate::store::audit::record(
        &mut tx,
        now,
        &actor.label(),
        "user.create",
        ("user", &id.to_string()),
        &serde_json::json!({"username": username}),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn set_password(
    store: &Store,
    username: &str,
    password: &SecretString,
    now: i64,
    actor: &Actor,
) -> Result<(), UserError> {
    let hash = hash_password(password)?;
    let mut tx = store.begin().await?;
    if !users::set_password(&mut tx, username, &hash, now).await? {
        return Err(UserError::NotFound(username.to_owned()));
    }
    crate::store::audit::record(
        &mut tx,
        now,
        &actor.label(),
        "user.password",
        ("user", username),
        &serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A random password for `user add` without one: 20 base64url characters (120 bits).
pub fn generate_password() -> Result<SecretString, UserError> {
    let mut bytes = [0u8; 15];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| UserError::Hash("no randomness available".into()))?;
    Ok(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_round_trip() {
        let password = SecretString::from("correct horse battery staple");
        let hash = hash_password(&password).expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&password, &hash));
        assert!(!verify_password(&SecretString::from("correct horse battery stapler"), &hash));
        assert!(!verify_password(&password, "not a hash"));
        assert!(matches!(hash_password(&SecretString::from("short")), Err(UserError::WeakPassword)));
    }

    #[test]
    fn usernames() {
        assert!(check_username("ops.lead@example").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("has space").is_err());
    }
}
