//! Sub-merchants in the console: the list (search, enabled, provider; each row's risk score and complaints of the
//! last 30 days), create and edit, delete, a sub-merchant's page with its channels, and its risk page
//! (`/console/providers/{provider_id}/merchants/{mchid}/risk`, where risk alerts link).
//!
//! Contract: every change goes through the API's own actions (`web::api::merchants`), so validation, conflicts and
//! the audit log are the API's; operators and admins change, viewers read. A list page of 50 costs a fixed number
//! of queries whatever it shows: the page itself, then the figures of all its sub-merchants in grouped queries
//! (`workflow::violations::current_scores`), never one query per row. Creating is done once per form
//! (the form's `idem` key), so a double click makes one sub-merchant.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::channels::{ChannelItem, channel_items};
use super::form::ConsoleForm;
use super::page::{ConsoleError, Ctx, Flash, Lang, form_key, link, render, shanghai, yuan};
use super::session::Console;
use super::violations::{LimitationsView, ViolationItem, limitations_view, violation_item};
use crate::auth::Caller;
use crate::domain::Mchid;
use crate::domain::channel::ChannelKind;
use crate::domain::risk::{RiskFigures, risk_label};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::merchants::{self, MerchantFilter};
use crate::store::violations::{self as violation_store, ViolationFilter};
use crate::store::{Page, idempotency, providers};
use crate::web::api::merchants::{
    MerchantIn, MerchantPatch, create_merchant, delete_merchant, load_out, update_merchant,
};
use crate::web::json::Patch;
use crate::workflow::violations::current_scores;

/// Rows per list page.
pub const PAGE: i64 = 50;

/// The signed-in user as the API's actions see a caller: their name for the audit log, their role as a grant.
pub(super) fn caller(console: &Console) -> Caller {
    Caller { actor: console.actor(), grant: console.grant() }
}

/// An action's error as a page: a refusal of the role says so in the user's language; the rest is the API's.
pub(super) fn refused(console: &Console, error: ApiError) -> ConsoleError {
    match error {
        ApiError::Forbidden(denied) => ConsoleError::Forbidden(format!(
            "{} ({}: {}; {})",
            console.lang.pick("你的角色不能执行此操作", "your role may not do this"),
            console.role.as_str(),
            denied.have,
            denied.need
        )),
        other => ConsoleError::Api(other),
    }
}

/// An error the user fixes in the form they sent (shown above it), or `None` for any other.
pub(super) fn form_error(error: &ApiError) -> Option<StatusCode> {
    matches!(error, ApiError::Invalid(_) | ApiError::Conflict { .. } | ApiError::BadRequest { .. })
        .then(|| error.status())
}

/// A record id from the path; anything else names no page.
pub(super) fn parse_id(text: &str) -> Result<i64, ConsoleError> {
    text.parse::<i64>().ok().filter(|id| *id > 0).ok_or(ConsoleError::NotFound)
}

/// An optional id from a query string or form (empty: none).
pub(super) fn optional_id(field: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t.parse::<i64>().map(Some).map_err(|_| ApiError::invalid(field, format!("`{t}` is not an id"))),
    }
}

/// A page rendered with another status than 200 (a form sent back with its error).
pub(super) fn render_status(page: &impl Template, status: StatusCode) -> Result<Response, ConsoleError> {
    let mut response = render(page)?;
    *response.status_mut() = status;
    Ok(response)
}

/// A provider in a select list.
#[derive(Debug, Clone)]
pub struct ProviderOption {
    pub id: i64,
    pub label: String,
    pub selected: bool,
}

pub(super) async fn provider_options(
    conn: &mut sqlx::AnyConnection,
    selected: Option<i64>,
) -> Result<Vec<ProviderOption>, ConsoleError> {
    Ok(providers::all(conn)
        .await?
        .into_iter()
        .map(|p| ProviderOption {
            id: p.id,
            label: format!("{}（{}）", p.name, p.mchid),
            selected: Some(p.id) == selected,
        })
        .collect())
}

/// Green under half the alert score, amber up to it, red at or over it.
pub(super) fn score_class(score: i64, alert_score: i64) -> &'static str {
    if score >= alert_score {
        "failed"
    } else if score * 2 >= alert_score {
        "warn"
    } else {
        "ok"
    }
}

pub(super) fn risk_link(provider_id: i64, mchid: &str) -> String {
    crate::notify::links::merchant_risk(provider_id, mchid)
}

/// What happened to a create sent with a form key.
enum Once {
    /// Done now: where the new record is.
    Done(String),
    /// Done before (the same form sent again): where that record is.
    Before(String),
    /// The first send is still being handled.
    Running,
}

/// Run a create once per form key (`idem`): a double click or a resend creates one record. The location of what
/// was made is kept under the key; a failure frees the key so the corrected form can be sent again.
async fn once(
    state: &AppState,
    console: &Console,
    key: &str,
    action: impl AsyncFnOnce() -> Result<String, ApiError>,
) -> Result<Once, ApiError> {
    let key = key.trim();
    if key.is_empty() || key.len() > 128 {
        return action().await.map(Once::Done);
    }
    let label = console.actor().label();
    let key = format!("console-form:{key}");
    let saved = {
        let mut conn = state.store().conn().await?;
        idempotency::reserve(&mut conn, &label, &key, "console-form", state.now_ms()).await?
    };
    if let Some(saved) = saved {
        return Ok(if saved.status == 0 { Once::Running } else { Once::Before(saved.response) });
    }
    let result = action().await;
    let mut conn = state.store().conn().await?;
    match result {
        Ok(location) => {
            idempotency::finish(&mut conn, &label, &key, 303, &location).await?;
            Ok(Once::Done(location))
        }
        Err(error) => {
            idempotency::release(&mut conn, &label, &key).await?;
            Err(error)
        }
    }
}

/// Answer a create sent with a form key: to the new record with `done`, or where the first send led.
pub(super) async fn finish_once(
    state: &AppState,
    console: &Console,
    key: &str,
    done: Flash,
    action: impl AsyncFnOnce() -> Result<String, ApiError>,
) -> Result<Result<Response, ApiError>, ConsoleError> {
    match once(state, console, key, action).await {
        Ok(Once::Done(location)) => Ok(Ok(console.redirect(state, &location, done).await?)),
        Ok(Once::Before(location)) => {
            let flash = Flash::ok(
                console.lang.pick("这个表单已经提交过，未重复创建", "This form was sent before: nothing made twice"),
            );
            Ok(Ok(console.redirect(state, &location, flash).await?))
        }
        Ok(Once::Running) => {
            let flash = Flash::error(
                console.lang.pick("这个表单正在处理中，请稍候刷新", "This form is still being handled; reload shortly"),
            );
            Ok(Ok(console.redirect(state, "/console/merchants", flash).await?))
        }
        Err(error) => Ok(Err(error)),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The list.

#[derive(Debug, Default, Deserialize)]
pub struct MerchantsQuery {
    q: Option<String>,
    enabled: Option<String>,
    provider_id: Option<String>,
    cursor: Option<String>,
}

/// One row of the list.
#[derive(Debug)]
pub struct MerchantItem {
    pub link: String,
    pub name: String,
    pub mchid: String,
    pub provider: String,
    pub enabled: bool,
    pub auto_refund: bool,
    pub score: i64,
    pub score_class: &'static str,
    pub complaints_30d: i64,
    pub risk_link: String,
}

#[derive(Template)]
#[template(path = "console/merchants.html")]
struct MerchantsPage {
    ctx: Ctx,
    q: String,
    enabled: String,
    providers: Vec<ProviderOption>,
    show_provider: bool,
    items: Vec<MerchantItem>,
    next: Option<String>,
    first: Option<String>,
    error: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<MerchantsQuery>,
) -> Result<Response, ConsoleError> {
    let mut conn = state.store().conn().await?;
    let q = query.q.clone().unwrap_or_default();
    let enabled_text = query.enabled.clone().unwrap_or_default();
    let provider_id = optional_id("provider_id", query.provider_id.as_deref());
    let cursor = optional_id("cursor", query.cursor.as_deref());
    let enabled = match enabled_text.as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    let providers = provider_options(&mut conn, provider_id.as_ref().ok().copied().flatten()).await?;
    let names: HashMap<i64, String> = providers.iter().map(|p| (p.id, p.label.clone())).collect();
    let mut page = MerchantsPage {
        ctx: console.ctx("merchants"),
        q: q.clone(),
        enabled: enabled_text.clone(),
        show_provider: providers.len() > 1,
        providers,
        items: Vec::new(),
        next: None,
        first: None,
        error: None,
    };
    let (provider_id, cursor) = match (provider_id, cursor) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(e), _) | (_, Err(e)) => {
            page.error = Some(e.public_message());
            return render_status(&page, StatusCode::BAD_REQUEST);
        }
    };
    let filter =
        MerchantFilter { provider_id, mchid: None, enabled, search: Some(q.clone()).filter(|q| !q.trim().is_empty()) };
    let rows = merchants::list_newest(&mut conn, &filter, cursor, PAGE + 1).await?;
    let (rows, next) = Page { after_id: 0, limit: PAGE }.finish(rows, |m| m.id);
    let keys: Vec<(i64, String)> = rows.iter().map(|m| (m.provider_id, m.mchid.clone())).collect();
    let scores = current_scores(&mut conn, &keys, state.now_ms()).await?;
    let alert_score = state.config().risk.alert_score;
    page.items = rows
        .into_iter()
        .map(|m| {
            let current = scores.get(&(m.provider_id, m.mchid.clone())).cloned().unwrap_or_default();
            MerchantItem {
                link: format!("/console/merchants/{}", m.id),
                risk_link: risk_link(m.provider_id, &m.mchid),
                provider: names.get(&m.provider_id).cloned().unwrap_or_else(|| m.provider_id.to_string()),
                name: m.name,
                mchid: m.mchid,
                enabled: m.enabled,
                auto_refund: m.auto_refund,
                score: current.score,
                score_class: score_class(current.score, alert_score),
                complaints_30d: current.last_30_days.complaints,
            }
        })
        .collect();
    let provider_text = provider_id.map(|p| p.to_string());
    let params = |cursor: Option<String>| {
        link(
            "/console/merchants",
            &[
                ("q", Some(q.as_str())),
                ("enabled", Some(enabled_text.as_str())),
                ("provider_id", provider_text.as_deref()),
                ("cursor", cursor.as_deref()),
            ],
        )
    };
    page.next = next.map(|n| params(Some(n.to_string())));
    page.first = cursor.map(|_| params(None));
    render(&page)
}

// ---------------------------------------------------------------------------------------------------------------
// Create and edit.

#[derive(Template)]
#[template(path = "console/merchant_form.html")]
struct MerchantFormPage {
    ctx: Ctx,
    /// `Some` when editing.
    id: Option<i64>,
    action: String,
    cancel: String,
    providers: Vec<ProviderOption>,
    /// The provider of the sub-merchant being edited.
    provider_label: String,
    name: String,
    mchid: String,
    reply_text: String,
    auto_refund: bool,
    enabled: bool,
    /// The provider's default reply (what an empty reply text means), when known.
    default_reply: String,
    error: Option<String>,
    idem: String,
}

/// A sub-merchant's form as posted.
#[derive(Debug, Default, Deserialize)]
pub struct MerchantForm {
    #[serde(default)]
    provider_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    mchid: String,
    #[serde(default)]
    reply_text: String,
    auto_refund: Option<String>,
    enabled: Option<String>,
    #[serde(default)]
    idem: String,
}

pub async fn new_form(State(state): State<AppState>, console: Console) -> Result<Response, ConsoleError> {
    let mut conn = state.store().conn().await?;
    let providers = provider_options(&mut conn, None).await?;
    let only = (providers.len() == 1).then(|| providers[0].id);
    let default_reply = match only {
        Some(id) => providers::get(&mut conn, id).await?.map(|p| p.default_reply).unwrap_or_default(),
        None => String::new(),
    };
    let providers = provider_options(&mut conn, only).await?;
    render(&MerchantFormPage {
        ctx: console.ctx("merchants"),
        id: None,
        action: "/console/merchants".into(),
        cancel: "/console/merchants".into(),
        providers,
        provider_label: String::new(),
        name: String::new(),
        mchid: String::new(),
        reply_text: String::new(),
        auto_refund: false,
        enabled: true,
        default_reply,
        error: None,
        idem: form_key()?,
    })
}

pub async fn create(
    State(state): State<AppState>,
    console: Console,
    ConsoleForm(form): ConsoleForm<MerchantForm>,
) -> Result<Response, ConsoleError> {
    let provider_id = form.provider_id.trim().parse::<i64>().ok();
    let outcome = match provider_id {
        None => Err(ApiError::invalid("provider_id", console.lang.pick("请选择服务商", "choose the provider"))),
        Some(provider_id) => {
            let input = MerchantIn {
                provider_id,
                mchid: form.mchid.clone(),
                name: form.name.clone(),
                reply_text: Some(form.reply_text.clone()),
                auto_refund: form.auto_refund.is_some(),
                enabled: form.enabled.is_some(),
            };
            let done = Flash::ok(console.lang.pick("子商户已创建", "Sub-merchant created"));
            let actor = console.actor();
            finish_once(&state, &console, &form.idem, done, async || {
                let id = create_merchant(&state, &actor, input).await?;
                Ok(format!("/console/merchants/{id}"))
            })
            .await?
        }
    };
    match outcome {
        Ok(response) => Ok(response),
        Err(error) => match form_error(&error) {
            Some(status) => {
                let mut conn = state.store().conn().await?;
                let page = MerchantFormPage {
                    ctx: console.ctx("merchants"),
                    id: None,
                    action: "/console/merchants".into(),
                    cancel: "/console/merchants".into(),
                    providers: provider_options(&mut conn, provider_id).await?,
                    provider_label: String::new(),
                    name: form.name,
                    mchid: form.mchid,
                    reply_text: form.reply_text,
                    auto_refund: form.auto_refund.is_some(),
                    enabled: form.enabled.is_some(),
                    default_reply: String::new(),
                    error: Some(error.public_message()),
                    idem: form_key()?,
                };
                render_status(&page, status)
            }
            None => Err(refused(&console, error)),
        },
    }
}

pub async fn edit_form(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = parse_id(&id)?;
    let mut conn = state.store().conn().await?;
    let m = merchants::get(&mut conn, id).await?.ok_or(ConsoleError::NotFound)?;
    let provider = providers::get(&mut conn, m.provider_id).await?;
    render(&MerchantFormPage {
        ctx: console.ctx("merchants"),
        id: Some(id),
        action: format!("/console/merchants/{id}"),
        cancel: format!("/console/merchants/{id}"),
        providers: Vec::new(),
        provider_label: provider.as_ref().map(|p| format!("{}（{}）", p.name, p.mchid)).unwrap_or_default(),
        name: m.name,
        mchid: m.mchid,
        reply_text: m.reply_text.unwrap_or_default(),
        auto_refund: m.auto_refund,
        enabled: m.enabled,
        default_reply: provider.map(|p| p.default_reply).unwrap_or_default(),
        error: None,
        idem: String::new(),
    })
}

pub async fn update(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    ConsoleForm(form): ConsoleForm<MerchantForm>,
) -> Result<Response, ConsoleError> {
    let id = parse_id(&id)?;
    let reply_text = form.reply_text.trim();
    let patch = MerchantPatch {
        provider_id: Patch::Missing,
        mchid: Patch::Value(form.mchid.clone()),
        name: Patch::Value(form.name.clone()),
        reply_text: if reply_text.is_empty() { Patch::Null } else { Patch::Value(form.reply_text.clone()) },
        auto_refund: Patch::Value(form.auto_refund.is_some()),
        enabled: Patch::Value(form.enabled.is_some()),
    };
    match update_merchant(&state, &console.actor(), id, patch).await {
        Ok(()) => {
            let flash = Flash::ok(console.lang.pick("已保存", "Saved"));
            console.redirect(&state, &format!("/console/merchants/{id}"), flash).await
        }
        Err(error) => match form_error(&error) {
            Some(status) => {
                let mut conn = state.store().conn().await?;
                let m = merchants::get(&mut conn, id).await?.ok_or(ConsoleError::NotFound)?;
                let provider = providers::get(&mut conn, m.provider_id).await?;
                let page = MerchantFormPage {
                    ctx: console.ctx("merchants"),
                    id: Some(id),
                    action: format!("/console/merchants/{id}"),
                    cancel: format!("/console/merchants/{id}"),
                    providers: Vec::new(),
                    provider_label: provider.as_ref().map(|p| format!("{}（{}）", p.name, p.mchid)).unwrap_or_default(),
                    name: form.name,
                    mchid: form.mchid,
                    reply_text: form.reply_text,
                    auto_refund: form.auto_refund.is_some(),
                    enabled: form.enabled.is_some(),
                    default_reply: provider.map(|p| p.default_reply).unwrap_or_default(),
                    error: Some(error.public_message()),
                    idem: String::new(),
                };
                render_status(&page, status)
            }
            None => Err(refused(&console, error)),
        },
    }
}

pub async fn delete(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    ConsoleForm(_): ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let id = parse_id(&id)?;
    delete_merchant(&state, &console.actor(), id).await.map_err(|e| refused(&console, e))?;
    let flash = Flash::ok(console.lang.pick("子商户及其通知渠道已删除", "Sub-merchant and its channels deleted"));
    console.redirect(&state, "/console/merchants", flash).await
}

// ---------------------------------------------------------------------------------------------------------------
// One sub-merchant.

#[derive(Template)]
#[template(path = "console/merchant.html")]
struct MerchantPage {
    ctx: Ctx,
    id: i64,
    name: String,
    mchid: String,
    provider: String,
    enabled: bool,
    auto_refund: bool,
    /// The sub-merchant's own reply text, if it has one.
    reply_text: Option<String>,
    effective_reply: String,
    created_at: String,
    updated_at: String,
    risk_link: String,
    score: i64,
    score_class: &'static str,
    complaints_30d: i64,
    channels: Vec<ChannelItem>,
    /// The channel table's provider column (not on a sub-merchant's page).
    show_owner: bool,
    kinds: Vec<KindLink>,
}

/// A link that starts a new channel of one kind.
#[derive(Debug)]
pub struct KindLink {
    pub label: &'static str,
    pub href: String,
}

pub(super) fn kind_links(base: &str, lang: Lang) -> Vec<KindLink> {
    ChannelKind::ALL
        .into_iter()
        .map(|kind| KindLink {
            label: super::channel_form::kind_label(kind, lang),
            href: format!("{base}{}kind={}", if base.contains('?') { "&" } else { "?" }, kind.as_str()),
        })
        .collect()
}

pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = parse_id(&id)?;
    let out = match load_out(&state, id).await {
        Ok(out) => out,
        Err(ApiError::NotFound(_)) => return Err(ConsoleError::NotFound),
        Err(other) => return Err(other.into()),
    };
    let mut conn = state.store().conn().await?;
    let provider = providers::get(&mut conn, out.provider_id).await?;
    let key = (out.provider_id, out.mchid.clone());
    let current =
        current_scores(&mut conn, std::slice::from_ref(&key), state.now_ms()).await?.remove(&key).unwrap_or_default();
    let channels = channel_items(&state, &mut conn, &console, Some(id), None).await?;
    let (created_at, updated_at) = match merchants::get(&mut conn, id).await? {
        Some(row) => (shanghai(row.created_at), shanghai(row.updated_at)),
        None => return Err(ConsoleError::NotFound),
    };
    let alert_score = state.config().risk.alert_score;
    render(&MerchantPage {
        ctx: console.ctx("merchants"),
        id,
        risk_link: risk_link(out.provider_id, &out.mchid),
        provider: provider.map(|p| format!("{}（{}）", p.name, p.mchid)).unwrap_or_default(),
        name: out.name,
        mchid: out.mchid,
        enabled: out.enabled,
        auto_refund: out.auto_refund,
        reply_text: out.reply_text,
        effective_reply: out.effective_reply_text,
        created_at,
        updated_at,
        score: current.score,
        score_class: score_class(current.score, alert_score),
        complaints_30d: current.last_30_days.complaints,
        channels,
        show_owner: false,
        kinds: kind_links(&format!("/console/merchants/{id}/channels/new"), console.lang),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Risk.

/// One figure over the three windows.
#[derive(Debug)]
pub struct FigureRow {
    pub label: &'static str,
    pub d7: String,
    pub d30: String,
    pub d90: String,
}

/// Violations of one risk type in the last 90 days.
#[derive(Debug)]
pub struct TypeCount {
    pub label: String,
    pub code: String,
    pub count: i64,
}

#[derive(Template)]
#[template(path = "console/merchant_risk.html")]
struct RiskPage {
    ctx: Ctx,
    provider: String,
    mchid: String,
    name: Option<String>,
    merchant_link: Option<String>,
    complaints_link: String,
    violations_link: String,
    score: i64,
    score_class: &'static str,
    alert_score: i64,
    complaints_30d: i64,
    punishments_30d: i64,
    limited: bool,
    figures: Vec<FigureRow>,
    by_type: Vec<TypeCount>,
    limitations: LimitationsView,
    items: Vec<ViolationItem>,
}

fn figure_rows(d7: &RiskFigures, d30: &RiskFigures, d90: &RiskFigures, lang: Lang) -> Vec<FigureRow> {
    let row =
        |label: &'static str, f: fn(&RiskFigures) -> String| FigureRow { label, d7: f(d7), d30: f(d30), d90: f(d90) };
    vec![
        row(lang.pick("投诉", "Complaints"), |f| f.complaints.to_string()),
        row(lang.pick("其中重复投诉", "of which repeated"), |f| f.repeat_complaints.to_string()),
        row(lang.pick("其中平台介入", "of which WeChat assisted"), |f| f.platform_assisted.to_string()),
        row(lang.pick("超时未处理", "Missed deadlines"), |f| f.sla_misses.to_string()),
        row(lang.pick("退款笔数", "Refunds"), |f| f.refunds.to_string()),
        row(lang.pick("退款金额", "Refunded"), |f| yuan(f.refunded_fen)),
        row(lang.pick("处罚", "Punishments"), |f| f.punishments.to_string()),
        row(lang.pick("拦截", "Interceptions"), |f| f.interceptions.to_string()),
        row(lang.pick("申诉", "Appeals"), |f| f.appeals.to_string()),
    ]
}

pub async fn risk(
    State(state): State<AppState>,
    console: Console,
    Path((provider_id, mchid)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let provider_id = parse_id(&provider_id)?;
    let mchid = Mchid::parse("mchid", &mchid).map_err(|_| ConsoleError::NotFound)?;
    let mchid = mchid.as_str().to_owned();
    let mut conn = state.store().conn().await?;
    let provider = providers::get(&mut conn, provider_id).await?.ok_or(ConsoleError::NotFound)?;
    let registered = merchants::find_by_mchid(&mut conn, Some(provider_id), &mchid).await?.into_iter().next();
    let out = crate::web::api::risk::risk_of(
        &mut conn,
        &state,
        provider_id,
        &mchid,
        registered.as_ref().map(|m| m.name.clone()),
    )
    .await?;
    let limitations = violation_store::limitations(&mut conn, provider_id, &mchid).await?;
    let filter = ViolationFilter {
        provider_id: Some(provider_id),
        sub_mchid: Some(mchid.clone()),
        ..ViolationFilter::default()
    };
    let recent = violation_store::list(&mut conn, &filter, None, 10).await?;
    let lang = console.lang;
    let mut by_type: Vec<TypeCount> = out
        .violations_by_type
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(code, n)| TypeCount {
                    label: risk_label(code, ""),
                    code: code.clone(),
                    count: n.as_i64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    by_type.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
    let provider_text = provider_id.to_string();
    render(&RiskPage {
        ctx: console.ctx("merchants"),
        provider: format!("{}（{}）", provider.name, provider.mchid),
        name: out.name.clone(),
        merchant_link: registered.map(|m| format!("/console/merchants/{}", m.id)),
        complaints_link: link("/console/complaints", &[("provider_id", Some(&provider_text)), ("mchid", Some(&mchid))]),
        violations_link: link("/console/violations", &[("provider_id", Some(&provider_text)), ("mchid", Some(&mchid))]),
        score: out.score,
        score_class: score_class(out.score, out.alert_score),
        alert_score: out.alert_score,
        complaints_30d: out.last_30_days.complaints,
        punishments_30d: out.last_30_days.punishments,
        limited: !out.limited_functions.is_empty(),
        figures: figure_rows(&out.last_7_days, &out.last_30_days, &out.last_90_days, lang),
        by_type,
        limitations: limitations_view(limitations.as_ref(), lang),
        items: recent.into_iter().map(|v| violation_item(v, lang)).collect(),
        mchid,
    })
}
