//! What a notification says: event kinds, the facts each shows, and templates — built-in in Chinese and English,
//! replaceable per provider — rendered with minijinja (HTML auto-escaped, a fuel limit against runaway templates).
//!
//! Contract: [`render`] turns an event's data into a [`Message`] with a one-line subject, a plain-text body, an
//! HTML body, and short named `fields` (for official-account template keywords and SMS parameters). Amounts are
//! shown in yuan (`¥9.90`, from integer fen), times in Asia/Shanghai. Every message names the sub-merchant, the
//! complaint or record id, what wxrisk already did, and links to the console page when a public URL is set.

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::SHANGHAI;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    ComplaintCreated,
    ComplaintContinued,
    ComplaintUserReplied,
    ComplaintPlatformInvolved,
    /// A complaint event of a kind WeChat added after this version (an unknown `action_type`).
    ComplaintChanged,
    RefundSucceeded,
    RefundFailed,
    SlaDueSoon,
    SlaOverdue,
    ViolationPunish,
    ViolationIntercept,
    ViolationAppeal,
    /// A sub-merchant's risk score reached the alert threshold.
    RiskAlert,
    JobDead,
    /// Complaints from before the provider's automation start, found by reconciliation: summed up once, not acted on.
    ComplaintsBacklog,
    /// The provider's merchant API certificate or WeChat Pay platform certificate expires within 30 days.
    CertificateExpiring,
}

impl EventKind {
    pub const ALL: [EventKind; 16] = [
        EventKind::ComplaintCreated,
        EventKind::ComplaintContinued,
        EventKind::ComplaintUserReplied,
        EventKind::ComplaintPlatformInvolved,
        EventKind::ComplaintChanged,
        EventKind::RefundSucceeded,
        EventKind::RefundFailed,
        EventKind::SlaDueSoon,
        EventKind::SlaOverdue,
        EventKind::ViolationPunish,
        EventKind::ViolationIntercept,
        EventKind::ViolationAppeal,
        EventKind::RiskAlert,
        EventKind::JobDead,
        EventKind::ComplaintsBacklog,
        EventKind::CertificateExpiring,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ComplaintCreated => "complaint_created",
            EventKind::ComplaintContinued => "complaint_continued",
            EventKind::ComplaintUserReplied => "complaint_user_replied",
            EventKind::ComplaintPlatformInvolved => "complaint_platform_involved",
            EventKind::ComplaintChanged => "complaint_changed",
            EventKind::RefundSucceeded => "refund_succeeded",
            EventKind::RefundFailed => "refund_failed",
            EventKind::SlaDueSoon => "sla_due_soon",
            EventKind::SlaOverdue => "sla_overdue",
            EventKind::ViolationPunish => "violation_punish",
            EventKind::ViolationIntercept => "violation_intercept",
            EventKind::ViolationAppeal => "violation_appeal",
            EventKind::RiskAlert => "risk_alert",
            EventKind::JobDead => "job_dead",
            EventKind::ComplaintsBacklog => "complaints_backlog",
            EventKind::CertificateExpiring => "certificate_expiring",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Events operators must act on now: robots mention people for these.
    pub fn is_urgent(self) -> bool {
        matches!(
            self,
            EventKind::ComplaintPlatformInvolved
                | EventKind::RefundFailed
                | EventKind::SlaOverdue
                | EventKind::ViolationPunish
                | EventKind::ViolationIntercept
                | EventKind::RiskAlert
                | EventKind::JobDead
        )
    }

    fn label(self, locale: Locale) -> &'static str {
        let (zh, en) = match self {
            EventKind::ComplaintCreated => ("新投诉", "New complaint"),
            EventKind::ComplaintContinued => ("用户继续投诉", "Complaint continued"),
            EventKind::ComplaintUserReplied => ("用户回复", "Customer replied"),
            EventKind::ComplaintPlatformInvolved => ("平台介入", "WeChat Pay involved"),
            EventKind::ComplaintChanged => ("投诉有新动态", "Complaint updated"),
            EventKind::RefundSucceeded => ("退款成功", "Refund succeeded"),
            EventKind::RefundFailed => ("退款失败", "Refund failed"),
            EventKind::SlaDueSoon => ("投诉即将超时", "Complaint due soon"),
            EventKind::SlaOverdue => ("投诉已超时", "Complaint overdue"),
            EventKind::ViolationPunish => ("违规处罚", "Violation penalty"),
            EventKind::ViolationIntercept => ("交易拦截", "Payments intercepted"),
            EventKind::ViolationAppeal => ("申诉进展", "Appeal update"),
            EventKind::RiskAlert => ("风险预警", "Risk alert"),
            EventKind::JobDead => ("任务失败", "Task failed"),
            EventKind::ComplaintsBacklog => ("历史投诉汇总", "Complaints from before automation"),
            EventKind::CertificateExpiring => ("证书即将过期", "Certificate expiring"),
        };
        locale.pick(zh, en)
    }

    fn default_subject(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (EventKind::JobDead, Locale::Zh) => "【{{ event.label }}】{{ data.job.kind }} #{{ data.job.id }}",
            (EventKind::JobDead, Locale::En) => "[{{ event.label }}] {{ data.job.kind }} #{{ data.job.id }}",
            (EventKind::ComplaintsBacklog, Locale::Zh) => {
                "【{{ event.label }}】{{ data.backlog.count }} 起投诉未自动处理"
            }
            (EventKind::ComplaintsBacklog, Locale::En) => {
                "[{{ event.label }}] {{ data.backlog.count }} complaint(s) not handled automatically"
            }
            (EventKind::CertificateExpiring, Locale::Zh) => {
                "【{{ event.label }}】{{ provider.name }}：{% if data.certificate.kind == 'merchant' %}商户API证书{% else %}微信支付平台证书{% endif %} {{ data.certificate.serial }}"
            }
            (EventKind::CertificateExpiring, Locale::En) => {
                "[{{ event.label }}] {{ provider.name }}: {% if data.certificate.kind == 'merchant' %}merchant API certificate{% else %}WeChat Pay platform certificate{% endif %} {{ data.certificate.serial }}"
            }
            (k, Locale::Zh) if k.is_about_merchant() => {
                "【{{ event.label }}】{{ merchant.name }}（{{ merchant.mchid }}）"
            }
            (k, Locale::En) if k.is_about_merchant() => {
                "[{{ event.label }}] {{ merchant.name }} ({{ merchant.mchid }})"
            }
            (_, Locale::Zh) => "【{{ event.label }}】{{ merchant.name }}：{{ data.complaint.id }}",
            (_, Locale::En) => "[{{ event.label }}] {{ merchant.name }}: {{ data.complaint.id }}",
        }
    }

    /// Events about a sub-merchant rather than one complaint: the subject names the sub-merchant.
    fn is_about_merchant(self) -> bool {
        self.is_violation() || self == EventKind::RiskAlert
    }

    fn is_violation(self) -> bool {
        matches!(self, EventKind::ViolationPunish | EventKind::ViolationIntercept | EventKind::ViolationAppeal)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    Zh,
    En,
}

impl Locale {
    pub fn parse(text: &str) -> Locale {
        if text.to_ascii_lowercase().starts_with("en") { Locale::En } else { Locale::Zh }
    }

    /// For input: exactly `zh-CN` or `en` (`zh` and `en-US` are accepted too).
    pub fn parse_strict(text: &str) -> Option<Locale> {
        match text.trim() {
            "zh-CN" | "zh" | "zh-Hans" => Some(Locale::Zh),
            "en" | "en-US" | "en-GB" => Some(Locale::En),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Zh => "zh-CN",
            Locale::En => "en",
        }
    }

    fn pick(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Locale::Zh => zh,
            Locale::En => en,
        }
    }
}

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub event_kind: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Short values for template keywords and SMS parameters: `merchant_name`, `merchant_mchid`, `complaint_id`,
    /// `record_id`, `amount`, `time`, `deadline`, `event_label`, `summary`, `actions`, `risk_label`,
    /// `out_refund_no`, `provider_name`.
    pub fields: BTreeMap<String, String>,
    pub link: Option<String>,
    pub urgent: bool,
}

/// Templates for one event kind and language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Templates {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The built-in bodies (`templates/notify/`), shared by every event kind: the facts differ per kind, the layout not.
const TEXT_LAYOUT: &str = include_str!("../../templates/notify/body.txt");
const HTML_LAYOUT: &str = include_str!("../../templates/notify/body.html");

/// The built-in templates.
pub fn default_templates(kind: EventKind, locale: Locale) -> Templates {
    Templates {
        subject: kind.default_subject(locale).to_owned(),
        text: TEXT_LAYOUT.to_owned(),
        html: HTML_LAYOUT.to_owned(),
    }
}

/// `¥9.90` from fen.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}¥{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

/// `2026-11-27 15:01` in Asia/Shanghai, from Unix ms.
pub fn china_time(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(SHANGHAI);
    format!("{:04}-{:02}-{:02} {:02}:{:02}", at.year(), u8::from(at.month()), at.day(), at.hour(), at.minute())
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Label and value pairs shown for an event, in display order.
fn facts(kind: EventKind, data: &Value, locale: Locale) -> Vec<(&'static str, String)> {
    let l = |zh, en| locale.pick(zh, en);
    let mut facts = Vec::new();
    let mut add = |label: &'static str, value: Option<String>| {
        if let Some(value) = value {
            facts.push((label, value));
        }
    };
    let merchant = &data["merchant"];
    if !matches!(kind, EventKind::JobDead | EventKind::ComplaintsBacklog | EventKind::CertificateExpiring) {
        let name =
            text(&merchant["name"]).unwrap_or_else(|| l("未登记的子商户", "unregistered sub-merchant").to_owned());
        add(l("子商户", "Sub-merchant"), text(&merchant["mchid"]).map(|m| format!("{name}（{m}）")));
    }
    let complaint = &data["complaint"];
    add(l("投诉单号", "Complaint"), text(&complaint["id"]));
    add(l("投诉时间", "Filed"), complaint["time_ms"].as_i64().map(china_time));
    add(l("订单金额", "Amount"), complaint["amount_fen"].as_i64().map(yuan));
    add(l("用户申请退款", "Refund asked"), complaint["apply_refund_amount_fen"].as_i64().map(yuan));
    add(l("问题类型", "Problem"), text(&complaint["problem"]));
    add(l("投诉内容", "Complaint text"), text(&complaint["detail"]).map(|d| d.chars().take(200).collect()));
    add(l("用户留言", "Customer wrote"), text(&complaint["user_message"]));
    add(l("处理截止", "Due"), complaint["deadline_ms"].as_i64().map(china_time));
    let refund = &data["refund"];
    add(l("退款单号", "Refund"), text(&refund["out_refund_no"]));
    add(l("退款金额", "Refund amount"), refund["amount_fen"].as_i64().map(yuan));
    add(l("退款结果", "Refund result"), text(&refund["status"]));
    let violation = &data["violation"];
    add(l("公司名称", "Company"), text(&violation["company_name"]));
    add(l("处置记录", "Record"), text(&violation["record_id"]));
    add(l("风险类型", "Risk"), text(&violation["risk_label"]).or_else(|| text(&violation["risk_type"])));
    add(l("处罚方案", "Penalty"), text(&violation["punish_plan"]));
    add(l("处置时间", "Time"), text(&violation["punish_time"]));
    add(l("说明", "Details"), text(&violation["description"]));
    let risk = &data["risk"];
    add(
        l("风险分", "Risk score"),
        risk["score"].as_i64().map(|s| format!("{s} / 100（预警线 {}）", risk["threshold"])),
    );
    add(l("依据", "Why"), text(&risk["summary"]));
    let backlog = &data["backlog"];
    add(l("投诉数量", "Complaints"), backlog["count"].as_i64().map(|n| n.to_string()));
    add(l("尚未完结", "Still open"), backlog["open"].as_i64().map(|n| n.to_string()));
    add(l("涉及订单金额", "Order amount"), backlog["amount_fen"].as_i64().map(yuan));
    add(
        l("投诉时间", "Filed"),
        backlog["first_ms"]
            .as_i64()
            .zip(backlog["last_ms"].as_i64())
            .map(|(a, b)| format!("{} – {}", china_time(a), china_time(b))),
    );
    add(l("自动处理起始", "Automation since"), backlog["automation_since_ms"].as_i64().map(china_time));
    let job = &data["job"];
    add(l("任务", "Task"), text(&job["kind"]).map(|k| format!("{k} #{}", text(&job["id"]).unwrap_or_default())));
    add(l("错误", "Error"), text(&job["error"]));
    let certificate = &data["certificate"];
    if let Some(which) = certificate["kind"].as_str() {
        add(l("证书", "Certificate"), Some(certificate_label(which, locale).to_owned()));
        add(l("序列号", "Serial"), text(&certificate["serial"]));
        add(
            l("到期时间", "Expires"),
            certificate["not_after_ms"]
                .as_i64()
                .map(|ms| format!("{}{}", china_time(ms), l("（北京时间）", " (Asia/Shanghai)"))),
        );
        add(
            l("剩余天数", "Days left"),
            certificate["days_left"]
                .as_i64()
                .map(|d| if d > 0 { d.to_string() } else { l("已过期", "expired").to_owned() }),
        );
        add(l("处理方法", "What to do"), Some(certificate_advice(which, data["provider"]["id"].as_i64(), locale)));
    }
    facts
}

/// Which certificate, in words.
fn certificate_label(kind: &str, locale: Locale) -> &'static str {
    if kind == "merchant" {
        locale.pick("商户API证书（apiclient_cert）", "merchant API certificate (apiclient_cert)")
    } else {
        locale.pick("微信支付平台证书", "WeChat Pay platform certificate")
    }
}

/// What to do before the certificate expires: renew the merchant certificate; for the platform certificate, switch
/// to the WeChat Pay public key (微信支付公钥), which does not expire and which WeChat issues in its place.
fn certificate_advice(kind: &str, provider_id: Option<i64>, locale: Locale) -> String {
    let patch = match provider_id {
        Some(id) => format!("PATCH /api/v1/providers/{id}"),
        None => "PATCH /api/v1/providers/{id}".to_owned(),
    };
    match (kind, locale) {
        ("merchant", Locale::Zh) => format!(
            "商户API证书过期后，微信支付会拒绝该服务商的所有请求（回复、退款、完结投诉）。请在商户平台「账户中心 → API安全 → API证书」申请新证书，\
             然后在 wxrisk 中更新该服务商的 merchant_cert_serial、merchant_private_key_pem 和 merchant_cert_pem（{patch}）。\
             验证微信支付的签名则可改用微信支付公钥：「账户中心 → API安全 → 微信支付公钥」，填入 wechatpay_public_key_id 和 wechatpay_public_key_pem。"
        ),
        ("merchant", Locale::En) => format!(
            "Once the merchant API certificate expires, WeChat Pay refuses every request of this provider (replies, refunds, \
             completions). Apply for a new one in the merchant platform (Account Center → API Security → API certificate), then \
             update merchant_cert_serial, merchant_private_key_pem and merchant_cert_pem of this provider in wxrisk ({patch}). \
             To verify WeChat Pay's signatures, switch to the WeChat Pay public key (微信支付公钥): Account Center → API Security → \
             WeChat Pay public key; set wechatpay_public_key_id and wechatpay_public_key_pem."
        ),
        (_, Locale::Zh) => format!(
            "平台证书过期后，用它签名的回调和应答都无法验证。请改用微信支付公钥：登录商户平台「账户中心 → API安全 → 微信支付公钥」，\
             申请并下载公钥文件（pub_key.pem）和公钥ID（PUB_KEY_ID_开头），在 wxrisk 中为该服务商填写 wechatpay_public_key_id 和 \
             wechatpay_public_key_pem（{patch}）。切换期间 wxrisk 同时接受平台证书和公钥的签名，填好后即可在商户平台开启切换。"
        ),
        (_, Locale::En) => format!(
            "Once the platform certificate expires, callbacks and answers signed with it cannot be verified. Switch to the \
             WeChat Pay public key (微信支付公钥): in the merchant platform, Account Center → API Security → WeChat Pay public key, \
             apply for it and download the key file (pub_key.pem) and its id (PUB_KEY_ID_…); set wechatpay_public_key_id and \
             wechatpay_public_key_pem on this provider in wxrisk ({patch}). wxrisk accepts signatures by both during the \
             switch, so turn the switch on in the merchant platform once they are set."
        ),
    }
}

/// Short named values for template keywords and SMS parameters.
fn fields(kind: EventKind, data: &Value, locale: Locale, subject: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            fields.insert(name.to_owned(), value);
        }
    };
    put("event_label", Some(kind.label(locale).to_owned()));
    put("summary", Some(subject.to_owned()));
    put("merchant_name", text(&data["merchant"]["name"]).or_else(|| text(&data["merchant"]["mchid"])));
    put("merchant_mchid", text(&data["merchant"]["mchid"]));
    put("provider_name", text(&data["provider"]["name"]));
    put("complaint_id", text(&data["complaint"]["id"]));
    put("record_id", text(&data["violation"]["record_id"]));
    put("risk_label", text(&data["violation"]["risk_label"]).or_else(|| text(&data["violation"]["risk_type"])));
    put("out_refund_no", text(&data["refund"]["out_refund_no"]));
    put("amount", data["refund"]["amount_fen"].as_i64().or_else(|| data["complaint"]["amount_fen"].as_i64()).map(yuan));
    put("time", data["complaint"]["time_ms"].as_i64().or_else(|| data["time_ms"].as_i64()).map(china_time));
    put(
        "deadline",
        data["complaint"]["deadline_ms"]
            .as_i64()
            .or_else(|| data["certificate"]["not_after_ms"].as_i64())
            .map(china_time),
    );
    put("certificate_serial", text(&data["certificate"]["serial"]));
    let actions: Vec<String> =
        data["actions"].as_array().map(|a| a.iter().filter_map(text).collect()).unwrap_or_default();
    put("actions", (!actions.is_empty()).then(|| actions.join(locale.pick("；", "; "))));
    fields
}

#[derive(Debug, thiserror::Error)]
#[error("template {part}: {message}")]
pub struct TemplateError {
    pub part: &'static str,
    pub message: String,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    // A template an operator wrote must not loop forever in the worker.
    env.set_fuel(Some(100_000));
    env.set_formatter(html_formatter);
    env
}

/// minijinja's HTML escaping also turns `/` into `&#x2f;`, which is valid but makes links in mail
/// sources unreadable for operators checking them; these five characters are all HTML needs.
fn html_formatter(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    if !matches!(state.auto_escape(), AutoEscape::Html) || value.is_safe() || value.is_undefined() || value.is_none() {
        return minijinja::escape_formatter(out, state, value);
    }
    let raw = value.to_string();
    let mut escaped = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    out.write_str(&escaped).map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
}

/// Render an event for one provider. `templates` are the provider's own for this kind and language, if any.
pub fn render(
    kind: EventKind,
    locale: Locale,
    data: &Value,
    link: Option<String>,
    now_ms: i64,
    templates: Option<&Templates>,
) -> Result<Message, TemplateError> {
    let defaults = default_templates(kind, locale);
    let templates = templates.unwrap_or(&defaults);
    let env = environment();
    let merchant_name = text(&data["merchant"]["name"])
        .unwrap_or_else(|| locale.pick("未登记的子商户", "unregistered sub-merchant").to_owned());
    let facts: Vec<Value> =
        facts(kind, data, locale).into_iter().map(|(label, value)| json!({"label": label, "value": value})).collect();
    let actions: Vec<String> =
        data["actions"].as_array().map(|a| a.iter().filter_map(text).collect()).unwrap_or_default();
    let mut context = json!({
        "event": {"kind": kind.as_str(), "label": kind.label(locale)},
        "merchant": {"name": merchant_name, "mchid": text(&data["merchant"]["mchid"]).unwrap_or_default()},
        "provider": data["provider"],
        "data": data,
        "facts": facts,
        "actions": actions,
        "link": link,
        "now": china_time(now_ms),
        "t": {
            "colon": locale.pick("：", ": "),
            "separator": locale.pick("；", "; "),
            "done": locale.pick("wxrisk 已处理", "wxrisk did"),
            "open": locale.pick("查看详情", "Open in the console"),
        },
    });
    let render_part = |part: &'static str, name: &str, source: &str, context: &Value| {
        env.render_named_str(name, source, minijinja::value::Serde(context))
            .map_err(|e| TemplateError { part, message: e.to_string() })
    };
    let subject = render_part("subject", "subject.txt", &templates.subject, &context)?
        .replace(['\n', '\r'], " ")
        .trim()
        .to_owned();
    context["subject"] = Value::String(subject.clone());
    let text_body = render_part("text", "body.txt", &templates.text, &context)?;
    let html = render_part("html", "body.html", &templates.html, &context)?;
    Ok(Message {
        event_kind: kind.as_str().to_owned(),
        fields: fields(kind, data, locale, &subject),
        subject,
        text: text_body,
        html,
        link,
        urgent: kind.is_urgent(),
    })
}

/// Data for sample messages (test sends, template previews).
pub fn sample_data(kind: EventKind, now_ms: i64) -> Value {
    json!({
        "provider": {"name": "示例服务商", "mchid": "1900000100"},
        "merchant": {"name": "示例门店", "mchid": "1900000109"},
        "complaint": if kind == EventKind::ComplaintsBacklog { Value::Null } else {
            json!({"id": "200201820261127000000000001", "time_ms": now_ms, "amount_fen": 990, "problem": "商品与描述不符",
                   "detail": "这是一条测试通知", "deadline_ms": now_ms + 86_400_000})
        },
        "refund": if matches!(kind, EventKind::RefundSucceeded | EventKind::RefundFailed) { json!({"out_refund_no": "CR-TEST-1", "amount_fen": 990, "status": "SUCCESS"}) } else { Value::Null },
        "violation": if kind.is_violation() { json!({"record_id": "TEST-RECORD-1", "company_name": "示例科技有限公司", "risk_type": "TRANSACTION_DISPUTE", "risk_label": "交易纠纷", "punish_plan": "暂停支付功能", "punish_time": "2026-11-27T10:00:00+08:00"}) } else { Value::Null },
        "risk": if kind == EventKind::RiskAlert { json!({"score": 72, "threshold": 60, "summary": "30 天：投诉 12 起（重复 3，平台介入 2），超时 1 起，处罚 1 次，拦截 0 次"}) } else { Value::Null },
        "job": if kind == EventKind::JobDead { json!({"id": 1, "kind": "complaint.reply", "error": "HTTP 400: PARAM_ERROR"}) } else { Value::Null },
        "backlog": if kind == EventKind::ComplaintsBacklog { json!({"count": 37, "open": 12, "amount_fen": 183_400, "first_ms": now_ms - 29 * 86_400_000, "last_ms": now_ms - 3_600_000, "automation_since_ms": now_ms}) } else { Value::Null },
        "certificate": if kind == EventKind::CertificateExpiring { json!({"kind": "platform", "serial": "3F5A1B2C3D4E5F60718293A4B5C6D7E8F9012345", "not_after_ms": now_ms + 30 * 86_400_000, "days_left": 30}) } else { Value::Null },
        "actions": ["已自动回复", "已发起退款 ¥9.90"],
        "time_ms": now_ms,
    })
}

/// A digest of several messages for one recipient.
pub fn digest(messages: &[Message], locale: Locale) -> Message {
    let count = messages.len();
    let subject = match locale {
        Locale::Zh => format!("【wxrisk】{count} 条通知"),
        Locale::En => format!("[wxrisk] {count} notifications"),
    };
    // The digest's own subject first, like every message's text (robots show the rest under it); then one line per
    // message, so that a channel which must cut a long digest (robots, SMS) still names every message; then each
    // message in full.
    let index: Vec<String> = messages.iter().enumerate().map(|(i, m)| format!("{}. {}", i + 1, m.subject)).collect();
    let items = messages.iter().map(|m| m.text.trim().to_owned()).collect::<Vec<_>>().join("\n\n----\n\n");
    let text = format!("{subject}\n\n{}\n\n====\n\n{items}", index.join("\n"));
    let html_items: String = messages
        .iter()
        .map(|m| {
            let body =
                m.html.split("<body").nth(1).and_then(|b| b.split_once('>')).map(|(_, rest)| rest).unwrap_or(&m.html);
            body.split("</body>").next().unwrap_or(body).to_owned()
        })
        .collect::<Vec<_>>()
        .join("<hr>");
    let mut fields = messages.first().map(|m| m.fields.clone()).unwrap_or_default();
    fields.insert("summary".into(), subject.clone());
    fields.insert("event_label".into(), locale.pick("多条通知", "Digest").to_owned());
    Message {
        event_kind: "digest".into(),
        html: format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{}</h2>{html_items}</body></html>",
            escape_html(&subject)
        ),
        subject,
        text,
        fields,
        link: messages.first().and_then(|m| m.link.clone()),
        urgent: messages.iter().any(|m| m.urgent),
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_217_606_000;

    #[test]
    fn money_and_time() {
        assert_eq!(yuan(990), "¥9.90");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(yuan(123_456), "¥1234.56");
        assert_eq!(china_time(0), "1970-01-01 08:00");
    }

    #[test]
    fn every_kind_renders_in_both_languages() {
        for kind in EventKind::ALL {
            for locale in [Locale::Zh, Locale::En] {
                let message =
                    render(kind, locale, &sample_data(kind, NOW), Some("https://risk.example.com/x".into()), NOW, None)
                        .unwrap_or_else(|e| panic!("{kind:?} {locale:?}: {e}"));
                assert!(!message.subject.is_empty() && !message.subject.contains('\n'));
                assert!(message.text.contains(&message.subject));
                assert!(message.html.contains("https://risk.example.com/x"), "{}", message.html);
                match kind {
                    EventKind::JobDead | EventKind::CertificateExpiring => {}
                    EventKind::ComplaintsBacklog => {
                        assert!(
                            message.subject.contains("37") && message.text.contains("¥1834.00"),
                            "{}",
                            message.text
                        );
                    }
                    _ => assert!(message.text.contains("1900000109"), "{kind:?} names the sub-merchant"),
                }
                assert!(message.text.contains("已自动回复"), "{kind:?} says what wxrisk did");
            }
        }
        let zh = render(
            EventKind::ComplaintCreated,
            Locale::Zh,
            &sample_data(EventKind::ComplaintCreated, NOW),
            None,
            NOW,
            None,
        )
        .expect("zh");
        assert!(zh.subject.starts_with("【新投诉】示例门店"));
        assert!(zh.text.contains("订单金额：¥9.90"), "{}", zh.text);
        assert_eq!(zh.fields["amount"], "¥9.90");
        assert_eq!(zh.fields["complaint_id"], "200201820261127000000000001");
        let en = render(
            EventKind::ViolationPunish,
            Locale::En,
            &sample_data(EventKind::ViolationPunish, NOW),
            None,
            NOW,
            None,
        )
        .expect("en");
        assert!(en.subject.starts_with("[Violation penalty]"));
        assert!(en.urgent);
    }

    #[test]
    fn certificate_alerts_name_the_certificate_its_expiry_in_shanghai_time_and_the_way_out() {
        let mut data = sample_data(EventKind::CertificateExpiring, NOW);
        data["provider"] = json!({"id": 7, "name": "示例服务商", "mchid": "1900000100"});
        data["certificate"]["not_after_ms"] = json!(2_111_117_460_000_i64);
        let zh = render(EventKind::CertificateExpiring, Locale::Zh, &data, None, NOW, None).expect("zh");
        assert!(zh.subject.contains("微信支付平台证书 3F5A1B2C3D4E5F60718293A4B5C6D7E8F9012345"), "{}", zh.subject);
        assert!(zh.text.contains("2036-11-24 13:31（北京时间）"), "{}", zh.text);
        assert!(zh.text.contains("微信支付公钥") && zh.text.contains("PATCH /api/v1/providers/7"), "{}", zh.text);
        assert_eq!(zh.fields["certificate_serial"], "3F5A1B2C3D4E5F60718293A4B5C6D7E8F9012345");
        data["certificate"]["kind"] = json!("merchant");
        let en = render(EventKind::CertificateExpiring, Locale::En, &data, None, NOW, None).expect("en");
        assert!(en.subject.contains("merchant API certificate"), "{}", en.subject);
        assert!(en.text.contains("2036-11-24 13:31 (Asia/Shanghai)"), "{}", en.text);
        assert!(en.text.contains("API certificate") && en.text.contains("WeChat Pay public key"), "{}", en.text);
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let mut data = sample_data(EventKind::ComplaintCreated, NOW);
        data["complaint"]["detail"] = json!("<script>alert('x')</script> & more");
        let message = render(EventKind::ComplaintCreated, Locale::Zh, &data, None, NOW, None).expect("renders");
        assert!(!message.html.contains("<script>"), "{}", message.html);
        assert!(message.html.contains("&lt;script&gt;"));
        assert!(message.text.contains("<script>alert('x')</script> & more"));
    }

    #[test]
    fn provider_templates_replace_the_defaults_and_bad_ones_fail() {
        let custom = Templates {
            subject: "投诉 {{ data.complaint.id }}".into(),
            text: "{{ merchant.name }} 有新投诉".into(),
            html: "<p>{{ merchant.name }}</p>".into(),
        };
        let message = render(
            EventKind::ComplaintCreated,
            Locale::Zh,
            &sample_data(EventKind::ComplaintCreated, NOW),
            None,
            NOW,
            Some(&custom),
        )
        .expect("renders");
        assert_eq!(message.subject, "投诉 200201820261127000000000001");
        assert_eq!(message.text, "示例门店 有新投诉");
        let broken = Templates { subject: "{{ unclosed".into(), ..custom.clone() };
        let error = render(
            EventKind::ComplaintCreated,
            Locale::Zh,
            &sample_data(EventKind::ComplaintCreated, NOW),
            None,
            NOW,
            Some(&broken),
        )
        .expect_err("syntax");
        assert_eq!(error.part, "subject");
        let endless = Templates { text: "{% for i in range(100000000) %}{{ i }}{% endfor %}".into(), ..custom };
        assert!(
            render(
                EventKind::ComplaintCreated,
                Locale::Zh,
                &sample_data(EventKind::ComplaintCreated, NOW),
                None,
                NOW,
                Some(&endless)
            )
            .is_err(),
            "fuel runs out"
        );
    }

    #[test]
    fn digests_list_every_message() {
        let one = render(
            EventKind::ComplaintCreated,
            Locale::Zh,
            &sample_data(EventKind::ComplaintCreated, NOW),
            None,
            NOW,
            None,
        )
        .expect("a");
        let two = render(EventKind::SlaOverdue, Locale::Zh, &sample_data(EventKind::SlaOverdue, NOW), None, NOW, None)
            .expect("b");
        let digest = digest(&[one.clone(), two.clone()], Locale::Zh);
        assert_eq!(digest.subject, "【wxrisk】2 条通知");
        assert!(digest.text.contains(&one.subject) && digest.text.contains(&two.subject));
        assert!(digest.urgent, "an urgent message makes the digest urgent");
    }
}
