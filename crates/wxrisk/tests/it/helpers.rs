//! Test harness: a fresh database per test (a SQLite file, or a new PostgreSQL database when
//! `WXRISK_TEST_DATABASE_URL` is set), an app bound to port 0 with a manual clock, and an API token.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;
use sqlx::Connection as _;
pub use wxrisk::auth::Scope;
use wxrisk::clock::ManualClock;
use wxrisk::config::Config;
use wxrisk::jobs::{JobHandler, Worker};
use wxrisk::state::AppState;
use wxrisk::{App, AppBuilder};

pub const APIV3_KEY: &str = "0123456789abcdefABCDEF0123456789";
pub const MERCHANT_SERIAL: &str = "5E7ABC0123456789ABCDEF0123456789ABCDEF01";
pub const PLATFORM_SERIAL: &str = "3F5A1B2C3D4E5F60718293A4B5C6D7E8F9012345";

pub use crate::support::testdata;

/// Which database the suite runs on.
pub fn postgres_base_url() -> Option<String> {
    std::env::var("WXRISK_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database of its own for one test; a PostgreSQL one is dropped when this is.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        match postgres_base_url() {
            None => {
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("wxrisk.db").display());
                Self { url, dir, pg: None }
            }
            Some(base) => {
                let name = format!("wxrisk_t_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
                let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect to WXRISK_TEST_DATABASE_URL");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create database");
                let _ = admin.close().await;
                let mut url = url::Url::parse(&base).expect("database URL");
                url.set_path(&format!("/{name}"));
                Self { url: url.to_string(), dir, pg: Some((base, name)) }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg.take() {
            // Drop needs async I/O; do it on a runtime of its own, outside the test's.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                runtime.block_on(async move {
                    let mut admin = sqlx::PgConnection::connect(&base).await.ok()?;
                    let sql = format!("drop database if exists {name} with (force)");
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.ok()?;
                    admin.close().await.ok()
                })
            })
            .join();
        }
    }
}

/// Configuration for a test app: this database, no jitter, a short retry schedule.
pub fn test_config(db: &TestDb, extra: &[(&str, &str)]) -> Config {
    let mut env: Vec<(String, String)> = vec![
        ("WXRISK_DATA_DIR".into(), db.data_dir().display().to_string()),
        ("WXRISK_DATABASE_URL".into(), db.url.clone()),
        ("WXRISK_PUBLIC_URL".into(), "https://risk.example.com".into()),
        ("WXRISK_JOBS__RETRY_SCHEDULE".into(), "10s,1m,5m".into()),
        ("WXRISK_JOBS__RETRY_JITTER".into(), "0".into()),
        ("WXRISK_JOBS__TIMEOUT".into(), "5s".into()),
        ("WXRISK_JOBS__LEASE".into(), "30s".into()),
        ("WXRISK_DATABASE__MAX_CONNECTIONS".into(), "5".into()),
        // The simulator, test receivers and SMTP servers all listen on 127.0.0.1.
        ("WXRISK_NOTIFY__ALLOW_PRIVATE_DESTINATIONS".into(), "true".into()),
    ];
    // The test's own settings replace the defaults above.
    env.retain(|(key, _)| !extra.iter().any(|(k, _)| k == key));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::load(None, env).expect("test config")
}

/// A running app with a manual clock, an API token and an HTTP client.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    pub clock: ManualClock,
    pub state: AppState,
    worker: Worker,
    shutdown: tokio_util::sync::CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub db: TestDb,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestDb::new().await, |b| b).await
}

/// Spawn on `db`, letting the test add job handlers or change the builder.
pub async fn spawn_app_with(db: TestDb, customise: impl FnOnce(AppBuilder) -> AppBuilder) -> TestApp {
    spawn_app_env(db, &[], customise).await
}

/// Spawn with extra configuration (`WXRISK_…` pairs).
pub async fn spawn_app_env(
    db: TestDb,
    extra: &[(&str, &str)],
    customise: impl FnOnce(AppBuilder) -> AppBuilder,
) -> TestApp {
    let config = test_config(&db, extra);
    let clock = ManualClock::starting_now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    // The app's own worker stays idle (web role); tests drive jobs with `run_pending`.
    let builder = App::builder(config)
        .clock(std::sync::Arc::new(clock.clone()))
        .listener(listener)
        .role(wxrisk::Role::Web)
        .worker_id("test-worker");
    let app = customise(builder).build().await.expect("app builds");
    let base = format!("http://{}", app.addr().expect("bound"));
    let state = app.state().clone();
    let worker = app.worker();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    let (_, token) = match wxrisk::auth::create_token(
        state.store(),
        &wxrisk::auth::NewToken { name: "test", scope: Scope::Admin, expires_at: None },
        clock.now(),
        &wxrisk::auth::Actor::Cli,
    )
    .await
    {
        // A second app on the same database (a restart within a test) gets a token of its own.
        Err(wxrisk::auth::TokenError::NameTaken(_)) => {
            let name = format!("test-{}", COUNTER.fetch_add(1, Ordering::SeqCst));
            create_scoped_token(&state, &name, Scope::Admin, None, clock.now()).await
        }
        Ok((id, token)) => (id, secrecy::ExposeSecret::expose_secret(&token).to_owned()),
        Err(e) => panic!("token: {e}"),
    };
    TestApp { base, client: reqwest::Client::new(), token, clock, state, worker, shutdown, server: Some(server), db }
}

/// A token named `name` with `scope` (and an expiry, Unix ms), as `wxrisk token create` makes it.
pub async fn create_scoped_token(
    state: &AppState,
    name: &str,
    scope: Scope,
    expires_at: Option<i64>,
    now: i64,
) -> (i64, String) {
    let new = wxrisk::auth::NewToken { name, scope, expires_at };
    let (id, token) =
        wxrisk::auth::create_token(state.store(), &new, now, &wxrisk::auth::Actor::Cli).await.expect("token");
    (id, secrecy::ExposeSecret::expose_secret(&token).to_owned())
}

trait Now {
    fn now(&self) -> i64;
}

impl Now for ManualClock {
    fn now(&self) -> i64 {
        wxrisk::clock::Clock::now_ms(self)
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).bearer_auth(&self.token).send().await.expect("GET");
        decode(response).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self.client.post(self.url(path)).bearer_auth(&self.token).json(body).send().await.expect("POST");
        decode(response).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        let response =
            self.client.patch(self.url(path)).bearer_auth(&self.token).json(body).send().await.expect("PATCH");
        decode(response).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let response = self.client.delete(self.url(path)).bearer_auth(&self.token).send().await.expect("DELETE");
        decode(response).await
    }

    /// Raw body with a content type, for malformed-input tests.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST");
        decode(response).await
    }

    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Create the standard test provider; returns its id.
    pub async fn create_provider(&self, mchid: &str) -> i64 {
        let (status, body) = self.post("/api/v1/providers", &provider_body(mchid)).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().expect("id")
    }

    pub async fn create_merchant(&self, provider_id: i64, mchid: &str) -> i64 {
        let body = serde_json::json!({"provider_id": provider_id, "mchid": mchid, "name": format!("商户{mchid}")});
        let (status, body) = self.post("/api/v1/merchants", &body).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().expect("id")
    }

    /// Count rows of a table.
    pub async fn count(&self, table: &str) -> i64 {
        let mut conn = self.state.store().conn().await.expect("conn");
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("select count(*) as n from {table}")))
            .fetch_one(&mut *conn)
            .await
            .expect("count");
        sqlx::Row::get::<i64, _>(&row, "n")
    }

    /// Stop the app; the database lives on in the returned handle.
    pub async fn stop(mut self) -> TestDb {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.db
    }
}

pub async fn decode(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, value)
}

/// A valid provider body using the OpenSSL-made test keys.
pub fn provider_body(mchid: &str) -> Value {
    serde_json::json!({
        "name": "测试服务商",
        "mchid": mchid,
        "appid": "wxd678efh567hg6787",
        "merchant_cert_serial": MERCHANT_SERIAL,
        "merchant_private_key_pem": testdata("merchant_key.pem"),
        "merchant_cert_pem": testdata("merchant_cert.pem"),
        "apiv3_key": APIV3_KEY,
        "default_reply": "您好，已收到您的反馈，我们会尽快处理。",
    })
}

/// Register a job handler under `kind` on the builder (for `spawn_app_with`).
pub fn with_handler(kind: &'static str, handler: impl JobHandler) -> impl FnOnce(AppBuilder) -> AppBuilder {
    move |builder| builder.job_handler(kind, handler)
}

/// The path of the built `wxrisk` binary.
pub fn wxrisk_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wxrisk"))
}

/// The `wxrisk` binary on this test's database and data directory, run from that directory, with none of the
/// `WXRISK_*` variables of the environment the tests run in.
pub fn wxrisk_command(db: &TestDb) -> std::process::Command {
    let mut command = std::process::Command::new(wxrisk_bin());
    for (key, _) in std::env::vars() {
        if key.starts_with("WXRISK_") {
            command.env_remove(key);
        }
    }
    command
        .current_dir(db.data_dir())
        .env("WXRISK_DATA_DIR", db.data_dir())
        .env("WXRISK_DATABASE_URL", &db.url)
        .env("WXRISK_NOTIFY__ALLOW_PRIVATE_DESTINATIONS", "true");
    command
}

/// The simulator on the test keys, for the notification services (official account, SMS, robots, webhooks).
pub async fn start_sim() -> wxsim::Simulator {
    let config = wxsim::SimConfig {
        apiv3_key: Some(APIV3_KEY.into()),
        merchant: Some((testdata("merchant_key.pem"), testdata("merchant_cert.pem"))),
        platform: Some((testdata("other_key.pem"), testdata("platform_cert.pem"))),
        public_key: Some(testdata("other_key.pem")),
        ..wxsim::SimConfig::default()
    };
    wxsim::Simulator::start(config).await.expect("simulator starts")
}

/// Configuration pointing every notification service at the simulator.
pub fn notify_env(sim_base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("WXRISK_NOTIFY__WECHAT_API_BASE", sim_base.to_owned()),
        ("WXRISK_NOTIFY__TENCENT_SMS_ENDPOINT", sim_base.to_owned()),
        ("WXRISK_NOTIFY__WECOM_BASE", sim_base.to_owned()),
        ("WXRISK_NOTIFY__DINGTALK_BASE", sim_base.to_owned()),
        ("WXRISK_NOTIFY__FEISHU_BASE", sim_base.to_owned()),
        ("WXRISK_NOTIFY__LARK_BASE", sim_base.to_owned()),
        ("WXRISK_NOTIFY__TIMEOUT", "5s".to_owned()),
    ]
}

/// The simulator's control API (`/_sim`).
pub use crate::sim_control::Control as SimControl;
