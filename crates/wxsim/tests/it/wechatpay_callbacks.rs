//! Callbacks out: signed and encrypted like WeChat's, retried on its schedule, with duplicates, delays and
//! signature probes on demand; violations including the intercept rule.

use serde_json::json;
use wechatpay::callback::CallbackError;
use wechatpay::enums::ActionType;
use wechatpay::{Event, VerifyError};
use wxsim::keys::SignMode;

use crate::helpers::*;

fn open(
    setup: &wxsim::ProviderSetup,
    callback: &(http::HeaderMap, axum::body::Bytes),
) -> Result<(String, Event), CallbackError> {
    let keys = platform_keys(setup);
    let verified = wechatpay::verify_notification(&keys, &callback.0, &callback.1, now())?;
    let key = wechatpay::Apiv3Key::new(setup.apiv3_key.as_bytes()).expect("key");
    let event = verified.event(&key)?;
    Ok((verified.id.clone(), event))
}

#[tokio::test]
async fn every_complaint_action_is_delivered_signed_and_encrypted() {
    let sim = start(SignMode::Both).await;
    let setup = sim.provider();
    let control = Control::new(&sim);
    let client = client(&setup, true, true);
    let (receiver, url) = Receiver::start().await;
    client.set_complaint_notification_url(&url, false).await.expect("register");

    let id = control.complaint(json!({"sub_mchid": SUB_MCHID})).await;
    let actions: Vec<&str> =
        ActionType::KNOWN.iter().filter(|a| **a != ActionType::CreateComplaint).map(ActionType::as_str).collect();
    for action in &actions {
        control.post(&format!("/complaints/{id}/actions"), json!({"action_type": action, "content": "消息"})).await;
    }
    let callbacks = receiver.wait_for(13).await;
    let mut seen = Vec::new();
    let mut serials = std::collections::HashSet::new();
    for callback in &callbacks {
        serials.insert(callback.0["wechatpay-serial"].to_str().expect("ascii").to_owned());
        let (_, event) = open(&setup, callback).expect("verifies and decrypts");
        let Event::Complaint(notice) = event else { panic!("not a complaint event") };
        assert_eq!(notice.complaint_id, id);
        seen.push(notice.action_type);
    }
    for action in ActionType::KNOWN {
        assert!(seen.contains(action), "{action} not delivered");
    }
    assert_eq!(serials.len(), 2, "in the switch period callbacks come signed both ways");

    // The events changed the complaint as WeChat would.
    let detail = client.complaint(&id).await.expect("detail");
    assert_eq!(detail.user_complaint_times, Some(2));
    assert!(detail.complaint_full_refunded);
    let history = client.full_negotiation_history(&id).await.expect("history");
    assert_eq!(history.len(), 13);
    sim.stop().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_and_duplicates_probes_and_delays_happen_on_demand() {
    let sim = start(SignMode::Certificate).await;
    let setup = sim.provider();
    let control = Control::new(&sim);
    let (receiver, url) = Receiver::start().await;
    client(&setup, false, true).set_complaint_notification_url(&url, false).await.expect("register");

    // Two failures, then success: three attempts of one notification, the same id each time.
    receiver.script(&[500, 503]);
    let created = control.post("/complaints", json!({"sub_mchid": SUB_MCHID})).await;
    let callbacks = receiver.wait_for(3).await;
    let ids: Vec<String> = callbacks.iter().map(|c| open(&setup, c).expect("genuine").0).collect();
    assert!(ids.iter().all(|i| Some(i.as_str()) == created["notification_id"].as_str()), "{ids:?}");
    let deliveries = control.get("/deliveries").await;
    assert_eq!(deliveries[0]["attempts"].as_array().map(Vec::len), Some(3));
    assert_eq!(deliveries[0]["status"], "delivered");

    // Duplicates arrive with one id; a probe comes first, then the genuine one.
    let before = receiver.count();
    control.post("/complaints", json!({"sub_mchid": SUB_MCHID, "delivery": {"duplicates": 2}})).await;
    let callbacks = receiver.wait_for(before + 3).await;
    let ids: std::collections::HashSet<String> =
        callbacks[before..].iter().map(|c| open(&setup, c).expect("genuine").0).collect();
    assert_eq!(ids.len(), 1);

    let before = receiver.count();
    receiver.script(&[400]);
    control.post("/complaints", json!({"sub_mchid": SUB_MCHID, "delivery": {"probe": true}})).await;
    let callbacks = receiver.wait_for(before + 2).await;
    assert!(matches!(open(&setup, &callbacks[before]), Err(CallbackError::Signature(VerifyError::Probe))));
    open(&setup, &callbacks[before + 1]).expect("the resend is genuine");

    // A delayed notification is overtaken by a later one.
    let before = receiver.count();
    let slow = control.post("/complaints", json!({"sub_mchid": SUB_MCHID, "delivery": {"delay_ms": 300}})).await;
    let fast = control.post("/complaints", json!({"sub_mchid": SUB_MCHID})).await;
    let callbacks = receiver.wait_for(before + 2).await;
    let order: Vec<String> = callbacks[before..].iter().map(|c| open(&setup, c).expect("genuine").0).collect();
    assert_eq!(order, [fast["notification_id"].as_str().expect("id"), slow["notification_id"].as_str().expect("id")]);

    // A receiver that never answers 2xx: the whole schedule (15 resends), then WeChat gives up.
    control.post("/callbacks/time-scale", json!({"scale": 0.00002})).await;
    let (dead, dead_url) = Receiver::start().await;
    dead.script(&[500; 16]);
    client(&setup, false, true).set_complaint_notification_url(&dead_url, true).await.expect("update");
    control.post("/complaints", json!({"sub_mchid": SUB_MCHID})).await;
    dead.wait_for(16).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(dead.count(), 16, "1 attempt + 15 resends, no more");
    sim.stop().await;
}

#[tokio::test]
async fn violations_and_the_once_a_day_intercept() {
    let sim = start(SignMode::Certificate).await;
    let setup = sim.provider();
    let control = Control::new(&sim);
    let (receiver, url) = Receiver::start().await;
    client(&setup, false, true).set_violation_notification_url(&url, false).await.expect("register");

    control
        .post("/violations", json!({"event_type": "VIOLATION.PUNISH", "sub_mchid": SUB_MCHID, "risk_type": "FRAUD"}))
        .await;
    control.post("/violations", json!({"event_type": "VIOLATION.APPEAL", "sub_mchid": SUB_MCHID})).await;
    let callbacks = receiver.wait_for(2).await;
    let mut kinds = Vec::new();
    for callback in &callbacks {
        let keys = platform_keys(&setup);
        let verified = wechatpay::verify_notification(&keys, &callback.0, &callback.1, now()).expect("signed");
        kinds.push(verified.event_type.to_string());
        let Event::Violation(notice) =
            verified.event(&wechatpay::Apiv3Key::new(APIV3.as_bytes()).expect("key")).expect("decrypts")
        else {
            panic!("not a violation")
        };
        assert_eq!(notice.sub_mchid, SUB_MCHID);
        assert!(!notice.record_id.is_empty());
    }
    kinds.sort();
    assert_eq!(kinds, ["VIOLATION.APPEAL", "VIOLATION.PUNISH"]);

    // Intercepts: nothing until more than 10 orders; then one a China day, however many more.
    assert_eq!(
        control.post("/violations/intercepted", json!({"sub_mchid": SUB_MCHID, "orders": 10})).await["sent"],
        false
    );
    assert_eq!(
        control.post("/violations/intercepted", json!({"sub_mchid": SUB_MCHID, "orders": 1})).await["sent"],
        true
    );
    assert_eq!(
        control.post("/violations/intercepted", json!({"sub_mchid": SUB_MCHID, "orders": 5})).await["sent"],
        false
    );
    control.post("/clock/advance", json!({"seconds": 86_400})).await;
    assert_eq!(
        control.post("/violations/intercepted", json!({"sub_mchid": SUB_MCHID, "orders": 1})).await["sent"],
        true
    );
    let callbacks = receiver.wait_for(4).await;
    let intercepts = callbacks
        .iter()
        .filter(|c| {
            wechatpay::verify_notification(&platform_keys(&setup), &c.0, &c.1, now())
                .map(|v| v.event_type.as_str() == "VIOLATION.INTERCEPT")
                .unwrap_or(false)
        })
        .count();
    assert_eq!(intercepts, 2);
    sim.stop().await;
}
