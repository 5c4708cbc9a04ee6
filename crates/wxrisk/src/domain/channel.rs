//! Notification channels: their kinds, the settings each kind takes, and which settings are secrets.
//!
//! Contract: [`validate_settings`] takes the full desired settings object of a channel (for an update: the stored
//! settings with the change applied) and returns it normalised and split into public settings, stored as JSON
//! text, and secret settings, sealed before storage and never shown again. Unknown keys, wrong types and values
//! the service at the other end would refuse are errors naming the key (`settings.to[1]`).
//!
//! A credential is write-only, so it must not be sent anywhere its owner did not send it: when an update changes
//! a setting that decides where a credential goes or whom it speaks for ([`ChannelKind::credential_destinations`])
//! and does not give that credential again, [`credentials_to_clear`] names it, and it is dropped.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::values::Appid;
use super::{FieldError, text_field};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Email,
    WechatTemplate,
    TencentSms,
    WecomRobot,
    DingtalkRobot,
    FeishuRobot,
    Webhook,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 7] = [
        ChannelKind::Email,
        ChannelKind::WechatTemplate,
        ChannelKind::TencentSms,
        ChannelKind::WecomRobot,
        ChannelKind::DingtalkRobot,
        ChannelKind::FeishuRobot,
        ChannelKind::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::WechatTemplate => "wechat_template",
            ChannelKind::TencentSms => "tencent_sms",
            ChannelKind::WecomRobot => "wecom_robot",
            ChannelKind::DingtalkRobot => "dingtalk_robot",
            ChannelKind::FeishuRobot => "feishu_robot",
            ChannelKind::Webhook => "webhook",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Settings keys that are credentials: sealed at rest, write-only in the API. A robot's webhook key or
    /// access token is the only thing standing between the internet and the ops group, so it counts.
    pub fn secret_keys(self) -> &'static [&'static str] {
        match self {
            ChannelKind::Email => &["password"],
            ChannelKind::WechatTemplate => &["secret"],
            ChannelKind::TencentSms => &["secret_key"],
            ChannelKind::WecomRobot => &["webhook_key"],
            ChannelKind::DingtalkRobot => &["access_token", "secret"],
            ChannelKind::FeishuRobot => &["hook_token", "secret"],
            ChannelKind::Webhook => &["secret"],
        }
    }
}

impl ChannelKind {
    /// For each credential, the settings that decide where it is sent (host, port, TLS and its trust anchor, URL,
    /// the robot it posts to) or which account it belongs to. Changing one of them without giving the credential
    /// again drops the credential, so a token holder cannot point a channel elsewhere and have the stored secret
    /// (or a signature made with it) delivered to a server of their choosing:
    /// - `email`: the password goes to `host`:`port` over `security`, trusting `ca_pem`;
    /// - `webhook`: signatures made with `secret` go to `url`;
    /// - `dingtalk_robot`, `feishu_robot`: the signing `secret` belongs to one robot (`access_token`,
    ///   `hook_token`); a Feishu robot's token and secret go to the host `domain` picks;
    /// - `wechat_template`: the AppSecret belongs to `appid` (the host is the operator's `notify.wechat_api_base`);
    /// - `tencent_sms`: the SecretKey belongs to `secret_id` (the endpoint is the operator's);
    /// - `wecom_robot`: the key is itself the address; nothing else depends on it.
    ///
    /// Settings that do not move a credential (recipients, templates, mentions, the sender address, the SMTP user
    /// name) change freely.
    pub fn credential_destinations(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            ChannelKind::Email => &[("password", &["host", "port", "security", "ca_pem"])],
            ChannelKind::WechatTemplate => &[("secret", &["appid"])],
            ChannelKind::TencentSms => &[("secret_key", &["secret_id"])],
            ChannelKind::WecomRobot => &[],
            ChannelKind::DingtalkRobot => &[("secret", &["access_token"])],
            ChannelKind::FeishuRobot => &[("hook_token", &["domain"]), ("secret", &["hook_token", "domain"])],
            ChannelKind::Webhook => &[("secret", &["url"])],
        }
    }
}

/// The credentials an update must drop: kept from before (not in `given`, the keys the update sets to a value),
/// still present after the update, and with a destination setting whose normalised value differs between
/// `before` and `after` (both the full normalised settings, public and secret).
pub fn credentials_to_clear(
    kind: ChannelKind,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    given: &[String],
) -> Vec<String> {
    kind.credential_destinations()
        .iter()
        .filter(|(credential, _)| after.contains_key(*credential) && !given.iter().any(|g| g == credential))
        .filter(|(_, destinations)| destinations.iter().any(|d| before.get(*d) != after.get(*d)))
        .map(|(credential, _)| (*credential).to_owned())
        .collect()
}

/// Settings split for storage.
#[derive(Debug, Default)]
pub struct SplitSettings {
    pub public: Map<String, Value>,
    pub secrets: Map<String, Value>,
}

/// Validate and normalise the complete settings of a channel of `kind`.
pub fn validate_settings(kind: ChannelKind, settings: Value) -> Result<SplitSettings, FieldError> {
    let Value::Object(_) = settings else {
        return Err(FieldError::new("settings", "must be a JSON object"));
    };
    let normalised = match kind {
        ChannelKind::Email => to_value(parse::<EmailSettings>(settings)?.check()?),
        ChannelKind::WechatTemplate => to_value(parse::<WechatTemplateSettings>(settings)?.check()?),
        ChannelKind::TencentSms => to_value(parse::<TencentSmsSettings>(settings)?.check()?),
        ChannelKind::WecomRobot => to_value(parse::<WecomRobotSettings>(settings)?.check()?),
        ChannelKind::DingtalkRobot => to_value(parse::<DingtalkRobotSettings>(settings)?.check()?),
        ChannelKind::FeishuRobot => to_value(parse::<FeishuRobotSettings>(settings)?.check()?),
        ChannelKind::Webhook => to_value(parse::<WebhookSettings>(settings)?.check()?),
    }?;
    let mut split = SplitSettings::default();
    for (key, value) in normalised {
        if value.is_null() {
            continue;
        }
        if kind.secret_keys().contains(&key.as_str()) {
            split.secrets.insert(key, value);
        } else {
            split.public.insert(key, value);
        }
    }
    Ok(split)
}

fn parse<T: serde::de::DeserializeOwned>(settings: Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(settings).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "settings".to_owned() } else { format!("settings.{path}") };
        FieldError::new(field, e.into_inner().to_string())
    })
}

fn to_value<T: Serialize>(settings: T) -> Result<Map<String, Value>, FieldError> {
    match serde_json::to_value(settings) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(FieldError::new("settings", "could not be normalised")),
    }
}

fn field(key: &str) -> String {
    format!("settings.{key}")
}

fn required(key: &str, value: Option<String>) -> Result<String, FieldError> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) => Ok(v),
        None => Err(FieldError::new(field(key), "is required")),
    }
}

fn token_like(key: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(FieldError::new(field(key), format!("must be 1 to {max} letters, digits, `-` or `_`")));
    }
    Ok(())
}

fn list(key: &str, items: &[String], min: usize, max: usize) -> Result<(), FieldError> {
    if items.len() < min || items.len() > max {
        return Err(FieldError::new(field(key), format!("must list {min} to {max} entries (got {})", items.len())));
    }
    Ok(())
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// A URL a channel posts to: https, or http to this machine (local receivers and the simulator).
fn outgoing_url(key: &str, value: &str) -> Result<String, FieldError> {
    let url = url::Url::parse(value.trim()).map_err(|e| FieldError::new(field(key), format!("not a URL: {e}")))?;
    let loopback = url.host_str().map(|h| is_loopback_host(h.trim_matches(['[', ']']))).unwrap_or(false);
    match url.scheme() {
        "https" => Ok(url.to_string()),
        "http" if loopback => Ok(url.to_string()),
        _ => Err(FieldError::new(field(key), "must be an https:// URL")),
    }
}

/// A trust anchor for a private mail relay: PEM certificates (any key type) that rustls, which the SMTP client
/// uses, accepts as roots.
fn ca_certificate(pem: &str) -> Result<(), FieldError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let certificates: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| FieldError::new(field("ca_pem"), format!("not PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(FieldError::new(field("ca_pem"), "holds no -----BEGIN CERTIFICATE----- block"));
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|e| FieldError::new(field("ca_pem"), format!("not a usable CA certificate: {e}")))?;
    }
    Ok(())
}

/// `alerts@163.com` or `wxrisk <alerts@163.com>`; returns the bare address.
fn email_address(key: &str, value: &str) -> Result<String, FieldError> {
    let value = value.trim();
    let address = match (value.rfind('<'), value.ends_with('>')) {
        (Some(start), true) => &value[start + 1..value.len() - 1],
        _ => value,
    };
    let valid = match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !address.chars().any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == ';')
                && (domain.contains('.') || domain == "localhost")
        }
        None => false,
    };
    if !valid {
        return Err(FieldError::new(field(key), format!("`{value}` is not an email address")));
    }
    Ok(address.to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Implicit TLS, port 465: what 163, QQ and Exmail document.
    Tls,
    /// STARTTLS, port 587.
    Starttls,
    /// No encryption: only for a test server on this machine.
    None,
}

/// An email preset's SMTP host and port (implicit TLS): what 163, QQ and Exmail document.
pub fn email_preset(name: &str) -> Option<(&'static str, u16)> {
    match name {
        "163" => Some(("smtp.163.com", 465)),
        "qq" => Some(("smtp.qq.com", 465)),
        "exmail" => Some(("smtp.exmail.qq.com", 465)),
        _ => None,
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailSettings {
    /// `163`, `qq` or `exmail` fill in host, port and security.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preset: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    security: Option<SmtpSecurity>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    from: String,
    to: Vec<String>,
    /// An extra trusted CA (PEM) for a relay with a private certificate authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_pem: Option<String>,
}

impl EmailSettings {
    fn check(mut self) -> Result<Self, FieldError> {
        let preset = match self.preset.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => match email_preset(name) {
                Some(preset) => Some(preset),
                None => {
                    return Err(FieldError::new(field("preset"), format!("`{name}` is not one of 163, qq, exmail")));
                }
            },
        };
        if let Some((host, port)) = preset {
            self.host.get_or_insert_with(|| host.to_owned());
            self.port.get_or_insert(port);
            self.security.get_or_insert(SmtpSecurity::Tls);
        }
        let host = required("host", self.host.take())?;
        if host.contains(['/', ':', ' ']) {
            return Err(FieldError::new(field("host"), "is a host name only, e.g. smtp.163.com"));
        }
        let security = self.security.unwrap_or(SmtpSecurity::Tls);
        let port = self.port.unwrap_or(match security {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::None => 25,
        });
        if port == 0 {
            return Err(FieldError::new(field("port"), "must be 1 to 65535"));
        }
        if security == SmtpSecurity::None && !is_loopback_host(&host) {
            return Err(FieldError::new(
                field("security"),
                "`none` sends the password in clear text; it is allowed only for a test server on this machine",
            ));
        }
        let username = self.username.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty());
        if self.password.is_some() && username.is_none() {
            return Err(FieldError::new(field("username"), "is required with a password"));
        }
        let from = email_address("from", &self.from)?;
        // 163, QQ and Exmail refuse mail whose From differs from the logged-in account (163: 553).
        let strict_sender = ["smtp.163.com", "smtp.qq.com", "smtp.exmail.qq.com"].contains(&host.as_str());
        if let Some(user) = &username
            && strict_sender
            && !from.eq_ignore_ascii_case(user)
        {
            return Err(FieldError::new(
                field("from"),
                format!("{host} only sends mail whose From is the account itself ({user})"),
            ));
        }
        list("to", &self.to, 1, 50)?;
        let mut to = Vec::with_capacity(self.to.len());
        for (i, address) in self.to.iter().enumerate() {
            to.push(email_address(&format!("to[{i}]"), address)?);
        }
        let ca_pem = self.ca_pem.filter(|p| !p.trim().is_empty());
        if let Some(pem) = &ca_pem {
            ca_certificate(pem)?;
        }
        Ok(Self {
            ca_pem,
            preset: self.preset.filter(|p| !p.trim().is_empty()),
            host: Some(host),
            port: Some(port),
            security: Some(security),
            username,
            password: self.password,
            from: self.from.trim().to_owned(),
            to,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WechatTemplateSettings {
    appid: String,
    secret: Option<String>,
    template_id: String,
    openids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    /// Template keyword (`thing1`, `character_string2`, `time3` …) → the message field shown in it.
    #[serde(default)]
    field_map: Map<String, Value>,
}

impl WechatTemplateSettings {
    fn check(mut self) -> Result<Self, FieldError> {
        self.appid = Appid::parse(&field("appid"), &self.appid)?.as_str().to_owned();
        let secret = required("secret", self.secret.take())?;
        if secret.len() != 32 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FieldError::new(field("secret"), "an AppSecret is 32 hexadecimal characters"));
        }
        self.secret = Some(secret);
        self.template_id = self.template_id.trim().to_owned();
        token_like("template_id", &self.template_id, 128)?;
        list("openids", &self.openids, 1, 100)?;
        for (i, openid) in self.openids.iter_mut().enumerate() {
            *openid = openid.trim().to_owned();
            token_like(&format!("openids[{i}]"), openid, 64)?;
        }
        if let Some(url) = self.url.take().filter(|u| !u.trim().is_empty()) {
            self.url = Some(outgoing_url("url", &url)?);
        }
        // A template message without mapped keywords arrives empty, so at least one is required;
        // WeChat templates have at most about twenty keywords.
        if self.field_map.is_empty() || self.field_map.len() > 20 {
            return Err(FieldError::new(
                field("field_map"),
                "map 1 to 20 template keywords (thing1, time2 …) to message fields",
            ));
        }
        for (keyword, value) in &self.field_map {
            token_like(&format!("field_map.{keyword}"), keyword, 64)?;
            if !value.as_str().is_some_and(|v| MESSAGE_FIELDS.contains(&v)) {
                return Err(FieldError::new(
                    field(&format!("field_map.{keyword}")),
                    format!("must name a message field: {}", MESSAGE_FIELDS.join(", ")),
                ));
            }
        }
        Ok(self)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TencentSmsSettings {
    secret_id: String,
    secret_key: Option<String>,
    sdk_app_id: String,
    sign_name: String,
    template_id: String,
    phone_numbers: Vec<String>,
    #[serde(default = "default_sms_region")]
    region: String,
    /// Message fields filling the template's parameters, in order (default: `event_label`, `merchant_name`).
    #[serde(default = "default_sms_params")]
    template_params: Vec<String>,
    /// Longest parameter the account allows (Tencent: 6 for accounts opened after 2024-01-25).
    #[serde(default = "default_param_chars")]
    param_max_chars: u32,
}

fn default_sms_params() -> Vec<String> {
    vec!["event_label".into(), "merchant_name".into()]
}

fn default_param_chars() -> u32 {
    6
}

/// Names of the message fields templates and SMS parameters can use.
pub const MESSAGE_FIELDS: &[&str] = &[
    "event_label",
    "summary",
    "merchant_name",
    "merchant_mchid",
    "provider_name",
    "complaint_id",
    "record_id",
    "risk_label",
    "out_refund_no",
    "amount",
    "time",
    "deadline",
    "actions",
];

fn default_sms_region() -> String {
    "ap-guangzhou".to_owned()
}

/// E.164 (`+8613800138000`) from any form Tencent accepts, or an error naming the field.
fn e164(key: &str, value: &str) -> Result<String, FieldError> {
    protocols::phone::e164(value)
        .ok_or_else(|| FieldError::new(field(key), format!("`{value}` is not a phone number like +8613800138000")))
}

impl TencentSmsSettings {
    fn check(mut self) -> Result<Self, FieldError> {
        self.secret_id = self.secret_id.trim().to_owned();
        token_like("secret_id", &self.secret_id, 128)?;
        self.secret_key = Some(required("secret_key", self.secret_key.take())?);
        self.sdk_app_id = self.sdk_app_id.trim().to_owned();
        if self.sdk_app_id.is_empty() || !self.sdk_app_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(field("sdk_app_id"), "is the SMS application's numeric id, e.g. 1400006666"));
        }
        self.sign_name = text_field(&field("sign_name"), &self.sign_name, 32)?;
        self.template_id = self.template_id.trim().to_owned();
        if self.template_id.is_empty() || !self.template_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(field("template_id"), "is the approved template's numeric id"));
        }
        list("phone_numbers", &self.phone_numbers, 1, 200)?;
        for (i, number) in self.phone_numbers.iter_mut().enumerate() {
            *number = e164(&format!("phone_numbers[{i}]"), number)?;
        }
        list("template_params", &self.template_params, 0, 10)?;
        for (i, name) in self.template_params.iter().enumerate() {
            if !MESSAGE_FIELDS.contains(&name.as_str()) {
                return Err(FieldError::new(
                    field(&format!("template_params[{i}]")),
                    format!("`{name}` is not one of {}", MESSAGE_FIELDS.join(", ")),
                ));
            }
        }
        if !(1..=100).contains(&self.param_max_chars) {
            return Err(FieldError::new(field("param_max_chars"), "must be 1 to 100"));
        }
        let region = self.region.trim();
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
            return Err(FieldError::new(field("region"), "is a Tencent Cloud region such as ap-guangzhou"));
        }
        self.region = region.to_owned();
        Ok(self)
    }
}

/// Operators paste the whole webhook URL where only its key is wanted (WeCom answers 93000); take the key out.
fn key_from_url(value: &str, query_key: &str) -> String {
    let value = value.trim();
    match url::Url::parse(value) {
        Ok(url) => url
            .query_pairs()
            .find(|(k, _)| k == query_key)
            .map(|(_, v)| v.into_owned())
            .or_else(|| url.path_segments().and_then(|mut s| s.next_back().map(str::to_owned)))
            .unwrap_or_default(),
        Err(_) => value.to_owned(),
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WecomRobotSettings {
    webhook_key: Option<String>,
    /// WeCom user ids to mention (`@all` allowed).
    #[serde(default)]
    mentioned_list: Vec<String>,
    /// Phone numbers to mention (`@all` allowed).
    #[serde(default)]
    mentioned_mobile_list: Vec<String>,
}

impl WecomRobotSettings {
    fn check(mut self) -> Result<Self, FieldError> {
        let key = key_from_url(&required("webhook_key", self.webhook_key.take())?, "key");
        token_like("webhook_key", &key, 128)?;
        self.webhook_key = Some(key);
        list("mentioned_list", &self.mentioned_list, 0, 50)?;
        list("mentioned_mobile_list", &self.mentioned_mobile_list, 0, 50)?;
        Ok(self)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DingtalkRobotSettings {
    access_token: Option<String>,
    /// The `SEC…` signing secret, when the robot uses 加签.
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    at_mobiles: Vec<String>,
    #[serde(default)]
    at_all: bool,
}

impl DingtalkRobotSettings {
    fn check(mut self) -> Result<Self, FieldError> {
        let token = key_from_url(&required("access_token", self.access_token.take())?, "access_token");
        token_like("access_token", &token, 128)?;
        self.access_token = Some(token);
        if let Some(secret) = self.secret.take().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
            if !secret.starts_with("SEC") {
                return Err(FieldError::new(field("secret"), "DingTalk signing secrets start with SEC"));
            }
            self.secret = Some(secret);
        }
        list("at_mobiles", &self.at_mobiles, 0, 50)?;
        Ok(self)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeishuRobotSettings {
    hook_token: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    at_user_ids: Vec<String>,
    /// `feishu` (open.feishu.cn) or `lark` (open.larksuite.com).
    #[serde(default = "default_feishu_domain")]
    domain: String,
}

fn default_feishu_domain() -> String {
    "feishu".to_owned()
}

impl FeishuRobotSettings {
    fn check(mut self) -> Result<Self, FieldError> {
        let token = key_from_url(&required("hook_token", self.hook_token.take())?, "");
        token_like("hook_token", &token, 128)?;
        self.hook_token = Some(token);
        self.secret = self.secret.take().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        list("at_user_ids", &self.at_user_ids, 0, 50)?;
        if !matches!(self.domain.as_str(), "feishu" | "lark") {
            return Err(FieldError::new(field("domain"), "is `feishu` or `lark`"));
        }
        Ok(self)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookSettings {
    url: String,
    /// `whsec_` + base64 of 24–64 random bytes (Standard Webhooks).
    secret: Option<String>,
}

impl WebhookSettings {
    fn check(mut self) -> Result<Self, FieldError> {
        use base64::Engine as _;
        self.url = outgoing_url("url", &self.url)?;
        let secret = required("secret", self.secret.take())?;
        let decoded = secret
            .strip_prefix("whsec_")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .filter(|bytes| (24..=64).contains(&bytes.len()));
        if decoded.is_none() {
            return Err(FieldError::new(
                field("secret"),
                "is `whsec_` followed by 24 to 64 random bytes in base64 (Standard Webhooks)",
            ));
        }
        self.secret = Some(secret);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(kind: ChannelKind, settings: Value) -> Result<SplitSettings, FieldError> {
        validate_settings(kind, settings)
    }

    #[test]
    fn email_preset_fills_in_and_password_is_secret() {
        let split = check(
            ChannelKind::Email,
            json!({"preset": "163", "username": "alerts@163.com", "password": "AUTHCODE", "from": "风控 <alerts@163.com>", "to": ["ops@example.com"]}),
        )
        .expect("valid");
        assert_eq!(split.public["host"], "smtp.163.com");
        assert_eq!(split.public["port"], 465);
        assert_eq!(split.public["security"], "tls");
        assert!(!split.public.contains_key("password"));
        assert_eq!(split.secrets["password"], "AUTHCODE");
    }

    #[test]
    fn email_rules() {
        let e = check(
            ChannelKind::Email,
            json!({"preset": "163", "username": "alerts@163.com", "password": "x", "from": "other@163.com", "to": ["a@b.cn"]}),
        )
        .expect_err("163 sender rule");
        assert_eq!(e.field, "settings.from");
        let e = check(
            ChannelKind::Email,
            json!({"host": "smtp.example.com", "security": "none", "from": "a@b.cn", "to": ["a@b.cn"]}),
        )
        .expect_err("cleartext");
        assert_eq!(e.field, "settings.security");
        assert!(
            check(
                ChannelKind::Email,
                json!({"host": "127.0.0.1", "port": 2525, "security": "none", "from": "a@b.cn", "to": ["a@b.cn"]})
            )
            .is_ok()
        );
        let e =
            check(ChannelKind::Email, json!({"host": "smtp.example.com", "from": "a@b.cn", "to": ["a@b.cn", "nope"]}))
                .expect_err("bad to");
        assert_eq!(e.field, "settings.to[1]");
        let e = check(
            ChannelKind::Email,
            json!({"host": "smtp.example.com", "from": "a@b.cn", "to": ["a@b.cn"], "pasword": "x"}),
        )
        .expect_err("unknown key");
        assert!(e.message.contains("pasword"), "{e:?}");
        let e = check(ChannelKind::Email, json!({"host": "smtp.example.com", "from": "a@b.cn", "to": "a@b.cn"}))
            .expect_err("type");
        assert_eq!(e.field, "settings.to");
        assert!(check(ChannelKind::Email, json!([1])).is_err());
    }

    #[test]
    fn sms_numbers_are_normalised() {
        let split = check(
            ChannelKind::TencentSms,
            json!({"secret_id": "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "secret_key": "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
                   "sdk_app_id": "1400006666", "sign_name": "腾讯云", "template_id": "1110",
                   "phone_numbers": ["13800138000", "+86 138-0013-8001", "008613800138002"]}),
        )
        .expect("valid");
        assert_eq!(split.public["phone_numbers"], json!(["+8613800138000", "+8613800138001", "+8613800138002"]));
        assert_eq!(split.public["region"], "ap-guangzhou");
        assert!(split.secrets.contains_key("secret_key"));
        let e = check(
            ChannelKind::TencentSms,
            json!({"secret_id": "AKID", "secret_key": "k", "sdk_app_id": "1400006666", "sign_name": "x", "template_id": "1", "phone_numbers": ["12345"]}),
        )
        .expect_err("bad number");
        assert_eq!(e.field, "settings.phone_numbers[0]");
    }

    #[test]
    fn robots_take_keys_out_of_pasted_urls() {
        let split = check(
            ChannelKind::WecomRobot,
            json!({"webhook_key": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"}),
        )
        .expect("valid");
        assert_eq!(split.secrets["webhook_key"], "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa");
        let split = check(
            ChannelKind::FeishuRobot,
            json!({"hook_token": "https://open.feishu.cn/open-apis/bot/v2/hook/abc-123"}),
        )
        .expect("valid");
        assert_eq!(split.secrets["hook_token"], "abc-123");
        let e = check(ChannelKind::DingtalkRobot, json!({"access_token": "t0k", "secret": "nope"})).expect_err("SEC");
        assert_eq!(e.field, "settings.secret");
    }

    #[test]
    fn webhook_secret_format() {
        assert!(
            check(
                ChannelKind::Webhook,
                json!({"url": "https://hooks.example.com/x", "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"})
            )
            .is_ok()
        );
        let e = check(ChannelKind::Webhook, json!({"url": "https://hooks.example.com/x", "secret": "C2FVsBQI"}))
            .expect_err("prefix");
        assert_eq!(e.field, "settings.secret");
        let e = check(
            ChannelKind::Webhook,
            json!({"url": "http://hooks.example.com/x", "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}),
        )
        .expect_err("http");
        assert_eq!(e.field, "settings.url");
    }

    #[test]
    fn credentials_follow_their_destination() {
        let normalised = |kind, settings: Value| {
            let split = check(kind, settings).expect("valid");
            let mut all = split.public;
            all.extend(split.secrets);
            all
        };
        let email = |host: &str, port: u16| json!({"host": host, "port": port, "username": "a@b.cn", "password": "AUTH", "from": "a@b.cn", "to": ["ops@b.cn"]});
        let before = normalised(ChannelKind::Email, email("smtp.example.com", 465));
        let moved = normalised(ChannelKind::Email, email("evil.example.net", 465));
        assert_eq!(credentials_to_clear(ChannelKind::Email, &before, &moved, &[]), ["password"]);
        assert!(credentials_to_clear(ChannelKind::Email, &before, &moved, &["password".into()]).is_empty());
        let port = normalised(ChannelKind::Email, email("smtp.example.com", 587));
        assert_eq!(credentials_to_clear(ChannelKind::Email, &before, &port, &[]), ["password"]);
        let mut recipients = email("smtp.example.com", 465);
        recipients["to"] = json!(["other@b.cn"]);
        let recipients = normalised(ChannelKind::Email, recipients);
        assert!(credentials_to_clear(ChannelKind::Email, &before, &recipients, &[]).is_empty());
        // The same host written differently (a preset filling in what was there) is no change.
        let same = normalised(
            ChannelKind::Email,
            json!({"preset": "163", "username": "a@163.com", "password": "AUTH", "from": "a@163.com", "to": ["o@b.cn"]}),
        );
        let explicit = normalised(
            ChannelKind::Email,
            json!({"host": "smtp.163.com", "port": 465, "security": "tls", "username": "a@163.com", "password": "AUTH", "from": "a@163.com", "to": ["o@b.cn"]}),
        );
        assert!(credentials_to_clear(ChannelKind::Email, &same, &explicit, &[]).is_empty());

        let hook = |url: &str| json!({"url": url, "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"});
        let before = normalised(ChannelKind::Webhook, hook("https://hooks.example.com/a"));
        let after = normalised(ChannelKind::Webhook, hook("https://hooks.example.com/b"));
        assert_eq!(credentials_to_clear(ChannelKind::Webhook, &before, &after, &[]), ["secret"]);

        let feishu = |token: &str, domain: &str| json!({"hook_token": token, "secret": "s", "domain": domain});
        let before = normalised(ChannelKind::FeishuRobot, feishu("t1", "feishu"));
        let lark = normalised(ChannelKind::FeishuRobot, feishu("t1", "lark"));
        assert_eq!(credentials_to_clear(ChannelKind::FeishuRobot, &before, &lark, &[]), ["hook_token", "secret"]);
        let other_robot = normalised(ChannelKind::FeishuRobot, feishu("t2", "feishu"));
        assert_eq!(
            credentials_to_clear(ChannelKind::FeishuRobot, &before, &other_robot, &["hook_token".into()]),
            ["secret"]
        );
    }

    #[test]
    fn kinds_round_trip() {
        for kind in ChannelKind::ALL {
            assert_eq!(ChannelKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ChannelKind::parse("fax"), None);
    }
}
