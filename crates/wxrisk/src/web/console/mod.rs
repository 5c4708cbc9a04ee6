//! The operator console: server-rendered pages under `/console`, Chinese first with an English switch.
//!
//! Contract:
//! - Every page and every form action is added through [`ConsoleRoutes`], whose only way to add one takes the
//!   [`Role`] it needs next to its path and handler (a route without a declared role does not compile). A route's
//!   check runs before its handler: no session → the sign-in page (`?next=` the page asked for); a role below the
//!   route's → 403 page. The role is a scope (`Role::scope`), the same ladder the API's tokens climb, checked by
//!   the same [`crate::auth::Grant::permits`]: a hidden button is never the permission.
//! - Every POST carries the session's CSRF token in its form (see [`form::ConsoleForm`]); a POST whose `Origin` is
//!   another site, or that `Sec-Fetch-Site` marks cross-site, is refused as well.
//! - Sessions live in the database ([`session`]), so several instances share them. The cookie is `HttpOnly`,
//!   `SameSite=Lax`, and `Secure` when the public URL is https.
//! - Every response carries the security headers of [`security_headers`]: a CSP without inline script, framing
//!   forbidden, no MIME sniffing.
//! - Templates are askama (compiled in, HTML auto-escaped) under `templates/console/`; each page's struct holds a
//!   [`page::Ctx`] (language, user, CSRF token, flash message) that the layout uses. Both languages sit side by side
//!   in the template: `{{ ctx.t("投诉", "Complaints") }}`. Times are shown in Asia/Shanghai, money in yuan with two
//!   decimals ([`page::yuan`], [`page::shanghai`]).
//! - Static files (`static/`: one stylesheet, one small script, no CDN and no build step) are compiled in.

pub mod assets;
pub mod channel_form;
pub mod channels;
pub mod dashboard;
pub mod form;
pub mod merchants;
pub mod page;
pub mod session;
pub mod signin;
pub mod violations;

use axum::Router;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodFilter, MethodRouter};

pub use self::form::ConsoleForm;
pub use self::page::{ConsoleError, Ctx, Flash};
pub use self::session::Console;
use crate::auth::Role;
use crate::state::AppState;

/// One page or form action as declared: method, path, the role it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageDecl {
    pub method: &'static str,
    pub path: &'static str,
    pub role: Role,
}

struct Entry {
    decl: PageDecl,
    endpoint: MethodRouter<AppState>,
}

/// The console's pages, each with the role it needs. Add a page with `.get(path, Role::Viewer, handler)` and a form
/// action with `.post(path, Role::Operator, handler)`; the handler takes a [`Console`] (who is signed in) and, for a
/// POST, a [`ConsoleForm`] (which checks the CSRF token).
#[derive(Default)]
pub struct ConsoleRoutes {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for ConsoleRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|e| e.decl)).finish()
    }
}

impl ConsoleRoutes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get<H, T>(self, path: &'static str, role: Role, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add("GET", MethodFilter::GET, path, role, handler)
    }

    pub fn post<H, T>(self, path: &'static str, role: Role, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add("POST", MethodFilter::POST, path, role, handler)
    }

    fn add<H, T>(
        mut self,
        method: &'static str,
        filter: MethodFilter,
        path: &'static str,
        role: Role,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let endpoint = axum::routing::on(filter, handler);
        self.entries.push(Entry { decl: PageDecl { method, path, role }, endpoint });
        self
    }

    pub fn declarations(&self) -> impl Iterator<Item = PageDecl> + '_ {
        self.entries.iter().map(|e| e.decl)
    }

    /// The router: each page behind the check of its role.
    pub fn into_router(self, state: &AppState) -> Router<AppState> {
        let mut router = Router::new();
        for Entry { decl, endpoint } in self.entries {
            let endpoint =
                endpoint.route_layer(middleware::from_fn_with_state((state.clone(), decl.role), session::require_role));
            router = router.route(decl.path, endpoint);
        }
        router
    }
}

/// Every page of the console. Sections add their pages here.
pub fn pages() -> ConsoleRoutes {
    ConsoleRoutes::new()
        .get("/console", Role::Viewer, dashboard::show)
        .get("/console/account/password", Role::Viewer, signin::password_form)
        .post("/console/account/password", Role::Viewer, signin::change_password)
        .post("/console/logout", Role::Viewer, signin::sign_out)
        // Violations, sub-merchants and their risk, notification channels (issue 11, pages 4, 5 and 7's channels).
        // Writes to a provider's own channel are declared Operator here and need admin in the action itself
        // (`web::api::channels::require_for_owner`), like the API's.
        .get("/console/violations", Role::Viewer, violations::list)
        .get("/console/providers/{provider_id}/violations/{record_id}", Role::Viewer, violations::show)
        .get("/console/merchants", Role::Viewer, merchants::list)
        .post("/console/merchants", Role::Operator, merchants::create)
        .get("/console/merchants/new", Role::Operator, merchants::new_form)
        .get("/console/merchants/{id}", Role::Viewer, merchants::show)
        .post("/console/merchants/{id}", Role::Operator, merchants::update)
        .get("/console/merchants/{id}/edit", Role::Operator, merchants::edit_form)
        .post("/console/merchants/{id}/delete", Role::Operator, merchants::delete)
        .get("/console/merchants/{id}/channels/new", Role::Operator, channels::new_merchant_channel)
        .post("/console/merchants/{id}/channels", Role::Operator, channels::create_merchant_channel)
        .get("/console/providers/{provider_id}/merchants/{mchid}/risk", Role::Viewer, merchants::risk)
        .get("/console/channels", Role::Viewer, channels::list)
        .post("/console/channels", Role::Admin, channels::create_provider_channel)
        .get("/console/channels/new", Role::Admin, channels::new_provider_channel)
        .get("/console/channels/{id}/edit", Role::Operator, channels::edit_form)
        .post("/console/channels/{id}", Role::Operator, channels::update)
        .post("/console/channels/{id}/enabled", Role::Operator, channels::set_enabled)
        .post("/console/channels/{id}/delete", Role::Operator, channels::delete)
        .post("/console/channels/{id}/test", Role::Operator, channels::test)
}

/// The console: its pages, the public sign-in and setup pages, static files, and `/` leading to it.
pub fn router(state: &AppState) -> Router<AppState> {
    let public = Router::new()
        .route("/", axum::routing::get(|| async { Redirect::to("/console") }))
        .route("/console/", axum::routing::get(|| async { Redirect::to("/console") }))
        .route("/console/login", axum::routing::get(signin::login_form).post(signin::sign_in))
        .route("/console/setup", axum::routing::get(signin::setup_form).post(signin::set_up))
        .route("/console/lang", axum::routing::get(signin::switch_language))
        .route("/console/static/{file}", axum::routing::get(assets::serve));
    public
        .merge(pages().into_router(state))
        .layer(middleware::from_fn_with_state(state.clone(), refuse_cross_site_posts))
        .layer(middleware::from_fn(security_headers))
}

/// The Content-Security-Policy of every console page: only our own script and style, no inline script, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Security headers on every console response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    security_headers_on(next.run(request).await)
}

/// Add the console's security headers to a response.
pub fn security_headers_on(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A POST sent by another site is refused before anything reads it: the browser says so in `Sec-Fetch-Site`, or
/// its `Origin` names another host. (The CSRF token is the check that does not depend on the browser.)
async fn refuse_cross_site_posts(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() == Method::POST {
        let headers = request.headers();
        let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let cross_site = matches!(site, Some("cross-site"));
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let foreign_origin = match (origin, host) {
            (Some("null"), _) => true,
            (Some(origin), Some(host)) => {
                let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
                let public_host =
                    state.config().public_url.as_ref().and_then(|u| {
                        u.host_str().map(|h| u.port().map_or_else(|| h.to_owned(), |p| format!("{h}:{p}")))
                    });
                origin_host != host && public_host.as_deref() != Some(origin_host)
            }
            _ => false,
        };
        if cross_site || foreign_origin {
            return ConsoleError::Forbidden("cross-site form".into()).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_post_needs_more_than_a_signed_out_visitor_and_paths_are_unique() {
        let pages = pages();
        let decls: Vec<PageDecl> = pages.declarations().collect();
        let mut seen = std::collections::HashSet::new();
        for d in &decls {
            assert!(d.path.starts_with("/console"), "{d:?}");
            assert!(seen.insert((d.method, d.path)), "declared twice: {d:?}");
        }
    }
}
