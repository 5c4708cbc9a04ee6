//! Access: token scopes and expiry on every API route, the public routes, `/metrics` behind `metrics.token`, and
//! tokens made before scopes existed.

use std::time::Duration;

use serde_json::{Value, json};
use wxrisk::store::{Store, migrate};

use crate::helpers::*;

/// A value for a path parameter that the route's parser accepts (records need not exist: the scope check comes
/// before the handler, and with the right scope a well-formed request for a missing record is a 404).
fn plausible(name: &str, schema: &Value) -> String {
    match name {
        "complaint_id" => "200000020260101120000000001".to_owned(),
        "event_kind" => "complaint_created".to_owned(),
        "locale" => "zh-CN".to_owned(),
        _ if schema["type"] == "integer" => "424242".to_owned(),
        _ => panic!("no plausible value for path parameter `{name}` ({schema}): add one here"),
    }
}

fn fill_path(path: &str, operation: &Value) -> String {
    let mut filled = path.to_owned();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] == "path" {
            let name = parameter["name"].as_str().expect("parameter name");
            filled = filled.replace(&format!("{{{name}}}"), &plausible(name, &parameter["schema"]));
        }
    }
    assert!(!filled.contains('{'), "{path}: a path parameter is not documented");
    filled
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> (u16, Value, Option<String>) {
    let mut request = app.client.request(method.parse().expect("method"), app.url(&format!("/api/v1{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if method != "GET" && method != "DELETE" {
        request = request.json(&json!({}));
    }
    let response = request.send().await.expect("send");
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().expect("ascii").to_owned());
    let (status, body) = decode(response).await;
    (status, body, challenge)
}

/// Every operation of the OpenAPI document, walked with a token one scope short (403, or 401 without a token where
/// nothing is below), with an expired token (401), and with exactly the scope it names (neither refused nor
/// missing). A route without a declared scope, or whose enforced scope differs from the documented one, fails here.
#[tokio::test]
async fn every_documented_route_needs_its_scope_and_no_more() {
    let app = spawn_app().await;
    let now = app.now();
    let mut tokens = std::collections::HashMap::new();
    for scope in Scope::ALL {
        let (_, token) = create_scoped_token(&app.state, &format!("walk-{scope}"), scope, None, now).await;
        tokens.insert(scope, token);
    }
    let (_, expired) = create_scoped_token(&app.state, "walk-expired", Scope::Admin, Some(now + 1000), now).await;
    app.advance(Duration::from_secs(2));

    let response = app.client.get(app.url("/api/v1/openapi.json")).send().await.expect("GET");
    let (status, doc) = decode(response).await;
    assert_eq!(status, 200, "the OpenAPI document is public");
    let description = doc["components"]["securitySchemes"]["bearer"]["description"].as_str().expect("scheme");
    assert!(description.contains("read < operate < admin"), "{description}");

    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let method = method.to_ascii_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            walked += 1;
            let route = format!("{method} {path}");
            let url = fill_path(path, operation);
            let declared = operation["x-scope"].as_str().unwrap_or_else(|| panic!("{route} declares no x-scope"));
            if declared == "public" {
                let (status, body, _) = call(&app, &method, &url, None).await;
                assert!((200..300).contains(&status), "{route} is public: {status} {body}");
                continue;
            }
            let need: Scope = declared.parse().unwrap_or_else(|e| panic!("{route}: {e}"));
            assert_eq!(operation["security"], json!([{"bearer": [declared]}]), "{route}");
            assert!(
                operation["description"].as_str().unwrap_or_default().contains(&format!("Scope: `{declared}`")),
                "{route}: the description names the scope"
            );

            match need.below() {
                Some(short) => {
                    let (status, body, challenge) = call(&app, &method, &url, Some(&tokens[&short])).await;
                    let message = format!("this token's scope is {short}; this action needs {need}");
                    assert_eq!((status, &body), (403, &json!({"code": "FORBIDDEN", "message": message})), "{route}");
                    let challenge = challenge.unwrap_or_default();
                    assert!(challenge.contains(&format!("scope=\"{need}\"")), "{route}: {challenge}");
                }
                None => {
                    let (status, body, _) = call(&app, &method, &url, None).await;
                    assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")), "{route} without a token");
                }
            }
            let (status, body, _) = call(&app, &method, &url, Some(&expired)).await;
            assert_eq!((status, body["code"].as_str()), (401, Some("TOKEN_EXPIRED")), "{route}: {body}");

            let (status, body, _) = call(&app, &method, &url, Some(&tokens[&need])).await;
            assert!(![401, 403, 405].contains(&status) && status < 500, "{route} with scope {need}: {status} {body}");
            assert_ne!(body["message"], "route not found", "{route} is documented but not routed");
        }
    }
    assert!(walked >= 40, "only {walked} operations in the document");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused_saying_so_and_a_scope_short_token_is_told_what_it_needs() {
    let app = spawn_app().await;
    let now = app.now();
    let (_, token) = create_scoped_token(&app.state, "ops", Scope::Operate, Some(now + 3_600_000), now).await;
    let get = |token: String| {
        let request = app.client.get(app.url("/api/v1/jobs")).bearer_auth(token);
        async move { decode(request.send().await.expect("GET")).await }
    };
    let (status, _) = get(token.clone()).await;
    assert_eq!(status, 200, "valid until its expiry");

    // An operate token may retry (404: no such job) but not change the setup.
    let retry = app.client.post(app.url("/api/v1/jobs/7/retry")).bearer_auth(&token).send().await.expect("POST");
    assert_eq!(decode(retry).await.0, 404);
    let create = app.client.post(app.url("/api/v1/providers")).bearer_auth(&token).json(&provider_body("1900000109"));
    let (status, body) = decode(create.send().await.expect("POST")).await;
    assert_eq!(
        (status, body),
        (403, json!({"code": "FORBIDDEN", "message": "this token's scope is operate; this action needs admin"}))
    );
    assert_eq!(app.count("providers").await, 0, "nothing was created");

    app.advance(Duration::from_secs(3600));
    let (status, body) = get(token.clone()).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("TOKEN_EXPIRED")), "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(message.starts_with("this token expired at ") && message.contains("+08:00"), "{message}");

    // Expired is not unknown: a made-up token is still plain 401.
    let (status, body) = get("wxr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned()).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn metrics_need_the_metrics_token_when_one_is_set() {
    const METRICS_TOKEN: &str = "scrape-9f3c1e7a5b2d4680";
    let app = spawn_app_env(TestDb::new().await, &[("WXRISK_METRICS__TOKEN", METRICS_TOKEN)], |b| b).await;
    let scrape = |authorization: Option<String>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        async move {
            let response = request.send().await.expect("GET");
            let challenge = response.headers().get("www-authenticate").is_some();
            let (status, body) = decode(response).await;
            (status, body, challenge)
        }
    };
    let (status, body, challenge) = scrape(None).await;
    assert_eq!((status, body["code"].as_str(), challenge), (401, Some("UNAUTHORIZED"), true), "{body}");
    for wrong in [
        format!("Bearer {METRICS_TOKEN}x"),
        format!("Bearer {}", &METRICS_TOKEN[..METRICS_TOKEN.len() - 1]),
        format!("Basic {METRICS_TOKEN}"),
        format!("Bearer {}", app.token),
    ] {
        let (status, _, _) = scrape(Some(wrong.clone())).await;
        assert_eq!(status, 401, "{wrong}");
    }
    let (status, body, _) = scrape(Some(format!("Bearer {METRICS_TOKEN}"))).await;
    assert_eq!(status, 200);
    assert!(body.as_str().expect("text").contains("wxrisk_database_up 1"), "{body}");
    // The probes stay public.
    for probe in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(probe)).send().await.expect("GET");
        assert_eq!(response.status().as_u16(), 200, "{probe}");
    }
    app.stop().await;

    // Without the setting, /metrics is public as before.
    let app = spawn_app().await;
    let response = app.client.get(app.url("/metrics")).send().await.expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    app.stop().await;
}

/// Tokens made before scopes existed keep working, as `admin`, on both databases.
#[tokio::test]
async fn tokens_from_before_scopes_become_admin() {
    let db = TestDb::new().await;
    let config = test_config(&db, &[]);
    let store = Store::connect(&db.url, &config.database).await.expect("connect");
    migrate::run_through(&store, 4, 0).await.expect("schema before scopes");
    let token = "wxr_OldTokenOldTokenOldTokenOldTokenOldTokenOld";
    sqlx::query(
        "insert into api_tokens (name, token_hash, token_prefix, created_at) values ('legacy', $1, 'wxr_Ol', 0)",
    )
    .bind(wxrisk::auth::hash_token(token))
    .execute(store.pool())
    .await
    .expect("a token as 0001 made it");
    let applied = migrate::run(&store, 0).await.expect("migrate");
    assert!(applied.contains(&7), "{applied:?}");
    let check = wxrisk::auth::authenticate_token(&store, token, 1).await.expect("auth");
    let wxrisk::auth::TokenCheck::Valid(caller) = check else { panic!("the old token stopped working: {check:?}") };
    assert_eq!(caller.grant.scope, Scope::Admin);
    // New rows must name a valid scope: the database refuses others.
    let bad = sqlx::query(
        "insert into api_tokens (name, token_hash, token_prefix, scope, created_at) values ('x', 'h', 'p', 'root', 0)",
    )
    .execute(store.pool())
    .await;
    assert!(bad.is_err(), "scope `root` was accepted");
    store.close().await;

    // And the service answers the old token on an admin route.
    let app = spawn_app_with(db, |b| b).await;
    let create = app.client.post(app.url("/api/v1/providers")).bearer_auth(token).json(&provider_body("1900000109"));
    let (status, body) = decode(create.send().await.expect("POST")).await;
    assert_eq!(status, 201, "{body}");
    app.stop().await;
}
