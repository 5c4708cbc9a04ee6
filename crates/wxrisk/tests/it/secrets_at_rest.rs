//! Secrets at rest: bound to their row (a value moved to another row does not open there), old-format values
//! moved to row binding once at start and refused after that, and the data directory's files private.

use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use base64::Engine as _;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use wxrisk::secrets::SecretsError;
use wxrisk::store::secrets::{CHANNEL_SECRETS, PAYER_PHONE, PROVIDER_APIV3_KEY, PROVIDER_PRIVATE_KEY, SealedColumn};

use crate::helpers::*;
use crate::notify::{WEBHOOK_SECRET, app_with_sim, channel};

/// The master key the test app created in its data directory.
fn master_key(db: &TestDb) -> [u8; 32] {
    let text = std::fs::read_to_string(db.data_dir().join("master.key")).expect("key file");
    wxrisk::config::decode_master_key(&text).expect("key")
}

/// A value in the old, row-unbound format, written the way the code before row binding wrote it: AES-256-GCM with
/// the associated data `table.column`. Written here with aws-lc-rs directly, not with wxrisk's code.
fn seal_v1(key: &[u8; 32], column: &str, plaintext: &[u8]) -> String {
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("key"));
    let mut nonce = [0u8; 12];
    aws_lc_rs::rand::fill(&mut nonce).expect("random");
    let mut buffer = plaintext.to_vec();
    aead.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(column.as_bytes()), &mut buffer)
        .expect("seal");
    let key_id = hex::encode(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key).as_ref()[..4]);
    let mut packed = nonce.to_vec();
    packed.extend_from_slice(&buffer);
    format!("v1.{key_id}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(packed))
}

async fn sealed(app: &TestApp, column: SealedColumn, id: i64) -> String {
    let mut conn = app.state.store().conn().await.expect("conn");
    let sql = format!("select {} as v from {} where id = $1", column.column, column.table);
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(&mut *conn).await.expect("select");
    sqlx::Row::get(&row, "v")
}

async fn write_sealed(store: &wxrisk::store::Store, column: SealedColumn, id: i64, value: &str) {
    let sql = format!("update {} set {} = $1 where id = $2", column.table, column.column);
    let done = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(value).bind(id).execute(store.pool()).await.expect("update");
    assert_eq!(done.rows_affected(), 1);
}

fn email_settings(password: &str) -> Value {
    json!({"preset": "163", "username": "alerts@163.com", "password": password, "from": "alerts@163.com", "to": ["ops@example.com"]})
}

#[tokio::test]
async fn a_secret_moved_into_another_row_does_not_open_there() {
    let app = spawn_app().await;
    let first = app.create_provider("1900000109").await;
    let second = app.create_provider("1900000110").await;
    let state = &app.state;
    assert!(state.wechat().get(state, second).await.expect("builds").is_some());

    // A database writer gives the second provider the first one's sealed APIv3 key.
    let first_key = sealed(&app, PROVIDER_APIV3_KEY, first).await;
    write_sealed(state.store(), PROVIDER_APIV3_KEY, second, &first_key).await;
    state.wechat().forget(second);
    let error = state.wechat().get(state, second).await.expect_err("the second provider cannot use it");
    let text = error.to_string();
    assert!(
        text.contains(&format!("providers.apiv3_key_sealed of row {second}")) && text.contains("does not open"),
        "{text}"
    );
    let opened = state.keyring().open(&PROVIDER_APIV3_KEY.row(second), &first_key);
    assert!(matches!(opened, Err(SecretsError::Corrupt { .. })));
    // It is a good value — for the row it was sealed for.
    let opened = state.keyring().open_string(&PROVIDER_APIV3_KEY.row(first), &first_key).expect("opens for its row");
    assert_eq!(opened.expose_secret(), APIV3_KEY);
    state.wechat().forget(first);
    assert!(state.wechat().get(state, first).await.expect("unaffected").is_some());

    // The same for a channel password.
    let owner = |p: i64| json!({"provider_id": p});
    let mine = channel(&app, owner(first), "email", email_settings("FIRSTCODE")).await;
    let theirs = channel(&app, owner(second), "email", email_settings("SECONDCODE")).await;
    let first_secrets = sealed(&app, CHANNEL_SECRETS, mine).await;
    write_sealed(state.store(), CHANNEL_SECRETS, theirs, &first_secrets).await;
    let (status, refused) = app.post(&format!("/api/v1/channels/{theirs}/test"), &json!({})).await;
    assert_eq!(status, 400, "{refused}");
    let message = refused["message"].as_str().expect("message");
    assert!(message.contains(&format!("channels.secrets_sealed of row {theirs}")), "{message}");
    assert!(!message.contains("FIRSTCODE"));
    // The channel can still be read, and repaired by giving its password again.
    let path = format!("/api/v1/channels/{theirs}");
    let (status, shown) = app.get(&path).await;
    assert_eq!((status, shown["secrets_set"].clone()), (200, json!([])), "{shown}");
    let (status, fixed) = app.patch(&path, &json!({"settings": {"password": "SECONDCODE"}})).await;
    assert_eq!(
        (status, fixed["secrets_set"].clone(), fixed["secrets_cleared"].clone()),
        (200, json!(["password"]), json!([]))
    );
    let opened = state.keyring().open(&CHANNEL_SECRETS.row(theirs), &sealed(&app, CHANNEL_SECRETS, theirs).await);
    let opened: Value = serde_json::from_slice(opened.expect("opens").expose_secret()).expect("json");
    assert_eq!(opened, json!({"password": "SECONDCODE"}));
    app.stop().await;
}

#[tokio::test]
async fn old_format_secrets_move_to_row_binding_once_and_are_refused_after() {
    let (app, sim, control) = app_with_sim().await;
    let hook = control.post("/webhooks", json!({"name": "erp", "secret": WEBHOOK_SECRET})).await;
    let provider_id = app.create_provider("1900000109").await;
    let hook_id = channel(
        &app,
        json!({"provider_id": provider_id}),
        "webhook",
        json!({"url": hook["url"], "secret": WEBHOOK_SECRET}),
    )
    .await;
    let complaint_id = seed_complaint(&app, provider_id).await;
    let plain = |column: SealedColumn, id: i64, value: &str| {
        let opened = app.state.keyring().open(&column.row(id), value).expect("opens");
        opened.expose_secret().clone()
    };
    let private_key = plain(PROVIDER_PRIVATE_KEY, provider_id, &sealed(&app, PROVIDER_PRIVATE_KEY, provider_id).await);
    let channel_secrets = plain(CHANNEL_SECRETS, hook_id, &sealed(&app, CHANNEL_SECRETS, hook_id).await);
    let db = app.stop().await;

    // The database as the previous version left it: every value in v1, no record of the move, a cached token.
    let key = master_key(&db);
    let store = wxrisk::store::Store::connect(&db.url, &test_config(&db, &[]).database).await.expect("connect");
    let old_values = [
        (PROVIDER_PRIVATE_KEY, provider_id, private_key.clone()),
        (PROVIDER_APIV3_KEY, provider_id, APIV3_KEY.as_bytes().to_vec()),
        (CHANNEL_SECRETS, hook_id, channel_secrets.clone()),
        (PAYER_PHONE, complaint_id, b"+8613800138000".to_vec()),
    ];
    for (column, id, value) in &old_values {
        write_sealed(&store, *column, *id, &seal_v1(&key, column.purpose(), value)).await;
    }
    sqlx::query("delete from secrets_binding").execute(store.pool()).await.expect("no record");
    sqlx::query("insert into oa_tokens (appid, access_token_sealed, expires_at, updated_at) values ($1, $2, $3, 0)")
        .bind("wx1234567890abcdef")
        .bind(seal_v1(&key, "oa_tokens.access_token_sealed", b"OLDTOKEN"))
        .bind(i64::MAX / 2)
        .execute(store.pool())
        .await
        .expect("token");
    store.close().await;

    // The first start of this version moves them: each opens again, for its own row, under the current key.
    let app = crate::destinations::app_on(db, &sim, true).await;
    let ring = app.state.keyring();
    for (column, id, value) in &old_values {
        let now_sealed = sealed(&app, *column, *id).await;
        assert!(ring.is_current(&now_sealed), "{} re-sealed: {now_sealed}", column.purpose());
        assert_eq!(ring.open(&column.row(*id), &now_sealed).expect("opens").expose_secret(), value);
    }
    assert_eq!(app.count("oa_tokens").await, 0, "cached tokens are fetched again, not moved");
    assert_eq!(app.count("secrets_binding").await, 1);
    let mut conn = app.state.store().conn().await.expect("conn");
    let page = wxrisk::store::Page { after_id: 0, limit: 10 };
    let entries = wxrisk::store::audit::list(&mut conn, Some(("secrets", "v2")), page).await.expect("audit");
    drop(conn);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "secrets.bind_to_rows");
    assert_eq!(serde_json::from_str::<Value>(&entries[0].detail).expect("json")["resealed"], 4);
    assert!(app.state.wechat().get(&app.state, provider_id).await.expect("provider works").is_some());
    let (_, sent) = app.post(&format!("/api/v1/channels/{hook_id}/test"), &json!({})).await;
    assert_eq!(sent["ok"], true, "{sent}");

    // After the move, a v1 value is refused wherever it appears — also after another start — and says so.
    let stray = seal_v1(&key, CHANNEL_SECRETS.purpose(), &channel_secrets);
    write_sealed(app.state.store(), CHANNEL_SECRETS, hook_id, &stray).await;
    let (status, refused) = app.post(&format!("/api/v1/channels/{hook_id}/test"), &json!({})).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["message"].as_str().is_some_and(|m| m.contains("old v1 format")), "{refused}");
    let db = app.stop().await;
    let app = crate::destinations::app_on(db, &sim, true).await;
    assert_eq!(sealed(&app, CHANNEL_SECRETS, hook_id).await, stray, "not moved by a later start");
    let db = app.stop().await;
    let output = wxrisk_command(&db).args(["secrets", "rotate"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("channels.secrets_sealed of row {hook_id}")) && stderr.contains("v1"), "{stderr}");
    // Giving the secret again repairs the channel.
    let app = crate::destinations::app_on(db, &sim, true).await;
    let path = format!("/api/v1/channels/{hook_id}");
    let (status, fixed) = app.patch(&path, &json!({"settings": {"secret": WEBHOOK_SECRET}})).await;
    assert_eq!(status, 200, "{fixed}");
    let (_, sent) = app.post(&format!("{path}/test"), &json!({})).await;
    assert_eq!(sent["ok"], true, "{sent}");
    app.stop().await;
    sim.stop().await;
}

async fn seed_complaint(app: &TestApp, provider_id: i64) -> i64 {
    let now = app.now();
    let write = wxrisk::store::complaints::ComplaintWrite {
        provider_id,
        complaint_id: "200201820261127000000000077",
        complainted_mchid: "1900000201",
        state: "PENDING",
        complaint_time: now,
        detail: "seed",
        problem_type: Some("OTHERS"),
        problem_description: None,
        apply_refund_amount: None,
        amount_total: 990,
        payer_phone_masked: Some("138****8000"),
        payer_openid: None,
        user_complaint_times: 1,
        full_refunded: false,
        incoming_user_response: false,
        in_platform_service: false,
        need_immediate_service: false,
        orders: "[]",
        detail_json: "{}",
        history_json: "[]",
        last_action_type: None,
        reply_due_at: now + 86_400_000,
        resolve_due_at: now + 3 * 86_400_000,
        fingerprint: "seed",
    };
    let mut tx = app.state.store().begin().await.expect("begin");
    let (id, _) = wxrisk::store::complaints::upsert(&mut tx, &write, now).await.expect("complaint");
    let phone = app.state.keyring().seal(&PAYER_PHONE.row(id), b"+8613800138000").expect("seal");
    wxrisk::store::secrets::put(&mut tx, PAYER_PHONE, id, Some(&phone)).await.expect("phone");
    tx.commit().await.expect("commit");
    id
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_its_files_are_private() {
    let db = TestDb::new().await;
    let data_dir = db.data_dir().join("fresh").join("data");
    let data_dir_text = data_dir.display().to_string();
    let mut extra = vec![("WXRISK_DATA_DIR", data_dir_text.as_str())];
    if !db.is_postgres() {
        // The default database: <data_dir>/wxrisk.db.
        extra.push(("WXRISK_DATABASE_URL", ""));
    }
    let app = wxrisk::App::builder(test_config(&db, &extra)).role(wxrisk::Role::Worker).build().await.expect("starts");
    // Writes, so SQLite has its -wal and -shm files.
    create_scoped_token(app.state(), "modes", Scope::Read, None, 0).await;
    assert_eq!(mode(&data_dir), 0o700, "a data directory wxrisk creates");
    assert_eq!(mode(data_dir.parent().expect("parent")), 0o700, "and its missing parents");
    assert_eq!(mode(&data_dir.join("master.key")), 0o600);
    if !db.is_postgres() {
        for file in ["wxrisk.db", "wxrisk.db-wal", "wxrisk.db-shm"] {
            assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
        }
    }
    app.state().store().close().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_master_key_file_others_can_read_stops_the_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = spawn_app().await;
    let db = app.stop().await;
    let key_file = db.data_dir().join("master.key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let build = |extra: &'static [(&'static str, &'static str)]| {
        wxrisk::App::builder(test_config(&db, extra)).role(wxrisk::Role::Worker).build()
    };
    let error = format!("{:#}", build(&[]).await.expect_err("refused"));
    let fix = format!("chmod 600 {}", key_file.display());
    assert!(
        error.contains(&key_file.display().to_string()) && error.contains("0644") && error.contains(&fix),
        "{error}"
    );
    // The binary says the same and exits non-zero.
    let output = wxrisk_command(&db).args(["jobs", "list"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&fix), "{}", String::from_utf8_lossy(&output.stderr));
    // The explicit override starts it.
    let app = build(&[("WXRISK_ALLOW_READABLE_MASTER_KEY_FILE", "true")]).await.expect("allowed");
    app.state().store().close().await;
    assert_eq!(mode(&key_file), 0o644, "the override changes nothing on disk");
}
