//! The channel form of each kind: which fields it shows, and how what was typed becomes the API's settings.
//!
//! Contract: each kind's [`specs`] list every settings key the kind takes (a unit test checks them against
//! `domain::channel`). A form field is named `s.<key>`; a credential's is empty on the page and shows only whether
//! one is stored. [`settings_to_create`] turns a filled form into the settings of `POST /channels`;
//! [`settings_patch`] into the `settings` of a `PATCH` — only the keys whose value changed, a credential only when
//! one was typed (an empty credential field keeps the stored one) or its "remove" box (`clear.<key>`) was ticked.
//! The API's rules then apply unchanged: a destination changed without its credential clears the credential
//! (`secrets_cleared`, shown to the user as a warning).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::page::Lang;
use crate::domain::FieldError;
use crate::domain::channel::{ChannelKind, email_preset};

/// How a setting is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Text,
    Number,
    /// A credential: write-only.
    Secret,
    /// A list: one entry per line (commas and semicolons separate too).
    Lines,
    /// A map: `key=value`, one per line.
    Pairs,
    Check,
    /// A choice: `(value, Chinese label, English label)`.
    Select(&'static [(&'static str, &'static str, &'static str)]),
    /// Multi-line text kept as typed (a PEM certificate).
    Code,
}

/// One field of a channel form.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub key: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
    pub input: Input,
    pub required: bool,
    pub hint_zh: &'static str,
    pub hint_en: &'static str,
    pub placeholder: &'static str,
}

const fn spec(key: &'static str, zh: &'static str, en: &'static str, input: Input, required: bool) -> Spec {
    Spec { key, zh, en, input, required, hint_zh: "", hint_en: "", placeholder: "" }
}

impl Spec {
    const fn hint(mut self, zh: &'static str, en: &'static str) -> Self {
        self.hint_zh = zh;
        self.hint_en = en;
        self
    }

    const fn placeholder(mut self, text: &'static str) -> Self {
        self.placeholder = text;
        self
    }

    pub fn label(&self, lang: Lang) -> &'static str {
        lang.pick(self.zh, self.en)
    }
}

const PRESETS: &[(&str, &str, &str)] = &[
    ("", "自定义服务器", "Custom server"),
    ("163", "网易 163 邮箱", "NetEase 163"),
    ("qq", "QQ 邮箱", "QQ Mail"),
    ("exmail", "腾讯企业邮箱", "Tencent Exmail"),
];
const SECURITY: &[(&str, &str, &str)] = &[
    ("tls", "SSL/TLS（通常为 465 端口）", "SSL/TLS (usually port 465)"),
    ("starttls", "STARTTLS（通常为 587 端口）", "STARTTLS (usually port 587)"),
    ("none", "不加密（仅限本机测试服务器）", "None (test server on this machine only)"),
];
const FEISHU_DOMAINS: &[(&str, &str, &str)] = &[
    ("feishu", "飞书（open.feishu.cn）", "Feishu (open.feishu.cn)"),
    ("lark", "Lark（open.larksuite.com）", "Lark (open.larksuite.com)"),
];

const EMAIL: &[Spec] = &[
    spec("preset", "邮箱服务商", "Mail provider", Input::Select(PRESETS), false).hint(
        "选择预设时，服务器、端口与加密方式由预设决定",
        "With a preset, the preset decides host, port and security",
    ),
    spec("host", "SMTP 服务器", "SMTP host", Input::Text, false).placeholder("smtp.example.com"),
    spec("port", "端口", "Port", Input::Number, false).placeholder("465"),
    spec("security", "加密方式", "Security", Input::Select(SECURITY), false),
    spec("username", "登录账号", "User name", Input::Text, false)
        .hint("通常是完整的邮箱地址", "Usually the whole mail address")
        .placeholder("alerts@163.com"),
    spec("password", "密码 / 授权码", "Password / authorization code", Input::Secret, false).hint(
        "163、QQ 邮箱与企业邮箱填写客户端授权码，不是网页登录密码",
        "For 163, QQ and Exmail: the client authorization code, not the web password",
    ),
    spec("from", "发件人", "From", Input::Text, true)
        .hint("163、QQ 与企业邮箱要求与登录账号相同", "163, QQ and Exmail require the account itself")
        .placeholder("风控提醒 <alerts@163.com>"),
    spec("to", "收件人", "To", Input::Lines, true).hint("每行一个地址，最多 50 个", "One address per line, up to 50"),
    spec("ca_pem", "自建服务器的 CA 证书（PEM）", "CA certificate of a private server (PEM)", Input::Code, false)
        .hint("仅当邮件服务器使用私有 CA 签发的证书时填写", "Only for a relay whose certificate a private CA issued"),
];

const WECHAT_TEMPLATE: &[Spec] = &[
    spec("appid", "公众号 AppID", "Official account AppID", Input::Text, true).placeholder("wx1234567890abcdef"),
    spec("secret", "AppSecret", "AppSecret", Input::Secret, true)
        .hint("公众号的 AppSecret（32 位）", "The account's AppSecret (32 characters)"),
    spec("template_id", "模板 ID", "Template id", Input::Text, true),
    spec("openids", "接收人 openid", "Recipients' openids", Input::Lines, true)
        .hint("关注公众号的接收人，每行一个", "Followers of the account, one per line"),
    spec("url", "点击打开的网址", "Link opened on tap", Input::Text, false).placeholder("https://"),
    spec("field_map", "模板关键字", "Template keywords", Input::Pairs, true).hint(
        "每行一个：关键字=消息字段，例如 thing1=merchant_name。消息字段：event_label, summary, merchant_name, \
         merchant_mchid, provider_name, complaint_id, record_id, risk_label, out_refund_no, amount, time, deadline, \
         actions",
        "One per line: keyword=message field, e.g. thing1=merchant_name. Message fields: event_label, summary, \
         merchant_name, merchant_mchid, provider_name, complaint_id, record_id, risk_label, out_refund_no, amount, \
         time, deadline, actions",
    ),
];

const TENCENT_SMS: &[Spec] = &[
    spec("secret_id", "SecretId", "SecretId", Input::Text, true),
    spec("secret_key", "SecretKey", "SecretKey", Input::Secret, true),
    spec("sdk_app_id", "短信应用 SdkAppId", "SMS SdkAppId", Input::Text, true).placeholder("1400006666"),
    spec("sign_name", "短信签名", "Signature", Input::Text, true),
    spec("template_id", "模板 ID", "Template id", Input::Text, true),
    spec("phone_numbers", "手机号", "Phone numbers", Input::Lines, true)
        .hint("每行一个，最多 200 个", "One per line, up to 200")
        .placeholder("13800138000"),
    spec("region", "地域", "Region", Input::Text, false).placeholder("ap-guangzhou"),
    spec("template_params", "模板参数", "Template parameters", Input::Lines, false).hint(
        "依次填入模板参数的消息字段，每行一个；留空为 event_label、merchant_name",
        "Message fields filling the template's parameters, in order; empty: event_label, merchant_name",
    ),
    spec("param_max_chars", "参数最长字数", "Longest parameter", Input::Number, false)
        .hint("2024 年 1 月 25 日后开通的账号为 6", "6 for accounts opened after 2024-01-25"),
];

const WECOM_ROBOT: &[Spec] = &[
    spec("webhook_key", "Webhook 地址或 key", "Webhook URL or key", Input::Secret, true)
        .hint("粘贴机器人的完整 Webhook 地址即可", "Paste the robot's whole webhook URL"),
    spec("mentioned_list", "提醒成员（userid）", "Mention members (userid)", Input::Lines, false)
        .hint("每行一个，@all 提醒所有人", "One per line; @all for everyone"),
    spec("mentioned_mobile_list", "提醒手机号", "Mention phone numbers", Input::Lines, false),
];

const DINGTALK_ROBOT: &[Spec] = &[
    spec("access_token", "Webhook 地址或 access_token", "Webhook URL or access_token", Input::Secret, true)
        .hint("粘贴机器人的完整 Webhook 地址即可", "Paste the robot's whole webhook URL"),
    spec("secret", "加签密钥", "Signing secret", Input::Secret, false)
        .hint("以 SEC 开头；未启用加签可留空", "Starts with SEC; empty when the robot does not sign"),
    spec("at_mobiles", "@ 手机号", "Mention phone numbers", Input::Lines, false),
    spec("at_all", "@ 所有人", "Mention everyone", Input::Check, false),
];

const FEISHU_ROBOT: &[Spec] = &[
    spec("hook_token", "Webhook 地址或 token", "Webhook URL or token", Input::Secret, true)
        .hint("粘贴机器人的完整 Webhook 地址即可", "Paste the robot's whole webhook URL"),
    spec("secret", "签名校验密钥", "Signature secret", Input::Secret, false)
        .hint("机器人开启签名校验时填写", "When the robot checks signatures"),
    spec("at_user_ids", "@ 用户（user_id）", "Mention users (user_id)", Input::Lines, false),
    spec("domain", "平台", "Platform", Input::Select(FEISHU_DOMAINS), false),
];

const WEBHOOK: &[Spec] = &[
    spec("url", "接收地址", "Receiver URL", Input::Text, true).placeholder("https://erp.example.com/hooks/wxrisk"),
    spec("secret", "签名密钥", "Signing secret", Input::Secret, true).hint(
        "whsec_ 开头，后接 24–64 字节随机数的 base64（Standard Webhooks）",
        "whsec_ and 24 to 64 random bytes in base64 (Standard Webhooks)",
    ),
];

/// The fields of a kind's form, in order.
pub fn specs(kind: ChannelKind) -> &'static [Spec] {
    match kind {
        ChannelKind::Email => EMAIL,
        ChannelKind::WechatTemplate => WECHAT_TEMPLATE,
        ChannelKind::TencentSms => TENCENT_SMS,
        ChannelKind::WecomRobot => WECOM_ROBOT,
        ChannelKind::DingtalkRobot => DINGTALK_ROBOT,
        ChannelKind::FeishuRobot => FEISHU_ROBOT,
        ChannelKind::Webhook => WEBHOOK,
    }
}

/// What people call a kind.
pub fn kind_label(kind: ChannelKind, lang: Lang) -> &'static str {
    match kind {
        ChannelKind::Email => lang.pick("邮件", "Email"),
        ChannelKind::WechatTemplate => lang.pick("公众号模板消息", "Official-account template"),
        ChannelKind::TencentSms => lang.pick("腾讯云短信", "Tencent Cloud SMS"),
        ChannelKind::WecomRobot => lang.pick("企业微信机器人", "WeCom robot"),
        ChannelKind::DingtalkRobot => lang.pick("钉钉机器人", "DingTalk robot"),
        ChannelKind::FeishuRobot => lang.pick("飞书机器人", "Feishu robot"),
        ChannelKind::Webhook => "Webhook",
    }
}

/// The label of a settings key (for error messages), or the key.
pub fn key_label(kind: ChannelKind, key: &str, lang: Lang) -> String {
    specs(kind).iter().find(|s| s.key == key).map_or_else(|| key.to_owned(), |s| s.label(lang).to_owned())
}

/// A form as posted: each field's last value.
pub type Fields = HashMap<String, String>;

fn raw<'a>(fields: &'a Fields, key: &str) -> &'a str {
    fields.get(&format!("s.{key}")).map_or("", String::as_str)
}

fn entries(text: &str) -> Vec<Value> {
    text.split(['\n', '\r', ',', ';', '，', '；'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| Value::String(e.to_owned()))
        .collect()
}

fn pairs(key: &str, text: &str) -> Result<Value, FieldError> {
    let mut map = Map::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once(['=', ':', '：']) else {
            return Err(FieldError::new(
                format!("settings.{key}"),
                format!("line {}: write keyword=field, e.g. thing1=merchant_name", n + 1),
            ));
        };
        map.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
    }
    Ok(Value::Object(map))
}

/// The value a non-credential field gives: `None` when left empty (the setting's default applies).
fn value_of(spec: &Spec, fields: &Fields, creating: bool) -> Result<Option<Value>, FieldError> {
    let text = raw(fields, spec.key);
    let trimmed = text.trim();
    Ok(match spec.input {
        Input::Secret => None,
        Input::Text | Input::Select(_) => (!trimmed.is_empty()).then(|| Value::String(trimmed.to_owned())),
        Input::Code => (!trimmed.is_empty()).then(|| Value::String(text.replace("\r\n", "\n").trim().to_owned())),
        Input::Number => match trimmed {
            "" => None,
            digits => Some(Value::from(
                digits
                    .parse::<u64>()
                    .map_err(|_| FieldError::new(format!("settings.{}", spec.key), "must be a whole number"))?,
            )),
        },
        Input::Lines => {
            let list = entries(text);
            // A required list goes as given (empty: the API says how many it needs); an optional one left empty on a
            // new channel takes its default.
            (spec.required || !creating || !list.is_empty()).then_some(Value::Array(list))
        }
        Input::Pairs => Some(pairs(spec.key, text)?),
        Input::Check => Some(Value::Bool(fields.contains_key(&format!("s.{}", spec.key)))),
    })
}

/// The public settings a form gives, with the email preset's rule applied: a preset decides host, port and
/// security.
fn public_values(kind: ChannelKind, fields: &Fields, creating: bool) -> Result<Map<String, Value>, FieldError> {
    let mut values = Map::new();
    for spec in specs(kind) {
        if let Some(value) = value_of(spec, fields, creating)? {
            values.insert(spec.key.to_owned(), value);
        }
    }
    if kind == ChannelKind::Email
        && let Some((host, port)) = values.get("preset").and_then(Value::as_str).and_then(email_preset)
    {
        values.insert("host".into(), Value::from(host));
        values.insert("port".into(), Value::from(port));
        values.insert("security".into(), Value::from("tls"));
    }
    Ok(values)
}

/// The settings of a new channel from its form (credentials that were typed included).
pub fn settings_to_create(kind: ChannelKind, fields: &Fields) -> Result<Value, FieldError> {
    let mut settings = public_values(kind, fields, true)?;
    for spec in specs(kind).iter().filter(|s| s.input == Input::Secret) {
        let typed = raw(fields, spec.key).trim();
        if !typed.is_empty() {
            settings.insert(spec.key.to_owned(), Value::String(typed.to_owned()));
        }
    }
    Ok(Value::Object(settings))
}

/// The `settings` of a PATCH from an edited form and the stored public settings: changed values, emptied fields as
/// `null`, credentials typed anew or ticked for removal. Unchanged fields are left out, so the audit log names only
/// what changed.
pub fn settings_patch(
    kind: ChannelKind,
    fields: &Fields,
    stored: &Map<String, Value>,
) -> Result<Map<String, Value>, FieldError> {
    let new = public_values(kind, fields, false)?;
    let mut patch = Map::new();
    for spec in specs(kind).iter().filter(|s| s.input != Input::Secret) {
        match (new.get(spec.key), stored.get(spec.key)) {
            (None, Some(_)) => {
                patch.insert(spec.key.to_owned(), Value::Null);
            }
            (Some(value), before) if before != Some(value) => {
                patch.insert(spec.key.to_owned(), value.clone());
            }
            _ => {}
        }
    }
    for spec in specs(kind).iter().filter(|s| s.input == Input::Secret) {
        let typed = raw(fields, spec.key).trim();
        if !typed.is_empty() {
            patch.insert(spec.key.to_owned(), Value::String(typed.to_owned()));
        } else if fields.contains_key(&format!("clear.{}", spec.key)) {
            patch.insert(spec.key.to_owned(), Value::Null);
        }
    }
    Ok(patch)
}

/// The form's raw values (`s.<key>` → text) from stored public settings, to fill in an edit form.
pub fn fields_of(kind: ChannelKind, stored: &Map<String, Value>) -> Fields {
    let mut fields = Fields::new();
    for spec in specs(kind) {
        let Some(value) = stored.get(spec.key) else { continue };
        let text = match (spec.input, value) {
            (Input::Secret, _) => continue,
            (Input::Check, Value::Bool(false)) => continue,
            (Input::Check, _) => "on".to_owned(),
            (Input::Lines, Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join("\n"),
            (Input::Pairs, Value::Object(map)) => map
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect::<Vec<_>>()
                .join("\n"),
            (_, Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        };
        fields.insert(format!("s.{}", spec.key), text);
    }
    fields
}

/// Defaults shown in a new channel's form.
pub fn defaults(kind: ChannelKind) -> Fields {
    let mut fields = Fields::new();
    match kind {
        ChannelKind::Email => {
            fields.insert("s.security".into(), "tls".into());
        }
        ChannelKind::TencentSms => {
            fields.insert("s.region".into(), "ap-guangzhou".into());
            fields.insert("s.template_params".into(), "event_label\nmerchant_name".into());
            fields.insert("s.param_max_chars".into(), "6".into());
        }
        ChannelKind::FeishuRobot => {
            fields.insert("s.domain".into(), "feishu".into());
        }
        _ => {}
    }
    fields
}

/// A one-line summary of where a channel sends (public settings only).
pub fn destination(kind: ChannelKind, settings: &Map<String, Value>, lang: Lang) -> String {
    let list = |key: &str| -> Vec<String> {
        settings
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let text = |key: &str| settings.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let shorten = |items: Vec<String>| -> String {
        let total = items.len();
        let shown: Vec<String> = items.into_iter().take(3).collect();
        if total > shown.len() {
            format!("{} {}", shown.join(", "), lang.pick(&format!("等 {total} 个"), &format!("and {} more", total - 3)))
        } else {
            shown.join(", ")
        }
    };
    match kind {
        ChannelKind::Email => format!("{} → {}", text("host"), shorten(list("to"))),
        ChannelKind::WechatTemplate => format!("{} · {}", text("appid"), shorten(list("openids"))),
        ChannelKind::TencentSms => shorten(list("phone_numbers")),
        ChannelKind::WecomRobot | ChannelKind::DingtalkRobot => {
            let mentions = [list("mentioned_list"), list("mentioned_mobile_list"), list("at_mobiles")].concat();
            if mentions.is_empty() {
                lang.pick("群机器人", "group robot").to_owned()
            } else {
                format!("@ {}", shorten(mentions))
            }
        }
        ChannelKind::FeishuRobot => {
            let domain = if text("domain") == "lark" { "Lark" } else { lang.pick("飞书", "Feishu") };
            domain.to_owned()
        }
        ChannelKind::Webhook => text("url"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::channel::{MESSAGE_FIELDS, validate_settings};

    fn form(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn every_kind_lists_its_settings_and_its_credentials_as_secret() {
        for kind in ChannelKind::ALL {
            let secrets: Vec<&str> = specs(kind).iter().filter(|s| s.input == Input::Secret).map(|s| s.key).collect();
            assert_eq!(secrets, kind.secret_keys(), "{kind:?}");
            // Every key the form offers is one the kind accepts: an unknown key would be refused by name.
            for spec in specs(kind) {
                let mut settings = Map::new();
                settings.insert(spec.key.to_owned(), Value::Null);
                let error = validate_settings(kind, Value::Object(settings)).err();
                if let Some(error) = error {
                    assert!(!error.message.contains("unknown field"), "{kind:?}.{}: {error:?}", spec.key);
                }
            }
        }
        let hint = WECHAT_TEMPLATE.iter().find(|s| s.key == "field_map").map(|s| s.hint_en).unwrap_or_default();
        for field in MESSAGE_FIELDS {
            assert!(hint.contains(field), "{field} missing from the template keyword hint");
        }
    }

    #[test]
    fn filled_forms_validate_for_every_kind() {
        let filled = [
            (
                ChannelKind::Email,
                form(&[
                    ("s.preset", "163"),
                    ("s.username", "alerts@163.com"),
                    ("s.password", "AUTH"),
                    ("s.from", "风控 <alerts@163.com>"),
                    ("s.to", "ops@example.com\nboss@example.com"),
                ]),
            ),
            (
                ChannelKind::WechatTemplate,
                form(&[
                    ("s.appid", "wx1234567890abcdef"),
                    ("s.secret", "0123456789abcdef0123456789abcdef"),
                    ("s.template_id", "TPL1"),
                    ("s.openids", "oA\noB"),
                    ("s.field_map", "thing1=merchant_name\ntime2: time"),
                ]),
            ),
            (
                ChannelKind::TencentSms,
                form(&[
                    ("s.secret_id", "AKID"),
                    ("s.secret_key", "k"),
                    ("s.sdk_app_id", "1400006666"),
                    ("s.sign_name", "腾讯云"),
                    ("s.template_id", "1110"),
                    ("s.phone_numbers", "13800138000"),
                    ("s.region", "ap-guangzhou"),
                    ("s.template_params", ""),
                    ("s.param_max_chars", "6"),
                ]),
            ),
            (
                ChannelKind::WecomRobot,
                form(&[("s.webhook_key", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-1")]),
            ),
            (
                ChannelKind::DingtalkRobot,
                form(&[("s.access_token", "tok"), ("s.secret", "SECabc"), ("s.at_all", "on")]),
            ),
            (ChannelKind::FeishuRobot, form(&[("s.hook_token", "abc"), ("s.domain", "lark")])),
            (
                ChannelKind::Webhook,
                form(&[
                    ("s.url", "https://hooks.example.com/x"),
                    ("s.secret", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
                ]),
            ),
        ];
        for (kind, fields) in filled {
            let settings = settings_to_create(kind, &fields).expect("converts");
            let split =
                validate_settings(kind, settings.clone()).unwrap_or_else(|e| panic!("{kind:?}: {e:?} {settings}"));
            // Shown again in an edit form and sent back unchanged, nothing is patched.
            let again = fields_of(kind, &split.public);
            assert!(settings_patch(kind, &again, &split.public).expect("patch").is_empty(), "{kind:?}: {again:?}");
        }
        let email = settings_to_create(ChannelKind::Email, &form(&[("s.preset", "qq"), ("s.host", "smtp.163.com")]))
            .expect("converts");
        assert_eq!(email["host"], "smtp.qq.com", "the preset decides the host");
        let sms = settings_to_create(ChannelKind::TencentSms, &form(&[])).expect("converts");
        assert!(sms.get("template_params").is_none(), "an optional list left empty takes its default");
        assert_eq!(sms["phone_numbers"], json!([]), "a required list goes as given");
        let bad = settings_to_create(ChannelKind::Email, &form(&[("s.port", "4x5")])).expect_err("port");
        assert_eq!(bad.field, "settings.port");
    }

    #[test]
    fn an_edit_patches_what_changed_keeps_empty_credentials_and_removes_ticked_ones() {
        let stored = json!({"host": "smtp.example.com", "port": 465, "security": "tls", "username": "a@b.cn",
                            "from": "a@b.cn", "to": ["ops@b.cn"]});
        let stored = stored.as_object().expect("object").clone();
        let mut fields = fields_of(ChannelKind::Email, &stored);
        fields.insert("s.host".into(), "smtp.other.example".into());
        fields.insert("s.username".into(), String::new());
        fields.insert("s.password".into(), String::new());
        let patch = settings_patch(ChannelKind::Email, &fields, &stored).expect("patch");
        assert_eq!(Value::Object(patch), json!({"host": "smtp.other.example", "username": null}));
        fields.insert("clear.password".into(), "on".into());
        let patch = settings_patch(ChannelKind::Email, &fields, &stored).expect("patch");
        assert_eq!(patch["password"], Value::Null);
        fields.insert("s.password".into(), " NEWCODE ".into());
        let patch = settings_patch(ChannelKind::Email, &fields, &stored).expect("patch");
        assert_eq!(patch["password"], "NEWCODE", "a typed credential wins over the box");
    }
}
