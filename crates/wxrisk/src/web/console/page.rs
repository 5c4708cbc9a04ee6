//! What every page shares: the language, the layout's context, flash messages, errors, and how values are shown.
//!
//! Contract: a page is an askama template struct with a `ctx: Ctx` field, extending `console/base.html`;
//! [`render`] turns it into a response. Text is written in both languages where it is used:
//! `{{ ctx.t("投诉", "Complaints") }}`. Errors render as a page in the user's language, with the status the API
//! would have answered.

use askama::Template;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::auth::Role;
use crate::clock::SHANGHAI;
use crate::error::ApiError;
use crate::store::StoreError;

pub const LANG_COOKIE: &str = "wxrisk_lang";

/// The console's language: Chinese unless the user switched to English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// From the `wxrisk_lang` cookie.
    pub fn of(headers: &HeaderMap) -> Lang {
        match super::session::cookie(headers, LANG_COOKIE) {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// `zh-CN` or `en` (the page's `lang` attribute).
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

/// A message for the next page: what an action did, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Self {
        Flash { ok: true, text: text.into() }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Flash { ok: false, text: text.into() }
    }

    pub(super) fn encode(&self) -> String {
        format!("{}{}", if self.ok { "+" } else { "-" }, self.text)
    }

    pub(super) fn decode(text: &str) -> Option<Flash> {
        let mut chars = text.chars();
        let ok = match chars.next()? {
            '+' => true,
            '-' => false,
            _ => return None,
        };
        Some(Flash { ok, text: chars.as_str().to_owned() })
    }
}

/// What the layout needs from every page.
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    pub lang: Lang,
    /// `None` on the sign-in and setup pages.
    pub username: Option<String>,
    pub role: Option<Role>,
    /// The session's CSRF token: every form's hidden `csrf` field.
    pub csrf: String,
    pub flash: Option<Flash>,
    /// The path asked for (for the language switch to come back to).
    pub path: String,
    /// The menu entry to mark: `dashboard`, `complaints`, `violations`, `merchants`, `providers`, `channels`,
    /// `templates`, `deliveries`, `jobs`, `users`, `tokens`, `audit`, `rejections`, `account`.
    pub section: &'static str,
}

impl Ctx {
    /// The text in the page's language.
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        self.lang.pick(zh, en)
    }

    pub fn is_zh(&self) -> bool {
        self.lang == Lang::Zh
    }

    /// Whether the signed-in user's role reaches `role` (`"operator"`, `"admin"`): to show an action or not. The
    /// route checks the role anyway.
    pub fn can(&self, role: &str) -> bool {
        match (self.role, Role::parse(role)) {
            (Some(have), Some(need)) => have >= need,
            _ => false,
        }
    }

    pub fn role_label(&self) -> &'static str {
        match self.role {
            Some(role) => role_label(role, self.lang),
            None => "",
        }
    }

    /// The link that switches the language and comes back here.
    pub fn other_language_link(&self) -> String {
        let to = match self.lang {
            Lang::Zh => "en",
            Lang::En => "zh",
        };
        format!("/console/lang?to={to}&next={}", super::session::urlencode(&self.path))
    }

    pub fn css(&self) -> &'static str {
        super::assets::css_href()
    }

    pub fn js(&self) -> &'static str {
        super::assets::js_href()
    }

    /// `current` when `section` is this page's: for the menu.
    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section { "current" } else { "" }
    }
}

pub fn role_label(role: Role, lang: Lang) -> &'static str {
    match role {
        Role::Viewer => lang.pick("查看者", "Viewer"),
        Role::Operator => lang.pick("运营", "Operator"),
        Role::Admin => lang.pick("管理员", "Admin"),
    }
}

/// `¥9.90` from fen (what every amount in the console looks like).
pub fn yuan(fen: i64) -> String {
    crate::notify::message::yuan(fen)
}

/// `2026-11-27 15:01:05` in Asia/Shanghai, from Unix ms.
pub fn shanghai(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(SHANGHAI);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// `path?k=v&…` with the parameters that have a non-empty value, percent-encoded (filter links, pagers).
pub fn link(path: &str, params: &[(&str, Option<&str>)]) -> String {
    let query: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| format!("{k}={}", super::session::urlencode(v))))
        .collect();
    if query.is_empty() { path.to_owned() } else { format!("{path}?{}", query.join("&")) }
}

/// A fresh key for a form's hidden `idem` field: a form sent twice (a double click, a resend after a lost answer)
/// carries the same key, and the action it asks for is done once (`store::idempotency`).
pub fn form_key() -> Result<String, ConsoleError> {
    super::session::random_token()
}

/// Parse an amount in yuan as people type it (`9.9`, `9.90`, `¥9.90`, `9`) into fen.
pub fn parse_yuan(text: &str) -> Option<i64> {
    let text = text.trim().trim_start_matches(['¥', '￥']).trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || whole.len() > 12 {
        return None;
    }
    if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().ok()? };
    whole.checked_mul(100)?.checked_add(frac)
}

/// Render a page (HTML, status 200).
pub fn render(page: &impl Template) -> Result<Response, ConsoleError> {
    let html = page.render().map_err(|e| ConsoleError::Internal(anyhow::anyhow!("template: {e}")))?;
    Ok(Html(html).into_response())
}

/// Why a console request failed: shown as a page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    /// An action refused for a reason the user can act on (the API's error: conflict, invalid field…).
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        ConsoleError::Api(e.into())
    }
}

impl From<sqlx::Error> for ConsoleError {
    fn from(e: sqlx::Error) -> Self {
        ConsoleError::Api(e.into())
    }
}

impl From<crate::secrets::SecretsError> for ConsoleError {
    fn from(e: crate::secrets::SecretsError) -> Self {
        ConsoleError::Internal(e.into())
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    ctx: Ctx,
    status: u16,
    title_zh: &'static str,
    title_en: &'static str,
    message: String,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title_zh, title_en, message) = match &self {
            ConsoleError::NotFound => (StatusCode::NOT_FOUND, "页面不存在", "Not found", String::new()),
            ConsoleError::Forbidden(why) => (StatusCode::FORBIDDEN, "没有权限", "Not allowed", why.clone()),
            ConsoleError::BadRequest(why) => (StatusCode::BAD_REQUEST, "请求有误", "Bad request", why.clone()),
            ConsoleError::Api(ApiError::Internal(cause)) => {
                tracing::error!(error = format!("{cause:#}"), "console request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "出错了", "Something went wrong", String::new())
            }
            ConsoleError::Api(e) => (e.status(), "操作未完成", "Not done", e.public_message()),
            ConsoleError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "console request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "出错了", "Something went wrong", String::new())
            }
        };
        let page = ErrorPage { ctx: Ctx::default(), status: status.as_u16(), title_zh, title_en, message };
        match page.render() {
            Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
            Err(_) => (status, "error").into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_typed_in_yuan() {
        assert_eq!(parse_yuan("9.9"), Some(990));
        assert_eq!(parse_yuan("¥9.90"), Some(990));
        assert_eq!(parse_yuan(" 12 "), Some(1200));
        assert_eq!(parse_yuan("0.05"), Some(5));
        for bad in ["", "9.999", "-1", "1e3", "abc", ".5", "1,000"] {
            assert_eq!(parse_yuan(bad), None, "{bad}");
        }
        assert_eq!(parse_yuan("9."), Some(900));
        assert_eq!(shanghai(0), "1970-01-01 08:00:00");
        assert_eq!(
            link("/console/complaints", &[("state", Some("PENDING")), ("mchid", None), ("q", Some("a b"))]),
            "/console/complaints?state=PENDING&q=a+b"
        );
    }

    #[test]
    fn flash_round_trip() {
        for flash in [Flash::ok("已回复"), Flash::error("refused: -1")] {
            assert_eq!(Flash::decode(&flash.encode()), Some(flash));
        }
        assert_eq!(Flash::decode("x"), None);
    }
}
