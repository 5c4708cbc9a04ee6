//! Everything a request handler or a job needs, passed explicitly: no globals.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::jobs::JobRegistry;
use crate::metrics::Metrics;
use crate::secrets::Keyring;
use crate::store::Store;

#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: Config,
    store: Store,
    clock: SharedClock,
    keyring: Keyring,
    metrics: Metrics,
    job_registry: JobRegistry,
    job_wakeup: Arc<Notify>,
    http: reqwest::Client,
}

impl AppState {
    pub fn new(config: Config, store: Store, clock: SharedClock, keyring: Keyring, job_registry: JobRegistry) -> Self {
        // Notification services get one shared client: bounded time, and redirects are answers, not detours.
        let http = reqwest::Client::builder()
            .timeout(config.notify.timeout)
            .connect_timeout(config.notify.timeout.min(std::time::Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wxrisk/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self(Arc::new(Inner {
            config,
            store,
            clock,
            keyring,
            metrics: Metrics::default(),
            job_registry,
            job_wakeup: Arc::new(Notify::new()),
            http,
        }))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn now_ms(&self) -> i64 {
        self.0.clock.now_ms()
    }

    pub fn keyring(&self) -> &Keyring {
        &self.0.keyring
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn job_registry(&self) -> &JobRegistry {
        &self.0.job_registry
    }

    /// The HTTP client for notification services.
    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    /// Notified after this process commits new due jobs, so an idle worker starts at once.
    pub fn job_wakeup(&self) -> &Arc<Notify> {
        &self.0.job_wakeup
    }
}
