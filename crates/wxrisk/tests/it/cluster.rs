//! Two `wxrisk` processes on one PostgreSQL database — one serving callbacks and working jobs, one working jobs
//! only — handle 500 complaints: each replied once, refunded once, completed once, and both processes did work.
//! Half-way the worker process is killed (SIGKILL, jobs in hand) and a new one started: the killed one's jobs
//! are taken over when their leases end, and still nothing happens twice.
//! (SQLite serves one instance; on SQLite this test says so and stops.)

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgresql_database_handle_500_complaints_exactly_once() {
    let db = TestDb::new().await;
    if !db.is_postgres() {
        eprintln!("two_processes_on_one_postgresql_database…: PostgreSQL only (set WXRISK_TEST_DATABASE_URL)");
        return;
    }
    let sim = wxsim::Simulator::start(wxsim::SimConfig {
        apiv3_key: Some(APIV3_KEY.into()),
        merchant: Some((testdata("merchant_key.pem"), testdata("merchant_cert.pem"))),
        platform: Some((testdata("other_key.pem"), testdata("platform_cert.pem"))),
        public_key: Some(testdata("other_key.pem")),
        callback_time_scale: 0.01,
        ..wxsim::SimConfig::default()
    })
    .await
    .expect("simulator");
    let control = SimControl::new(&sim);
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let base = format!("http://127.0.0.1:{port}");
    // The simulator keeps WeChat's per-minute limits; its clock is moved on below, so allow our side to go fast.
    let env = vec![
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
    ];
    let output =
        wxrisk(&db, &env).args(["token", "create", "--name", "cluster", "--scope", "admin"]).output().expect("token");
    let token = String::from_utf8_lossy(&output.stdout).split_whitespace().last().expect("token").to_owned();
    let mut web_env = env.clone();
    web_env.push(("WXRISK_LISTEN", format!("127.0.0.1:{port}")));
    let _first = Process(wxrisk(&db, &web_env).arg("serve").stdout(Stdio::null()).spawn().expect("first process"));
    let second = Process(
        wxrisk(&db, &env).args(["serve", "--role", "worker"]).stdout(Stdio::null()).spawn().expect("second process"),
    );
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

    let mut ids = Vec::with_capacity(COMPLAINTS);
    for i in 0..COMPLAINTS {
        ids.push(control.complaint(json!({"sub_mchid": "1900000109", "amount": 100 + i})).await);
    }
    // WeChat's per-minute limits reset as the simulated minutes pass: ten simulated minutes a second.
    let ticking = {
        let url = format!("{}/_sim/clock/advance", sim.base_url());
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                let _ = client.post(&url).json(&json!({"seconds": 61})).send().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
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
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&db.url).await.expect("connect");
            let rows = sqlx::query(
                "select kind, status, count(*) as n, max(last_error) as error from jobs group by kind, status",
            )
            .fetch_all(&mut conn)
            .await
            .expect("jobs");
            let summary: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {} {:?}",
                        sqlx::Row::get::<String, _>(r, "kind"),
                        sqlx::Row::get::<String, _>(r, "status"),
                        sqlx::Row::get::<i64, _>(r, "n"),
                        sqlx::Row::get::<Option<String>, _>(r, "error")
                    )
                })
                .collect();
            panic!("after 4 minutes: {refunded} refunds, {done} complaints done; jobs: {summary:#?}");
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
