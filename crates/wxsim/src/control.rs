//! The control API (`/_sim/…`, JSON): what tests and the demo use to make things happen — orders, complaints and
//! their events, violations, limitations, faults, clock moves, certificate rotation — and to see what the
//! simulated services received and sent.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use wechatpay::api::complaints::{Complaint, ComplaintMedia, ComplaintOrder};
use wechatpay::api::limitations::MerchantLimitations;
use wechatpay::enums::{ActionType, ComplaintState, EventType, MediaType, OperateType, ProblemType};

use crate::callbacks::{self, DeliveryOptions};
use crate::clock::{china_day, rfc3339_china};
use crate::faults::Fault;
use crate::keys::{Identity, SignMode};
use crate::state::{ComplaintRecord, Image, OaAccount, Order, Robot, SmsApp};
use crate::{Sim, wxpay as wx};

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/setup", get(setup))
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance_clock))
        .route("/orders", post(create_order))
        .route("/complaints", post(create_complaint))
        .route("/complaints/{id}", get(complaint))
        .route("/complaints/{id}/actions", post(complaint_action))
        .route("/violations", post(violation))
        .route("/violations/intercepted", post(intercepted))
        .route("/limitations/{sub_mchid}", put(set_limitations))
        .route("/refund-url", post(set_refund_url))
        .route("/refunds", get(refunds))
        .route("/echo-merchant-actions", post(set_echo))
        .route("/certificates/rotate", post(rotate))
        .route("/sign-mode", post(sign_mode))
        .route("/deliveries", get(deliveries))
        .route("/callbacks/time-scale", post(set_time_scale))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/faults", post(add_fault).delete(clear_faults))
        .route("/callbacks/render", post(render_callback))
        .route("/send", post(send))
        .route("/oa/accounts", post(oa_account))
        .route("/oa/messages", get(oa_messages))
        .route("/oa/expire-tokens", post(oa_expire))
        .route("/sms/apps", post(sms_app))
        .route("/sms/messages", get(sms_messages))
        .route("/robots", post(robot))
        .route("/robots/messages", get(robot_messages))
        .route("/webhooks", post(webhook))
        .route("/webhooks/messages", get(webhook_messages))
}

fn bad(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message.into()}))).into_response()
}

async fn setup(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.setup()).into_response()
}

async fn clock(State(sim): State<Arc<Sim>>) -> Response {
    Json(json!({"now_ms": sim.clock.now_ms(), "now": rfc3339_china(sim.clock.now_ms()), "offset_ms": sim.clock.offset_ms()})).into_response()
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(State(sim): State<Arc<Sim>>, Json(body): Json<Advance>) -> Response {
    sim.clock.advance_ms(body.seconds.saturating_mul(1000));
    callbacks::complete_due_refunds(&sim);
    clock(State(sim)).await
}

#[derive(Deserialize)]
struct OrderIn {
    sub_mchid: String,
    /// Fen.
    amount: i64,
    #[serde(default)]
    transaction_id: Option<String>,
    #[serde(default)]
    out_trade_no: Option<String>,
}

fn new_order(state: &mut crate::state::State, input: OrderIn) -> Order {
    let n = state.next();
    let order = Order {
        transaction_id: input.transaction_id.unwrap_or_else(|| format!("42000{:023}", 20_261_127_000_000_000_u64 + n)),
        out_trade_no: input.out_trade_no.unwrap_or_else(|| format!("SIM{n:012}")),
        sub_mchid: input.sub_mchid,
        total: input.amount,
        refunded: 0,
    };
    state.orders.insert(order.transaction_id.clone(), order.clone());
    order
}

async fn create_order(State(sim): State<Arc<Sim>>, Json(input): Json<OrderIn>) -> Response {
    if input.amount <= 0 {
        return bad("amount must be more than 0 fen");
    }
    let order = new_order(&mut sim.state(), input);
    Json(order).into_response()
}

#[derive(Deserialize)]
struct ComplaintIn {
    sub_mchid: String,
    #[serde(default = "default_amount")]
    amount: i64,
    /// An existing order; else one is created.
    #[serde(default)]
    transaction_id: Option<String>,
    /// Existing orders, all of them the complaint's (a complaint about several payments); overrides the above.
    #[serde(default)]
    transaction_ids: Vec<String>,
    #[serde(default)]
    problem_type: Option<String>,
    #[serde(default)]
    apply_refund_amount: Option<i64>,
    #[serde(default = "default_detail")]
    detail: String,
    #[serde(default)]
    payer_phone: Option<String>,
    #[serde(default)]
    need_immediate_service: bool,
    /// Evidence images to attach.
    #[serde(default)]
    images: u32,
    #[serde(default = "yes")]
    notify: bool,
    #[serde(default)]
    delivery: DeliveryOptions,
}

fn default_amount() -> i64 {
    990
}

fn default_detail() -> String {
    "商品与描述不符，要求退款".into()
}

fn yes() -> bool {
    true
}

/// An 8-byte PNG signature plus padding: enough to be an "image" for download tests.
const FAKE_PNG: &[u8] = b"\x89PNG\r\n\x1a\nsimulated evidence image";

async fn create_complaint(State(sim): State<Arc<Sim>>, Json(input): Json<ComplaintIn>) -> Response {
    if input.sub_mchid.is_empty() || !input.sub_mchid.bytes().all(|b| b.is_ascii_digit()) {
        return bad("sub_mchid must be digits");
    }
    let payer_phone = match &input.payer_phone {
        Some(phone) => match sim.keys().merchant.public.encrypt_oaep_base64(phone) {
            Ok(cipher) => Some(cipher),
            Err(e) => return bad(e.to_string()),
        },
        None => None,
    };
    let now = sim.clock.now_ms();
    let mut state = sim.state();
    let mut orders = Vec::new();
    for id in &input.transaction_ids {
        match state.orders.get(id) {
            Some(order) => orders.push(order.clone()),
            None => return bad(format!("no order {id}")),
        }
    }
    let order = match input.transaction_id.as_ref().or(input.transaction_ids.first()) {
        Some(id) => match state.orders.get(id) {
            Some(order) => order.clone(),
            None => return bad(format!("no order {id}")),
        },
        None => new_order(
            &mut state,
            OrderIn {
                sub_mchid: input.sub_mchid.clone(),
                amount: input.amount,
                transaction_id: None,
                out_trade_no: None,
            },
        ),
    };
    let n = state.next();
    let day = time::OffsetDateTime::from_unix_timestamp(now / 1000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let complaint_id = format!("2002{:04}{:02}{:02}{n:015}", day.year(), u8::from(day.month()), day.day());
    let mut media_urls = Vec::new();
    for i in 0..input.images {
        // Real media ids carry `=`, which appears as `%3D` in media_url and must be signed as such.
        let media_id = format!("Chsy{complaint_id}{i}Ea==");
        state.images.insert(media_id.clone(), Image { content_type: "image/png".into(), bytes: FAKE_PNG.to_vec() });
        media_urls.push(format!("{}/v3/merchant-service/images/{}", sim.base_url, media_id.replace('=', "%3D")));
    }
    let complaint = Complaint {
        complaint_id: complaint_id.clone(),
        complaint_time: rfc3339_china(now),
        complaint_detail: input.detail,
        complaint_state: ComplaintState::Pending,
        complainted_mchid: input.sub_mchid.clone(),
        payer_phone,
        payer_openid: Some(format!("oSIM{n:024}")),
        complaint_order_info: if orders.is_empty() { vec![order.clone()] } else { orders }
            .into_iter()
            .map(|o| ComplaintOrder { transaction_id: o.transaction_id, out_trade_no: o.out_trade_no, amount: o.total })
            .collect(),
        service_order_info: Vec::new(),
        complaint_media_list: if media_urls.is_empty() {
            Vec::new()
        } else {
            vec![ComplaintMedia { media_type: MediaType::UserComplaintImage, media_url: media_urls }]
        },
        complaint_full_refunded: false,
        incoming_user_response: false,
        problem_description: Some("商家未按约定提供服务".into()),
        user_complaint_times: Some(1),
        problem_type: Some(ProblemType::parse(input.problem_type.as_deref().unwrap_or("OTHERS"))),
        apply_refund_amount: input.apply_refund_amount,
        user_tag_list: Vec::new(),
        additional_info: None,
        in_platform_service: false,
        need_immediate_service: input.need_immediate_service,
        is_agent_mode: false,
    };
    let mut record = ComplaintRecord {
        complaint,
        history: Vec::new(),
        immediate_replies: HashMap::new(),
        replies: Vec::new(),
        completed: false,
    };
    let log_id = state.next();
    let detail = record.complaint.complaint_detail.clone();
    wx::complaints_log(&sim, &mut record, "投诉人", OperateType::UserCreateComplaint, &detail, log_id);
    state.complaints.insert(complaint_id.clone(), record);
    let notification_id = if input.notify {
        callbacks::queue_complaint(&sim, &mut state, &complaint_id, ActionType::CreateComplaint, &input.delivery)
    } else {
        None
    };
    Json(json!({"complaint_id": complaint_id, "transaction_id": order.transaction_id, "out_trade_no": order.out_trade_no, "notification_id": notification_id}))
        .into_response()
}

async fn complaint(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    match sim.state().complaints.get(&id) {
        Some(record) => Json(record.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "no such complaint"}))).into_response(),
    }
}

#[derive(Deserialize)]
struct ActionIn {
    action_type: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    delivery: DeliveryOptions,
}

/// A complaint event: change the complaint as WeChat would, log it, and notify.
async fn complaint_action(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    Json(input): Json<ActionIn>,
) -> Response {
    let action = ActionType::parse(&input.action_type);
    let mut state = sim.state();
    let n = state.next();
    let Some(record) = state.complaints.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "no such complaint"}))).into_response();
    };
    let text = input.content.unwrap_or_else(|| action.as_str().to_owned());
    let c = &mut record.complaint;
    let (operator, operate) = match action {
        ActionType::ContinueComplaint => {
            c.user_complaint_times = Some(c.user_complaint_times.unwrap_or(1) + 1);
            c.complaint_state = ComplaintState::Pending;
            ("投诉人", OperateType::UserContinueComplaint)
        }
        ActionType::UserResponse => {
            c.incoming_user_response = true;
            ("投诉人", OperateType::UserResponse)
        }
        ActionType::ResponseByPlatform => ("客服", OperateType::PlatformResponse),
        ActionType::UserApplyPlatformService => {
            c.in_platform_service = true;
            ("投诉人", OperateType::UserApplyPlatformService)
        }
        ActionType::UserCancelPlatformService => {
            c.in_platform_service = false;
            ("投诉人", OperateType::UserCancelPlatformService)
        }
        ActionType::PlatformServiceFinished => {
            c.in_platform_service = false;
            ("客服", OperateType::PlatformServiceFinished)
        }
        ActionType::SellerRefund => {
            c.complaint_full_refunded = true;
            ("系统", OperateType::ComplaintFullRefundedSystemMessage)
        }
        ActionType::MerchantResponse => ("商家", OperateType::MerchantResponse),
        ActionType::MerchantConfirmComplete => {
            c.complaint_state = ComplaintState::Processed;
            ("商家", OperateType::MerchantConfirmComplete)
        }
        ActionType::MerchantApproveRefund => ("商家", OperateType::MerchantApproveRefund),
        ActionType::MerchantRejectRefund => ("商家", OperateType::MerchantRefuseRerund),
        ActionType::RefundSuccess => {
            c.complaint_state = ComplaintState::Processed;
            ("系统", OperateType::ComplaintRefundReceivedSystemMessage)
        }
        ActionType::CreateComplaint => ("投诉人", OperateType::UserCreateComplaint),
        ActionType::Unknown(ref other) => ("系统", OperateType::Unknown(other.clone())),
    };
    wx::complaints_log(&sim, record, operator, operate, &text, n);
    let notification_id = callbacks::queue_complaint(&sim, &mut state, &id, action, &input.delivery);
    Json(json!({"notification_id": notification_id})).into_response()
}

#[derive(Deserialize)]
struct ViolationIn {
    /// `VIOLATION.PUNISH` or `VIOLATION.APPEAL` (intercepts come from `/violations/intercepted`).
    event_type: String,
    sub_mchid: String,
    #[serde(default)]
    record_id: Option<String>,
    #[serde(default = "default_company")]
    company_name: String,
    #[serde(default = "default_plan")]
    punish_plan: String,
    #[serde(default = "default_description")]
    punish_description: String,
    #[serde(default = "default_risk")]
    risk_type: String,
    #[serde(default = "default_risk_description")]
    risk_description: String,
    #[serde(default)]
    delivery: DeliveryOptions,
}

fn default_company() -> String {
    "模拟科技有限公司".into()
}
fn default_plan() -> String {
    "暂停支付功能，暂停结算".into()
}
fn default_description() -> String {
    "经微信支付安全审核，该商户存在交易异常".into()
}
fn default_risk() -> String {
    "TRANSACTION_DISPUTE".into()
}
fn default_risk_description() -> String {
    "交易纠纷".into()
}

fn violation_resource(sim: &Sim, state: &mut crate::state::State, input: &ViolationIn) -> Value {
    let record_id = input.record_id.clone().unwrap_or_else(|| format!("VR{:018}", state.next()));
    json!({
        "sub_mchid": input.sub_mchid, "company_name": input.company_name, "record_id": record_id,
        "punish_plan": input.punish_plan, "punish_time": rfc3339_china(sim.clock.now_ms()),
        "punish_description": input.punish_description, "risk_type": input.risk_type, "risk_description": input.risk_description,
    })
}

async fn violation(State(sim): State<Arc<Sim>>, Json(input): Json<ViolationIn>) -> Response {
    let event_type = EventType::parse(&input.event_type);
    if !matches!(event_type, EventType::ViolationPunish | EventType::ViolationAppeal) {
        return bad("event_type is VIOLATION.PUNISH or VIOLATION.APPEAL; intercepts come from /violations/intercepted");
    }
    let mut state = sim.state();
    let resource = violation_resource(&sim, &mut state, &input);
    state.violations.push(resource.clone());
    let url = state.violation_url.clone();
    let summary = if event_type == EventType::ViolationPunish { "商户处罚通知" } else { "商户申诉通知" };
    let notification_id =
        callbacks::queue(&sim, &mut state, url, event_type, summary, "violation", resource.clone(), &input.delivery);
    Json(json!({"record_id": resource["record_id"], "notification_id": notification_id})).into_response()
}

#[derive(Deserialize)]
struct InterceptedIn {
    sub_mchid: String,
    orders: u32,
    #[serde(default = "default_company")]
    company_name: String,
    #[serde(default)]
    delivery: DeliveryOptions,
}

/// Orders intercepted: past 10 in all, an INTERCEPT notification goes out — at most once a China day.
async fn intercepted(State(sim): State<Arc<Sim>>, Json(input): Json<InterceptedIn>) -> Response {
    let today = china_day(sim.clock.now_ms());
    let mut state = sim.state();
    let entry = state.intercepts.entry(input.sub_mchid.clone()).or_insert((0, None));
    entry.0 += input.orders;
    let total = entry.0;
    let due = total > 10 && entry.1 != Some(today);
    if due {
        entry.1 = Some(today);
    }
    let notification_id = if due {
        let request = ViolationIn {
            event_type: "VIOLATION.INTERCEPT".into(),
            sub_mchid: input.sub_mchid,
            record_id: None,
            company_name: input.company_name,
            punish_plan: "拦截交易".into(),
            punish_description: format!("累计拦截订单{total}笔"),
            risk_type: "UNUSUAL_TRANSACTION".into(),
            risk_description: "交易异常".into(),
            delivery: input.delivery,
        };
        let resource = violation_resource(&sim, &mut state, &request);
        state.violations.push(resource.clone());
        let url = state.violation_url.clone();
        callbacks::queue(
            &sim,
            &mut state,
            url,
            EventType::ViolationIntercept,
            "商户拦截通知",
            "violation",
            resource,
            &request.delivery,
        )
    } else {
        None
    };
    Json(json!({"intercepted": total, "sent": due, "notification_id": notification_id})).into_response()
}

async fn set_limitations(
    State(sim): State<Arc<Sim>>,
    Path(sub_mchid): Path<String>,
    Json(mut limits): Json<MerchantLimitations>,
) -> Response {
    limits.mchid = sub_mchid.clone();
    sim.state().limitations.insert(sub_mchid, limits.clone());
    Json(limits).into_response()
}

#[derive(Deserialize)]
struct UrlIn {
    url: Option<String>,
}

async fn set_refund_url(State(sim): State<Arc<Sim>>, Json(input): Json<UrlIn>) -> Response {
    sim.state().refund_url = input.url.clone();
    Json(json!({"url": input.url})).into_response()
}

async fn refunds(State(sim): State<Arc<Sim>>) -> Response {
    let refunds: Vec<_> = sim.state().refunds.values().cloned().collect();
    Json(refunds).into_response()
}

#[derive(Deserialize)]
struct Enabled {
    enabled: bool,
}

async fn set_echo(State(sim): State<Arc<Sim>>, Json(input): Json<Enabled>) -> Response {
    sim.state().echo_merchant_actions = input.enabled;
    Json(json!({"enabled": input.enabled})).into_response()
}

/// A new platform certificate (and key) signs from now on; the old one stays listed, as during WeChat's rotation.
async fn rotate(State(sim): State<Arc<Sim>>) -> Response {
    let generated = tokio::task::spawn_blocking(|| Identity::generate("Tenpay.com", "Tenpay.com Root CA")).await;
    match generated {
        Ok(Ok(identity)) => {
            let serial = identity.serial.clone();
            sim.keys.write().unwrap_or_else(|p| p.into_inner()).platform.push(identity);
            Json(json!({"serial": serial})).into_response()
        }
        Ok(Err(e)) => bad(e.to_string()),
        Err(e) => bad(e.to_string()),
    }
}

#[derive(Deserialize)]
struct ModeIn {
    mode: SignMode,
}

async fn sign_mode(State(sim): State<Arc<Sim>>, Json(input): Json<ModeIn>) -> Response {
    sim.keys.write().unwrap_or_else(|p| p.into_inner()).mode = input.mode;
    Json(json!({"mode": input.mode})).into_response()
}

#[derive(Deserialize)]
struct ScaleIn {
    scale: f64,
}

/// Callback retry waits are WeChat's schedule times this factor from now on.
async fn set_time_scale(State(sim): State<Arc<Sim>>, Json(input): Json<ScaleIn>) -> Response {
    if !(input.scale > 0.0 && input.scale <= 10.0) {
        return bad("scale must be more than 0 and at most 10");
    }
    sim.state().callback_time_scale = Some(input.scale);
    Json(json!({"scale": input.scale})).into_response()
}

async fn deliveries(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.state().deliveries.clone()).into_response()
}

async fn requests(State(sim): State<Arc<Sim>>) -> Response {
    let requests: Vec<_> = sim.state().requests.iter().cloned().collect();
    Json(requests).into_response()
}

async fn clear_requests(State(sim): State<Arc<Sim>>) -> Response {
    sim.state().requests.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn add_fault(State(sim): State<Arc<Sim>>, Json(fault): Json<Fault>) -> Response {
    sim.state().faults.push(fault.clone());
    Json(fault).into_response()
}

async fn clear_faults(State(sim): State<Arc<Sim>>) -> Response {
    sim.state().faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct RenderIn {
    event_type: String,
    resource: Value,
    #[serde(default)]
    public_key: bool,
}

/// A callback's headers and body, without sending it (for receivers under test and cross-checks).
/// A rendered callback: its headers and body.
type Rendered = (Vec<(&'static str, String)>, String);

fn render(sim: &Sim, input: &RenderIn) -> Result<Rendered, String> {
    let key = wechatpay::Apiv3Key::new(sim.apiv3_key.as_bytes()).map_err(|e| e.to_string())?;
    let event_type = EventType::parse(&input.event_type);
    let original_type = input.event_type.split('.').next().unwrap_or("complaint").to_ascii_lowercase();
    let id = format!("EV-{}", wechatpay::crypto::random_alphanumeric(20).map_err(|e| e.to_string())?);
    let content = wechatpay::callback::NotificationContent {
        id: &id,
        create_time: &rfc3339_china(sim.clock.now_ms()),
        event_type,
        summary: "模拟通知",
        original_type: &original_type,
        plaintext: &input.resource.to_string(),
        associated_data: &original_type,
    };
    let notification = wechatpay::Notification::encrypt(&key, &content).map_err(|e| e.to_string())?;
    let body = serde_json::to_string(&notification).map_err(|e| e.to_string())?;
    let headers = wx::signature_headers(sim, None, input.public_key, body.as_bytes(), false);
    Ok((headers, body))
}

async fn render_callback(State(sim): State<Arc<Sim>>, Json(input): Json<RenderIn>) -> Response {
    match render(&sim, &input) {
        Ok((headers, body)) => {
            let headers: serde_json::Map<String, Value> =
                headers.into_iter().map(|(k, v)| (k.to_owned(), Value::String(v))).collect();
            Json(json!({"headers": headers, "body": body})).into_response()
        }
        Err(e) => bad(e),
    }
}

#[derive(Deserialize)]
struct SendIn {
    to: String,
    #[serde(flatten)]
    callback: RenderIn,
}

/// Send one signed, encrypted callback to any URL and report the answer.
async fn send(State(sim): State<Arc<Sim>>, Json(input): Json<SendIn>) -> Response {
    let (headers, body) = match render(&sim, &input.callback) {
        Ok(rendered) => rendered,
        Err(e) => return bad(e),
    };
    let mut request = sim.http.post(&input.to).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match request.body(body).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            Json(json!({"status": status, "body": text})).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

#[derive(Deserialize)]
struct OaAccountIn {
    appid: String,
    secret: String,
    #[serde(default)]
    templates: HashMap<String, Vec<String>>,
    #[serde(default)]
    followers: Vec<String>,
}

async fn oa_account(State(sim): State<Arc<Sim>>, Json(input): Json<OaAccountIn>) -> Response {
    let account = OaAccount {
        secret: input.secret,
        templates: input.templates,
        followers: input.followers.into_iter().collect(),
        ..OaAccount::default()
    };
    sim.state().oa.insert(input.appid.clone(), account);
    Json(json!({"appid": input.appid})).into_response()
}

async fn oa_messages(State(sim): State<Arc<Sim>>) -> Response {
    let messages: Vec<Value> = sim.state().oa.values().flat_map(|a| a.messages.clone()).collect();
    Json(messages).into_response()
}

#[derive(Deserialize)]
struct AppidIn {
    appid: String,
}

/// Expire every access token of an account now (to exercise 42001 handling).
async fn oa_expire(State(sim): State<Arc<Sim>>, Json(input): Json<AppidIn>) -> Response {
    let now = sim.clock.now_ms();
    if let Some(account) = sim.state().oa.get_mut(&input.appid) {
        for (_, expires) in account.classic.iter_mut().chain(account.stable.iter_mut()) {
            *expires = now;
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct SmsAppIn {
    sdk_app_id: String,
    secret_id: String,
    secret_key: String,
    sign_names: Vec<String>,
    templates: HashMap<String, usize>,
    #[serde(default = "default_param_chars")]
    param_max_chars: usize,
}

fn default_param_chars() -> usize {
    12
}

async fn sms_app(State(sim): State<Arc<Sim>>, Json(input): Json<SmsAppIn>) -> Response {
    let app = SmsApp {
        secret_id: input.secret_id,
        secret_key: input.secret_key,
        sign_names: input.sign_names,
        templates: input.templates,
        param_max_chars: input.param_max_chars,
    };
    sim.state().sms_apps.insert(input.sdk_app_id.clone(), app);
    Json(json!({"sdk_app_id": input.sdk_app_id})).into_response()
}

async fn sms_messages(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.state().sms_messages.clone()).into_response()
}

#[derive(Deserialize)]
struct RobotIn {
    /// `wecom`, `dingtalk` or `feishu`.
    kind: String,
    /// WeCom `key`, DingTalk `access_token`, Feishu hook token.
    token: String,
    #[serde(default)]
    secret: Option<String>,
}

async fn robot(State(sim): State<Arc<Sim>>, Json(input): Json<RobotIn>) -> Response {
    if !["wecom", "dingtalk", "feishu"].contains(&input.kind.as_str()) {
        return bad("kind is wecom, dingtalk or feishu");
    }
    sim.state()
        .robots
        .insert((input.kind.clone(), input.token.clone()), Robot { secret: input.secret, ..Robot::default() });
    Json(json!({"kind": input.kind, "token": input.token})).into_response()
}

async fn robot_messages(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.state().robot_messages.clone()).into_response()
}

#[derive(Deserialize)]
struct WebhookIn {
    name: String,
    secret: String,
}

async fn webhook(State(sim): State<Arc<Sim>>, Json(input): Json<WebhookIn>) -> Response {
    sim.state().webhook_secrets.insert(input.name.clone(), input.secret);
    Json(json!({"url": format!("{}/webhooks/{}", sim.base_url, input.name)})).into_response()
}

async fn webhook_messages(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.state().webhook_messages.clone()).into_response()
}
