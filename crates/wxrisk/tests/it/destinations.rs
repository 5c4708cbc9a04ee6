//! Where channels may send: non-public destinations are refused unless `notify.allow_private_destinations`
//! (checked on literal addresses when a channel is written, and on resolved addresses when sending); a moved
//! webhook does not keep its signing secret; a test send shows at most 2 KiB of the answer.

use serde_json::{Value, json};
use wxrisk::notify::EventKind;

use crate::helpers::*;
use crate::notify::{SUB_MCHID, WEBHOOK_SECRET, channel, delivery, notify};
use crate::notify_email::SmtpServer;

const SMTP_USER: &str = "alerts@163.com";
const SMTP_CODE: &str = "AUTHCODE1234ABCD";

/// An app on `db` whose notification services are `sim`'s, with private destinations allowed or not.
pub async fn app_on(db: TestDb, sim: &wxsim::Simulator, allow_private: bool) -> TestApp {
    let mut env = notify_env(&sim.base_url());
    env.push(("WXRISK_NOTIFY__ALLOW_PRIVATE_DESTINATIONS", allow_private.to_string()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app_env(db, &pairs, |b| b).await
}

async fn webhook_messages(control: &SimControl) -> usize {
    control.get("/webhooks/messages").await.as_array().map_or(0, Vec::len)
}

async fn test_send(app: &TestApp, id: i64) -> Value {
    let (status, body) = app.post(&format!("/api/v1/channels/{id}/test"), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn private_destinations_are_refused_unless_allowed() {
    let sim = start_sim().await;
    let control = SimControl::new(&sim);
    let hook = control.post("/webhooks", json!({"name": "erp", "secret": WEBHOOK_SECRET})).await;
    let literal_url = hook["url"].as_str().expect("url").to_owned();
    assert!(literal_url.starts_with("http://127.0.0.1:"), "{literal_url}");
    let named_url = literal_url.replacen("127.0.0.1", "localhost", 1);
    let smtp = SmtpServer::start("tls");

    // Allowed: the channels are made and they deliver (the test harness and the simulator work this way).
    let app = app_on(TestDb::new().await, &sim, true).await;
    let provider_id = app.create_provider("1900000100").await;
    let owner = json!({"provider_id": provider_id});
    let by_address =
        channel(&app, owner.clone(), "webhook", json!({"url": literal_url, "secret": WEBHOOK_SECRET})).await;
    let by_name = channel(&app, owner.clone(), "webhook", json!({"url": named_url, "secret": WEBHOOK_SECRET})).await;
    let email = channel(&app, owner.clone(), "email", smtp.settings("tls", SMTP_CODE)).await;
    for id in [by_address, by_name, email] {
        let answer = test_send(&app, id).await;
        assert_eq!(answer["ok"], true, "allowed: {answer}");
    }
    assert_eq!(webhook_messages(&control).await, 2);
    assert_eq!(smtp.mails().len(), 1);
    let db = app.stop().await;

    // The same channels with the setting false (its default): refused when sending, permanently, and nothing
    // reaches the receivers — for the literal address, and for the name, whose resolution is checked.
    let app = app_on(db, &sim, false).await;
    for id in [by_address, by_name, email] {
        let answer = test_send(&app, id).await;
        assert_eq!((answer["ok"].as_bool(), answer["code"].as_str()), (Some(false), Some("destination_refused")));
        assert_eq!(answer["transient"], false, "{answer}");
        let text = answer["answer"].as_str().expect("answer");
        assert!(text.contains("notify.allow_private_destinations") && text.contains("loopback"), "{text}");
    }
    let named = test_send(&app, by_name).await;
    assert!(named["answer"].as_str().is_some_and(|a| a.contains("resolves to")), "checked after resolving: {named}");
    let ids = notify(&app, provider_id, EventKind::ViolationPunish, "violation:R9", Some(SUB_MCHID)).await;
    assert_eq!(ids.len(), 3);
    app.worker().run_pending().await.expect("run");
    for id in &ids {
        let refused = delivery(&app, *id).await;
        assert_eq!(refused["status"], "dead", "not retried: {refused}");
        assert_eq!(
            (refused["last_code"].as_str(), refused["attempts"].as_i64()),
            (Some("destination_refused"), Some(1))
        );
    }
    assert_eq!(webhook_messages(&control).await, 2, "no webhook went out");
    assert_eq!(smtp.mails().len(), 1, "no mail went out");

    // Writing a literal non-public address is refused at once, naming the setting; names wait for sending.
    let hook_at = |url: &str| json!({"provider_id": provider_id, "kind": "webhook", "settings": {"url": url, "secret": WEBHOOK_SECRET}});
    for url in [
        literal_url.as_str(),
        "https://10.20.30.40/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:192.168.1.1]/hook",
        "https://[fd00::1]/hook",
        "https://100.64.0.1/hook",
        "http://localhost:8080/hook",
    ] {
        let (status, answer) = app.post("/api/v1/channels", &hook_at(url)).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some("settings.url")), "{url}: {answer}");
    }
    let (status, answer) = app.post("/api/v1/channels", &hook_at("https://hooks.example.com/wxrisk")).await;
    assert_eq!(status, 201, "a public name: {answer}");
    let mail_at = |host: &str| {
        json!({"provider_id": provider_id, "kind": "email", "settings": {"host": host, "port": 465, "username": SMTP_USER,
               "password": SMTP_CODE, "from": SMTP_USER, "to": ["ops@example.com"]}})
    };
    for host in ["127.0.0.1", "192.168.1.10", "localhost"] {
        let (status, answer) = app.post("/api/v1/channels", &mail_at(host)).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some("settings.host")), "{host}: {answer}");
    }
    let (status, answer) =
        app.patch(&format!("/api/v1/channels/{email}"), &json!({"settings": {"host": "10.0.0.25"}})).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("settings.host")), "{answer}");
    app.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn a_moved_webhook_does_not_keep_its_signing_secret() {
    let (app, sim, control) = crate::notify::app_with_sim().await;
    let erp = control.post("/webhooks", json!({"name": "erp", "secret": WEBHOOK_SECRET})).await;
    let other = control.post("/webhooks", json!({"name": "elsewhere", "secret": WEBHOOK_SECRET})).await;
    let provider_id = app.create_provider("1900000100").await;
    let hook = channel(
        &app,
        json!({"provider_id": provider_id}),
        "webhook",
        json!({"url": erp["url"], "secret": WEBHOOK_SECRET}),
    )
    .await;
    let path = format!("/api/v1/channels/{hook}");
    let (status, moved) = app.patch(&path, &json!({"settings": {"url": other["url"]}})).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!((moved["secrets_cleared"].clone(), moved["secrets_set"].clone()), (json!(["secret"]), json!([])));
    let answer = test_send(&app, hook).await;
    assert_eq!(answer["code"], "credential_cleared", "{answer}");
    assert_eq!(webhook_messages(&control).await, 0, "nothing signed with the old secret went out");
    // The secret is required for a webhook: a change that leaves it out says why.
    let (status, refused) = app.patch(&path, &json!({"settings": {"url": erp["url"]}})).await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("settings.secret")), "{refused}");
    assert!(refused["message"].as_str().is_some_and(|m| m.contains("cleared")), "{refused}");
    let (status, whole) = app.patch(&path, &json!({"settings": {"secret": WEBHOOK_SECRET}})).await;
    assert_eq!(status, 200, "{whole}");
    assert_eq!(whole["secrets_cleared"], json!([]));
    assert_eq!(test_send(&app, hook).await["ok"], true);
    // Changes that do not move the secret keep it.
    let (status, kept) = app.patch(&path, &json!({"name": "ERP"})).await;
    assert_eq!((status, kept["secrets_set"].clone()), (200, json!(["secret"])));
    // The API document describes the field.
    let response = app.client.get(app.url("/api/v1/openapi.json")).send().await.expect("GET");
    let doc: Value = response.json().await.expect("json");
    let field = &doc["components"]["schemas"]["ChannelOut"]["properties"]["secrets_cleared"];
    assert!(field["description"].as_str().is_some_and(|d| d.contains("set again")), "{field}");
    let field = &doc["components"]["schemas"]["TestSendOut"]["properties"]["answer_truncated"];
    assert!(field.is_object(), "{field}");
    sim.stop().await;
}

#[tokio::test]
async fn a_test_send_shows_at_most_2_kib_of_the_answer() {
    let (app, sim, control) = crate::notify::app_with_sim().await;
    let erp = control.post("/webhooks", json!({"name": "erp", "secret": WEBHOOK_SECRET})).await;
    let provider_id = app.create_provider("1900000100").await;
    let hook = channel(
        &app,
        json!({"provider_id": provider_id}),
        "webhook",
        json!({"url": erp["url"], "secret": WEBHOOK_SECRET}),
    )
    .await;
    // The receiver answers 200 with 9 KB of three-byte characters.
    let long = "答".repeat(3000);
    control
        .post(
            "/faults",
            json!({"path": "/webhooks/erp", "count": 1, "action": {"kind": "respond", "status": 200, "message": long}}),
        )
        .await;
    let answer = test_send(&app, hook).await;
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["answer_truncated"], true, "{answer}");
    let text = answer["answer"].as_str().expect("answer");
    let (shown, note) = text.split_once('…').expect("marked as cut");
    assert!(shown.len() <= 2048 && shown.len() > 2000, "{} bytes shown", shown.len());
    assert!(shown.starts_with("{\"code\":\"SYSTEM_ERROR\""), "{shown}");
    assert!(note.contains("cut:") && note.contains("bytes in all"), "{note}");
    // A short answer is shown whole.
    let answer = test_send(&app, hook).await;
    assert_eq!(answer["answer_truncated"], false, "{answer}");
    sim.stop().await;
}
