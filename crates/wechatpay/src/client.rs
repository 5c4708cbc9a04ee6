//! The HTTP client of one service provider: signs every request, verifies every signed answer, keeps the
//! provider's platform certificates fresh, and turns failures into classified [`Error`]s.
//!
//! Contract:
//! - the URL signed is the path and query exactly as sent; bodies are sent as the exact bytes signed;
//! - `Accept`, `User-Agent` and, when the provider has a WeChat Pay public key, `Wechatpay-Serial: PUB_KEY_ID_…`
//!   go on every request; a body carrying encrypted fields names its encryption key in `Wechatpay-Serial`;
//! - 2xx answers are verified (image downloads excepted: WeChat does not sign them); an unknown certificate
//!   serial triggers one certificate download, at most once a minute ([`Client::claim_unknown_serial_refresh`]
//!   lets a receiver check that before it starts one);
//! - platform certificates are downloaded when none is held and every 12 hours — never for a provider that has a
//!   public key and no certificates; a downloaded certificate already expired (by the client's clock) is not
//!   taken, and expired ones held are dropped at each download; a certificate given to [`Client::new`] that has
//!   expired is kept only so that a signature made with it is refused by name (`CertificateExpired`), never used;
//! - a connection failure to the default host is retried once on the backup host `api2.mch.weixin.qq.com`.
//!
//! Each provider has its own `Client` (cheap to clone); nothing is shared between providers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::callback::{self, CallbackError, Notification};
use crate::crypto::Apiv3Key;
use crate::error::{ApiError, Error, Result, TransportKind};
use crate::keys::RsaPrivateKey;
use crate::sign::{Signer, request_nonce};
use crate::verify::{PlatformCertificate, PlatformKeys, SignatureHeaders, Verified, VerifyError, WechatPayPublicKey};

pub const DEFAULT_BASE_URL: &str = "https://api.mch.weixin.qq.com";
pub const BACKUP_BASE_URL: &str = "https://api2.mch.weixin.qq.com";
const DEFAULT_HOST: &str = "api.mch.weixin.qq.com";
const BACKUP_HOST: &str = "api2.mch.weixin.qq.com";

/// Unix seconds now; injected so tests can move the clock.
pub type UnixClock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> UnixClock {
    Arc::new(|| time::OffsetDateTime::now_utc().unix_timestamp())
}

/// How the client talks to WeChat Pay.
#[derive(Clone)]
pub struct ClientConfig {
    /// `https://api.mch.weixin.qq.com`, or the simulator's URL.
    pub base_url: url::Url,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub user_agent: String,
    pub clock: UnixClock,
    /// How often platform certificates are downloaded again (WeChat recommends under 12 hours).
    pub certificate_refresh: Duration,
    /// Least time between downloads caused by an unknown serial.
    pub unknown_serial_refresh: Duration,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url: url::Url::parse(DEFAULT_BASE_URL).unwrap_or_else(|_| unreachable!("valid constant URL")),
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            user_agent: format!("wechatpay-rust/{} (+wxrisk)", env!("CARGO_PKG_VERSION")),
            clock: system_clock(),
            certificate_refresh: Duration::from_secs(12 * 3600),
            unknown_serial_refresh: Duration::from_secs(60),
        }
    }
}

/// A service provider's credentials.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The provider's own mchid (never a sub-merchant's).
    pub mchid: String,
    /// Serial of the merchant API certificate.
    pub merchant_cert_serial: String,
    pub private_key: Arc<RsaPrivateKey>,
    pub apiv3_key: Apiv3Key,
}

/// A request to send.
#[derive(Debug)]
pub(crate) struct ApiRequest {
    pub method: Method,
    /// Path and query, already encoded, as they go on the wire (`/v3/...?...`), or an absolute URL on the
    /// provider's host (a complaint `media_url`, used verbatim).
    pub target: String,
    pub body: Body,
    /// The body carries fields encrypted for WeChat Pay.
    pub encrypted: bool,
    /// Verify the answer's signature (image downloads are unsigned).
    pub verify: bool,
}

#[derive(Debug)]
pub(crate) enum Body {
    Empty,
    Json(String),
    /// A multipart upload: the bytes, their content type, and the `meta` JSON that is signed instead.
    Multipart {
        bytes: Vec<u8>,
        content_type: String,
        meta: String,
    },
}

/// A 2xx answer.
#[derive(Debug)]
pub(crate) struct ApiResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

#[derive(Debug)]
struct RefreshState {
    last_download: Option<i64>,
    last_unknown_serial_download: Option<i64>,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    signer: Signer,
    apiv3_key: Apiv3Key,
    keys: PlatformKeys,
    refresh: Mutex<RefreshState>,
}

#[derive(Clone)]
pub struct Client(Arc<Inner>);

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("mchid", &self.0.signer.mchid())
            .field("base_url", &self.0.config.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for one provider. `public_key` and `certificates` are what the provider already has; certificates
    /// given here count as fresh now (the next scheduled download is 12 hours away, an unknown serial triggers one
    /// sooner). Without any, they are downloaded on first use — unless the provider has a public key.
    pub fn new(
        config: ClientConfig,
        credentials: Credentials,
        public_key: Option<WechatPayPublicKey>,
        certificates: Vec<PlatformCertificate>,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Transport { kind: TransportKind::Other, message: e.to_string() })?;
        let signer = Signer::new(credentials.mchid, credentials.merchant_cert_serial, credentials.private_key);
        let now = (config.clock)();
        for cert in certificates.iter().filter(|c| !c.is_valid_at(now)) {
            tracing::warn!(
                mchid = signer.mchid(),
                serial = %cert.serial,
                not_before = cert.not_before,
                not_after = cert.not_after,
                "platform certificate outside its validity: it will verify nothing"
            );
        }
        let refresh = RefreshState {
            last_download: (!certificates.is_empty()).then(|| (config.clock)()),
            last_unknown_serial_download: None,
        };
        Ok(Self(Arc::new(Inner {
            http,
            config,
            signer,
            apiv3_key: credentials.apiv3_key,
            keys: PlatformKeys::new(public_key, certificates),
            refresh: Mutex::new(refresh),
        })))
    }

    pub fn mchid(&self) -> &str {
        self.0.signer.mchid()
    }

    pub fn keys(&self) -> &PlatformKeys {
        &self.0.keys
    }

    pub fn apiv3_key(&self) -> &Apiv3Key {
        &self.0.apiv3_key
    }

    pub fn base_url(&self) -> &url::Url {
        &self.0.config.base_url
    }

    pub(crate) fn now(&self) -> i64 {
        (self.0.config.clock)()
    }

    /// Decrypt a sensitive field WeChat encrypted for this provider (a complaint's `payer_phone`).
    pub fn decrypt_sensitive(&self, ciphertext: &str) -> Result<String> {
        Ok(self.0.signer.key().decrypt_oaep_base64(ciphertext)?)
    }

    /// Encrypt a sensitive field for WeChat Pay; returns the key's serial (or `PUB_KEY_ID_…`) with it. The
    /// request carrying it must be sent with `encrypted: true`.
    pub fn encrypt_sensitive(&self, plaintext: &str) -> Result<(String, String)> {
        let (serial, key) =
            self.0.keys.encryption_key(self.now()).ok_or_else(|| {
                Error::Invalid("no WeChat Pay public key or platform certificate to encrypt with".into())
            })?;
        Ok((serial, key.encrypt_oaep_base64(plaintext)?))
    }

    /// Verify a callback; an unknown certificate serial triggers a certificate download (at most once a minute)
    /// and a second look.
    pub async fn verify_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Verified<Notification>, CallbackError> {
        match callback::verify_notification(&self.0.keys, headers, body, self.now()) {
            Err(CallbackError::Signature(e))
                if e.wants_certificate_refresh() && self.claim_unknown_serial_refresh() =>
            {
                if let Err(error) = self.refresh_certificates().await {
                    tracing::warn!(mchid = self.mchid(), %error, "platform certificate download failed");
                }
                callback::verify_notification(&self.0.keys, headers, body, self.now())
            }
            other => other,
        }
    }

    /// Whether a certificate download for an unknown serial may start now; when it may, the slot is taken (the
    /// next one is `unknown_serial_refresh` away). A receiver calls this before it starts a download in the
    /// background, so a flood of forged serials starts one download, not one per request.
    pub fn claim_unknown_serial_refresh(&self) -> bool {
        let now = self.now();
        let mut state = self.0.refresh.lock().unwrap_or_else(|p| p.into_inner());
        let gap = i64::try_from(self.0.config.unknown_serial_refresh.as_secs()).unwrap_or(i64::MAX);
        match state.last_unknown_serial_download {
            Some(last) if now.saturating_sub(last) < gap => false,
            _ => {
                state.last_unknown_serial_download = Some(now);
                true
            }
        }
    }

    /// Download platform certificates now and add them to the ones held. Returns the certificates held.
    // Boxed: a download is itself a request, whose verification may call for a download.
    pub fn refresh_certificates(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Vec<PlatformCertificate>>> + Send + '_>> {
        Box::pin(async move {
            let downloaded = self.download_certificates().await?;
            let now = self.now();
            for cert in downloaded {
                if cert.not_after < now {
                    tracing::warn!(mchid = self.mchid(), serial = %cert.serial, not_after = cert.not_after,
                        "WeChat Pay listed an expired platform certificate: not taken");
                    continue;
                }
                self.0.keys.add_certificate(cert);
            }
            for serial in self.0.keys.remove_expired(now) {
                tracing::info!(mchid = self.mchid(), %serial, "expired platform certificate dropped");
            }
            self.0.refresh.lock().unwrap_or_else(|p| p.into_inner()).last_download = Some(self.now());
            Ok(self.0.keys.certificates())
        })
    }

    /// Download when none is held (unless the provider uses the public key alone) or when 12 hours have passed.
    async fn ensure_certificates(&self) -> Result<()> {
        let keys = &self.0.keys;
        let has_certificates = keys.has_certificates();
        if keys.public_key().is_some() && !has_certificates {
            return Ok(());
        }
        let interval = i64::try_from(self.0.config.certificate_refresh.as_secs()).unwrap_or(i64::MAX);
        let last = self.0.refresh.lock().unwrap_or_else(|p| p.into_inner()).last_download;
        let due = match last {
            None => true,
            Some(at) => self.now().saturating_sub(at) >= interval,
        };
        if !due {
            return Ok(());
        }
        match self.refresh_certificates().await {
            Ok(_) => Ok(()),
            // Certificates in hand still verify; a failed refresh is retried on the next call.
            Err(error) if has_certificates || keys.public_key().is_some() => {
                tracing::warn!(mchid = self.mchid(), %error, "platform certificate refresh failed; using those held");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Send a request and return its 2xx answer, or the error.
    pub(crate) async fn execute(&self, request: ApiRequest) -> Result<ApiResponse> {
        let url = self.resolve(&request.target)?;
        if !request.target.starts_with("/v3/certificates") {
            self.ensure_certificates().await?;
        }
        let response = match self.send_once(&request, &url).await {
            Err(Error::Transport { kind: TransportKind::Connect, message }) => match backup_url(&url) {
                Some(backup) => {
                    tracing::warn!(mchid = self.mchid(), %message, "cannot reach WeChat Pay; trying the backup host");
                    self.send_once(&request, &backup).await?
                }
                None => return Err(Error::Transport { kind: TransportKind::Connect, message }),
            },
            other => other?,
        };
        if request.verify {
            self.verify_response(&response).await?;
        }
        Ok(response)
    }

    /// Build the absolute URL without touching the encoding of what the caller gave.
    fn resolve(&self, target: &str) -> Result<url::Url> {
        let base = &self.0.config.base_url;
        let url = if target.starts_with('/') {
            let joined = format!("{}{}", base.as_str().trim_end_matches('/'), target);
            url::Url::parse(&joined).map_err(|e| Error::Invalid(format!("bad URL {joined}: {e}")))?
        } else {
            let url = url::Url::parse(target).map_err(|e| Error::Invalid(format!("bad URL {target}: {e}")))?;
            // Our signed Authorization goes only to WeChat Pay (or its backup host).
            let same_host =
                url.host_str() == base.host_str() && url.port_or_known_default() == base.port_or_known_default();
            if !same_host && url.host_str() != Some(BACKUP_HOST) {
                return Err(Error::Invalid(format!(
                    "refusing to send a signed request to {}",
                    url.host_str().unwrap_or("?")
                )));
            }
            url
        };
        Ok(url)
    }

    async fn send_once(&self, request: &ApiRequest, url: &url::Url) -> Result<ApiResponse> {
        // The canonical URL is the path and query exactly as they will be serialised on the wire.
        let canonical = &url[url::Position::BeforePath..];
        let signed_body = match &request.body {
            Body::Empty => "",
            Body::Json(json) => json.as_str(),
            Body::Multipart { meta, .. } => meta.as_str(),
        };
        let nonce = request_nonce()?;
        let authorization =
            self.0.signer.authorization(request.method.as_str(), canonical, signed_body, self.now(), &nonce)?;
        let mut builder = self
            .0
            .http
            .request(request.method.clone(), url.clone())
            .header(http::header::AUTHORIZATION, authorization)
            .header(http::header::ACCEPT, "application/json");
        let serial = if request.encrypted {
            self.0.keys.encryption_key(self.now()).map(|(serial, _)| serial)
        } else {
            self.0.keys.request_serial().map(str::to_owned)
        };
        if let Some(serial) = serial {
            builder = builder.header("Wechatpay-Serial", serial);
        }
        builder = match &request.body {
            Body::Empty => builder,
            Body::Json(json) => builder.header(http::header::CONTENT_TYPE, "application/json").body(json.clone()),
            Body::Multipart { bytes, content_type, .. } => {
                builder.header(http::header::CONTENT_TYPE, content_type.as_str()).body(bytes.clone())
            }
        };
        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport_error)?.to_vec();
        if status.is_success() {
            return Ok(ApiResponse { headers, body });
        }
        Err(Error::Api(Box::new(api_error(status, &headers, &body))))
    }

    async fn verify_response(&self, response: &ApiResponse) -> Result<()> {
        let check = |keys: &PlatformKeys| -> std::result::Result<(), VerifyError> {
            let headers = SignatureHeaders::from_headers(&response.headers)?;
            keys.verify(&headers, &response.body, self.now())
        };
        match check(&self.0.keys) {
            Ok(()) => Ok(()),
            Err(e) if e.wants_certificate_refresh() && self.claim_unknown_serial_refresh() => {
                self.refresh_certificates().await?;
                check(&self.0.keys).map_err(Error::ResponseSignature)
            }
            Err(e) => Err(Error::ResponseSignature(e)),
        }
    }

    /// Send and parse a JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, request: ApiRequest) -> Result<T> {
        let response = self.execute(request).await?;
        serde_json::from_slice(&response.body)
            .map_err(|e| Error::Decode(format!("{e} in {}", truncate(&response.body))))
    }

    /// Send; the answer has no body (204).
    pub(crate) async fn no_content(&self, request: ApiRequest) -> Result<()> {
        self.execute(request).await.map(|_| ())
    }
}

/// The same request on WeChat's backup host, for a request to the main host that could not connect (the request
/// was not sent, so sending it elsewhere cannot do anything twice). Other hosts — the simulator — have no backup.
fn backup_url(url: &url::Url) -> Option<url::Url> {
    if url.host_str() != Some(DEFAULT_HOST) {
        return None;
    }
    let mut backup = url.clone();
    backup.set_host(Some(BACKUP_HOST)).ok()?;
    Some(backup)
}

fn transport_error(e: reqwest::Error) -> Error {
    let kind = if e.is_connect() {
        TransportKind::Connect
    } else if e.is_timeout() {
        TransportKind::Timeout
    } else {
        TransportKind::Other
    };
    // reqwest's Display omits the cause chain; the chain says why (refused, reset, DNS…).
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Transport { kind, message }
}

fn api_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        detail: Option<serde_json::Value>,
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let header = |name: &str| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
    let retry_after = header("Retry-After").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
    let (code, message, detail) = match parsed {
        Some(b) => (b.code, b.message, b.detail),
        None => (String::new(), truncate(body), None),
    };
    ApiError {
        status: status.as_u16(),
        code,
        message,
        detail,
        request_id: header("Request-ID"),
        retry_after,
        body: truncate(body),
    }
}

/// At most 2000 bytes of a body, as text, for errors and logs.
pub(crate) fn truncate(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.len() <= 2000 {
        return text.into_owned();
    }
    let mut end = 2000;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_main_host_fails_over() {
        let main =
            url::Url::parse("https://api.mch.weixin.qq.com/v3/refund/domestic/refunds/R%7C1?sub_mchid=1900000109")
                .expect("url");
        let backup = backup_url(&main).expect("backup");
        assert_eq!(
            backup.as_str(),
            "https://api2.mch.weixin.qq.com/v3/refund/domestic/refunds/R%7C1?sub_mchid=1900000109"
        );
        assert_eq!(backup_url(&url::Url::parse("http://127.0.0.1:9000/v3/certificates").expect("url")), None);
        assert_eq!(backup_url(&backup), None);
    }

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let body = "错".repeat(1000);
        let cut = truncate(body.as_bytes());
        assert!(cut.len() <= 2004 && cut.ends_with('…'));
    }
}
