//! Certificate expiry: the provider is told once per certificate, 30 days before it expires, by the daily check.

use std::time::Duration;

use serde_json::json;

use crate::complaints::world;
use crate::helpers::*;

/// Both test certificates (merchant and platform) end at 2036-11-24T05:31:00Z.
const NOT_AFTER_MS: i64 = 2_111_117_460_000;
const DAY_MS: i64 = 86_400_000;

async fn daily_check(app: &TestApp) {
    wxrisk::workflow::certificates::schedule_daily(&app.state).await.expect("schedule");
    app.worker().run_pending().await.expect("run");
}

async fn alerts(app: &TestApp) -> (i64, i64) {
    let mut conn = app.state.store().conn().await.expect("conn");
    let row = sqlx::query("select count(*) as n from deliveries where event_kind = 'certificate_expiring'")
        .fetch_one(&mut *conn)
        .await
        .expect("count");
    (app.count("certificate_alerts").await, sqlx::Row::get(&row, "n"))
}

#[tokio::test]
async fn a_certificate_is_alerted_once_30_days_before_it_expires_not_at_31_and_not_twice() {
    let w = world().await;
    let app = &w.app;
    w.control.post("/robots", json!({"kind": "wecom", "token": "ops"})).await;
    let channel = json!({"provider_id": w.provider_id, "kind": "wecom_robot", "settings": {"webhook_key": "ops"}});
    assert_eq!(app.post("/api/v1/channels", &channel).await.0, 201);

    app.clock.set(NOT_AFTER_MS - 31 * DAY_MS);
    daily_check(app).await;
    assert_eq!(alerts(app).await, (0, 0), "31 days before: nothing yet");

    app.clock.set(NOT_AFTER_MS - 30 * DAY_MS);
    daily_check(app).await;
    assert_eq!(alerts(app).await, (2, 2), "the merchant certificate and the platform certificate, once each");
    let messages = w.control.get("/robots/messages").await;
    let texts: Vec<String> = messages.as_array().expect("list").iter().map(|m| m["body"].to_string()).collect();
    // One robot message or two (the second may go as a digest with the first): both certificates are in them.
    assert!(!texts.is_empty(), "{messages}");
    let all = texts.join("\n");
    for expected in [PLATFORM_SERIAL, MERCHANT_SERIAL, "2036-11-24 13:31", "北京时间", "微信支付公钥", "商户API证书"]
    {
        assert!(all.contains(expected), "{expected} missing from {all}");
    }

    // The next days: not again — even after the jobs and deliveries that carried the alert are gone (retention).
    for _ in 0..3 {
        app.advance(Duration::from_millis(u64::try_from(DAY_MS).expect("day")));
        daily_check(app).await;
    }
    assert_eq!(alerts(app).await, (2, 2));
    {
        let mut conn = app.state.store().conn().await.expect("conn");
        for sql in ["delete from deliveries", "delete from job_attempts", "delete from jobs"] {
            sqlx::query(sql).execute(&mut *conn).await.expect("delete");
        }
    }
    app.advance(Duration::from_millis(u64::try_from(DAY_MS).expect("day")));
    daily_check(app).await;
    assert_eq!(alerts(app).await, (2, 0), "no delivery made again: the alert row is the once");
    assert_eq!(w.control.get("/robots/messages").await.as_array().map(Vec::len), Some(texts.len()));
    w.sim.stop().await;
}

#[tokio::test]
async fn a_provider_on_the_public_key_is_not_alerted_about_platform_certificates() {
    let w = world().await;
    let app = &w.app;
    let patch = json!({"wechatpay_public_key_id": "PUB_KEY_ID_0116571234562024052000123400000000",
                       "wechatpay_public_key_pem": testdata("wechatpay_public_key.pem")});
    let (status, body) = app.patch(&format!("/api/v1/providers/{}", w.provider_id), &patch).await;
    assert_eq!(status, 200, "{body}");
    app.clock.set(NOT_AFTER_MS - 10 * DAY_MS);
    daily_check(app).await;
    let mut conn = app.state.store().conn().await.expect("conn");
    let rows = sqlx::query("select kind from certificate_alerts").fetch_all(&mut *conn).await.expect("rows");
    let kinds: Vec<String> = rows.iter().map(|r| sqlx::Row::get(r, "kind")).collect();
    assert_eq!(kinds, ["merchant"], "the merchant certificate still matters");
    w.sim.stop().await;
}
