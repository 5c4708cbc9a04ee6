//! Notification channels in the console: the providers' own channels (`/console/channels`, admin changes them) and
//! each sub-merchant's (on its page, operators change them), one form per kind, enable/disable, remove, and
//! test-send showing the service's answer.
//!
//! Contract: every action is the API's own (`web::api::channels`): the same validation, sealing, destination
//! rules, audit log, and the same permission — a route here declares `Operator`, and the action asks the user's
//! grant for `admin` when the channel is a provider's own (`channels::require_for_owner`, one `Grant::permits`).
//! Credentials are never put in a page: a stored one shows as "已设置 / set", and an empty field keeps it. When a
//! change moves a destination without its credential, the API clears the credential (`secrets_cleared`) and the
//! page says so as a warning, naming what to type again.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::channel_form::{self, Fields, Input, Spec, kind_label};
use super::form::ConsoleForm;
use super::merchants::{
    KindLink, ProviderOption, caller, finish_once, form_error, kind_links, optional_id, parse_id, provider_options,
    refused, render_status,
};
use super::page::{ConsoleError, Ctx, Flash, Lang, form_key, link, render};
use super::session::Console;
use crate::domain::channel::{ChannelKind, email_preset};
use crate::error::ApiError;
use crate::notify::TestSendOut;
use crate::state::AppState;
use crate::store::channels::{self as store, ChannelFilter};
use crate::store::{Page, merchants, providers};
use crate::web::api::channels::{
    ChannelIn, ChannelOut, ChannelPatch, create_channel, delete_channel, load_out, require_for_owner,
    test_channel_audited, to_out, update_channel,
};
use crate::web::json::Patch;

/// How a credential stands.
#[derive(Debug)]
pub struct SecretState {
    pub label: &'static str,
    /// `set`, `unset` or `cleared` (dropped when its destination changed; must be typed again).
    pub state: &'static str,
}

/// A channel in a list.
#[derive(Debug)]
pub struct ChannelItem {
    pub id: i64,
    pub name: String,
    pub kind_label: &'static str,
    pub enabled: bool,
    pub destination: String,
    pub owner: String,
    pub secrets: Vec<SecretState>,
    pub cleared: bool,
    /// Whether the signed-in user may change it (test-sending needs only an operator).
    pub can_change: bool,
}

fn secret_states(kind: ChannelKind, out: &ChannelOut, lang: Lang) -> Vec<SecretState> {
    channel_form::specs(kind)
        .iter()
        .filter(|s| s.input == Input::Secret)
        .map(|s| SecretState {
            label: s.label(lang),
            state: if out.secrets_cleared.iter().any(|k| k == s.key) {
                "cleared"
            } else if out.secrets_set.iter().any(|k| k == s.key) {
                "set"
            } else {
                "unset"
            },
        })
        .collect()
}

fn item(out: &ChannelOut, console: &Console, owner: String) -> ChannelItem {
    let lang = console.lang;
    let settings = out.settings.as_object().cloned().unwrap_or_default();
    let secrets = secret_states(out.kind, out, lang);
    ChannelItem {
        id: out.id,
        name: out.name.clone(),
        kind_label: kind_label(out.kind, lang),
        enabled: out.enabled,
        destination: channel_form::destination(out.kind, &settings, lang),
        owner,
        cleared: !out.secrets_cleared.is_empty(),
        secrets,
        can_change: require_for_owner(&console.grant(), out.merchant_id).is_ok(),
    }
}

/// The channels of a sub-merchant (`merchant_id`) or the providers' own (`provider_only`, of `provider_id` when
/// given), as list rows.
pub(super) async fn channel_items(
    state: &AppState,
    conn: &mut sqlx::AnyConnection,
    console: &Console,
    merchant_id: Option<i64>,
    provider_id: Option<i64>,
) -> Result<Vec<ChannelItem>, ConsoleError> {
    let filter = ChannelFilter { provider_id, merchant_id, provider_only: merchant_id.is_none(), kind: None };
    let rows = store::list(conn, &filter, Page { after_id: 0, limit: Page::MAX_LIMIT }).await?;
    let names: HashMap<i64, String> =
        providers::all(conn).await?.into_iter().map(|p| (p.id, format!("{}（{}）", p.name, p.mchid))).collect();
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let provider = row.provider_id;
        let out = to_out(conn, state, row).await?;
        items.push(item(&out, console, names.get(&provider).cloned().unwrap_or_default()));
    }
    Ok(items)
}

/// Where a channel is listed.
fn owner_page(merchant_id: Option<i64>) -> String {
    match merchant_id {
        Some(id) => format!("/console/merchants/{id}"),
        None => "/console/channels".to_owned(),
    }
}

async fn channel(state: &AppState, id: i64) -> Result<ChannelOut, ConsoleError> {
    match load_out(state, id).await {
        Ok(out) => Ok(out),
        Err(ApiError::NotFound(_)) => Err(ConsoleError::NotFound),
        Err(other) => Err(other.into()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The providers' own channels.

#[derive(Debug, Default, Deserialize)]
pub struct ChannelsQuery {
    provider_id: Option<String>,
}

#[derive(Template)]
#[template(path = "console/channels.html")]
struct ChannelsPage {
    ctx: Ctx,
    providers: Vec<ProviderOption>,
    show_provider: bool,
    channels: Vec<ChannelItem>,
    show_owner: bool,
    kinds: Vec<KindLink>,
    error: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<ChannelsQuery>,
) -> Result<Response, ConsoleError> {
    let provider_id = optional_id("provider_id", query.provider_id.as_deref());
    let mut conn = state.store().conn().await?;
    let selected = provider_id.as_ref().ok().copied().flatten();
    let providers = provider_options(&mut conn, selected).await?;
    let new_base = link("/console/channels/new", &[("provider_id", selected.map(|p| p.to_string()).as_deref())]);
    let mut page = ChannelsPage {
        ctx: console.ctx("channels"),
        show_provider: providers.len() > 1,
        show_owner: providers.len() > 1,
        providers,
        channels: Vec::new(),
        kinds: kind_links(&new_base, console.lang),
        error: None,
    };
    match provider_id {
        Ok(provider_id) => {
            page.channels = channel_items(&state, &mut conn, &console, None, provider_id).await?;
            render(&page)
        }
        Err(e) => {
            page.error = Some(e.public_message());
            render_status(&page, StatusCode::BAD_REQUEST)
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The form.

/// A choice of a select field.
#[derive(Debug)]
pub struct OptionView {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
    /// What choosing it fills in (an email preset's host and port), for the page's script.
    pub host: String,
    pub port: String,
}

/// One field of a channel form, ready to show.
#[derive(Debug)]
pub struct FieldView {
    pub name: String,
    pub clear_name: String,
    pub label: &'static str,
    pub hint: &'static str,
    pub placeholder: &'static str,
    /// `text`, `number`, `secret`, `lines`, `pairs`, `check`, `select` or `code`.
    pub input: &'static str,
    pub required: bool,
    pub value: String,
    pub checked: bool,
    pub options: Vec<OptionView>,
    /// For a credential: `set`, `unset` or `cleared`.
    pub secret: &'static str,
    /// A stored optional credential can be removed with a box.
    pub can_clear: bool,
}

fn field_views(kind: ChannelKind, values: &Fields, secrets: &[SecretState], lang: Lang) -> Vec<FieldView> {
    let mut secret_states = secrets.iter();
    channel_form::specs(kind)
        .iter()
        .map(|spec: &Spec| {
            let value = values.get(&format!("s.{}", spec.key)).cloned().unwrap_or_default();
            let secret =
                if spec.input == Input::Secret { secret_states.next().map_or("unset", |s| s.state) } else { "" };
            let (input, options) = match spec.input {
                Input::Text => ("text", Vec::new()),
                Input::Number => ("number", Vec::new()),
                Input::Secret => ("secret", Vec::new()),
                Input::Lines => ("lines", Vec::new()),
                Input::Pairs => ("pairs", Vec::new()),
                Input::Check => ("check", Vec::new()),
                Input::Code => ("code", Vec::new()),
                Input::Select(choices) => (
                    "select",
                    choices
                        .iter()
                        .map(|(v, zh, en)| {
                            let fills = if spec.key == "preset" { email_preset(v) } else { None };
                            OptionView {
                                value: v,
                                label: lang.pick(zh, en),
                                selected: *v == value,
                                host: fills.map(|(h, _)| h.to_owned()).unwrap_or_default(),
                                port: fills.map(|(_, p)| p.to_string()).unwrap_or_default(),
                            }
                        })
                        .collect(),
                ),
            };
            FieldView {
                name: format!("s.{}", spec.key),
                clear_name: format!("clear.{}", spec.key),
                label: spec.label(lang),
                hint: lang.pick(spec.hint_zh, spec.hint_en),
                placeholder: spec.placeholder,
                input,
                required: spec.required && (spec.input != Input::Secret || secret == "unset"),
                checked: !value.is_empty() && spec.input == Input::Check,
                value,
                options,
                secret,
                can_clear: spec.input == Input::Secret && !spec.required && secret == "set",
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/channel_form.html")]
struct ChannelFormPage {
    ctx: Ctx,
    title: String,
    owner: String,
    action: String,
    back: String,
    /// Empty until a kind is chosen: the page then offers the kinds.
    kind: &'static str,
    kind_label: &'static str,
    kinds: Vec<KindLink>,
    /// A new provider channel chooses its provider.
    providers: Vec<ProviderOption>,
    name: String,
    enabled: bool,
    fields: Vec<FieldView>,
    editing: bool,
    /// Credentials to type again (cleared by an earlier change of destination).
    cleared: Vec<&'static str>,
    error: Option<String>,
    idem: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct NewQuery {
    kind: Option<String>,
    provider_id: Option<String>,
}

/// Who a new channel is for.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Provider(Option<i64>),
    Merchant(i64),
}

struct FormState {
    kind: Option<ChannelKind>,
    name: String,
    enabled: bool,
    values: Fields,
    error: Option<String>,
}

async fn new_page(
    state: &AppState,
    console: &Console,
    owner: Owner,
    form: FormState,
) -> Result<ChannelFormPage, ConsoleError> {
    let lang = console.lang;
    let mut conn = state.store().conn().await?;
    let (section, owner_label, action, back, kinds_base, providers) = match owner {
        Owner::Merchant(id) => {
            let m = merchants::get(&mut conn, id).await?.ok_or(ConsoleError::NotFound)?;
            (
                "merchants",
                format!("{}（{}）", m.name, m.mchid),
                format!("/console/merchants/{id}/channels"),
                format!("/console/merchants/{id}"),
                format!("/console/merchants/{id}/channels/new"),
                Vec::new(),
            )
        }
        Owner::Provider(provider_id) => {
            let providers = provider_options(&mut conn, provider_id).await?;
            let base = link("/console/channels/new", &[("provider_id", provider_id.map(|p| p.to_string()).as_deref())]);
            (
                "channels",
                lang.pick("服务商自己的通知渠道", "The provider's own channel").to_owned(),
                "/console/channels".to_owned(),
                "/console/channels".to_owned(),
                base,
                providers,
            )
        }
    };
    let kind_text = form.kind.map(|k| k.as_str()).unwrap_or_default();
    Ok(ChannelFormPage {
        ctx: console.ctx(section),
        title: match form.kind {
            Some(kind) => format!(
                "{}{}{}",
                lang.pick("添加通知渠道", "New channel"),
                lang.pick("：", ": "),
                kind_label(kind, lang)
            ),
            None => lang.pick("添加通知渠道", "New channel").to_owned(),
        },
        owner: owner_label,
        action,
        back,
        kind: kind_text,
        kind_label: form.kind.map(|k| kind_label(k, lang)).unwrap_or_default(),
        kinds: kind_links(&kinds_base, lang),
        providers,
        name: form.name,
        enabled: form.enabled,
        fields: form.kind.map(|k| field_views(k, &form.values, &[], lang)).unwrap_or_default(),
        editing: false,
        cleared: Vec::new(),
        error: form.error,
        idem: form_key()?,
    })
}

fn parse_kind(text: Option<&str>) -> Result<Option<ChannelKind>, ConsoleError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => ChannelKind::parse(t)
            .map(Some)
            .ok_or_else(|| ConsoleError::BadRequest(format!("`{t}` is not a channel kind"))),
    }
}

fn fresh(kind: Option<ChannelKind>) -> FormState {
    FormState {
        kind,
        name: String::new(),
        enabled: true,
        values: kind.map(channel_form::defaults).unwrap_or_default(),
        error: None,
    }
}

pub async fn new_provider_channel(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<NewQuery>,
) -> Result<Response, ConsoleError> {
    let kind = parse_kind(query.kind.as_deref())?;
    let provider_id = optional_id("provider_id", query.provider_id.as_deref()).map_err(|e| refused(&console, e))?;
    render(&new_page(&state, &console, Owner::Provider(provider_id), fresh(kind)).await?)
}

pub async fn new_merchant_channel(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Query(query): Query<NewQuery>,
) -> Result<Response, ConsoleError> {
    let id = parse_id(&id)?;
    let kind = parse_kind(query.kind.as_deref())?;
    render(&new_page(&state, &console, Owner::Merchant(id), fresh(kind)).await?)
}

/// The form's fields, each by its last value.
fn fields_of(pairs: Vec<(String, String)>) -> Fields {
    pairs.into_iter().collect()
}

/// The form's values to show again after an error: never a credential.
fn shown_again(kind: ChannelKind, fields: &Fields) -> Fields {
    let secret = |name: &str| {
        channel_form::specs(kind).iter().any(|s| s.input == Input::Secret && name == format!("s.{}", s.key))
    };
    fields.iter().filter(|(k, _)| k.starts_with("s.") && !secret(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// An API error about a settings key, told with the field's label.
fn explain(kind: ChannelKind, error: &ApiError, lang: Lang) -> String {
    match error {
        ApiError::Invalid(e) => {
            let key = e.field.strip_prefix("settings.").unwrap_or(&e.field);
            let root = key.split(['.', '[']).next().unwrap_or(key);
            let label = match root {
                "name" => lang.pick("名称", "Name").to_owned(),
                "channel" => lang.pick("渠道", "Channel").to_owned(),
                _ => channel_form::key_label(kind, root, lang),
            };
            match lang {
                Lang::Zh => format!("{label}（{}）：{}", e.field, e.message),
                Lang::En => format!("{label} ({}): {}", e.field, e.message),
            }
        }
        other => other.public_message(),
    }
}

async fn create_for(
    state: AppState,
    console: Console,
    owner: Owner,
    pairs: Vec<(String, String)>,
) -> Result<Response, ConsoleError> {
    let lang = console.lang;
    let fields = fields_of(pairs);
    let kind = parse_kind(fields.get("kind").map(String::as_str))?
        .ok_or_else(|| ConsoleError::BadRequest("choose a channel kind".into()))?;
    let name = fields.get("name").cloned().unwrap_or_default();
    let enabled = fields.contains_key("enabled");
    let owner = match owner {
        Owner::Provider(_) => {
            Owner::Provider(optional_id("provider_id", fields.get("provider_id").map(String::as_str)).ok().flatten())
        }
        merchant => merchant,
    };
    let attempt = async {
        let settings = channel_form::settings_to_create(kind, &fields)?;
        let (provider_id, merchant_id) = match owner {
            Owner::Merchant(id) => (None, Some(id)),
            Owner::Provider(Some(id)) => (Some(id), None),
            Owner::Provider(None) => {
                return Err(ApiError::invalid("provider_id", lang.pick("请选择服务商", "choose the provider")));
            }
        };
        let input = ChannelIn {
            provider_id,
            merchant_id,
            merchant_mchid: None,
            kind,
            name: Some(name.clone()).filter(|n| !n.trim().is_empty()),
            enabled,
            settings,
        };
        let done = Flash::ok(lang.pick(
            "通知渠道已添加。可以点击“测试发送”确认能收到。",
            "Channel added. Use “Test send” to check it arrives.",
        ));
        let caller = caller(&console);
        let key = fields.get("idem").cloned().unwrap_or_default();
        let back = owner_page(merchant_id);
        finish_once(&state, &console, &key, done, async || {
            create_channel(&state, &caller, input).await?;
            Ok(back)
        })
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?
    };
    match attempt.await {
        Ok(response) => Ok(response),
        Err(error) => match form_error(&error) {
            Some(status) => {
                let form = FormState {
                    kind: Some(kind),
                    name,
                    enabled,
                    values: shown_again(kind, &fields),
                    error: Some(explain(kind, &error, lang)),
                };
                render_status(&new_page(&state, &console, owner, form).await?, status)
            }
            None => Err(refused(&console, error)),
        },
    }
}

pub async fn create_provider_channel(
    State(state): State<AppState>,
    console: Console,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    create_for(state, console, Owner::Provider(None), pairs).await
}

pub async fn create_merchant_channel(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let id = parse_id(&id)?;
    create_for(state, console, Owner::Merchant(id), pairs).await
}

async fn edit_page(
    state: &AppState,
    console: &Console,
    out: &ChannelOut,
    values: Option<Fields>,
    error: Option<String>,
) -> Result<ChannelFormPage, ConsoleError> {
    let lang = console.lang;
    let mut conn = state.store().conn().await?;
    let owner = match out.merchant_id {
        Some(id) => {
            merchants::get(&mut conn, id).await?.map(|m| format!("{}（{}）", m.name, m.mchid)).unwrap_or_default()
        }
        None => match providers::get(&mut conn, out.provider_id).await? {
            Some(p) => format!("{} · {}（{}）", lang.pick("服务商", "Provider"), p.name, p.mchid),
            None => String::new(),
        },
    };
    let stored = out.settings.as_object().cloned().unwrap_or_default();
    let values = values.unwrap_or_else(|| channel_form::fields_of(out.kind, &stored));
    let secrets = secret_states(out.kind, out, lang);
    let cleared = channel_form::specs(out.kind)
        .iter()
        .filter(|s| out.secrets_cleared.iter().any(|k| k == s.key))
        .map(|s| s.label(lang))
        .collect();
    Ok(ChannelFormPage {
        ctx: console.ctx(if out.merchant_id.is_some() { "merchants" } else { "channels" }),
        title: format!("{}{}{}", lang.pick("编辑通知渠道", "Edit channel"), lang.pick("：", ": "), out.name),
        owner,
        action: format!("/console/channels/{}", out.id),
        back: owner_page(out.merchant_id),
        kind: out.kind.as_str(),
        kind_label: kind_label(out.kind, lang),
        kinds: Vec::new(),
        providers: Vec::new(),
        name: out.name.clone(),
        enabled: out.enabled,
        fields: field_views(out.kind, &values, &secrets, lang),
        editing: true,
        cleared,
        error,
        idem: String::new(),
    })
}

pub async fn edit_form(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let out = channel(&state, parse_id(&id)?).await?;
    require_for_owner(&console.grant(), out.merchant_id).map_err(|e| refused(&console, e))?;
    render(&edit_page(&state, &console, &out, None, None).await?)
}

pub async fn update(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let id = parse_id(&id)?;
    let lang = console.lang;
    let current = channel(&state, id).await?;
    // The action checks this too; checked first here so a refused user is refused whatever the form holds.
    require_for_owner(&console.grant(), current.merchant_id).map_err(|e| refused(&console, e))?;
    let fields = fields_of(pairs);
    let stored: Map<String, Value> = current.settings.as_object().cloned().unwrap_or_default();
    let outcome = async {
        let settings = channel_form::settings_patch(current.kind, &fields, &stored)?;
        let name = fields.get("name").map(|n| n.trim().to_owned()).unwrap_or_default();
        let patch = ChannelPatch {
            name: if name.is_empty() { Patch::Null } else { Patch::Value(name) },
            enabled: Patch::Value(fields.contains_key("enabled")),
            settings: if settings.is_empty() { Patch::Missing } else { Patch::Value(settings) },
        };
        update_channel(&state, &caller(&console), id, patch).await
    };
    match outcome.await {
        Ok(()) => {
            let after = channel(&state, id).await?;
            if after.secrets_cleared.is_empty() {
                let flash = Flash::ok(lang.pick("已保存", "Saved"));
                return console.redirect(&state, &owner_page(after.merchant_id), flash).await;
            }
            let labels: Vec<String> =
                after.secrets_cleared.iter().map(|k| channel_form::key_label(after.kind, k, lang)).collect();
            let flash = Flash::error(format!(
                "{}{}",
                lang.pick(
                    "已保存。渠道的发送目标已更改，原有凭据已清除，重新填写后渠道才会发送：",
                    "Saved. The channel's destination changed, so its stored credentials were cleared; it sends nothing \
                     until you type them again: "
                ),
                labels.join(lang.pick("、", ", "))
            ));
            console.redirect(&state, &format!("/console/channels/{id}/edit"), flash).await
        }
        Err(error) => match form_error(&error) {
            Some(status) => {
                let values = shown_again(current.kind, &fields);
                let mut page =
                    edit_page(&state, &console, &current, Some(values), Some(explain(current.kind, &error, lang)))
                        .await?;
                page.name = fields.get("name").cloned().unwrap_or_default();
                page.enabled = fields.contains_key("enabled");
                render_status(&page, status)
            }
            None => Err(refused(&console, error)),
        },
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct EnabledForm {
    #[serde(default)]
    enabled: String,
}

pub async fn set_enabled(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    ConsoleForm(form): ConsoleForm<EnabledForm>,
) -> Result<Response, ConsoleError> {
    let id = parse_id(&id)?;
    let enabled = match form.enabled.as_str() {
        "true" => true,
        "false" => false,
        other => return Err(ConsoleError::BadRequest(format!("enabled: `{other}` is neither true nor false"))),
    };
    let patch = ChannelPatch { enabled: Patch::Value(enabled), ..ChannelPatch::default() };
    update_channel(&state, &caller(&console), id, patch).await.map_err(|e| refused(&console, e))?;
    let after = channel(&state, id).await?;
    let flash = Flash::ok(if enabled {
        console.lang.pick("渠道已启用", "Channel enabled")
    } else {
        console.lang.pick("渠道已停用", "Channel disabled")
    });
    console.redirect(&state, &owner_page(after.merchant_id), flash).await
}

pub async fn delete(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    ConsoleForm(_): ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let id = parse_id(&id)?;
    let current = channel(&state, id).await?;
    delete_channel(&state, &caller(&console), id).await.map_err(|e| refused(&console, e))?;
    let flash = Flash::ok(console.lang.pick("渠道已删除", "Channel removed"));
    console.redirect(&state, &owner_page(current.merchant_id), flash).await
}

#[derive(Template)]
#[template(path = "console/channel_test.html")]
struct TestPage {
    ctx: Ctx,
    name: String,
    kind_label: &'static str,
    owner_link: String,
    edit_link: Option<String>,
    out: TestSendOut,
}

/// Send a sample message now and show what the service answered (at most 2 KiB of it).
pub async fn test(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    ConsoleForm(_): ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let id = parse_id(&id)?;
    let current = channel(&state, id).await?;
    let out = match test_channel_audited(&state, &caller(&console), id).await {
        Ok(out) => out,
        // The channel cannot send at all (its credentials do not open, no recipient…): shown as the answer.
        Err(ApiError::Invalid(e)) => TestSendOut {
            ok: false,
            recipient: String::new(),
            code: String::new(),
            external_id: None,
            transient: false,
            answer: e.message,
            answer_truncated: false,
        },
        Err(other) => return Err(refused(&console, other)),
    };
    render(&TestPage {
        ctx: console.ctx(if current.merchant_id.is_some() { "merchants" } else { "channels" }),
        kind_label: kind_label(current.kind, console.lang),
        owner_link: owner_page(current.merchant_id),
        edit_link: require_for_owner(&console.grant(), current.merchant_id)
            .is_ok()
            .then(|| format!("/console/channels/{id}/edit")),
        name: current.name,
        out,
    })
}
