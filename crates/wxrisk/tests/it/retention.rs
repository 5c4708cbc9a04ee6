//! Retention: finished work older than `retention.days` is deleted by the daily job; work still pending, dead jobs
//! and recent work stay; and neither a WeChat redelivery nor a reconciliation of a complaint whose rows were deleted
//! acts on it again.

use std::time::Duration;

use serde_json::{Value, json};
use wechatpay::RsaPrivateKey;

use crate::complaints::{REPLY_TEXT, SUB_MCHID, World, world};
use crate::helpers::*;

const DAY: Duration = Duration::from_secs(86_400);

/// A complaint notification as WeChat Pay sends it, created at `created_ms` (app clock), freshly signed.
fn notification(id: &str, complaint_id: &str, created_ms: i64) -> (String, Vec<(&'static str, String)>) {
    let key = wechatpay::Apiv3Key::new(APIV3_KEY.as_bytes()).expect("key");
    let create_time = time::OffsetDateTime::from_unix_timestamp(created_ms / 1000)
        .expect("time")
        .to_offset(time::macros::offset!(+8))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let resource = json!({"complaint_id": complaint_id, "action_type": "CREATE_COMPLAINT"}).to_string();
    let content = wechatpay::callback::NotificationContent {
        id,
        create_time: &create_time,
        event_type: wechatpay::enums::EventType::ComplaintCreate,
        summary: "产生新投诉",
        original_type: "complaint",
        plaintext: &resource,
        associated_data: "complaint",
    };
    let body =
        serde_json::to_string(&wechatpay::Notification::encrypt(&key, &content).expect("encrypt")).expect("json");
    let platform = RsaPrivateKey::from_pem(&testdata("other_key.pem")).expect("key");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let headers =
        wechatpay::sign::sign_as_wechatpay(&platform, PLATFORM_SERIAL, now, "nonce0123456789", body.as_bytes())
            .expect("sign");
    (body, headers)
}

async fn deliver(w: &World, body: &str, headers: &[(&'static str, String)]) -> u16 {
    let mut request = w
        .app
        .client
        .post(w.app.url(&format!("/callbacks/{}/complaints", w.provider_id)))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.body(body.to_owned()).send().await.expect("POST").status().as_u16()
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    let mut conn = app.state.store().conn().await.expect("conn");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut *conn).await.expect(sql);
    sqlx::Row::get::<i64, _>(&row, 0)
}

/// A job row as the worker leaves it; returns its id.
async fn insert_job(app: &TestApp, key: &str, status: &str, at: i64) -> i64 {
    let mut conn = app.state.store().conn().await.expect("conn");
    let finished = (status == "succeeded" || status == "dead").then_some(at);
    let row = sqlx::query(
        "insert into jobs (kind, dedupe_key, payload, provider_id, status, attempts, run_at, created_at, updated_at, \
         finished_at) values ('test.kept', $1, '{}', null, $2, 1, $3, $4, $4, $5) returning id",
    )
    .bind(key)
    .bind(status)
    .bind(if status == "queued" { at + 10_000 * 86_400_000 } else { at })
    .bind(at)
    .bind(finished)
    .fetch_one(&mut *conn)
    .await
    .expect("job");
    let id: i64 = sqlx::Row::get(&row, "id");
    sqlx::query(
        "insert into job_attempts (job_id, attempt, worker, started_at, finished_at, outcome) values ($1, 1, 't', $2, $2, $3)",
    )
    .bind(id)
    .bind(at)
    .bind(if status == "queued" { "retry" } else { status })
    .execute(&mut *conn)
    .await
    .expect("attempt");
    id
}

/// A delivery of `job_id`, carried in `into`'s digest when given; returns its id.
async fn insert_delivery(app: &TestApp, job_id: i64, into: Option<i64>, at: i64) -> i64 {
    let mut conn = app.state.store().conn().await.expect("conn");
    let row = sqlx::query(
        "insert into deliveries (job_id, provider_id, channel_id, channel_kind, recipient, event_kind, event_key, subject, \
         message, locale, digested_into, created_at, updated_at) \
         values ($1, 1, 1, 'webhook', '*', 'job_dead', $2, 's', '{}', 'zh-CN', $3, $4, $4) returning id",
    )
    .bind(job_id)
    .bind(format!("k{job_id}"))
    .bind(into)
    .bind(at)
    .fetch_one(&mut *conn)
    .await
    .expect("delivery");
    sqlx::Row::get(&row, "id")
}

async fn exists(app: &TestApp, key: &str) -> bool {
    let mut conn = app.state.store().conn().await.expect("conn");
    wxrisk::store::jobs::find_by_dedupe_key(&mut conn, key).await.expect("find").is_some()
}

fn replies(complaint: &Value) -> usize {
    complaint["replies"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn old_finished_work_is_deleted_pending_and_recent_work_stays_and_nothing_acts_twice() {
    let w = world().await;
    let app = &w.app;
    w.merchant(SUB_MCHID, Some(REPLY_TEXT), true, true).await;
    w.control.post("/robots", json!({"kind": "wecom", "token": "ops"})).await;
    let channel = json!({"provider_id": w.provider_id, "kind": "wecom_robot", "settings": {"webhook_key": "ops"}});
    assert_eq!(app.post("/api/v1/channels", &channel).await.0, 201);

    // A complaint handled in full: replied, refunded, completed, the robot told.
    let complaint_id = w.complain(json!({"sub_mchid": SUB_MCHID, "amount": 990})).await;
    w.settle().await;
    // A notification of our own about it, which WeChat will "deliver again" after the retention.
    let (body, headers) = notification("EV-RETAINED-0001", &complaint_id, app.now());
    assert_eq!(deliver(&w, &body, &headers).await, 204);
    w.settle().await;
    let at_wechat = w.sim_complaint(&complaint_id).await;
    assert_eq!((replies(&at_wechat), at_wechat["completed"].as_bool()), (1, Some(true)), "{at_wechat}");
    assert_eq!(w.sim_refunds().await.len(), 1);
    let robot_messages = w.control.get("/robots/messages").await.as_array().map_or(0, Vec::len);
    assert!(robot_messages >= 1);
    assert!(app.count("inbound_notifications").await >= 2);

    // Old rows that must stay: a dead job, a job still queued; and a digest whose carrier is dead, whose member
    // (succeeded) must stay with it; and a digest whose carrier succeeded, which goes with its member.
    let old = app.now();
    let dead = insert_job(app, "test:dead", "dead", old).await;
    insert_job(app, "test:queued", "queued", old).await;
    insert_delivery(app, dead, None, old).await;
    let dead_carrier = insert_job(app, "test:dead-carrier", "dead", old).await;
    let dead_carrier_delivery = insert_delivery(app, dead_carrier, None, old).await;
    let kept_member = insert_job(app, "test:member-of-dead", "succeeded", old).await;
    insert_delivery(app, kept_member, Some(dead_carrier_delivery), old).await;
    let carrier = insert_job(app, "test:carrier", "succeeded", old).await;
    let carrier_delivery = insert_delivery(app, carrier, None, old).await;
    let member = insert_job(app, "test:member", "succeeded", old).await;
    insert_delivery(app, member, Some(carrier_delivery), old).await;
    let complaints = app.count("complaints").await;
    let refunds = app.count("refunds").await;
    let timeline = app.count("complaint_timeline").await;

    // 181 days on (our clock; WeChat's is its own). Work finished a day ago is recent.
    app.advance(DAY * 180);
    insert_job(app, "test:recent", "succeeded", app.now()).await;
    app.advance(DAY);
    let cutoff = app.now() - 180 * 86_400_000;
    assert!(wxrisk::workflow::retention::schedule_daily(&app.state).await.expect("schedule"));
    assert!(!wxrisk::workflow::retention::schedule_daily(&app.state).await.expect("schedule"), "once a day");
    app.worker().run_pending().await.expect("run");

    let old_finished = scalar(
        app,
        &format!("select count(*) from jobs where status = 'succeeded' and finished_at < {cutoff} and dedupe_key <> 'test:member-of-dead'"),
    )
    .await;
    assert_eq!(old_finished, 0, "every old finished job is gone");
    assert_eq!(
        scalar(
            app,
            "select count(*) from job_attempts a where not exists (select 1 from jobs j where j.id = a.job_id)"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(app, "select count(*) from deliveries d where not exists (select 1 from jobs j where j.id = d.job_id)")
            .await,
        0
    );
    assert_eq!(app.count("inbound_notifications").await, 0);
    for key in ["test:dead", "test:queued", "test:recent", "test:dead-carrier", "test:member-of-dead"] {
        assert!(exists(app, key).await, "{key} is kept");
    }
    for key in ["test:carrier", "test:member"] {
        assert!(!exists(app, key).await, "{key} is deleted");
    }
    assert_eq!(scalar(app, &format!("select count(*) from job_attempts where job_id = {dead}")).await, 1);
    assert_eq!(
        scalar(
            app,
            &format!("select count(*) from deliveries where job_id in ({dead}, {dead_carrier}, {kept_member})")
        )
        .await,
        3
    );
    assert_eq!(
        (app.count("complaints").await, app.count("refunds").await),
        (complaints, refunds),
        "complaints and refunds are not work: kept"
    );
    assert!(app.count("complaint_timeline").await >= timeline);
    assert!(!exists(app, &format!("reply:{}:{complaint_id}:1", w.provider_id)).await, "the reply's job is gone");

    // WeChat "delivers again" the notification whose inbox row and jobs were deleted: acknowledged, not recorded.
    let jobs_before = app.count("jobs").await;
    let (body, headers) = notification("EV-RETAINED-0001", &complaint_id, app.now() - 181 * 86_400_000);
    assert_eq!(deliver(&w, &body, &headers).await, 204);
    assert_eq!(app.count("inbound_notifications").await, 0, "not recorded as new");
    assert_eq!(app.count("jobs").await, jobs_before, "no job for it");

    // Reconciliation finds the complaint (its rows in our tables are what it compares with): synced, not acted on.
    let since = app.now();
    {
        let mut conn = app.state.store().conn().await.expect("conn");
        wxrisk::workflow::complaints::enqueue_sync(&mut conn, w.provider_id, &complaint_id, "after-retention", since)
            .await
            .expect("enqueue");
    }
    w.settle().await;
    let acted = scalar(
        app,
        &format!(
            "select count(*) from jobs where created_at >= {since} and kind in \
             ('complaint.reply', 'complaint.refund', 'complaint.complete', 'complaint.refund_progress', 'notify')"
        ),
    )
    .await;
    assert_eq!(acted, 0, "no reply, refund, completion or notification again");
    let at_wechat = w.sim_complaint(&complaint_id).await;
    assert_eq!(replies(&at_wechat), 1, "{at_wechat}");
    assert_eq!(w.sim_refunds().await.len(), 1, "one refund, ever");
    assert_eq!(w.control.get("/robots/messages").await.as_array().map_or(0, Vec::len), robot_messages);
    w.sim.stop().await;
}

#[tokio::test]
async fn a_redelivery_within_the_retention_is_a_duplicate_and_an_older_one_is_ignored() {
    let app = spawn_app_env(TestDb::new().await, &[("WXRISK_RETENTION__DAYS", "7")], |b| b).await;
    let mut provider = provider_body("1900000100");
    provider["platform_cert_serial"] = json!(PLATFORM_SERIAL);
    provider["platform_cert_pem"] = json!(testdata("platform_cert.pem"));
    let (status, created) = app.post("/api/v1/providers", &provider).await;
    assert_eq!(status, 201, "{created}");
    let path = format!("/callbacks/{}/complaints", created["id"]);
    let send = |id: &'static str, created_ms: i64| {
        let (body, headers) = notification(id, "200201820261127000000000001", created_ms);
        let mut request = app.client.post(app.url(&path)).header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { request.body(body).send().await.expect("POST").status().as_u16() }
    };
    let day_ms = 86_400_000;
    // Created 5 days ago (within 7 - 1): recorded; again: a duplicate.
    assert_eq!(send("EV-5-DAYS", app.now() - 5 * day_ms).await, 204);
    assert_eq!(send("EV-5-DAYS", app.now() - 5 * day_ms).await, 204);
    assert_eq!(app.count("inbound_notifications").await, 1);
    // Created 6 days and a minute ago: its records may be gone; acknowledged, not recorded.
    assert_eq!(send("EV-6-DAYS", app.now() - 6 * day_ms - 60_000).await, 204);
    assert_eq!((app.count("inbound_notifications").await, app.count("jobs").await), (1, 1));
    let metrics = app.client.get(app.url("/metrics")).send().await.expect("GET").text().await.expect("text");
    assert!(metrics.contains("outcome=\"too_old\""), "{metrics}");
}
