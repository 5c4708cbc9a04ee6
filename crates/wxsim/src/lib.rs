//! A simulator of WeChat Pay (service-provider mode), the WeChat official-account API, Tencent Cloud SMS, and the
//! WeCom, DingTalk and Feishu chat robots, plus a receiver for Standard Webhooks.
//!
//! It speaks the real protocols — RSA signatures checked both ways, AES-GCM callbacks, TC3-HMAC-SHA256, the robots'
//! HMAC schemes (checked with the `protocols` crate, which wxrisk's senders sign with) — keeps state the way the
//! real services do (complaint states, idempotent refunds, token lifetimes, per-minute limits), calls back
//! registered URLs on WeChat's retry schedule, and injects faults on demand. Tests, `wxrisk sim` and `wxrisk demo`
//! drive it over its JSON control API under `/_sim/`.
//!
//! One listener serves every service: WeChat Pay under `/v3/…`, the official account under `/cgi-bin/…`, SMS at
//! `POST /` (TC3), WeCom at `/cgi-bin/webhook/send`, DingTalk at `/robot/send`, Feishu at
//! `/open-apis/bot/v2/hook/{token}`, webhook receivers at `/webhooks/{name}`.

// Handlers return a ready error answer (`Result<_, Response>`); its size is irrelevant at a simulator's rates.
#![allow(clippy::result_large_err)]

pub mod clock;
pub mod keys;

mod callbacks;
mod control;
mod faults;
mod official_account;
mod robots;
mod sms;
mod state;
mod wxpay;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

pub use callbacks::DeliveryOptions;
use clock::SimClock;
use keys::{Identity, KeysError, PublicKeyIdentity, SignMode};
use state::State;

/// The default service provider: `1900000100`, as in WeChat's examples.
pub const DEFAULT_SP_MCHID: &str = "1900000100";
pub const DEFAULT_APPID: &str = "wxd678efh567hg6787";
pub const DEFAULT_PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0119000001002026112700000000000001";

/// How to build a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// The service provider's mchid (every request's `Authorization` must name it).
    pub sp_mchid: String,
    pub appid: String,
    /// 32 ASCII characters; generated when `None`.
    pub apiv3_key: Option<String>,
    /// The provider's merchant API key and certificate (PEM); generated when `None`.
    pub merchant: Option<(String, String)>,
    /// WeChat Pay's platform key and certificate (PEM); generated when `None`.
    pub platform: Option<(String, String)>,
    /// The private key behind the WeChat Pay public key (PEM); generated when `None`.
    pub public_key: Option<String>,
    pub public_key_id: String,
    pub sign_mode: SignMode,
    /// Callback retry waits are WeChat's schedule times this factor (1.0 real; tests use ~0.001).
    pub callback_time_scale: f64,
    /// How long WeChat takes to answer a callback before it counts as failed.
    pub callback_timeout: Duration,
    /// Simulated time from a refund request to its success.
    pub refund_delay: Duration,
}

impl SimConfig {
    /// Use (or create) the keys kept in `dir`.
    pub fn with_key_dir(mut self, dir: &std::path::Path) -> Result<Self, SimError> {
        let keys = keys::KeyDir::load_or_create(dir, &self.sp_mchid)?;
        self.merchant = Some(keys.merchant);
        self.platform = Some(keys.platform);
        self.public_key = Some(keys.public_key);
        self.apiv3_key = Some(keys.apiv3_key);
        Ok(self)
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            sp_mchid: DEFAULT_SP_MCHID.into(),
            appid: DEFAULT_APPID.into(),
            apiv3_key: None,
            merchant: None,
            platform: None,
            public_key: None,
            public_key_id: DEFAULT_PUBLIC_KEY_ID.into(),
            sign_mode: SignMode::Certificate,
            callback_time_scale: 1.0,
            callback_timeout: Duration::from_secs(5),
            refund_delay: Duration::from_secs(60),
        }
    }
}

/// What a provider configures to use this simulator as its WeChat Pay.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ProviderSetup {
    pub wechatpay_base_url: String,
    pub mchid: String,
    pub appid: String,
    pub merchant_cert_serial: String,
    pub merchant_private_key_pem: String,
    pub merchant_cert_pem: String,
    pub platform_cert_serial: String,
    pub platform_cert_pem: String,
    pub wechatpay_public_key_id: String,
    pub wechatpay_public_key_pem: String,
    pub apiv3_key: String,
    pub sign_mode: SignMode,
}

/// Key material in use.
#[derive(Debug)]
pub(crate) struct Keys {
    pub merchant: Identity,
    /// Oldest first; the last is the newest, used to sign.
    pub platform: Vec<Identity>,
    pub public_key: PublicKeyIdentity,
    pub mode: SignMode,
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Sim {
    pub config: SimConfig,
    pub base_url: String,
    pub apiv3_key: String,
    pub clock: SimClock,
    pub keys: RwLock<Keys>,
    pub state: Mutex<State>,
    pub http: reqwest::Client,
    pub deliveries_due: Notify,
}

impl Sim {
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn setup(&self) -> ProviderSetup {
        let keys = self.keys();
        let platform = keys.platform.last().cloned();
        ProviderSetup {
            wechatpay_base_url: self.base_url.clone(),
            mchid: self.config.sp_mchid.clone(),
            appid: self.config.appid.clone(),
            merchant_cert_serial: keys.merchant.serial.clone(),
            merchant_private_key_pem: keys.merchant.key_pem.clone(),
            merchant_cert_pem: keys.merchant.cert_pem.clone(),
            platform_cert_serial: platform.as_ref().map(|p| p.serial.clone()).unwrap_or_default(),
            platform_cert_pem: platform.map(|p| p.cert_pem).unwrap_or_default(),
            wechatpay_public_key_id: keys.public_key.id.clone(),
            wechatpay_public_key_pem: keys.public_key.public_pem.clone(),
            apiv3_key: self.apiv3_key.clone(),
            sign_mode: keys.mode,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Keys(#[from] KeysError),
    #[error("the APIv3 key must be 32 ASCII letters or digits")]
    Apiv3Key,
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("HTTP client: {0}")]
    Http(String),
}

/// A running simulator.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    sim: Arc<Sim>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Simulator {
    /// Start serving. Key generation (when keys are not given) takes a moment.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        let apiv3_key = match &config.apiv3_key {
            Some(key) if key.len() == 32 && key.bytes().all(|b| b.is_ascii_alphanumeric()) => key.clone(),
            Some(_) => return Err(SimError::Apiv3Key),
            None => wechatpay::crypto::random_alphanumeric(32).map_err(|_| SimError::Apiv3Key)?,
        };
        let merchant = match &config.merchant {
            Some((key, cert)) => Identity::from_pem(key, cert)?,
            None => Identity::generate("wxrisk simulated service provider", &config.sp_mchid)?,
        };
        let platform = match &config.platform {
            Some((key, cert)) => Identity::from_pem(key, cert)?,
            None => Identity::generate("Tenpay.com", "Tenpay.com Root CA")?,
        };
        let public_key = match &config.public_key {
            Some(key) => PublicKeyIdentity::from_pem(&config.public_key_id, key)?,
            None => PublicKeyIdentity::generate(&config.public_key_id)?,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| SimError::Listen { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| SimError::Listen { addr: config.listen, source })?;
        let http = reqwest::Client::builder()
            .timeout(config.callback_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SimError::Http(e.to_string()))?;
        let sim = Arc::new(Sim {
            base_url: format!("http://{addr}"),
            apiv3_key,
            clock: SimClock::default(),
            keys: RwLock::new(Keys { merchant, platform: vec![platform], public_key, mode: config.sign_mode }),
            state: Mutex::new(State::default()),
            http,
            deliveries_due: Notify::new(),
            config,
        });
        let router = axum::Router::new()
            .merge(wxpay::router(&sim))
            .merge(official_account::router())
            .merge(sms::router())
            .merge(robots::router())
            .fallback(wxpay::not_found)
            .layer(axum::middleware::from_fn_with_state(sim.clone(), faults::inject))
            .nest("/_sim", control::router())
            .with_state(sim.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
                tracing::error!(%error, "simulator server failed");
            }
        });
        let ticker = tokio::spawn(callbacks::run(sim.clone()));
        tracing::info!(%addr, "WeChat Pay simulator listening");
        Ok(Self { addr, sim, stop: Some(stop), tasks: vec![server, ticker] })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.sim.base_url.clone()
    }

    /// What a provider configures to use this simulator.
    pub fn provider(&self) -> ProviderSetup {
        self.sim.setup()
    }

    /// Stop serving and calling back.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
