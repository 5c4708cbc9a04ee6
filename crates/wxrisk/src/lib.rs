//! wxrisk: WeChat Pay complaint and violation handling for service providers.
//!
//! [`App::builder`] turns a [`config::Config`] into a running service: it opens the master keyring (a key file
//! others can read stops it here), connects to the database, applies migrations, moves secrets sealed in the old
//! format to row binding (once), binds the listener (tests hand in their own, bound to port 0) and, by
//! role, serves HTTP, works the job queue, or both, until its cancellation token fires.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod intake;
pub mod jobs;
pub mod metrics;
pub mod notify;
pub mod private_files;
pub mod secrets;
pub mod state;
pub mod store;
pub mod web;
pub mod wechat;
pub mod workflow;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::jobs::{JobHandler, JobRegistry, Worker};
use crate::secrets::Keyring;
use crate::state::AppState;
use crate::store::Store;

/// What one process does; several processes with different roles can share one PostgreSQL database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// HTTP (API, callbacks, health) and the job worker.
    All,
    /// HTTP only.
    Web,
    /// The job worker only; no listener.
    Worker,
}

pub struct AppBuilder {
    config: Config,
    clock: SharedClock,
    registry: JobRegistry,
    listener: Option<TcpListener>,
    role: Role,
    worker_id: Option<String>,
}

impl std::fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppBuilder").field("role", &self.role).finish_non_exhaustive()
    }
}

impl AppBuilder {
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Serve on this listener instead of binding `config.listen`.
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    pub fn job_handler(mut self, kind: impl Into<String>, handler: impl JobHandler) -> Self {
        self.registry.register(kind, handler);
        self
    }

    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    pub async fn build(self) -> anyhow::Result<App> {
        let keyring = Keyring::load(&self.config).context("cannot open the master key")?;
        if self.config.data_dir.is_dir() {
            private_files::warn_if_dir_is_open(&self.config.data_dir);
        }
        let store = Store::connect(&self.config.database_url, &self.config.database).await.with_context(|| {
            format!("cannot open the database {}", config::redact_url_password(&self.config.database_url))
        })?;
        let applied = store::migrate::run(&store, self.clock.now_ms()).await.context("cannot migrate the database")?;
        if !applied.is_empty() {
            let versions = applied.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            tracing::info!(versions, backend = store.backend().name(), "database migrated");
        }
        bind_secrets_to_rows(&store, &keyring, self.clock.now_ms()).await?;
        let listener = match (self.role, self.listener) {
            (Role::Worker, _) => None,
            (_, Some(listener)) => Some(listener),
            (_, None) => Some(TcpListener::bind(self.config.listen).await.with_context(|| {
                format!("cannot listen on {} (setting `listen`, WXRISK_LISTEN)", self.config.listen)
            })?),
        };
        let worker_id = self.worker_id.unwrap_or_else(default_worker_id);
        let state = AppState::new(self.config, store, self.clock, keyring, self.registry)
            .context("cannot build the HTTP clients")?;
        Ok(App { state, listener, role: self.role, shutdown: CancellationToken::new(), worker_id })
    }
}

/// Move secrets of the old format to row binding (the first time), and report old-format values found after that.
pub async fn bind_secrets_to_rows(store: &Store, keyring: &Keyring, now: i64) -> anyhow::Result<()> {
    let report =
        store::secrets::bind_to_rows(store, keyring, now).await.context("cannot move stored secrets to row binding")?;
    if report.resealed > 0 {
        tracing::info!(resealed = report.resealed, "stored secrets re-sealed for their rows (format v2)");
    }
    for slot in &report.refused {
        tracing::warn!(
            %slot,
            "a stored secret is in the old row-unbound format (v1), which is refused since the move to row binding; \
             set it again"
        );
    }
    Ok(())
}

/// The job kinds every wxrisk process runs.
fn default_jobs() -> JobRegistry {
    let mut registry = JobRegistry::default();
    registry.register(notify::JOB_KIND, notify::handler::NotifyHandler);
    workflow::register(&mut registry);
    registry
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
    let host = if host.is_empty() { "wxrisk".to_owned() } else { host };
    format!("{host}:{}", std::process::id())
}

pub struct App {
    state: AppState,
    listener: Option<TcpListener>,
    role: Role,
    shutdown: CancellationToken,
    worker_id: String,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("role", &self.role).field("addr", &self.addr()).finish_non_exhaustive()
    }
}

impl App {
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder {
            config,
            clock: Arc::new(SystemClock),
            registry: default_jobs(),
            listener: None,
            role: Role::All,
            worker_id: None,
        }
    }

    /// The bound address (`None` for a worker-only process).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Cancel this token to stop the app gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// A worker on this app's state, for tests that drive the queue step by step.
    pub fn worker(&self) -> Worker {
        Worker::new(self.state.clone(), self.worker_id.clone())
    }

    /// Serve and/or work until the shutdown token is cancelled; then stop taking requests and jobs, and wait up to
    /// `http.shutdown_grace` for those in flight.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let grace = self.state.config().http.shutdown_grace;
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(listener) = self.listener {
            let router = web::router(self.state.clone());
            let token = self.shutdown.clone();
            // `addr=127.0.0.1:8080`: displayed, not Debug-formatted (`Some(…)`); an Option field is left out when empty.
            tracing::info!(addr = listener.local_addr().ok().map(tracing::field::display), "listening");
            let base = match self.state.config().public_base() {
                Some(base) => base,
                None => format!("http://{}", listener.local_addr().map(|a| a.to_string()).unwrap_or_default()),
            };
            match web::console::signin::offer_setup_link(&self.state, &base).await {
                Ok(Some(link)) => {
                    // Printed, not logged: the link signs its holder in as the first admin.
                    println!("首次使用：在浏览器中打开此链接创建管理员（24 小时内有效，仅可使用一次）");
                    println!("First start: open this link to create the first admin (valid for 24 hours, once):");
                    println!("{link}");
                    tracing::info!("no console user yet: a one-time setup link was printed on standard output");
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "could not make the first-run setup link"),
            }
            tasks.spawn(async move {
                axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(async move { token.cancelled().await })
                    .await
                    .context("HTTP server failed")
            });
        }
        if matches!(self.role, Role::All | Role::Worker) {
            let worker = Worker::new(self.state.clone(), self.worker_id.clone());
            let token = self.shutdown.clone();
            tasks.spawn(async move {
                worker.run(token).await;
                Ok(())
            });
            let (state, token) = (self.state.clone(), self.shutdown.clone());
            tasks.spawn(async move {
                workflow::reconcile::run_scheduler(state, token).await;
                Ok(())
            });
        }
        let shutdown = self.shutdown.clone();
        let drain = async move {
            let mut first_error = None;
            while let Some(result) = tasks.join_next().await {
                let failure = match result {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => e,
                    Err(e) => anyhow::anyhow!("task failed: {e}"),
                };
                first_error.get_or_insert(failure);
                // One half failing stops the other: a half-running service is worse than a restart.
                shutdown.cancel();
            }
            first_error
        };
        tokio::pin!(drain);
        let first_error = tokio::select! {
            first_error = &mut drain => first_error,
            () = async { self.shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("shutdown grace period over; abandoning work in flight (its leases will expire)");
                None
            }
        };
        self.state.store().close().await;
        tracing::info!("stopped");
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
