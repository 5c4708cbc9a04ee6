//! `/healthz`, `/readyz`, `/metrics`, and the migrations behind readiness.

use wxrisk::store::{Store, migrate};

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let (status, body) = app.get("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let backend = if app.db.is_postgres() { "postgres" } else { "sqlite" };
    assert_eq!(body["database"], backend);

    app.get("/api/v1/providers").await;
    let response = app.client.get(app.url("/metrics")).send().await.expect("GET");
    assert!(response.headers()["content-type"].to_str().expect("type").starts_with("text/plain"));
    let text = response.text().await.expect("text");
    assert!(text.contains("wxrisk_http_requests_total{route=\"/api/v1/providers\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("wxrisk_jobs{status=\"queued\"} 0"), "{text}");
    assert!(text.contains("wxrisk_database_up 1"), "{text}");

    // With the database gone, the service is alive but not ready.
    app.state.store().close().await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!((status, body["status"].as_str()), (503, Some("unavailable")), "{body}");
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn migrations_apply_once_and_refuse_edited_history() {
    let db = TestDb::new().await;
    let config = test_config(&db, &[]);
    let store = Store::connect(&db.url, &config.database).await.expect("connect");
    assert_eq!(migrate::pending(&store).await.expect("pending"), [1, 2, 3, 4, 6]);
    // Two instances starting at once on a fresh database: the migration is applied exactly once.
    let other = Store::connect(&db.url, &config.database).await.expect("connect");
    let (a, b) = tokio::join!(migrate::run(&store, 0), migrate::run(&other, 0));
    let mut applied = a.expect("a");
    applied.extend(b.expect("b"));
    applied.sort_unstable();
    assert_eq!(applied, [1, 2, 3, 4, 6]);
    assert!(migrate::pending(&store).await.expect("pending").is_empty());
    assert!(migrate::run(&store, 0).await.expect("again").is_empty(), "idempotent");

    sqlx::query("update schema_migrations set checksum = 'edited' where version = 1")
        .execute(store.pool())
        .await
        .expect("tamper");
    let error = migrate::run(&store, 0).await.expect_err("edited migration");
    assert!(error.to_string().contains("changed after it was applied"), "{error}");
    store.close().await;
    other.close().await;
}
