//! One WeChat Pay client per provider, built from its stored configuration (secrets opened here, nowhere else)
//! and kept while the provider is unchanged.
//!
//! Contract: [`WechatClients::get`] answers from memory for [`RECHECK`] after a provider was last looked up, then
//! compares the provider's `updated_at` (one indexed read) and rebuilds the client when it changed — so an edit
//! made through another instance takes effect here within seconds. A client's clock is always the system clock:
//! WeChat Pay checks request timestamps against real time even when the app runs on a test clock.
//!
//! A provider id that names no provider is remembered as unknown for [`UNKNOWN_FOR`] (by the app's clock), so a
//! flood of callbacks to `/callbacks/{id}/…` with made-up ids costs one database read per id and minute, not one
//! per request. Creating a provider through this process forgets that memory for its id at once
//! ([`WechatClients::forget`]); a provider created through another instance (or `wxrisk` commands) is found here
//! at most [`UNKNOWN_FOR`] later — WeChat Pay retries a refused callback for about a day, so nothing is lost. At
//! most [`MAX_UNKNOWN`] ids are remembered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret as _;
use wechatpay::{Apiv3Key, Client, ClientConfig, Credentials, PlatformCertificate, RsaPrivateKey, WechatPayPublicKey};

use crate::state::AppState;
use crate::store::StoreError;
use crate::store::providers::{self, ProviderRow};
use crate::store::secrets::{PROVIDER_APIV3_KEY, PROVIDER_PRIVATE_KEY};

/// How long a cached client is used without looking at the provider row again.
pub const RECHECK: Duration = Duration::from_secs(5);
/// How long a provider id that names no provider is answered from memory.
pub const UNKNOWN_FOR: Duration = Duration::from_secs(60);
/// Most unknown ids remembered at once (the memory of an id-guessing flood stays bounded).
pub const MAX_UNKNOWN: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The stored configuration cannot make a client (a key that does not open or parse).
    #[error("provider {provider_id} is misconfigured: {message}")]
    Config { provider_id: i64, message: String },
}

#[derive(Clone)]
struct Cached {
    updated_at: i64,
    checked: Instant,
    client: Client,
}

/// The clients of all providers this process has talked to.
#[derive(Default)]
pub struct WechatClients {
    cache: Mutex<HashMap<i64, Cached>>,
    /// The ids of all providers, for the legacy callback path (refreshed like a client).
    all: Mutex<Option<(Instant, Vec<i64>)>>,
    /// Provider ids found to name no provider, each until this time (app clock, Unix ms).
    unknown: Mutex<HashMap<i64, i64>>,
    /// Reads of a provider row made by [`WechatClients::get`] (observability, and tests of the memory above).
    lookups: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for WechatClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatClients").finish_non_exhaustive()
    }
}

impl WechatClients {
    /// The provider's client; `None` when there is no such provider.
    pub async fn get(&self, state: &AppState, provider_id: i64) -> Result<Option<Client>, ClientError> {
        let cached = self.lock().get(&provider_id).cloned();
        if let Some(cached) = &cached
            && cached.checked.elapsed() < RECHECK
        {
            return Ok(Some(cached.client.clone()));
        }
        let now = state.now_ms();
        if cached.is_none() && self.known_unknown(provider_id, now) {
            return Ok(None);
        }
        let mut conn = state.store().conn().await?;
        self.lookups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(updated_at) = providers::updated_at(&mut conn, provider_id).await? else {
            self.lock().remove(&provider_id);
            self.remember_unknown(provider_id, now);
            return Ok(None);
        };
        if let Some(cached) = cached.filter(|c| c.updated_at == updated_at) {
            let mut cache = self.lock();
            if let Some(entry) = cache.get_mut(&provider_id) {
                entry.checked = Instant::now();
            }
            return Ok(Some(cached.client));
        }
        let Some(provider) = providers::get(&mut conn, provider_id).await? else { return Ok(None) };
        let certificates = providers::platform_certificates(&mut conn, provider_id).await?;
        drop(conn);
        let client = build(state, &provider, certificates.iter().map(|c| c.pem.as_str()))?;
        self.lock().insert(
            provider_id,
            Cached { updated_at: provider.updated_at, checked: Instant::now(), client: client.clone() },
        );
        Ok(Some(client))
    }

    /// Every provider's id (for the legacy callback path, which does not name its provider).
    pub async fn provider_ids(&self, state: &AppState) -> Result<Vec<i64>, ClientError> {
        if let Some((at, ids)) = self.all.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && at.elapsed() < RECHECK
        {
            return Ok(ids.clone());
        }
        let mut conn = state.store().conn().await?;
        let ids = providers::ids(&mut conn).await?;
        *self.all.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), ids.clone()));
        Ok(ids)
    }

    /// Forget a provider's client (after an edit in this process, so the next call rebuilds at once), and that
    /// its id was unknown (after creating it, so its callbacks are taken at once).
    pub fn forget(&self, provider_id: i64) {
        self.lock().remove(&provider_id);
        self.unknown.lock().unwrap_or_else(|p| p.into_inner()).remove(&provider_id);
        *self.all.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// How many times [`WechatClients::get`] has read a provider row.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn known_unknown(&self, provider_id: i64, now: i64) -> bool {
        let unknown = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        unknown.get(&provider_id).is_some_and(|until| now < *until)
    }

    fn remember_unknown(&self, provider_id: i64, now: i64) {
        let mut unknown = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        if unknown.len() >= MAX_UNKNOWN {
            unknown.retain(|_, until| now < *until);
            if unknown.len() >= MAX_UNKNOWN {
                // Still full of live entries: start over rather than grow (costs reads, never memory).
                unknown.clear();
            }
        }
        let ms = i64::try_from(UNKNOWN_FOR.as_millis()).unwrap_or(60_000);
        unknown.insert(provider_id, now.saturating_add(ms));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Build a client from a provider row and its platform certificates (PEM).
pub fn build<'a>(
    state: &AppState,
    provider: &ProviderRow,
    certificates: impl Iterator<Item = &'a str>,
) -> Result<Client, ClientError> {
    let config_error = |message: String| ClientError::Config { provider_id: provider.id, message };
    let keyring = state.keyring();
    let private_pem = keyring
        .open_string(&PROVIDER_PRIVATE_KEY.row(provider.id), &provider.merchant_private_key_sealed)
        .map_err(|e| config_error(format!("merchant private key: {e}")))?;
    let private_key =
        RsaPrivateKey::from_pem(private_pem.expose_secret()).map_err(|e| config_error(format!("merchant key: {e}")))?;
    let apiv3 = keyring
        .open_string(&PROVIDER_APIV3_KEY.row(provider.id), &provider.apiv3_key_sealed)
        .map_err(|e| config_error(format!("APIv3 key: {e}")))?;
    let apiv3_key =
        Apiv3Key::new(apiv3.expose_secret().as_bytes()).map_err(|e| config_error(format!("APIv3 key: {e}")))?;
    let public_key = match (&provider.wechatpay_public_key_id, &provider.wechatpay_public_key_pem) {
        (Some(id), Some(pem)) => Some(
            WechatPayPublicKey::from_pem(id.clone(), pem)
                .map_err(|e| config_error(format!("WeChat Pay public key: {e}")))?,
        ),
        _ => None,
    };
    let mut certs = Vec::new();
    for pem in certificates {
        certs.push(PlatformCertificate::from_pem(pem).map_err(|e| config_error(format!("platform certificate: {e}")))?);
    }
    let config = ClientConfig {
        base_url: state.config().wechatpay_base_url.clone(),
        clock: wechatpay::client::system_clock(),
        ..ClientConfig::default()
    };
    let credentials = Credentials {
        mchid: provider.mchid.clone(),
        merchant_cert_serial: provider.merchant_cert_serial.clone(),
        private_key: Arc::new(private_key),
        apiv3_key,
    };
    Client::new(config, credentials, public_key, certs).map_err(|e| config_error(e.to_string()))
}

/// What registering one callback URL did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Registration {
    /// The URL WeChat Pay has now.
    pub url: String,
    /// What it had before (`None`: nothing).
    pub before: Option<String>,
    /// `created`, `updated` or `unchanged`.
    pub action: String,
}

/// Both URLs, registered.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Registrations {
    pub complaints: Registration,
    pub violations: Registration,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("no provider has id {0}")]
    UnknownProvider(i64),
    /// `public_url` is missing or cannot be registered at WeChat Pay.
    #[error("{0}")]
    PublicUrl(String),
    #[error("WeChat Pay: {0}")]
    Wechat(#[from] wechatpay::Error),
}

/// The callback URLs this provider should have at WeChat Pay: `(complaints, violations)`.
pub fn expected_urls(state: &AppState, provider_id: i64) -> Result<(String, String), RegistrationError> {
    let config = state.config();
    let Some(public) = &config.public_url else {
        return Err(RegistrationError::PublicUrl(
            "set WXRISK_PUBLIC_URL (the https address WeChat Pay reaches) before registering callbacks".into(),
        ));
    };
    // WeChat Pay calls https only; plain http is accepted for the simulator on this machine (both loopback).
    let loopback = |url: &url::Url| {
        url.host_str()
            .is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()))
    };
    if public.scheme() != "https" && !(loopback(public) && loopback(&config.wechatpay_base_url)) {
        return Err(RegistrationError::PublicUrl(format!(
            "WXRISK_PUBLIC_URL is {public}: WeChat Pay only calls https:// URLs; set the https address of this service"
        )));
    }
    let base = config.public_base().unwrap_or_default();
    Ok((format!("{base}/callbacks/{provider_id}/complaints"), format!("{base}/callbacks/{provider_id}/violations")))
}

/// What WeChat Pay has now for this provider: `(complaint URL, violation URL)`.
pub async fn current_urls(
    state: &AppState,
    provider_id: i64,
) -> Result<(Option<String>, Option<String>), RegistrationError> {
    let client =
        state.wechat().get(state, provider_id).await?.ok_or(RegistrationError::UnknownProvider(provider_id))?;
    let complaints = client.complaint_notification_url().await?.map(|u| u.url);
    let violations = client.violation_notification_url().await?.map(|u| u.notify_url);
    Ok((complaints, violations))
}

/// Create or update both callback URLs at WeChat Pay from `public_url`; leave them alone when already right.
pub async fn register_callbacks(state: &AppState, provider_id: i64) -> Result<Registrations, RegistrationError> {
    let (complaint_url, violation_url) = expected_urls(state, provider_id)?;
    let client =
        state.wechat().get(state, provider_id).await?.ok_or(RegistrationError::UnknownProvider(provider_id))?;
    let before = client.complaint_notification_url().await?.map(|u| u.url);
    let complaints = match &before {
        Some(url) if *url == complaint_url => "unchanged",
        Some(_) => {
            client.set_complaint_notification_url(&complaint_url, true).await?;
            "updated"
        }
        None => {
            client.set_complaint_notification_url(&complaint_url, false).await?;
            "created"
        }
    };
    let complaints = Registration { url: complaint_url, before, action: complaints.to_owned() };
    let before = client.violation_notification_url().await?.map(|u| u.notify_url);
    let violations = match &before {
        Some(url) if *url == violation_url => "unchanged",
        Some(_) => {
            client.set_violation_notification_url(&violation_url, true).await?;
            "updated"
        }
        None => {
            client.set_violation_notification_url(&violation_url, false).await?;
            "created"
        }
    };
    let violations = Registration { url: violation_url, before, action: violations.to_owned() };
    Ok(Registrations { complaints, violations })
}
