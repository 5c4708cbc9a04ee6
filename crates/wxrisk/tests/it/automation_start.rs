//! Connecting a provider that already has complaints (issue 10, point 4): complaints filed before the provider's
//! `automation_since` are recorded and listed, summed up in one digest, and never replied to, refunded or completed
//! by wxrisk itself; operators act on them through the API.

use std::time::Duration;

use serde_json::{Value, json};

use crate::complaints::{REPLY_TEXT, SUB_MCHID, World, world};

async fn deliveries(w: &World, event: &str) -> Vec<Value> {
    let (status, body) = w.app.get(&format!("/api/v1/deliveries?event={event}")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn listed(w: &World, historical: bool) -> Vec<String> {
    let (status, body) = w.app.get(&format!("/api/v1/complaints?historical={historical}")).await;
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<String> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["complaint_id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// Run a reconciliation, then let the backlog digest (which waits a minute for the syncs) go out.
async fn reconcile(w: &World) {
    wxrisk::workflow::reconcile::schedule(&w.app.state).await.expect("schedule");
    w.settle().await;
    w.app.advance(Duration::from_secs(61));
    w.settle().await;
}

#[tokio::test]
async fn complaints_from_before_the_automation_start_are_recorded_and_summed_up_once_but_not_acted_on() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    w.control.post("/robots", json!({"kind": "wecom", "token": "ops"})).await;
    let channel = json!({"provider_id": w.provider_id, "kind": "wecom_robot", "settings": {"webhook_key": "ops"}});
    assert_eq!(w.app.post("/api/v1/channels", &channel).await.0, 201);
    // The provider's history: three complaints, one of them already handled at WeChat Pay.
    let mut old = Vec::new();
    for amount in [300, 500, 700] {
        old.push(w.complain(json!({"sub_mchid": SUB_MCHID, "amount": amount, "notify": false})).await);
    }
    // An hour later wxrisk starts acting for this provider.
    w.advance(Duration::from_secs(3600)).await;
    let since = wxrisk::clock::format_shanghai(w.app.now());
    let (status, provider) =
        w.app.patch(&format!("/api/v1/providers/{}", w.provider_id), &json!({"automation_since": since})).await;
    assert_eq!(status, 200, "{provider}");
    assert_eq!(provider["automation_since"], json!(since));
    let (status, body) =
        w.app.patch(&format!("/api/v1/providers/{}", w.provider_id), &json!({"automation_since": "soon"})).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("automation_since")), "{body}");
    // One of the old complaints is handled by the merchant meanwhile; WeChat Pay tells us (a callback about an old
    // complaint: recorded, nothing to do).
    w.control
        .post(&format!("/complaints/{}/actions", old[2]), json!({"action_type": "MERCHANT_CONFIRM_COMPLETE"}))
        .await;
    w.settle().await;
    w.advance(Duration::from_secs(5)).await;
    let new = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 900, "notify": false})).await;

    reconcile(&w).await;

    for id in &old {
        let at_wechat = w.sim_complaint(id).await;
        assert_eq!(at_wechat["replies"], json!([]), "{id}: not replied to");
        let ours = w.complaint(id).await;
        assert_eq!(ours["historical"], true, "{id}");
        assert!(ours["refunds"].as_array().is_some_and(Vec::is_empty), "{id}: not refunded");
        assert!(ours["completed_at"].is_null());
    }
    assert_eq!(w.sim_complaint(&old[0]).await["completed"], false, "not completed by wxrisk");
    let at_wechat = w.sim_complaint(&new).await;
    assert_eq!(at_wechat["replies"], json!([REPLY_TEXT]), "the new complaint is handled as usual");
    assert_eq!(at_wechat["completed"], true);
    let refunds = w.sim_refunds().await;
    assert_eq!(refunds.len(), 1, "only the new complaint's order: {refunds:?}");
    assert_eq!(refunds[0]["refund"]["amount"]["refund"], 900);

    let mut old_sorted = old.clone();
    old_sorted.sort();
    assert_eq!(listed(&w, true).await, old_sorted);
    assert_eq!(listed(&w, false).await, vec![new.clone()]);
    // One digest to the provider; no notification, and no deadline alert, per old complaint.
    let digests = deliveries(&w, "complaints_backlog").await;
    assert_eq!(digests.len(), 1, "{digests:?}");
    assert_eq!(deliveries(&w, "complaint_created").await.len(), 1, "only the new complaint's");
    assert_eq!(w.count_jobs("complaint.sla").await, 4, "the new complaint's four deadline checks only");
    let robots = w.control.get("/robots/messages").await;
    let digest = robots
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m.to_string())
        .find(|m| m.contains("历史投诉汇总"))
        .expect("the digest reached the provider's robot");
    assert!(digest.contains("3 起投诉未自动处理"), "{digest}");
    assert!(digest.contains("¥15.00"), "the amount of the three orders: {digest}");
    assert!(digest.contains("尚未完结") && digest.contains("：2"), "two still open: {digest}");

    // The next reconciliation finds nothing new: no second digest.
    w.advance(Duration::from_secs(600)).await;
    reconcile(&w).await;
    assert_eq!(deliveries(&w, "complaints_backlog").await.len(), 1);

    // A user continuing an old complaint is news: the provider is told, and still nothing is done by itself.
    w.control.post(&format!("/complaints/{}/actions", old[0]), json!({"action_type": "CONTINUE_COMPLAINT"})).await;
    w.settle().await;
    assert_eq!(deliveries(&w, "complaint_continued").await.len(), 1);
    assert_eq!(w.sim_complaint(&old[0]).await["replies"], json!([]));
    assert_eq!(w.sim_refunds().await.len(), 1);

    // An operator acts on an old complaint by hand.
    let (status, body) =
        w.app.post(&format!("/api/v1/complaints/{}/reply", old[1]), &json!({"text": "您好，已为您处理。"})).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = w.app.post(&format!("/api/v1/complaints/{}/refund", old[1]), &json!({})).await;
    assert_eq!(status, 202, "{body}");
    w.settle().await;
    assert_eq!(w.sim_complaint(&old[1]).await["replies"], json!(["您好，已为您处理。"]));
    assert_eq!(w.sim_refunds().await.len(), 2);
    w.sim.stop().await;
}

#[tokio::test]
async fn a_new_provider_acts_on_complaints_filed_after_it_was_added_and_its_start_shows_in_the_api() {
    let w = world().await;
    let (status, provider) = w.app.get(&format!("/api/v1/providers/{}", w.provider_id)).await;
    assert_eq!(status, 200);
    let since = wxrisk::clock::parse_operator_time(provider["automation_since"].as_str().expect("since"), false)
        .expect("a time");
    assert!(since <= w.app.now() && w.app.now() - since < 1000, "defaults to when it was created");
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    let id = w.complain(json!({"sub_mchid": SUB_MCHID})).await;
    w.settle().await;
    assert_eq!(w.sim_complaint(&id).await["completed"], true);
    assert_eq!(w.complaint(&id).await["historical"], false);
    w.sim.stop().await;
}
