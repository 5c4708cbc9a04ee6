//! `/api/v1/merchants`: sub-merchants, their filters, pages and bad input.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn merchant_round_trip_and_default_reply() {
    let app = spawn_app().await;
    let provider = app.create_provider("1900000109").await;
    let (status, created) = app
        .post(
            "/api/v1/merchants",
            &json!({"provider_id": provider, "mchid": "1900000201", "name": "一号店", "auto_refund": true}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    assert_eq!(created["enabled"], true, "enabled by default");
    assert_eq!(created["auto_refund"], true);
    assert_eq!(created["reply_text"], Value::Null);
    assert_eq!(created["effective_reply_text"], "您好，已收到您的反馈，我们会尽快处理。", "the provider's default");

    let path = format!("/api/v1/merchants/{id}");
    let (status, patched) = app.patch(&path, &json!({"reply_text": "亲，已为您处理", "enabled": false})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["effective_reply_text"], "亲，已为您处理");
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["auto_refund"], true, "untouched");
    let (status, patched) = app.patch(&path, &json!({"reply_text": null})).await;
    assert_eq!(status, 200);
    assert_eq!(patched["reply_text"], Value::Null);
    let (status, fetched) = app.get(&path).await;
    assert_eq!((status, &fetched), (200, &patched));
    app.stop().await;
}

#[tokio::test]
async fn mchid_is_unique_per_provider_only() {
    let app = spawn_app().await;
    let first = app.create_provider("1900000109").await;
    let second = app.create_provider("1900000110").await;
    app.create_merchant(first, "1900000201").await;
    let (status, answer) =
        app.post("/api/v1/merchants", &json!({"provider_id": first, "mchid": "1900000201", "name": "again"})).await;
    assert_eq!(
        (status, answer["code"].as_str(), answer["field"].as_str()),
        (409, Some("CONFLICT"), Some("mchid")),
        "{answer}"
    );
    app.create_merchant(second, "1900000201").await;
    assert_eq!(app.count("merchants").await, 2);
    // Renaming into a taken mchid is refused too.
    let other = app.create_merchant(first, "1900000202").await;
    let (status, answer) = app.patch(&format!("/api/v1/merchants/{other}"), &json!({"mchid": "1900000201"})).await;
    assert_eq!((status, answer["field"].as_str()), (409, Some("mchid")), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn list_filters_and_pages() {
    let app = spawn_app().await;
    let first = app.create_provider("1900000109").await;
    let second = app.create_provider("1900000110").await;
    for i in 0..5 {
        app.create_merchant(first, &format!("19000003{i:02}")).await;
    }
    let disabled = app.create_merchant(second, "1900000400").await;
    app.patch(&format!("/api/v1/merchants/{disabled}"), &json!({"enabled": false})).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/merchants?provider_id={first}&limit=2&cursor={c}"),
            None => format!("/api/v1/merchants?provider_id={first}&limit=2"),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|m| m["mchid"].as_str().expect("mchid").to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["1900000300", "1900000301", "1900000302", "1900000303", "1900000304"]);

    let (_, page) = app.get("/api/v1/merchants?mchid=1900000302").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let (_, page) = app.get("/api/v1/merchants?enabled=false").await;
    assert_eq!(page["items"][0]["mchid"], "1900000400");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let (_, page) = app.get(&format!("/api/v1/merchants?provider_id={second}&enabled=true")).await;
    assert_eq!(page["items"], json!([]));

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=500", "limit"),
        ("cursor=zzz", "cursor"),
        ("enabled=maybe", "enabled"),
        ("colour=red", "colour"),
    ] {
        let (status, answer) = app.get(&format!("/api/v1/merchants?{query}")).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some(field)), "{query}: {answer}");
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_merchant_input_writes_nothing() {
    let app = spawn_app().await;
    let provider = app.create_provider("1900000109").await;
    let cases = [
        (json!({"provider_id": provider, "mchid": "12a4567890", "name": "x"}), "mchid"),
        (json!({"provider_id": 999, "mchid": "1900000201", "name": "x"}), "provider_id"),
        (json!({"provider_id": provider, "mchid": "1900000201", "name": ""}), "name"),
        (
            json!({"provider_id": provider, "mchid": "1900000201", "name": "x", "reply_text": "长".repeat(201)}),
            "reply_text",
        ),
        (json!({"provider_id": provider, "mchid": "1900000201", "name": "x", "auto_refund": 1}), "auto_refund"),
        (json!({"provider_id": provider, "mchid": "1900000201", "name": "x", "colour": "red"}), "colour"),
        (json!({"mchid": "1900000201", "name": "x"}), "provider_id"),
    ];
    for (body, field) in cases {
        let (status, answer) = app.post("/api/v1/merchants", &body).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some(field)), "{body}: {answer}");
    }
    assert_eq!(app.count("merchants").await, 0);
    app.stop().await;
}
