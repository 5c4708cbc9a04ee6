//! Console sessions: the cookie, the row behind it, and the check in front of every page.
//!
//! Contract: the cookie `wxrisk_session` holds 256 random bits (base64url); the database keeps only their SHA-256.
//! A session ends after [`IDLE`] without a request (each request extends it, written at most once a minute) or
//! when its user signs out, changes the password, is disabled or deleted. [`require_role`] turns the cookie into a
//! [`Console`] for the handler, or answers: sign-in page for no session, 403 for a role too low.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::page::{ConsoleError, Ctx, Flash, Lang};
use crate::auth::{Actor, Grant, Role};
use crate::state::AppState;
use crate::store::console::{self as store, NewSession};
use crate::store::{StoreError, users};

pub const COOKIE_NAME: &str = "wxrisk_session";
/// A session not used for this long ends.
pub const IDLE: i64 = 12 * 3_600_000;
/// How stale `last_seen_at` may get before a request writes it again.
const TOUCH_EVERY: i64 = 60_000;

/// Who is signed in, for a page's handler (put there by [`require_role`]).
#[derive(Debug, Clone)]
pub struct Console {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    /// The session's key (SHA-256 of the cookie's token).
    pub session_id: String,
    pub csrf_token: String,
    /// A message left for this page by the previous one.
    pub flash: Option<Flash>,
    pub lang: Lang,
    /// The path asked for (menus mark where the user is).
    pub path: String,
}

impl Console {
    /// The actor written in the audit log.
    pub fn actor(&self) -> Actor {
        Actor::User { username: self.username.clone() }
    }

    pub fn grant(&self) -> Grant {
        Grant { scope: self.role.scope() }
    }

    /// Whether the user's role reaches `role` (pages use it to show or hide actions; the routes check it anyway).
    pub fn can(&self, role: Role) -> bool {
        self.role >= role
    }

    /// The context every page's layout needs. `section` marks the menu entry.
    pub fn ctx(&self, section: &'static str) -> Ctx {
        Ctx {
            lang: self.lang,
            username: Some(self.username.clone()),
            role: Some(self.role),
            csrf: self.csrf_token.clone(),
            flash: self.flash.clone(),
            path: self.path.clone(),
            section,
        }
    }

    /// Answer with a redirect to `to` (a console path), leaving `flash` for that page.
    pub async fn redirect(&self, state: &AppState, to: &str, flash: Flash) -> Result<Response, ConsoleError> {
        let mut conn = state.store().conn().await?;
        store::set_flash(&mut conn, &self.session_id, Some(&flash.encode())).await?;
        Ok(Redirect::to(to).into_response())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Console {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Console>().cloned().ok_or_else(|| {
            ConsoleError::Internal(anyhow::anyhow!("{}: a console handler on a route without a role", parts.uri.path()))
        })
    }
}

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// SHA-256 of a token, hex: what the database keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}

/// 256 random bits, base64url.
pub fn random_token() -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ConsoleError::Internal(anyhow::anyhow!("no randomness")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// `Set-Cookie` for a console cookie: `HttpOnly`, `SameSite=Lax`, path `/`, `Secure` when the public URL is https;
/// `max_age` `Some(0)` deletes it, `None` lasts for the browser session.
pub fn cookie_header(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let secure = state.config().public_url.as_ref().is_some_and(|u| u.scheme() == "https");
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        text.push_str("; Secure");
    }
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("wxrisk_invalid=1"))
}

/// Start a session for `user_id`: the row, and the `Set-Cookie` header that carries its token.
pub async fn start(state: &AppState, user_id: i64, headers: &HeaderMap, ip: &str) -> Result<HeaderValue, ConsoleError> {
    let now = state.now_ms();
    let token = random_token()?;
    let csrf = random_token()?;
    let id = token_hash(&token);
    let user_agent: String = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let mut conn = state.store().conn().await?;
    let session =
        NewSession { id: &id, user_id, csrf_token: &csrf, expires_at: now + IDLE, ip, user_agent: &user_agent };
    store::insert_session(&mut conn, &session, now).await?;
    Ok(cookie_header(state, COOKIE_NAME, &token, None))
}

/// The signed-in user behind the request's cookie, if any (session live, user enabled).
pub async fn resolve(state: &AppState, parts_headers: &HeaderMap, path: &str) -> Result<Option<Console>, StoreError> {
    let Some(token) = cookie(parts_headers, COOKIE_NAME) else { return Ok(None) };
    let now = state.now_ms();
    let id = token_hash(token);
    let mut conn = state.store().conn().await?;
    let Some(session) = store::live_session(&mut conn, &id, now).await? else { return Ok(None) };
    let Some(user) = users::get(&mut conn, session.user_id).await? else { return Ok(None) };
    let Some(role) = Role::parse(&user.role).filter(|_| !user.disabled) else { return Ok(None) };
    if now - session.last_seen_at >= TOUCH_EVERY {
        store::extend_session(&mut conn, &id, now + IDLE, now).await?;
    }
    let flash = match &session.flash {
        Some(text) => {
            store::set_flash(&mut conn, &id, None).await?;
            Flash::decode(text)
        }
        None => None,
    };
    Ok(Some(Console {
        user_id: user.id,
        username: user.username,
        role,
        session_id: id,
        csrf_token: session.csrf_token,
        flash,
        lang: Lang::of(parts_headers),
        path: path.to_owned(),
    }))
}

/// In front of every console page: the signed-in user, and their role against the page's.
pub async fn require_role(State((state, need)): State<(AppState, Role)>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let path_and_query = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| path.clone());
    let console = match resolve(&state, request.headers(), &path).await {
        Ok(Some(console)) => console,
        Ok(None) => {
            // A GET comes back here after signing in; a POST's form is lost, so it returns to the console.
            let next = if request.method() == Method::GET { path_and_query } else { "/console".to_owned() };
            let to = format!("/console/login?next={}", urlencode(&next));
            let mut response = Redirect::to(&to).into_response();
            // A stale cookie goes.
            if cookie(request.headers(), COOKIE_NAME).is_some() {
                response.headers_mut().append(SET_COOKIE, cookie_header(&state, COOKIE_NAME, "", Some(0)));
            }
            return response;
        }
        Err(e) => return ConsoleError::from(e).into_response(),
    };
    if let Err(denied) = console.grant().permits(need.scope()) {
        return ConsoleError::Forbidden(format!(
            "{} ({}: {}; {})",
            console.lang.pick("你的角色不能执行此操作", "your role may not do this"),
            console.role.as_str(),
            denied.have,
            denied.need
        ))
        .into_response();
    }
    request.extensions_mut().insert(console);
    next.run(request).await
}

/// Percent-encode a query value.
pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Where to go after signing in: a console path of ours, never another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with("/console") && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/console".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; wxrisk_session=abc; wxrisk_lang=en"));
        assert_eq!(cookie(&headers, COOKIE_NAME), Some("abc"));
        assert_eq!(cookie(&headers, "wxrisk_lang"), Some("en"));
        assert_eq!(cookie(&headers, "b"), None);
    }

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(safe_next(Some("/console/complaints?state=PENDING")), "/console/complaints?state=PENDING");
        for bad in ["https://evil.example/", "//evil.example/console", "/api/v1/providers", "/console\\@evil"] {
            assert_eq!(safe_next(Some(bad)), "/console", "{bad}");
        }
        assert_eq!(safe_next(None), "/console");
    }
}
