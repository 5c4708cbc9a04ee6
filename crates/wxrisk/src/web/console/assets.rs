//! The console's static files, compiled in: one stylesheet and one small script (no CDN, no build step).
//!
//! Contract: served at `/console/static/{file}` with a content type and a day of caching; pages link them as
//! [`css_href`] / [`js_href`], whose `?v=` changes with the content, so a new release is never served stale.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::page::ConsoleError;

const CONSOLE_CSS: &str = include_str!("../../../static/console.css");
const CONSOLE_JS: &str = include_str!("../../../static/console.js");

fn version(text: &str) -> String {
    hex::encode(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref()[..4])
}

static CSS_HREF: LazyLock<String> = LazyLock::new(|| format!("/console/static/console.css?v={}", version(CONSOLE_CSS)));
static JS_HREF: LazyLock<String> = LazyLock::new(|| format!("/console/static/console.js?v={}", version(CONSOLE_JS)));

pub fn css_href() -> &'static str {
    &CSS_HREF
}

pub fn js_href() -> &'static str {
    &JS_HREF
}

pub async fn serve(Path(file): Path<String>) -> Result<Response, ConsoleError> {
    let (body, content_type) = match file.as_str() {
        "console.css" => (CONSOLE_CSS, "text/css; charset=utf-8"),
        "console.js" => (CONSOLE_JS, "text/javascript; charset=utf-8"),
        _ => return Err(ConsoleError::NotFound),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    Ok(response)
}
