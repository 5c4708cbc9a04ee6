//! Typed configuration: the commented defaults embedded from `config.default.toml`, an optional TOML file, then
//! `WXRISK_*` environment variables.
//!
//! Contract: [`Config::load`] either returns a configuration whose every value has been checked, or a
//! [`ConfigError`] naming the setting (and its environment variable) and saying why it is wrong. The defaults
//! file lists every setting, so an environment variable naming no setting is an error too (a typo must not
//! silently fall back to a default), except the few `WXRISK_*` variables that are not settings.
//!
//! Why the layering is our own (~90 lines: `load`, `merge_file`, `apply_env`, `typed_env_value`) rather than a
//! library's, measured when it was reconsidered: with `config` 0.15 (maintained, same `toml` 1.x) the file was 19
//! lines shorter, but the checks that make up most of this code stay ours — config-rs takes unknown keys without a
//! word, and `deny_unknown_fields` through it names the field, not the setting and its variable — and it behaves
//! differently: it types a value by the field it lands in, so `"true"` becomes an integer 1 and a file's `"7"` a
//! number, and it splits lists only with `try_parsing`, which also turns a string setting's `007` into `7`.
//! `figment` 0.10 (dormant since 2024) adds 15 packages, among them a second `toml` (0.8 with `toml_edit`) and the
//! `pear` parser macros, and types environment values by their look as well. Here a value is typed after the
//! default it replaces (the defaults file names every setting), which is all the coercion a setting needs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The defaults, compiled in. `wxrisk config check` shows the merged result.
pub const DEFAULTS_TOML: &str = include_str!("../config.default.toml");

/// `WXRISK_*` variables that are read elsewhere and are not settings.
const NON_SETTING_VARS: &[&str] = &["WXRISK_CONFIG", "WXRISK_ROLE", "WXRISK_NEW_MASTER_KEY"];
/// Prefixes of `WXRISK_*` variables reserved for tests and tools.
const NON_SETTING_PREFIXES: &[&str] = &["WXRISK_TEST_", "WXRISK_SIM_", "WXRISK_DEMO_"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("setting `{setting}` ({env}): {reason}")]
    Invalid { setting: String, env: String, reason: String },
    #[error("environment variable {var} names no setting (see `wxrisk config check` for the list)")]
    UnknownEnv { var: String },
}

impl ConfigError {
    fn invalid(setting: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { setting: setting.to_owned(), env: env_name(setting), reason: reason.into() }
    }
}

/// `jobs.retry_schedule` → `WXRISK_JOBS__RETRY_SCHEDULE`.
pub fn env_name(setting: &str) -> String {
    format!("WXRISK_{}", setting.replace('.', "__").to_ascii_uppercase())
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Resolved: never empty.
    pub database_url: String,
    /// Without a trailing slash; `None` when not configured.
    pub public_url: Option<url::Url>,
    pub wechatpay_base_url: url::Url,
    /// `None`: use the key file in `data_dir`.
    pub master_key: Option<SecretString>,
    pub master_key_previous: Vec<SecretString>,
    /// Start even when a master key file is readable by group or others (default: refuse, naming the fix).
    pub allow_readable_master_key_file: bool,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub jobs: JobsConfig,
    pub notify: NotifyConfig,
    pub complaints: ComplaintsConfig,
    pub risk: RiskConfig,
    pub metrics: MetricsConfig,
    pub retention: RetentionConfig,
}

/// `/metrics`.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// The bearer token a scraper must send; `None`: `/metrics` is public.
    pub token: Option<SecretString>,
}

/// How long finished work is kept (see `workflow::retention` for what is deleted and why that is safe).
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Finished jobs with their attempts and deliveries, and inbound notifications, older than this many days are
    /// deleted; 7 to 3650.
    pub days: i64,
}

impl RetentionConfig {
    /// The retention in milliseconds.
    pub fn millis(&self) -> i64 {
        self.days.saturating_mul(86_400_000)
    }
}

#[derive(Debug, Clone)]
pub struct RiskConfig {
    /// 1–100.
    pub alert_score: i64,
}

/// Complaint intake, reconciliation and deadlines.
#[derive(Debug, Clone)]
pub struct ComplaintsConfig {
    /// `""` or a path prefix such as `/prod-wxservicerisk-api` (no trailing slash).
    pub legacy_prefix: String,
    pub callback_max_body_bytes: usize,
    pub rejection_log_size: i64,
    pub reconcile_interval: Duration,
    pub reconcile_backfill_days: i64,
    pub reply_deadline: Duration,
    pub resolve_deadline: Duration,
    pub due_soon: Duration,
    pub reply_per_minute: i64,
    pub history_per_minute: i64,
}

/// Where the notification channels' services are.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub wechat_api_base: url::Url,
    pub tencent_sms_endpoint: url::Url,
    pub wecom_base: url::Url,
    pub dingtalk_base: url::Url,
    pub feishu_base: url::Url,
    pub lark_base: url::Url,
    pub timeout: Duration,
    /// Let channels send to loopback, private, link-local and other non-public addresses (tests, the simulator,
    /// a receiver inside the operator's own network). Default false: a channel's settings cannot make wxrisk
    /// probe the network it runs in.
    pub allow_private_destinations: bool,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line per event; ANSI colours only when stderr is a terminal and `NO_COLOR` is unset or empty.
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub concurrency: usize,
    pub poll_interval: Duration,
    pub lease: Duration,
    pub timeout: Duration,
    pub retry_schedule: Vec<Duration>,
    pub retry_jitter: f64,
}

/// The file's shape; every field is in the defaults, so nothing here is optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    data_dir: PathBuf,
    database_url: String,
    public_url: String,
    wechatpay_base_url: String,
    master_key: SecretString,
    master_key_previous: SecretString,
    allow_readable_master_key_file: bool,
    log: RawLog,
    http: RawHttp,
    database: RawDatabase,
    jobs: RawJobs,
    notify: RawNotify,
    complaints: RawComplaints,
    risk: RawRisk,
    metrics: RawMetrics,
    retention: RawRetention,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    token: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    days: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRisk {
    alert_score: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComplaints {
    legacy_prefix: String,
    callback_max_body_bytes: u64,
    rejection_log_size: i64,
    reconcile_interval: String,
    reconcile_backfill_days: i64,
    reply_deadline: String,
    resolve_deadline: String,
    due_soon: String,
    reply_per_minute: i64,
    history_per_minute: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    wechat_api_base: String,
    tencent_sms_endpoint: String,
    wecom_base: String,
    dingtalk_base: String,
    feishu_base: String,
    lark_base: String,
    timeout: String,
    allow_private_destinations: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: String,
    format: LogFormat,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    max_body_bytes: u64,
    request_timeout: String,
    shutdown_grace: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    max_connections: u32,
    acquire_timeout: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJobs {
    concurrency: u32,
    poll_interval: String,
    lease: String,
    timeout: String,
    retry_schedule: Vec<String>,
    retry_jitter: f64,
}

impl Config {
    /// Load from the process environment and the file named by `--config`/`WXRISK_CONFIG`, or
    /// `./wxrisk.toml` when present.
    pub fn load_from_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let explicit = file.map(Path::to_path_buf).or_else(|| {
            env.iter()
                .find(|(k, _)| k == "WXRISK_CONFIG")
                .map(|(_, v)| PathBuf::from(v))
                .filter(|p| !p.as_os_str().is_empty())
        });
        let file = match explicit {
            Some(path) => Some(path),
            None => Some(PathBuf::from("wxrisk.toml")).filter(|p| p.exists()),
        };
        Self::load(file.as_deref(), env)
    }

    /// Defaults, then `file`, then `env` (pairs of variable name and value).
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut table: toml::Table = DEFAULTS_TOML.parse().map_err(|e: toml::de::Error| ConfigError::ParseFile {
            path: "<built-in defaults>".into(),
            message: e.to_string(),
        })?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::ReadFile { path: path.to_path_buf(), source })?;
            let overlay: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::ParseFile {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            merge_file(&mut table, overlay, "")?;
        }
        apply_env(&mut table, env)?;
        let raw: RawConfig = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let setting = e.path().to_string();
            ConfigError::invalid(&setting, e.into_inner().to_string())
        })?;
        raw.validate()
    }

    /// The effective configuration as TOML, secrets redacted (for `wxrisk config check`).
    pub fn redacted_toml(&self) -> String {
        let redact = |s: &Option<SecretString>, absent: &str| match s {
            Some(_) => "\"<redacted>\"".to_owned(),
            None => format!("\"\"  # {absent}"),
        };
        let durations =
            |d: &[Duration]| d.iter().map(|d| format!("\"{}\"", format_duration(*d))).collect::<Vec<_>>().join(", ");
        format!(
            "listen = \"{listen}\"\ndata_dir = {data_dir}\ndatabase_url = \"{db}\"\npublic_url = \"{public}\"\n\
             wechatpay_base_url = \"{wx}\"\nmaster_key = {mk}\nmaster_key_previous = {mkp}\n\
             allow_readable_master_key_file = {arkf}\n\n\
             [log]\nlevel = \"{level}\"\nformat = \"{format}\"\n\n\
             [http]\nmax_body_bytes = {body}\nrequest_timeout = \"{rt}\"\nshutdown_grace = \"{sg}\"\n\n\
             [database]\nmax_connections = {maxc}\nacquire_timeout = \"{acq}\"\n\n\
             [jobs]\nconcurrency = {conc}\npoll_interval = \"{poll}\"\nlease = \"{lease}\"\ntimeout = \"{timeout}\"\n\
             retry_schedule = [{sched}]\nretry_jitter = {jitter}\n\n\
             [notify]\nwechat_api_base = \"{oa}\"\ntencent_sms_endpoint = \"{sms}\"\nwecom_base = \"{wecom}\"\n\
             dingtalk_base = \"{ding}\"\nfeishu_base = \"{feishu}\"\nlark_base = \"{lark}\"\ntimeout = \"{ntimeout}\"\n\
             allow_private_destinations = {apd}\n\n\
             [complaints]\nlegacy_prefix = \"{prefix}\"\ncallback_max_body_bytes = {cbody}\nrejection_log_size = {rlog}\n\
             reconcile_interval = \"{rint}\"\nreconcile_backfill_days = {rback}\nreply_deadline = \"{rdl}\"\n\
             resolve_deadline = \"{sdl}\"\ndue_soon = \"{dsoon}\"\nreply_per_minute = {rpm}\n\
             history_per_minute = {hpm}\n\n[risk]\nalert_score = {ascore}\n\n[metrics]\ntoken = {mtoken}\n\n[retention]\ndays = {rdays}\n",
            listen = self.listen,
            data_dir = serde_json::Value::String(self.data_dir.display().to_string()),
            db = redact_url_password(&self.database_url),
            public = self.public_url.as_ref().map(|u| u.as_str().trim_end_matches('/').to_owned()).unwrap_or_default(),
            wx = self.wechatpay_base_url.as_str().trim_end_matches('/'),
            mk = redact(&self.master_key, &format!("key file {}", self.master_key_file().display())),
            mkp = if self.master_key_previous.is_empty() {
                "\"\"".to_owned()
            } else {
                format!("\"<redacted: {} key(s)>\"", self.master_key_previous.len())
            },
            arkf = self.allow_readable_master_key_file,
            level = self.log.level,
            format = match self.log.format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            },
            body = self.http.max_body_bytes,
            rt = format_duration(self.http.request_timeout),
            sg = format_duration(self.http.shutdown_grace),
            maxc = self.database.max_connections,
            acq = format_duration(self.database.acquire_timeout),
            conc = self.jobs.concurrency,
            poll = format_duration(self.jobs.poll_interval),
            lease = format_duration(self.jobs.lease),
            timeout = format_duration(self.jobs.timeout),
            sched = durations(&self.jobs.retry_schedule),
            jitter = self.jobs.retry_jitter,
            oa = self.notify.wechat_api_base.as_str().trim_end_matches('/'),
            sms = self.notify.tencent_sms_endpoint.as_str().trim_end_matches('/'),
            wecom = self.notify.wecom_base.as_str().trim_end_matches('/'),
            ding = self.notify.dingtalk_base.as_str().trim_end_matches('/'),
            feishu = self.notify.feishu_base.as_str().trim_end_matches('/'),
            lark = self.notify.lark_base.as_str().trim_end_matches('/'),
            ntimeout = format_duration(self.notify.timeout),
            apd = self.notify.allow_private_destinations,
            prefix = self.complaints.legacy_prefix,
            cbody = self.complaints.callback_max_body_bytes,
            rlog = self.complaints.rejection_log_size,
            rint = format_duration(self.complaints.reconcile_interval),
            rback = self.complaints.reconcile_backfill_days,
            rdl = format_duration(self.complaints.reply_deadline),
            sdl = format_duration(self.complaints.resolve_deadline),
            dsoon = format_duration(self.complaints.due_soon),
            rpm = self.complaints.reply_per_minute,
            hpm = self.complaints.history_per_minute,
            ascore = self.risk.alert_score,
            mtoken = redact(&self.metrics.token, "/metrics is public"),
            rdays = self.retention.days,
        )
    }

    /// Where the master key lives when it is not given in the configuration.
    pub fn master_key_file(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }

    /// The public URL without a trailing slash, when configured.
    pub fn public_base(&self) -> Option<String> {
        self.public_url.as_ref().map(|u| u.as_str().trim_end_matches('/').to_owned())
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let listen: SocketAddr = self.listen.trim().parse().map_err(|_| {
            ConfigError::invalid("listen", format!("`{}` is not an address like 127.0.0.1:8080", self.listen))
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir", "must not be empty"));
        }
        let database_url = resolve_database_url(self.database_url.trim(), &self.data_dir)?;
        let public_url = match self.public_url.trim() {
            "" => None,
            text => {
                let url = parse_base_url("public_url", text)?;
                // WeChat Pay calls https only; plain http is for the simulator and tests on this machine.
                if url.scheme() != "https" && !is_loopback(&url) {
                    return Err(ConfigError::invalid(
                        "public_url",
                        format!("`{text}` must be https: WeChat Pay calls nothing else"),
                    ));
                }
                Some(url)
            }
        };
        let wechatpay_base_url = parse_base_url("wechatpay_base_url", self.wechatpay_base_url.trim())?;
        let master_key = Some(self.master_key).filter(|k| !k.expose_secret().trim().is_empty());
        if let Some(key) = &master_key {
            decode_master_key(key.expose_secret()).map_err(|reason| ConfigError::invalid("master_key", reason))?;
        }
        let mut master_key_previous = Vec::new();
        for part in self.master_key_previous.expose_secret().split(',').map(str::trim).filter(|p| !p.is_empty()) {
            decode_master_key(part).map_err(|reason| ConfigError::invalid("master_key_previous", reason))?;
            master_key_previous.push(SecretString::from(part.to_owned()));
        }
        if self.log.level.trim().is_empty() {
            return Err(ConfigError::invalid("log.level", "must not be empty"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::invalid("log.level", e.to_string()))?;

        let duration = |setting: &str, text: &str| parse_duration(text).map_err(|r| ConfigError::invalid(setting, r));
        let http = HttpConfig {
            max_body_bytes: usize::try_from(self.http.max_body_bytes)
                .ok()
                .filter(|n| (1024..=64 * 1024 * 1024).contains(n))
                .ok_or_else(|| ConfigError::invalid("http.max_body_bytes", "must be between 1024 and 67108864"))?,
            request_timeout: duration("http.request_timeout", &self.http.request_timeout)?,
            shutdown_grace: duration("http.shutdown_grace", &self.http.shutdown_grace)?,
        };
        if http.request_timeout.is_zero() {
            return Err(ConfigError::invalid("http.request_timeout", "must be more than zero"));
        }
        let database = DatabaseConfig {
            max_connections: self.database.max_connections,
            acquire_timeout: duration("database.acquire_timeout", &self.database.acquire_timeout)?,
        };
        if !(1..=1000).contains(&database.max_connections) {
            return Err(ConfigError::invalid("database.max_connections", "must be between 1 and 1000"));
        }
        let mut retry_schedule = Vec::with_capacity(self.jobs.retry_schedule.len());
        for entry in &self.jobs.retry_schedule {
            retry_schedule.push(duration("jobs.retry_schedule", entry)?);
        }
        let jobs = JobsConfig {
            concurrency: usize::try_from(self.jobs.concurrency).unwrap_or(usize::MAX),
            poll_interval: duration("jobs.poll_interval", &self.jobs.poll_interval)?,
            lease: duration("jobs.lease", &self.jobs.lease)?,
            timeout: duration("jobs.timeout", &self.jobs.timeout)?,
            retry_schedule,
            retry_jitter: self.jobs.retry_jitter,
        };
        if !(1..=256).contains(&jobs.concurrency) {
            return Err(ConfigError::invalid("jobs.concurrency", "must be between 1 and 256"));
        }
        if jobs.poll_interval < Duration::from_millis(10) {
            return Err(ConfigError::invalid("jobs.poll_interval", "must be at least 10ms"));
        }
        if jobs.timeout.is_zero() {
            return Err(ConfigError::invalid("jobs.timeout", "must be more than zero"));
        }
        if jobs.lease <= jobs.timeout {
            return Err(ConfigError::invalid(
                "jobs.lease",
                format!(
                    "must be longer than jobs.timeout ({}), or a slow attempt could run twice",
                    format_duration(jobs.timeout)
                ),
            ));
        }
        if !(0.0..=1.0).contains(&jobs.retry_jitter) {
            return Err(ConfigError::invalid("jobs.retry_jitter", "must be between 0 and 1"));
        }
        let n = &self.notify;
        let notify = NotifyConfig {
            wechat_api_base: parse_base_url("notify.wechat_api_base", n.wechat_api_base.trim())?,
            tencent_sms_endpoint: parse_base_url("notify.tencent_sms_endpoint", n.tencent_sms_endpoint.trim())?,
            wecom_base: parse_base_url("notify.wecom_base", n.wecom_base.trim())?,
            dingtalk_base: parse_base_url("notify.dingtalk_base", n.dingtalk_base.trim())?,
            feishu_base: parse_base_url("notify.feishu_base", n.feishu_base.trim())?,
            lark_base: parse_base_url("notify.lark_base", n.lark_base.trim())?,
            timeout: duration("notify.timeout", &n.timeout)?,
            allow_private_destinations: n.allow_private_destinations,
        };
        if notify.timeout.is_zero() {
            return Err(ConfigError::invalid("notify.timeout", "must be more than zero"));
        }
        let complaints = self.complaints.validate(&duration)?;
        if !(1..=100).contains(&self.risk.alert_score) {
            return Err(ConfigError::invalid("risk.alert_score", "must be 1 to 100"));
        }
        let risk = RiskConfig { alert_score: self.risk.alert_score };
        let metrics = self.metrics.validate()?;
        // At least a week: WeChat redelivers a notification for about a day, and intake ignores notifications
        // created more than `days - 1` days ago (their records may be gone), so the margin must stay wide.
        if !(7..=3650).contains(&self.retention.days) {
            return Err(ConfigError::invalid("retention.days", "must be 7 to 3650"));
        }
        let retention = RetentionConfig { days: self.retention.days };
        Ok(Config {
            listen,
            data_dir: self.data_dir,
            database_url,
            public_url,
            wechatpay_base_url,
            master_key,
            master_key_previous,
            allow_readable_master_key_file: self.allow_readable_master_key_file,
            log: LogConfig { level: self.log.level, format: self.log.format },
            http,
            database,
            jobs,
            notify,
            complaints,
            risk,
            metrics,
            retention,
        })
    }
}

impl RawMetrics {
    fn validate(self) -> Result<MetricsConfig, ConfigError> {
        let text = self.token.expose_secret().trim();
        if text.is_empty() {
            return Ok(MetricsConfig { token: None });
        }
        // It travels in a header and guards the service's figures: long, and nothing a header cannot carry.
        if !(16..=256).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::invalid(
                "metrics.token",
                "must be empty or 16 to 256 visible ASCII characters (e.g. `openssl rand -hex 32`)",
            ));
        }
        Ok(MetricsConfig { token: Some(SecretString::from(text.to_owned())) })
    }
}

impl RawComplaints {
    fn validate(
        self,
        duration: &dyn Fn(&str, &str) -> Result<Duration, ConfigError>,
    ) -> Result<ComplaintsConfig, ConfigError> {
        let prefix = self.legacy_prefix.trim().trim_end_matches('/').to_owned();
        if !prefix.is_empty()
            && (!prefix.starts_with('/') || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b)))
        {
            return Err(ConfigError::invalid(
                "complaints.legacy_prefix",
                "must be empty or a path like /prod-wxservicerisk-api",
            ));
        }
        if !(1024..=1_048_576).contains(&self.callback_max_body_bytes) {
            return Err(ConfigError::invalid("complaints.callback_max_body_bytes", "must be 1024 to 1048576"));
        }
        if !(10..=1_000_000).contains(&self.rejection_log_size) {
            return Err(ConfigError::invalid("complaints.rejection_log_size", "must be 10 to 1000000"));
        }
        // WeChat's list covers at most 30 days per query; a longer backfill is walked in 30-day windows.
        if !(1..=365).contains(&self.reconcile_backfill_days) {
            return Err(ConfigError::invalid("complaints.reconcile_backfill_days", "must be 1 to 365"));
        }
        let config = ComplaintsConfig {
            legacy_prefix: prefix,
            callback_max_body_bytes: usize::try_from(self.callback_max_body_bytes).unwrap_or(65536),
            rejection_log_size: self.rejection_log_size,
            reconcile_interval: duration("complaints.reconcile_interval", &self.reconcile_interval)?,
            reconcile_backfill_days: self.reconcile_backfill_days,
            reply_deadline: duration("complaints.reply_deadline", &self.reply_deadline)?,
            resolve_deadline: duration("complaints.resolve_deadline", &self.resolve_deadline)?,
            due_soon: duration("complaints.due_soon", &self.due_soon)?,
            reply_per_minute: self.reply_per_minute,
            history_per_minute: self.history_per_minute,
        };
        if config.reply_per_minute < 1 || config.history_per_minute < 1 {
            return Err(ConfigError::invalid("complaints.reply_per_minute", "per-minute limits must be at least 1"));
        }
        if config.reconcile_interval < Duration::from_secs(60) {
            return Err(ConfigError::invalid("complaints.reconcile_interval", "must be at least 1m"));
        }
        if config.reply_deadline.is_zero() || config.resolve_deadline.is_zero() {
            return Err(ConfigError::invalid("complaints.reply_deadline", "deadlines must be more than zero"));
        }
        if config.due_soon >= config.reply_deadline {
            return Err(ConfigError::invalid("complaints.due_soon", "must be shorter than complaints.reply_deadline"));
        }
        Ok(config)
    }
}

fn resolve_database_url(text: &str, data_dir: &Path) -> Result<String, ConfigError> {
    if text.is_empty() {
        return Ok(format!("sqlite://{}?mode=rwc", data_dir.join("wxrisk.db").display()));
    }
    let scheme = text.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => {
            // Create the file when missing, like the default does.
            if text.contains("mode=") {
                Ok(text.to_owned())
            } else if text.contains('?') {
                Ok(format!("{text}&mode=rwc"))
            } else {
                Ok(format!("{text}?mode=rwc"))
            }
        }
        "postgres" | "postgresql" => {
            url::Url::parse(text).map_err(|e| ConfigError::invalid("database_url", format!("not a valid URL: {e}")))?;
            Ok(text.to_owned())
        }
        _ => Err(ConfigError::invalid(
            "database_url",
            "must start with sqlite:// or postgres:// (the two supported databases)",
        )),
    }
}

fn parse_base_url(setting: &str, text: &str) -> Result<url::Url, ConfigError> {
    let url =
        url::Url::parse(text).map_err(|e| ConfigError::invalid(setting, format!("`{text}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::invalid(setting, format!("`{text}` must be an absolute http(s) URL")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::invalid(setting, "must not carry a query string or fragment"));
    }
    Ok(url)
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A master key is 32 bytes in standard or URL-safe base64.
pub fn decode_master_key(text: &str) -> Result<[u8; 32], String> {
    use base64::Engine as _;
    let text = text.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
        .map_err(|_| "must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)".to_owned())?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| format!("must decode to exactly 32 bytes, got {}", bytes.len()))
}

/// `"500ms"`, `"15s"`, `"2m"`, `"1h"`, `"1d"`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 15s, 2m or 1h"))?;
    let secs = |mul: u64| n.checked_mul(mul).map(Duration::from_secs);
    let d = match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        _ => None,
    };
    d.ok_or_else(|| format!("`{text}` is not a duration like 15s, 2m or 1h"))
}

pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    match s {
        s if s != 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s != 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s != 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Hide the password of a database URL for printing.
pub fn redact_url_password(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("REDACTED"));
            url.to_string()
        }
        _ => text.to_owned(),
    }
}

/// Overlay the file's table on the defaults; a key the defaults do not have is an error.
fn merge_file(base: &mut toml::Table, overlay: toml::Table, prefix: &str) -> Result<(), ConfigError> {
    for (key, value) in overlay {
        let setting = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over)) => merge_file(inner, over, &setting)?,
            (Some(toml::Value::Table(_)), _) => {
                return Err(ConfigError::invalid(&setting, "is a section ([...]), not a value"));
            }
            (Some(slot), value) => *slot = value,
            (None, _) => return Err(ConfigError::invalid(&setting, "is not a known setting")),
        }
    }
    Ok(())
}

/// Apply `WXRISK_*` variables, typing each value after the default it replaces.
fn apply_env(table: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
    let mut vars: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with("WXRISK_")).collect();
    vars.sort();
    for (var, value) in vars {
        if NON_SETTING_VARS.contains(&var.as_str()) || NON_SETTING_PREFIXES.iter().any(|p| var.starts_with(p)) {
            continue;
        }
        let path: Vec<String> = var["WXRISK_".len()..].split("__").map(str::to_ascii_lowercase).collect();
        let setting = path.join(".");
        let Some((last, sections)) = path.split_last() else {
            continue;
        };
        let mut current = &mut *table;
        for section in sections {
            match current.get_mut(section) {
                Some(toml::Value::Table(inner)) => current = inner,
                _ => return Err(ConfigError::UnknownEnv { var }),
            }
        }
        let Some(slot) = current.get_mut(last) else {
            return Err(ConfigError::UnknownEnv { var });
        };
        *slot = typed_env_value(slot, &value).map_err(|reason| ConfigError::invalid(&setting, reason))?;
    }
    Ok(())
}

fn typed_env_value(default: &toml::Value, text: &str) -> Result<toml::Value, String> {
    Ok(match default {
        toml::Value::String(_) => toml::Value::String(text.to_owned()),
        toml::Value::Integer(_) => {
            toml::Value::Integer(text.trim().parse().map_err(|_| format!("expected a whole number, got `{text}`"))?)
        }
        toml::Value::Float(_) => {
            toml::Value::Float(text.trim().parse().map_err(|_| format!("expected a number, got `{text}`"))?)
        }
        toml::Value::Boolean(_) => toml::Value::Boolean(match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(format!("expected true or false, got `{text}`")),
        }),
        toml::Value::Array(_) => toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.trim_matches('"').to_owned()))
                .collect(),
        ),
        _ => return Err("cannot be set from the environment".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_load() {
        let config = Config::load(None, Vec::new()).expect("defaults are valid");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.database_url, "sqlite://./data/wxrisk.db?mode=rwc");
        assert_eq!(config.wechatpay_base_url.as_str(), "https://api.mch.weixin.qq.com/");
        assert!(config.master_key.is_none());
        assert_eq!(config.jobs.retry_schedule.len(), 8);
    }

    #[test]
    fn env_overrides_and_types() {
        let config = Config::load(
            None,
            env(&[
                ("WXRISK_LISTEN", "0.0.0.0:9000"),
                ("WXRISK_JOBS__CONCURRENCY", "7"),
                ("WXRISK_JOBS__RETRY_SCHEDULE", "1s, 2m"),
                ("WXRISK_JOBS__RETRY_JITTER", "0"),
                ("WXRISK_DATA_DIR", "/tmp/x"),
                ("WXRISK_TEST_DATABASE_URL", "postgres://ignored"),
                ("WXRISK_CONFIG", "ignored"),
                ("OTHER", "ignored"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.jobs.concurrency, 7);
        assert_eq!(config.jobs.retry_schedule, vec![Duration::from_secs(1), Duration::from_secs(120)]);
        assert_eq!(config.database_url, "sqlite:///tmp/x/wxrisk.db?mode=rwc");
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        Config::load(None, env(pairs)).expect_err("must fail").to_string()
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let e = err(&[("WXRISK_LISTEN", "nonsense")]);
        assert!(e.contains("WXRISK_LISTEN") && e.contains("nonsense"), "{e}");
        let e = err(&[("WXRISK_JOBS__CONCURRENCY", "many")]);
        assert!(e.contains("jobs.concurrency") && e.contains("WXRISK_JOBS__CONCURRENCY"), "{e}");
        let e = err(&[("WXRISK_DATABASE_URL", "mysql://x")]);
        assert!(e.contains("database_url"), "{e}");
        let e = err(&[("WXRISK_PUBLIC_URL", "ftp://x")]);
        assert!(e.contains("public_url"), "{e}");
        let e = err(&[("WXRISK_PUBLIC_URL", "http://risk.example.com")]);
        assert!(e.contains("public_url") && e.contains("https"), "{e}");
        assert!(Config::load(None, env(&[("WXRISK_PUBLIC_URL", "http://127.0.0.1:8080")])).is_ok());
        let e = err(&[("WXRISK_MASTER_KEY", "c2hvcnQ=")]);
        assert!(e.contains("master_key") && e.contains("32 bytes"), "{e}");
        assert!(!e.contains("c2hvcnQ"), "the key itself must not be echoed: {e}");
        let e = err(&[("WXRISK_LISTN", "1")]);
        assert!(e.contains("WXRISK_LISTN") && e.contains("names no setting"), "{e}");
        let e = err(&[("WXRISK_JOBS__LEASE", "10s"), ("WXRISK_JOBS__TIMEOUT", "20s")]);
        assert!(e.contains("jobs.lease"), "{e}");
        let e = err(&[("WXRISK_JOBS__POLL_INTERVAL", "soon")]);
        assert!(e.contains("jobs.poll_interval") && e.contains("soon"), "{e}");
        let e = err(&[("WXRISK_LOG__FORMAT", "xml")]);
        assert!(e.contains("log.format"), "{e}");
    }

    #[test]
    fn file_overrides_and_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("wxrisk-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let path = dir.join("wxrisk.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9999\"\n[jobs]\nconcurrency = 2\n").expect("write");
        let config = Config::load(Some(&path), env(&[("WXRISK_JOBS__CONCURRENCY", "3")])).expect("valid");
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.jobs.concurrency, 3, "environment wins over the file");
        std::fs::write(&path, "[jobs]\nconcurency = 2\n").expect("write");
        let e = Config::load(Some(&path), Vec::new()).expect_err("typo").to_string();
        assert!(e.contains("jobs.concurency"), "{e}");
        std::fs::write(&path, "[jobs]\nconcurrency = \"two\"\n").expect("write");
        let e = Config::load(Some(&path), Vec::new()).expect_err("type").to_string();
        assert!(e.contains("jobs.concurrency"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// What a layering library would loosen (see the module doc): a value is typed after the setting's default, a
    /// string setting keeps its text as given, and a list is split on commas.
    #[test]
    fn values_are_typed_after_their_default() {
        let e = err(&[("WXRISK_JOBS__CONCURRENCY", "true")]);
        assert!(e.contains("jobs.concurrency") && e.contains("whole number"), "{e}");
        let config = Config::load(None, env(&[("WXRISK_LOG__LEVEL", "007"), ("WXRISK_JOBS__CONCURRENCY", " 7 ")]))
            .expect("valid");
        assert_eq!((config.log.level.as_str(), config.jobs.concurrency), ("007", 7));
        let dir = std::env::temp_dir().join(format!("wxrisk-config-typed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let path = dir.join("wxrisk.toml");
        std::fs::write(&path, "[jobs]\nconcurrency = \"7\"\n").expect("write");
        let e = Config::load(Some(&path), Vec::new()).expect_err("a string for a number").to_string();
        assert!(e.contains("jobs.concurrency"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn redaction() {
        let config = Config::load(
            None,
            env(&[
                ("WXRISK_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
                ("WXRISK_DATABASE_URL", "postgres://app:hunter2@db:5432/wxrisk"),
            ]),
        )
        .expect("valid");
        let text = config.redacted_toml();
        assert!(!text.contains("AAECAwQF"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"));
        assert!(format!("{config:?}").find("AAECAwQF").is_none());
        let with_token =
            Config::load(None, env(&[("WXRISK_METRICS__TOKEN", "scrape-0123456789abcdef")])).expect("valid");
        let text = with_token.redacted_toml();
        assert!(
            !text.contains("scrape-0123456789abcdef") && text.contains("[metrics]\ntoken = \"<redacted>\""),
            "{text}"
        );
        assert!(!format!("{with_token:?}").contains("scrape-0123456789abcdef"));
        let e = err(&[("WXRISK_METRICS__TOKEN", "short")]);
        assert!(e.contains("metrics.token") && e.contains("16 to 256"), "{e}");
        // The printed form is itself a valid configuration file.
        let reparsed: toml::Table = text.parse().expect("valid TOML");
        assert!(reparsed.contains_key("jobs"));
    }
}
