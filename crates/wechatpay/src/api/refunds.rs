//! Refunds for service providers (`/v3/refund/domestic/refunds`).
//!
//! Idempotency is WeChat's: one `out_refund_no` refunds once, and a retry must repeat the same number with the same
//! amounts. Callers derive `out_refund_no` from what the refund is for, so a retried or duplicated job asks for the
//! same refund, never a second one.

use http::Method;
use serde::{Deserialize, Serialize};

use super::{json_body, notify_url, path_id, query};
use crate::client::{ApiRequest, Body, Client};
use crate::enums::{RefundChannel, RefundStatus};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundRequest {
    /// Required in service-provider mode.
    pub sub_mchid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    /// ≤ 64 characters of `[0-9A-Za-z_-|*@]`.
    pub out_refund_no: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funds_account: Option<String>,
    pub amount: RefundAmountRequest,
}

/// Amounts in fen; `currency` is always `CNY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundAmountRequest {
    pub refund: i64,
    pub total: i64,
    pub currency: String,
}

impl RefundAmountRequest {
    pub fn cny(refund: i64, total: i64) -> Self {
        Self { refund, total, currency: "CNY".into() }
    }
}

/// WeChat's refund record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub refund_id: String,
    pub out_refund_no: String,
    #[serde(default)]
    pub transaction_id: String,
    #[serde(default)]
    pub out_trade_no: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<RefundChannel>,
    #[serde(default)]
    pub user_received_account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    #[serde(default)]
    pub create_time: String,
    pub status: RefundStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funds_account: Option<String>,
    pub amount: RefundAmount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAmount {
    pub total: i64,
    pub refund: i64,
    #[serde(default)]
    pub payer_total: i64,
    #[serde(default)]
    pub payer_refund: i64,
    #[serde(default)]
    pub settlement_refund: i64,
    #[serde(default)]
    pub settlement_total: i64,
    #[serde(default)]
    pub discount_refund: i64,
    #[serde(default)]
    pub currency: String,
}

/// The longest `out_refund_no` WeChat Pay takes (bytes).
pub const MAX_OUT_REFUND_NO_LEN: usize = 64;

/// Whether `value` is a valid `out_refund_no`.
pub fn is_valid_out_refund_no(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_OUT_REFUND_NO_LEN
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b))
}

impl Client {
    /// Ask for a refund. Success means accepted (`PROCESSING` usually); the result comes by notification or query.
    pub async fn create_refund(&self, request: &RefundRequest) -> Result<Refund> {
        path_id("sub_mchid", &request.sub_mchid)?;
        if !is_valid_out_refund_no(&request.out_refund_no) {
            return Err(Error::Invalid(format!(
                "out_refund_no `{}` must be 1 to 64 characters of 0-9 A-Z a-z _ - | * @",
                request.out_refund_no
            )));
        }
        if request.transaction_id.is_none() && request.out_trade_no.is_none() {
            return Err(Error::Invalid("give transaction_id or out_trade_no".into()));
        }
        let amount = &request.amount;
        if amount.refund <= 0 || amount.total <= 0 || amount.refund > amount.total {
            return Err(Error::Invalid(format!(
                "refund {} fen must be more than 0 and at most the total {} fen",
                amount.refund, amount.total
            )));
        }
        if amount.currency != "CNY" {
            return Err(Error::Invalid("currency must be CNY".into()));
        }
        if let Some(url) = &request.notify_url {
            notify_url("notify_url", url, 256)?;
        }
        if request.reason.as_deref().is_some_and(|r| r.chars().count() > 80) {
            return Err(Error::Invalid("reason is at most 80 characters".into()));
        }
        self.json(ApiRequest {
            method: Method::POST,
            target: "/v3/refund/domestic/refunds".into(),
            body: Body::Json(json_body(request)?),
            encrypted: false,
            verify: true,
        })
        .await
    }

    /// A refund by its `out_refund_no` (`sub_mchid` is required in service-provider mode).
    pub async fn query_refund(&self, out_refund_no: &str, sub_mchid: &str) -> Result<Refund> {
        if !is_valid_out_refund_no(out_refund_no) {
            return Err(Error::Invalid(format!("out_refund_no `{out_refund_no}` is not valid")));
        }
        // `|`, `*` and `@` are legal in out_refund_no but not in a path segment: encode them.
        let encoded: String = url::form_urlencoded::byte_serialize(out_refund_no.as_bytes()).collect();
        let target = format!(
            "/v3/refund/domestic/refunds/{encoded}?{}",
            query(&[("sub_mchid", path_id("sub_mchid", sub_mchid)?.to_owned())])
        );
        self.json(ApiRequest { method: Method::GET, target, body: Body::Empty, encrypted: false, verify: true }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_refund_numbers() {
        assert!(is_valid_out_refund_no("CR-200201820200101080076610000-4200000801202010148880000001"));
        assert!(is_valid_out_refund_no("a|b*c@d_e-f"));
        assert!(!is_valid_out_refund_no(""));
        assert!(!is_valid_out_refund_no("has space"));
        assert!(!is_valid_out_refund_no(&"x".repeat(65)));
        assert!(!is_valid_out_refund_no("退款"));
    }

    #[test]
    fn refund_parses() {
        let refund: Refund = serde_json::from_str(
            r#"{"refund_id":"50000000382019052709732678859","out_refund_no":"1217752501201407033233368018","transaction_id":"1217752501201407033233368018","out_trade_no":"1217752501201407033233368018","channel":"ORIGINAL","user_received_account":"招商银行信用卡0403","success_time":"2020-12-01T16:18:12+08:00","create_time":"2020-12-01T16:18:12+08:00","status":"SUCCESS","funds_account":"UNSETTLED","amount":{"total":100,"refund":100,"from":[],"payer_total":90,"payer_refund":90,"settlement_refund":100,"settlement_total":100,"discount_refund":10,"currency":"CNY","refund_fee":0},"promotion_detail":[]}"#,
        )
        .expect("parses");
        assert_eq!(refund.status, RefundStatus::Success);
        assert_eq!(refund.amount.discount_refund, 10);
    }
}
