//! `/api/v1/providers`: round trips, sealed secrets, and every bad input refused with nothing written.

use serde_json::{Value, json};
use wxrisk::store::secrets::{PROVIDER_APIV3_KEY, PROVIDER_PRIVATE_KEY};

use crate::helpers::*;

async fn sealed_columns(app: &TestApp, id: i64) -> (String, String) {
    let mut conn = app.state.store().conn().await.expect("conn");
    let row = wxrisk::store::providers::get(&mut conn, id).await.expect("query").expect("row");
    (row.apiv3_key_sealed, row.merchant_private_key_sealed)
}

#[tokio::test]
async fn provider_round_trip_with_secrets_sealed() {
    let app = spawn_app().await;
    let mut body = provider_body("1900000109");
    body["platform_cert_pem"] = json!(testdata("platform_cert.pem"));
    body["platform_cert_serial"] = json!(PLATFORM_SERIAL);
    body["default_auto_refund"] = json!(true);
    let (status, created) = app.post("/api/v1/providers", &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    assert_eq!(created["mchid"], "1900000109");
    assert_eq!(created["merchant_cert_serial"], MERCHANT_SERIAL);
    assert_eq!(created["platform_cert_serial"], PLATFORM_SERIAL);
    assert_eq!(created["platform_certificates"][0]["source"], "uploaded");
    assert_eq!(created["default_auto_refund"], true);
    assert_eq!(created["secrets_set"], json!(["merchant_private_key_pem", "apiv3_key"]));
    assert_eq!(created["callback_urls"]["complaints"], format!("https://risk.example.com/callbacks/{id}/complaints"));
    assert_eq!(created["effective_refund_notify_url"], format!("https://risk.example.com/callbacks/{id}/refunds"));
    assert!(created["created_at"].as_str().expect("time").ends_with("+08:00"));

    // Secrets never come back.
    let text = created.to_string();
    assert!(!text.contains(APIV3_KEY), "APIv3 key echoed");
    assert!(!text.contains("PRIVATE KEY"), "private key echoed");
    assert!(created.get("apiv3_key").is_none() && created.get("merchant_private_key_pem").is_none());

    // At rest they are sealed, and open to what was sent.
    let (apiv3_sealed, key_sealed) = sealed_columns(&app, id).await;
    assert!(apiv3_sealed.starts_with(&format!("v2.{}.", app.state.keyring().current_id())));
    assert!(!apiv3_sealed.contains(APIV3_KEY));
    assert!(!key_sealed.contains("PRIVATE KEY"));
    let opened = app.state.keyring().open_string(&PROVIDER_APIV3_KEY.row(id), &apiv3_sealed).expect("opens");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), APIV3_KEY);
    let opened = app.state.keyring().open_string(&PROVIDER_PRIVATE_KEY.row(id), &key_sealed).expect("opens");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened).trim(), testdata("merchant_key.pem").trim());

    let (status, fetched) = app.get(&format!("/api/v1/providers/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, created);
    let (status, list) = app.get("/api/v1/providers").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["next_cursor"], Value::Null);

    // PATCH changes what it names and nothing else; a new APIv3 key is sealed anew.
    let new_key = "ZYXWVUTSRQPONMLKJIHGFEDCBA987654";
    let (status, patched) = app
        .patch(
            &format!("/api/v1/providers/{id}"),
            &json!({"name": "新名字", "apiv3_key": new_key, "merchant_cert_pem": null}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"], "新名字");
    assert_eq!(patched["merchant_cert_pem"], Value::Null);
    assert_eq!(patched["default_auto_refund"], true);
    assert_eq!(patched["platform_cert_serial"], PLATFORM_SERIAL, "an untouched certificate stays");
    let (apiv3_after, key_after) = sealed_columns(&app, id).await;
    assert_ne!(apiv3_after, apiv3_sealed);
    assert_eq!(key_after, key_sealed, "an untouched secret is not re-sealed");
    let opened = app.state.keyring().open_string(&PROVIDER_APIV3_KEY.row(id), &apiv3_after).expect("opens");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), new_key);

    // Every change is in the audit log, without values.
    let mut conn = app.state.store().conn().await.expect("conn");
    let entries = wxrisk::store::audit::list(
        &mut conn,
        Some(("provider", &id.to_string())),
        wxrisk::store::Page { after_id: 0, limit: 10 },
    )
    .await
    .expect("audit");
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["provider.update", "provider.create"]);
    assert_eq!(entries[0].actor, "token:test");
    assert!(entries[0].detail.contains("apiv3_key") && !entries[0].detail.contains(new_key));
    drop(conn);

    let (status, _) = app.delete(&format!("/api/v1/providers/{id}")).await;
    assert_eq!(status, 204);
    let (status, body) = app.get(&format!("/api/v1/providers/{id}")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
    assert_eq!(app.count("platform_certificates").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn public_key_mode_needs_no_platform_certificate() {
    let app = spawn_app().await;
    let mut body = provider_body("1900000109");
    body["wechatpay_public_key_id"] = json!("PUB_KEY_ID_0116571234562024052000123400000000");
    body["wechatpay_public_key_pem"] = json!(testdata("wechatpay_public_key.pem"));
    let (status, created) = app.post("/api/v1/providers", &body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["wechatpay_public_key_id"], "PUB_KEY_ID_0116571234562024052000123400000000");
    assert_eq!(created["platform_certificates"], json!([]));
    app.stop().await;
}

/// Each case: a change to a valid body, the code and field the API must answer with.
fn bad_inputs() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let mut cases = Vec::new();
    let mut add = |name, change: Value, code, field| cases.push((name, change, code, field));
    add("mchid with a letter", json!({"mchid": "19000001O9"}), "INVALID_FIELD", "mchid");
    add("mchid negative", json!({"mchid": "-1900000109"}), "INVALID_FIELD", "mchid");
    add("mchid as a number", json!({"mchid": 1900000109}), "INVALID_FIELD", "mchid");
    add("APIv3 key of 31 bytes", json!({"apiv3_key": "0123456789abcdefABCDEF012345678"}), "INVALID_FIELD", "apiv3_key");
    add(
        "APIv3 key of 33 bytes",
        json!({"apiv3_key": "0123456789abcdefABCDEF01234567890"}),
        "INVALID_FIELD",
        "apiv3_key",
    );
    add(
        "private key not PEM",
        json!({"merchant_private_key_pem": "not a key"}),
        "INVALID_FIELD",
        "merchant_private_key_pem",
    );
    add(
        "private key 1024 bits",
        json!({"merchant_private_key_pem": testdata("short_key.pem")}),
        "INVALID_FIELD",
        "merchant_private_key_pem",
    );
    add(
        "private key EC",
        json!({"merchant_private_key_pem": testdata("ec_key.pem")}),
        "INVALID_FIELD",
        "merchant_private_key_pem",
    );
    add(
        "certificate not PEM",
        json!({"merchant_cert_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}),
        "INVALID_FIELD",
        "merchant_cert_pem",
    );
    add(
        "certificate serial differs",
        json!({"merchant_cert_serial": "5E7ABC0123456789ABCDEF0123456789ABCDEF02"}),
        "INVALID_FIELD",
        "merchant_cert_pem",
    );
    add(
        "certificate of another key",
        json!({"merchant_cert_pem": testdata("platform_cert.pem"), "merchant_cert_serial": PLATFORM_SERIAL}),
        "INVALID_FIELD",
        "merchant_cert_pem",
    );
    add("serial not hex", json!({"merchant_cert_serial": "XYZ"}), "INVALID_FIELD", "merchant_cert_serial");
    add("platform certificate garbage", json!({"platform_cert_pem": "garbage"}), "INVALID_FIELD", "platform_cert_pem");
    add(
        "platform serial differs",
        json!({"platform_cert_pem": testdata("platform_cert.pem"), "platform_cert_serial": "ABCDEF"}),
        "INVALID_FIELD",
        "platform_cert_serial",
    );
    add(
        "public key id without key",
        json!({"wechatpay_public_key_id": "PUB_KEY_ID_0116571234562024052000123400000000"}),
        "INVALID_FIELD",
        "wechatpay_public_key_pem",
    );
    add(
        "public key not a key",
        json!({"wechatpay_public_key_id": "PUB_KEY_ID_01165712345620240520", "wechatpay_public_key_pem": testdata("merchant_cert.pem")}),
        "INVALID_FIELD",
        "wechatpay_public_key_pem",
    );
    add(
        "public key id malformed",
        json!({"wechatpay_public_key_id": "KEY_1", "wechatpay_public_key_pem": testdata("wechatpay_public_key.pem")}),
        "INVALID_FIELD",
        "wechatpay_public_key_id",
    );
    add("appid malformed", json!({"appid": "wx123"}), "INVALID_FIELD", "appid");
    add(
        "refund URL over http",
        json!({"refund_notify_url": "http://risk.example.com/r"}),
        "INVALID_FIELD",
        "refund_notify_url",
    );
    add("reply too long", json!({"default_reply": "好".repeat(201)}), "INVALID_FIELD", "default_reply");
    add("empty name", json!({"name": "  "}), "INVALID_FIELD", "name");
    add("unknown field", json!({"apiv3key": "x"}), "UNKNOWN_FIELD", "apiv3key");
    add("wrong type", json!({"default_auto_refund": "yes"}), "INVALID_FIELD", "default_auto_refund");
    cases
}

#[tokio::test]
async fn bad_provider_input_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    let audit_before = app.count("audit_log").await;
    for (name, change, code, field) in bad_inputs() {
        let mut body = provider_body("1900000109");
        for (key, value) in change.as_object().expect("object") {
            body[key] = value.clone();
        }
        let (status, answer) = app.post("/api/v1/providers", &body).await;
        assert_eq!(status, 400, "{name}: {answer}");
        assert_eq!(answer["code"], code, "{name}: {answer}");
        assert_eq!(answer["field"], field, "{name}: {answer}");
        assert!(!answer["message"].as_str().unwrap_or_default().is_empty(), "{name}: a message");
        assert!(!answer.to_string().contains(APIV3_KEY), "{name}: the key must not be echoed");
    }
    let mut missing = provider_body("1900000109");
    missing.as_object_mut().expect("object").remove("apiv3_key");
    let (status, answer) = app.post("/api/v1/providers", &missing).await;
    assert_eq!(
        (status, answer["code"].as_str(), answer["field"].as_str()),
        (400, Some("MISSING_FIELD"), Some("apiv3_key"))
    );

    let (status, answer) = app.post_raw("/api/v1/providers", "application/json", "{\"name\": ").await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("MALFORMED_JSON")), "{answer}");
    let (status, answer) = app.post_raw("/api/v1/providers", "application/json", "[1, 2]").await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) =
        app.post_raw("/api/v1/providers", "text/plain", provider_body("1900000109").to_string()).await;
    assert_eq!((status, answer["code"].as_str()), (415, Some("UNSUPPORTED_MEDIA_TYPE")), "{answer}");
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (status, answer) = app.post_raw("/api/v1/providers", "application/json", huge).await;
    assert_eq!((status, answer["code"].as_str()), (413, Some("PAYLOAD_TOO_LARGE")), "{answer}");

    assert_eq!(app.count("providers").await, 0);
    assert_eq!(app.count("platform_certificates").await, 0);
    assert_eq!(app.count("audit_log").await, audit_before);

    // A duplicate mchid: 409 naming the field, and still one provider.
    app.create_provider("1900000109").await;
    let (status, answer) = app.post("/api/v1/providers", &provider_body("1900000109")).await;
    assert_eq!((status, answer["code"].as_str(), answer["field"].as_str()), (409, Some("CONFLICT"), Some("mchid")));
    assert_eq!(app.count("providers").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn patch_validates_the_whole_resulting_provider() {
    let app = spawn_app().await;
    let id = app.create_provider("1900000109").await;
    let path = format!("/api/v1/providers/{id}");
    let (_, before) = app.get(&path).await;
    let (apiv3_before, key_before) = sealed_columns(&app, id).await;

    let cases = [
        (json!({"merchant_cert_serial": "5E7ABC0123456789ABCDEF0123456789ABCDEF02"}), "merchant_cert_pem"),
        (json!({"merchant_private_key_pem": testdata("other_key.pem")}), "merchant_cert_pem"),
        (json!({"name": null}), "name"),
        (json!({"apiv3_key": null}), "apiv3_key"),
        (json!({"apiv3_key": "short"}), "apiv3_key"),
        (
            json!({"wechatpay_public_key_id": "PUB_KEY_ID_0116571234562024052000123400000000"}),
            "wechatpay_public_key_pem",
        ),
        (json!({"mchid": "abc"}), "mchid"),
    ];
    for (change, field) in cases {
        let (status, answer) = app.patch(&path, &change).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some(field)), "{change}: {answer}");
    }
    let (_, after) = app.get(&path).await;
    assert_eq!(after, before, "refused patches change nothing");
    assert_eq!(sealed_columns(&app, id).await, (apiv3_before, key_before));

    // Key and certificate replaced together is consistent, and accepted.
    let (status, answer) = app
        .patch(&path, &json!({"merchant_private_key_pem": testdata("other_key.pem"), "merchant_cert_pem": testdata("platform_cert.pem"), "merchant_cert_serial": PLATFORM_SERIAL}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["merchant_cert_serial"], PLATFORM_SERIAL);

    // A second provider cannot take the first one's mchid.
    let other = app.create_provider("1900000110").await;
    let (status, answer) = app.patch(&format!("/api/v1/providers/{other}"), &json!({"mchid": "1900000109"})).await;
    assert_eq!((status, answer["field"].as_str()), (409, Some("mchid")), "{answer}");
    let (status, _) = app.patch("/api/v1/providers/999", &json!({"name": "x"})).await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/api/v1/providers/abc").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_provider_with_sub_merchants_cannot_be_deleted() {
    let app = spawn_app().await;
    let id = app.create_provider("1900000109").await;
    let merchant = app.create_merchant(id, "1900000201").await;
    let (status, answer) = app.delete(&format!("/api/v1/providers/{id}")).await;
    assert_eq!((status, answer["code"].as_str()), (409, Some("CONFLICT")), "{answer}");
    let (status, _) = app.delete(&format!("/api/v1/merchants/{merchant}")).await;
    assert_eq!(status, 204);
    let (status, _) = app.delete(&format!("/api/v1/providers/{id}")).await;
    assert_eq!(status, 204);
    app.stop().await;
}

#[tokio::test]
async fn every_api_route_needs_a_valid_token() {
    let app = spawn_app().await;
    let routes = [
        ("GET", "/api/v1/providers"),
        ("POST", "/api/v1/providers"),
        ("GET", "/api/v1/providers/1"),
        ("PATCH", "/api/v1/providers/1"),
        ("DELETE", "/api/v1/providers/1"),
        ("GET", "/api/v1/merchants"),
        ("POST", "/api/v1/merchants"),
        ("GET", "/api/v1/channels"),
        ("POST", "/api/v1/channels"),
        ("GET", "/api/v1/jobs"),
        ("POST", "/api/v1/jobs/1/retry"),
    ];
    let bad_tokens: [Option<&str>; 4] =
        [None, Some("Bearer wxr_not-a-real-token"), Some("Basic dXNlcjpwYXNz"), Some("Bearer ")];
    for (method, path) in routes {
        for header in bad_tokens {
            let mut request = app.client.request(method.parse().expect("method"), app.url(path));
            if let Some(header) = header {
                request = request.header("authorization", header);
            }
            let response = request.header("content-type", "application/json").body("{}").send().await.expect("send");
            let (status, body) = decode(response).await;
            assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")), "{method} {path} {header:?}");
        }
    }
    // A revoked token stops working at once.
    let (status, _) = app.get("/api/v1/providers").await;
    assert_eq!(status, 200);
    let mut conn = app.state.store().conn().await.expect("conn");
    wxrisk::store::tokens::revoke(&mut conn, "test", app.now()).await.expect("revoke").expect("was active");
    drop(conn);
    let (status, _) = app.get("/api/v1/providers").await;
    assert_eq!(status, 401);
    app.stop().await;
}

#[tokio::test]
async fn openapi_document_lists_the_api() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/api/v1/openapi.json")).send().await.expect("GET");
    let (status, doc) = decode(response).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().expect("version").starts_with('3'));
    for path in [
        "/providers",
        "/providers/{id}",
        "/merchants",
        "/merchants/{id}",
        "/channels",
        "/channels/{id}",
        "/channels/{id}/test",
        "/deliveries",
        "/deliveries/{id}",
        "/deliveries/{id}/retry",
        "/providers/{id}/templates",
        "/providers/{id}/templates/{event_kind}/{locale}",
        "/jobs",
        "/jobs/{id}/retry",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    let provider_in = &doc["components"]["schemas"]["ProviderIn"]["properties"];
    for field in [
        "name",
        "mchid",
        "appid",
        "merchant_cert_serial",
        "merchant_private_key_pem",
        "merchant_cert_pem",
        "platform_cert_serial",
        "platform_cert_pem",
        "wechatpay_public_key_id",
        "wechatpay_public_key_pem",
        "apiv3_key",
        "refund_notify_url",
        "default_reply",
        "default_auto_refund",
    ] {
        assert!(provider_in.get(field).is_some(), "ProviderIn.{field} missing");
    }
    assert_eq!(provider_in["apiv3_key"]["writeOnly"], true);
    app.stop().await;
}
