//! Consumer complaints 2.0 (消费者投诉2.0) for service providers: list, detail, negotiation history, reply,
//! immediate-service reply, completion, refund approval, and the complaint notification URL.
//!
//! Every call uses the provider's credentials; the sub-merchant is named by `complainted_mchid` — the
//! complaint's own, never the provider's (one of the `wechatpayv3` SDK's bugs).

use http::Method;
use serde::{Deserialize, Serialize};
use time::Date;

use super::{json_body, notify_url, path_id, query, strip_four_byte_chars};
use crate::callback::string_or_number;
use crate::client::{ApiRequest, Body, Client};
use crate::enums::{ComplaintState, MediaType, OperateType, ProblemType, ServiceOrderState};
use crate::error::{Error, Result};

/// Longest list window WeChat accepts.
pub const MAX_WINDOW_DAYS: i64 = 30;
pub const MAX_LIST_LIMIT: u32 = 50;
pub const MAX_HISTORY_LIMIT: u32 = 300;
/// Reply length: 200 characters in the merchant documents, 500 in the 2025 partner document; 200 is safe.
pub const MAX_RESPONSE_CHARS: usize = 200;
pub const MAX_RESPONSE_IMAGES: usize = 4;

/// One complaint, as the list and the detail return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Complaint {
    pub complaint_id: String,
    /// RFC 3339 (with or without milliseconds).
    pub complaint_time: String,
    #[serde(default)]
    pub complaint_detail: String,
    pub complaint_state: ComplaintState,
    /// The sub-merchant complained about.
    #[serde(deserialize_with = "string_or_number")]
    pub complainted_mchid: String,
    /// Encrypted with the provider's merchant certificate key; [`Client::decrypt_sensitive`] opens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_phone: Option<String>,
    /// Detail only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_openid: Option<String>,
    #[serde(default)]
    pub complaint_order_info: Vec<ComplaintOrder>,
    #[serde(default)]
    pub service_order_info: Vec<ServiceOrder>,
    #[serde(default)]
    pub complaint_media_list: Vec<ComplaintMedia>,
    #[serde(default)]
    pub complaint_full_refunded: bool,
    #[serde(default)]
    pub incoming_user_response: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_complaint_times: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<ProblemType>,
    /// In fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_refund_amount: Option<i64>,
    #[serde(default)]
    pub user_tag_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<AdditionalInfo>,
    #[serde(default)]
    pub in_platform_service: bool,
    #[serde(default)]
    pub need_immediate_service: bool,
    #[serde(default)]
    pub is_agent_mode: bool,
}

impl Complaint {
    pub fn complained_at(&self) -> Option<time::OffsetDateTime> {
        crate::callback::parse_wechat_time(&self.complaint_time)
    }
}

/// An order a complaint is about. `amount` in fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintOrder {
    pub transaction_id: String,
    #[serde(default)]
    pub out_trade_no: String,
    pub amount: i64,
}

/// A WeChat Pay Score order a complaint is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceOrder {
    #[serde(default)]
    pub order_id: String,
    #[serde(default)]
    pub out_order_no: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ServiceOrderState>,
}

/// Evidence images: `media_url` is a list, and each URL must be fetched exactly as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintMedia {
    pub media_type: MediaType,
    #[serde(default)]
    pub media_url: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdditionalInfo {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_power_info: Option<SharePowerInfo>,
}

/// Power-bank complaints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharePowerInfo {
    #[serde(default)]
    pub return_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_address_info: Option<ReturnAddress>,
    #[serde(default)]
    pub is_returned_to_same_machine: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnAddress {
    #[serde(default)]
    pub return_address: String,
    #[serde(default)]
    pub longitude: String,
    #[serde(default)]
    pub latitude: String,
}

/// One page of the complaint list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintPage {
    #[serde(default)]
    pub data: Vec<Complaint>,
    #[serde(default)]
    pub limit: u32,
    #[serde(default)]
    pub offset: u32,
    /// Returned only for `offset = 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u32>,
}

/// A list query: at most 30 days, 1–50 per page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplaintListQuery {
    pub begin_date: Date,
    pub end_date: Date,
    pub limit: u32,
    pub offset: u32,
    /// `None`: every sub-merchant of the provider.
    pub complainted_mchid: Option<String>,
}

/// One entry of a complaint's negotiation history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NegotiationEntry {
    pub log_id: String,
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub operate_time: String,
    pub operate_type: OperateType,
    #[serde(default)]
    pub operate_details: String,
    #[serde(default)]
    pub image_list: Vec<String>,
    /// An object here, unlike the detail's list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_media_list: Option<ComplaintMedia>,
    /// WeChat's spelling ("appy").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_appy_platform_service_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_appy_platform_service_reason_description: Option<String>,
    /// Rich messages, kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal_message: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_message: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    #[serde(default)]
    pub data: Vec<NegotiationEntry>,
    #[serde(default)]
    pub limit: u32,
    #[serde(default)]
    pub offset: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u32>,
}

/// A reply to the consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseRequest {
    /// The sub-merchant complained about.
    pub complainted_mchid: String,
    pub response_content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_images: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jump_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jump_url_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mini_program_jump_info: Option<MiniProgramJump>,
}

impl ResponseRequest {
    /// A plain text reply.
    pub fn text(complainted_mchid: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            complainted_mchid: complainted_mchid.into(),
            response_content: content.into(),
            response_images: Vec::new(),
            jump_url: None,
            jump_url_text: None,
            mini_program_jump_info: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiniProgramJump {
    pub appid: String,
    pub path: String,
    pub text: String,
}

/// A reply through `response-immediate-service` (complaints with `need_immediate_service`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImmediateServiceRequest {
    pub complainted_mchid: String,
    pub message: ImmediateServiceMessage,
    /// WeChat processes repeated requests with the same id once.
    pub idempotent_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImmediateServiceMessage {
    /// `TEXT`, `IMAGE`, `LINK`, `FAQ_LIST`, `BUTTON`, `BUTTON_GROUP` blocks, as JSON.
    pub blocks: Vec<serde_json::Value>,
    /// `MANUAL` or `MACHINE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
}

impl ImmediateServiceMessage {
    /// One text block.
    pub fn text(text: &str) -> Self {
        Self {
            blocks: vec![serde_json::json!({"type": "TEXT", "text": {"text": strip_four_byte_chars(text)}})],
            sender_identity: Some("MACHINE".into()),
            custom_data: None,
        }
    }
}

/// `update-refund-progress` (refund-request complaints only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundProgressRequest {
    /// `APPROVE` or `REJECT`.
    pub action: String,
    /// With APPROVE: working days until the refund starts; 0 = today.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_refund_day: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reject_media_list: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
}

impl RefundProgressRequest {
    pub fn approve(launch_refund_day: u32) -> Self {
        Self {
            action: "APPROVE".into(),
            launch_refund_day: Some(launch_refund_day),
            reject_reason: None,
            reject_media_list: Vec::new(),
            remark: None,
        }
    }
}

/// What WeChat has as the provider's complaint notification URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintNotificationUrl {
    #[serde(default)]
    pub mchid: String,
    pub url: String,
}

#[derive(Serialize)]
struct CompleteBody<'a> {
    complainted_mchid: &'a str,
}

#[derive(Serialize)]
struct UrlBody<'a> {
    url: &'a str,
}

#[derive(Deserialize)]
struct LogId {
    log_id: String,
}

fn format_date(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

fn check_limit(name: &str, limit: u32, max: u32) -> Result<()> {
    if !(1..=max).contains(&limit) {
        return Err(Error::Invalid(format!("{name}: limit must be 1 to {max}")));
    }
    Ok(())
}

impl Client {
    /// One page of complaints (`GET /v3/merchant-service/complaints-v2`).
    pub async fn list_complaints(&self, q: &ComplaintListQuery) -> Result<ComplaintPage> {
        check_limit("complaint list", q.limit, MAX_LIST_LIMIT)?;
        if q.end_date < q.begin_date {
            return Err(Error::Invalid("complaint list: end_date is before begin_date".into()));
        }
        if (q.end_date - q.begin_date).whole_days() > MAX_WINDOW_DAYS {
            return Err(Error::Invalid(format!("complaint list: the window must be at most {MAX_WINDOW_DAYS} days")));
        }
        let mut pairs = vec![
            ("limit", q.limit.to_string()),
            ("offset", q.offset.to_string()),
            ("begin_date", format_date(q.begin_date)),
            ("end_date", format_date(q.end_date)),
        ];
        if let Some(mchid) = &q.complainted_mchid {
            pairs.push(("complainted_mchid", path_id("complainted_mchid", mchid)?.to_owned()));
        }
        let target = format!("/v3/merchant-service/complaints-v2?{}", query(&pairs));
        self.json(ApiRequest { method: Method::GET, target, body: Body::Empty, encrypted: false, verify: true }).await
    }

    /// Walk every complaint from `from` to `to` (inclusive), window by window and page by page.
    pub fn complaints_between(&self, from: Date, to: Date, complainted_mchid: Option<String>) -> ComplaintWalker {
        ComplaintWalker { client: self.clone(), window_start: from, to, offset: 0, complainted_mchid, done: from > to }
    }

    /// A complaint's detail (`GET …/complaints-v2/{complaint_id}`).
    pub async fn complaint(&self, complaint_id: &str) -> Result<Complaint> {
        let target = format!("/v3/merchant-service/complaints-v2/{}", path_id("complaint_id", complaint_id)?);
        self.json(ApiRequest { method: Method::GET, target, body: Body::Empty, encrypted: false, verify: true }).await
    }

    /// One page of a complaint's negotiation history (`limit` 1–300).
    pub async fn negotiation_history(&self, complaint_id: &str, limit: u32, offset: u32) -> Result<HistoryPage> {
        check_limit("negotiation history", limit, MAX_HISTORY_LIMIT)?;
        let target = format!(
            "/v3/merchant-service/complaints-v2/{}/negotiation-historys?{}",
            path_id("complaint_id", complaint_id)?,
            query(&[("limit", limit.to_string()), ("offset", offset.to_string())])
        );
        self.json(ApiRequest { method: Method::GET, target, body: Body::Empty, encrypted: false, verify: true }).await
    }

    /// The whole negotiation history, page by page.
    pub async fn full_negotiation_history(&self, complaint_id: &str) -> Result<Vec<NegotiationEntry>> {
        const PAGE: u32 = 100;
        let mut entries = Vec::new();
        loop {
            let offset = u32::try_from(entries.len()).unwrap_or(u32::MAX);
            let page = self.negotiation_history(complaint_id, PAGE, offset).await?;
            let got = page.data.len();
            entries.extend(page.data);
            let total = page.total_count.map(|t| t as usize);
            if got < PAGE as usize || total.is_some_and(|t| entries.len() >= t) || got == 0 {
                return Ok(entries);
            }
        }
    }

    /// Reply to the consumer (`POST …/response`). 4-byte characters are dropped (WeChat refuses them); the text
    /// must then be 1–200 characters, with at most 4 images.
    pub async fn respond(&self, complaint_id: &str, request: &ResponseRequest) -> Result<()> {
        let mut request = request.clone();
        request.response_content = strip_four_byte_chars(request.response_content.trim());
        let chars = request.response_content.chars().count();
        if chars == 0 || chars > MAX_RESPONSE_CHARS {
            return Err(Error::Invalid(format!(
                "response_content must be 1 to {MAX_RESPONSE_CHARS} characters (has {chars})"
            )));
        }
        if request.response_images.len() > MAX_RESPONSE_IMAGES {
            return Err(Error::Invalid(format!("at most {MAX_RESPONSE_IMAGES} response_images")));
        }
        if request.jump_url.is_some() != request.jump_url_text.is_some() {
            return Err(Error::Invalid("jump_url and jump_url_text go together".into()));
        }
        path_id("complainted_mchid", &request.complainted_mchid)?;
        let target = format!("/v3/merchant-service/complaints-v2/{}/response", path_id("complaint_id", complaint_id)?);
        self.no_content(ApiRequest {
            method: Method::POST,
            target,
            body: Body::Json(json_body(&request)?),
            encrypted: false,
            verify: true,
        })
        .await
    }

    /// Reply through `response-immediate-service`; returns WeChat's `log_id`.
    pub async fn respond_immediate_service(
        &self,
        complaint_id: &str,
        request: &ImmediateServiceRequest,
    ) -> Result<String> {
        if request.idempotent_id.is_empty() || request.idempotent_id.len() > 128 {
            return Err(Error::Invalid("idempotent_id must be 1 to 128 characters".into()));
        }
        if request.message.blocks.is_empty() {
            return Err(Error::Invalid("the message needs at least one block".into()));
        }
        path_id("complainted_mchid", &request.complainted_mchid)?;
        let target = format!(
            "/v3/merchant-service/complaints-v2/{}/response-immediate-service",
            path_id("complaint_id", complaint_id)?
        );
        let answer: LogId = self
            .json(ApiRequest {
                method: Method::POST,
                target,
                body: Body::Json(json_body(request)?),
                encrypted: false,
                verify: true,
            })
            .await?;
        Ok(answer.log_id)
    }

    /// Report the complaint handled (`POST …/complete`).
    pub async fn complete_complaint(&self, complaint_id: &str, complainted_mchid: &str) -> Result<()> {
        let body = json_body(&CompleteBody { complainted_mchid: path_id("complainted_mchid", complainted_mchid)? })?;
        let target = format!("/v3/merchant-service/complaints-v2/{}/complete", path_id("complaint_id", complaint_id)?);
        self.no_content(ApiRequest {
            method: Method::POST,
            target,
            body: Body::Json(body),
            encrypted: false,
            verify: true,
        })
        .await
    }

    /// Approve or reject a refund-request complaint (`POST …/update-refund-progress`). Approval does not refund:
    /// the refund itself is [`Client::create_refund`].
    pub async fn update_refund_progress(&self, complaint_id: &str, request: &RefundProgressRequest) -> Result<()> {
        match request.action.as_str() {
            "APPROVE" if request.launch_refund_day.is_none() => {
                return Err(Error::Invalid("APPROVE needs launch_refund_day".into()));
            }
            "APPROVE" => {}
            "REJECT" if request.reject_reason.as_deref().is_none_or(|r| r.trim().is_empty()) => {
                return Err(Error::Invalid("REJECT needs reject_reason".into()));
            }
            "REJECT" => {}
            other => return Err(Error::Invalid(format!("action `{other}` is not APPROVE or REJECT"))),
        }
        if request.reject_media_list.len() > MAX_RESPONSE_IMAGES {
            return Err(Error::Invalid(format!("at most {MAX_RESPONSE_IMAGES} reject_media_list entries")));
        }
        for text in [&request.reject_reason, &request.remark].into_iter().flatten() {
            if text.chars().count() > 200 {
                return Err(Error::Invalid("reject_reason and remark are at most 200 characters".into()));
            }
        }
        let target = format!(
            "/v3/merchant-service/complaints-v2/{}/update-refund-progress",
            path_id("complaint_id", complaint_id)?
        );
        self.no_content(ApiRequest {
            method: Method::POST,
            target,
            body: Body::Json(json_body(request)?),
            encrypted: false,
            verify: true,
        })
        .await
    }

    /// The complaint notification URL WeChat has, if any.
    pub async fn complaint_notification_url(&self) -> Result<Option<ComplaintNotificationUrl>> {
        let request = ApiRequest {
            method: Method::GET,
            target: "/v3/merchant-service/complaint-notifications".into(),
            body: Body::Empty,
            encrypted: false,
            verify: true,
        };
        match self.json(request).await {
            Ok(url) => Ok(Some(url)),
            Err(Error::Api(api)) if api.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create (`update = false`) or replace the complaint notification URL.
    pub async fn set_complaint_notification_url(&self, url: &str, update: bool) -> Result<ComplaintNotificationUrl> {
        notify_url("url", url, 255)?;
        let method = if update { Method::PUT } else { Method::POST };
        let body = json_body(&UrlBody { url })?;
        self.json(ApiRequest {
            method,
            target: "/v3/merchant-service/complaint-notifications".into(),
            body: Body::Json(body),
            encrypted: false,
            verify: true,
        })
        .await
    }

    pub async fn delete_complaint_notification_url(&self) -> Result<()> {
        self.no_content(ApiRequest {
            method: Method::DELETE,
            target: "/v3/merchant-service/complaint-notifications".into(),
            body: Body::Empty,
            encrypted: false,
            verify: true,
        })
        .await
    }
}

/// Walks complaints over any span: 30-day windows (WeChat's limit), 50 per page.
#[derive(Debug)]
pub struct ComplaintWalker {
    client: Client,
    window_start: Date,
    to: Date,
    offset: u32,
    complainted_mchid: Option<String>,
    done: bool,
}

impl ComplaintWalker {
    /// The next page of complaints; `None` when every window has been read.
    pub async fn next_page(&mut self) -> Option<Result<Vec<Complaint>>> {
        while !self.done {
            // A window covers MAX_WINDOW_DAYS days in all: end - begin = MAX_WINDOW_DAYS - 1.
            let window_end = (self.window_start + time::Duration::days(MAX_WINDOW_DAYS - 1)).min(self.to);
            let query = ComplaintListQuery {
                begin_date: self.window_start,
                end_date: window_end,
                limit: MAX_LIST_LIMIT,
                offset: self.offset,
                complainted_mchid: self.complainted_mchid.clone(),
            };
            let page = match self.client.list_complaints(&query).await {
                Ok(page) => page,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let got = u32::try_from(page.data.len()).unwrap_or(u32::MAX);
            let exhausted = got < MAX_LIST_LIMIT || page.total_count.is_some_and(|t| self.offset + got >= t);
            if exhausted {
                self.offset = 0;
                match window_end.next_day() {
                    Some(next) if window_end < self.to => self.window_start = next,
                    _ => self.done = true,
                }
            } else {
                self.offset += got;
            }
            if got > 0 {
                return Some(Ok(page.data));
            }
        }
        None
    }

    /// Every complaint left, in one vector.
    pub async fn collect_all(mut self) -> Result<Vec<Complaint>> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await {
            all.extend(page?);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The detail example with every field of the fact sheet, including the string/number and array quirks.
    const DETAIL: &str = r#"{
        "complaint_id": "200201820200101080076610000",
        "complaint_time": "2015-05-20T13:29:35.120+08:00",
        "complaint_detail": "反馈一个重复扣费的问题",
        "complaint_state": "PENDING",
        "complainted_mchid": 1900012181,
        "payer_phone": "cipher",
        "payer_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        "complaint_order_info": [{"transaction_id": "4200000801202010148880000001", "out_trade_no": "20190906154617947762231", "amount": 3}],
        "service_order_info": [{"order_id": "15646546545165651651", "out_order_no": "1234323JKHDFE1243252", "state": "DOING"}],
        "complaint_media_list": [{"media_type": "USER_COMPLAINT_IMAGE", "media_url": ["https://api.mch.weixin.qq.com/v3/merchant-service/images/xxxxx"]}],
        "complaint_full_refunded": true,
        "incoming_user_response": false,
        "problem_description": "不满意商家服务",
        "user_complaint_times": 1,
        "problem_type": "REFUND",
        "apply_refund_amount": 10,
        "user_tag_list": ["TRUSTED"],
        "additional_info": {"type": "SHARE_POWER_TYPE", "share_power_info": {"return_time": "2023-02-10T14:44:13+08:00", "return_address_info": {"return_address": "广东省深圳市南山区", "longitude": "113.9", "latitude": "22.5"}, "is_returned_to_same_machine": false}},
        "in_platform_service": true,
        "need_immediate_service": true,
        "is_agent_mode": false,
        "a_field_added_later": {"x": 1}
    }"#;

    #[test]
    fn detail_parses_every_field() {
        let complaint: Complaint = serde_json::from_str(DETAIL).expect("parses");
        assert_eq!(complaint.complainted_mchid, "1900012181");
        assert_eq!(complaint.complaint_state, ComplaintState::Pending);
        assert_eq!(complaint.complaint_order_info[0].amount, 3);
        assert_eq!(complaint.complaint_media_list[0].media_url.len(), 1);
        assert_eq!(complaint.problem_type, Some(ProblemType::Refund));
        assert_eq!(complaint.apply_refund_amount, Some(10));
        assert!(complaint.need_immediate_service && complaint.in_platform_service);
        assert_eq!(complaint.service_order_info[0].state, Some(ServiceOrderState::Doing));
        let info = complaint.additional_info.as_ref().and_then(|a| a.share_power_info.as_ref()).expect("power bank");
        assert_eq!(info.return_address_info.as_ref().map(|a| a.latitude.as_str()), Some("22.5"));
        assert!(complaint.complained_at().is_some());
        // A list item has no payer_openid, and older complaints lack the newer fields.
        let minimal: Complaint = serde_json::from_str(
            r#"{"complaint_id":"1","complaint_time":"2015-05-20T13:29:35+08:00","complaint_state":"PROCESSED","complainted_mchid":"1900012181"}"#,
        )
        .expect("minimal");
        assert!(minimal.complaint_order_info.is_empty() && minimal.problem_type.is_none());
    }

    #[test]
    fn history_entry_with_object_media() {
        let entry: NegotiationEntry = serde_json::from_str(
            r#"{"log_id":"300285320210322170000071077","operator":"投诉人","operate_time":"2015-05-20T13:29:35.120+08:00","operate_type":"USER_APPLY_PLATFORM_HELP","operate_details":"已申请平台协助","image_list":[],"complaint_media_list":{"media_type":"USER_COMPLAINT_IMAGE","media_url":["https://x/1"]},"user_appy_platform_service_reason":"商家未响应","normal_message":{"blocks":[]}}"#,
        )
        .expect("parses");
        assert_eq!(entry.operate_type, OperateType::UserApplyPlatformHelp);
        assert_eq!(entry.complaint_media_list.map(|m| m.media_url.len()), Some(1));
        assert_eq!(entry.user_appy_platform_service_reason.as_deref(), Some("商家未响应"));
    }

    #[test]
    fn dates_format() {
        assert_eq!(format_date(time::macros::date!(2026 - 01 - 05)), "2026-01-05");
    }
}
