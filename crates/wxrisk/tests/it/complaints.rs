//! Complaints end to end against the simulator over real HTTP: WeChat Pay calls our callback URL, the worker
//! fetches, replies, refunds and completes at the simulator, which records what it was asked.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

pub const SP_MCHID: &str = "1900000100";
pub const SUB_MCHID: &str = "1900000109";
pub const REPLY_TEXT: &str = "您好，商家已收到您的反馈，款项已原路退回，请注意查收。";

/// An app and a simulator wired to each other: the provider is the simulator's, WeChat Pay's callbacks come to
/// the app, its refunds report back to the app.
pub struct World {
    pub app: TestApp,
    pub sim: wxsim::Simulator,
    pub control: SimControl,
    pub provider_id: i64,
}

pub async fn world() -> World {
    world_with(&[]).await
}

pub async fn world_with(extra: &[(&str, &str)]) -> World {
    let sim = start_sim_scaled().await;
    let mut env = notify_env(&sim.base_url());
    env.push(("WXRISK_WECHATPAY_BASE_URL", sim.base_url()));
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.extend_from_slice(extra);
    let app = spawn_app_env(TestDb::new().await, &pairs, |b| b).await;
    let control = SimControl::new(&sim);
    let mut body = provider_body(SP_MCHID);
    body["platform_cert_serial"] = json!(PLATFORM_SERIAL);
    body["platform_cert_pem"] = json!(testdata("platform_cert.pem"));
    body["default_reply"] = json!("您好，我们已收到您的投诉，会尽快处理。");
    let (status, created) = app.post("/api/v1/providers", &body).await;
    assert_eq!(status, 201, "{created}");
    let provider_id = created["id"].as_i64().expect("id");
    let refunds_url = app.url(&format!("/callbacks/{provider_id}/refunds"));
    let (status, body) =
        app.patch(&format!("/api/v1/providers/{provider_id}"), &json!({"refund_notify_url": refunds_url})).await;
    assert_eq!(status, 200, "{body}");
    // Register the complaint callback URL at "WeChat Pay", as an operator would.
    let client = app.state.wechat().get(&app.state, provider_id).await.expect("client").expect("provider");
    client
        .set_complaint_notification_url(&app.url(&format!("/callbacks/{provider_id}/complaints")), false)
        .await
        .expect("notification URL registered");
    client
        .set_violation_notification_url(&app.url(&format!("/callbacks/{provider_id}/violations")), false)
        .await
        .expect("violation URL registered");
    World { app, sim, control, provider_id }
}

/// The simulator with callbacks retried on a 1000× faster schedule.
async fn start_sim_scaled() -> wxsim::Simulator {
    let config = wxsim::SimConfig {
        apiv3_key: Some(APIV3_KEY.into()),
        merchant: Some((testdata("merchant_key.pem"), testdata("merchant_cert.pem"))),
        platform: Some((testdata("other_key.pem"), testdata("platform_cert.pem"))),
        public_key: Some(testdata("other_key.pem")),
        callback_time_scale: 0.001,
        callback_timeout: Duration::from_secs(3),
        refund_delay: Duration::from_secs(60),
        ..wxsim::SimConfig::default()
    };
    wxsim::Simulator::start(config).await.expect("simulator starts")
}

impl World {
    pub async fn merchant(&self, mchid: &str, reply_text: Option<&str>, auto_refund: bool, enabled: bool) -> i64 {
        let body = json!({"provider_id": self.provider_id, "mchid": mchid, "name": format!("门店{mchid}"),
                          "reply_text": reply_text, "auto_refund": auto_refund, "enabled": enabled});
        let (status, body) = self.app.post("/api/v1/merchants", &body).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().expect("id")
    }

    /// File a complaint at the simulator; it calls us back.
    pub async fn complain(&self, body: Value) -> String {
        self.control.complaint(body).await
    }

    /// Wait until the simulator has no callback in flight or waiting (each delivered, or given up).
    pub async fn callbacks_settled(&self) {
        for _ in 0..500 {
            let deliveries = self.control.get("/deliveries").await;
            let busy = deliveries
                .as_array()
                .expect("list")
                .iter()
                .any(|d| d["status"] == "pending" || d["status"] == "in_flight");
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("callbacks still in flight: {}", self.control.get("/deliveries").await);
    }

    /// Deliver callbacks, then work the queue until nothing is due; repeat while callbacks keep coming.
    pub async fn settle(&self) {
        for _ in 0..10 {
            self.callbacks_settled().await;
            let ran = self.app.worker().run_pending().await.expect("run");
            self.callbacks_settled().await;
            if ran.is_empty() && self.app.worker().run_pending().await.expect("run").is_empty() {
                return;
            }
        }
    }

    pub async fn sim_complaint(&self, id: &str) -> Value {
        self.control.get(&format!("/complaints/{id}")).await
    }

    pub async fn sim_refunds(&self) -> Vec<Value> {
        self.control.get("/refunds").await.as_array().cloned().unwrap_or_default()
    }

    pub async fn complaint(&self, id: &str) -> Value {
        let (status, body) = self.app.get(&format!("/api/v1/complaints/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Advance both clocks (ours and the simulator's).
    pub async fn advance(&self, by: Duration) {
        self.app.advance(by);
        self.control.post("/clock/advance", json!({"seconds": by.as_secs()})).await;
    }

    pub async fn count_jobs(&self, kind: &str) -> i64 {
        let mut conn = self.app.state.store().conn().await.expect("conn");
        let row = sqlx::query("select count(*) as n from jobs where kind = $1")
            .bind(kind)
            .fetch_one(&mut *conn)
            .await
            .expect("count");
        sqlx::Row::get::<i64, _>(&row, "n")
    }
}

/// The names of the steps on a complaint's timeline, in order.
pub fn steps(complaint: &Value) -> Vec<String> {
    complaint["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|s| s["step"].as_str().expect("step").to_owned())
        .collect()
}

#[tokio::test]
async fn a_complaint_is_replied_refunded_and_completed_once_and_everyone_is_told() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    w.control.post("/robots", json!({"kind": "wecom", "token": "ops"})).await;
    w.control.post("/robots", json!({"kind": "feishu", "token": "shop"})).await;
    let provider_channel =
        json!({"provider_id": w.provider_id, "kind": "wecom_robot", "settings": {"webhook_key": "ops"}});
    assert_eq!(w.app.post("/api/v1/channels", &provider_channel).await.0, 201);
    let shop_channel = json!({"merchant_mchid": SUB_MCHID, "kind": "feishu_robot", "settings": {"hook_token": "shop"}});
    assert_eq!(w.app.post("/api/v1/channels", &shop_channel).await.0, 201);

    let id = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 990, "payer_phone": "13800138000"})).await;
    w.settle().await;

    let at_wechat = w.sim_complaint(&id).await;
    assert_eq!(at_wechat["replies"], json!([REPLY_TEXT]), "one reply, the sub-merchant's text");
    assert_eq!(at_wechat["completed"], true);
    let refunds = w.sim_refunds().await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["refund"]["amount"]["refund"], 990);
    assert_eq!(refunds[0]["sub_mchid"], SUB_MCHID);

    let ours = w.complaint(&id).await;
    assert_eq!(ours["complainted_mchid"], SUB_MCHID);
    assert_eq!(ours["state"], "PROCESSED");
    assert_eq!(ours["payer_phone"], "138****8000", "masked");
    let taken = steps(&ours);
    for expected in
        ["received", "fetched", "reply_queued", "refund_queued", "notified", "replied", "refund_accepted", "completed"]
    {
        assert!(taken.iter().any(|s| s == expected), "{expected} missing from {taken:?}");
    }
    assert_eq!(ours["refunds"][0]["status"], "PROCESSING");

    // Both the provider's robot and the sub-merchant's heard of it.
    let robots = w.control.get("/robots/messages").await;
    let kinds: Vec<&str> = robots.as_array().expect("list").iter().map(|m| m["kind"].as_str().expect("kind")).collect();
    assert!(kinds.contains(&"wecom") && kinds.contains(&"feishu"), "{robots}");

    // WeChat Pay finishes the refund a minute later and says so at the refund URL.
    w.advance(Duration::from_secs(61)).await;
    w.settle().await;
    let ours = w.complaint(&id).await;
    assert_eq!(ours["refunds"][0]["status"], "SUCCESS", "{}", ours["refunds"]);
    assert!(steps(&ours).iter().any(|s| s == "refund_succeeded"));
    assert_eq!(w.sim_refunds().await.len(), 1);
    w.sim.stop().await;
}

#[tokio::test]
async fn an_unknown_sub_merchant_gets_the_providers_defaults_and_only_the_provider_is_told() {
    let w = world().await;
    w.control.post("/robots", json!({"kind": "wecom", "token": "ops"})).await;
    let channel = json!({"provider_id": w.provider_id, "kind": "wecom_robot", "settings": {"webhook_key": "ops"}});
    assert_eq!(w.app.post("/api/v1/channels", &channel).await.0, 201);
    // default_auto_refund is off in the test provider.
    let id = w.complain(json!({"sub_mchid": "1900000555"})).await;
    w.settle().await;
    let at_wechat = w.sim_complaint(&id).await;
    assert_eq!(at_wechat["replies"], json!(["您好，我们已收到您的投诉，会尽快处理。"]));
    assert_eq!(at_wechat["completed"], false, "no refund, so no completion");
    assert!(w.sim_refunds().await.is_empty());
    let ours = w.complaint(&id).await;
    assert!(ours["timeline"].as_array().expect("t").iter().any(|s| s["step"] == "refund" && s["outcome"] == "skipped"));
    let robots = w.control.get("/robots/messages").await;
    assert_eq!(robots.as_array().map(Vec::len), Some(1));
    assert!(
        robots[0]["body"]["markdown"]["content"].as_str().is_some_and(|c| c.contains("未登记的子商户")),
        "{robots}"
    );

    // With the provider's default auto-refund on, the next unknown-merchant complaint is refunded too.
    let (status, _) =
        w.app.patch(&format!("/api/v1/providers/{}", w.provider_id), &json!({"default_auto_refund": true})).await;
    assert_eq!(status, 200);
    w.app.state.wechat().forget(w.provider_id);
    let second = w.complain(json!({"sub_mchid": "1900000555", "amount": 1500})).await;
    w.settle().await;
    assert_eq!(w.sim_refunds().await.len(), 1);
    assert_eq!(w.sim_complaint(&second).await["completed"], true);
    w.sim.stop().await;
}

#[tokio::test]
async fn a_disabled_sub_merchant_is_stored_but_nothing_is_done_or_sent() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, false).await;
    w.control.post("/robots", json!({"kind": "wecom", "token": "ops"})).await;
    let channel = json!({"provider_id": w.provider_id, "kind": "wecom_robot", "settings": {"webhook_key": "ops"}});
    assert_eq!(w.app.post("/api/v1/channels", &channel).await.0, 201);
    let id = w.complain(json!({"sub_mchid": SUB_MCHID})).await;
    w.settle().await;
    let at_wechat = w.sim_complaint(&id).await;
    assert_eq!(at_wechat["replies"], json!([]));
    assert_eq!(at_wechat["completed"], false);
    assert!(w.sim_refunds().await.is_empty());
    assert_eq!(w.control.get("/robots/messages").await.as_array().map(Vec::len), Some(0));
    let ours = w.complaint(&id).await;
    assert_eq!(ours["state"], "PENDING");
    assert!(ours["timeline"].as_array().expect("t").iter().any(|s| s["step"] == "skipped"));
    assert_eq!(w.app.count("deliveries").await, 0);
    w.sim.stop().await;
}

#[tokio::test]
async fn a_refund_request_complaint_is_approved_then_refunded_and_wechat_completes_it() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    let id = w
        .complain(
            json!({"sub_mchid": SUB_MCHID, "amount": 3000, "problem_type": "REFUND", "apply_refund_amount": 1200}),
        )
        .await;
    w.settle().await;
    let refunds = w.sim_refunds().await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["refund"]["amount"]["refund"], 1200, "what the user asked, not the whole order");
    let at_wechat = w.sim_complaint(&id).await;
    assert_eq!(at_wechat["completed"], false, "WeChat completes a refund request itself when the money arrives");
    let history: Vec<&str> =
        at_wechat["history"].as_array().expect("h").iter().map(|h| h["operate_type"].as_str().expect("t")).collect();
    assert!(history.contains(&"MERCHANT_APPROVE_REFUND"), "{history:?}");
    let ours = w.complaint(&id).await;
    let taken = steps(&ours);
    assert!(taken.iter().any(|s| s == "refund_approved"), "{taken:?}");
    assert_eq!(w.count_jobs("complaint.complete").await, 0);
    w.sim.stop().await;
}

#[tokio::test]
async fn one_notification_delivered_five_times_and_later_events_act_once() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    let id = w.complain(json!({"sub_mchid": SUB_MCHID, "delivery": {"duplicates": 4}})).await;
    w.settle().await;
    let deliveries = w.control.get("/deliveries").await;
    let delivered = deliveries.as_array().expect("list").iter().filter(|d| d["status"] == "delivered").count();
    assert_eq!(delivered, 5, "the simulator delivered five copies: {deliveries}");
    assert_eq!(w.app.count("inbound_notifications").await, 1, "one notification recorded");
    assert_eq!(w.count_jobs("complaint.sync").await, 1);
    assert_eq!(w.sim_complaint(&id).await["replies"].as_array().map(Vec::len), Some(1));
    assert_eq!(w.sim_refunds().await.len(), 1);

    // The user writes again, then the platform steps in: notified, synced, nothing repeated.
    w.control
        .post(&format!("/complaints/{id}/actions"), json!({"action_type": "USER_RESPONSE", "content": "还没到账"}))
        .await;
    w.control.post(&format!("/complaints/{id}/actions"), json!({"action_type": "USER_APPLY_PLATFORM_SERVICE"})).await;
    w.settle().await;
    assert_eq!(w.count_jobs("complaint.sync").await, 3);
    assert_eq!(w.sim_complaint(&id).await["replies"].as_array().map(Vec::len), Some(1));
    assert_eq!(w.sim_refunds().await.len(), 1);

    // Reconciliation lists the complaint: already handled, so nothing is done again.
    wxrisk::workflow::reconcile::schedule(&w.app.state).await.expect("schedule");
    w.settle().await;
    assert_eq!(w.sim_complaint(&id).await["replies"].as_array().map(Vec::len), Some(1));
    assert_eq!(w.sim_refunds().await.len(), 1);
    assert_eq!(w.count_jobs("complaint.reply").await, 1);
    assert_eq!(w.count_jobs("complaint.refund").await, 1);

    // A continued complaint is replied to again; its order is not refunded twice.
    w.control.post(&format!("/complaints/{id}/actions"), json!({"action_type": "CONTINUE_COMPLAINT"})).await;
    w.settle().await;
    assert_eq!(w.sim_complaint(&id).await["replies"].as_array().map(Vec::len), Some(2));
    assert_eq!(w.sim_refunds().await.len(), 1, "never a second refund for one order");
    w.sim.stop().await;
}

#[tokio::test]
async fn reconciliation_finds_a_complaint_whose_callback_was_lost() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), false, true).await;
    let id = w.complain(json!({"sub_mchid": SUB_MCHID, "notify": false})).await;
    w.settle().await;
    assert_eq!(w.app.count("complaints").await, 0, "no callback came");
    let created = wxrisk::workflow::reconcile::schedule(&w.app.state).await.expect("schedule");
    assert_eq!(created, 1);
    assert_eq!(wxrisk::workflow::reconcile::schedule(&w.app.state).await.expect("again"), 0, "once per interval");
    w.settle().await;
    let ours = w.complaint(&id).await;
    assert_eq!(ours["complaint_id"], id);
    assert_eq!(w.sim_complaint(&id).await["replies"], json!([REPLY_TEXT]), "handled as a new complaint");
    w.sim.stop().await;
}

#[tokio::test]
async fn a_refund_that_fails_twice_with_500_then_succeeds_is_one_refund() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    w.control
        .post("/faults", json!({"method": "POST", "path": "/v3/refund/domestic/refunds", "count": 2,
                                "action": {"kind": "respond", "status": 500, "code": "SYSTEM_ERROR", "message": "系统繁忙"}}))
        .await;
    let id = w.complain(json!({"sub_mchid": SUB_MCHID})).await;
    w.settle().await;
    assert!(w.sim_refunds().await.is_empty(), "two refusals so far");
    w.advance(Duration::from_secs(11)).await;
    w.settle().await;
    w.advance(Duration::from_secs(61)).await;
    w.settle().await;
    let refunds = w.sim_refunds().await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(w.sim_complaint(&id).await["completed"], true);
    let (_, jobs) = w.app.get("/api/v1/jobs?kind=complaint.refund").await;
    let job_id = jobs["items"][0]["id"].as_i64().expect("job");
    let (_, job) = w.app.get(&format!("/api/v1/jobs/{job_id}")).await;
    let outcomes: Vec<&str> =
        job["attempt_log"].as_array().expect("log").iter().map(|a| a["outcome"].as_str().expect("o")).collect();
    assert_eq!(outcomes, ["retry", "retry", "succeeded"]);
    assert_eq!(job["attempt_log"][0]["code"], "SYSTEM_ERROR");
    w.sim.stop().await;
}

#[tokio::test]
async fn a_refund_whose_answer_is_lost_is_asked_again_and_made_once() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    // WeChat Pay makes the refund, and the connection breaks before we read the answer.
    w.control.post("/faults", json!({"method": "POST", "path": "/v3/refund/domestic/refunds", "count": 1, "action": {"kind": "lose_answer"}})).await;
    let id = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 4200})).await;
    w.settle().await;
    assert_eq!(w.sim_refunds().await.len(), 1, "the first request was made at WeChat Pay");
    let ours = w.complaint(&id).await;
    assert_eq!(ours["refunds"][0]["status"], "REQUESTED", "we do not know yet: {}", ours["refunds"]);
    w.advance(Duration::from_secs(11)).await;
    w.settle().await;
    let refunds = w.sim_refunds().await;
    assert_eq!(refunds.len(), 1, "asked again with the same out_refund_no: still one refund");
    let ours = w.complaint(&id).await;
    assert_eq!(ours["refunds"][0]["status"], "PROCESSING");
    assert_eq!(ours["refunds"][0]["out_refund_no"], refunds[0]["refund"]["out_refund_no"]);
    assert_eq!(w.sim_complaint(&id).await["completed"], true);
    w.sim.stop().await;
}

#[tokio::test]
async fn deadlines_alert_the_provider_once_each_unless_met() {
    let w = world().await;
    // A sub-merchant without auto-refund: replied, never resolved by us.
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), false, true).await;
    w.control.post("/robots", json!({"kind": "wecom", "token": "ops"})).await;
    let channel = json!({"provider_id": w.provider_id, "kind": "wecom_robot", "settings": {"webhook_key": "ops"}});
    assert_eq!(w.app.post("/api/v1/channels", &channel).await.0, 201);
    let id = w.complain(json!({"sub_mchid": SUB_MCHID})).await;
    w.settle().await;
    // 22 hours on: the reply deadline is met (we replied), nothing to say about it.
    w.advance(Duration::from_secs(22 * 3600 + 60)).await;
    w.settle().await;
    assert!(sla_alerts(&w.app).await.is_empty());
    // 70 hours on: resolution due soon; 72: overdue. Once each.
    w.advance(Duration::from_secs(48 * 3600)).await;
    w.settle().await;
    assert_eq!(sla_alerts(&w.app).await, ["sla_due_soon"]);
    w.advance(Duration::from_secs(2 * 3600)).await;
    w.settle().await;
    w.advance(Duration::from_secs(3600)).await;
    w.settle().await;
    let mut alerts = sla_alerts(&w.app).await;
    alerts.sort();
    assert_eq!(alerts, ["sla_due_soon", "sla_overdue"]);
    assert!(steps(&w.complaint(&id).await).iter().any(|s| s == "sla_overdue"));
    w.sim.stop().await;
}

async fn sla_alerts(app: &TestApp) -> Vec<String> {
    let (_, d) = app.get("/api/v1/deliveries").await;
    d["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|d| d["event_kind"] == "sla_due_soon" || d["event_kind"] == "sla_overdue")
        .map(|d| d["event_kind"].as_str().expect("k").to_owned())
        .collect()
}

async fn post_with_key(app: &TestApp, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(&app.token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("POST");
    decode(response).await
}

#[tokio::test]
async fn operators_reply_refund_and_complete_idempotently() {
    let w = world().await;
    // No auto-refund: the operator decides.
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), false, true).await;
    let id = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 2500})).await;
    w.settle().await;
    let base = format!("/api/v1/complaints/{id}");

    let reply = json!({"text": "您好，我们已安排专人联系您。"});
    let (status, first) = post_with_key(&w.app, &format!("{base}/reply"), "op-reply-1", &reply).await;
    assert_eq!(status, 202, "{first}");
    let (status, again) = post_with_key(&w.app, &format!("{base}/reply"), "op-reply-1", &reply).await;
    assert_eq!((status, &again), (202, &first), "the same key answers the same answer");
    let (status, reused) =
        post_with_key(&w.app, &format!("{base}/reply"), "op-reply-1", &json!({"text": "别的内容"})).await;
    assert_eq!((status, reused["code"].as_str()), (422, Some("IDEMPOTENCY_KEY_REUSED")));
    let (status, bad) = w.app.post(&format!("{base}/reply"), &json!({"text": "x".repeat(201)})).await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("text")));
    w.settle().await;
    let replies = w.sim_complaint(&id).await["replies"].clone();
    assert_eq!(replies, json!([REPLY_TEXT, "您好，我们已安排专人联系您。"]), "the operator's reply went once");

    let (status, refunded) = post_with_key(&w.app, &format!("{base}/refund"), "op-refund-1", &json!({})).await;
    assert_eq!(status, 202, "{refunded}");
    assert_eq!(refunded["jobs"].as_array().map(Vec::len), Some(1));
    assert_eq!(post_with_key(&w.app, &format!("{base}/refund"), "op-refund-1", &json!({})).await.0, 202);
    let (status, twice) = post_with_key(&w.app, &format!("{base}/refund"), "op-refund-2", &json!({})).await;
    assert_eq!(status, 409, "the order already has a refund: {twice}");
    w.settle().await;
    let refunds = w.sim_refunds().await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["refund"]["amount"]["refund"], 2500);
    let ours = w.complaint(&id).await;
    assert_eq!(ours["refunds"][0]["requested_by"], "token:test");
    assert_eq!(w.sim_complaint(&id).await["completed"], false, "an operator's refund does not complete by itself");

    let (status, _) = post_with_key(&w.app, &format!("{base}/complete"), "op-complete-1", &json!({})).await;
    assert_eq!(status, 202);
    w.settle().await;
    assert_eq!(w.sim_complaint(&id).await["completed"], true);
    assert_eq!(w.complaint(&id).await["state"], "PROCESSED");

    let (status, refused) =
        w.app.post(&format!("{base}/refund-progress"), &json!({"action": "REJECT", "reject_reason": "不符合"})).await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("action")), "not a refund-request complaint");
    assert_eq!(w.app.post("/api/v1/complaints/999/reply", &reply).await.0, 404);
    w.sim.stop().await;
}

#[tokio::test]
async fn complaints_list_by_provider_merchant_state_date_and_overdue() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    let done = w.complain(json!({"sub_mchid": SUB_MCHID})).await;
    let open = w.complain(json!({"sub_mchid": "1900000555"})).await;
    w.settle().await;
    let ids = |body: Value| -> Vec<String> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|c| c["complaint_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let (_, all) = w.app.get("/api/v1/complaints").await;
    assert_eq!(ids(all), [open.clone(), done.clone()], "newest first");
    let (_, by_mchid) = w.app.get(&format!("/api/v1/complaints?mchid={SUB_MCHID}")).await;
    assert_eq!(ids(by_mchid), std::slice::from_ref(&done));
    let (_, processed) = w.app.get("/api/v1/complaints?state=PROCESSED").await;
    assert_eq!(ids(processed), std::slice::from_ref(&done));
    let today = wxrisk::clock::format_shanghai(w.app.now())[..10].to_owned();
    let (_, dated) =
        w.app.get(&format!("/api/v1/complaints?since={today}&until={today}&provider_id={}", w.provider_id)).await;
    assert_eq!(ids(dated).len(), 2);
    let (_, overdue) = w.app.get("/api/v1/complaints?overdue=true").await;
    assert!(ids(overdue).is_empty());
    w.advance(Duration::from_secs(73 * 3600)).await;
    let (_, overdue) = w.app.get("/api/v1/complaints?overdue=true").await;
    assert_eq!(ids(overdue), std::slice::from_ref(&open), "replied but never resolved");
    let (status, bad) = w.app.get("/api/v1/complaints?state=LOST").await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("state")));
    let (_, page) = w.app.get("/api/v1/complaints?limit=1").await;
    assert!(page["next_cursor"].is_string());
    w.sim.stop().await;
}

#[tokio::test]
async fn an_immediate_service_complaint_is_answered_through_its_own_api() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), false, true).await;
    let id = w
        .complain(json!({"sub_mchid": SUB_MCHID, "need_immediate_service": true, "delivery": {"duplicates": 2}}))
        .await;
    w.settle().await;
    let at_wechat = w.sim_complaint(&id).await;
    assert_eq!(at_wechat["replies"], json!([REPLY_TEXT]), "one reply");
    assert_eq!(at_wechat["immediate_replies"].as_object().map(|m| m.len()), Some(1), "{at_wechat}");
    let requests = w.control.get("/requests").await;
    let ordinary = requests
        .as_array()
        .expect("list")
        .iter()
        .filter(|r| r["target"].as_str().is_some_and(|t| t.ends_with("/response")))
        .count();
    assert_eq!(ordinary, 0, "not through the ordinary reply API");
    let ours = w.complaint(&id).await;
    assert!(
        ours["timeline"]
            .as_array()
            .expect("t")
            .iter()
            .any(|s| s["step"] == "replied" && s["detail"]["immediate_service"] == true)
    );
    w.sim.stop().await;
}

#[tokio::test]
async fn replies_wait_for_the_providers_per_minute_allowance_instead_of_failing() {
    let w = world_with(&[("WXRISK_COMPLAINTS__REPLY_PER_MINUTE", "2")]).await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), false, true).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(w.complain(json!({"sub_mchid": SUB_MCHID})).await);
    }
    w.settle().await;
    assert_eq!(replies_to(&w, &ids).await, 2, "two a minute");
    let (_, jobs) = w.app.get("/api/v1/jobs?kind=complaint.reply&status=queued").await;
    assert_eq!(jobs["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(jobs["items"][0]["attempts"], 0, "waiting is not failing");
    w.advance(Duration::from_secs(62)).await;
    w.settle().await;
    assert_eq!(replies_to(&w, &ids).await, 3);
    w.sim.stop().await;
}

async fn replies_to(w: &World, ids: &[String]) -> usize {
    let mut n = 0;
    for id in ids {
        n += w.sim_complaint(id).await["replies"].as_array().map_or(0, Vec::len);
    }
    n
}

#[tokio::test]
async fn a_closed_refund_alerts_the_provider_once_and_its_order_can_be_refunded_again() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    w.control.post("/robots", json!({"kind": "wecom", "token": "ops"})).await;
    let channel = json!({"provider_id": w.provider_id, "kind": "wecom_robot", "settings": {"webhook_key": "ops"}});
    assert_eq!(w.app.post("/api/v1/channels", &channel).await.0, 201);
    // The refund is accepted (and the complaint completed), then WeChat closes it: no balance for 7 days.
    let id = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 800})).await;
    w.settle().await;
    let refund = w.sim_refunds().await[0]["refund"].clone();
    let to = w.app.url(&format!("/callbacks/{}/refunds", w.provider_id));
    let resource = |amount: i64| {
        json!({"sp_mchid": SP_MCHID, "sub_mchid": SUB_MCHID, "out_trade_no": refund["out_trade_no"],
               "transaction_id": refund["transaction_id"], "out_refund_no": refund["out_refund_no"],
               "refund_id": refund["refund_id"], "refund_status": "CLOSED",
               "amount": {"total": 800, "refund": amount, "payer_total": 800, "payer_refund": amount}})
    };
    // First a notification whose amount is not what we asked: not believed.
    let sent = w.control.post("/send", json!({"to": to, "event_type": "REFUND.CLOSED", "resource": resource(1)})).await;
    assert_eq!(sent["status"], 204, "{sent}");
    w.settle().await;
    assert_eq!(w.complaint(&id).await["refunds"][0]["status"], "PROCESSING");
    let sent =
        w.control.post("/send", json!({"to": to, "event_type": "REFUND.CLOSED", "resource": resource(800)})).await;
    assert_eq!(sent["status"], 204, "{sent}");
    w.settle().await;
    let ours = w.complaint(&id).await;
    assert_eq!(ours["refunds"][0]["status"], "CLOSED");
    assert!(steps(&ours).iter().any(|s| s == "refund_failed"));
    let (_, deliveries) = w.app.get("/api/v1/deliveries?event=refund_failed").await;
    assert_eq!(deliveries["items"].as_array().map(Vec::len), Some(1), "the provider is told once");
    // The order may now be refunded again, under a new out_refund_no.
    let (status, again) = w.app.post(&format!("/api/v1/complaints/{id}/refund"), &json!({})).await;
    assert_eq!(status, 202, "{again}");
    w.settle().await;
    let numbers: Vec<String> = w.complaint(&id).await["refunds"]
        .as_array()
        .expect("r")
        .iter()
        .map(|r| r["out_refund_no"].as_str().expect("n").to_owned())
        .collect();
    assert_eq!(numbers.len(), 2);
    assert!(numbers[1].ends_with("-R1"), "{numbers:?}");
    w.sim.stop().await;
}

#[tokio::test]
async fn a_refund_settled_by_wechats_notification_before_our_retry_still_completes_the_complaint() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    w.control.post("/faults", json!({"method": "POST", "path": "/v3/refund/domestic/refunds", "count": 1, "action": {"kind": "lose_answer"}})).await;
    let id = w.complain(json!({"sub_mchid": SUB_MCHID})).await;
    w.settle().await;
    assert_eq!(w.complaint(&id).await["refunds"][0]["status"], "REQUESTED");
    // WeChat finishes the refund and says so before our retry is due.
    w.control.post("/clock/advance", json!({"seconds": 61})).await;
    w.settle().await;
    assert_eq!(w.complaint(&id).await["refunds"][0]["status"], "SUCCESS");
    assert_eq!(w.sim_complaint(&id).await["completed"], false);
    w.app.advance(Duration::from_secs(11));
    w.settle().await;
    assert_eq!(w.sim_complaint(&id).await["completed"], true, "the retried refund job completes it");
    assert_eq!(w.sim_refunds().await.len(), 1);
    w.sim.stop().await;
}
