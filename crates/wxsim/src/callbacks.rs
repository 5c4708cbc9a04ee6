//! Callbacks out: complaint, violation and refund notifications, signed and encrypted, POSTed to the registered
//! URLs and retried on WeChat's schedule until answered 2xx.
//!
//! Contract: a notification keeps its `id` across retries and duplicates (receivers dedupe on it); each attempt is
//! signed anew at send time; waits follow WeChat's published schedule times `callback_time_scale`; optional
//! duplicates, a delay (so a later notification overtakes this one) and a probe-signed first attempt reproduce
//! what receivers meet in production. A background task also completes refunds whose delay has passed.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wechatpay::Apiv3Key;
use wechatpay::callback::{Notification, NotificationContent};
use wechatpay::enums::{ActionType, ComplaintState, EventType, OperateType, ProblemType, RefundStatus};

use crate::Sim;
use crate::clock::{real_now_ms, rfc3339_china};
use crate::keys::SignMode;
use crate::state::State;

/// WeChat's resend schedule after a failed delivery (15 resends, about 24 hours).
pub const RETRY_SCHEDULE_SECS: [u64; 15] =
    [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600];

/// How one notification is delivered.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryOptions {
    /// Extra copies with the same notification id, sent at the same time.
    pub duplicates: u32,
    /// Hold the first attempt this long (real milliseconds), so later notifications arrive first.
    pub delay_ms: u64,
    /// Make the first attempt carry a `WECHATPAY/SIGNTEST/` signature; the genuine one follows as a retry.
    pub probe: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub at_ms: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub probe: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    InFlight,
    Delivered,
    GaveUp,
}

/// One notification on its way to one URL.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: u64,
    pub notification_id: String,
    pub event_type: String,
    pub url: String,
    pub body: String,
    /// The decrypted resource, for tests and the console.
    pub resource: serde_json::Value,
    pub attempts: Vec<Attempt>,
    pub status: DeliveryStatus,
    /// Real time of the next attempt.
    pub next_at_ms: i64,
    pub probe_next: bool,
    /// Sign with the public key rather than the certificate (the `both` mode alternates).
    pub use_public_key: bool,
}

/// Encrypt and queue a notification for `url` (nothing is queued when no URL is registered).
#[allow(clippy::too_many_arguments)]
pub fn queue(
    sim: &Sim,
    state: &mut State,
    url: Option<String>,
    event_type: EventType,
    summary: &str,
    original_type: &str,
    resource: serde_json::Value,
    options: &DeliveryOptions,
) -> Option<String> {
    let url = url?;
    let key = Apiv3Key::new(sim.apiv3_key.as_bytes()).ok()?;
    let notification_id = format!("EV-{}{:08}", time::OffsetDateTime::now_utc().unix_timestamp(), state.next());
    let plaintext = resource.to_string();
    let content = NotificationContent {
        id: &notification_id,
        create_time: &rfc3339_china(sim.clock.now_ms()),
        event_type: event_type.clone(),
        summary,
        original_type,
        plaintext: &plaintext,
        associated_data: original_type,
    };
    let body = serde_json::to_string(&Notification::encrypt(&key, &content).ok()?).ok()?;
    let use_public_key = match sim.keys().mode {
        SignMode::PublicKey => true,
        SignMode::Certificate => false,
        SignMode::Both => {
            state.callback_toggle = !state.callback_toggle;
            state.callback_toggle
        }
    };
    let first_at = real_now_ms() + i64::try_from(options.delay_ms).unwrap_or(0);
    for copy in 0..=options.duplicates {
        let id = state.next();
        state.deliveries.push(Delivery {
            id,
            notification_id: notification_id.clone(),
            event_type: event_type.to_string(),
            url: url.clone(),
            body: body.clone(),
            resource: resource.clone(),
            attempts: Vec::new(),
            status: DeliveryStatus::Pending,
            next_at_ms: first_at,
            probe_next: options.probe && copy == 0,
            use_public_key,
        });
    }
    sim.deliveries_due.notify_one();
    Some(notification_id)
}

/// Queue a `COMPLAINT.*` notification.
pub fn queue_complaint(
    sim: &Sim,
    state: &mut State,
    complaint_id: &str,
    action: ActionType,
    options: &DeliveryOptions,
) -> Option<String> {
    let event_type = if action == ActionType::CreateComplaint {
        EventType::ComplaintCreate
    } else {
        EventType::ComplaintStateChange
    };
    let summary = if action == ActionType::CreateComplaint { "产生新投诉" } else { "投诉单状态变化" };
    let resource = serde_json::json!({"complaint_id": complaint_id, "action_type": action.as_str()});
    let url = state.complaint_url.clone();
    queue(sim, state, url, event_type, summary, "complaint", resource, options)
}

/// Background work: deliver due callbacks, complete due refunds. Runs until the simulator stops.
pub async fn run(sim: Arc<Sim>) {
    loop {
        complete_due_refunds(&sim);
        let due: Vec<Delivery> = {
            let mut state = sim.state();
            let now = real_now_ms();
            state
                .deliveries
                .iter_mut()
                .filter(|d| d.status == DeliveryStatus::Pending && d.next_at_ms <= now)
                .map(|d| {
                    d.status = DeliveryStatus::InFlight;
                    d.clone()
                })
                .collect()
        };
        for delivery in due {
            tokio::spawn(attempt(sim.clone(), delivery));
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            () = sim.deliveries_due.notified() => {}
        }
    }
}

async fn attempt(sim: Arc<Sim>, delivery: Delivery) {
    let probe = delivery.probe_next;
    let headers = crate::wxpay::signature_headers(&sim, None, delivery.use_public_key, delivery.body.as_bytes(), probe);
    let mut request =
        sim.http.post(&delivery.url).header("content-type", "application/json").header("user-agent", "Mozilla/4.0");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let started = real_now_ms();
    let result = request.body(delivery.body.clone()).send().await;
    let (status, error) = match result {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let delivered = status.is_some_and(|s| (200..300).contains(&s));
    let mut state = sim.state();
    let state_scale = state.callback_time_scale;
    let Some(stored) = state.deliveries.iter_mut().find(|d| d.id == delivery.id) else { return };
    stored.attempts.push(Attempt { at_ms: started, status, error, probe });
    stored.probe_next = false;
    if delivered {
        stored.status = DeliveryStatus::Delivered;
        return;
    }
    let failures = stored.attempts.len();
    match RETRY_SCHEDULE_SECS.get(failures - 1) {
        Some(wait) => {
            let scale = state_scale.unwrap_or(sim.config.callback_time_scale);
            let scaled = (*wait as f64 * 1000.0 * scale).max(1.0) as i64;
            stored.next_at_ms = real_now_ms() + scaled;
            stored.status = DeliveryStatus::Pending;
        }
        None => stored.status = DeliveryStatus::GaveUp,
    }
}

/// Refunds whose delay has passed succeed: the refund callback goes out, and the complaint about the order learns
/// of it (a refund-request complaint is then processed).
pub fn complete_due_refunds(sim: &Sim) {
    let now = sim.clock.now_ms();
    let mut state = sim.state();
    let due: Vec<String> = state
        .refunds
        .iter()
        .filter(|(_, r)| r.refund.status == RefundStatus::Processing && r.due_ms <= now)
        .map(|(k, _)| k.clone())
        .collect();
    for out_refund_no in due {
        let Some(record) = state.refunds.get_mut(&out_refund_no) else { continue };
        record.refund.status = RefundStatus::Success;
        record.refund.success_time = Some(rfc3339_china(now));
        let refund = record.refund.clone();
        let sub_mchid = record.sub_mchid.clone();
        let url = record.notify_url.clone().or_else(|| state.refund_url.clone());
        let resource = serde_json::json!({
            "sp_mchid": sim.config.sp_mchid, "sub_mchid": sub_mchid, "out_trade_no": refund.out_trade_no,
            "transaction_id": refund.transaction_id, "out_refund_no": refund.out_refund_no, "refund_id": refund.refund_id,
            "refund_status": "SUCCESS", "success_time": refund.success_time, "user_received_account": refund.user_received_account,
            "amount": {"total": refund.amount.total, "refund": refund.amount.refund, "payer_total": refund.amount.payer_total, "payer_refund": refund.amount.payer_refund},
        });
        queue(
            sim,
            &mut state,
            url,
            EventType::RefundSuccess,
            "退款成功",
            "refund",
            resource,
            &DeliveryOptions::default(),
        );
        refund_reaches_complaint(sim, &mut state, &refund.transaction_id);
    }
}

fn refund_reaches_complaint(sim: &Sim, state: &mut State, transaction_id: &str) {
    let Some(order) = state.orders.get(transaction_id).cloned() else { return };
    let complaint_id = state
        .complaints
        .values()
        .find(|r| r.complaint.complaint_order_info.iter().any(|o| o.transaction_id == transaction_id))
        .map(|r| r.complaint.complaint_id.clone());
    let Some(complaint_id) = complaint_id else { return };
    let refunded: i64 = state
        .refunds
        .values()
        .filter(|r| r.refund.transaction_id == transaction_id && r.refund.status == RefundStatus::Success)
        .map(|r| r.refund.amount.refund)
        .sum();
    let next = state.next();
    let Some(record) = state.complaints.get_mut(&complaint_id) else { return };
    let full = refunded >= order.total;
    record.complaint.complaint_full_refunded = full;
    let refund_request = record.complaint.problem_type == Some(ProblemType::Refund);
    let (operate, text) = if full {
        (OperateType::ComplaintFullRefundedSystemMessage, "商户已全额退款")
    } else {
        (OperateType::ComplaintPartialRefundedSystemMessage, "商户已部分退款")
    };
    crate::wxpay::complaints_log(sim, record, "系统", operate, text, next);
    let action = if refund_request {
        record.complaint.complaint_state = ComplaintState::Processed;
        ActionType::RefundSuccess
    } else {
        ActionType::SellerRefund
    };
    queue_complaint(sim, state, &complaint_id, action, &DeliveryOptions::default());
}
