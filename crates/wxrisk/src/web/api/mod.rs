//! The JSON API, version 1, and its OpenAPI document (`/api/v1/openapi.json`).
//!
//! Contract: [`routes`] is the one list of API routes, each with the scope it needs; the router and the scopes in
//! the OpenAPI document are both made from it, and the document lists exactly these routes (tested).

pub mod callbacks;
pub mod channels;
pub mod complaints;
pub mod deliveries;
pub mod jobs;
pub mod merchants;
pub mod providers;
pub mod rejections;
pub mod risk;
pub mod templates;
pub mod violations;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::{Extension, Router};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};

use crate::auth::{Actor, Scope};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Tx, audit};
use crate::web::access::{Access, ApiMethod, ApiRoutes};

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "wxrisk API", description = "Complaint and violation handling for WeChat Pay service providers."),
    servers((url = "/api/v1")),
    paths(
        openapi,
        providers::create, providers::list, providers::get, providers::update, providers::delete,
        merchants::create, merchants::list, merchants::get, merchants::update, merchants::delete,
        channels::create, channels::list, channels::get, channels::update, channels::delete, channels::test,
        deliveries::list, deliveries::get, deliveries::retry,
        complaints::list, complaints::get, complaints::reply, complaints::refund, complaints::complete,
        complaints::refund_progress, rejections::list, violations::list, violations::get, risk::merchant, risk::ranking,
        callbacks::show, callbacks::register,
        templates::list, templates::get, templates::put, templates::delete,
        jobs::list, jobs::get, jobs::retry,
    ),
    components(schemas(crate::error::ErrorBody, crate::domain::channel::ChannelKind)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token from `wxrisk token create --name NAME --scope read|operate|admin [--expires 30d]`. \
                         Scopes are ordered read < operate < admin, each including the ones below: `read` reads \
                         everything; `operate` also acts on complaints (reply, refund, complete), keeps \
                         the sub-merchants and their channels, test-sends through channels and retries jobs and \
                         deliveries; `admin` also changes providers and their keys, the providers' own channels, \
                         templates and callback registration. Each operation names \
                         the scope it needs in its security requirement, in `x-scope` and in its description. A \
                         token below it is answered 403 `FORBIDDEN`; a missing, unknown or revoked token 401 \
                         `UNAUTHORIZED`; an expired one 401 `TOKEN_EXPIRED`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every API route and the access it needs. A new route goes here, next to its scope — `read` for what only looks,
/// `operate` for acting on complaints, jobs and deliveries and keeping sub-merchants, `admin` for changing the setup (see [`Scope`]) — and
/// its handler into [`ApiDoc`]'s `paths`; tests fail when the two lists differ.
pub fn routes() -> ApiRoutes {
    use Scope::{Admin, Operate, Read};
    ApiRoutes::new()
        .get("/openapi.json", Access::Public, openapi)
        .get("/providers", Read, providers::list)
        .post("/providers", Admin, providers::create)
        .get("/providers/{id}", Read, providers::get)
        .patch("/providers/{id}", Admin, providers::update)
        .delete("/providers/{id}", Admin, providers::delete)
        .get("/providers/{id}/callbacks", Read, callbacks::show)
        .post("/providers/{id}/register-callbacks", Admin, callbacks::register)
        .get("/providers/{id}/templates", Read, templates::list)
        .get("/providers/{id}/templates/{event_kind}/{locale}", Read, templates::get)
        .put("/providers/{id}/templates/{event_kind}/{locale}", Admin, templates::put)
        .delete("/providers/{id}/templates/{event_kind}/{locale}", Admin, templates::delete)
        .get("/merchants", Read, merchants::list)
        .post("/merchants", Operate, merchants::create)
        .get("/merchants/{id}", Read, merchants::get)
        .patch("/merchants/{id}", Operate, merchants::update)
        .delete("/merchants/{id}", Operate, merchants::delete)
        .get("/merchants/{id}/risk", Read, risk::merchant)
        .get("/risk/merchants", Read, risk::ranking)
        .get("/channels", Read, channels::list)
        // A provider's own channel needs admin: the handler asks the grant once it knows the owner.
        .post("/channels", Operate, channels::create)
        .get("/channels/{id}", Read, channels::get)
        .patch("/channels/{id}", Operate, channels::update)
        .delete("/channels/{id}", Operate, channels::delete)
        .post("/channels/{id}/test", Operate, channels::test)
        .get("/complaints", Read, complaints::list)
        .get("/complaints/{complaint_id}", Read, complaints::get)
        .post("/complaints/{complaint_id}/reply", Operate, complaints::reply)
        .post("/complaints/{complaint_id}/refund", Operate, complaints::refund)
        .post("/complaints/{complaint_id}/complete", Operate, complaints::complete)
        .post("/complaints/{complaint_id}/refund-progress", Operate, complaints::refund_progress)
        .get("/callback-rejections", Read, rejections::list)
        .get("/violations", Read, violations::list)
        .get("/violations/{id}", Read, violations::get)
        .get("/deliveries", Read, deliveries::list)
        .get("/deliveries/{id}", Read, deliveries::get)
        .post("/deliveries/{id}/retry", Operate, deliveries::retry)
        .get("/jobs", Read, jobs::list)
        .get("/jobs/{id}", Read, jobs::get)
        .post("/jobs/{id}/retry", Operate, jobs::retry)
}

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = routes();
    // Written once: the document does not change while the process runs.
    let json = serde_json::to_vec(&document(&routes)).unwrap_or_default();
    routes.into_router(state).layer(Extension(OpenApiJson(Bytes::from(json))))
}

/// [`ApiDoc`] with each operation's access written in from the route table: the security requirement names the
/// scope (OpenAPI allows role names there for non-OAuth schemes), `x-scope` repeats it for tools, and the
/// description says it for people. Public operations get an empty security list.
pub fn document(routes: &ApiRoutes) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for route in routes.declarations() {
        let Some(item) = doc.paths.paths.get_mut(route.path) else {
            continue;
        };
        let operation = match route.method {
            ApiMethod::Get => item.get.as_mut(),
            ApiMethod::Post => item.post.as_mut(),
            ApiMethod::Put => item.put.as_mut(),
            ApiMethod::Patch => item.patch.as_mut(),
            ApiMethod::Delete => item.delete.as_mut(),
        };
        let Some(operation) = operation else {
            continue;
        };
        let note = match route.access {
            Access::Public => {
                operation.security = Some(Vec::new());
                "Public: needs no token.".to_owned()
            }
            Access::Needs(scope) => {
                operation.security = Some(vec![SecurityRequirement::new("bearer", [scope.as_str()])]);
                let enough: Vec<String> =
                    Scope::ALL.into_iter().filter(|s| *s >= scope).map(|s| format!("`{s}`")).collect();
                format!("Scope: `{scope}` (a token with scope {}).", enough.join(" or "))
            }
        };
        operation.description = Some(match operation.description.take().filter(|d| !d.trim().is_empty()) {
            Some(text) => format!("{text}\n\n{note}"),
            None => note,
        });
        operation
            .extensions
            .get_or_insert_with(Default::default)
            .insert("x-scope".to_owned(), serde_json::Value::from(route.access.as_str()));
    }
    doc
}

#[derive(Debug, Clone)]
struct OpenApiJson(Bytes);

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document of this API", content_type = "application/json")))]
async fn openapi(Extension(document): Extension<OpenApiJson>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], document.0)
}

/// Record in the audit log what `actor` did, and commit it together with the change itself.
pub(crate) async fn commit_audited(
    mut tx: Tx,
    now: i64,
    actor: &Actor,
    action: &str,
    (target_type, target_id): (&str, i64),
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    audit::record(&mut tx, now, &actor.label(), action, (target_type, &target_id.to_string()), &detail).await?;
    tx.commit().await?;
    tracing::info!(action, target_type, target_id, actor = actor.label(), %detail, "changed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    /// `(METHOD, path)` of every operation in a document, with its `x-scope`.
    fn operations(doc: &utoipa::openapi::OpenApi) -> Vec<(String, String, Option<String>)> {
        let value = serde_json::to_value(doc).expect("serialise");
        let mut found = Vec::new();
        for (path, item) in value["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                if METHODS.contains(&method.as_str()) {
                    let scope = operation["x-scope"].as_str().map(str::to_owned);
                    found.push((method.to_ascii_uppercase(), path.clone(), scope));
                }
            }
        }
        found
    }

    #[test]
    fn the_router_and_the_openapi_document_list_the_same_routes() {
        let routes = routes();
        let declared: Vec<(String, String)> =
            routes.declarations().map(|r| (r.method.as_str().to_owned(), r.path.to_owned())).collect();
        let declared_set: BTreeSet<_> = declared.iter().cloned().collect();
        assert_eq!(declared.len(), declared_set.len(), "a route is declared twice");
        let documented: BTreeSet<(String, String)> =
            operations(&ApiDoc::openapi()).into_iter().map(|(m, p, _)| (m, p)).collect();
        let undocumented: Vec<_> = declared_set.difference(&documented).collect();
        assert!(undocumented.is_empty(), "routes missing from ApiDoc's paths: {undocumented:?}");
        let unrouted: Vec<_> = documented.difference(&declared_set).collect();
        assert!(unrouted.is_empty(), "documented operations with no route in `routes()`: {unrouted:?}");
    }

    #[test]
    fn every_documented_operation_names_its_scope() {
        let routes = routes();
        let doc = document(&routes);
        for (method, path, scope) in operations(&doc) {
            let declared = routes
                .declarations()
                .find(|r| r.method.as_str() == method && r.path == path)
                .unwrap_or_else(|| panic!("{method} {path} has no route"));
            assert_eq!(scope.as_deref(), Some(declared.access.as_str()), "{method} {path}");
        }
        let value = serde_json::to_value(&doc).expect("serialise");
        let retry = &value["paths"]["/jobs/{id}/retry"]["post"];
        assert_eq!(retry["security"], serde_json::json!([{"bearer": ["operate"]}]));
        assert!(retry["description"].as_str().expect("description").contains("Scope: `operate`"), "{retry}");
        assert_eq!(value["paths"]["/openapi.json"]["get"]["security"], serde_json::json!([]));
    }

    /// `read` looks and changes nothing: a route that changes something needs `operate` or `admin`.
    #[test]
    fn only_gets_are_open_to_read_tokens() {
        for route in routes().declarations() {
            let changes = route.method != ApiMethod::Get;
            if changes {
                assert!(
                    matches!(route.access, Access::Needs(Scope::Operate | Scope::Admin)),
                    "{} {} changes something but needs only {}",
                    route.method.as_str(),
                    route.path,
                    route.access.as_str()
                );
            }
        }
    }
}
