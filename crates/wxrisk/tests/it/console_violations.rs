//! The console's violation pages against the simulator: records arrive through WeChat Pay's callbacks, the list
//! filters them, and a record's page — at the path violation notifications link to — shows its labels, every event
//! about it and the sub-merchant's limitations with WeChat's recovery guidance.

use serde_json::json;
use wxrisk::auth::Role;

use crate::complaints::{SUB_MCHID, world};
use crate::console_client::ConsoleClient;
use crate::console_merchants::{row_of, table_of};

#[tokio::test]
async fn violations_are_listed_filtered_and_shown_with_events_and_recovery_guidance() {
    let w = world().await;
    w.merchant(SUB_MCHID, None, false, true).await;
    w.control
        .put(
            &format!("/limitations/{SUB_MCHID}"),
            json!({"limited_functions": ["NO_REFUND", "NO_WITHDRAWAL"], "recovery_specifications": [{
                "limitation_case_id": "CASE-7", "limitation_reason_type": "TRANSACTION_DISPUTE",
                "limitation_reason": "涉嫌交易纠纷", "limitation_reason_describe": "近 30 日投诉率过高",
                "relate_limitations": ["NO_REFUND"], "recover_way": "提交整改材料",
                "recover_help_url": "https://kf.qq.com/faq/recover.html"},
                {"limitation_case_id": "CASE-8", "limitation_reason": "其他", "recover_way": "联系客服",
                 "recover_help_url": "javascript:alert(1)"}]}),
        )
        .await;
    let punished = w
        .control
        .post(
            "/violations",
            json!({"event_type": "VIOLATION.PUNISH", "sub_mchid": SUB_MCHID, "company_name": "示例科技有限公司",
                   "punish_plan": "暂停支付功能7天", "punish_description": "存在<b>交易纠纷</b>", "risk_type": "TRANSACTION_DISPUTE",
                   "risk_description": "交易纠纷"}),
        )
        .await;
    let record_id = punished["record_id"].as_str().expect("record").to_owned();
    w.control.post("/violations/intercepted", json!({"sub_mchid": SUB_MCHID, "orders": 11})).await;
    w.settle().await;
    w.control
        .post(
            "/violations",
            json!({"event_type": "VIOLATION.APPEAL", "sub_mchid": SUB_MCHID, "record_id": record_id,
                   "punish_plan": "申诉通过，恢复支付功能", "punish_description": "", "risk_type": "APPEAL_SUCCESSFUL",
                   "risk_description": "申诉成功"}),
        )
        .await;
    w.settle().await;

    let mut viewer = ConsoleClient::signed_in(&w.app, "watcher", Role::Viewer).await;
    let list = viewer.get("/console/violations").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let punish = row_of(&list, "暂停支付功能7天");
    assert!(punish.contains("处罚") && punish.contains("交易纠纷") && punish.contains("申诉成功"), "{punish}");
    assert!(punish.contains(&wxrisk::notify::links::violation(w.provider_id, &record_id)), "{punish}");
    let intercept = row_of(&list, "badge warn");
    assert!(intercept.contains("交易异常"), "{intercept}");

    for (query, punish_shown, intercept_shown) in [
        ("kind=PUNISH", true, false),
        ("kind=INTERCEPT", false, true),
        ("risk_type=UNUSUAL_TRANSACTION", false, true),
        (&format!("mchid={SUB_MCHID}&provider_id={}", w.provider_id), true, true),
        ("mchid=1900000555", false, false),
        ("since=2000-01-01&until=2000-01-02", false, false),
    ] {
        let page = viewer.get(&format!("/console/violations?{query}")).await;
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        let table = table_of(&page);
        assert_eq!(
            (table.contains("暂停支付功能7天"), table.contains("交易异常")),
            (punish_shown, intercept_shown),
            "{query}"
        );
    }
    let bad = viewer.get("/console/violations?since=yesterday").await;
    assert_eq!(bad.status, 400);
    assert!(bad.has("since") && bad.has("neither RFC 3339 nor a date"), "{}", bad.body);

    // The record's page, as the notification links it.
    let page = viewer.get(&wxrisk::notify::links::violation(w.provider_id, &record_id)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for text in [
        "交易纠纷",
        "TRANSACTION_DISPUTE",
        "暂停支付功能7天",
        "示例科技有限公司",
        "门店1900000109",
        "申诉成功（APPEAL_SUCCESSFUL）",
        "VIOLATION.PUNISH",
        "VIOLATION.APPEAL",
        "禁止退款（NO_REFUND）",
        "禁止提现（NO_WITHDRAWAL）",
        "近 30 日投诉率过高",
        "提交整改材料",
        "href=\"https://kf.qq.com/faq/recover.html\"",
    ] {
        assert!(page.has(text), "{text} missing: {}", page.body);
    }
    // What WeChat sent is text, never markup or a script link.
    assert!(page.has("存在&#60;b&#62;交易纠纷&#60;/b&#62;") && !page.has("<b>交易纠纷</b>"), "{}", page.body);
    assert!(!page.has("href=\"javascript:"), "{}", page.body);
    assert!(page.has("javascript:alert(1)"), "shown as text");
    assert_eq!(page.body.matches("<li class=\"info\">").count(), 2, "two events about the record");

    assert_eq!(viewer.get(&format!("/console/providers/{}/violations/NO-SUCH", w.provider_id)).await.status, 404);
    assert_eq!(viewer.get(&format!("/console/providers/999/violations/{record_id}")).await.status, 404);
    assert_eq!(viewer.get("/console/lang?to=en&next=/console").await.status, 303);
    let english = viewer.get(&wxrisk::notify::links::violation(w.provider_id, &record_id)).await;
    assert!(
        english.has("Punishment") && english.has("No refunds (NO_REFUND)") && english.has("Way back"),
        "{}",
        english.body
    );
    let english = viewer.get("/console/violations").await;
    assert!(english.has("Violations") && english.has("Interception"), "{}", english.body);
    w.sim.stop().await;
}
