//! Notifications end to end against the simulator over real HTTP: official-account template messages, Tencent
//! SMS, the three chat robots and a signed webhook — each verified by the simulator's own signature checks —
//! plus the outbox rules: dedupe, disabled sub-merchants, classification, rate limits, digests, test sends.

use std::time::Duration;

use serde_json::{Value, json};
use wxrisk::notify::message::sample_data;
use wxrisk::notify::{EventKind, NotificationEvent};

use crate::helpers::*;

pub const OA_APPID: &str = "wx1234567890abcdef";
pub const OA_SECRET: &str = "0123456789abcdef0123456789abcdef";
pub const FOLLOWERS: [&str; 2] = ["oFOLLOWER0000000000000000001", "oFOLLOWER0000000000000000002"];
pub const SMS_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
pub const SMS_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
pub const DING_SECRET: &str = "SECtestsecret0123456789";
pub const FEISHU_SECRET: &str = "testsecret0123456789";
pub const WEBHOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
pub const SUB_MCHID: &str = "1900000109";

/// An app whose notification services are the simulator's.
pub async fn app_with_sim() -> (TestApp, wxsim::Simulator, SimControl) {
    let sim = start_sim().await;
    let env = notify_env(&sim.base_url());
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_env(TestDb::new().await, &pairs, |b| b).await;
    let control = SimControl::new(&sim);
    (app, sim, control)
}

/// Register the services in the simulator.
async fn register_services(control: &SimControl) -> String {
    control
        .post(
            "/oa/accounts",
            json!({"appid": OA_APPID, "secret": OA_SECRET, "followers": FOLLOWERS,
                   "templates": {"TPL1": ["thing1", "character_string2", "amount3", "time4"]}}),
        )
        .await;
    control
        .post(
            "/sms/apps",
            json!({"sdk_app_id": "1400006666", "secret_id": SMS_ID, "secret_key": SMS_KEY, "sign_names": ["腾讯云"], "templates": {"1110": 2}}),
        )
        .await;
    control.post("/robots", json!({"kind": "wecom", "token": "wecom-key"})).await;
    control.post("/robots", json!({"kind": "dingtalk", "token": "ding-token", "secret": DING_SECRET})).await;
    control.post("/robots", json!({"kind": "feishu", "token": "feishu-token", "secret": FEISHU_SECRET})).await;
    let webhook = control.post("/webhooks", json!({"name": "erp", "secret": WEBHOOK_SECRET})).await;
    webhook["url"].as_str().expect("url").to_owned()
}

pub fn oa_settings() -> Value {
    json!({"appid": OA_APPID, "secret": OA_SECRET, "template_id": "TPL1", "openids": FOLLOWERS,
           "field_map": {"thing1": "merchant_name", "character_string2": "complaint_id", "amount3": "amount", "time4": "time"}})
}

pub fn sms_settings() -> Value {
    json!({"secret_id": SMS_ID, "secret_key": SMS_KEY, "sdk_app_id": "1400006666", "sign_name": "腾讯云",
           "template_id": "1110", "phone_numbers": ["13800138000"], "template_params": ["event_label", "merchant_name"]})
}

/// Create a channel; returns its id.
pub async fn channel(app: &TestApp, owner: Value, kind: &str, settings: Value) -> i64 {
    let mut body = owner;
    body["kind"] = json!(kind);
    body["settings"] = settings;
    let (status, created) = app.post("/api/v1/channels", &body).await;
    assert_eq!(status, 201, "{kind}: {created}");
    created["id"].as_i64().expect("id")
}

/// Enqueue an event the way the complaint and violation handlers do: inside a transaction.
pub async fn notify(app: &TestApp, provider_id: i64, kind: EventKind, key: &str, mchid: Option<&str>) -> Vec<i64> {
    let mut data = sample_data(kind, app.now());
    data["merchant"] = Value::Null;
    data["link_path"] = json!("/console/complaints/200201820261127000000000001");
    let event = NotificationEvent {
        kind,
        key: key.to_owned(),
        provider_id,
        merchant_mchid: mchid.map(str::to_owned),
        to_merchant: true,
        data,
    };
    let mut tx = app.state.store().begin().await.expect("begin");
    let ids = wxrisk::notify::enqueue(&mut tx, &app.state, &event).await.expect("enqueue");
    tx.commit().await.expect("commit");
    ids
}

pub async fn delivery(app: &TestApp, id: i64) -> Value {
    let (status, body) = app.get(&format!("/api/v1/deliveries/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The delivery among `ids` that went to `channel_id`.
pub async fn delivery_on(app: &TestApp, ids: &[i64], channel_id: i64) -> Value {
    for id in ids {
        let d = delivery(app, *id).await;
        if d["channel_id"] == channel_id {
            return d;
        }
    }
    panic!("no delivery on channel {channel_id}");
}

/// Advance our clock and the simulator's together.
pub async fn advance(app: &TestApp, control: &SimControl, by: Duration) {
    app.advance(by);
    control.post("/clock/advance", json!({"seconds": by.as_secs()})).await;
}

#[tokio::test]
async fn every_channel_kind_delivers_and_the_simulator_accepts_its_signature() {
    let (app, sim, control) = app_with_sim().await;
    let webhook_url = register_services(&control).await;
    let provider_id = app.create_provider("1900000100").await;
    let merchant_id = app.create_merchant(provider_id, SUB_MCHID).await;
    let provider = json!({"provider_id": provider_id});
    let merchant = json!({"merchant_id": merchant_id});
    let oa = channel(&app, provider.clone(), "wechat_template", oa_settings()).await;
    let sms = channel(&app, provider.clone(), "tencent_sms", sms_settings()).await;
    let wecom = channel(&app, provider.clone(), "wecom_robot", json!({"webhook_key": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-key", "mentioned_list": ["@all"]})).await;
    let ding = channel(
        &app,
        provider.clone(),
        "dingtalk_robot",
        json!({"access_token": "ding-token", "secret": DING_SECRET, "at_mobiles": ["13800138000"]}),
    )
    .await;
    let feishu =
        channel(&app, merchant.clone(), "feishu_robot", json!({"hook_token": "feishu-token", "secret": FEISHU_SECRET}))
            .await;
    let webhook =
        channel(&app, merchant.clone(), "webhook", json!({"url": webhook_url, "secret": WEBHOOK_SECRET})).await;

    let ids = notify(&app, provider_id, EventKind::ComplaintPlatformInvolved, "complaint:C1:n1", Some(SUB_MCHID)).await;
    // Two followers, one phone, four single-destination channels.
    assert_eq!(ids.len(), 2 + 1 + 4);
    assert!(
        notify(&app, provider_id, EventKind::ComplaintPlatformInvolved, "complaint:C1:n1", Some(SUB_MCHID))
            .await
            .is_empty(),
        "an event is enqueued once"
    );
    assert_eq!(app.count("deliveries").await, 7);

    let reports = app.worker().run_pending().await.expect("run");
    assert_eq!(reports.len(), 7, "{reports:?}");
    let mut by_channel = std::collections::HashMap::<i64, Vec<Value>>::new();
    for id in &ids {
        let d = delivery(&app, *id).await;
        assert_eq!(d["status"], "succeeded", "{d}");
        assert!(d["delivered_at"].is_string());
        assert_eq!(d["attempt_log"].as_array().map(Vec::len), Some(1));
        by_channel.entry(d["channel_id"].as_i64().expect("channel")).or_default().push(d);
    }

    // Official account: both followers, fitted values, msgid kept, client_msg_id for WeChat's dedupe.
    let oa_messages = control.get("/oa/messages").await;
    let oa_messages = oa_messages.as_array().expect("list");
    assert_eq!(oa_messages.len(), 2);
    let mut touser: Vec<&str> = oa_messages.iter().map(|m| m["touser"].as_str().expect("touser")).collect();
    touser.sort_unstable();
    assert_eq!(touser, FOLLOWERS);
    let first = &oa_messages[0];
    assert_eq!(first["template_id"], "TPL1");
    assert_eq!(first["data"]["thing1"]["value"], format!("商户{SUB_MCHID}"));
    assert_eq!(first["data"]["character_string2"]["value"], "200201820261127000000000001");
    assert_eq!(first["data"]["amount3"]["value"], "¥9.90");
    assert!(first["data"]["time4"]["value"].as_str().is_some_and(|t| t.contains('年') && t.contains('日')));
    assert_eq!(first["url"], "https://risk.example.com/console/complaints/200201820261127000000000001");
    assert!(first["client_msg_id"].as_str().is_some_and(|c| c.len() == 32));
    let msgids: Vec<String> = oa_messages.iter().map(|m| m["msgid"].to_string()).collect();
    for d in &by_channel[&oa] {
        assert!(msgids.contains(&d["external_id"].as_str().expect("msgid").to_owned()), "{d}");
    }

    // SMS: TC3-signed (the simulator checked it), our delivery id in SessionContext, SerialNo kept.
    let sms_messages = control.get("/sms/messages").await;
    let sent = &sms_messages[0];
    assert_eq!(sent["phone_number"], "+8613800138000");
    assert_eq!(sent["params"], json!(["平台介入", "商户1900"]), "parameters cut to six characters");
    let sms_delivery = &by_channel[&sms][0];
    assert_eq!(sent["session_context"], format!("wxrisk-delivery-{}", sms_delivery["id"]));
    assert_eq!(sms_delivery["external_id"], sent["serial_no"]);
    assert_eq!(sms_delivery["last_code"], "Ok");

    // Robots: an urgent event mentions people; DingTalk and Feishu signatures were accepted.
    let robots = control.get("/robots/messages").await;
    let robot = |kind: &str| robots.as_array().expect("list").iter().find(|m| m["kind"] == kind).cloned().expect(kind);
    let wecom_body = robot("wecom")["body"].clone();
    assert_eq!(wecom_body["msgtype"], "text", "urgent with mentions: text, which can mention");
    assert_eq!(wecom_body["text"]["mentioned_list"], json!(["@all"]));
    assert!(wecom_body["text"]["content"].as_str().is_some_and(|t| t.contains("200201820261127000000000001")));
    let ding_body = robot("dingtalk")["body"].clone();
    assert_eq!(ding_body["msgtype"], "markdown");
    assert_eq!(ding_body["at"]["atMobiles"], json!(["13800138000"]));
    assert!(ding_body["markdown"]["text"].as_str().is_some_and(|t| t.contains("@13800138000")));
    let feishu_body = robot("feishu")["body"].clone();
    assert_eq!(feishu_body["msg_type"], "post");
    assert!(feishu_body["sign"].is_string());
    for id in [wecom, ding, feishu] {
        assert_eq!(by_channel[&id][0]["last_code"], "0");
    }

    // Webhook: Standard Webhooks signature accepted; the id is stable and recorded.
    let hooks = control.get("/webhooks/messages").await;
    let hook = &hooks[0];
    assert_eq!(hook["body"]["type"], "complaint.platform_involved");
    assert_eq!(hook["body"]["data"]["fields"]["complaint_id"], "200201820261127000000000001");
    assert_eq!(hook["body"]["data"]["urgent"], true);
    assert_eq!(by_channel[&webhook][0]["external_id"], hook["id"]);
    sim.stop().await;
}

#[tokio::test]
async fn disabled_sub_merchant_and_disabled_channels_get_nothing() {
    let (app, sim, control) = app_with_sim().await;
    register_services(&control).await;
    let provider_id = app.create_provider("1900000100").await;
    let merchant_id = app.create_merchant(provider_id, SUB_MCHID).await;
    channel(&app, json!({"provider_id": provider_id}), "wecom_robot", json!({"webhook_key": "wecom-key"})).await;
    let off = channel(
        &app,
        json!({"provider_id": provider_id}),
        "feishu_robot",
        json!({"hook_token": "feishu-token", "secret": FEISHU_SECRET}),
    )
    .await;
    let (status, body) = app.patch(&format!("/api/v1/channels/{off}"), &json!({"enabled": false})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        notify(&app, provider_id, EventKind::ComplaintCreated, "k1", Some(SUB_MCHID)).await.len(),
        1,
        "disabled channel skipped"
    );
    app.worker().run_pending().await.expect("run");

    let (status, body) = app.patch(&format!("/api/v1/merchants/{merchant_id}"), &json!({"enabled": false})).await;
    assert_eq!(status, 200, "{body}");
    assert!(notify(&app, provider_id, EventKind::ComplaintCreated, "k2", Some(SUB_MCHID)).await.is_empty());
    // An unregistered sub-merchant still reaches the provider.
    assert_eq!(notify(&app, provider_id, EventKind::ComplaintCreated, "k3", Some("1900000999")).await.len(), 1);
    app.worker().run_pending().await.expect("run");
    let robots = control.get("/robots/messages").await;
    assert_eq!(robots.as_array().map(Vec::len), Some(2));
    assert!(
        robots[1]["body"]["markdown"]["content"].as_str().is_some_and(|t| t.contains("未登记的子商户")),
        "{robots}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn official_account_token_is_cached_sealed_and_refreshed_once_when_refused() {
    let (app, sim, control) = app_with_sim().await;
    register_services(&control).await;
    let provider_id = app.create_provider("1900000100").await;
    let mut settings = oa_settings();
    settings["openids"] = json!([FOLLOWERS[0]]);
    channel(&app, json!({"provider_id": provider_id}), "wechat_template", settings).await;
    let token_calls = |requests: &Value| {
        requests
            .as_array()
            .expect("list")
            .iter()
            .filter(|r| r["target"].as_str().is_some_and(|t| t.starts_with("/cgi-bin/stable_token")))
            .count()
    };

    notify(&app, provider_id, EventKind::ComplaintCreated, "e1", None).await;
    notify(&app, provider_id, EventKind::ComplaintContinued, "e2", None).await;
    app.worker().run_pending().await.expect("run");
    assert_eq!(token_calls(&control.get("/requests").await), 1, "one token");

    // The token is stored sealed, never in clear.
    let mut conn = app.state.store().conn().await.expect("conn");
    let row = sqlx::query("select access_token_sealed from oa_tokens where appid = $1")
        .bind(OA_APPID)
        .fetch_one(&mut *conn)
        .await
        .expect("row");
    let sealed: String = sqlx::Row::get(&row, "access_token_sealed");
    drop(conn);
    assert!(sealed.starts_with("v2."), "{sealed}");
    let slot = wxrisk::store::secrets::OA_ACCESS_TOKEN.keyed(OA_APPID);
    assert!(app.state.keyring().open(&slot, &sealed).is_ok(), "sealed for its appid");
    let other_appid = wxrisk::store::secrets::OA_ACCESS_TOKEN.keyed("wx0000000000000000");
    assert!(app.state.keyring().open(&other_appid, &sealed).is_err(), "and for no other");

    // WeChat expires it early (42001): fetched again once, and the message goes out.
    control.post("/oa/expire-tokens", json!({"appid": OA_APPID})).await;
    advance(&app, &control, Duration::from_secs(120)).await;
    let ids = notify(&app, provider_id, EventKind::ComplaintUserReplied, "e3", None).await;
    app.worker().run_pending().await.expect("run");
    assert_eq!(delivery(&app, ids[0]).await["status"], "succeeded");
    let requests = control.get("/requests").await;
    assert_eq!(token_calls(&requests), 2);
    let refused = requests.as_array().expect("list").iter().filter(|r| r["code"] == "42001").count();
    assert_eq!(refused, 1);
    assert_eq!(control.get("/oa/messages").await.as_array().map(Vec::len), Some(2), "e1 and e2 as one digest, then e3");
    sim.stop().await;
}

#[tokio::test]
async fn failures_are_classified_transient_or_permanent() {
    let (app, sim, control) = app_with_sim().await;
    let webhook_url = register_services(&control).await;
    let provider_id = app.create_provider("1900000100").await;
    let owner = json!({"provider_id": provider_id});
    // A wrong SMS secret key: the simulator's TC3 check refuses it, which no retry fixes.
    let mut bad_sms = sms_settings();
    bad_sms["secret_key"] = json!("wrong-key-wrong-key-wrong-key-00");
    let sms = channel(&app, owner.clone(), "tencent_sms", bad_sms).await;
    // A robot that fails once with 502, then recovers.
    let wecom = channel(&app, owner.clone(), "wecom_robot", json!({"webhook_key": "wecom-key"})).await;
    control
        .post(
            "/faults",
            json!({"path": "/cgi-bin/webhook/send", "count": 1, "action": {"kind": "respond", "status": 502}}),
        )
        .await;
    // A webhook receiver that says 410 Gone: the channel is switched off.
    let hook = channel(&app, owner.clone(), "webhook", json!({"url": webhook_url, "secret": WEBHOOK_SECRET})).await;
    control
        .post("/faults", json!({"path": "/webhooks/erp", "count": 1, "action": {"kind": "respond", "status": 410}}))
        .await;
    // An unknown DingTalk token: 400101, permanent.
    let ding = channel(&app, owner.clone(), "dingtalk_robot", json!({"access_token": "not-registered"})).await;

    let ids = notify(&app, provider_id, EventKind::ComplaintCreated, "e1", None).await;
    app.worker().run_pending().await.expect("run");
    let sms_d = delivery_on(&app, &ids, sms).await;
    assert_eq!(sms_d["status"], "dead", "{sms_d}");
    assert_eq!(sms_d["last_code"], "AuthFailure.SignatureFailure");
    let ding_d = delivery_on(&app, &ids, ding).await;
    assert_eq!(ding_d["status"], "dead", "{ding_d}");
    assert_eq!(ding_d["last_code"], "400101");
    let wecom_d = delivery_on(&app, &ids, wecom).await;
    assert_eq!(wecom_d["status"], "queued", "502 is retried: {wecom_d}");
    assert_eq!(wecom_d["last_code"], "502");
    let hook_d = delivery_on(&app, &ids, hook).await;
    assert_eq!(hook_d["status"], "dead");
    assert_eq!(hook_d["last_code"], "410");
    let (_, hook_channel) = app.get(&format!("/api/v1/channels/{hook}")).await;
    assert_eq!(hook_channel["enabled"], false, "410 Gone disables the webhook channel");

    advance(&app, &control, Duration::from_secs(11)).await;
    app.worker().run_pending().await.expect("run");
    let wecom_d = delivery_on(&app, &ids, wecom).await;
    assert_eq!(wecom_d["status"], "succeeded", "{wecom_d}");
    let log = wecom_d["attempt_log"].as_array().expect("log");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["outcome"], "retry");
    assert_eq!(log[1]["outcome"], "succeeded");
    sim.stop().await;
}

#[tokio::test]
async fn a_burst_for_one_recipient_becomes_one_digest() {
    let (app, sim, control) = app_with_sim().await;
    register_services(&control).await;
    let provider_id = app.create_provider("1900000100").await;
    channel(&app, json!({"provider_id": provider_id}), "wecom_robot", json!({"webhook_key": "wecom-key"})).await;
    // Feishu takes at most 20 KB a message (the simulator enforces it): a long digest must be cut to fit.
    let feishu = channel(
        &app,
        json!({"provider_id": provider_id}),
        "feishu_robot",
        json!({"hook_token": "feishu-token", "secret": FEISHU_SECRET}),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.extend(notify(&app, provider_id, EventKind::ComplaintCreated, &format!("burst-{i}"), None).await);
    }
    assert_eq!(ids.len(), 100);
    app.worker().run_pending().await.expect("run");
    let robots = control.get("/robots/messages").await;
    assert_eq!(robots.as_array().map(Vec::len), Some(2), "one digest per robot, not 50 messages each: {robots}");
    let wecom_message = robots.as_array().expect("list").iter().find(|m| m["kind"] == "wecom").expect("wecom");
    let content = wecom_message["body"]["markdown"]["content"].as_str().expect("content");
    assert!(content.starts_with("**【wxrisk】50 条通知**"), "{content}");
    assert!(content.len() <= 4096, "WeCom markdown limit");
    let feishu_message = robots.as_array().expect("list").iter().find(|m| m["kind"] == "feishu").expect("feishu");
    assert_eq!(feishu_message["body"]["content"]["post"]["zh_cn"]["title"], "【wxrisk】50 条通知");
    let ids: Vec<i64> = {
        let mut wecom_ids = Vec::new();
        for id in ids {
            if delivery(&app, id).await["channel_id"] != feishu {
                wecom_ids.push(id);
            }
        }
        wecom_ids
    };
    let first = delivery(&app, ids[0]).await;
    assert_eq!(first["status"], "succeeded");
    assert!(first["digested_into"].is_null());
    for id in &ids[1..] {
        let d = delivery(&app, *id).await;
        assert_eq!(d["digested_into"], first["id"], "{d}");
        assert_eq!(d["status"], "succeeded");
        assert!(d["delivered_at"].is_string());
    }
    sim.stop().await;
}

#[tokio::test]
async fn rate_limits_defer_without_using_attempts_and_late_arrivals_join_the_digest() {
    let (app, sim, control) = app_with_sim().await;
    register_services(&control).await;
    let provider_id = app.create_provider("1900000100").await;
    channel(&app, json!({"provider_id": provider_id}), "tencent_sms", sms_settings()).await;

    let first = notify(&app, provider_id, EventKind::ComplaintCreated, "s1", None).await;
    app.worker().run_pending().await.expect("run");
    assert_eq!(delivery(&app, first[0]).await["status"], "succeeded");

    // Within 30 seconds of the first SMS to this number: wait, don't send, don't count an attempt.
    advance(&app, &control, Duration::from_secs(5)).await;
    let second = notify(&app, provider_id, EventKind::ComplaintContinued, "s2", None).await;
    app.worker().run_pending().await.expect("run");
    let waiting = delivery(&app, second[0]).await;
    assert_eq!(waiting["status"], "queued", "{waiting}");
    assert_eq!(waiting["attempts"], 0);
    assert_eq!(waiting["attempt_log"].as_array().map(Vec::len), Some(0));
    let third = notify(&app, provider_id, EventKind::SlaDueSoon, "s3", None).await;
    app.worker().run_pending().await.expect("run");
    assert_eq!(control.get("/sms/messages").await.as_array().map(Vec::len), Some(1));

    advance(&app, &control, Duration::from_secs(26)).await;
    app.worker().run_pending().await.expect("run");
    let sms = control.get("/sms/messages").await;
    assert_eq!(sms.as_array().map(Vec::len), Some(2), "the two waiting messages went as one: {sms}");
    let second = delivery(&app, second[0]).await;
    let third = delivery(&app, third[0]).await;
    assert_eq!(second["status"], "succeeded");
    assert_eq!(third["status"], "succeeded");
    assert!(second["digested_into"].is_null() != third["digested_into"].is_null(), "one carried the other");
    sim.stop().await;
}

#[tokio::test]
async fn test_send_reports_the_services_answer_verbatim() {
    let (app, sim, control) = app_with_sim().await;
    register_services(&control).await;
    let provider_id = app.create_provider("1900000100").await;
    let owner = json!({"provider_id": provider_id});
    let good = channel(&app, owner.clone(), "tencent_sms", sms_settings()).await;
    let mut wrong_template = sms_settings();
    wrong_template["template_id"] = json!("9999");
    wrong_template["phone_numbers"] = json!(["13800138009"]);
    let bad = channel(&app, owner.clone(), "tencent_sms", wrong_template).await;
    let mut wrong_secret = oa_settings();
    wrong_secret["secret"] = json!("ffffffffffffffffffffffffffffffff");
    let oa = channel(&app, owner.clone(), "wechat_template", wrong_secret).await;

    let (status, ok) = app.post(&format!("/api/v1/channels/{good}/test"), &json!({})).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["code"], "Ok");
    assert_eq!(ok["recipient"], "+8613800138000");
    let serial = ok["external_id"].as_str().expect("SerialNo");
    assert!(ok["answer"].as_str().is_some_and(|a| a.contains(serial)), "the answer as received: {ok}");

    let (status, refused) = app.post(&format!("/api/v1/channels/{bad}/test"), &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["code"], "FailedOperation.TemplateIncorrectOrUnapproved");
    assert_eq!(refused["transient"], false);

    let (_, refused) = app.post(&format!("/api/v1/channels/{oa}/test"), &json!({})).await;
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["code"], "40001", "{refused}");
    assert!(refused["answer"].as_str().is_some_and(|a| a.contains("errcode")), "{refused}");

    let (status, _) = app.post("/api/v1/channels/999999/test", &json!({})).await;
    assert_eq!(status, 404);
    // Test sends are not deliveries.
    assert_eq!(app.count("deliveries").await, 0);
    let (_, audit) = app.get("/api/v1/jobs").await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(0));
    sim.stop().await;
}

/// A job kind whose attempts WeChat Pay always refuses.
#[derive(Debug, Clone, Copy)]
struct AlwaysRefused;

impl wxrisk::jobs::JobHandler for AlwaysRefused {
    fn run<'a>(&'a self, _ctx: &'a wxrisk::jobs::JobContext) -> wxrisk::jobs::BoxFuture<'a, wxrisk::jobs::JobResult> {
        Box::pin(async {
            Err(wxrisk::jobs::JobFailure::Permanent {
                record: Box::new(wxrisk::jobs::AttemptRecord {
                    http_status: Some(400),
                    code: Some("PARAM_ERROR".into()),
                    message: Some("回复内容不能为空".into()),
                    ..Default::default()
                }),
            })
        })
    }
}

#[tokio::test]
async fn a_dead_job_alerts_the_provider_but_a_dead_notification_does_not_cascade() {
    let sim = start_sim().await;
    let env = notify_env(&sim.base_url());
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_env(TestDb::new().await, &pairs, with_handler("complaint.reply", AlwaysRefused)).await;
    let control = SimControl::new(&sim);
    control.post("/robots", json!({"kind": "wecom", "token": "wecom-key"})).await;
    let provider_id = app.create_provider("1900000100").await;
    channel(&app, json!({"provider_id": provider_id}), "wecom_robot", json!({"webhook_key": "wecom-key"})).await;
    // A channel that can never deliver: its dead delivery must not be announced through the other channel.
    channel(&app, json!({"provider_id": provider_id}), "dingtalk_robot", json!({"access_token": "unknown"})).await;

    let job = wxrisk::jobs::NewJob {
        kind: "complaint.reply".into(),
        dedupe_key: "reply:C1".into(),
        payload: json!({"complaint_id": "C1"}),
        provider_id: Some(provider_id),
        run_at: app.now(),
    };
    let mut conn = app.state.store().conn().await.expect("conn");
    let job_id = wxrisk::store::jobs::enqueue(&mut conn, &job, app.now()).await.expect("enqueue").expect("new");
    drop(conn);
    app.worker().run_pending().await.expect("run");

    let (_, dead) = app.get("/api/v1/deliveries?event=job_dead").await;
    let items = dead["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "one per channel: {dead}");
    assert!(items.iter().any(|d| d["status"] == "succeeded" && d["channel_kind"] == "wecom_robot"));
    assert!(items.iter().any(|d| d["status"] == "dead" && d["channel_kind"] == "dingtalk_robot"));
    let robots = control.get("/robots/messages").await;
    assert_eq!(robots.as_array().map(Vec::len), Some(1));
    let content = robots[0]["body"]["text"]["content"]
        .as_str()
        .or_else(|| robots[0]["body"]["markdown"]["content"].as_str())
        .expect("content");
    assert!(content.contains(&format!("complaint.reply #{job_id}")) && content.contains("PARAM_ERROR"), "{content}");
    assert_eq!(app.count("deliveries").await, 2, "the dead DingTalk delivery caused nothing more");
    sim.stop().await;
}
