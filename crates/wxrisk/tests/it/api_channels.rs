//! `/api/v1/channels`: owners, per-kind settings, write-only sealed credentials.

use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use wxrisk::store::secrets::CHANNEL_SECRETS;

use crate::helpers::*;

const SMTP_PASSWORD: &str = "AUTHCODE1234ABCD";

fn email_settings() -> Value {
    json!({"preset": "163", "username": "alerts@163.com", "password": SMTP_PASSWORD, "from": "wxrisk <alerts@163.com>", "to": ["ops@example.com"]})
}

async fn opened_secrets(app: &TestApp, id: i64) -> Value {
    let mut conn = app.state.store().conn().await.expect("conn");
    let row = wxrisk::store::channels::get(&mut conn, id).await.expect("query").expect("row");
    assert!(!row.settings.contains(SMTP_PASSWORD), "public settings hold no secret");
    match row.secrets_sealed {
        None => json!({}),
        Some(sealed) => {
            assert!(!sealed.contains(SMTP_PASSWORD));
            let plain = app.state.keyring().open(&CHANNEL_SECRETS.row(id), &sealed).expect("opens");
            serde_json::from_slice(plain.expose_secret()).expect("json")
        }
    }
}

#[tokio::test]
async fn provider_channel_keeps_its_password_sealed_and_write_only() {
    let app = spawn_app().await;
    let provider = app.create_provider("1900000109").await;
    let (status, created) = app
        .post(
            "/api/v1/channels",
            &json!({"provider_id": provider, "kind": "email", "name": "值班邮箱", "settings": email_settings()}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    assert_eq!(created["merchant_id"], Value::Null);
    assert_eq!(created["kind"], "email");
    assert_eq!(created["settings"]["host"], "smtp.163.com");
    assert_eq!(created["settings"]["port"], 465);
    assert_eq!(created["secrets_set"], json!(["password"]));
    assert!(!created.to_string().contains(SMTP_PASSWORD));
    assert_eq!(opened_secrets(&app, id).await, json!({"password": SMTP_PASSWORD}));

    // Changing the recipients keeps the password; null removes a setting.
    let path = format!("/api/v1/channels/{id}");
    let (status, patched) = app.patch(&path, &json!({"settings": {"to": ["a@example.com", "b@example.com"]}})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["settings"]["to"], json!(["a@example.com", "b@example.com"]));
    assert_eq!(patched["secrets_set"], json!(["password"]));
    assert_eq!(opened_secrets(&app, id).await, json!({"password": SMTP_PASSWORD}));
    let (status, patched) = app.patch(&path, &json!({"settings": {"password": "NEWCODE"}, "enabled": false})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["enabled"], false);
    assert_eq!(opened_secrets(&app, id).await, json!({"password": "NEWCODE"}));
    let (status, patched) = app.patch(&path, &json!({"settings": {"password": null, "username": null}})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["secrets_set"], json!([]));

    // An update that would break the settings is refused and changes nothing.
    let (_, before) = app.get(&path).await;
    let (status, answer) = app.patch(&path, &json!({"settings": {"to": []}})).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("settings.to")), "{answer}");
    let (_, after) = app.get(&path).await;
    assert_eq!(before, after);

    let (status, _) = app.delete(&path).await;
    assert_eq!(status, 204);
    let (status, _) = app.get(&path).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn merchant_channels_by_id_or_mchid() {
    let app = spawn_app().await;
    let first = app.create_provider("1900000109").await;
    let second = app.create_provider("1900000110").await;
    let merchant = app.create_merchant(first, "1900000201").await;
    let robot = json!({"webhook_key": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"});

    let (status, by_id) =
        app.post("/api/v1/channels", &json!({"merchant_id": merchant, "kind": "wecom_robot", "settings": robot})).await;
    assert_eq!(status, 201, "{by_id}");
    assert_eq!((by_id["provider_id"].as_i64(), by_id["merchant_id"].as_i64()), (Some(first), Some(merchant)));
    assert_eq!(by_id["merchant_mchid"], "1900000201");
    assert_eq!(by_id["name"], "wecom_robot");
    assert_eq!(by_id["secrets_set"], json!(["webhook_key"]));
    assert!(!by_id.to_string().contains("693a91f6"), "the robot key is a credential");

    let sms = json!({"secret_id": "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "secret_key": "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
                     "sdk_app_id": "1400006666", "sign_name": "腾讯云", "template_id": "1110", "phone_numbers": ["13800138000"]});
    let (status, by_mchid) = app
        .post("/api/v1/channels", &json!({"merchant_mchid": "1900000201", "kind": "tencent_sms", "settings": sms}))
        .await;
    assert_eq!(status, 201, "{by_mchid}");
    assert_eq!(by_mchid["merchant_id"].as_i64(), Some(merchant));
    assert_eq!(by_mchid["settings"]["phone_numbers"], json!(["+8613800138000"]));

    // The same mchid under a second provider makes the bare mchid ambiguous.
    app.create_merchant(second, "1900000201").await;
    let (status, answer) = app
        .post("/api/v1/channels", &json!({"merchant_mchid": "1900000201", "kind": "tencent_sms", "settings": sms}))
        .await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("merchant_mchid")), "{answer}");
    let (status, answer) = app
        .post(
            "/api/v1/channels",
            &json!({"provider_id": second, "merchant_mchid": "1900000201", "kind": "tencent_sms", "settings": sms}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["provider_id"].as_i64(), Some(second));

    let provider_channel = app
        .post("/api/v1/channels", &json!({"provider_id": first, "kind": "email", "settings": email_settings()}))
        .await;
    assert_eq!(provider_channel.0, 201);
    let (_, list) = app.get(&format!("/api/v1/channels?provider_id={first}")).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(3));
    let (_, list) = app.get(&format!("/api/v1/channels?provider_id={first}&provider_only=true")).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let (_, list) = app.get(&format!("/api/v1/channels?merchant_id={merchant}&kind=tencent_sms")).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let (status, _) = app.get("/api/v1/channels?kind=fax").await;
    assert_eq!(status, 400);

    // Deleting the sub-merchant deletes its channels.
    let (status, _) = app.delete(&format!("/api/v1/merchants/{merchant}")).await;
    assert_eq!(status, 204);
    let (_, list) = app.get(&format!("/api/v1/channels?provider_id={first}")).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    app.stop().await;
}

#[tokio::test]
async fn bad_channel_input_writes_nothing() {
    let app = spawn_app().await;
    let provider = app.create_provider("1900000109").await;
    let cases = [
        (json!({"provider_id": provider, "kind": "fax", "settings": {}}), "kind"),
        (json!({"kind": "email", "settings": email_settings()}), "provider_id"),
        (json!({"provider_id": 999, "kind": "email", "settings": email_settings()}), "provider_id"),
        (json!({"merchant_id": 999, "kind": "email", "settings": email_settings()}), "merchant_id"),
        (json!({"merchant_mchid": "1900000999", "kind": "email", "settings": email_settings()}), "merchant_mchid"),
        (json!({"provider_id": provider, "kind": "email", "settings": "smtp://x"}), "settings"),
        (
            json!({"provider_id": provider, "kind": "email", "settings": {"host": "smtp.example.com", "from": "a@b.cn", "to": ["nope"]}}),
            "settings.to[0]",
        ),
        (
            json!({"provider_id": provider, "kind": "email", "settings": {"host": "smtp.example.com", "from": "a@b.cn", "to": ["a@b.cn"], "tls": true}}),
            "settings.tls",
        ),
        (
            json!({"provider_id": provider, "kind": "webhook", "settings": {"url": "https://hooks.example.com", "secret": "plain"}}),
            "settings.secret",
        ),
        (
            json!({"provider_id": provider, "kind": "dingtalk_robot", "settings": {"secret": "SECabc"}}),
            "settings.access_token",
        ),
        (
            json!({"provider_id": provider, "kind": "wechat_template", "settings": {"appid": "wxd678efh567hg6787", "secret": "0123456789abcdef0123456789abcdef", "template_id": "tpl", "openids": []}}),
            "settings.openids",
        ),
        (
            json!({"provider_id": provider, "kind": "wechat_template", "settings": {"appid": "wxd678efh567hg6787", "secret": "0123456789abcdef0123456789abcdef", "template_id": "tpl", "openids": ["oABC"]}}),
            "settings.field_map",
        ),
        (
            json!({"provider_id": provider, "kind": "wechat_template", "settings": {"appid": "wxd678efh567hg6787", "secret": "0123456789abcdef0123456789abcdef", "template_id": "tpl", "openids": ["oABC"], "field_map": {"thing1": "shoe_size"}}}),
            "settings.field_map.thing1",
        ),
        (
            json!({"provider_id": provider, "kind": "email", "settings": {"host": "smtp.example.com", "from": "a@b.cn", "to": ["a@b.cn"], "ca_pem": "not a certificate"}}),
            "settings.ca_pem",
        ),
        (
            json!({"provider_id": provider, "kind": "email", "settings": {"host": "smtp.example.com", "security": "none", "from": "a@b.cn", "to": ["a@b.cn"]}}),
            "settings.security",
        ),
        (
            json!({"provider_id": provider, "kind": "email", "settings": {"preset": "163", "username": "alerts@163.com", "password": "x", "from": "other@163.com", "to": ["a@b.cn"]}}),
            "settings.from",
        ),
        (
            json!({"provider_id": provider, "kind": "tencent_sms", "settings": {"secret_id": "AKID1", "secret_key": "k", "sdk_app_id": "1400006666", "sign_name": "腾讯云", "template_id": "1110", "phone_numbers": ["12345"]}}),
            "settings.phone_numbers[0]",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = app.post("/api/v1/channels", &body).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some(field)), "{body}: {answer}");
    }
    assert_eq!(app.count("channels").await, 0);
    app.stop().await;
}
