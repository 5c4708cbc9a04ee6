//! The console's dashboard against the simulator: what needs a person — a complaint near and then past its
//! deadline, a refund WeChat Pay refused, a dead delivery, a rejected callback — comes first, each linking to where
//! it is handled; then the day, week and month figures, the per-day chart and the riskiest sub-merchants.

use std::time::Duration;

use serde_json::json;
use wxrisk::auth::Role;

use crate::complaints::{SUB_MCHID, world};
use crate::console_client::ConsoleClient;
use crate::console_merchants::row_of;

/// The section of the page that starts with `heading`, up to the next `<section` (or the end).
fn section<'a>(body: &'a str, heading: &str) -> &'a str {
    let at = body.find(heading).unwrap_or_else(|| panic!("no {heading} in {body}"));
    let end = body[at..].find("<section").map_or(body.len(), |e| e + at);
    &body[at..end]
}

#[tokio::test]
async fn what_needs_a_person_comes_first_then_the_figures_of_the_last_days() {
    let w = world().await;
    let mut viewer = ConsoleClient::signed_in(&w.app, "watcher", Role::Viewer).await;

    // Nothing has happened: nothing needs a person, every figure is zero.
    let page = viewer.get("/console").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.has("目前没有需要处理的事项"), "{}", page.body);
    let figures = row_of(&page, "退款成功");
    assert!(figures.contains("0 笔<span class=\"amount\">¥0.00</span>"), "{figures}");
    assert!(!page.has("即将超时或已超时的投诉"));

    // A sub-merchant with auto-refund whose refund WeChat Pay refuses (and does not have): FAILED.
    w.merchant(SUB_MCHID, Some("您好，已为您退款"), true, true).await;
    w.control
        .post(
            "/faults",
            json!({"method": "POST", "path": "/v3/refund/domestic/refunds", "count": 1,
                   "action": {"kind": "respond", "status": 403, "code": "USER_ACCOUNT_ABNORMAL"}}),
        )
        .await;
    let refused = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 4200})).await;
    // A disabled sub-merchant's complaint: recorded, nothing done, so its reply deadline runs.
    w.merchant("1900000201", None, false, false).await;
    let waiting = w
        .complain(json!({"sub_mchid": "1900000201", "amount": 1990, "problem_type": "REFUND",
                                    "apply_refund_amount": 1990}))
        .await;
    // A provider channel no robot answers: its deliveries die at once (the robot says the key is invalid).
    let channel = json!({"provider_id": w.provider_id, "kind": "wecom_robot", "settings": {"webhook_key": "nobody"}});
    assert_eq!(w.app.post("/api/v1/channels", &channel).await.0, 201);
    w.settle().await;
    // Someone knocks at the callback door without WeChat Pay's signature.
    let knock =
        w.app.post_raw(&format!("/callbacks/{}/complaints", w.provider_id), "application/json", "{\"id\":\"x\"}").await;
    assert!(knock.0 >= 400, "{knock:?}");

    // 23 hours on, the disabled sub-merchant's complaint is within two hours of its reply deadline.
    w.advance(Duration::from_secs(23 * 3600)).await;
    w.settle().await;
    // (The session idled out meanwhile.)
    viewer.sign_in("watcher", "watcher-password-1").await;
    let page = viewer.get("/console").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.has("目前没有需要处理的事项"), "{}", page.body);
    let due = section(&page.body, "即将超时或已超时的投诉");
    let row = row_of(&page, &waiting);
    assert!(
        row.contains("还剩 ") && row.contains("badge due") && row.contains("回复") && row.contains("申请退款"),
        "{row}"
    );
    assert!(row.contains("¥19.90") && row.contains("门店1900000201"), "{row}");
    assert!(row.contains(&wxrisk::notify::links::complaint(w.provider_id, &waiting)), "{row}");
    assert!(!due.contains(&refused), "a handled complaint is not due: {due}");

    let refunds = section(&page.body, "退款未成功（近 30 天）");
    assert!(
        refunds.contains(&refused) && refunds.contains("¥42.00") && refunds.contains("USER_ACCOUNT_ABNORMAL"),
        "{refunds}"
    );
    let dead = section(&page.body, "失败的任务");
    assert!(dead.contains("/console/jobs/") && dead.contains("wecom_robot"), "{dead}");
    // The knock was 23 hours ago: not in the last hour any more.
    assert!(!page.has("近 1 小时被拒的回调"), "{}", page.body);

    // Past the deadline it is overdue; a fresh knock shows among the last hour's rejections.
    w.advance(Duration::from_secs(2 * 3600)).await;
    w.settle().await;
    w.app.post_raw(&format!("/callbacks/{}/complaints", w.provider_id), "application/json", "{\"id\":\"y\"}").await;
    let page = viewer.get("/console").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let row = row_of(&page, &waiting);
    assert!(row.contains("已超时 ") && row.contains("badge overdue"), "{row}");
    let rejected = section(&page.body, "近 1 小时被拒的回调");
    assert!(
        rejected.contains("/console/rejections")
            && rejected.contains(&format!("/callbacks/{}/complaints", w.provider_id)),
        "{rejected}"
    );

    // The figures: both complaints were filed yesterday now (25 hours ago) — in the week, not today.
    let complaints = row_of(&page, "<th scope=\"row\">投诉</th>");
    let cells: Vec<&str> =
        complaints.split("<td class=\"num\">").skip(1).map(|c| c.split('<').next().unwrap_or("")).collect();
    assert_eq!(cells, ["0", "2", "2"], "{complaints}");
    let failed = row_of(&page, "退款未成功（失败");
    assert!(failed.contains("1 笔<span class=\"amount\">¥42.00</span>"), "{failed}");
    // The chart has 30 days and says how many complaints they hold.
    assert_eq!(page.body.matches("<rect class=\"bar complaints\"").count(), 30);
    assert!(page.has("投诉 2"), "{}", page.body);

    // In English too.
    let english = viewer.get("/console/lang?to=en&next=/console").await;
    assert_eq!(english.status, 303);
    let page = viewer.get("/console").await;
    assert!(page.has("Complaints due soon or overdue") && page.has(" overdue</span>"), "{}", page.body);
    assert!(page.has("Refunds not made (last 30 days)"), "{}", page.body);
    w.sim.stop().await;
}

#[tokio::test]
async fn the_riskiest_sub_merchants_are_ranked_by_their_score_now() {
    let w = world().await;
    w.merchant(SUB_MCHID, None, false, true).await;
    for _ in 0..3 {
        w.complain(json!({"sub_mchid": SUB_MCHID})).await;
    }
    w.complain(json!({"sub_mchid": "1900000333"})).await;
    w.control
        .post(
            "/violations",
            json!({"event_type": "VIOLATION.PUNISH", "sub_mchid": "1900000333", "company_name": "某公司",
                   "punish_plan": "暂停支付功能", "punish_description": "", "risk_type": "TRANSACTION_DISPUTE",
                   "risk_description": "交易纠纷"}),
        )
        .await;
    w.settle().await;
    let mut viewer = ConsoleClient::signed_in(&w.app, "watcher", Role::Viewer).await;
    let page = viewer.get("/console").await;
    let risk = section(&page.body, "风险最高的子商户");
    let registered = risk.find(SUB_MCHID).expect("registered one ranked");
    let punished = risk.find("1900000333").expect("unregistered one ranked too");
    // A punishment weighs more than three complaints.
    assert!(punished < registered, "{risk}");
    assert!(risk.contains(&wxrisk::notify::links::merchant_risk(w.provider_id, SUB_MCHID)), "{risk}");
    assert!(risk.contains(&format!("门店{SUB_MCHID}")), "{risk}");

    // Thirty-one days on, nothing counts any more: nobody is ranked.
    w.advance(Duration::from_secs(31 * 86_400)).await;
    viewer.sign_in("watcher", "watcher-password-1").await;
    let page = viewer.get("/console").await;
    assert!(page.has("近 30 天没有子商户有风险分"), "{}", page.body);
    w.sim.stop().await;
}

#[tokio::test]
async fn the_dashboard_needs_a_signed_in_user() {
    let w = world().await;
    let mut anonymous = ConsoleClient::new(&w.app);
    let page = anonymous.get("/console").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/console/login?next=%2Fconsole"));
    w.sim.stop().await;
}
