//! Who may call which route.
//!
//! Contract: every `/api/v1` route is added through [`ApiRoutes`], whose only way to add a route takes the
//! [`Access`] it needs next to its path and handler — a route without a declared scope does not compile. One table
//! builds both the router (a check in front of each handler, before any extractor reads the request) and the
//! scope written into the OpenAPI document (`crate::web::api::document`), so what is documented is what is
//! enforced; tests compare the table with the document and walk every documented route with a token one scope
//! short.
//!
//! The check: no or an unknown/revoked bearer token → 401 `UNAUTHORIZED`; an expired one → 401 `TOKEN_EXPIRED`; a
//! valid one whose scope is below the route's → 403 `FORBIDDEN` ("this token's scope is read; this action needs
//! operate"). A passing request carries its [`Caller`]; handlers take it (or just its [`Actor`]) as an extractor.

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::handler::Handler;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use secrecy::{ExposeSecret as _, SecretString};

use crate::auth::{Actor, Caller, Scope, TokenCheck, authenticate_token};
use crate::clock::format_shanghai;
use crate::error::ApiError;
use crate::state::AppState;

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: only the OpenAPI document. (Health, metrics and WeChat Pay's callbacks live outside `/api/v1`;
    /// the README says why each is public.)
    Public,
    /// A token whose scope is this one or above.
    Needs(Scope),
}

impl From<Scope> for Access {
    fn from(scope: Scope) -> Self {
        Access::Needs(scope)
    }
}

impl Access {
    /// As written in the OpenAPI document's `x-scope`: `public`, `read`, `operate` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Needs(scope) => scope.as_str(),
        }
    }
}

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl ApiMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiMethod::Get => "GET",
            ApiMethod::Post => "POST",
            ApiMethod::Put => "PUT",
            ApiMethod::Patch => "PATCH",
            ApiMethod::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            ApiMethod::Get => MethodFilter::GET,
            ApiMethod::Post => MethodFilter::POST,
            ApiMethod::Put => MethodFilter::PUT,
            ApiMethod::Patch => MethodFilter::PATCH,
            ApiMethod::Delete => MethodFilter::DELETE,
        }
    }
}

/// One route of the API as declared: method, path (relative to `/api/v1`, axum's `{param}` syntax, which is also
/// OpenAPI's) and access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDecl {
    pub method: ApiMethod,
    pub path: &'static str,
    pub access: Access,
}

struct Entry {
    decl: RouteDecl,
    endpoint: MethodRouter<AppState>,
}

/// The API's routes, each with the access it needs. Add a route with `.get(path, Scope::Read, handler)` (or
/// `.post`, `.put`, `.patch`, `.delete`), and document the handler with `#[utoipa::path]` in `ApiDoc`.
#[derive(Default)]
pub struct ApiRoutes {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for ApiRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|e| e.decl)).finish()
    }
}

macro_rules! method {
    ($name:ident, $method:ident) => {
        pub fn $name<H, T>(self, path: &'static str, access: impl Into<Access>, handler: H) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            self.add(ApiMethod::$method, path, access.into(), handler)
        }
    };
}

impl ApiRoutes {
    pub fn new() -> Self {
        Self::default()
    }

    method!(get, Get);
    method!(post, Post);
    method!(put, Put);
    method!(patch, Patch);
    method!(delete, Delete);

    fn add<H, T>(mut self, method: ApiMethod, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let endpoint = axum::routing::on(method.filter(), handler);
        self.entries.push(Entry { decl: RouteDecl { method, path, access }, endpoint });
        self
    }

    /// Every route as declared, in declaration order.
    pub fn declarations(&self) -> impl Iterator<Item = RouteDecl> + '_ {
        self.entries.iter().map(|e| e.decl)
    }

    /// The router: each route behind the check of its access.
    pub fn into_router(self, state: &AppState) -> Router<AppState> {
        let mut router = Router::new();
        for Entry { decl, endpoint } in self.entries {
            let endpoint = match decl.access {
                Access::Public => endpoint,
                // A route layer runs only when the route matched, and before the handler's extractors: a caller
                // without the scope learns nothing about the request's validity.
                Access::Needs(scope) => {
                    endpoint.route_layer(middleware::from_fn_with_state((state.clone(), scope), require_scope))
                }
            };
            router = router.route(decl.path, endpoint);
        }
        router
    }
}

async fn require_scope(State((state, need)): State<(AppState, Scope)>, mut request: Request, next: Next) -> Response {
    match authorize(&state, request.headers(), need).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refused) => refused.into_response(),
    }
}

/// The caller behind the request's bearer token, if that token may do what needs `need`.
pub async fn authorize(state: &AppState, headers: &HeaderMap, need: Scope) -> Result<Caller, ApiError> {
    let token = bearer_token(headers).ok_or(ApiError::Unauthorized)?;
    match authenticate_token(state.store(), token, state.now_ms()).await? {
        TokenCheck::Invalid => Err(ApiError::Unauthorized),
        TokenCheck::Expired { at } => Err(ApiError::TokenExpired { at: format_shanghai(at) }),
        TokenCheck::Valid(caller) => {
            caller.grant.permits(need)?;
            Ok(caller)
        }
    }
}

/// `Authorization: Bearer <token>` → the token (the scheme's case does not matter).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let header = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether the request carries `Authorization: Bearer <expected>`, compared in constant time (both sides are hashed
/// first, so not even the length leaks).
pub fn bearer_matches(headers: &HeaderMap, expected: &SecretString) -> bool {
    let Some(given) = bearer_token(headers) else {
        return false;
    };
    let digest = |text: &str| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let (given, expected) = (digest(given), digest(expected.expose_secret()));
    aws_lc_rs::constant_time::verify_slices_are_equal(given.as_ref(), expected.as_ref()).is_ok()
}

/// The caller of a route declared with a scope. On a route without one this is a programming error (500), which
/// the route-walk test would show.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "{} {}: the handler needs a caller but the route declares no scope",
                parts.method,
                parts.uri.path()
            ))
        })
    }
}

/// Who is calling, for the audit log: the [`Caller`]'s actor.
impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Caller::from_request_parts(parts, state).await.map(|caller| caller.actor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().expect("header"));
        headers
    }

    #[test]
    fn bearer_tokens_are_read_and_compared_whole() {
        assert_eq!(bearer_token(&headers("Bearer wxr_abc")), Some("wxr_abc"));
        assert_eq!(bearer_token(&headers("bearer   wxr_abc ")), Some("wxr_abc"));
        assert_eq!(bearer_token(&headers("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
        let expected = SecretString::from("scrape-me-0123456789");
        assert!(bearer_matches(&headers("Bearer scrape-me-0123456789"), &expected));
        assert!(!bearer_matches(&headers("Bearer scrape-me-012345678"), &expected));
        assert!(!bearer_matches(&headers("Bearer scrape-me-0123456789x"), &expected));
        assert!(!bearer_matches(&HeaderMap::new(), &expected));
    }
}
