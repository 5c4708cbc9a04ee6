//! Violations against the simulator: each event kind stored and told, duplicates told once, interceptions once a
//! day across midnight in Asia/Shanghai, callback registration, limitations (NO_REFUND stops auto-refunds) and the
//! risk view on a seeded history.

use std::time::Duration;

use serde_json::{Value, json};
use wxrisk::store::complaints::{self as complaint_store, ComplaintWrite};

use crate::complaints::{REPLY_TEXT, SUB_MCHID, World, world, world_with};
use crate::helpers::*;

async fn violations(w: &World, query: &str) -> Vec<Value> {
    let (status, body) = w.app.get(&format!("/api/v1/violations{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn deliveries_of(w: &World, event: &str) -> usize {
    let (_, body) = w.app.get(&format!("/api/v1/deliveries?event={event}")).await;
    body["items"].as_array().map_or(0, Vec::len)
}

async fn with_robot(w: &World) {
    w.control.post("/robots", json!({"kind": "wecom", "token": "ops"})).await;
    let channel = json!({"provider_id": w.provider_id, "kind": "wecom_robot", "settings": {"webhook_key": "ops"}});
    assert_eq!(w.app.post("/api/v1/channels", &channel).await.0, 201);
}

#[tokio::test]
async fn punish_intercept_and_appeal_are_stored_labelled_and_told() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    with_robot(&w).await;
    let shop = json!({"merchant_mchid": SUB_MCHID, "kind": "feishu_robot", "settings": {"hook_token": "shop"}});
    w.control.post("/robots", json!({"kind": "feishu", "token": "shop"})).await;
    assert_eq!(w.app.post("/api/v1/channels", &shop).await.0, 201);

    let punished = w
        .control
        .post(
            "/violations",
            json!({"event_type": "VIOLATION.PUNISH", "sub_mchid": SUB_MCHID, "company_name": "示例科技有限公司",
                   "punish_plan": "暂停支付功能7天", "punish_description": "存在交易纠纷", "risk_type": "TRANSACTION_DISPUTE",
                   "risk_description": "交易纠纷"}),
        )
        .await;
    let record_id = punished["record_id"].as_str().expect("record").to_owned();
    w.control.post("/violations/intercepted", json!({"sub_mchid": SUB_MCHID, "orders": 11})).await;
    w.settle().await;

    let list = violations(&w, "").await;
    assert_eq!(list.len(), 2);
    let punish = list.iter().find(|v| v["kind"] == "PUNISH").expect("punish");
    assert_eq!(punish["record_id"], record_id);
    assert_eq!(punish["risk_label"], "交易纠纷");
    assert_eq!(punish["punish_plan"], "暂停支付功能7天", "free text kept");
    assert_eq!(punish["company_name"], "示例科技有限公司");
    let intercept = list.iter().find(|v| v["kind"] == "INTERCEPT").expect("intercept");
    assert_eq!(intercept["risk_type"], "UNUSUAL_TRANSACTION");
    assert_eq!(intercept["risk_label"], "交易异常");

    // The appeal of the punished record.
    w.control
        .post(
            "/violations",
            json!({"event_type": "VIOLATION.APPEAL", "sub_mchid": SUB_MCHID, "record_id": record_id,
                   "punish_plan": "申诉通过，恢复支付功能", "punish_description": "", "risk_type": "APPEAL_SUCCESSFUL",
                   "risk_description": "申诉成功"}),
        )
        .await;
    w.settle().await;
    let list = violations(&w, "?event=PUNISH").await;
    assert_eq!(list.len(), 1, "the appeal updated its record");
    assert_eq!(list[0]["appeal_state"], "APPEAL_SUCCESSFUL");
    assert!(list[0]["appeal_detail"].as_str().is_some_and(|d| d.contains("申诉成功")));
    let (status, full) = w.app.get(&format!("/api/v1/violations/{}", list[0]["id"])).await;
    assert_eq!(status, 200);
    let events: Vec<&str> =
        full["events"].as_array().expect("events").iter().map(|e| e["event_type"].as_str().expect("t")).collect();
    assert_eq!(events, ["VIOLATION.PUNISH", "VIOLATION.APPEAL"]);
    assert!(full["limitations"]["limited_functions"].is_array(), "limitations read after the event: {full}");

    for (event, told) in [("violation_punish", 1), ("violation_intercept", 1), ("violation_appeal", 1)] {
        // Each reaches the provider's robot and the sub-merchant's.
        assert_eq!(deliveries_of(&w, event).await, 2 * told, "{event}");
    }
    let robots = w.control.get("/robots/messages").await;
    let text = robots.to_string();
    assert!(text.contains("违规处罚") && text.contains("交易纠纷") && text.contains("暂停支付功能7天"), "{text}");

    let (_, filtered) = w.app.get("/api/v1/violations?risk_type=UNUSUAL_TRANSACTION").await;
    assert_eq!(filtered["items"].as_array().map(Vec::len), Some(1));
    let (status, bad) = w.app.get("/api/v1/violations?event=EXPLODE").await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("event")));
    w.sim.stop().await;
}

#[tokio::test]
async fn duplicated_and_repeated_notifications_are_told_once_and_disabled_merchants_not_at_all() {
    let w = world().await;
    w.merchant(SUB_MCHID, None, false, true).await;
    w.merchant("1900000555", None, false, false).await;
    with_robot(&w).await;
    let punish = |mchid: &str, record: &str, duplicates: u32| {
        json!({"event_type": "VIOLATION.PUNISH", "sub_mchid": mchid, "record_id": record, "punish_plan": "限制收款",
               "punish_description": "", "risk_type": "FRAUD", "risk_description": "欺诈", "delivery": {"duplicates": duplicates}})
    };
    // Three copies of one notification at once, then a second notification about the same record.
    w.control.post("/violations", punish(SUB_MCHID, "VR-1", 2)).await;
    w.settle().await;
    w.control.post("/violations", punish(SUB_MCHID, "VR-1", 0)).await;
    // A disabled sub-merchant's record: stored, nobody told.
    w.control.post("/violations", punish("1900000555", "VR-2", 0)).await;
    w.settle().await;
    assert_eq!(violations(&w, "").await.len(), 2);
    let (_, full) = w
        .app
        .get(&format!("/api/v1/violations/{}", violations(&w, &format!("?mchid={SUB_MCHID}")).await[0]["id"]))
        .await;
    assert_eq!(full["events"].as_array().map(Vec::len), Some(2), "both notifications kept as events");
    assert_eq!(deliveries_of(&w, "violation_punish").await, 1, "told once, and not for the disabled one");
    w.sim.stop().await;
}

#[tokio::test]
async fn interceptions_alert_once_per_sub_merchant_per_china_day() {
    let w = world().await;
    w.merchant(SUB_MCHID, None, false, true).await;
    with_robot(&w).await;
    // 23:50 in Shanghai.
    let day = time::macros::datetime!(2026-11-27 23:50 +8);
    w.app.clock.set(i64::try_from(day.unix_timestamp_nanos() / 1_000_000).expect("ms"));
    let to = w.app.url(&format!("/callbacks/{}/violations", w.provider_id));
    let intercept = |record: &str| {
        json!({"to": to, "event_type": "VIOLATION.INTERCEPT", "resource": {"sub_mchid": SUB_MCHID, "company_name": "示例",
               "record_id": record, "punish_plan": "拦截交易", "punish_time": "2026-11-27T23:50:00+08:00",
               "punish_description": "累计拦截订单11笔", "risk_type": "UNUSUAL_TRANSACTION", "risk_description": "交易异常"}})
    };
    for record in ["VI-1", "VI-2"] {
        assert_eq!(w.control.post("/send", intercept(record)).await["status"], 204);
    }
    w.settle().await;
    assert_eq!(violations(&w, "?event=INTERCEPT").await.len(), 2, "both stored");
    assert_eq!(deliveries_of(&w, "violation_intercept").await, 1, "one alert on the 27th");
    // Past midnight in Shanghai: a new day.
    w.app.advance(Duration::from_secs(15 * 60));
    assert_eq!(w.control.post("/send", intercept("VI-3")).await["status"], 204);
    w.settle().await;
    assert_eq!(deliveries_of(&w, "violation_intercept").await, 2, "one alert on the 28th");
    assert_eq!(w.control.post("/send", intercept("VI-4")).await["status"], 204);
    w.settle().await;
    assert_eq!(deliveries_of(&w, "violation_intercept").await, 2);
    w.sim.stop().await;
}

#[tokio::test]
async fn callbacks_are_registered_created_then_updated_then_left_alone() {
    let w = world().await;
    // The world registered loopback URLs directly; the provider's own registration takes over from them.
    let (status, shown) = w.app.get(&format!("/api/v1/providers/{}/callbacks", w.provider_id)).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["in_place"], false);
    assert_eq!(
        shown["expected_complaints"],
        format!("https://risk.example.com/callbacks/{}/complaints", w.provider_id)
    );
    let register = format!("/api/v1/providers/{}/register-callbacks", w.provider_id);
    let (status, first) = w.app.post(&register, &json!({})).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["complaints"]["action"], "updated");
    assert_eq!(first["violations"]["action"], "updated");
    let (_, again) = w.app.post(&register, &json!({})).await;
    assert_eq!(again["complaints"]["action"], "unchanged");
    assert_eq!(again["violations"]["action"], "unchanged");
    let (_, shown) = w.app.get(&format!("/api/v1/providers/{}/callbacks", w.provider_id)).await;
    assert_eq!(shown["in_place"], true);
    assert_eq!(shown["violations"], format!("https://risk.example.com/callbacks/{}/violations", w.provider_id));

    // A provider nothing was registered for: created. From the command line.
    let mut other = provider_body("1900000100");
    other["mchid"] = json!("1900000100");
    let client = w.app.state.wechat().get(&w.app.state, w.provider_id).await.expect("c").expect("p");
    client.delete_complaint_notification_url().await.expect("delete");
    client.delete_violation_notification_url().await.expect("delete");
    let mut cmd = wxrisk_command(&w.app.db);
    cmd.env("WXRISK_PUBLIC_URL", "https://risk.example.com").env("WXRISK_WECHATPAY_BASE_URL", w.sim.base_url()).args([
        "wechat",
        "register",
        "--provider",
        &w.provider_id.to_string(),
    ]);
    let output = tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("runs");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        out.contains("complaints: created https://risk.example.com/callbacks/") && out.contains("violations: created"),
        "{out}"
    );
    w.sim.stop().await;
}

#[tokio::test]
async fn registration_refuses_a_public_url_wechat_pay_cannot_call() {
    // Plain http on this machine is fine for the simulator, never for the real WeChat Pay.
    let app = spawn_app_env(TestDb::new().await, &[("WXRISK_PUBLIC_URL", "http://127.0.0.1:8080")], |b| b).await;
    let provider_id = app.create_provider("1900000100").await;
    let (status, answer) = app.post(&format!("/api/v1/providers/{provider_id}/register-callbacks"), &json!({})).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("WXRISK_PUBLIC_URL")), "{answer}");
    assert!(answer["message"].as_str().is_some_and(|m| m.contains("https")), "{answer}");
    let (status, _) = app.post("/api/v1/providers/999999/register-callbacks", &json!({})).await;
    assert_eq!(status, 400, "the public URL is checked first");
    app.stop().await;
}

#[tokio::test]
async fn a_sub_merchant_wechat_forbids_refunds_is_not_auto_refunded_and_the_provider_is_told() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    with_robot(&w).await;
    w.control
        .put(
            &format!("/limitations/{SUB_MCHID}"),
            json!({"limited_functions": ["NO_REFUND"], "recovery_specifications": [{"limitation_case_id": "C1",
                   "limitation_reason": "涉嫌交易纠纷", "recover_way": "提交资料", "recover_help_url": "https://kf.qq.com/x"}]}),
        )
        .await;
    assert_eq!(wxrisk::workflow::violations::schedule_daily(&w.app.state).await.expect("schedule"), 1);
    assert_eq!(wxrisk::workflow::violations::schedule_daily(&w.app.state).await.expect("again"), 0, "once a day");
    w.settle().await;
    let id = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 1000})).await;
    w.settle().await;
    assert!(w.sim_refunds().await.is_empty(), "no refund asked for");
    let at_wechat = w.sim_complaint(&id).await;
    assert_eq!(at_wechat["replies"], json!([REPLY_TEXT]), "still replied");
    assert_eq!(at_wechat["completed"], false);
    let ours = w.complaint(&id).await;
    assert!(ours["timeline"].as_array().expect("t").iter().any(|s| s["step"] == "refund"
        && s["outcome"] == "skipped"
        && s["detail"]["reason"].as_str().is_some_and(|r| r.starts_with("NO_REFUND"))));
    assert_eq!(deliveries_of(&w, "refund_failed").await, 1, "the provider is told");
    let merchant_id = {
        let (_, list) = w.app.get(&format!("/api/v1/merchants?mchid={SUB_MCHID}")).await;
        list["items"][0]["id"].as_i64().expect("id")
    };
    let (_, risk) = w.app.get(&format!("/api/v1/merchants/{merchant_id}/risk")).await;
    assert_eq!(risk["limited_functions"], json!(["NO_REFUND"]));
    w.sim.stop().await;
}

/// A complaint of `mchid`, `days_ago` days old, written as a sync would.
async fn seed_complaint(
    app: &TestApp,
    provider_id: i64,
    mchid: &str,
    n: usize,
    days_ago: i64,
    times: i64,
    platform: bool,
) -> i64 {
    let now = app.now();
    let at = now - days_ago * 86_400_000;
    let id = format!("SEED{mchid}{n:05}");
    let orders =
        json!([{"transaction_id": format!("TX{id}"), "out_trade_no": format!("OT{id}"), "amount": 1000}]).to_string();
    let write = ComplaintWrite {
        provider_id,
        complaint_id: &id,
        complainted_mchid: mchid,
        state: "PROCESSING",
        complaint_time: at,
        detail: "seed",
        problem_type: Some("OTHERS"),
        problem_description: None,
        apply_refund_amount: None,
        amount_total: 1000,
        payer_phone_masked: None,
        payer_openid: None,
        user_complaint_times: times,
        full_refunded: false,
        incoming_user_response: false,
        in_platform_service: platform,
        need_immediate_service: false,
        orders: &orders,
        detail_json: "{}",
        history_json: "[]",
        last_action_type: None,
        reply_due_at: at + 86_400_000,
        resolve_due_at: at + 3 * 86_400_000,
        fingerprint: "seed",
    };
    let mut conn = app.state.store().conn().await.expect("conn");
    complaint_store::upsert(&mut conn, &write, at).await.expect("seed").0
}

#[tokio::test]
async fn risk_figures_and_score_follow_a_seeded_history() {
    let w = world_with(&[("WXRISK_RISK__ALERT_SCORE", "30")]).await;
    let merchant_id = w.merchant(SUB_MCHID, None, false, true).await;
    w.merchant("1900000555", None, false, true).await;
    with_robot(&w).await;
    let app = &w.app;
    let p = w.provider_id;
    // Within 7 days: 2 complaints (one repeated); within 30: 2 more (one platform-assisted, one missed its
    // deadline); within 90: 1 more; older: 1 (never counted).
    let c1 = seed_complaint(app, p, SUB_MCHID, 1, 1, 1, false).await;
    seed_complaint(app, p, SUB_MCHID, 2, 3, 2, false).await;
    seed_complaint(app, p, SUB_MCHID, 3, 10, 1, true).await;
    let c4 = seed_complaint(app, p, SUB_MCHID, 4, 20, 1, false).await;
    seed_complaint(app, p, SUB_MCHID, 5, 60, 1, false).await;
    seed_complaint(app, p, SUB_MCHID, 6, 120, 1, false).await;
    seed_complaint(app, p, "1900000555", 1, 2, 1, false).await;
    let mut conn = app.state.store().conn().await.expect("conn");
    let now = app.now();
    complaint_store::add_step(&mut conn, c4, "sla_overdue", "failed", &json!({}), now - 17 * 86_400_000)
        .await
        .expect("step");
    // A refund of ¥600 accepted 2 days ago (its row is dated by creation).
    let refund = wxrisk::store::refunds::NewRefund {
        provider_id: p,
        complaint_id: "SEED190000010900001",
        sub_mchid: SUB_MCHID,
        transaction_id: "TX-SEED-1",
        out_trade_no: None,
        out_refund_no: "CR-SEED-1",
        amount: 60_000,
        total: 60_000,
        requested_by: "auto",
        holds_order: true,
    };
    wxrisk::store::refunds::create(&mut conn, &refund, now - 2 * 86_400_000).await.expect("refund");
    let update = wxrisk::store::refunds::RefundUpdate { status: "SUCCESS", ..Default::default() };
    wxrisk::store::refunds::update(&mut conn, p, "CR-SEED-1", &update, now).await.expect("update");
    drop(conn);
    let _ = c1;
    // One interception (a real callback through the simulator).
    w.control.post("/violations/intercepted", json!({"sub_mchid": SUB_MCHID, "orders": 12})).await;
    w.settle().await;

    let (status, risk) = app.get(&format!("/api/v1/merchants/{merchant_id}/risk")).await;
    assert_eq!(status, 200, "{risk}");
    assert_eq!(risk["last_7_days"]["complaints"], 2);
    assert_eq!(risk["last_7_days"]["repeat_complaints"], 1);
    assert_eq!(risk["last_30_days"]["complaints"], 4);
    assert_eq!(risk["last_30_days"]["platform_assisted"], 1);
    assert_eq!(risk["last_30_days"]["sla_misses"], 1);
    assert_eq!(risk["last_30_days"]["refunds"], 1);
    assert_eq!(risk["last_30_days"]["refunded_fen"], 60_000);
    assert_eq!(risk["last_30_days"]["interceptions"], 1);
    assert_eq!(risk["last_90_days"]["complaints"], 5);
    assert_eq!(risk["violations_by_type"], json!({"UNUSUAL_TRANSACTION": 1}));
    // 4 complaints × 2 + 1 repeat × 4 + 1 platform × 6 + 1 miss × 5 + ¥600 → 1 + 1 interception × 8 = 32.
    assert_eq!(risk["score"], 32);

    let (_, ranking) = app.get(&format!("/api/v1/risk/merchants?provider_id={p}")).await;
    let order: Vec<&str> =
        ranking["items"].as_array().expect("items").iter().map(|m| m["mchid"].as_str().expect("m")).collect();
    assert_eq!(order, [SUB_MCHID, "1900000555"]);
    assert_eq!(ranking["items"][1]["score"], 2);

    // The interception's risk check crossed the threshold of 30: the provider was told, once.
    assert_eq!(deliveries_of(&w, "risk_alert").await, 1);
    w.control
        .post(
            "/violations",
            json!({"event_type": "VIOLATION.PUNISH", "sub_mchid": SUB_MCHID, "punish_plan": "x",
        "punish_description": "", "risk_type": "FRAUD", "risk_description": "欺诈"}),
        )
        .await;
    w.settle().await;
    assert_eq!(deliveries_of(&w, "risk_alert").await, 1, "still over the line: not told again");
    w.sim.stop().await;
}

#[tokio::test]
async fn the_legacy_violation_path_is_served_with_and_without_the_prefix() {
    let w = world_with(&[("WXRISK_COMPLAINTS__LEGACY_PREFIX", "/prod-wxservicerisk-api")]).await;
    for (n, path) in [
        "/violation/violationbaseinfo/notify/violationNotifyCallBack",
        "/prod-wxservicerisk-api/violation/violationbaseinfo/notify/violationNotifyCallBack",
    ]
    .into_iter()
    .enumerate()
    {
        let sent = w
            .control
            .post(
                "/send",
                json!({"to": w.app.url(path), "event_type": "VIOLATION.PUNISH", "resource": {"sub_mchid": SUB_MCHID,
                       "company_name": "示例", "record_id": format!("VL-{n}"), "punish_plan": "警告", "punish_time": "2026-11-27T10:00:00+08:00",
                       "punish_description": "", "risk_type": "NEW_KIND_OF_RISK", "risk_description": "新型风险"}}),
            )
            .await;
        assert_eq!(sent["status"], 204, "{path}: {sent}");
    }
    // Complaint callbacks are refused on the violation path.
    let wrong = w
        .control
        .post("/send", json!({"to": w.app.url("/violation/violationbaseinfo/notify/violationNotifyCallBack"),
                               "event_type": "COMPLAINT.CREATE", "resource": {"complaint_id": "1", "action_type": "CREATE_COMPLAINT"}}))
        .await;
    assert_eq!(wrong["status"], 400);
    w.settle().await;
    let list = violations(&w, "").await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["risk_label"], "新型风险", "an unknown risk type keeps WeChat's own description");
    assert_eq!(list[0]["risk_type"], "NEW_KIND_OF_RISK");
    w.sim.stop().await;
}
