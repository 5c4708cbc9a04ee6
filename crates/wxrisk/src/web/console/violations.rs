//! Violations (平台违规处置) in the console: the list (provider, sub-merchant, kind, risk type, date range; newest
//! first, keyset pages) and a record's page at `/console/providers/{provider_id}/violations/{record_id}` — where
//! violation notifications link — with every event about it and the sub-merchant's current limitations with
//! WeChat's recovery guidance.
//!
//! Contract: both pages read through the API's own functions (`web::api::violations::list_violations`,
//! `violation_detail`), so filters are checked, and records found, the same way. Everything WeChat sent is shown
//! escaped; a recovery help link is a link only when it is an https URL.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use wechatpay::api::limitations::MerchantLimitations;

use super::merchants::{ProviderOption, optional_id, parse_id, provider_options, refused, render_status, risk_link};
use super::page::{ConsoleError, Ctx, Lang, link, render, shanghai};
use super::session::Console;
use crate::domain::Mchid;
use crate::domain::risk::{RISK_LABELS, limited_function_label, risk_label};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::merchants;
use crate::store::violations::{LimitationsRow, ViolationRow};
use crate::web::api::violations::{ViolationListQuery, WhichViolation, list_violations, violation_detail};

/// `PUNISH`, `INTERCEPT`, `APPEAL` in the user's language.
pub fn kind_label(kind: &str, lang: Lang) -> String {
    match kind {
        "PUNISH" => lang.pick("处罚", "Punishment").to_owned(),
        "INTERCEPT" => lang.pick("拦截", "Interception").to_owned(),
        "APPEAL" => lang.pick("申诉", "Appeal").to_owned(),
        other => other.to_owned(),
    }
}

/// `VIOLATION.PUNISH` … in the user's language.
fn event_label(event_type: &str, lang: Lang) -> String {
    kind_label(event_type.strip_prefix("VIOLATION.").unwrap_or(event_type), lang)
}

/// A badge class per kind.
fn kind_class(kind: &str) -> &'static str {
    match kind {
        "PUNISH" => "failed",
        "INTERCEPT" => "warn",
        _ => "info",
    }
}

/// One record in a list.
#[derive(Debug)]
pub struct ViolationItem {
    pub link: String,
    pub time: String,
    pub record_id: String,
    pub company_name: String,
    pub mchid: String,
    pub risk_link: String,
    pub kind_label: String,
    pub kind_class: &'static str,
    pub risk_label: String,
    pub plan: String,
    pub appeal: Option<String>,
}

pub(super) fn violation_item(v: ViolationRow, lang: Lang) -> ViolationItem {
    ViolationItem {
        link: crate::notify::links::violation(v.provider_id, &v.record_id),
        time: shanghai(v.created_at),
        risk_link: risk_link(v.provider_id, &v.sub_mchid),
        kind_label: kind_label(&v.kind, lang),
        kind_class: kind_class(&v.kind),
        risk_label: risk_label(&v.risk_type, &v.risk_description),
        appeal: v.appeal_state.as_deref().map(|s| risk_label(s, v.appeal_detail.as_deref().unwrap_or_default())),
        record_id: v.record_id,
        company_name: v.company_name,
        mchid: v.sub_mchid,
        plan: v.punish_plan,
    }
}

/// `标签（CODE）` or `Label (CODE)`; the code alone when it is its own label.
pub(super) fn with_code(label: &str, code: &str, lang: Lang) -> String {
    match (label == code, lang) {
        (true, _) => code.to_owned(),
        (false, Lang::Zh) => format!("{label}（{code}）"),
        (false, Lang::En) => format!("{label} ({code})"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Limitations (shared with the risk page).

/// One of WeChat's recovery specifications: why a function is limited and the way back.
#[derive(Debug, Default)]
pub struct RecoveryView {
    pub case_id: String,
    pub reason_type: String,
    pub reason: String,
    pub describe: String,
    pub relate: String,
    pub recover_way: String,
    pub recover_way_param: String,
    /// Only an https link is offered as one.
    pub help_url: Option<String>,
    pub help_text: String,
    pub action_type: String,
    pub start_date: String,
    pub date: String,
}

/// A sub-merchant's limitations as last read from WeChat.
#[derive(Debug, Default)]
pub struct LimitationsView {
    /// `never` (not read yet), `none` (nothing limited) or `limited`.
    pub state: &'static str,
    pub checked_at: String,
    pub functions: Vec<String>,
    pub other: String,
    pub recovery: Vec<RecoveryView>,
}

pub(super) fn limitations_view(row: Option<&LimitationsRow>, lang: Lang) -> LimitationsView {
    let Some(row) = row else { return LimitationsView { state: "never", ..LimitationsView::default() } };
    let details: MerchantLimitations = serde_json::from_str(&row.details).unwrap_or_default();
    let mut functions: Vec<String> = details
        .limited_functions
        .iter()
        .map(|f| with_code(&limited_function_label(f.as_str(), lang == Lang::Zh), f.as_str(), lang))
        .collect();
    if functions.is_empty() {
        // The details did not parse as expected: the list stored beside them still says what is limited.
        let codes: Vec<String> = serde_json::from_str(&row.limited_functions).unwrap_or_default();
        functions = codes.iter().map(|c| with_code(&limited_function_label(c, lang == Lang::Zh), c, lang)).collect();
    }
    let other = details.other_limited_functions.clone().unwrap_or_default();
    let recovery = details
        .recovery_specifications
        .into_iter()
        .map(|r| {
            let help = r.recover_help_url.clone().unwrap_or_default();
            let https = url::Url::parse(help.trim()).ok().filter(|u| u.scheme() == "https").map(|u| u.to_string());
            RecoveryView {
                case_id: r.limitation_case_id,
                reason_type: r.limitation_reason_type,
                reason: r.limitation_reason,
                describe: r.limitation_reason_describe,
                relate: r
                    .relate_limitations
                    .iter()
                    .map(|c| limited_function_label(c, lang == Lang::Zh))
                    .chain(r.other_relate_limitations)
                    .collect::<Vec<_>>()
                    .join("、"),
                recover_way: r.recover_way,
                recover_way_param: r.recover_way_param.unwrap_or_default(),
                help_text: if https.is_some() { String::new() } else { help },
                help_url: https,
                action_type: r.limitation_action_type.unwrap_or_default(),
                start_date: r.limitation_start_date.unwrap_or_default(),
                date: r.limitation_date.unwrap_or_default(),
            }
        })
        .collect::<Vec<_>>();
    let limited = !functions.is_empty() || !other.is_empty() || !recovery.is_empty();
    LimitationsView {
        state: if limited { "limited" } else { "none" },
        checked_at: shanghai(row.checked_at),
        functions,
        other,
        recovery,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The list.

#[derive(Debug, Default, Deserialize)]
pub struct ViolationsQuery {
    provider_id: Option<String>,
    mchid: Option<String>,
    kind: Option<String>,
    risk_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
}

/// A choice in a select list.
#[derive(Debug)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "console/violations.html")]
struct ViolationsPage {
    ctx: Ctx,
    providers: Vec<ProviderOption>,
    show_provider: bool,
    mchid: String,
    kinds: Vec<Choice>,
    risk_types: Vec<Choice>,
    since: String,
    until: String,
    items: Vec<ViolationItem>,
    next: Option<String>,
    first: Option<String>,
    error: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<ViolationsQuery>,
) -> Result<Response, ConsoleError> {
    let lang = console.lang;
    let text = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let (mchid, kind, risk_type, since, until) =
        (text(&query.mchid), text(&query.kind), text(&query.risk_type), text(&query.since), text(&query.until));
    let provider_id = optional_id("provider_id", query.provider_id.as_deref());
    let cursor = query.cursor.clone().filter(|c| !c.trim().is_empty());
    let mut conn = state.store().conn().await?;
    let providers = provider_options(&mut conn, provider_id.as_ref().ok().copied().flatten()).await?;
    drop(conn);
    let kinds = [("", lang.pick("全部", "All")), ("PUNISH", ""), ("INTERCEPT", ""), ("APPEAL", "")]
        .into_iter()
        .map(|(value, label)| Choice {
            value: value.to_owned(),
            label: if value.is_empty() { label.to_owned() } else { kind_label(value, lang) },
            selected: value == kind,
        })
        .collect();
    let mut risk_types: Vec<Choice> = vec![Choice {
        value: String::new(),
        label: lang.pick("全部", "All").to_owned(),
        selected: risk_type.is_empty(),
    }];
    risk_types.extend(RISK_LABELS.iter().map(|(code, label)| Choice {
        value: (*code).to_owned(),
        label: with_code(label, code, lang),
        selected: *code == risk_type,
    }));
    let mut page = ViolationsPage {
        ctx: console.ctx("violations"),
        show_provider: providers.len() > 1,
        providers,
        mchid: mchid.clone(),
        kinds,
        risk_types,
        since: since.clone(),
        until: until.clone(),
        items: Vec::new(),
        next: None,
        first: None,
        error: None,
    };
    let provider_id = match provider_id {
        Ok(p) => p,
        Err(e) => {
            page.error = Some(e.public_message());
            return render_status(&page, StatusCode::BAD_REQUEST);
        }
    };
    let api_query = ViolationListQuery {
        provider_id,
        mchid: Some(mchid.clone()),
        event: Some(kind.clone()),
        risk_type: Some(risk_type.clone()),
        since: Some(since.clone()),
        until: Some(until.clone()),
        cursor: cursor.clone(),
        limit: None,
    };
    let (rows, next) = match list_violations(&state, api_query).await {
        Ok(found) => found,
        Err(ApiError::Invalid(e)) => {
            page.error = Some(format!("{}: {}", e.field, e.message));
            return render_status(&page, StatusCode::BAD_REQUEST);
        }
        Err(other) => return Err(refused(&console, other)),
    };
    page.items = rows.into_iter().map(|v| violation_item(v, lang)).collect();
    let provider_text = provider_id.map(|p| p.to_string());
    let params = |cursor: Option<String>| {
        link(
            "/console/violations",
            &[
                ("provider_id", provider_text.as_deref()),
                ("mchid", Some(mchid.as_str())),
                ("kind", Some(kind.as_str())),
                ("risk_type", Some(risk_type.as_str())),
                ("since", Some(since.as_str())),
                ("until", Some(until.as_str())),
                ("cursor", cursor.as_deref()),
            ],
        )
    };
    page.next = next.map(|n| params(Some(n.to_string())));
    page.first = cursor.map(|_| params(None));
    render(&page)
}

// ---------------------------------------------------------------------------------------------------------------
// One record.

/// One notification about the record.
#[derive(Debug)]
pub struct EventView {
    pub label: String,
    pub event_type: String,
    pub received_at: String,
    pub notification_id: String,
    /// The decrypted resource, indented.
    pub resource: String,
}

#[derive(Template)]
#[template(path = "console/violation.html")]
struct ViolationPage {
    ctx: Ctx,
    provider: String,
    record_id: String,
    company_name: String,
    mchid: String,
    merchant_name: Option<String>,
    merchant_link: Option<String>,
    risk_link: String,
    kind_label: String,
    kind_class: &'static str,
    risk_type: String,
    risk_label: String,
    risk_description: String,
    punish_plan: String,
    punish_time: String,
    punish_description: String,
    appeal_state: Option<String>,
    appeal_detail: String,
    appeal_updated_at: String,
    received_at: String,
    updated_at: String,
    events: Vec<EventView>,
    limitations: LimitationsView,
}

pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Path((provider_id, record_id)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let provider_id = parse_id(&provider_id)?;
    let lang = console.lang;
    let detail = match violation_detail(&state, WhichViolation::Record { provider_id, record_id: &record_id }).await {
        Ok(detail) => detail,
        Err(ApiError::NotFound(_)) => return Err(ConsoleError::NotFound),
        Err(other) => return Err(refused(&console, other)),
    };
    let v = detail.row;
    let mut conn = state.store().conn().await?;
    let provider = crate::store::providers::get(&mut conn, provider_id).await?;
    let merchant = match Mchid::parse("mchid", &v.sub_mchid) {
        Ok(mchid) => merchants::find_by_mchid(&mut conn, Some(provider_id), mchid.as_str()).await?.into_iter().next(),
        Err(_) => None,
    };
    let events = detail
        .events
        .into_iter()
        .map(|e| EventView {
            label: event_label(&e.event_type, lang),
            received_at: shanghai(e.received_at),
            resource: serde_json::from_str::<serde_json::Value>(&e.resource)
                .ok()
                .and_then(|value| serde_json::to_string_pretty(&value).ok())
                .unwrap_or(e.resource),
            event_type: e.event_type,
            notification_id: e.notification_id,
        })
        .collect();
    render(&ViolationPage {
        ctx: console.ctx("violations"),
        provider: provider.map(|p| format!("{}（{}）", p.name, p.mchid)).unwrap_or_else(|| provider_id.to_string()),
        merchant_name: merchant.as_ref().map(|m| m.name.clone()),
        merchant_link: merchant.map(|m| format!("/console/merchants/{}", m.id)),
        risk_link: risk_link(v.provider_id, &v.sub_mchid),
        kind_label: kind_label(&v.kind, lang),
        kind_class: kind_class(&v.kind),
        risk_label: risk_label(&v.risk_type, &v.risk_description),
        punish_time: v.punish_time_ms.map(shanghai).unwrap_or_else(|| v.punish_time.clone()),
        appeal_state: v.appeal_state.as_deref().map(|s| with_code(&risk_label(s, ""), s, lang)),
        appeal_detail: v.appeal_detail.clone().unwrap_or_default(),
        appeal_updated_at: v.appeal_updated_at.map(shanghai).unwrap_or_default(),
        received_at: shanghai(v.created_at),
        updated_at: shanghai(v.updated_at),
        limitations: limitations_view(detail.limitations.as_ref(), lang),
        events,
        record_id: v.record_id,
        company_name: v.company_name,
        mchid: v.sub_mchid,
        risk_type: v.risk_type,
        risk_description: v.risk_description,
        punish_plan: v.punish_plan,
        punish_description: v.punish_description,
    })
}
