//! The console's sub-merchant pages: the list (search, filters, 50 a page, each row's risk score and complaints of
//! the last 30 days), create, edit and delete by operators only, CSRF and double submits, and the risk page at the
//! path risk alerts link to.

use serde_json::json;
use wxrisk::auth::Role;
use wxrisk::store::complaints::{self as complaint_store, ComplaintWrite};

use crate::console_client::{ConsoleClient, Page, hidden_value};
use crate::helpers::*;

pub const SP_MCHID: &str = "1900000100";

/// `(actor, action)` of every audit log entry, oldest first.
pub async fn audit(app: &TestApp) -> Vec<(String, String)> {
    let mut conn = app.state.store().conn().await.expect("conn");
    let rows =
        sqlx::query("select actor, action from audit_log order by id").fetch_all(&mut *conn).await.expect("audit");
    rows.iter().map(|r| (sqlx::Row::get(r, "actor"), sqlx::Row::get(r, "action"))).collect()
}

/// The part of a page from its first table body on (filters and menus left out).
pub fn table_of(page: &Page) -> &str {
    page.body.find("<tbody").map_or("", |at| &page.body[at..])
}

/// The table row of a page that mentions `text`.
pub fn row_of(page: &Page, text: &str) -> String {
    let offset = page.body.find("<tbody").unwrap_or(0);
    let at = page.body[offset..]
        .find(text)
        .map(|i| i + offset)
        .unwrap_or_else(|| panic!("{text} not in a table: {}", page.body));
    let start = page.body[..at].rfind("<tr").expect("row start");
    let end = page.body[at..].find("</tr>").expect("row end") + at;
    page.body[start..end].to_owned()
}

/// A complaint of `mchid` filed `days_ago` days ago, as a sync would write it.
pub async fn seed_complaint(app: &TestApp, provider_id: i64, mchid: &str, n: usize, days_ago: i64, times: i64) {
    let at = app.now() - days_ago * 86_400_000;
    let id = format!("CX{mchid}{n:05}");
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
        in_platform_service: false,
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
    complaint_store::upsert(&mut conn, &write, at).await.expect("seed");
}

/// WeChat limits refunds of `mchid` (as a limitations check would have stored it).
pub async fn seed_no_refund(app: &TestApp, provider_id: i64, mchid: &str) {
    let details = json!({"mchid": mchid, "limited_functions": ["NO_REFUND"], "recovery_specifications": [{
        "limitation_case_id": "CASE-1", "limitation_reason_type": "TRANSACTION_DISPUTE", "limitation_reason": "涉嫌交易纠纷",
        "limitation_reason_describe": "近期投诉较多", "relate_limitations": ["NO_REFUND"], "recover_way": "提交整改材料",
        "recover_help_url": "https://kf.qq.com/faq/recover.html", "limitation_date": "2026-11-20"}]});
    let mut conn = app.state.store().conn().await.expect("conn");
    wxrisk::store::violations::set_limitations(
        &mut conn,
        provider_id,
        mchid,
        "[\"NO_REFUND\"]",
        &details.to_string(),
        app.now(),
    )
    .await
    .expect("limitations");
}

#[tokio::test]
async fn operators_create_edit_and_delete_sub_merchants_and_viewers_only_look() {
    let app = spawn_app().await;
    let provider_id = app.create_provider(SP_MCHID).await;
    let pid = provider_id.to_string();
    let mut viewer = ConsoleClient::signed_in(&app, "watcher", Role::Viewer).await;
    let mut ops = ConsoleClient::signed_in(&app, "ops", Role::Operator).await;

    let page = viewer.get("/console/merchants").await;
    assert_eq!(page.status, 200);
    assert!(page.has("还没有子商户") && !page.has("新建子商户"), "{}", page.body);
    assert_eq!(viewer.get("/console/merchants/new").await.status, 403);
    let fields = [("provider_id", pid.as_str()), ("name", "示例门店"), ("mchid", "1900000109"), ("enabled", "on")];
    let refused = viewer.post("/console/merchants", &fields).await;
    assert_eq!(refused.status, 403);
    assert!(refused.has("你的角色不能执行此操作"), "{}", refused.body);
    assert_eq!(app.count("merchants").await, 0);

    let form = ops.get("/console/merchants/new").await;
    assert_eq!(form.status, 200);
    assert!(form.has("data-max=\"200\"") && form.has("测试服务商（1900000100）"), "{}", form.body);
    let idem = hidden_value(&form.body, "idem").expect("the form's key");
    let fields = [
        ("provider_id", pid.as_str()),
        ("name", "示例门店"),
        ("mchid", "1900000109"),
        ("reply_text", "您好，已为您原路退款。"),
        ("auto_refund", "on"),
        ("enabled", "on"),
        ("idem", idem.as_str()),
    ];
    // Without the session's token: refused, nothing made.
    assert_eq!(ops.post_raw("/console/merchants", &fields).await.status, 403);
    assert_eq!(app.count("merchants").await, 0);
    let created = ops.post("/console/merchants", &fields).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let location = created.location.clone().expect("to the new sub-merchant");
    assert!(location.starts_with("/console/merchants/"), "{location}");
    // The same form sent again (a double click): one sub-merchant.
    let again = ops.post("/console/merchants", &fields).await;
    assert_eq!((again.status, again.location.as_deref()), (303, Some(location.as_str())));
    assert_eq!(app.count("merchants").await, 1);
    let shown = ops.get(&location).await;
    assert_eq!(shown.status, 200);
    assert!(
        shown.has("示例门店") && shown.has("您好，已为您原路退款。") && shown.has("这个表单已经提交过"),
        "{}",
        shown.body
    );
    let id: i64 = location.rsplit('/').next().and_then(|s| s.parse().ok()).expect("id");
    let (_, api) = app.get(&format!("/api/v1/merchants/{id}")).await;
    assert_eq!((api["auto_refund"].as_bool(), api["enabled"].as_bool()), (Some(true), Some(true)), "{api}");

    // A reply over 200 characters: the form comes back with the error and what was typed.
    let long = "好".repeat(201);
    let bad =
        [("provider_id", pid.as_str()), ("name", "第二家门店"), ("mchid", "1900000110"), ("reply_text", long.as_str())];
    let page = ops.post("/console/merchants", &bad).await;
    assert_eq!(page.status, 400);
    assert!(page.has("reply_text") && page.has("第二家门店") && page.has("1900000110"), "{}", page.body);
    let taken = [("provider_id", pid.as_str()), ("name", "重复"), ("mchid", "1900000109")];
    let page = ops.post("/console/merchants", &taken).await;
    assert_eq!(page.status, 409);
    assert!(page.has("already has a sub-merchant with mchid 1900000109"), "{}", page.body);
    assert_eq!(app.count("merchants").await, 1);

    // Edit: the reply emptied means the provider's default; auto-refund off.
    let edit = ops.get(&format!("/console/merchants/{id}/edit")).await;
    assert_eq!(edit.status, 200);
    assert!(edit.has("value=\"示例门店\"") && edit.has("您好，已收到您的反馈，我们会尽快处理。"), "{}", edit.body);
    let change = [("name", "示例门店（新）"), ("mchid", "1900000109"), ("reply_text", ""), ("enabled", "on")];
    assert_eq!(viewer.post(&format!("/console/merchants/{id}"), &change).await.status, 403);
    assert_eq!(viewer.get(&format!("/console/merchants/{id}/edit")).await.status, 403);
    let saved = ops.post(&format!("/console/merchants/{id}"), &change).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, api) = app.get(&format!("/api/v1/merchants/{id}")).await;
    assert_eq!(api["name"], "示例门店（新）");
    assert_eq!(api["reply_text"], serde_json::Value::Null);
    assert_eq!(api["auto_refund"], false);
    assert_eq!(api["effective_reply_text"], "您好，已收到您的反馈，我们会尽快处理。");
    let page = viewer.get(&format!("/console/merchants/{id}")).await;
    assert!(page.has("示例门店（新）") && page.has("（服务商默认回复）") && !page.has("删除子商户"), "{}", page.body);

    // Delete: not by a viewer; an operator's goes, with its channels.
    assert_eq!(viewer.post(&format!("/console/merchants/{id}/delete"), &[]).await.status, 403);
    assert_eq!(ops.post_raw(&format!("/console/merchants/{id}/delete"), &[]).await.status, 403);
    let gone = ops.post(&format!("/console/merchants/{id}/delete"), &[]).await;
    assert_eq!((gone.status, gone.location.as_deref()), (303, Some("/console/merchants")));
    assert_eq!(app.count("merchants").await, 0);
    assert_eq!(ops.get(&format!("/console/merchants/{id}")).await.status, 404);

    let actions = audit(&app).await;
    for action in ["merchant.create", "merchant.update", "merchant.delete"] {
        assert_eq!(
            actions.iter().filter(|(who, what)| who == "user:ops" && what == action).count(),
            1,
            "{action}: {actions:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_list_searches_filters_pages_by_50_and_shows_each_rows_risk_and_recent_complaints() {
    let app = spawn_app().await;
    let p = app.create_provider(SP_MCHID).await;
    for i in 0..55 {
        let body = json!({"provider_id": p, "mchid": format!("{}", 1_900_001_000 + i), "name": format!("{i}号店"),
                          "enabled": i % 10 != 0});
        assert_eq!(app.post("/api/v1/merchants", &body).await.0, 201);
    }
    // The newest: 3 complaints in the last 30 days (one repeated) and 2 older ones; refunds limited by WeChat.
    for (n, days, times) in [(1, 1, 1), (2, 5, 2), (3, 29, 1), (4, 31, 1), (5, 60, 1)] {
        seed_complaint(&app, p, "1900001054", n, days, times).await;
    }
    seed_no_refund(&app, p, "1900001054").await;
    seed_complaint(&app, p, "1900001053", 1, 2, 1).await;
    // Another provider's complaint about the same mchid is not this sub-merchant's.
    let other = app.create_provider("1900000200").await;
    seed_complaint(&app, other, "1900001054", 9, 1, 1).await;

    let mut viewer = ConsoleClient::signed_in(&app, "watcher", Role::Viewer).await;
    let page = viewer.get(&format!("/console/merchants?provider_id={p}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body.matches("class=\"name-col\"").count(), 50, "50 a page");
    // 3 × 2 + 1 repeated × 4 + a limitation 25 = 35; the API's risk says the same.
    let newest = row_of(&page, "1900001054");
    assert!(newest.contains(">35</span>") && newest.contains("<td class=\"num\">3</td>"), "{newest}");
    let merchant_id = {
        let (_, list) = app.get("/api/v1/merchants?mchid=1900001054").await;
        list["items"][0]["id"].as_i64().expect("id")
    };
    let (_, risk) = app.get(&format!("/api/v1/merchants/{merchant_id}/risk")).await;
    assert_eq!((risk["score"].as_i64(), risk["last_30_days"]["complaints"].as_i64()), (Some(35), Some(3)), "{risk}");
    let second = row_of(&page, "1900001053");
    assert!(second.contains(">2</span>") && second.contains("<td class=\"num\">1</td>"), "{second}");
    assert!(row_of(&page, "1900001050").contains("停用"), "i % 10 == 0 is disabled");
    assert!(newest.contains("/console/providers/") && newest.contains("/merchants/1900001054/risk"), "{newest}");

    // The next page: the 5 oldest.
    let next =
        page.body.split("href=\"").find(|s| s.contains("cursor=")).and_then(|s| s.split('"').next()).expect("next");
    let next = next.replace("&#38;", "&");
    let older = viewer.get(&next).await;
    assert_eq!(older.body.matches("class=\"name-col\"").count(), 5, "{}", older.body);
    assert!(older.has("1900001000") && !older.has("1900001054"));

    for (query, expect) in
        [("q=42号", 1), ("q=1900001007", 1), ("q=190000100", 10), ("enabled=false", 6), ("q=不存在", 0)]
    {
        let found = viewer.get(&format!("/console/merchants?{query}")).await;
        assert_eq!(found.status, 200);
        assert_eq!(found.body.matches("class=\"name-col\"").count(), expect, "{query}");
    }
    // The API searches the same way.
    let (_, found) = app.get(&format!("/api/v1/merchants?q={}", "42号")).await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1), "{found}");
    let bad = viewer.get("/console/merchants?provider_id=abc").await;
    assert_eq!(bad.status, 400);
    assert!(bad.has("provider_id"), "{}", bad.body);

    // In English.
    assert_eq!(viewer.get("/console/lang?to=en&next=/console/merchants").await.status, 303);
    let english = viewer.get("/console/merchants").await;
    assert!(english.has("lang=\"en\"") && english.has("Sub-merchants") && english.has("Complaints, 30 days"));
    app.stop().await;
}

#[tokio::test]
async fn the_risk_page_at_the_alerts_link_shows_score_figures_and_limitations() {
    let app = spawn_app().await;
    let p = app.create_provider(SP_MCHID).await;
    let id = app.create_merchant(p, "1900000109").await;
    for (n, days, times) in [(1, 2, 1), (2, 10, 2), (3, 50, 1)] {
        seed_complaint(&app, p, "1900000109", n, days, times).await;
    }
    seed_no_refund(&app, p, "1900000109").await;
    let mut viewer = ConsoleClient::signed_in(&app, "watcher", Role::Viewer).await;
    let path = wxrisk::notify::links::merchant_risk(p, "1900000109");
    let page = viewer.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // 2 complaints × 2 + 1 repeated × 4 + limited 25 = 33.
    assert!(page.has(">33</span>") && page.has("商户1900000109"), "{}", page.body);
    let complaints = row_of(&page, "<th>投诉</th>");
    assert!(
        complaints.contains(">1</td>") && complaints.contains(">2</td>") && complaints.contains(">3</td>"),
        "{complaints}"
    );
    assert!(page.has("禁止退款（NO_REFUND）") && page.has("涉嫌交易纠纷") && page.has("提交整改材料"), "{}", page.body);
    assert!(page.has("href=\"https://kf.qq.com/faq/recover.html\""), "WeChat's guidance is a link");
    assert!(page.has(&format!("/console/merchants/{id}")));
    // A sub-merchant that is not registered but was complained about has a risk page too.
    seed_complaint(&app, p, "1900000555", 1, 1, 1).await;
    let unknown = viewer.get(&wxrisk::notify::links::merchant_risk(p, "1900000555")).await;
    assert_eq!(unknown.status, 200);
    assert!(
        unknown.has("未登记的子商户") && unknown.has(">2</span>") && unknown.has("尚未向微信支付查询"),
        "{}",
        unknown.body
    );
    for missing in
        ["/console/providers/999/merchants/1900000109/risk", &format!("/console/providers/{p}/merchants/abc/risk")]
    {
        assert_eq!(viewer.get(missing).await.status, 404, "{missing}");
    }
    assert_eq!(viewer.get("/console/lang?to=en&next=/console").await.status, 303);
    let english = viewer.get(&path).await;
    assert!(english.has("Missed deadlines") && english.has("No refunds (NO_REFUND)"), "{}", english.body);
    app.stop().await;
}
