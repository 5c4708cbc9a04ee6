//! Email over SMTP with lettre: implicit TLS (465), STARTTLS (587), or plain for a test server on this machine.
//! Multipart text + HTML, with a `Message-ID` derived from the delivery so a resend is recognisably the same mail.
//!
//! The host comes from channel settings, so wxrisk resolves it itself, keeps the addresses the destination guard
//! lets through (`notify::destinations`), and hands lettre the checked address — not the name, which lettre would
//! resolve again — while TLS still verifies the certificate against the configured host name.

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use std::net::SocketAddr;
use std::time::Duration;

use super::{Destination, SendError, Sent, missing, short_id};
use crate::notify::Message;
use crate::notify::destinations::{self, ResolveError};
use crate::state::AppState;

fn mailbox(text: &str, field: &str) -> Result<Mailbox, SendError> {
    text.parse().map_err(|e| SendError::permanent("config", format!("`{field}` {text}: {e}")))
}

/// The checked address to connect to. Of several, the first that accepts a TCP connection: lettre connects to
/// exactly the one address it is given, so the fallback it would do over a name's addresses is done here.
async fn checked_address(
    host: &str,
    port: u16,
    allow_private: bool,
    timeout: Duration,
) -> Result<SocketAddr, SendError> {
    let addresses = destinations::resolve_checked(host, port, allow_private).await.map_err(|e| match e {
        ResolveError::Refused(refused) => super::refused(&refused),
        ResolveError::Lookup { .. } => SendError::transient("dns", e.to_string()),
    })?;
    if let [only] = addresses.as_slice() {
        return Ok(*only);
    }
    let mut last_error = String::from("no address");
    for address in &addresses {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
            Ok(Ok(_probe)) => return Ok(*address),
            Ok(Err(e)) => last_error = format!("{address}: {e}"),
            Err(_) => last_error = format!("{address}: connection timed out"),
        }
    }
    Err(SendError::transient("network", format!("cannot connect to {host}:{port} ({last_error})")))
}

async fn transport(
    state: &AppState,
    destination: &Destination<'_>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let host = destination.setting("host").ok_or_else(|| missing("host"))?;
    let port =
        destination.settings["port"].as_u64().and_then(|p| u16::try_from(p).ok()).ok_or_else(|| missing("port"))?;
    let notify = &state.config().notify;
    let connect_timeout = notify.timeout.min(Duration::from_secs(5));
    let address = checked_address(host, port, notify.allow_private_destinations, connect_timeout).await?;
    // lettre connects to this literal address; the TLS parameters below keep the host name for verification.
    let server = address.ip().to_string();
    let security = destination.setting("security").unwrap_or("tls");
    let tls_parameters = || -> Result<TlsParameters, SendError> {
        let mut builder = TlsParameters::builder(host.to_owned());
        if let Some(ca) = destination.setting("ca_pem") {
            let cert = Certificate::from_pem(ca.as_bytes())
                .map_err(|e| SendError::permanent("config", format!("ca_pem: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        builder.build_rustls().map_err(|e| SendError::permanent("tls", e.to_string()))
    };
    let builder = match security {
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server).tls(Tls::Wrapper(tls_parameters()?)),
        "starttls" => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server).tls(Tls::Required(tls_parameters()?))
        }
        _ => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server),
    };
    let mut builder = builder.port(port).timeout(Some(notify.timeout));
    if let (Some(user), Some(password)) = (destination.setting("username"), destination.secret("password")) {
        builder = builder.credentials(Credentials::new(user.to_owned(), password.to_owned()));
    }
    Ok(builder.build())
}

pub async fn send(state: &AppState, destination: &Destination<'_>, message: &Message) -> Result<Sent, SendError> {
    let from = mailbox(destination.setting("from").ok_or_else(|| missing("from"))?, "from")?;
    let mut builder = lettre::Message::builder()
        .from(from)
        .subject(message.subject.clone())
        .message_id(Some(format!("<{}@wxrisk>", short_id(destination.idempotency_key))));
    let recipients = destination.settings["to"].as_array().ok_or_else(|| missing("to"))?;
    for address in recipients.iter().filter_map(|a| a.as_str()) {
        builder = builder.to(mailbox(address, "to")?);
    }
    let email = builder
        .multipart(MultiPart::alternative_plain_html(message.text.clone(), message.html.clone()))
        .map_err(|e| SendError::permanent("message", e.to_string()))?;
    let response = transport(state, destination).await?.send(email).await.map_err(|e| {
        let code = e.status().map(|c| c.to_string()).unwrap_or_else(|| "smtp".into());
        // 5xx is permanent (535 bad authorisation code, 550, 553 From not the account, 554 spam); 4xx and
        // connection, TLS and timeout failures are worth retrying.
        if e.is_permanent() {
            SendError::permanent(code, e.to_string())
        } else {
            SendError::transient(code, e.to_string())
        }
    })?;
    let reply: Vec<&str> = response.message().collect();
    Ok(Sent {
        code: response.code().to_string(),
        external_id: Some(reply.join(" ")),
        answer: format!("{} {}", response.code(), reply.join(" ")),
    })
}
