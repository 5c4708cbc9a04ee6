//! Complaints 2.0: list, detail, negotiation history, replies, completion, refund approval — with WeChat's limits
//! and state machine (PENDING → PROCESSING on the first reply → PROCESSED on completion).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use wechatpay::api::complaints::{Complaint, HistoryPage, NegotiationEntry};
use wechatpay::enums::{ActionType, ComplaintState, OperateType, ProblemType};

use super::{error, frequency_limited, invalid_request, json, param_error, parse};
use crate::Sim;
use crate::callbacks;
use crate::clock::rfc3339_china;
use crate::state::ComplaintRecord;

/// WeChat's per-minute limits, per service provider.
pub const REPLY_PER_MINUTE: u32 = 60;
pub const LIST_PER_MINUTE: u32 = 200;
pub const HISTORY_PER_MINUTE: u32 = 200;
pub const COMPLETE_PER_MINUTE: u32 = 1500;

fn query_map(query: Option<String>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect()
}

fn int_param(params: &HashMap<String, String>, name: &str, default: u32) -> Result<u32, Response> {
    match params.get(name) {
        None => Ok(default),
        Some(value) => value.parse().map_err(|_| param_error(format!("{name}参数格式错误"))),
    }
}

fn date_param(params: &HashMap<String, String>, name: &str) -> Result<time::Date, Response> {
    let value = params.get(name).ok_or_else(|| param_error(format!("缺少参数{name}")))?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, format).map_err(|_| param_error(format!("{name}格式应为yyyy-MM-dd")))
}

/// The China date of a complaint.
fn complaint_date(complaint: &Complaint) -> Option<time::Date> {
    complaint.complained_at().map(|at| at.to_offset(time::macros::offset!(+8)).date())
}

pub async fn list(State(sim): State<Arc<Sim>>, RawQuery(query): RawQuery) -> Response {
    let params = query_map(query);
    let (limit, offset) = match (int_param(&params, "limit", 10), int_param(&params, "offset", 0)) {
        (Ok(l), Ok(o)) => (l, o),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if !(1..=50).contains(&limit) {
        return param_error("limit取值范围为1-50");
    }
    let (begin, end) = match (date_param(&params, "begin_date"), date_param(&params, "end_date")) {
        (Ok(b), Ok(e)) => (b, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if end < begin || (end - begin).whole_days() > 30 {
        return param_error("查询时间跨度不能超过30天");
    }
    let mut state = sim.state();
    if !state.within_limit("complaint-list", LIST_PER_MINUTE, sim.clock.now_ms()) {
        return frequency_limited();
    }
    let mchid = params.get("complainted_mchid");
    let mut matching: Vec<Complaint> = state
        .complaints
        .values()
        .map(|r| r.complaint.clone())
        .filter(|c| mchid.is_none_or(|m| &c.complainted_mchid == m))
        .filter(|c| complaint_date(c).is_some_and(|d| d >= begin && d <= end))
        .collect();
    matching.sort_by(|a, b| {
        (a.complaint_time.as_str(), a.complaint_id.as_str()).cmp(&(b.complaint_time.as_str(), b.complaint_id.as_str()))
    });
    let total = u32::try_from(matching.len()).unwrap_or(u32::MAX);
    let data: Vec<Complaint> = matching
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|mut c| {
            c.payer_openid = None; // detail only
            c
        })
        .collect();
    let mut page = serde_json::json!({"data": data, "limit": limit, "offset": offset});
    if offset == 0 {
        page["total_count"] = serde_json::json!(total);
    }
    json(StatusCode::OK, &page)
}

fn not_exist() -> Response {
    error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "投诉单不存在")
}

pub async fn detail(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    match sim.state().complaints.get(&id) {
        Some(record) => json(StatusCode::OK, &record.complaint),
        None => not_exist(),
    }
}

pub async fn history(State(sim): State<Arc<Sim>>, Path(id): Path<String>, RawQuery(query): RawQuery) -> Response {
    let params = query_map(query);
    let (limit, offset) = match (int_param(&params, "limit", 100), int_param(&params, "offset", 0)) {
        (Ok(l), Ok(o)) => (l, o),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if !(1..=300).contains(&limit) {
        return param_error("limit取值范围为1-300");
    }
    let mut state = sim.state();
    if !state.within_limit("complaint-history", HISTORY_PER_MINUTE, sim.clock.now_ms()) {
        return frequency_limited();
    }
    let Some(record) = state.complaints.get(&id) else { return not_exist() };
    let page = HistoryPage {
        data: record.history.iter().skip(offset as usize).take(limit as usize).cloned().collect(),
        limit,
        offset,
        total_count: Some(u32::try_from(record.history.len()).unwrap_or(u32::MAX)),
    };
    json(StatusCode::OK, &page)
}

/// Append a history entry.
pub(crate) fn log(
    sim: &Sim,
    record: &mut ComplaintRecord,
    operator: &str,
    operate_type: OperateType,
    details: &str,
    next_id: u64,
) {
    record.history.push(NegotiationEntry {
        log_id: format!("{}{:010}", record.complaint.complaint_id, next_id),
        operator: operator.to_owned(),
        operate_time: rfc3339_china(sim.clock.now_ms()),
        operate_type,
        operate_details: details.to_owned(),
        image_list: Vec::new(),
        complaint_media_list: None,
        user_appy_platform_service_reason: None,
        user_appy_platform_service_reason_description: None,
        normal_message: None,
        click_message: None,
    });
}

#[derive(Deserialize)]
struct ResponseBody {
    complainted_mchid: String,
    response_content: String,
    #[serde(default)]
    response_images: Vec<String>,
    #[serde(default)]
    jump_url: Option<String>,
    #[serde(default)]
    jump_url_text: Option<String>,
}

/// The sub-merchant named in the body must be the complaint's: a provider that sends its own mchid is refused.
fn check_mchid(record: &ComplaintRecord, mchid: &str) -> Result<(), Response> {
    if record.complaint.complainted_mchid != mchid {
        return Err(param_error(format!("complainted_mchid {mchid} 与投诉单的被诉商户号不一致")));
    }
    Ok(())
}

pub async fn respond(State(sim): State<Arc<Sim>>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: ResponseBody = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let chars = request.response_content.chars().count();
    if chars == 0 || chars > 200 {
        return param_error("response_content长度应为1-200个字符");
    }
    if request.response_content.chars().any(|c| c.len_utf8() == 4) {
        return param_error("response_content含有不支持的字符");
    }
    if request.response_images.len() > 4 {
        return param_error("response_images最多4张");
    }
    if request.jump_url.is_some() != request.jump_url_text.is_some() {
        return param_error("jump_url与jump_url_text需同时填写");
    }
    let mut state = sim.state();
    if !state.within_limit("complaint-reply", REPLY_PER_MINUTE, sim.clock.now_ms()) {
        return frequency_limited();
    }
    if let Some(missing) = request.response_images.iter().find(|m| !state.images.contains_key(*m)) {
        return param_error(format!("图片 {missing} 不存在"));
    }
    let next = state.next();
    let Some(record) = state.complaints.get_mut(&id) else { return not_exist() };
    if let Err(e) = check_mchid(record, &request.complainted_mchid) {
        return e;
    }
    if record.complaint.complaint_state == ComplaintState::Processed {
        return invalid_request("投诉单已处理完成，不能再回复");
    }
    if record.complaint.complaint_state == ComplaintState::Pending {
        record.complaint.complaint_state = ComplaintState::Processing;
    }
    record.complaint.incoming_user_response = false;
    record.replies.push(request.response_content.clone());
    log(&sim, record, "商家", OperateType::MerchantResponse, &request.response_content, next);
    echo(&sim, &mut state, &id, ActionType::MerchantResponse);
    Response::builder().status(StatusCode::NO_CONTENT).body(axum::body::Body::empty()).unwrap_or_default()
}

#[derive(Deserialize)]
struct ImmediateBody {
    complainted_mchid: String,
    message: serde_json::Value,
    idempotent_id: String,
}

pub async fn respond_immediate(State(sim): State<Arc<Sim>>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: ImmediateBody = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if request.idempotent_id.is_empty() || request.idempotent_id.len() > 128 {
        return param_error("idempotent_id长度应为1-128");
    }
    if request.message["blocks"].as_array().is_none_or(|b| b.is_empty()) {
        return param_error("message.blocks不能为空");
    }
    let mut state = sim.state();
    if !state.within_limit("complaint-reply", REPLY_PER_MINUTE, sim.clock.now_ms()) {
        return frequency_limited();
    }
    let next = state.next();
    let Some(record) = state.complaints.get_mut(&id) else { return not_exist() };
    if let Err(e) = check_mchid(record, &request.complainted_mchid) {
        return e;
    }
    if !record.complaint.need_immediate_service {
        return param_error("该投诉单无需使用即时服务接口回复");
    }
    if let Some(log_id) = record.immediate_replies.get(&request.idempotent_id) {
        return json(StatusCode::OK, &serde_json::json!({"log_id": log_id}));
    }
    let text = request.message["blocks"][0]["text"]["text"].as_str().unwrap_or("[消息]").to_owned();
    log(&sim, record, "商家", OperateType::MerchantResponse, &text, next);
    let log_id = record.history.last().map(|e| e.log_id.clone()).unwrap_or_default();
    record.immediate_replies.insert(request.idempotent_id, log_id.clone());
    record.replies.push(text);
    if record.complaint.complaint_state == ComplaintState::Pending {
        record.complaint.complaint_state = ComplaintState::Processing;
    }
    json(StatusCode::OK, &serde_json::json!({"log_id": log_id}))
}

#[derive(Deserialize)]
struct CompleteBody {
    complainted_mchid: String,
}

pub async fn complete(State(sim): State<Arc<Sim>>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: CompleteBody = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut state = sim.state();
    if !state.within_limit("complaint-complete", COMPLETE_PER_MINUTE, sim.clock.now_ms()) {
        return frequency_limited();
    }
    let next = state.next();
    let Some(record) = state.complaints.get_mut(&id) else { return not_exist() };
    if let Err(e) = check_mchid(record, &request.complainted_mchid) {
        return e;
    }
    if record.complaint.complaint_state == ComplaintState::Processed {
        return invalid_request("投诉单已处理完成");
    }
    record.complaint.complaint_state = ComplaintState::Processed;
    record.completed = true;
    log(&sim, record, "商家", OperateType::MerchantConfirmComplete, "商家已处理完成", next);
    echo(&sim, &mut state, &id, ActionType::MerchantConfirmComplete);
    Response::builder().status(StatusCode::NO_CONTENT).body(axum::body::Body::empty()).unwrap_or_default()
}

#[derive(Deserialize)]
struct RefundProgressBody {
    action: String,
    #[serde(default)]
    launch_refund_day: Option<u32>,
    #[serde(default)]
    reject_reason: Option<String>,
    #[serde(default)]
    reject_media_list: Vec<String>,
    #[serde(default)]
    remark: Option<String>,
}

pub async fn refund_progress(State(sim): State<Arc<Sim>>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: RefundProgressBody = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if request.reject_media_list.len() > 4 {
        return param_error("reject_media_list最多4张");
    }
    if [&request.reject_reason, &request.remark].into_iter().flatten().any(|t| t.chars().count() > 200) {
        return param_error("reject_reason与remark最长200个字符");
    }
    let mut state = sim.state();
    let next = state.next();
    let Some(record) = state.complaints.get_mut(&id) else { return not_exist() };
    if record.complaint.problem_type != Some(ProblemType::Refund) {
        return param_error("非极速退款单据, 不能对本单据进行退款进度更新");
    }
    let echo_action = match request.action.as_str() {
        "APPROVE" => {
            if request.launch_refund_day.is_none() {
                return param_error("APPROVE时launch_refund_day必填");
            }
            log(&sim, record, "商家", OperateType::MerchantApproveRefund, "商家同意退款", next);
            ActionType::MerchantApproveRefund
        }
        "REJECT" => {
            if request.reject_reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return param_error("REJECT时reject_reason必填");
            }
            record.complaint.complaint_state = ComplaintState::Processed;
            log(
                &sim,
                record,
                "商家",
                OperateType::MerchantRefuseRerund,
                request.reject_reason.as_deref().unwrap_or_default(),
                next,
            );
            ActionType::MerchantRejectRefund
        }
        _ => return param_error("action取值应为APPROVE或REJECT"),
    };
    echo(&sim, &mut state, &id, echo_action);
    Response::builder().status(StatusCode::NO_CONTENT).body(axum::body::Body::empty()).unwrap_or_default()
}

/// Notify the provider of its own action, when the simulator is set to (WeChat's FAQ says it no longer does).
fn echo(sim: &Sim, state: &mut crate::state::State, complaint_id: &str, action: ActionType) {
    if state.echo_merchant_actions {
        callbacks::queue_complaint(sim, state, complaint_id, action, &callbacks::DeliveryOptions::default());
    }
}
