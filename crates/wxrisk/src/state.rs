//! Everything a request handler or a job needs, passed explicitly: no globals.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::jobs::JobRegistry;
use crate::metrics::Metrics;
use crate::secrets::Keyring;
use crate::store::Store;
use crate::wechat::WechatClients;

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
    guarded_http: reqwest::Client,
    wechat: WechatClients,
    rejections: RejectionBudget,
    intake_guards: crate::intake::IntakeGuards,
    inbox: std::sync::OnceLock<crate::intake::Inbox>,
}

/// Refused callbacks written to the rejection log per second at most: a flood of forgeries must not become a
/// flood of database writes (every refusal is still counted in the metrics).
#[derive(Debug, Default)]
pub struct RejectionBudget(std::sync::Mutex<(i64, u32)>);

impl RejectionBudget {
    pub const PER_SECOND: u32 = 20;

    /// Whether one more rejection may be logged in the second `now_ms` falls in.
    pub fn take(&self, now_ms: i64) -> bool {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let second = now_ms.div_euclid(1000);
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 += 1;
        slot.1 <= Self::PER_SECOND
    }
}

impl AppState {
    /// Fails only when an HTTP client cannot be built (no TLS backend).
    pub fn new(
        config: Config,
        store: Store,
        clock: SharedClock,
        keyring: Keyring,
        job_registry: JobRegistry,
    ) -> Result<Self, reqwest::Error> {
        // Notification services get one shared client: bounded time, and redirects are answers, not detours.
        let builder = || {
            reqwest::Client::builder()
                .timeout(config.notify.timeout)
                .connect_timeout(config.notify.timeout.min(std::time::Duration::from_secs(5)))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("wxrisk/", env!("CARGO_PKG_VERSION")))
        };
        let http = builder().build()?;
        // Destinations from channel settings: only addresses the guard checked, and no proxy (a proxy would
        // resolve the name itself, out of the guard's sight).
        let resolver =
            crate::notify::destinations::GuardedResolver { allow_private: config.notify.allow_private_destinations };
        let guarded_http = builder().no_proxy().dns_resolver(Arc::new(resolver)).build()?;
        Ok(Self(Arc::new(Inner {
            config,
            store,
            clock,
            keyring,
            metrics: Metrics::default(),
            job_registry,
            job_wakeup: Arc::new(Notify::new()),
            http,
            guarded_http,
            wechat: WechatClients::default(),
            rejections: RejectionBudget::default(),
            intake_guards: crate::intake::IntakeGuards::default(),
            inbox: std::sync::OnceLock::new(),
        })))
    }

    /// WeChat Pay clients, one per provider.
    pub fn wechat(&self) -> &WechatClients {
        &self.0.wechat
    }

    /// The callbacks' writer, started on first use (inside the runtime).
    pub fn inbox(&self) -> &crate::intake::Inbox {
        self.0.inbox.get_or_init(|| crate::intake::Inbox::start(self.0.store.clone(), self.0.job_wakeup.clone()))
    }

    pub fn rejection_budget(&self) -> &RejectionBudget {
        &self.0.rejections
    }

    /// The callback door's in-memory guards (warning rate limit, certificate downloads started).
    pub fn intake_guards(&self) -> &crate::intake::IntakeGuards {
        &self.0.intake_guards
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

    /// The HTTP client for the notification services the operator configured (`notify.*` addresses).
    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    /// The HTTP client for destinations written in channel settings (webhook URLs): it connects only to
    /// addresses `notify::destinations` let through, and never through a proxy.
    pub fn guarded_http(&self) -> &reqwest::Client {
        &self.0.guarded_http
    }

    /// Notified after this process commits new due jobs, so an idle worker starts at once.
    pub fn job_wakeup(&self) -> &Arc<Notify> {
        &self.0.job_wakeup
    }
}
