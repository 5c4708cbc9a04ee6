//! The `wxrisk` binary as an operator runs it: `serve` on SQLite and PostgreSQL, tokens, users, jobs, config and
//! secret rotation — and a known secret found neither in the database file nor in the logs.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret as _;
use serde_json::json;
use wxrisk::secrets::Keyring;

use crate::helpers::*;

const SMTP_PASSWORD: &str = "SMTPAUTHCODE9876";

fn command(db: &TestDb, extra: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = wxrisk_command(db);
    cmd.args(args);
    cmd.envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    cmd
}

fn run(db: &TestDb, extra: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = command(db, extra, args);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn wxrisk");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wxrisk runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// An admin token; it is the last word of `token create`'s output.
fn create_token(db: &TestDb, name: &str) -> String {
    let output = run(db, &[], &["token", "create", "--name", name, "--scope", "admin"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let token = text.split_whitespace().last().expect("a word").to_owned();
    assert!(token.starts_with("wxr_") && token.len() == 47, "{text}");
    token
}

#[tokio::test]
async fn serve_answers_readyz_and_no_secret_reaches_files_or_logs() {
    let db = TestDb::new().await;
    let token = create_token(&db, "ci");
    let port = free_port();
    let log_path = db.data_dir().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let listen = format!("127.0.0.1:{port}");
    let mut child = command(
        &db,
        &[
            ("WXRISK_LISTEN", &listen),
            ("WXRISK_LOG__LEVEL", "trace"),
            ("WXRISK_PUBLIC_URL", "https://risk.example.com"),
        ],
        &["serve"],
    )
    .stdout(log.try_clone().expect("clone"))
    .stderr(log)
    .spawn()
    .expect("serve starts");
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            let body: serde_json::Value = response.json().await.expect("json");
            assert_eq!(body["database"], if db.is_postgres() { "postgres" } else { "sqlite" });
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not become ready: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "serve exited: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let private_key = testdata("merchant_key.pem");
    let key_line = private_key.lines().nth(3).expect("a key line").to_owned();
    let response = client
        .post(format!("{base}/api/v1/providers"))
        .bearer_auth(&token)
        .json(&provider_body("1900000109"))
        .send()
        .await
        .expect("POST");
    let (status, provider) = decode(response).await;
    assert_eq!(status, 201, "{provider}");
    let channel = json!({"provider_id": provider["id"], "kind": "email",
        "settings": {"preset": "163", "username": "alerts@163.com", "password": SMTP_PASSWORD, "from": "alerts@163.com", "to": ["ops@example.com"]}});
    let response =
        client.post(format!("{base}/api/v1/channels")).bearer_auth(&token).json(&channel).send().await.expect("POST");
    let (status, created) = decode(response).await;
    assert_eq!(status, 201, "{created}");
    // A rejected request carrying the secrets must not log them either.
    let mut bad = provider_body("1900000109");
    bad["appid"] = json!("nope");
    let response =
        client.post(format!("{base}/api/v1/providers")).bearer_auth(&token).json(&bad).send().await.expect("POST");
    assert_eq!(response.status(), 400);

    // SIGTERM: a graceful stop with exit status 0.
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");

    let logs = std::fs::read(&log_path).expect("logs");
    assert!(contains(&logs, "provider.create"), "the log is the one we think it is");
    for secret in [APIV3_KEY, SMTP_PASSWORD, key_line.as_str(), token.as_str()] {
        assert!(!contains(&logs, secret), "a secret reached the log: {secret}");
    }

    if db.is_postgres() {
        let store = wxrisk::store::Store::connect(&db.url, &test_config(&db, &[]).database).await.expect("connect");
        for table in ["providers", "channels", "audit_log", "api_tokens"] {
            let sql = format!("select coalesce(string_agg(row_to_json(t)::text, ''), '') as dump from {table} t");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(store.pool()).await.expect("dump");
            let dump: String = sqlx::Row::get(&row, "dump");
            if table == "providers" {
                assert!(dump.contains("1900000109"), "the dump is the one we think it is");
            }
            for secret in [APIV3_KEY, SMTP_PASSWORD, key_line.as_str(), token.as_str()] {
                assert!(!dump.contains(secret), "{table} holds a secret in clear: {secret}");
            }
        }
        store.close().await;
    } else {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(data) = std::fs::read(db.data_dir().join(format!("wxrisk.db{suffix}"))) {
                bytes.extend(data);
            }
        }
        assert!(contains(&bytes, "1900000109"), "the database file is the one we think it is");
        for secret in [APIV3_KEY, SMTP_PASSWORD, key_line.as_str(), token.as_str()] {
            assert!(!contains(&bytes, secret), "the SQLite file holds a secret in clear: {secret}");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(db.data_dir().join("master.key")).expect("key file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn config_check_redacts_and_bad_settings_stop_the_start() {
    let db = TestDb::new().await;
    let master = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let output = run(
        &db,
        &[
            ("WXRISK_MASTER_KEY", master),
            ("WXRISK_DATABASE_URL", "postgres://app:hunter2@db.internal/wxrisk"),
            ("WXRISK_METRICS__TOKEN", "prometheus-scrapes-7c1d9e"),
        ],
        &["config", "check"],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("listen = \"127.0.0.1:8080\""), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert!(!text.contains("AAECAwQF") && !text.contains("hunter2"), "{text}");
    assert!(!text.contains("prometheus-scrapes") && text.contains("[metrics]\ntoken = \"<redacted>\""), "{text}");

    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case<'_>; 4] = [
        (&[("WXRISK_JOBS__CONCURRENCY", "zero")], &["config", "check"], "WXRISK_JOBS__CONCURRENCY"),
        (&[("WXRISK_LISTN", "0.0.0.0:80")], &["serve"], "WXRISK_LISTN"),
        (&[("WXRISK_LISTEN", "everywhere")], &["serve"], "WXRISK_LISTEN"),
        (&[("WXRISK_MASTER_KEY", "dG9vIHNob3J0")], &["serve"], "master_key"),
    ];
    for (env, args, named) in cases {
        let output = run(&db, env, args, None);
        assert_eq!(output.status.code(), Some(2), "{env:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(named), "{env:?}: {}", stderr(&output));
    }
    std::fs::write(db.data_dir().join("wxrisk.toml"), "[jobs]\nconcurency = 3\n").expect("write");
    let output = run(&db, &[], &["config", "check"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("jobs.concurency"), "{}", stderr(&output));
}

#[tokio::test]
async fn users_tokens_jobs_and_migrate_commands() {
    let db = TestDb::new().await;
    let output = run(&db, &[], &["migrate"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("current schema"));

    let output = run(&db, &[], &["user", "add", "alice", "--password-stdin"], Some("correct horse battery\n"));
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(&db, &[], &["user", "add", "alice", "--password-stdin"], Some("another long password\n"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("exists"), "{}", stderr(&output));
    let output = run(&db, &[], &["user", "add", "bob"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let generated = stdout(&output).split_whitespace().last().expect("password").to_owned();
    let output = run(&db, &[], &["user", "passwd", "alice", "--password-stdin"], Some("short\n"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("at least 10"), "{}", stderr(&output));
    let output = run(&db, &[], &["user", "list"], None);
    let listing = stdout(&output);
    assert!(listing.contains("alice") && listing.contains("bob"), "{listing}");

    let store = wxrisk::store::Store::connect(&db.url, &test_config(&db, &[]).database).await.expect("connect");
    let mut conn = store.conn().await.expect("conn");
    let bob = wxrisk::store::users::get_by_username(&mut conn, "bob").await.expect("query").expect("bob");
    assert!(wxrisk::auth::verify_password(&secrecy::SecretString::from(generated), &bob.password_hash));
    let alice = wxrisk::store::users::get_by_username(&mut conn, "alice").await.expect("query").expect("alice");
    assert!(wxrisk::auth::verify_password(&secrecy::SecretString::from("correct horse battery"), &alice.password_hash));

    let first = create_token(&db, "deploy");
    let output = run(&db, &[], &["token", "create", "--name", "deploy"], None);
    assert_eq!(output.status.code(), Some(1), "a second active token of one name");
    let output = run(&db, &[], &["token", "list"], None);
    let listing = stdout(&output);
    assert!(listing.contains("deploy") && listing.contains("active") && !listing.contains(&first), "{listing}");
    let output = run(&db, &[], &["token", "revoke", "deploy"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(&db, &[], &["token", "revoke", "deploy"], None);
    assert_eq!(output.status.code(), Some(1));
    let check = wxrisk::auth::authenticate_token(&store, &first, 0).await.expect("auth");
    assert_eq!(check, wxrisk::auth::TokenCheck::Invalid, "revoked");

    // Scopes and expiry: the default is `read`; the audit log records what was granted.
    let output = run(&db, &[], &["token", "create", "--name", "viewer"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("scope read, expires never"), "{}", stdout(&output));
    let output = run(&db, &[], &["token", "create", "--name", "ops", "--scope", "operate", "--expires", "30d"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let ops = stdout(&output).split_whitespace().last().expect("token").to_owned();
    let output =
        run(&db, &[], &["token", "create", "--name", "until", "--scope", "admin", "--expires", "2999-01-01"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(&db, &[], &["token", "list"], None);
    let listing = stdout(&output);
    let line = |name: &str| listing.lines().find(|l| l.split('\t').nth(1) == Some(name)).unwrap_or_default().to_owned();
    assert!(line("viewer").contains("\tread\tactive\tnever\t"), "{listing}");
    assert!(line("ops").contains("\toperate\tactive\t") && !line("ops").contains("\tnever\t"), "{listing}");
    assert!(line("until").contains("\tadmin\tactive\t2999-01-01T00:00:00+08:00\t"), "{listing}");
    let now = wxrisk::clock::Clock::now_ms(&wxrisk::clock::SystemClock);
    let check = wxrisk::auth::authenticate_token(&store, &ops, now).await.expect("auth");
    let wxrisk::auth::TokenCheck::Valid(caller) = check else { panic!("{check:?}") };
    assert_eq!(caller.grant.scope, Scope::Operate);
    let check = wxrisk::auth::authenticate_token(&store, &ops, now + 31 * 86_400_000).await.expect("auth");
    assert!(matches!(check, wxrisk::auth::TokenCheck::Expired { .. }), "{check:?}");
    let audit = wxrisk::store::audit::list(&mut conn, None, wxrisk::store::Page { after_id: 0, limit: 50 })
        .await
        .expect("audit");
    let created: Vec<serde_json::Value> = audit
        .iter()
        .filter(|e| e.action == "token.create")
        .map(|e| serde_json::from_str(&e.detail).expect("json"))
        .collect();
    assert!(
        created.iter().any(|d| d["name"] == "ops" && d["scope"] == "operate" && d["expires_at"].is_i64()),
        "{created:?}"
    );
    assert!(created.iter().any(|d| d["name"] == "viewer" && d["scope"] == "read" && d["expires_at"].is_null()));
    for (args, says) in [
        (&["--scope", "root"][..], "root"),
        (&["--expires", "2001-01-01"][..], "not in the future"),
        (&["--expires", "soon"][..], "neither a time from now"),
    ] {
        let mut all = vec!["token", "create", "--name", "refused"];
        all.extend_from_slice(args);
        let output = run(&db, &[], &all, None);
        assert!(!output.status.success() && stderr(&output).contains(says), "{args:?}: {}", stderr(&output));
    }

    // A dead job, listed and retried from the command line.
    let job = wxrisk::jobs::NewJob {
        kind: "test.cli".into(),
        dedupe_key: "cli-job".into(),
        payload: json!({}),
        provider_id: None,
        run_at: 0,
    };
    let mut tx = store.begin().await.expect("begin");
    let id = wxrisk::store::jobs::enqueue(&mut tx, &job, 0).await.expect("enqueue").expect("id");
    sqlx::query("update jobs set status = 'dead', last_error = 'HTTP 400: PARAM_ERROR' where id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .expect("kill");
    tx.commit().await.expect("commit");
    drop(conn);
    let output = run(&db, &[], &["jobs", "list", "--status", "dead"], None);
    let listing = stdout(&output);
    assert!(listing.contains("test.cli") && listing.contains("PARAM_ERROR"), "{listing}");
    let output = run(&db, &[], &["jobs", "retry", &id.to_string()], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut conn = store.conn().await.expect("conn");
    assert_eq!(wxrisk::store::jobs::get(&mut conn, id).await.expect("get").expect("row").status, "queued");
    drop(conn);
    let output = run(&db, &[], &["jobs", "retry", "999999"], None);
    assert_eq!(output.status.code(), Some(1));
    let output = run(&db, &[], &["jobs", "list", "--status", "exploded"], None);
    assert_eq!(output.status.code(), Some(1));
    store.close().await;
}

/// Every sealed value, with the slot (column and row) it is sealed for.
async fn sealed_values(db: &TestDb) -> Vec<(wxrisk::secrets::SecretSlot, String)> {
    let store = wxrisk::store::Store::connect(&db.url, &test_config(db, &[]).database).await.expect("connect");
    let mut values = Vec::new();
    for column in wxrisk::store::secrets::SEALED_COLUMNS {
        let sql =
            format!("select id, {} as v from {} where {} is not null", column.column, column.table, column.column);
        for row in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(store.pool()).await.expect("select") {
            let id: i64 = sqlx::Row::get(&row, "id");
            values.push((column.row(id), sqlx::Row::get::<String, _>(&row, "v")));
        }
    }
    store.close().await;
    values
}

fn key_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("master.key"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn secrets_rotate_reseals_every_secret() {
    let app = spawn_app().await;
    let provider = app.create_provider("1900000109").await;
    let channel = json!({"provider_id": provider, "kind": "webhook", "settings": {"url": "https://hooks.example.com/x", "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}});
    assert_eq!(app.post("/api/v1/channels", &channel).await.0, 201);
    let old_id = app.state.keyring().current_id().to_owned();
    let db = app.stop().await;
    assert_eq!(sealed_values(&db).await.len(), 3);

    let output = run(&db, &[], &["secrets", "rotate"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("re-sealed 3 secret(s)"), "{}", stdout(&output));
    assert_eq!(key_files(db.data_dir()), ["master.key".to_owned(), format!("master.key.retired-{old_id}")]);
    let ring = Keyring::load(&test_config(&db, &[])).expect("keyring");
    assert_ne!(ring.current_id(), old_id);
    for (slot, value) in sealed_values(&db).await {
        assert!(ring.is_current(&value), "{slot} re-sealed");
        let opened = ring.open(&slot, &value).expect("opens");
        assert!(!opened.expose_secret().is_empty());
    }
    // Without the retired key, nothing sealed before is needed any more.
    std::fs::remove_file(db.data_dir().join(format!("master.key.retired-{old_id}"))).expect("remove");
    let ring = Keyring::load(&test_config(&db, &[])).expect("keyring");
    let apiv3 = sealed_values(&db)
        .await
        .into_iter()
        .find(|(slot, _)| slot.column() == "providers.apiv3_key_sealed")
        .expect("apiv3");
    let opened = ring.open_string(&apiv3.0, &apiv3.1).expect("opens with the new key alone");
    assert_eq!(opened.expose_secret(), APIV3_KEY);

    // With the key in the environment, the new one must be given, and then it is used.
    let env_key = wxrisk::secrets::encode_key(&[3u8; 32]);
    let output = run(&db, &[("WXRISK_MASTER_KEY", &env_key)], &["secrets", "rotate"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("WXRISK_NEW_MASTER_KEY"), "{}", stderr(&output));
    let new_key = wxrisk::secrets::encode_key(&[4u8; 32]);
    let output =
        run(&db, &[("WXRISK_MASTER_KEY", &env_key), ("WXRISK_NEW_MASTER_KEY", &new_key)], &["secrets", "rotate"], None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("re-sealed 3 secret(s)"), "{}", stdout(&output));
    let ring = Keyring::from_keys(&[4u8; 32], &[]);
    for (slot, value) in sealed_values(&db).await {
        ring.open(&slot, &value).expect("sealed under the new key");
    }
}

/// Callbacks a test receiver got: headers and body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

#[tokio::test]
async fn sim_send_delivers_a_callback_signed_with_the_kept_keys() {
    let received: Received = Default::default();
    let sink = received.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let sink = sink.clone();
        async move {
            sink.lock().expect("lock").push((headers, body.to_vec()));
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/callbacks/1/complaints", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let db = TestDb::new().await;
    let keys_dir = db.data_dir().join("simkeys");
    let keys = keys_dir.display().to_string();
    let output = tokio::task::spawn_blocking(move || {
        let db_ref = db;
        let output = run(
            &db_ref,
            &[],
            &["sim", "--keys-dir", &keys, "send", "complaint", "--to", &url, "--id", "200201820261127000000000001"],
            None,
        );
        (db_ref, output)
    })
    .await
    .expect("join");
    let (_db, output) = output;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("\"status\": 204"), "{}", stdout(&output));

    let (headers, body) = received.lock().expect("lock").first().cloned().expect("a callback arrived");
    let read = |name: &str| std::fs::read_to_string(keys_dir.join(name)).expect(name);
    let keys = wechatpay::PlatformKeys::new(
        None,
        vec![wechatpay::PlatformCertificate::from_pem(&read("platform_cert.pem")).expect("cert")],
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verified =
        wechatpay::verify_notification(&keys, &headers, &body, now).expect("signed with the kept platform key");
    let apiv3 = wechatpay::Apiv3Key::new(read("apiv3_key.txt").trim().as_bytes()).expect("key");
    match verified.event(&apiv3).expect("decrypts") {
        wechatpay::Event::Complaint(notice) => assert_eq!(notice.complaint_id, "200201820261127000000000001"),
        other => panic!("{other:?}"),
    }
}
