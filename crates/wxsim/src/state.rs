//! The simulated services' state, in memory, behind one mutex (the simulator serves tests and demos, not traffic).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::Serialize;
use wechatpay::api::complaints::{Complaint, NegotiationEntry};
use wechatpay::api::limitations::MerchantLimitations;
use wechatpay::api::refunds::Refund;

use crate::callbacks::Delivery;
use crate::faults::Fault;

/// Recorded requests kept, newest last.
pub const MAX_RECORDED: usize = 10_000;

#[derive(Debug, Default)]
pub struct State {
    next_id: u64,
    pub complaints: BTreeMap<String, ComplaintRecord>,
    pub orders: BTreeMap<String, Order>,
    pub refunds: BTreeMap<String, RefundRecord>,
    pub images: HashMap<String, Image>,
    pub complaint_url: Option<String>,
    pub violation_url: Option<String>,
    /// Where refund results go when a refund request names no `notify_url` (the platform setting).
    pub refund_url: Option<String>,
    pub violations: Vec<serde_json::Value>,
    /// Intercepted orders per sub-merchant, and the China day an INTERCEPT was last sent.
    pub intercepts: HashMap<String, (u32, Option<i64>)>,
    pub limitations: HashMap<String, MerchantLimitations>,
    pub requests: VecDeque<Recorded>,
    pub faults: Vec<Fault>,
    /// Calls per (limit name, minute).
    pub rate: HashMap<(&'static str, i64), u32>,
    pub deliveries: Vec<Delivery>,
    pub oa: HashMap<String, OaAccount>,
    pub sms_apps: HashMap<String, SmsApp>,
    pub sms_messages: Vec<SmsMessage>,
    pub robots: HashMap<(String, String), Robot>,
    pub robot_messages: Vec<RobotMessage>,
    pub webhook_secrets: HashMap<String, String>,
    pub webhook_messages: Vec<WebhookMessage>,
    /// Send complaint notifications for the provider's own replies and completions (off: WeChat's FAQ says they
    /// are no longer sent).
    pub echo_merchant_actions: bool,
    /// Replaces the configured callback time scale (control API).
    pub callback_time_scale: Option<f64>,
    /// Alternates callback signatures between certificate and public key in the `both` sign mode.
    pub callback_toggle: bool,
}

impl State {
    /// A fresh number, for ids.
    pub fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn record(&mut self, entry: Recorded) {
        if self.requests.len() >= MAX_RECORDED {
            self.requests.pop_front();
        }
        self.requests.push_back(entry);
    }

    /// Count a call against a per-minute limit; `false` when over it.
    pub fn within_limit(&mut self, name: &'static str, limit: u32, now_ms: i64) -> bool {
        let minute = now_ms.div_euclid(60_000);
        self.rate.retain(|(_, m), _| *m >= minute - 1);
        let count = self.rate.entry((name, minute)).or_default();
        *count += 1;
        *count <= limit
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub at_ms: i64,
    pub method: String,
    pub target: String,
    pub status: u16,
    /// The error code answered, if any.
    pub code: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComplaintRecord {
    pub complaint: Complaint,
    pub history: Vec<NegotiationEntry>,
    /// `idempotent_id` → `log_id` of immediate-service replies.
    pub immediate_replies: HashMap<String, String>,
    pub replies: Vec<String>,
    pub completed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub transaction_id: String,
    pub out_trade_no: String,
    pub sub_mchid: String,
    /// Fen.
    pub total: i64,
    /// Fen accepted for refund so far.
    pub refunded: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefundRecord {
    pub refund: Refund,
    pub sub_mchid: String,
    pub notify_url: Option<String>,
    /// Simulated time at which it succeeds.
    pub due_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct OaAccount {
    pub secret: String,
    /// template id → its keywords (`thing1`, `time2` …).
    pub templates: HashMap<String, Vec<String>>,
    pub followers: HashSet<String>,
    /// Classic `cgi-bin/token` tokens: the newest, and the one it replaced (valid 5 more minutes).
    pub classic: Vec<(String, i64)>,
    /// `stable_token` tokens likewise.
    pub stable: Vec<(String, i64)>,
    pub messages: Vec<serde_json::Value>,
    /// (openid, client_msg_id) → (msgid, sent at) for the 10-minute dedupe.
    pub client_msg_ids: HashMap<(String, String), (i64, i64)>,
}

#[derive(Debug, Clone, Default)]
pub struct SmsApp {
    pub secret_id: String,
    pub secret_key: String,
    pub sign_names: Vec<String>,
    /// template id → number of parameters.
    pub templates: HashMap<String, usize>,
    /// Longest template parameter (6 for accounts opened after 2024-01-25).
    pub param_max_chars: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SmsMessage {
    pub at_ms: i64,
    pub sdk_app_id: String,
    pub phone_number: String,
    pub sign_name: String,
    pub template_id: String,
    pub params: Vec<String>,
    pub session_context: String,
    pub serial_no: String,
}

#[derive(Debug, Clone, Default)]
pub struct Robot {
    pub secret: Option<String>,
    /// Calls in the current windows.
    pub sent_at_ms: Vec<i64>,
    /// DingTalk throttles a robot for 10 minutes after it exceeds its limit.
    pub throttled_until_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RobotMessage {
    pub at_ms: i64,
    pub kind: String,
    pub token: String,
    pub body: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookMessage {
    pub at_ms: i64,
    pub name: String,
    pub id: String,
    pub timestamp: String,
    pub body: serde_json::Value,
}
