//! Complaint benchmarks against the real `wxrisk` binary (release build), load generator on the same machine:
//!
//! 1. **Intake**: distinct, genuinely signed and encrypted complaint callbacks posted by 16 concurrent keep-alive
//!    connections to `wxrisk serve --role web` on SQLite; throughput and latency percentiles. Goal: ≥ 10,000/s,
//!    p99 ≤ 10 ms.
//! 2. **End to end**: `wxrisk serve` (web + worker) against the simulator; one complaint at a time, the time from
//!    the simulator filing it (and calling us back) until it has recorded our reply, our refund and our
//!    completion. Goal: median ≤ 1 s.
//!
//! Run: `cargo bench -p wxrisk --bench complaints` (optional arguments after `--`: callbacks, end-to-end
//! complaints). Results go into docs/benchmarks.md by hand, with the machine. The goals are reported against, never
//! asserted: a bench measures, the tests check behaviour.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const APIV3_KEY: &str = "0123456789abcdefABCDEF0123456789";
const PLATFORM_SERIAL: &str = "3F5A1B2C3D4E5F60718293A4B5C6D7E8F9012345";
const MERCHANT_SERIAL: &str = "5E7ABC0123456789ABCDEF0123456789ABCDEF01";
const CONNECTIONS: usize = 16;
/// How long the end-to-end run waits for one complaint before it reports it unhandled and moves on: not a goal (that
/// is the median ≤ 1 s), only so a stuck run ends with a report instead of hanging.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

fn testdata(name: &str) -> String {
    let path = format!("{}/../../testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A `wxrisk` process on a fresh data directory; killed on drop.
struct Server {
    child: Child,
    base: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wxrisk(dir: &std::path::Path, env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wxrisk"));
    for (key, _) in std::env::vars() {
        if key.starts_with("WXRISK_") {
            command.env_remove(key);
        }
    }
    command.env("WXRISK_DATA_DIR", dir).env("WXRISK_LOG__LEVEL", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

async fn start(args: &[&str], env: &[(&str, String)]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = wxrisk(dir.path(), env)
        .args(["token", "create", "--name", "bench", "--scope", "admin"])
        .output()
        .expect("token");
    let token = String::from_utf8_lossy(&output.stdout).split_whitespace().last().expect("token").to_owned();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut env = env.to_vec();
    env.push(("WXRISK_LISTEN", listen.clone()));
    let child =
        wxrisk(dir.path(), &env).args(args).stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().expect("serve");
    // Owned at once, so the process is killed and reaped (Drop) on every path.
    let server = Server { child, base: format!("http://{listen}"), token, _dir: dir };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client.get(format!("{}/readyz", server.base)).send().await.is_ok_and(|r| r.status() == 200) {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("wxrisk did not start");
}

impl Server {
    async fn post(&self, path: &str, body: &Value) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn provider(&self, mchid: &str) -> i64 {
        let body = json!({
            "name": "基准服务商", "mchid": mchid, "appid": "wxd678efh567hg6787",
            "merchant_cert_serial": MERCHANT_SERIAL, "merchant_private_key_pem": testdata("merchant_key.pem"),
            "merchant_cert_pem": testdata("merchant_cert.pem"), "apiv3_key": APIV3_KEY,
            "platform_cert_serial": PLATFORM_SERIAL, "platform_cert_pem": testdata("platform_cert.pem"),
            "default_reply": "您好，已收到您的反馈，我们会尽快处理。",
        });
        self.post("/api/v1/providers", &body).await["id"].as_i64().expect("id")
    }
}

/// `n` distinct complaint callbacks, signed with the platform key now (2 threads: signing is the slow part).
fn signed_callbacks(n: usize) -> Vec<(Vec<(&'static str, String)>, String)> {
    let half = n / 2;
    let make = move |from: usize, to: usize| {
        std::thread::spawn(move || {
            let key = wechatpay::RsaPrivateKey::from_pem(&testdata("other_key.pem")).expect("key");
            let aead = wechatpay::Apiv3Key::new(APIV3_KEY.as_bytes()).expect("apiv3");
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            (from..to)
                .map(|i| {
                    let id = format!("EV-BENCH-{i:010}");
                    let resource = format!("{{\"complaint_id\":\"2002{i:023}\",\"action_type\":\"CREATE_COMPLAINT\"}}");
                    let content = wechatpay::callback::NotificationContent {
                        id: &id,
                        create_time: "2026-11-27T13:26:46+08:00",
                        event_type: wechatpay::enums::EventType::ComplaintCreate,
                        summary: "产生新投诉",
                        original_type: "complaint",
                        plaintext: &resource,
                        associated_data: "complaint",
                    };
                    let body =
                        serde_json::to_string(&wechatpay::Notification::encrypt(&aead, &content).expect("encrypt"))
                            .expect("json");
                    let nonce = format!("{i:032}");
                    let headers =
                        wechatpay::sign::sign_as_wechatpay(&key, PLATFORM_SERIAL, now, &nonce, body.as_bytes())
                            .expect("sign");
                    (headers, body)
                })
                .collect::<Vec<_>>()
        })
    };
    let (a, b) = (make(0, half), make(half, n));
    let mut all = a.join().expect("thread");
    all.extend(b.join().expect("thread"));
    all
}

/// CPU seconds (user + system) a process has used so far, from /proc (Linux).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11..13).map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()).unwrap_or(0.0);
    ticks / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn intake(total: usize) {
    let server = start(&["serve", "--role", "web"], &[]).await;
    let provider = server.provider("1900000100").await;
    let url = format!("{}/callbacks/{provider}/complaints", server.base);
    let warmup = 2000.min(total / 10);
    eprintln!("signing {} callbacks …", total + warmup);
    let callbacks = Arc::new(signed_callbacks(total + warmup));
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
    let send = |range: std::ops::Range<usize>| {
        let (client, url, callbacks) = (client.clone(), url.clone(), callbacks.clone());
        async move {
            let next = Arc::new(AtomicUsize::new(range.start));
            let mut tasks = Vec::new();
            for _ in 0..CONNECTIONS {
                let (client, url, callbacks, next, end) =
                    (client.clone(), url.clone(), callbacks.clone(), next.clone(), range.end);
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= end {
                            return latencies;
                        }
                        let (headers, body) = &callbacks[i];
                        let mut request = client.post(&url).header("content-type", "application/json");
                        for (name, value) in headers {
                            request = request.header(*name, value);
                        }
                        let started = Instant::now();
                        let response = request.body(body.clone()).send().await.expect("send");
                        assert_eq!(
                            response.status(),
                            204,
                            "callback {i} refused: {}",
                            response.text().await.unwrap_or_default()
                        );
                        latencies.push(started.elapsed());
                    }
                }));
            }
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await.expect("task"));
            }
            all
        }
    };
    send(0..warmup).await;
    let server_pid = server.child.id().to_string();
    let (server_cpu, own_cpu) = (cpu_seconds(&server_pid), cpu_seconds("self"));
    let started = Instant::now();
    let mut latencies = send(warmup..warmup + total).await;
    let elapsed = started.elapsed();
    let (server_cpu, own_cpu) = (cpu_seconds(&server_pid) - server_cpu, cpu_seconds("self") - own_cpu);
    latencies.sort();
    println!("intake: {total} callbacks over {CONNECTIONS} connections in {:.2} s", elapsed.as_secs_f64());
    println!("  throughput {:.0} /s", total as f64 / elapsed.as_secs_f64());
    println!(
        "  latency p50 {}  p90 {}  p99 {}  max {}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().expect("some"))
    );
    println!(
        "  CPU: server {:.0} µs per callback ({:.2} cores busy), load generator {:.0} µs per callback",
        server_cpu * 1e6 / total as f64,
        server_cpu / elapsed.as_secs_f64(),
        own_cpu * 1e6 / total as f64
    );
}

/// Returns whether every complaint was handled (a run with unhandled complaints measured nothing useful).
async fn end_to_end(complaints: usize) -> bool {
    let sim = wxsim::Simulator::start(wxsim::SimConfig {
        apiv3_key: Some(APIV3_KEY.into()),
        merchant: Some((testdata("merchant_key.pem"), testdata("merchant_cert.pem"))),
        platform: Some((testdata("other_key.pem"), testdata("platform_cert.pem"))),
        public_key: Some(testdata("other_key.pem")),
        ..wxsim::SimConfig::default()
    })
    .await
    .expect("simulator");
    let server = start(&["serve"], &[("WXRISK_WECHATPAY_BASE_URL", sim.base_url())]).await;
    let provider = server.provider("1900000100").await;
    server
        .post(
            "/api/v1/merchants",
            &json!({"provider_id": provider, "mchid": "1900000109", "name": "基准门店",
                    "reply_text": "您好，款项已原路退回。", "auto_refund": true}),
        )
        .await;
    // Register our callback URL at the simulated WeChat Pay, as the provider would.
    let config =
        wechatpay::ClientConfig { base_url: url::Url::parse(&sim.base_url()).expect("url"), ..Default::default() };
    let credentials = wechatpay::Credentials {
        mchid: "1900000100".into(),
        merchant_cert_serial: MERCHANT_SERIAL.into(),
        private_key: Arc::new(wechatpay::RsaPrivateKey::from_pem(&testdata("merchant_key.pem")).expect("key")),
        apiv3_key: wechatpay::Apiv3Key::new(APIV3_KEY.as_bytes()).expect("apiv3"),
    };
    let certificate = wechatpay::PlatformCertificate::from_pem(&testdata("platform_cert.pem")).expect("cert");
    let client = wechatpay::Client::new(config, credentials, None, vec![certificate]).expect("client");
    client
        .set_complaint_notification_url(&format!("{}/callbacks/{provider}/complaints", server.base), false)
        .await
        .expect("register");
    let http = reqwest::Client::new();
    let control = format!("{}/_sim", sim.base_url());
    let mut latencies = Vec::new();
    let mut unhandled = Vec::new();
    for i in 0..complaints {
        let started = Instant::now();
        let created: Value = http
            .post(format!("{control}/complaints"))
            .json(&json!({"sub_mchid": "1900000109", "amount": 100 + i}))
            .send()
            .await
            .expect("complaint")
            .json()
            .await
            .expect("json");
        let id = created["complaint_id"].as_str().expect("id").to_owned();
        loop {
            let record: Value =
                http.get(format!("{control}/complaints/{id}")).send().await.expect("get").json().await.expect("json");
            let replied = record["replies"].as_array().is_some_and(|r| !r.is_empty());
            if replied && record["completed"] == true {
                latencies.push(started.elapsed());
                break;
            }
            if started.elapsed() >= GIVE_UP_AFTER {
                unhandled.push(format!("{id}: {record}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let refunds: Value =
        http.get(format!("{control}/refunds")).send().await.expect("refunds").json().await.expect("json");
    let refunds = refunds.as_array().map(Vec::len).unwrap_or(0);
    latencies.sort();
    println!(
        "end to end: {complaints} complaints, one at a time (callback → reply + refund + complete at the simulator)"
    );
    if let Some(max) = latencies.last() {
        println!(
            "  median {}  p90 {}  max {}",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.9)),
            ms(*max)
        );
    }
    println!("  refunds at the simulator: {refunds} (one per complaint expected)");
    for complaint in &unhandled {
        println!("  NOT HANDLED within {} s: {complaint}", GIVE_UP_AFTER.as_secs());
    }
    drop(server);
    sim.stop().await;
    unhandled.is_empty() && refunds == complaints
}

fn main() -> std::process::ExitCode {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it, against a debug build
    // of wxrisk for minutes: say how to run it instead.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("benchmark not run: `cargo bench -p wxrisk --bench complaints` runs it");
        return std::process::ExitCode::SUCCESS;
    }
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let callbacks = args.first().copied().unwrap_or(40_000);
    let complaints = args.get(1).copied().unwrap_or(50);
    // The load generator gets one thread; the server process has the machine's cores.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let complete = runtime.block_on(async {
        intake(callbacks).await;
        end_to_end(complaints).await
    });
    if complete { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE }
}
