//! Who is acting and what they may do: API tokens (bearer) with a scope and an optional expiry, and console users
//! (argon2id passwords).
//!
//! Contract: tokens are `wxr_` + 43 base64url characters (256 random bits), shown once and stored as their
//! SHA-256; the first characters are kept to tell tokens apart in lists. A token acts with the [`Grant`] its row
//! gives it until it is revoked or its expiry passes. Passwords are hashed with argon2id (RFC 9106 "second
//! recommended" parameters, argon2's defaults) and verified in constant time by argon2.

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

/// How much a caller may do. Each scope includes the ones before it (the derived order is the declaration order):
/// - `read`: every `GET` of the API;
/// - `operate`: acting on what happens — complaint actions (reply, refund, complete, refund progress), keeping the
///   sub-merchants and their channels, test-sending through a channel, retrying jobs and deliveries;
/// - `admin`: changing the setup — providers and their keys, the providers' own channels, templates, callback
///   registration at WeChat Pay (and tokens, which are made on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Operate,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Operate, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operate => "operate",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The next scope down, if there is one (what "one scope short" means in tests and messages).
    pub fn below(self) -> Option<Scope> {
        match self {
            Scope::Read => None,
            Scope::Operate => Some(Scope::Read),
            Scope::Admin => Some(Scope::Operate),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Scope::parse(text.trim()).ok_or_else(|| format!("`{text}` is not a scope: read, operate or admin"))
    }
}

/// A console user's role. The same ladder as token scopes: a viewer reads (scope `read`), an operator also acts on
/// complaints, violations and sub-merchants and test-sends (`operate`), an admin also changes the setup (`admin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text.trim())
    }

    /// What the role may do, as a scope: the one check every route makes.
    pub fn scope(self) -> Scope {
        match self {
            Role::Viewer => Scope::Read,
            Role::Operator => Scope::Operate,
            Role::Admin => Scope::Admin,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::parse(text).ok_or_else(|| format!("`{text}` is not a role: viewer, operator or admin"))
    }
}

/// What a caller is allowed: today a scope over everything wxrisk holds.
///
/// This is the one permission check of the web layer, for the API now and the console's pages later. A later issue
/// narrows grants to one provider or one sub-merchant and gives console users roles: that adds a field here (what
/// the grant reaches) and a check for a record's owner next to [`Grant::permits`]; a role becomes a scope when the
/// user's grant is made. Routes keep declaring only the scope they need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub scope: Scope,
}

/// Refused: the grant's scope is below what the action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this token's scope is {have}; this action needs {need}")]
pub struct Denied {
    pub have: Scope,
    pub need: Scope,
}

impl Grant {
    pub fn permits(&self, need: Scope) -> Result<(), Denied> {
        if self.scope >= need { Ok(()) } else { Err(Denied { have: self.scope, need }) }
    }
}

/// A caller that passed a route's check: who (for the audit log) and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub actor: Actor,
    pub grant: Grant,
}

/// What presenting a bearer token amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    Valid(Caller),
    /// A real token whose expiry (Unix ms) has passed.
    Expired {
        at: i64,
    },
    /// Not a token of ours, or a revoked one.
    Invalid,
}

pub fn hash_token(token: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}

/// A token to create: its name (1 to 64 characters, unique among active tokens), scope and expiry (Unix ms).
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub scope: Scope,
    pub expires_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token names are 1 to 64 characters")]
    BadName,
    #[error("an active token named `{0}` exists")]
    NameTaken(String),
    #[error("the expiry must be in the future")]
    ExpiryPast,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Create an API token; the audit log records its name, scope and expiry. Returns its id and the token itself
/// (shown once).
pub async fn create_token(
    store: &Store,
    new: &NewToken<'_>,
    now: i64,
    actor: &Actor,
) -> Result<(i64, SecretString), TokenError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(TokenError::BadName);
    }
    if new.expires_at.is_some_and(|at| at <= now) {
        return Err(TokenError::ExpiryPast);
    }
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| StoreError::Corrupt("no randomness available".into()))?;
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let prefix: String = token.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let hash = hash_token(&token);
    let row = tokens::NewTokenRow {
        name,
        token_hash: &hash,
        token_prefix: &prefix,
        scope: new.scope.as_str(),
        expires_at: new.expires_at,
    };
    let mut tx = store.begin().await?;
    let id = match tokens::insert(&mut tx, &row, now).await {
        Err(StoreError::Conflict { .. }) => return Err(TokenError::NameTaken(name.to_owned())),
        other => other?,
    };
    crate::store::audit::record(
        &mut tx,
        now,
        &actor.label(),
        "token.create",
        ("api_token", &id.to_string()),
        &serde_json::json!({"name": name, "scope": new.scope, "expires_at": new.expires_at}),
    )
    .await?;
    tx.commit().await?;
    Ok((id, SecretString::from(token)))
}

/// What `token` is: a valid token's caller, an expired token, or nothing of ours.
pub async fn authenticate_token(store: &Store, token: &str, now: i64) -> StoreResult<TokenCheck> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(TokenCheck::Invalid);
    }
    let mut conn = store.conn().await?;
    let Some(row) = tokens::find_active(&mut conn, &hash_token(token)).await? else {
        return Ok(TokenCheck::Invalid);
    };
    if let Some(at) = row.expires_at.filter(|at| *at <= now) {
        return Ok(TokenCheck::Expired { at });
    }
    let scope = Scope::parse(&row.scope)
        .ok_or_else(|| StoreError::Corrupt(format!("api token {} has an unknown scope", row.id)))?;
    tokens::touch(&mut conn, row.id, now).await?;
    Ok(TokenCheck::Valid(Caller { actor: Actor::Token { id: row.id, name: row.name }, grant: Grant { scope } }))
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

impl From<sqlx::Error> for TokenError {
    fn from(e: sqlx::Error) -> Self {
        TokenError::Store(e.into())
    }
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
    role: Role,
    now: i64,
    actor: &Actor,
) -> Result<i64, UserError> {
    let mut tx = store.begin().await?;
    let id = add_user_in(&mut tx, username, password, role, now, actor).await?;
    tx.commit().await?;
    Ok(id)
}

/// [`add_user`] in the caller's transaction (the first-run setup also spends its link in it).
pub async fn add_user_in(
    conn: &mut sqlx::AnyConnection,
    username: &str,
    password: &SecretString,
    role: Role,
    now: i64,
    actor: &Actor,
) -> Result<i64, UserError> {
    check_username(username)?;
    let hash = hash_password(password)?;
    let id = match users::insert(conn, username, &hash, role.as_str(), now).await {
        Err(StoreError::Conflict { .. }) => return Err(UserError::Exists(username.to_owned())),
        other => other?,
    };
    crate::store::audit::record(
        conn,
        now,
        &actor.label(),
        "user.create",
        ("user", &id.to_string()),
        &serde_json::json!({"username": username, "role": role.as_str()}),
    )
    .await?;
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
    fn scopes_are_ordered_and_each_includes_the_ones_below() {
        assert!(Scope::Read < Scope::Operate && Scope::Operate < Scope::Admin);
        let grant = |scope| Grant { scope };
        assert_eq!(grant(Scope::Admin).permits(Scope::Read), Ok(()));
        assert_eq!(grant(Scope::Operate).permits(Scope::Operate), Ok(()));
        let denied = grant(Scope::Read).permits(Scope::Operate).expect_err("read < operate");
        assert_eq!(denied.to_string(), "this token's scope is read; this action needs operate");
        assert!(grant(Scope::Operate).permits(Scope::Admin).is_err());
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
        assert!("root".parse::<Scope>().is_err());
        assert_eq!(Scope::Admin.below(), Some(Scope::Operate));
        assert_eq!(Scope::Read.below(), None);
    }

    #[test]
    fn usernames() {
        assert!(check_username("ops.lead@example").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("has space").is_err());
    }
}
