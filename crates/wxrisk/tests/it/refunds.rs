//! Money paths (issue 10, points 1–3): a refund is never called failed on a refusal alone, an order has one
//! refund that counts at a time, refund numbers never collide. Against the simulator over real HTTP; the race
//! between two worker processes is in `cluster.rs`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::complaints::{REPLY_TEXT, SUB_MCHID, World, steps, world};
use crate::helpers::{TestDb, test_config};

const REFUNDS_PATH: &str = "/v3/refund/domestic/refunds";

async fn fault(w: &World, method: &str, path: &str, action: Value) {
    w.control.post("/faults", json!({"method": method, "path": path, "count": 1, "action": action})).await;
}

fn refund_rows(complaint: &Value) -> Vec<Value> {
    complaint["refunds"].as_array().cloned().unwrap_or_default()
}

/// The refund WeChat Pay made, although it answered the request with a refusal: recorded as what WeChat Pay says it
/// is, and the order is not refunded again — neither by a continued complaint nor by an operator who does not say
/// "additional". (The user asked for less than the order, so a second refund would be paid, not refused.)
#[tokio::test]
async fn a_refused_request_whose_refund_was_made_is_not_failed_and_the_order_is_not_paid_twice() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    fault(&w, "POST", REFUNDS_PATH, json!({"kind": "apply_then_respond", "status": 400, "code": "INVALID_REQUEST"}))
        .await;
    let id = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 990, "apply_refund_amount": 400})).await;
    w.settle().await;

    let ours = w.complaint(&id).await;
    let rows = refund_rows(&ours);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "PROCESSING", "WeChat Pay has it: not FAILED ({rows:?})");
    assert!(!steps(&ours).iter().any(|s| s == "refund_failed"), "{:?}", steps(&ours));
    assert_eq!(w.sim_complaint(&id).await["completed"], true, "accepted, so the complaint is handled");

    // The user complains again: the order has its refund already.
    w.control.post(&format!("/complaints/{id}/actions"), json!({"action_type": "CONTINUE_COMPLAINT"})).await;
    w.settle().await;
    // An operator asking without "additional" is told why not.
    let (status, body) = w.app.post(&format!("/api/v1/complaints/{id}/refund"), &json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("additional")), "{body}");
    let refunds = w.sim_refunds().await;
    assert_eq!(refunds.len(), 1, "one refund of the order at WeChat Pay: {refunds:?}");
    assert_eq!(refunds[0]["refund"]["amount"]["refund"], 400);

    // An operator who means it: an additional refund of what is left (at most 990 - 400).
    let transaction_id = rows[0]["transaction_id"].as_str().expect("tx").to_owned();
    let too_much = json!({"transaction_id": transaction_id, "amount": 600, "additional": true});
    let (status, body) = w.app.post(&format!("/api/v1/complaints/{id}/refund"), &too_much).await;
    assert_eq!(status, 400, "{body}");
    let extra = json!({"transaction_id": transaction_id, "amount": 590, "additional": true});
    let (status, body) = w.app.post(&format!("/api/v1/complaints/{id}/refund"), &extra).await;
    assert_eq!(status, 202, "{body}");
    w.settle().await;
    let rows = refund_rows(&w.complaint(&id).await);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1]["holds_order"], false);
    assert!(rows[1]["out_refund_no"].as_str().is_some_and(|n| n.ends_with("-R1")), "{rows:?}");
    assert_eq!(w.sim_refunds().await.len(), 2);
    w.sim.stop().await;
}

/// A refusal for a refund WeChat Pay does not have: confirmed by asking, FAILED, and the order is free again.
#[tokio::test]
async fn a_refused_refund_that_wechat_does_not_have_is_failed_and_frees_its_order() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    w.control.post("/robots", json!({"kind": "wecom", "token": "ops"})).await;
    let channel = json!({"provider_id": w.provider_id, "kind": "wecom_robot", "settings": {"webhook_key": "ops"}});
    assert_eq!(w.app.post("/api/v1/channels", &channel).await.0, 201);
    fault(&w, "POST", REFUNDS_PATH, json!({"kind": "respond", "status": 403, "code": "USER_ACCOUNT_ABNORMAL"})).await;
    let id = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 700})).await;
    w.settle().await;

    let ours = w.complaint(&id).await;
    let rows = refund_rows(&ours);
    assert_eq!(rows[0]["status"], "FAILED", "{rows:?}");
    assert!(
        rows[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("USER_ACCOUNT_ABNORMAL") && e.contains("nothing was paid"))
    );
    // WeChat Pay was asked about this very number before it was called failed.
    let requests = w.control.get("/requests").await;
    let number = rows[0]["out_refund_no"].as_str().expect("number");
    assert!(
        requests.as_array().expect("log").iter().any(|r| r["method"] == "GET"
            && r["target"].as_str().is_some_and(|t| t.starts_with(&format!("{REFUNDS_PATH}/{number}")))),
        "no query of {number}: {requests}"
    );
    assert_eq!(w.sim_complaint(&id).await["completed"], false, "not handled without its money");
    let (_, alerts) = w.app.get("/api/v1/deliveries?event=refund_failed").await;
    assert_eq!(alerts["items"].as_array().map(Vec::len), Some(1), "the provider is told: {alerts}");
    // The order is free: an operator may refund it without "additional".
    let (status, body) = w.app.post(&format!("/api/v1/complaints/{id}/refund"), &json!({})).await;
    assert_eq!(status, 202, "{body}");
    w.settle().await;
    let rows = refund_rows(&w.complaint(&id).await);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["status"], "PROCESSING");
    assert_eq!(w.sim_refunds().await.len(), 1);
    w.sim.stop().await;
}

/// A refusal, and the question whether the refund exists fails too: the outcome is unknown, so the refund stays
/// REQUESTED and holds its order; the job asks again later with the same number.
#[tokio::test]
async fn a_refusal_that_cannot_be_checked_leaves_the_refund_unknown_and_holding_its_order() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    fault(&w, "POST", REFUNDS_PATH, json!({"kind": "respond", "status": 400, "code": "INVALID_REQUEST"})).await;
    fault(&w, "GET", REFUNDS_PATH, json!({"kind": "respond", "status": 500, "code": "SYSTEM_ERROR"})).await;
    let id = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 500})).await;
    w.settle().await;

    let rows = refund_rows(&w.complaint(&id).await);
    assert_eq!(rows[0]["status"], "REQUESTED", "{rows:?}");
    let (status, body) = w.app.post(&format!("/api/v1/complaints/{id}/refund"), &json!({})).await;
    assert_eq!(status, 409, "an unknown refund holds the order: {body}");
    assert!(w.sim_refunds().await.is_empty());

    // The retry asks for the same refund, which WeChat Pay now makes.
    w.advance(Duration::from_secs(11)).await;
    w.settle().await;
    let rows = refund_rows(&w.complaint(&id).await);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "PROCESSING", "{rows:?}");
    assert_eq!(w.sim_refunds().await.len(), 1);
    assert_eq!(w.sim_complaint(&id).await["completed"], true);
    w.sim.stop().await;
}

/// Two orders of one complaint whose transaction ids end alike get two refunds (their numbers were once cut to the
/// last 8 characters, so the second was taken for the first and skipped).
#[tokio::test]
async fn two_orders_ending_alike_are_both_refunded_under_their_own_numbers() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    let mut orders = Vec::new();
    for (transaction_id, amount) in [("4200000001202612010000000001", 300), ("4200000002202612010000000001", 450)] {
        let order = w
            .control
            .post("/orders", json!({"sub_mchid": SUB_MCHID, "amount": amount, "transaction_id": transaction_id}))
            .await;
        orders.push(order["transaction_id"].as_str().expect("tx").to_owned());
    }
    let id = w.complain(json!({"sub_mchid": SUB_MCHID, "transaction_ids": orders})).await;
    w.settle().await;

    let refunds = w.sim_refunds().await;
    assert_eq!(refunds.len(), 2, "{refunds:?}");
    let mut refunded: Vec<(String, i64)> = refunds
        .iter()
        .map(|r| {
            (
                r["refund"]["transaction_id"].as_str().expect("tx").to_owned(),
                r["refund"]["amount"]["refund"].as_i64().expect("fen"),
            )
        })
        .collect();
    refunded.sort();
    assert_eq!(refunded, vec![(orders[0].clone(), 300), (orders[1].clone(), 450)]);
    let rows = refund_rows(&w.complaint(&id).await);
    assert_ne!(rows[0]["out_refund_no"], rows[1]["out_refund_no"]);
    assert_eq!(w.sim_complaint(&id).await["completed"], true, "completed once both were accepted");
    w.sim.stop().await;
}

/// Two complaints about one order, handled one after the other: the second finds the order refunded, makes no
/// refund of its own, and is completed once that refund is accepted.
#[tokio::test]
async fn a_second_complaint_about_a_refunded_order_is_completed_without_a_second_refund() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    let first = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 990, "apply_refund_amount": 300})).await;
    w.settle().await;
    let transaction_id =
        w.sim_complaint(&first).await["complaint"]["complaint_order_info"][0]["transaction_id"].clone();
    let second =
        w.complain(json!({"sub_mchid": SUB_MCHID, "transaction_id": transaction_id, "apply_refund_amount": 300})).await;
    w.settle().await;
    assert_eq!(w.sim_refunds().await.len(), 1);
    let ours = w.complaint(&second).await;
    assert!(refund_rows(&ours).is_empty());
    let skipped = ours["timeline"]
        .as_array()
        .expect("t")
        .iter()
        .any(|s| s["step"] == "refund" && s["outcome"] == "skipped" && s["detail"]["complaint_id"] == json!(first));
    assert!(skipped, "the timeline names the refund that holds the order: {}", ours["timeline"]);
    assert_eq!(w.sim_complaint(&second).await["completed"], true);
    w.sim.stop().await;
}

/// A refund held open by WeChat Pay's silence keeps the second complaint's completion waiting, and a refund that
/// fails keeps it from being reported handled.
#[tokio::test]
async fn a_complaint_covered_by_another_complaints_refund_waits_for_that_refund() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    // The first complaint's refund gets no answer (500, retried in 10 s).
    fault(&w, "POST", REFUNDS_PATH, json!({"kind": "respond", "status": 500, "code": "SYSTEM_ERROR"})).await;
    let first = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 990})).await;
    w.settle().await;
    let transaction_id =
        w.sim_complaint(&first).await["complaint"]["complaint_order_info"][0]["transaction_id"].clone();
    let second = w.complain(json!({"sub_mchid": SUB_MCHID, "transaction_id": transaction_id})).await;
    w.settle().await;
    assert_eq!(w.sim_complaint(&second).await["completed"], false, "its order's refund is unanswered");
    // The retry is accepted; the waiting completion sees it when it looks again.
    w.advance(Duration::from_secs(61)).await;
    w.settle().await;
    assert_eq!(w.sim_refunds().await.len(), 1);
    assert_eq!(w.sim_complaint(&first).await["completed"], true);
    assert_eq!(w.sim_complaint(&second).await["completed"], true);

    // A third complaint whose refund is unanswered at first and then refused for good (and confirmed absent): the
    // complaint about the same order that waited for it is not reported handled.
    fault(&w, "POST", REFUNDS_PATH, json!({"kind": "respond", "status": 500, "code": "SYSTEM_ERROR"})).await;
    let third = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 200})).await;
    w.settle().await;
    let order = w.sim_complaint(&third).await["complaint"]["complaint_order_info"][0]["transaction_id"].clone();
    let fourth = w.complain(json!({"sub_mchid": SUB_MCHID, "transaction_id": order})).await;
    w.settle().await;
    fault(&w, "POST", REFUNDS_PATH, json!({"kind": "respond", "status": 403, "code": "USER_ACCOUNT_ABNORMAL"})).await;
    w.advance(Duration::from_secs(11)).await;
    w.settle().await;
    assert_eq!(refund_rows(&w.complaint(&third).await)[0]["status"], "FAILED");
    w.advance(Duration::from_secs(61)).await;
    w.settle().await;
    assert!(refund_rows(&w.complaint(&fourth).await).is_empty(), "the waiting complaint made no refund of its own");
    assert!(steps(&w.complaint(&fourth).await).iter().any(|s| s == "completion_withheld"));
    assert_eq!(w.sim_complaint(&third).await["completed"], false);
    assert_eq!(w.sim_complaint(&fourth).await["completed"], false);
    assert_eq!(w.sim_refunds().await.len(), 1, "only the first order's refund was ever made");
    w.sim.stop().await;
}

/// Earlier versions marked refunds FAILED on a refusal alone, and let a later refund of the same order through.
/// The upgrade makes such refunds unknown again (they hold their order) with a query to settle each, keeps the oldest
/// of an order's live refunds as its holder, and from then on the database refuses a second holder.
#[tokio::test]
async fn the_upgrade_checks_refunds_failed_on_a_refusal_alone_and_enforces_one_per_order() {
    use wxrisk::store::{Store, migrate};
    let db = TestDb::new().await;
    let config = test_config(&db, &[]);
    let store = Store::connect(&db.url, &config.database).await.expect("connect");
    migrate::run_through(&store, 4, 0).await.expect("the schema before");
    sqlx::query(
        "insert into providers (name, mchid, appid, merchant_cert_serial, merchant_private_key_sealed, \
         apiv3_key_sealed, default_reply, created_at, updated_at) values ('p', '1900000100', 'wx1', 'S', 'k', 'k', \
         'r', 1764561600123, 0)",
    )
    .execute(store.pool())
    .await
    .expect("provider");
    for (number, order, status) in [
        ("CR1-T1", "T1", "FAILED"),
        ("CR2-T2", "T2", "FAILED"),
        ("CR3-T2-R1", "T2", "PROCESSING"),
        ("CR4-T3", "T3", "SUCCESS"),
    ] {
        sqlx::query(
            "insert into refunds (provider_id, complaint_id, sub_mchid, transaction_id, out_refund_no, amount, total, \
             status, last_error, requested_by, created_at, updated_at) \
             values (1, 'C', '1900000109', $1, $2, 100, 100, $3, 'USER_ACCOUNT_ABNORMAL: x', 'auto', 5, 5)",
        )
        .bind(order)
        .bind(number)
        .bind(status)
        .execute(store.pool())
        .await
        .expect("refund");
    }
    migrate::run(&store, 0).await.expect("upgrade");

    let rows = sqlx::query("select out_refund_no, status, holds_order, last_error from refunds order by id")
        .fetch_all(store.pool())
        .await
        .expect("rows");
    let got: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| {
            use sqlx::Row as _;
            (r.get("out_refund_no"), r.get("status"), r.get::<i64, _>("holds_order"))
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("CR1-T1".into(), "REQUESTED".into(), 1),
            ("CR2-T2".into(), "REQUESTED".into(), 1),
            ("CR3-T2-R1".into(), "PROCESSING".into(), 0),
            ("CR4-T3".into(), "SUCCESS".into(), 1),
        ]
    );
    let jobs = sqlx::query("select kind, dedupe_key, payload, status from jobs order by id")
        .fetch_all(store.pool())
        .await
        .expect("jobs");
    let jobs: Vec<(String, String, Value)> = jobs
        .iter()
        .map(|r| {
            use sqlx::Row as _;
            let payload: String = r.get("payload");
            (r.get("kind"), r.get("dedupe_key"), serde_json::from_str(&payload).expect("payload is JSON"))
        })
        .collect();
    assert_eq!(
        jobs,
        vec![
            (
                "refund.query".into(),
                "refund-verify:1:CR1-T1".into(),
                json!({"provider_id": 1, "out_refund_no": "CR1-T1", "round": 1})
            ),
            (
                "refund.query".into(),
                "refund-verify:1:CR2-T2".into(),
                json!({"provider_id": 1, "out_refund_no": "CR2-T2", "round": 1})
            ),
        ]
    );
    let since = sqlx::query("select automation_since from providers").fetch_one(store.pool()).await.expect("p");
    assert_eq!(
        sqlx::Row::get::<i64, _>(&since, "automation_since"),
        1_764_561_600_000,
        "when it was added, to the second"
    );
    // A second refund holding order T3 (SUCCESS) is refused by the database itself.
    let second = sqlx::query(
        "insert into refunds (provider_id, complaint_id, sub_mchid, transaction_id, out_refund_no, amount, total, \
         status, requested_by, created_at, updated_at) values (1, 'D', '1900000109', 'T3', 'CR5-T3', 100, 100, \
         'REQUESTED', 'auto', 6, 6)",
    )
    .execute(store.pool())
    .await;
    assert!(second.is_err(), "a second holder of T3 was accepted");
    store.close().await;
}

/// The query the upgrade leaves for each such refund: FAILED when WeChat Pay has no such refund, its real status
/// when it has — and never while our own request for it is still under way.
#[tokio::test]
async fn a_refund_left_unknown_is_settled_by_asking_wechat_pay() {
    let w = world().await;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    w.control.post("/robots", json!({"kind": "wecom", "token": "ops"})).await;
    let channel = json!({"provider_id": w.provider_id, "kind": "wecom_robot", "settings": {"webhook_key": "ops"}});
    assert_eq!(w.app.post("/api/v1/channels", &channel).await.0, 201);
    // One refund WeChat Pay has, one it does not (refused, then made unknown again as the upgrade does).
    let made = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 300})).await;
    w.settle().await;
    fault(&w, "POST", REFUNDS_PATH, json!({"kind": "respond", "status": 403, "code": "USER_ACCOUNT_ABNORMAL"})).await;
    let refused = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 400})).await;
    w.settle().await;
    let number_of = |c: &Value| c["refunds"][0]["out_refund_no"].as_str().expect("number").to_owned();
    let (made_no, refused_no) = (number_of(&w.complaint(&made).await), number_of(&w.complaint(&refused).await));
    let mut conn = w.app.state.store().conn().await.expect("conn");
    sqlx::query("update refunds set status = 'REQUESTED'").execute(&mut *conn).await.expect("as the upgrade left it");
    for number in [&made_no, &refused_no] {
        let job = wxrisk::store::jobs::NewJob {
            kind: "refund.query".into(),
            dedupe_key: format!("refund-verify:{}:{number}", w.provider_id),
            payload: json!({"provider_id": w.provider_id, "out_refund_no": number, "round": 1}),
            provider_id: Some(w.provider_id),
            run_at: w.app.now(),
        };
        wxrisk::store::jobs::enqueue(&mut conn, &job, w.app.now()).await.expect("job");
    }
    drop(conn);
    w.settle().await;
    assert_eq!(w.complaint(&made).await["refunds"][0]["status"], "PROCESSING");
    let row = &w.complaint(&refused).await["refunds"][0];
    assert_eq!(row["status"], "FAILED", "{row}");
    let (_, alerts) = w.app.get("/api/v1/deliveries?event=refund_failed").await;
    assert!(alerts["items"].as_array().map(Vec::len) == Some(1), "told once, not twice: {alerts}");
    w.sim.stop().await;
}
