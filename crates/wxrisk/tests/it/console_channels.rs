//! The console's channel pages: a sub-merchant's channels kept by operators and test-sent through the simulator's
//! robot; the providers' own channels kept by admins only, test-sent through a real SMTP server (aiosmtpd), their
//! credentials never shown, and a destination changed without its credential clearing it with a warning. And the
//! API agrees: sub-merchants and their channels need `operate`, a provider's own channel `admin`.

use serde_json::{Value, json};
use wxrisk::auth::Role;

use crate::console_client::{ConsoleClient, hidden_value};
use crate::console_merchants::{SP_MCHID, audit};
use crate::helpers::*;
use crate::notify::app_with_sim;
use crate::notify_email::SmtpServer;

const USER: &str = "alerts@163.com";
const AUTH_CODE: &str = "AUTHCODE1234ABCD";

async fn channels_of(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v1/channels?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn operators_keep_a_sub_merchants_channels_and_test_send_through_the_simulators_robot() {
    let (app, sim, control) = app_with_sim().await;
    control.post("/robots", json!({"kind": "wecom", "token": "shop-key-0001"})).await;
    let p = app.create_provider(SP_MCHID).await;
    let m = app.create_merchant(p, "1900000109").await;
    let mut viewer = ConsoleClient::signed_in(&app, "watcher", Role::Viewer).await;
    let mut ops = ConsoleClient::signed_in(&app, "ops", Role::Operator).await;

    let merchant_page = format!("/console/merchants/{m}");
    let page = viewer.get(&merchant_page).await;
    assert!(page.has("还没有通知渠道") && !page.has("添加通知渠道"), "{}", page.body);
    assert_eq!(viewer.get(&format!("/console/merchants/{m}/channels/new?kind=wecom_robot")).await.status, 403);
    let chooser = ops.get(&format!("/console/merchants/{m}/channels/new")).await;
    assert!(
        chooser.has("企业微信机器人") && chooser.has("腾讯云短信") && !chooser.has("name=\"s."),
        "{}",
        chooser.body
    );
    let form = ops.get(&format!("/console/merchants/{m}/channels/new?kind=wecom_robot")).await;
    assert_eq!(form.status, 200);
    assert!(form.has("name=\"s.webhook_key\"") && form.has("type=\"password\""), "{}", form.body);
    let idem = hidden_value(&form.body, "idem").expect("key");
    let fields = [
        ("kind", "wecom_robot"),
        ("name", "门店群"),
        ("enabled", "on"),
        ("s.webhook_key", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=shop-key-0001"),
        ("s.mentioned_list", "@all"),
        ("s.mentioned_mobile_list", ""),
        ("idem", idem.as_str()),
    ];
    let path = format!("/console/merchants/{m}/channels");
    assert_eq!(viewer.post(&path, &fields).await.status, 403);
    assert_eq!(ops.post_raw(&path, &fields).await.status, 403);
    assert_eq!(app.count("channels").await, 0);
    let created = ops.post(&path, &fields).await;
    assert_eq!((created.status, created.location.as_deref()), (303, Some(merchant_page.as_str())), "{}", created.body);
    let page = ops.get(&merchant_page).await;
    assert!(
        page.has("门店群") && page.has("通知渠道已添加") && page.has("已设置") && page.has("@ @all"),
        "{}",
        page.body
    );
    assert_eq!(ops.post(&path, &fields).await.status, 303, "the same form twice");
    assert_eq!(app.count("channels").await, 1);
    assert!(ops.get(&merchant_page).await.has("这个表单已经提交过"));
    assert!(!page.has("shop-key-0001"), "the robot's key is a credential");
    let listed = channels_of(&app, &format!("merchant_id={m}")).await;
    let id = listed[0]["id"].as_i64().expect("id");
    assert_eq!(listed[0]["settings"]["mentioned_list"], json!(["@all"]));

    // Test send: the simulator's robot answers, and the page shows it.
    let test = format!("/console/channels/{id}/test");
    assert_eq!(viewer.post(&test, &[]).await.status, 403);
    assert_eq!(ops.post_raw(&test, &[]).await.status, 403);
    let answer = ops.post(&test, &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.has("对方已接受测试消息") && answer.has("errmsg"), "{}", answer.body);
    let received = control.get("/robots/messages").await.to_string();
    assert!(received.contains("shop-key-0001") && received.contains("测试消息"), "{received}");

    // Disable, edit (an empty key field keeps the key), a bad value, remove.
    let toggle = format!("/console/channels/{id}/enabled");
    assert_eq!(viewer.post(&toggle, &[("enabled", "false")]).await.status, 403);
    assert_eq!(ops.post(&toggle, &[("enabled", "false")]).await.status, 303);
    assert_eq!(channels_of(&app, &format!("merchant_id={m}")).await[0]["enabled"], false);
    let edit = ops.get(&format!("/console/channels/{id}/edit")).await;
    assert_eq!(edit.status, 200);
    assert!(edit.has("已设置；留空则保留原值") && !edit.has("shop-key-0001") && edit.has("@all"), "{}", edit.body);
    let change = [
        ("name", "门店群（新）"),
        ("enabled", "on"),
        ("s.webhook_key", ""),
        ("s.mentioned_list", ""),
        ("s.mentioned_mobile_list", ""),
    ];
    assert_eq!(viewer.post(&format!("/console/channels/{id}"), &change).await.status, 403);
    let saved = ops.post(&format!("/console/channels/{id}"), &change).await;
    assert_eq!((saved.status, saved.location.as_deref()), (303, Some(merchant_page.as_str())), "{}", saved.body);
    let after = &channels_of(&app, &format!("merchant_id={m}")).await[0];
    assert_eq!((after["name"].as_str(), after["enabled"].as_bool()), (Some("门店群（新）"), Some(true)), "{after}");
    assert_eq!(
        (after["secrets_set"].clone(), after["settings"]["mentioned_list"].clone()),
        (json!(["webhook_key"]), json!([]))
    );
    let bad = [("name", "x"), ("enabled", "on"), ("s.mentioned_list", &"a\n".repeat(51))];
    let refused = ops.post(&format!("/console/channels/{id}"), &bad).await;
    assert_eq!(refused.status, 400);
    assert!(refused.has("提醒成员（userid）") && refused.has("settings.mentioned_list"), "{}", refused.body);
    assert_eq!(viewer.get(&format!("/console/channels/{id}/edit")).await.status, 403);
    // Every action of a channel needs the form's token.
    for (path, fields) in [
        (format!("/console/channels/{id}"), change.to_vec()),
        (format!("/console/channels/{id}/enabled"), vec![("enabled", "false")]),
        (format!("/console/channels/{id}/delete"), vec![]),
    ] {
        assert_eq!(ops.post_raw(&path, &fields).await.status, 403, "{path}");
    }
    assert_eq!(channels_of(&app, &format!("merchant_id={m}")).await[0]["enabled"], true, "nothing changed");
    // In English: the sub-merchant's page, a channel form and a test send.
    assert_eq!(ops.get("/console/lang?to=en&next=/console").await.status, 303);
    let english = ops.get(&merchant_page).await;
    assert!(
        english.has("Notification channels") && english.has("Test send") && english.has("Risk score"),
        "{}",
        english.body
    );
    let english = ops.get(&format!("/console/merchants/{m}/channels/new?kind=dingtalk_robot")).await;
    assert!(english.has("New channel: DingTalk robot") && english.has("Signing secret"), "{}", english.body);
    let english = ops.post(&test, &[]).await;
    assert!(english.has("The service accepted the test message"), "{}", english.body);
    let english = ops.get(&format!("/console/merchants/{m}/edit")).await;
    assert!(english.has("Edit sub-merchant") && english.has("Reply text"), "{}", english.body);
    assert_eq!(ops.get("/console/lang?to=zh&next=/console").await.status, 303);
    assert_eq!(viewer.post(&format!("/console/channels/{id}/delete"), &[]).await.status, 403);
    assert_eq!(ops.post(&format!("/console/channels/{id}/delete"), &[]).await.status, 303);
    assert_eq!(app.count("channels").await, 0);

    let actions: Vec<String> = audit(&app)
        .await
        .into_iter()
        .filter(|(who, what)| who == "user:ops" && what.starts_with("channel."))
        .map(|(_, what)| what)
        .collect();
    assert_eq!(
        actions,
        ["channel.create", "channel.test", "channel.update", "channel.update", "channel.test", "channel.delete"]
    );
    sim.stop().await;
}

fn email_fields<'a>(
    provider: &'a str,
    port: &'a str,
    password: &'a str,
    to: &'a str,
    ca: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("kind", "email"),
        ("provider_id", provider),
        ("name", "运营邮箱"),
        ("enabled", "on"),
        ("s.preset", ""),
        ("s.host", "localhost"),
        ("s.port", port),
        ("s.security", "tls"),
        ("s.username", USER),
        ("s.password", password),
        ("s.from", USER),
        ("s.to", to),
        ("s.ca_pem", ca),
    ]
}

#[tokio::test]
async fn provider_channels_are_admins_and_an_email_test_send_shows_the_smtp_servers_answer() {
    let server = SmtpServer::start("tls");
    let app = spawn_app().await;
    let p = app.create_provider(SP_MCHID).await;
    let pid = p.to_string();
    let port = server.port.to_string();
    let ca = testdata("tls_ca.pem");
    let mut admin = ConsoleClient::signed_in(&app, "boss", Role::Admin).await;
    let mut ops = ConsoleClient::signed_in(&app, "ops", Role::Operator).await;
    let mut viewer = ConsoleClient::signed_in(&app, "watcher", Role::Viewer).await;

    assert_eq!(viewer.get("/console/channels").await.status, 200);
    assert!(!ops.get("/console/channels").await.has("添加通知渠道"), "only admins add provider channels");
    assert_eq!(ops.get("/console/channels/new?kind=email").await.status, 403);
    let form = admin.get(&format!("/console/channels/new?kind=email&provider_id={p}")).await;
    assert_eq!(form.status, 200);
    assert!(
        form.has("data-preset") && form.has("data-host=\"smtp.163.com\"") && form.has("网易 163 邮箱"),
        "{}",
        form.body
    );
    let fields = email_fields(&pid, &port, AUTH_CODE, "ops@example.com\nboss@example.com", &ca);
    assert_eq!(ops.post("/console/channels", &fields).await.status, 403);
    assert_eq!(admin.post_raw("/console/channels", &fields).await.status, 403);
    let created = admin.post("/console/channels", &fields).await;
    assert_eq!((created.status, created.location.as_deref()), (303, Some("/console/channels")), "{}", created.body);
    let list = viewer.get("/console/channels").await;
    assert!(
        list.has("运营邮箱") && list.has("localhost → ops@example.com, boss@example.com") && list.has("已设置"),
        "{}",
        list.body
    );
    assert!(!list.has(AUTH_CODE) && !list.has("/edit\""), "no edit link for a viewer");
    let id = channels_of(&app, "provider_only=true").await[0]["id"].as_i64().expect("id");

    // An operator test-sends (operate) but does not change a provider channel (admin).
    let test = format!("/console/channels/{id}/test");
    let answer = ops.post(&test, &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.has("对方已接受测试消息") && answer.has("250"), "{}", answer.body);
    assert_eq!(server.mails().len(), 1);
    assert_eq!(server.mails()[0]["rcpt_tos"], json!(["ops@example.com", "boss@example.com"]));
    let edit_path = format!("/console/channels/{id}/edit");
    for refused in [
        ops.get(&edit_path).await,
        ops.post(&format!("/console/channels/{id}"), &fields[2..]).await,
        ops.post(&format!("/console/channels/{id}/enabled"), &[("enabled", "false")]).await,
        ops.post(&format!("/console/channels/{id}/delete"), &[]).await,
    ] {
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert!(refused.has("你的角色不能执行此操作"), "{}", refused.body);
    }
    assert_eq!(channels_of(&app, "provider_only=true").await[0]["enabled"], true);

    // The admin changes the recipients only: the password stays, silently.
    let edit = admin.get(&edit_path).await;
    assert!(edit.has("已设置") && !edit.has(AUTH_CODE) && edit.has("boss@example.com"), "{}", edit.body);
    let recipients = email_fields(&pid, &port, "", "ops@example.com", &ca);
    let saved = admin.post(&format!("/console/channels/{id}"), &recipients[2..]).await;
    assert_eq!((saved.status, saved.location.as_deref()), (303, Some("/console/channels")), "{}", saved.body);
    let shown = &channels_of(&app, "provider_only=true").await[0];
    assert_eq!(
        (shown["secrets_set"].clone(), shown["secrets_cleared"].clone()),
        (json!(["password"]), json!([])),
        "{shown}"
    );

    // Then the port, without the password: it is cleared, and the page says so.
    let other_port = (server.port + 1).to_string();
    let moved = email_fields(&pid, &other_port, "", "ops@example.com", &ca);
    let saved = admin.post(&format!("/console/channels/{id}"), &moved[2..]).await;
    assert_eq!((saved.status, saved.location.as_deref()), (303, Some(edit_path.as_str())), "{}", saved.body);
    let warned = admin.get(&edit_path).await;
    assert!(
        warned.has("原有凭据已清除") && warned.has("密码 / 授权码") && warned.has("已清除，需重新填写"),
        "{}",
        warned.body
    );
    assert!(warned.has("class=\"flash error\""), "a warning: {}", warned.body);
    assert_eq!(channels_of(&app, "provider_only=true").await[0]["secrets_cleared"], json!(["password"]));
    let refused = admin.post(&test, &[]).await;
    assert!(refused.has("对方拒绝了测试消息") && refused.has("credential_cleared"), "{}", refused.body);
    assert_eq!(server.mails().len(), 1, "nothing sent without the password");
    // Typed again with the port back: the channel sends.
    let fixed = email_fields(&pid, &port, AUTH_CODE, "ops@example.com", &ca);
    assert_eq!(
        admin.post(&format!("/console/channels/{id}"), &fixed[2..]).await.location.as_deref(),
        Some("/console/channels")
    );
    assert!(admin.post(&test, &[]).await.has("对方已接受测试消息"));
    assert_eq!(server.mails().len(), 2);

    let mut conn = app.state.store().conn().await.expect("conn");
    let cleared =
        sqlx::query("select detail from audit_log where actor = 'user:boss' and action = 'channel.update' order by id")
            .fetch_all(&mut *conn)
            .await
            .expect("audit");
    let details: Vec<String> = cleared.iter().map(|r| sqlx::Row::get(r, "detail")).collect();
    assert!(details.iter().any(|d| d.contains("secrets_cleared") && d.contains("password")), "{details:?}");
    assert!(!details.iter().any(|d| d.contains(AUTH_CODE)), "no credential in the audit log");
    drop(conn);
    assert_eq!(admin.get("/console/lang?to=en&next=/console").await.status, 303);
    let english = admin.get("/console/channels").await;
    assert!(english.has("The providers&#39; channels") && english.has("Test send"), "{}", english.body);
    let english = admin.get(&edit_path).await;
    assert!(
        english.has("Password / authorization code") && english.has("set; leave empty to keep it"),
        "{}",
        english.body
    );
    app.stop().await;
}

/// The API and the console give the same answer: an `operate` token keeps sub-merchants and their channels, but a
/// provider's own channel needs `admin`; a `read` token changes nothing.
#[tokio::test]
async fn operate_tokens_keep_sub_merchants_and_their_channels_but_not_provider_channels() {
    let app = spawn_app().await;
    let p = app.create_provider(SP_MCHID).await;
    let now = app.now();
    let (_, operate) = create_scoped_token(&app.state, "ops", Scope::Operate, None, now).await;
    let (_, read) = create_scoped_token(&app.state, "looker", Scope::Read, None, now).await;
    let call = |method: &'static str, path: String, token: String, body: Value| {
        let request =
            app.client.request(method.parse().expect("method"), app.url(&path)).bearer_auth(token).json(&body);
        async move { decode(request.send().await.expect("send")).await }
    };
    let merchant = json!({"provider_id": p, "mchid": "1900000109", "name": "门店"});
    let (status, _) = call("POST", "/api/v1/merchants".into(), read.clone(), merchant.clone()).await;
    assert_eq!(status, 403);
    let (status, created) = call("POST", "/api/v1/merchants".into(), operate.clone(), merchant).await;
    assert_eq!(status, 201, "{created}");
    let m = created["id"].as_i64().expect("id");
    let (status, _) =
        call("PATCH", format!("/api/v1/merchants/{m}"), operate.clone(), json!({"auto_refund": true})).await;
    assert_eq!(status, 200);

    let robot = json!({"webhook_key": "k-1"});
    let (status, shop) = call(
        "POST",
        "/api/v1/channels".into(),
        operate.clone(),
        json!({"merchant_id": m, "kind": "wecom_robot", "settings": robot}),
    )
    .await;
    assert_eq!(status, 201, "{shop}");
    let shop = shop["id"].as_i64().expect("id");
    let (status, _) =
        call("PATCH", format!("/api/v1/channels/{shop}"), operate.clone(), json!({"name": "门店群"})).await;
    assert_eq!(status, 200);

    let need_admin = json!({"code": "FORBIDDEN", "message": "this token's scope is operate; this action needs admin"});
    let provider_channel = json!({"provider_id": p, "kind": "wecom_robot", "settings": robot});
    let (status, body) = call("POST", "/api/v1/channels".into(), operate.clone(), provider_channel.clone()).await;
    assert_eq!((status, body), (403, need_admin.clone()));
    // Even an invalid provider channel is refused for the scope first: an operate token learns nothing more.
    let invalid = json!({"provider_id": p, "kind": "wecom_robot", "settings": {}});
    let (status, body) = call("POST", "/api/v1/channels".into(), operate.clone(), invalid).await;
    assert_eq!((status, body), (403, need_admin.clone()));
    let (status, own) = app.post("/api/v1/channels", &provider_channel).await;
    assert_eq!(status, 201, "{own}");
    let own = own["id"].as_i64().expect("id");
    let (status, body) =
        call("PATCH", format!("/api/v1/channels/{own}"), operate.clone(), json!({"enabled": false})).await;
    assert_eq!((status, body), (403, need_admin.clone()));
    let (status, body) = call("DELETE", format!("/api/v1/channels/{own}"), operate.clone(), Value::Null).await;
    assert_eq!((status, body), (403, need_admin));
    assert_eq!(channels_of(&app, "provider_only=true").await[0]["enabled"], true);

    let (status, _) = call("DELETE", format!("/api/v1/channels/{shop}"), operate.clone(), Value::Null).await;
    assert_eq!(status, 204);
    let (status, _) = call("DELETE", format!("/api/v1/merchants/{m}"), operate, Value::Null).await;
    assert_eq!(status, 204);
    let actions: Vec<String> =
        audit(&app).await.into_iter().filter(|(who, _)| who == "token:ops").map(|(_, what)| what).collect();
    assert_eq!(
        actions,
        ["merchant.create", "merchant.update", "channel.create", "channel.update", "channel.delete", "merchant.delete"]
    );
    app.stop().await;
}
