//! Email against a real SMTP server process (aiosmtpd, `smtp_server.py`): implicit TLS with a test CA, STARTTLS,
//! a wrong authorization code (535, permanent), and a server that stays down for the whole retry schedule while
//! the same event's other deliveries go out. And an email channel pointed at another server does not take its
//! stored password along.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use wxrisk::notify::EventKind;

use crate::helpers::*;
use crate::notify::{app_with_sim, channel, delivery, delivery_on, notify};
use crate::support::python;

const USER: &str = "alerts@163.com";
const AUTH_CODE: &str = "AUTHCODE1234ABCD";

/// An SMTP server child process; killed (its stdin closed) when dropped.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    pub fn start(security: &str) -> Self {
        Self::spawn(security, &["--user", USER, "--password", AUTH_CODE])
    }

    /// A server as an attacker would run it: it accepts any login and keeps every password it is given.
    pub fn start_capturing(security: &str) -> Self {
        Self::spawn(security, &["--capture-auth"])
    }

    fn spawn(security: &str, auth: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("mail.jsonl");
        let testdata = format!("{}/../../testdata", env!("CARGO_MANIFEST_DIR"));
        let mut command = Command::new(python());
        command
            .arg(format!("{}/tests/it/smtp_server.py", env!("CARGO_MANIFEST_DIR")))
            .arg("--out")
            .arg(&out)
            .args(["--security", security])
            .args(auth)
            .args(["--cert", &format!("{testdata}/tls_localhost_cert.pem")])
            .args(["--key", &format!("{testdata}/tls_localhost_key.pem")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("python starts the SMTP server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("READY line");
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the SMTP server did not start: {line:?}"));
        Self { child, port, out, _dir: dir }
    }

    /// Everything the server wrote down (mails, and with --capture-auth every login and password).
    pub fn captured(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn mails(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }

    pub fn settings(&self, security: &str, password: &str) -> Value {
        json!({"host": "localhost", "port": self.port, "security": security, "username": USER, "password": password,
               "from": USER, "to": ["ops@example.com", "boss@example.com"], "ca_pem": testdata("tls_ca.pem")})
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if self.child.wait_timeout_ms(3000).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

trait WaitTimeout {
    fn wait_timeout_ms(&mut self, ms: u64) -> Option<std::process::ExitStatus>;
}

impl WaitTimeout for Child {
    fn wait_timeout_ms(&mut self, ms: u64) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + Duration::from_millis(ms);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

#[tokio::test]
async fn mail_goes_out_over_implicit_tls_as_multipart_text_and_html() {
    let server = SmtpServer::start("tls");
    let (app, sim, _control) = app_with_sim().await;
    let provider_id = app.create_provider("1900000100").await;
    let email = channel(&app, json!({"provider_id": provider_id}), "email", server.settings("tls", AUTH_CODE)).await;
    let (_, shown) = app.get(&format!("/api/v1/channels/{email}")).await;
    assert!(shown["settings"].get("password").is_none(), "write-only: {shown}");
    assert_eq!(shown["secrets_set"], json!(["password"]));

    let ids = notify(&app, provider_id, EventKind::ComplaintCreated, "complaint:C9:n1", None).await;
    app.worker().run_pending().await.expect("run");
    let d = delivery(&app, ids[0]).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(d["last_code"], "250");
    assert!(d["external_id"].as_str().is_some_and(|r| r.contains("queued as")), "the SMTP reply is kept: {d}");

    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail["tls"], true);
    assert_eq!(mail["login"], USER);
    assert_eq!(mail["mail_from"], USER);
    assert_eq!(mail["rcpt_tos"], json!(["ops@example.com", "boss@example.com"]));
    assert_eq!(mail["content_type"], "multipart/alternative");
    assert!(
        mail["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("【新投诉】") && s.contains("200201820261127000000000001")),
        "{mail}"
    );
    let text = mail["text"].as_str().expect("text part");
    assert!(
        text.contains("订单金额：¥9.90") && text.contains("https://risk.example.com/console/complaints/"),
        "{text}"
    );
    let html = mail["html"].as_str().expect("html part");
    assert!(html.contains("<table") && html.contains("¥9.90"), "{html}");
    let message_id = mail["message_id"].as_str().expect("Message-ID");
    assert!(message_id.starts_with('<') && message_id.ends_with("@wxrisk>"), "{message_id}");

    // A retry of the same delivery carries the same Message-ID; another event gets another.
    let again = notify(&app, provider_id, EventKind::ComplaintContinued, "complaint:C9:n2", None).await;
    app.worker().run_pending().await.expect("run");
    assert_eq!(delivery(&app, again[0]).await["status"], "succeeded");
    let mails = server.mails();
    assert_ne!(mails[1]["message_id"], mails[0]["message_id"]);
    sim.stop().await;
}

#[tokio::test]
async fn starttls_works_and_a_wrong_authorization_code_is_permanent() {
    let server = SmtpServer::start("starttls");
    let (app, sim, _control) = app_with_sim().await;
    let provider_id = app.create_provider("1900000100").await;
    let owner = json!({"provider_id": provider_id});
    let good = channel(&app, owner.clone(), "email", server.settings("starttls", AUTH_CODE)).await;
    let wrong = channel(&app, owner.clone(), "email", server.settings("starttls", "not-the-code")).await;

    // Test-send: the server's words, verbatim.
    let (status, ok) = app.post(&format!("/api/v1/channels/{good}/test"), &json!({})).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["code"], "250");
    let (_, refused) = app.post(&format!("/api/v1/channels/{wrong}/test"), &json!({})).await;
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["code"], "535");
    assert_eq!(refused["transient"], false);
    assert!(refused["answer"].as_str().is_some_and(|a| a.contains("Authentication credentials invalid")), "{refused}");
    let test_mail = &server.mails()[0];
    assert_eq!(test_mail["tls"], true, "upgraded before AUTH");

    let ids = notify(&app, provider_id, EventKind::SlaOverdue, "complaint:C1:sla", None).await;
    assert_eq!(ids.len(), 2);
    app.worker().run_pending().await.expect("run");
    assert_eq!(delivery_on(&app, &ids, good).await["status"], "succeeded");
    let refused = delivery_on(&app, &ids, wrong).await;
    assert_eq!(refused["status"], "dead", "535 is not retried: {refused}");
    assert_eq!(refused["last_code"], "535");
    assert_eq!(refused["attempts"], 1);
    sim.stop().await;
}

#[tokio::test]
async fn a_mail_server_down_for_the_whole_schedule_ends_dead_without_holding_up_the_rest() {
    let server = SmtpServer::start("tls");
    let settings = server.settings("tls", AUTH_CODE);
    // Nothing listens there any more.
    drop(server);
    let (app, sim, control) = app_with_sim().await;
    control.post("/robots", json!({"kind": "wecom", "token": "wecom-key"})).await;
    let provider_id = app.create_provider("1900000100").await;
    let owner = json!({"provider_id": provider_id});
    let email = channel(&app, owner.clone(), "email", settings).await;
    let robot = channel(&app, owner.clone(), "wecom_robot", json!({"webhook_key": "wecom-key"})).await;

    let ids = notify(&app, provider_id, EventKind::ViolationPunish, "violation:R1", Some("1900000109")).await;
    assert_eq!(ids.len(), 2);
    app.worker().run_pending().await.expect("run");
    assert_eq!(
        delivery_on(&app, &ids, robot).await["status"],
        "succeeded",
        "the robot did not wait for the mail server"
    );
    assert_eq!(delivery_on(&app, &ids, email).await["status"], "queued");

    // The test schedule is 10s, 1m, 5m: four attempts, then dead.
    for wait in [11, 61, 301] {
        app.advance(Duration::from_secs(wait));
        app.worker().run_pending().await.expect("run");
    }
    let dead = delivery_on(&app, &ids, email).await;
    assert_eq!(dead["status"], "dead", "{dead}");
    assert_eq!(dead["attempts"], 4);
    let log = dead["attempt_log"].as_array().expect("log");
    assert!(log.iter().all(|a| a["outcome"] != "succeeded"));
    assert!(dead["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{dead}");

    let (status, listed) = app.get(&format!("/api/v1/deliveries?status=dead&channel_id={email}")).await;
    assert_eq!(status, 200, "{listed}");
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], dead["id"]);
    assert_eq!(items[0]["event_kind"], "violation_punish");

    // The mail server is back on another port: a new destination, so the password is given again with it.
    let server = SmtpServer::start("tls");
    let (status, body) = app
        .patch(&format!("/api/v1/channels/{email}"), &json!({"settings": {"port": server.port, "password": AUTH_CODE}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["secrets_cleared"], json!([]), "{body}");
    let (status, retried) = app.post(&format!("/api/v1/deliveries/{}/retry", dead["id"]), &json!({})).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["status"], "queued");
    app.worker().run_pending().await.expect("run");
    assert_eq!(delivery_on(&app, &ids, email).await["status"], "succeeded");
    assert_eq!(server.mails().len(), 1);
    let (status, _) = app.post(&format!("/api/v1/deliveries/{}/retry", dead["id"]), &json!({})).await;
    assert_eq!(status, 409, "a delivered message is not sent again by a retry");
    sim.stop().await;
}

#[tokio::test]
async fn an_email_channel_moved_to_another_server_does_not_take_its_password_along() {
    const VICTIM_CODE: &str = "VICTIMAUTHCODE99";
    // The server a token holder controls: it accepts any login and records every password.
    let attacker = SmtpServer::start_capturing("tls");
    let (app, sim, _control) = app_with_sim().await;
    let provider_id = app.create_provider("1900000100").await;
    let victim =
        json!({"preset": "163", "username": USER, "password": VICTIM_CODE, "from": USER, "to": ["ops@example.com"]});
    let email = channel(&app, json!({"provider_id": provider_id}), "email", victim).await;
    let path = format!("/api/v1/channels/{email}");

    // The attack: point the channel at the attacker's server (trusting the attacker's CA), keep the password.
    let moved = json!({"settings": {"preset": null, "host": "localhost", "port": attacker.port, "ca_pem": testdata("tls_ca.pem")}});
    let (status, patched) = app.patch(&path, &moved).await;
    assert_eq!(status, 200, "{patched}");
    let (status, test) = app.post(&format!("{path}/test"), &json!({})).await;
    assert_eq!(status, 200, "{test}");
    let captured = attacker.captured();
    assert!(!captured.contains(VICTIM_CODE), "the stored password reached the attacker's server: {captured}");
    // The answer to the PATCH said the password was dropped, and the test send said why nothing was sent.
    assert_eq!(patched["secrets_cleared"], json!(["password"]), "{patched}");
    assert_eq!(patched["secrets_set"], json!([]), "{patched}");
    assert_eq!((test["ok"].as_bool(), test["code"].as_str()), (Some(false), Some("credential_cleared")), "{test}");
    assert_eq!(test["transient"], false);
    assert!(test["answer"].as_str().is_some_and(|a| a.contains("cleared when the destination changed")), "{test}");
    // Nor through the queue.
    let ids = notify(&app, provider_id, EventKind::ComplaintCreated, "complaint:C7:n1", None).await;
    app.worker().run_pending().await.expect("run");
    let refused = delivery(&app, ids[0]).await;
    assert_eq!((refused["status"].as_str(), refused["last_code"].as_str()), (Some("dead"), Some("credential_cleared")));
    assert_eq!(refused["attempts"], 1, "not retried: {refused}");
    let captured = attacker.captured();
    assert!(!captured.contains(VICTIM_CODE), "the stored password reached the attacker's server: {captured}");
    assert!(captured.is_empty(), "nothing was sent at all: {captured}");

    // The audit log says what was dropped and why, and that sends were refused.
    let mut conn = app.state.store().conn().await.expect("conn");
    let target = email.to_string();
    let page = wxrisk::store::Page { after_id: 0, limit: 100 };
    let entries = wxrisk::store::audit::list(&mut conn, Some(("channel", &target)), page).await.expect("audit");
    drop(conn);
    let update = entries.iter().find(|e| e.action == "channel.update").expect("update audited");
    let detail: Value = serde_json::from_str(&update.detail).expect("json");
    assert_eq!(detail["secrets_cleared"], json!(["password"]), "{detail}");
    assert!(!update.detail.contains(VICTIM_CODE));
    let tested = entries.iter().find(|e| e.action == "channel.test").expect("test audited");
    assert!(tested.detail.contains("credential_cleared"), "{}", tested.detail);
    assert!(entries.iter().any(|e| e.action == "channel.send_refused"), "the refused delivery is audited");

    // A later change that does not give it back is told why the channel is incomplete; giving it makes the
    // channel whole, and the server gets what its owner gave it, nothing more.
    let (status, patched) = app.patch(&path, &json!({"settings": {"to": ["boss@example.com"]}})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["secrets_cleared"], json!(["password"]), "still cleared: {patched}");
    let (status, patched) = app.patch(&path, &json!({"settings": {"password": "ATTACKERSOWNCODE"}})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!((patched["secrets_cleared"].clone(), patched["secrets_set"].clone()), (json!([]), json!(["password"])));
    let (_, test) = app.post(&format!("{path}/test"), &json!({})).await;
    assert_eq!(test["ok"], true, "{test}");
    let captured = attacker.captured();
    assert!(captured.contains("ATTACKERSOWNCODE") && !captured.contains(VICTIM_CODE), "{captured}");
    sim.stop().await;
}
