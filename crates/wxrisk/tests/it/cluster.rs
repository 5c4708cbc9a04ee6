//! Two `wxrisk` processes on one PostgreSQL database — one serving callbacks and working jobs, one working jobs
//! only — handle 500 complaints: each replied once, refunded once, completed once, and both processes did work.
//! Half-way the worker process is killed (SIGKILL, jobs in hand) and a new one started: the killed one's jobs
//! are taken over when their leases end, and still nothing happens twice.
//! Two worker processes racing for the same order — two complaints about one payment, handled at the same moment —
//! refund it once: the database's one-refund-per-order index decides, not a check before acting.
//! (SQLite serves one instance; on SQLite these tests say so and stop.)

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::helpers::*;

const COMPLAINTS: usize = 500;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wxrisk(db: &TestDb, env: &[(&str, String)]) -> Command {
    let mut command = wxrisk_command(db);
    command.env("WXRISK_LOG__LEVEL", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.expect("GET").json().await.expect("json")
}

/// What `set_up` made: a client for the API, and the provider (the simulator's) with its sub-merchant.
struct Setup {
    client: reqwest::Client,
    token: String,
}

/// With a `wxrisk` process listening at `base`: a token, the provider, a sub-merchant with auto-refund, and the
/// complaint callback URL registered at the simulated WeChat Pay.
async fn set_up(db: &TestDb, sim: &wxsim::Simulator, env: &[(&str, String)], base: &str) -> Setup {
    let output =
        wxrisk(db, env).args(["token", "create", "--name", "cluster", "--scope", "admin"]).output().expect("token");
    let token = String::from_utf8_lossy(&output.stdout).split_whitespace().last().expect("token").to_owned();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
        assert!(Instant::now() < deadline, "wxrisk did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut provider = provider_body("1900000100");
    provider["platform_cert_serial"] = json!(PLATFORM_SERIAL);
    provider["platform_cert_pem"] = json!(testdata("platform_cert.pem"));
    let created: Value = client
        .post(format!("{base}/api/v1/providers"))
        .bearer_auth(&token)
        .json(&provider)
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    let provider_id = created["id"].as_i64().expect("provider id");
    let patch = json!({"refund_notify_url": format!("{base}/callbacks/{provider_id}/refunds")});
    let response = client
        .patch(format!("{base}/api/v1/providers/{provider_id}"))
        .bearer_auth(&token)
        .json(&patch)
        .send()
        .await
        .expect("PATCH");
    assert!(response.status().is_success());
    let merchant = json!({"provider_id": provider_id, "mchid": "1900000109", "name": "门店", "reply_text": "您好，已为您退款。", "auto_refund": true});
    let response =
        client.post(format!("{base}/api/v1/merchants")).bearer_auth(&token).json(&merchant).send().await.expect("POST");
    assert!(response.status().is_success());
    let wechat = wechatpay::Client::new(
        wechatpay::ClientConfig { base_url: url::Url::parse(&sim.base_url()).expect("url"), ..Default::default() },
        wechatpay::Credentials {
            mchid: "1900000100".into(),
            merchant_cert_serial: MERCHANT_SERIAL.into(),
            private_key: Arc::new(wechatpay::RsaPrivateKey::from_pem(&testdata("merchant_key.pem")).expect("key")),
            apiv3_key: wechatpay::Apiv3Key::new(APIV3_KEY.as_bytes()).expect("apiv3"),
        },
        None,
        vec![wechatpay::PlatformCertificate::from_pem(&testdata("platform_cert.pem")).expect("cert")],
    )
    .expect("client");
    wechat
        .set_complaint_notification_url(&format!("{base}/callbacks/{provider_id}/complaints"), false)
        .await
        .expect("register");
    Setup { client, token }
}

/// The simulator's clock a minute on every 100 ms, so its per-minute limits reset while the processes work.
fn tick_simulator_minutes(sim: &wxsim::Simulator, client: &reqwest::Client) -> tokio::task::JoinHandle<()> {
    let url = format!("{}/_sim/clock/advance", sim.base_url());
    let client = client.clone();
    tokio::spawn(async move {
        loop {
            let _ = client.post(&url).json(&json!({"seconds": 61})).send().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// The simulator, and settings for a `wxrisk` process that listens (`web_env`) or only works (`env`).
struct Stage {
    sim: wxsim::Simulator,
    control: SimControl,
    base: String,
    env: Vec<(&'static str, String)>,
    web_env: Vec<(&'static str, String)>,
}

async fn stage() -> Stage {
    let sim = wxsim::Simulator::start(test_sim_config()).await.expect("simulator");
    let control = SimControl::new(&sim);
    let port = free_port();
    let env = fast_env(&sim);
    let mut web_env = env.clone();
    web_env.push(("WXRISK_LISTEN", format!("127.0.0.1:{port}")));
    Stage { sim, control, base: format!("http://127.0.0.1:{port}"), env, web_env }
}

fn test_sim_config() -> wxsim::SimConfig {
    wxsim::SimConfig {
        apiv3_key: Some(APIV3_KEY.into()),
        merchant: Some((testdata("merchant_key.pem"), testdata("merchant_cert.pem"))),
        platform: Some((testdata("other_key.pem"), testdata("platform_cert.pem"))),
        public_key: Some(testdata("other_key.pem")),
        callback_time_scale: 0.01,
        ..wxsim::SimConfig::default()
    }
}

/// Settings for fast processes against the simulator (whose minutes pass quickly: allow our side to go fast).
fn fast_env(sim: &wxsim::Simulator) -> Vec<(&'static str, String)> {
    vec![
        ("WXRISK_WECHATPAY_BASE_URL", sim.base_url()),
        ("WXRISK_COMPLAINTS__REPLY_PER_MINUTE", "100000".to_owned()),
        ("WXRISK_COMPLAINTS__HISTORY_PER_MINUTE", "100000".to_owned()),
        // FREQUENCY_LIMITED answers (the simulator's minute is not ours) are retried soon and often.
        ("WXRISK_JOBS__RETRY_SCHEDULE", vec!["500ms"; 60].join(",")),
        ("WXRISK_JOBS__POLL_INTERVAL", "200ms".to_owned()),
        ("WXRISK_JOBS__CONCURRENCY", "8".to_owned()),
        // A killed process's jobs are taken over after their lease.
        ("WXRISK_JOBS__LEASE", "4s".to_owned()),
        ("WXRISK_JOBS__TIMEOUT", "3s".to_owned()),
    ]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

async fn jobs_summary(db: &TestDb) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.expect("connect");
    let rows =
        sqlx::query("select kind, status, count(*) as n, max(last_error) as error from jobs group by kind, status")
            .fetch_all(&mut conn)
            .await
            .expect("jobs");
    rows.iter()
        .map(|r| {
            format!(
                "{} {} {} {:?}",
                sqlx::Row::get::<String, _>(r, "kind"),
                sqlx::Row::get::<String, _>(r, "status"),
                sqlx::Row::get::<i64, _>(r, "n"),
                sqlx::Row::get::<Option<String>, _>(r, "error")
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgresql_database_handle_500_complaints_exactly_once() {
    let db = TestDb::new().await;
    if !db.is_postgres() {
        eprintln!("two_processes_on_one_postgresql_database…: PostgreSQL only (set WXRISK_TEST_DATABASE_URL)");
        return;
    }
    let Stage { sim, control, base, env, web_env } = stage().await;
    let _first = Process(wxrisk(&db, &web_env).arg("serve").stdout(Stdio::null()).spawn().expect("first process"));
    let second = Process(
        wxrisk(&db, &env).args(["serve", "--role", "worker"]).stdout(Stdio::null()).spawn().expect("second process"),
    );
    let client = set_up(&db, &sim, &env, &base).await.client;
    let mut ids = Vec::with_capacity(COMPLAINTS);
    for i in 0..COMPLAINTS {
        ids.push(control.complaint(json!({"sub_mchid": "1900000109", "amount": 100 + i})).await);
    }
    // WeChat's per-minute limits reset as the simulated minutes pass: ten simulated minutes a second.
    let ticking = tick_simulator_minutes(&sim, &client);
    // Kill the worker-only process once work is under way, and start another.
    let mut second = Some(second);
    let mut _third = None;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if second.is_some() {
            let refunds = get_json(&client, &format!("{}/_sim/refunds", sim.base_url())).await;
            if refunds.as_array().map_or(0, Vec::len) >= COMPLAINTS / 4 {
                drop(second.take());
                _third = Some(Process(
                    wxrisk(&db, &env).args(["serve", "--role", "worker"]).stdout(Stdio::null()).spawn().expect("third"),
                ));
            }
        }
        let refunds = get_json(&client, &format!("{}/_sim/refunds", sim.base_url())).await;
        let refunded = refunds.as_array().map_or(0, Vec::len);
        let mut done = 0;
        if refunded >= COMPLAINTS {
            for id in &ids {
                let record = get_json(&client, &format!("{}/_sim/complaints/{id}", sim.base_url())).await;
                if record["completed"] == true && record["replies"].as_array().is_some_and(|r| !r.is_empty()) {
                    done += 1;
                }
            }
        }
        if done == COMPLAINTS {
            break;
        }
        if Instant::now() > deadline {
            panic!("after 4 minutes: {refunded} refunds, {done} complaints done; jobs: {:#?}", jobs_summary(&db).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let refunds = get_json(&client, &format!("{}/_sim/refunds", sim.base_url())).await;
    assert_eq!(refunds.as_array().map(Vec::len), Some(COMPLAINTS), "one refund per complaint");
    for id in &ids {
        let record = get_json(&client, &format!("{}/_sim/complaints/{id}", sim.base_url())).await;
        assert_eq!(record["replies"].as_array().map(Vec::len), Some(1), "{id}: one reply");
    }

    // Both processes worked: the attempts name two workers.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.expect("connect");
    let rows = sqlx::query("select distinct worker from job_attempts where outcome = 'succeeded'")
        .fetch_all(&mut conn)
        .await
        .expect("workers");
    let workers: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| sqlx::Row::get::<String, _>(r, "worker").split('/').next().unwrap_or_default().to_owned())
        .collect();
    assert!(workers.len() >= 3, "all three processes worked: {workers:?}");
    let dead =
        sqlx::query("select count(*) as n from jobs where status = 'dead'").fetch_one(&mut conn).await.expect("dead");
    assert_eq!(sqlx::Row::get::<i64, _>(&dead, "n"), 0);
    ticking.abort();
    sim.stop().await;
}

/// Complaint pairs: each pair about one payment, each complaint asking for part of it (so WeChat Pay would pay a
/// second refund rather than refuse it).
const PAIRS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_deciding_about_one_order_at_once_refund_it_once() {
    let db = TestDb::new().await;
    if !db.is_postgres() {
        eprintln!("two_worker_processes_deciding…: PostgreSQL only (set WXRISK_TEST_DATABASE_URL)");
        return;
    }
    let Stage { sim, control, base, env, web_env } = stage().await;
    // Callbacks are taken in while no worker runs, so the two workers start on a queue in which the two
    // complaints of each pair lie next to each other and are claimed at the same moment.
    let _web =
        Process(wxrisk(&db, &web_env).args(["serve", "--role", "web"]).stdout(Stdio::null()).spawn().expect("web"));
    let setup = set_up(&db, &sim, &env, &base).await;
    let mut pairs = Vec::with_capacity(PAIRS);
    for _ in 0..PAIRS {
        let order = control.post("/orders", json!({"sub_mchid": "1900000109", "amount": 1000})).await;
        let transaction_id = order["transaction_id"].as_str().expect("tx").to_owned();
        let mut pair = Vec::new();
        for _ in 0..2 {
            let body = json!({"sub_mchid": "1900000109", "transaction_id": transaction_id, "apply_refund_amount": 300});
            pair.push(control.complaint(body).await);
        }
        pairs.push((transaction_id, pair));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jobs: Value = setup
            .client
            .get(format!("{base}/api/v1/jobs?kind=complaint.sync&limit=200"))
            .bearer_auth(&setup.token)
            .send()
            .await
            .expect("jobs")
            .json()
            .await
            .expect("json");
        if jobs["items"].as_array().map_or(0, Vec::len) >= 2 * PAIRS {
            break;
        }
        assert!(Instant::now() < deadline, "callbacks did not arrive: {jobs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ticking = tick_simulator_minutes(&sim, &setup.client);
    let _workers: Vec<Process> = (0..2)
        .map(|_| {
            Process(
                wxrisk(&db, &env).args(["serve", "--role", "worker"]).stdout(Stdio::null()).spawn().expect("worker"),
            )
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut completed = 0;
        for (_, pair) in &pairs {
            for id in pair {
                let record = get_json(&setup.client, &format!("{}/_sim/complaints/{id}", sim.base_url())).await;
                completed += usize::from(record["completed"] == true);
            }
        }
        if completed == 2 * PAIRS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 3 minutes {completed} complaints completed; jobs: {:#?}",
            jobs_summary(&db).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let refunds = get_json(&setup.client, &format!("{}/_sim/refunds", sim.base_url())).await;
    let refunds = refunds.as_array().expect("refunds");
    for (transaction_id, _) in &pairs {
        let of_order: Vec<&Value> =
            refunds.iter().filter(|r| r["refund"]["transaction_id"] == json!(transaction_id)).collect();
        assert_eq!(of_order.len(), 1, "order {transaction_id} refunded {} times: {of_order:#?}", of_order.len());
        assert_eq!(of_order[0]["refund"]["amount"]["refund"], 300);
    }
    assert_eq!(refunds.len(), PAIRS);
    // Both workers decided about pairs: the race was run, not avoided.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.expect("connect");
    let rows = sqlx::query(
        "select distinct a.worker from job_attempts a join jobs j on j.id = a.job_id \
         where j.kind = 'complaint.sync' and a.outcome = 'succeeded'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("workers");
    let workers: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| sqlx::Row::get::<String, _>(r, "worker").split('/').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(workers.len(), 2, "both worker processes synced complaints: {workers:?}");
    // One refund row per order in our database too, and in every pair a complaint whose timeline says the order was
    // held. (A sync retried after its answer was lost records its steps again: the timeline is a log.)
    let rows = sqlx::query("select count(*) as n from refunds").fetch_one(&mut conn).await.expect("refunds");
    assert_eq!(sqlx::Row::get::<i64, _>(&rows, "n"), i64::try_from(PAIRS).expect("n"));
    for (_, pair) in &pairs {
        let held = sqlx::query(
            "select count(*) as n from complaint_timeline t join complaints c on c.id = t.complaint_row_id \
             where t.step = 'refund' and t.outcome = 'skipped' and c.complaint_id in ($1, $2)",
        )
        .bind(&pair[0])
        .bind(&pair[1])
        .fetch_one(&mut conn)
        .await
        .expect("skipped");
        assert!(sqlx::Row::get::<i64, _>(&held, "n") >= 1, "pair {pair:?}: neither found the order held");
    }
    ticking.abort();
    sim.stop().await;
}
