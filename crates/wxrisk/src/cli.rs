//! The command line: `serve`, `migrate`, `config check`, `user`, `token`, `jobs`, `channel`, `wechat`, `secrets`, `sim`.
//!
//! Contract: each command loads the configuration first (a bad setting stops it with the setting's name, exit
//! status 2), prints its result on stdout and errors on stderr, and exits non-zero on failure. Commands that
//! touch the database migrate it first, so they work on a fresh machine.
//!
//! `sim` is the only code of the product that uses the simulator (`wxsim`); it exists with the `sim` cargo feature
//! (on by default), so a production build (`--no-default-features`) contains no simulator at all.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret as _, SecretString};
use tracing_subscriber::EnvFilter;

use crate::auth::{self, Actor};
use crate::clock::{Clock as _, SystemClock, format_shanghai};
use crate::config::{Config, LogFormat};
use crate::secrets::{self, Keyring};
use crate::store::{self, Store, tokens, users};
use crate::{App, Role};

#[derive(Debug, Parser)]
#[command(name = "wxrisk", version, about = "WeChat Pay complaint and violation handling for service providers")]
pub struct Cli {
    /// Configuration file (default: ./wxrisk.toml when it exists). Also WXRISK_CONFIG.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: HTTP API, callbacks and the job worker.
    Serve {
        /// `web` serves HTTP only, `worker` works jobs only; several processes can share a PostgreSQL database.
        #[arg(long, value_enum, default_value = "all", env = "WXRISK_ROLE")]
        role: Role,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Console users.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The job queue.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Notification channels.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// A provider's setup at WeChat Pay.
    #[command(subcommand)]
    Wechat(WechatCommand),
    /// Secrets at rest.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// The built-in simulator of WeChat Pay, the official account, Tencent SMS and chat robots.
    #[cfg(feature = "sim")]
    Sim(SimArgs),
}

#[cfg(feature = "sim")]
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    #[command(subcommand)]
    pub action: Option<SimAction>,
    /// Where the simulator listens.
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub listen: std::net::SocketAddr,
    /// Where its keys are kept (created on first run), so a provider configured against it stays valid.
    /// Default: <data_dir>/sim.
    #[arg(long)]
    pub keys_dir: Option<PathBuf>,
    /// `certificate`, `public_key`, or `both` (the switch between them).
    #[arg(long, default_value = "certificate")]
    pub sign_mode: String,
}

#[cfg(feature = "sim")]
#[derive(Debug, Subcommand)]
pub enum SimAction {
    /// Send one signed, encrypted callback to a URL, with the simulator's keys, and print the answer.
    Send {
        /// `complaint`, `violation` or `refund`.
        kind: String,
        #[arg(long)]
        to: String,
        /// Complaint: the complaint id; violation: the record id. Generated when absent.
        #[arg(long)]
        id: Option<String>,
        /// Complaint: the action_type (CREATE_COMPLAINT …); violation: PUNISH, INTERCEPT or APPEAL.
        #[arg(long)]
        action: Option<String>,
        #[arg(long, default_value = "1900000109")]
        sub_mchid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration and print it, secrets redacted.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a console user. Without --password-stdin a random password is generated and printed.
    Add {
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// `viewer` (reads), `operator` (also acts on complaints, violations and sub-merchants) or `admin`
        /// (everything, including the setup and users).
        #[arg(long, default_value = "admin")]
        role: auth::Role,
    },
    /// Set a user's password.
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token; the token is the last word printed.
    Create {
        #[arg(long)]
        name: String,
        /// What the token may do: `read` (look only), `operate` (also act on complaints, keep sub-merchants and
        /// their channels, test-send through channels, retry jobs and deliveries) or `admin` (also change providers
        /// and their keys, the providers' own channels, templates and callback registration). The default is `read`, the least privilege: a script
        /// that changes the setup must ask for `--scope admin`. (Tokens made before scopes existed are `admin`.)
        #[arg(long, default_value = "read")]
        scope: auth::Scope,
        /// When the token stops working: a time from now (`30d`, `12h`) or a date or time (`2027-01-01` means
        /// 00:00 Asia/Shanghai that day; or RFC 3339). Default: never.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Revoke a token by name or id.
    Revoke { name_or_id: String },
    /// List tokens (never the tokens themselves).
    List,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Requeue a dead job (or run a waiting one now).
    Retry { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum WechatCommand {
    /// Create or update the complaint and violation notification URLs at WeChat Pay from WXRISK_PUBLIC_URL.
    Register {
        #[arg(long)]
        provider: i64,
    },
    /// Show the notification URLs WeChat Pay has for the provider, and the ones wxrisk expects.
    Callbacks {
        #[arg(long)]
        provider: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Send a sample message through a channel now and print the service's answer verbatim; exits 1 when the
    /// service refused it.
    Test { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-seal every stored secret under a new master key, bound to its row (format v2). With the key in a file,
    /// a new key file is made and the old one kept as master.key.retired-<id>; with WXRISK_MASTER_KEY, give the
    /// new key in WXRISK_NEW_MASTER_KEY.
    Rotate,
}

/// Run a parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    let config = match Config::load_from_env(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let serving = matches!(cli.command, Command::Serve { .. } | Command::Migrate);
    init_logging(&config, serving);
    match dispatch(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config, serving: bool) {
    // One-shot commands log warnings only, so their stdout stays their answer.
    let level = if serving { config.log.level.clone() } else { "warn".to_owned() };
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colours(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR")));
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Colours only for a person at a terminal: a file, pipe or journal gets plain text (escape codes there are noise
/// that breaks grep), and `NO_COLOR` set to anything non-empty turns them off everywhere (no-color.org).
fn log_colours(stream_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stream_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url, &config.database).await.with_context(|| {
        format!("cannot open the database {}", crate::config::redact_url_password(&config.database_url))
    })?;
    store::migrate::run(&store, SystemClock.now_ms()).await.context("cannot migrate the database")?;
    Ok(store)
}

/// `--expires`: a time from now (`30d`, `12h`, `90m`) or a date or time (`2027-01-01`: 00:00 Asia/Shanghai that
/// day; RFC 3339). Must lie in the future.
fn parse_expiry(text: &str, now: i64) -> anyhow::Result<i64> {
    let at = match crate::clock::parse_operator_time(text, false) {
        Some(at) => at,
        None => {
            let after = crate::config::parse_duration(text)
                .ok()
                .filter(|d| !d.is_zero())
                .and_then(|d| i64::try_from(d.as_millis()).ok())
                .ok_or_else(|| {
                    anyhow::anyhow!("--expires `{text}` is neither a time from now (30d, 12h) nor a date (2027-01-01)")
                })?;
            now.saturating_add(after)
        }
    };
    if at <= now {
        anyhow::bail!("--expires `{text}` is not in the future ({})", format_shanghai(at));
    }
    Ok(at)
}

fn read_password(from_stdin: bool) -> anyhow::Result<(SecretString, bool)> {
    if !from_stdin {
        return Ok((auth::generate_password()?, true));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    Ok((SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned()), false))
}

async fn dispatch(command: Command, config: Config) -> anyhow::Result<()> {
    let now = SystemClock.now_ms();
    match command {
        Command::Serve { role } => serve(config, role).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            let pending = store::migrate::pending(&store).await?;
            println!("database {} is at the current schema ({} pending)", store.backend().name(), pending.len());
            Ok(())
        }
        Command::Config(ConfigCommand::Check) => {
            println!("# wxrisk configuration: valid. Effective values, secrets redacted:\n");
            print!("{}", config.redacted_toml());
            Ok(())
        }
        Command::User(command) => {
            let store = open_store(&config).await?;
            match command {
                UserCommand::Add { username, password_stdin, role } => {
                    let (password, generated) = read_password(password_stdin)?;
                    auth::add_user(&store, &username, &password, role, now, &Actor::Cli).await?;
                    println!("user {username} added ({})", role.as_str());
                    if generated {
                        println!("password: {}", password.expose_secret());
                    }
                }
                UserCommand::Passwd { username, password_stdin } => {
                    let (password, generated) = read_password(password_stdin)?;
                    auth::set_password(&store, &username, &password, now, &Actor::Cli).await?;
                    println!("password of {username} changed");
                    if generated {
                        println!("password: {}", password.expose_secret());
                    }
                }
                UserCommand::List => {
                    let mut conn = store.conn().await?;
                    for user in users::list(&mut conn).await? {
                        let state = if user.disabled { "disabled" } else { "active" };
                        println!(
                            "{}\t{}\t{}\t{state}\tcreated {}",
                            user.id,
                            user.username,
                            user.role,
                            format_shanghai(user.created_at)
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Token(command) => {
            let store = open_store(&config).await?;
            match command {
                TokenCommand::Create { name, scope, expires } => {
                    let expires_at = expires.as_deref().map(|text| parse_expiry(text, now)).transpose()?;
                    let new = auth::NewToken { name: &name, scope, expires_at };
                    let (id, token) = auth::create_token(&store, &new, now, &Actor::Cli).await?;
                    let until = expires_at.map(format_shanghai).unwrap_or_else(|| "never".to_owned());
                    println!(
                        "created API token {id} `{}` (scope {scope}, expires {until}); it is shown only now:",
                        name.trim()
                    );
                    println!("{}", token.expose_secret());
                }
                TokenCommand::Revoke { name_or_id } => {
                    let mut tx = store.begin().await?;
                    let Some(row) = tokens::revoke(&mut tx, &name_or_id, now).await? else {
                        anyhow::bail!("no active token `{name_or_id}`");
                    };
                    store::audit::record(
                        &mut tx,
                        now,
                        &Actor::Cli.label(),
                        "token.revoke",
                        ("api_token", &row.id.to_string()),
                        &serde_json::json!({"name": row.name}),
                    )
                    .await?;
                    tx.commit().await?;
                    println!("revoked token {} `{}`", row.id, row.name);
                }
                TokenCommand::List => {
                    let mut conn = store.conn().await?;
                    for token in tokens::list(&mut conn).await? {
                        let state = match (token.revoked_at, token.expires_at) {
                            (Some(at), _) => format!("revoked {}", format_shanghai(at)),
                            (None, Some(at)) if at <= now => "expired".to_owned(),
                            (None, _) => "active".to_owned(),
                        };
                        let expires = token.expires_at.map(format_shanghai).unwrap_or_else(|| "never".to_owned());
                        let used = token.last_used_at.map(format_shanghai).unwrap_or_else(|| "never".to_owned());
                        println!(
                            "{}\t{}\t{}…\t{}\t{state}\t{expires}\t{used}",
                            token.id, token.name, token.token_prefix, token.scope
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Jobs(command) => jobs(config, command).await,
        Command::Channel(ChannelCommand::Test { id }) => test_channel(config, id).await,
        Command::Wechat(command) => wechat(config, command).await,
        Command::Secrets(SecretsCommand::Rotate) => rotate_secrets(config).await,
        #[cfg(feature = "sim")]
        Command::Sim(args) => simulator(config, args).await,
    }
}

async fn serve(config: Config, role: Role) -> anyhow::Result<()> {
    let stop = stop_signal();
    let app = App::builder(config).role(role).build().await?;
    let token = app.shutdown_token();
    tokio::spawn(async move {
        stop.await;
        tracing::info!("stopping: finishing requests and jobs in flight");
        token.cancel();
    });
    app.run_until_stopped().await
}

/// Listens for SIGTERM and SIGINT (Ctrl-C) from the moment it is called, and returns what waits for one. Listening
/// starts here, not when the future is first polled: a stop asked for while the service starts (by then it may
/// already have said `listening`) must stop it gracefully, not kill it with the signal's default action.
fn stop_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn jobs(config: Config, command: JobsCommand) -> anyhow::Result<()> {
    let app = App::builder(config).role(Role::Worker).build().await?;
    let state = app.state();
    match command {
        JobsCommand::List { status, kind, limit } => {
            let filter = crate::web::api::jobs::filter_of(status.as_deref(), kind, None)?;
            let mut conn = state.store().conn().await?;
            let rows = store::jobs::list(&mut conn, &filter, None, limit.clamp(1, 1000)).await?;
            for job in rows {
                println!(
                    "{}\t{}\t{}\tattempts {}\trun at {}\t{}",
                    job.id,
                    job.status,
                    job.kind,
                    job.attempts,
                    format_shanghai(job.run_at),
                    job.last_error.unwrap_or_default()
                );
            }
        }
        JobsCommand::Retry { id } => {
            let job = crate::web::api::jobs::retry_job(state, &Actor::Cli, id).await?;
            println!("job {} ({}) queued to run now", job.id, job.kind);
        }
    }
    state.store().close().await;
    Ok(())
}

async fn wechat(config: Config, command: WechatCommand) -> anyhow::Result<()> {
    let app = App::builder(config).role(Role::Worker).build().await?;
    let state = app.state();
    let result = match command {
        WechatCommand::Register { provider } => match crate::wechat::register_callbacks(state, provider).await {
            Ok(done) => {
                for (name, r) in [("complaints", &done.complaints), ("violations", &done.violations)] {
                    println!(
                        "{name}: {} {}{}",
                        r.action,
                        r.url,
                        match &r.before {
                            Some(before) if *before != r.url => format!(" (was {before})"),
                            _ => String::new(),
                        }
                    );
                }
                Ok(())
            }
            Err(e) => Err(anyhow::anyhow!(e)),
        },
        WechatCommand::Callbacks { provider } => match crate::wechat::current_urls(state, provider).await {
            Ok((complaints, violations)) => {
                let expected = crate::wechat::expected_urls(state, provider);
                let none = || "(none)".to_owned();
                println!("complaints at WeChat Pay: {}", complaints.clone().unwrap_or_else(none));
                println!("violations at WeChat Pay: {}", violations.clone().unwrap_or_else(none));
                match expected {
                    Ok((c, v)) => {
                        let in_place = complaints.as_deref() == Some(&c) && violations.as_deref() == Some(&v);
                        println!(
                            "expected: {c} and {v} — {}",
                            if in_place { "in place" } else { "run `wxrisk wechat register`" }
                        );
                    }
                    Err(e) => println!("expected: none ({e})"),
                }
                Ok(())
            }
            Err(e) => Err(anyhow::anyhow!(e)),
        },
    };
    state.store().close().await;
    result
}

async fn test_channel(config: Config, id: i64) -> anyhow::Result<()> {
    let app = App::builder(config).role(Role::Worker).build().await?;
    let state = app.state();
    let result = crate::web::api::channels::test_channel(state, id).await;
    state.store().close().await;
    let (row, out) = result?;
    println!("channel {} ({}) → {}", row.id, row.kind, out.recipient);
    println!(
        "{}: code {}{}",
        if out.ok { "accepted" } else { "refused" },
        out.code,
        match &out.external_id {
            Some(id) => format!(", message id {id}"),
            None => String::new(),
        }
    );
    println!("{}", out.answer);
    if !out.ok {
        anyhow::bail!(
            "the service refused the test message ({})",
            if out.transient { "temporary: try again later" } else { "fix the channel settings" }
        );
    }
    Ok(())
}

async fn rotate_secrets(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let old = Keyring::load(&config)?;
    let key_file = config.master_key_file();
    let from_env = std::env::var("WXRISK_NEW_MASTER_KEY").ok().filter(|k| !k.trim().is_empty());
    let new_key = match (&from_env, &config.master_key) {
        (Some(text), _) => crate::config::decode_master_key(text)
            .map_err(|reason| anyhow::anyhow!("WXRISK_NEW_MASTER_KEY: {reason}"))?,
        (None, Some(_)) => anyhow::bail!(
            "the master key comes from WXRISK_MASTER_KEY: put the new key in WXRISK_NEW_MASTER_KEY \
             (e.g. `openssl rand -base64 32`) and run this again"
        ),
        (None, None) => secrets::load_or_create_next_key(&key_file, config.allow_readable_master_key_file)?,
    };
    let ring = old.with_new_current(&new_key);
    if ring.current_id() == old.current_id() {
        anyhow::bail!("the new master key is the current one");
    }
    let now = SystemClock.now_ms();
    let mut tx = store.begin().await?;
    let count = store::secrets::reseal_all(&mut tx, &ring, now).await?;
    let detail = serde_json::json!({"from_key": old.current_id(), "to_key": ring.current_id(), "resealed": count});
    store::audit::record(
        &mut tx,
        now,
        &Actor::Cli.label(),
        "secrets.rotate",
        ("master_key", ring.current_id()),
        &detail,
    )
    .await?;
    tx.commit().await?;
    println!("re-sealed {count} secret(s) under master key {} (was {})", ring.current_id(), old.current_id());
    if from_env.is_none() && config.master_key.is_none() {
        secrets::finish_file_rotation(&key_file, old.current_id())?;
        println!(
            "{} now holds the new key; the old one is kept as master.key.retired-{} (delete it once backups \
             made before today are no longer needed)",
            key_file.display(),
            old.current_id()
        );
    } else {
        println!(
            "now set WXRISK_MASTER_KEY to the new key on every instance, and keep the old key in \
             WXRISK_MASTER_KEY_PREVIOUS until all have restarted"
        );
    }
    store.close().await;
    Ok(())
}

#[cfg(feature = "sim")]
async fn simulator(config: Config, args: SimArgs) -> anyhow::Result<()> {
    let keys_dir = args.keys_dir.unwrap_or_else(|| config.data_dir.join("sim"));
    let sign_mode = match args.sign_mode.as_str() {
        "certificate" => wxsim::keys::SignMode::Certificate,
        "public_key" => wxsim::keys::SignMode::PublicKey,
        "both" => wxsim::keys::SignMode::Both,
        other => anyhow::bail!("--sign-mode `{other}` is not certificate, public_key or both"),
    };
    let listen = if args.action.is_some() { std::net::SocketAddr::from(([127, 0, 0, 1], 0)) } else { args.listen };
    let sim_config = wxsim::SimConfig { listen, sign_mode, ..wxsim::SimConfig::default() }
        .with_key_dir(&keys_dir)
        .context("cannot prepare the simulator's keys")?;
    let sim = wxsim::Simulator::start(sim_config).await?;
    let Some(SimAction::Send { kind, to, id, action, sub_mchid }) = args.action else {
        let stop = stop_signal();
        let setup = sim.provider();
        let provider_json = keys_dir.join("provider.json");
        let body = serde_json::json!({
            "name": "模拟服务商", "mchid": setup.mchid, "appid": setup.appid,
            "merchant_cert_serial": setup.merchant_cert_serial, "merchant_private_key_pem": setup.merchant_private_key_pem,
            "merchant_cert_pem": setup.merchant_cert_pem, "platform_cert_serial": setup.platform_cert_serial,
            "platform_cert_pem": setup.platform_cert_pem, "wechatpay_public_key_id": setup.wechatpay_public_key_id,
            "wechatpay_public_key_pem": setup.wechatpay_public_key_pem, "apiv3_key": setup.apiv3_key,
        });
        wxsim::keys::write_private(&provider_json, &serde_json::to_string_pretty(&body)?)
            .with_context(|| provider_json.display().to_string())?;
        println!("WeChat Pay simulator on {}", sim.base_url());
        println!("  mchid                 {}", setup.mchid);
        println!("  appid                 {}", setup.appid);
        println!("  merchant cert serial  {}", setup.merchant_cert_serial);
        println!("  platform cert serial  {}", setup.platform_cert_serial);
        println!("  public key id         {}", setup.wechatpay_public_key_id);
        println!("  APIv3 key, private key and certificates: in {}", keys_dir.display());
        println!("Point wxrisk at it with WXRISK_WECHATPAY_BASE_URL={}", sim.base_url());
        println!(
            "(and WXRISK_NOTIFY__*_BASE / …__TENCENT_SMS_ENDPOINT={} for notifications; webhook channels pointing at \
             the simulator need WXRISK_NOTIFY__ALLOW_PRIVATE_DESTINATIONS=true, as it listens on this machine)",
            sim.base_url()
        );
        println!("and create the provider with: POST /api/v1/providers, body {}", provider_json.display());
        println!("Control API: {}/_sim/ (complaints, violations, faults, clock). Ctrl-C stops.", sim.base_url());
        stop.await;
        sim.stop().await;
        return Ok(());
    };
    let id = id.unwrap_or_else(|| format!("{}", SystemClock.now_ms()));
    let (event_type, resource) = match kind.as_str() {
        "complaint" => {
            let action = action.unwrap_or_else(|| "CREATE_COMPLAINT".into());
            let event = if action == "CREATE_COMPLAINT" { "COMPLAINT.CREATE" } else { "COMPLAINT.STATE_CHANGE" };
            (event.to_owned(), serde_json::json!({"complaint_id": id, "action_type": action}))
        }
        "violation" => {
            let action = action.unwrap_or_else(|| "PUNISH".into());
            (
                format!("VIOLATION.{action}"),
                serde_json::json!({"sub_mchid": sub_mchid, "company_name": "模拟科技有限公司", "record_id": id, "punish_plan": "暂停支付功能",
                    "punish_time": format_shanghai(SystemClock.now_ms()), "punish_description": "模拟处置", "risk_type": "TRANSACTION_DISPUTE", "risk_description": "交易纠纷"}),
            )
        }
        "refund" => (
            "REFUND.SUCCESS".to_owned(),
            serde_json::json!({"sp_mchid": wxsim::DEFAULT_SP_MCHID, "sub_mchid": sub_mchid, "out_trade_no": "SIM", "transaction_id": "4200000000000000000000000000",
                "out_refund_no": id, "refund_id": "50300000000000000000000000000", "refund_status": "SUCCESS",
                "success_time": format_shanghai(SystemClock.now_ms()), "user_received_account": "支付用户零钱",
                "amount": {"total": 100, "refund": 100, "payer_total": 100, "payer_refund": 100}}),
        ),
        other => anyhow::bail!("`{other}` is not complaint, violation or refund"),
    };
    let control = format!("{}/_sim/send", sim.base_url());
    let request = serde_json::json!({"to": to, "event_type": event_type, "resource": resource});
    let response = reqwest::Client::new()
        .post(&control)
        .header("content-type", "application/json")
        .body(request.to_string())
        .send()
        .await
        .context("the simulator did not answer")?;
    let answer: serde_json::Value = serde_json::from_slice(&response.bytes().await?).unwrap_or(serde_json::Value::Null);
    sim.stop().await;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}
