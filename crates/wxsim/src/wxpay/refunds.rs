//! Refunds: idempotent by `out_refund_no`; PROCESSING until the simulated refund delay has passed, then SUCCESS with
//! a `REFUND.SUCCESS` callback (see `callbacks::complete_due_refunds`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use wechatpay::api::refunds::{Refund, RefundAmount, is_valid_out_refund_no};
use wechatpay::enums::{LimitedFunction, RefundChannel, RefundStatus};

use super::{error, invalid_request, json, param_error, parse};
use crate::Sim;
use crate::clock::rfc3339_china;
use crate::state::RefundRecord;

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    sub_mchid: Option<String>,
    #[serde(default)]
    transaction_id: Option<String>,
    #[serde(default)]
    out_trade_no: Option<String>,
    out_refund_no: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    notify_url: Option<String>,
    amount: AmountBody,
}

#[derive(Deserialize)]
struct AmountBody {
    refund: i64,
    total: i64,
    currency: String,
}

pub async fn create(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let request: CreateBody = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let Some(sub_mchid) = request.sub_mchid.filter(|s| !s.is_empty()) else {
        return param_error("服务商模式下sub_mchid必填");
    };
    if !is_valid_out_refund_no(&request.out_refund_no) {
        return param_error("out_refund_no格式错误");
    }
    if request.amount.currency != "CNY" {
        return param_error("currency仅支持CNY");
    }
    if request.amount.refund <= 0 {
        return param_error("退款金额必须大于0");
    }
    if request.reason.as_deref().is_some_and(|r| r.chars().count() > 80) {
        return param_error("reason最长80个字符");
    }
    let mut state = sim.state();
    if state.limitations.get(&sub_mchid).is_some_and(|l| l.is_limited(&LimitedFunction::NoRefund)) {
        return error(StatusCode::FORBIDDEN, "NO_AUTH", "子商户已被限制退款");
    }
    let order = state
        .orders
        .values()
        .find(|o| {
            o.sub_mchid == sub_mchid
                && (request.transaction_id.as_deref() == Some(o.transaction_id.as_str())
                    || request.out_trade_no.as_deref() == Some(o.out_trade_no.as_str()))
        })
        .cloned();
    let Some(order) = order else {
        return error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "订单不存在");
    };
    if let Some(existing) = state.refunds.get(&request.out_refund_no) {
        // The same number asks for the same refund: the same answer, or a refusal if the amounts differ.
        let same = existing.refund.amount.refund == request.amount.refund
            && existing.refund.amount.total == request.amount.total
            && existing.refund.transaction_id == order.transaction_id;
        return if same {
            json(StatusCode::OK, &existing.refund)
        } else {
            invalid_request("订单金额或退款金额与之前请求不一致")
        };
    }
    if request.amount.total != order.total {
        return param_error("订单金额与实际支付金额不符");
    }
    if request.amount.refund > order.total - order.refunded {
        return invalid_request("退款金额超过订单可退金额");
    }
    let now = sim.clock.now_ms();
    let number = state.next();
    let refund = Refund {
        refund_id: format!("50300{:018}{number:06}", now),
        out_refund_no: request.out_refund_no.clone(),
        transaction_id: order.transaction_id.clone(),
        out_trade_no: order.out_trade_no.clone(),
        channel: Some(RefundChannel::Original),
        user_received_account: "支付用户零钱".into(),
        success_time: None,
        create_time: rfc3339_china(now),
        status: RefundStatus::Processing,
        funds_account: Some("UNSETTLED".into()),
        amount: RefundAmount {
            total: order.total,
            refund: request.amount.refund,
            payer_total: order.total,
            payer_refund: request.amount.refund,
            settlement_refund: request.amount.refund,
            settlement_total: order.total,
            discount_refund: 0,
            currency: "CNY".into(),
        },
    };
    if let Some(order) = state.orders.get_mut(&order.transaction_id) {
        order.refunded += request.amount.refund;
    }
    let delay = i64::try_from(sim.config.refund_delay.as_millis()).unwrap_or(i64::MAX / 2);
    state.refunds.insert(
        request.out_refund_no,
        RefundRecord {
            refund: refund.clone(),
            sub_mchid,
            notify_url: request.notify_url,
            due_ms: now.saturating_add(delay),
        },
    );
    json(StatusCode::OK, &refund)
}

pub async fn query(
    State(sim): State<Arc<Sim>>,
    Path(out_refund_no): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let Some(sub_mchid) = params.get("sub_mchid") else {
        return param_error("服务商模式下sub_mchid必填");
    };
    match sim.state().refunds.get(&out_refund_no) {
        Some(record) if &record.sub_mchid == sub_mchid => json(StatusCode::OK, &record.refund),
        _ => error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "退款单不存在"),
    }
}
