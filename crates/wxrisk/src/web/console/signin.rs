//! Signing in and out, the first-run setup link, changing one's password, and the language switch.
//!
//! Contract:
//! - Sign-in takes a username and password (argon2id). After [`MAX_PER_ACCOUNT`] failures for one account, or
//!   [`MAX_PER_ADDRESS`] from one address, within [`WINDOW`], sign-in is refused (429) with the minutes left —
//!   also with the right password; the counts are rows in the database, so every instance applies them. Every
//!   sign-in, failed sign-in of a known account, and sign-out is in the audit log.
//! - The sign-in and setup forms, used before any session exists, carry a token that must match the
//!   `wxrisk_prelogin` cookie set with the form (no other site can post them, and no one can be signed in to
//!   someone else's account unawares).
//! - While no user exists, `serve` prints a setup link (valid for a day, once); it creates the first admin and
//!   signs them in. A link is refused once any user exists.
//! - Changing the password needs the current one and ends the user's other sessions.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::SecretString;
use serde::Deserialize;

use super::form::{ConsoleForm, csrf_matches};
use super::page::{ConsoleError, Ctx, Flash, LANG_COOKIE, Lang, render};
use super::session::{self, COOKIE_NAME, Console, cookie, cookie_header, random_token, safe_next, token_hash};
use crate::auth::{self, Actor, Role, UserError};
use crate::state::AppState;
use crate::store::{audit, console as store, users};

/// Failures are counted over this window.
pub const WINDOW: i64 = 15 * 60_000;
pub const MAX_PER_ACCOUNT: i64 = 5;
pub const MAX_PER_ADDRESS: i64 = 20;
/// How long a setup link works.
pub const SETUP_LINK_VALID: i64 = 24 * 3_600_000;
const PRELOGIN_COOKIE: &str = "wxrisk_prelogin";

/// The address a request came from (the TCP peer; behind a proxy, the proxy's).
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(ClientIp(ip.unwrap_or_else(|| "unknown".to_owned())))
    }
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    ctx: Ctx,
    next: String,
    username: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// A fresh pre-session token: set as a cookie and put in the form.
fn prelogin(state: &AppState) -> Result<(String, axum::http::HeaderValue), ConsoleError> {
    let token = random_token()?;
    let header = cookie_header(state, PRELOGIN_COOKIE, &token, Some(3600));
    Ok((token, header))
}

fn public_ctx(headers: &HeaderMap, csrf: String, path: &str) -> Ctx {
    Ctx { lang: Lang::of(headers), csrf, path: path.to_owned(), section: "signin", ..Ctx::default() }
}

pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Result<Response, ConsoleError> {
    // Signed in already: straight on.
    if session::resolve(&state, &headers, "/console/login").await?.is_some() {
        return Ok(Redirect::to(&safe_next(query.next.as_deref())).into_response());
    }
    let (token, set_cookie) = prelogin(&state)?;
    let page = LoginPage {
        ctx: public_ctx(&headers, token, "/console/login"),
        next: safe_next(query.next.as_deref()),
        username: String::new(),
        error: None,
    };
    let mut response = render(&page)?;
    response.headers_mut().append(SET_COOKIE, set_cookie);
    Ok(response)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm").field("username", &self.username).finish_non_exhaustive()
    }
}

pub async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let lang = Lang::of(&headers);
    let username = form.username.trim().to_owned();
    let next = safe_next(form.next.as_deref());
    let again = |error: String, status: StatusCode| -> Result<Response, ConsoleError> {
        let (token, set_cookie) = prelogin(&state)?;
        let page = LoginPage {
            ctx: public_ctx(&headers, token, "/console/login"),
            next: next.clone(),
            username: username.clone(),
            error: Some(error),
        };
        let mut response = render(&page)?;
        *response.status_mut() = status;
        response.headers_mut().append(SET_COOKIE, set_cookie);
        Ok(response)
    };
    if !cookie(&headers, PRELOGIN_COOKIE).is_some_and(|c| csrf_matches(&form.csrf, c)) {
        return again(
            lang.pick("页面已过期，请重新登录。", "The page expired: please sign in again.").to_owned(),
            StatusCode::FORBIDDEN,
        );
    }
    let now = state.now_ms();
    let mut conn = state.store().conn().await?;
    let (by_user, by_ip, user_oldest, ip_oldest) =
        store::failures_since(&mut conn, &username, &ip, now - WINDOW).await?;
    let locked_until = match (by_user >= MAX_PER_ACCOUNT, by_ip >= MAX_PER_ADDRESS) {
        (true, _) => user_oldest.map(|t| t + WINDOW),
        (_, true) => ip_oldest.map(|t| t + WINDOW),
        _ => None,
    };
    if let Some(until) = locked_until {
        let minutes = ((until - now).max(0) + 59_999) / 60_000;
        let text = match lang {
            Lang::Zh => format!("登录失败次数过多，请 {minutes} 分钟后再试。"),
            Lang::En => format!("Too many failed sign-ins: try again in {minutes} minute(s)."),
        };
        return again(text, StatusCode::TOO_MANY_REQUESTS);
    }
    let user = users::get_by_username(&mut conn, &username).await?;
    let password = SecretString::from(form.password);
    let valid = user.as_ref().filter(|u| !u.disabled && auth::verify_password(&password, &u.password_hash));
    let Some(user) = valid else {
        store::record_failure(&mut conn, &username, &ip, now).await?;
        if let Some(known) = &user {
            let detail = serde_json::json!({"ip": ip, "disabled": known.disabled});
            audit::record(
                &mut conn,
                now,
                &format!("user:{}", known.username),
                "user.sign_in_failed",
                ("user", &known.id.to_string()),
                &detail,
            )
            .await?;
        }
        return again(
            lang.pick("用户名或密码不正确。", "Wrong username or password.").to_owned(),
            StatusCode::UNAUTHORIZED,
        );
    };
    store::clear_failures(&mut conn, &username).await?;
    users::touch_login(&mut conn, user.id, now).await?;
    audit::record(
        &mut conn,
        now,
        &format!("user:{}", user.username),
        "user.sign_in",
        ("user", &user.id.to_string()),
        &serde_json::json!({"ip": ip}),
    )
    .await?;
    drop(conn);
    // A session cookie from before signing in is not carried over (no fixation): a new session, a new token.
    if let Some(old) = cookie(&headers, COOKIE_NAME) {
        let mut conn = state.store().conn().await?;
        store::delete_session(&mut conn, &token_hash(old)).await?;
    }
    let set_cookie = session::start(&state, user.id, &headers, &ip).await?;
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().append(SET_COOKIE, set_cookie);
    response.headers_mut().append(SET_COOKIE, cookie_header(&state, PRELOGIN_COOKIE, "", Some(0)));
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

pub async fn sign_out(
    State(state): State<AppState>,
    console: Console,
    ConsoleForm(_): ConsoleForm<Empty>,
) -> Result<Response, ConsoleError> {
    let now = state.now_ms();
    let mut conn = state.store().conn().await?;
    store::delete_session(&mut conn, &console.session_id).await?;
    audit::record(
        &mut conn,
        now,
        &console.actor().label(),
        "user.sign_out",
        ("user", &console.user_id.to_string()),
        &serde_json::json!({}),
    )
    .await?;
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().append(SET_COOKIE, cookie_header(&state, COOKIE_NAME, "", Some(0)));
    Ok(response)
}

#[derive(Template)]
#[template(path = "console/setup.html")]
struct SetupPage {
    ctx: Ctx,
    token: String,
    username: String,
    /// The link is not (or no longer) usable: why.
    closed: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

async fn setup_closed(state: &AppState, token: &str, lang: Lang) -> Result<Option<String>, ConsoleError> {
    let mut conn = state.store().conn().await?;
    if users::count(&mut conn).await? > 0 {
        return Ok(Some(
            lang.pick("wxrisk 已设置完成，请直接登录。", "wxrisk is set up already: sign in instead.").to_owned(),
        ));
    }
    if !store::setup_token_valid(&mut conn, &token_hash(token), state.now_ms()).await? {
        return Ok(Some(
            lang.pick(
                "此设置链接无效或已过期。重新启动 wxrisk serve 会打印新的链接。",
                "This setup link is not valid or has expired. Restarting `wxrisk serve` prints a new one.",
            )
            .to_owned(),
        ));
    }
    Ok(None)
}

pub async fn setup_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SetupQuery>,
) -> Result<Response, ConsoleError> {
    let lang = Lang::of(&headers);
    let closed = setup_closed(&state, &query.token, lang).await?;
    let (token, set_cookie) = prelogin(&state)?;
    let page = SetupPage {
        ctx: public_ctx(&headers, token, &format!("/console/setup?token={}", session::urlencode(&query.token))),
        token: query.token,
        username: "admin".to_owned(),
        closed,
        error: None,
    };
    let mut response = render(&page)?;
    response.headers_mut().append(SET_COOKIE, set_cookie);
    Ok(response)
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

impl std::fmt::Debug for SetupForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupForm").field("username", &self.username).finish_non_exhaustive()
    }
}

pub async fn set_up(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SetupForm>,
) -> Result<Response, ConsoleError> {
    let lang = Lang::of(&headers);
    let again = |error: String, closed: Option<String>| -> Result<Response, ConsoleError> {
        let (token, set_cookie) = prelogin(&state)?;
        let page = SetupPage {
            ctx: public_ctx(&headers, token, "/console/setup"),
            token: form.token.clone(),
            username: form.username.clone(),
            closed,
            error: Some(error),
        };
        let mut response = render(&page)?;
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response.headers_mut().append(SET_COOKIE, set_cookie);
        Ok(response)
    };
    if !cookie(&headers, PRELOGIN_COOKIE).is_some_and(|c| csrf_matches(&form.csrf, c)) {
        return again(lang.pick("页面已过期，请重试。", "The page expired: try again.").to_owned(), None);
    }
    if let Some(closed) = setup_closed(&state, &form.token, lang).await? {
        return again(closed.clone(), Some(closed));
    }
    if form.password != form.confirm {
        return again(lang.pick("两次输入的密码不一致。", "The passwords do not match.").to_owned(), None);
    }
    let now = state.now_ms();
    let mut tx = state.store().begin().await?;
    // The link is spent and the first user made together; a second use (or a race) finds it spent.
    if !store::spend_setup_token(&mut tx, &token_hash(&form.token), now).await? || users::count(&mut tx).await? > 0 {
        let closed = lang.pick("此设置链接已被使用。", "This setup link has been used.").to_owned();
        return again(closed.clone(), Some(closed));
    }
    let password = SecretString::from(form.password.clone());
    let actor = Actor::User { username: form.username.trim().to_owned() };
    let id = match auth::add_user_in(&mut tx, form.username.trim(), &password, Role::Admin, now, &actor).await {
        Ok(id) => id,
        Err(e @ (UserError::BadUsername | UserError::WeakPassword)) => return again(user_error(&e, lang), None),
        Err(e) => return Err(ConsoleError::Internal(e.into())),
    };
    tx.commit().await?;
    let set_cookie = session::start(&state, id, &headers, &ip).await?;
    let mut response = Redirect::to("/console").into_response();
    response.headers_mut().append(SET_COOKIE, set_cookie);
    Ok(response)
}

fn user_error(e: &UserError, lang: Lang) -> String {
    match e {
        UserError::BadUsername => lang
            .pick(
                "用户名为 1–64 个字母、数字或 . - _ @。",
                "A username is 1 to 64 letters, digits, `.`, `-`, `_` or `@`.",
            )
            .to_owned(),
        UserError::WeakPassword => {
            lang.pick("密码至少 10 个字符。", "A password has at least 10 characters.").to_owned()
        }
        other => other.to_string(),
    }
}

#[derive(Template)]
#[template(path = "console/password.html")]
struct PasswordPage {
    ctx: Ctx,
    error: Option<String>,
}

pub async fn password_form(console: Console) -> Result<Response, ConsoleError> {
    render(&PasswordPage { ctx: console.ctx("account"), error: None })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordForm { .. }")
    }
}

pub async fn change_password(
    State(state): State<AppState>,
    console: Console,
    ConsoleForm(form): ConsoleForm<PasswordForm>,
) -> Result<Response, ConsoleError> {
    let lang = console.lang;
    let refuse = |error: String| -> Result<Response, ConsoleError> {
        let mut response = render(&PasswordPage { ctx: console.ctx("account"), error: Some(error) })?;
        *response.status_mut() = StatusCode::BAD_REQUEST;
        Ok(response)
    };
    let now = state.now_ms();
    let mut conn = state.store().conn().await?;
    let user = users::get(&mut conn, console.user_id).await?.ok_or(ConsoleError::NotFound)?;
    if !auth::verify_password(&SecretString::from(form.current), &user.password_hash) {
        return refuse(lang.pick("当前密码不正确。", "The current password is wrong.").to_owned());
    }
    if form.password != form.confirm {
        return refuse(lang.pick("两次输入的新密码不一致。", "The new passwords do not match.").to_owned());
    }
    drop(conn);
    match auth::set_password(state.store(), &user.username, &SecretString::from(form.password), now, &console.actor())
        .await
    {
        Ok(()) => {}
        Err(e @ UserError::WeakPassword) => return refuse(user_error(&e, lang)),
        Err(e) => return Err(ConsoleError::Internal(e.into())),
    }
    let mut conn = state.store().conn().await?;
    store::delete_user_sessions(&mut conn, user.id, Some(&console.session_id)).await?;
    drop(conn);
    console
        .redirect(
            &state,
            "/console",
            Flash::ok(
                lang.pick("密码已修改，其他设备已退出登录。", "Password changed; other sessions were signed out."),
            ),
        )
        .await
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    to: String,
    next: Option<String>,
}

/// Switch the language (a preference cookie) and go back.
pub async fn switch_language(State(state): State<AppState>, Query(query): Query<LangQuery>) -> Response {
    let value = if query.to == "en" { "en" } else { "zh" };
    let next = match query.next.as_deref() {
        Some(path) if path.starts_with("/console/login") || path.starts_with("/console/setup") => path.to_owned(),
        other => safe_next(other),
    };
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().append(SET_COOKIE, cookie_header(&state, LANG_COOKIE, value, Some(365 * 86_400)));
    response
}

/// At start, while no user exists: a setup link for the first admin (printed by `serve`). `None` when users exist.
pub async fn offer_setup_link(state: &AppState, base: &str) -> Result<Option<String>, ConsoleError> {
    let mut conn = state.store().conn().await?;
    if users::count(&mut conn).await? > 0 {
        return Ok(None);
    }
    let token = random_token()?;
    let now = state.now_ms();
    store::put_setup_token(&mut conn, &token_hash(&token), now + SETUP_LINK_VALID, now).await?;
    Ok(Some(format!("{}/console/setup?token={token}", base.trim_end_matches('/'))))
}
