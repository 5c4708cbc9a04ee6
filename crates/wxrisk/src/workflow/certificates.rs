//! Certificate expiry: once a day per provider (the scheduler enqueues one `provider.certificates` job per provider
//! and China day), the certificates the provider depends on are checked, and the provider is told once per
//! certificate when one expires within [`NOTICE_DAYS`] days (event `certificate_expiring`).
//!
//! Which certificates, and where their expiry comes from:
//! - **merchant API certificate** (`apiclient_cert.pem`, the serial the provider signs requests with): the provider
//!   row keeps its serial, and its PEM only when the operator gave the optional `merchant_cert_pem` (checked then to
//!   carry that serial and to belong to the private key). WeChat's certificate API lists platform certificates,
//!   not the merchant's, so the PEM is the only source of its expiry: without it no merchant alert is possible,
//!   and the check's attempt log says so (decision; the docs advise giving `merchant_cert_pem`).
//! - **WeChat Pay platform certificate**: the newest one the provider holds — stored (uploaded) ones and those its
//!   client downloaded — since WeChat lists a successor before the old one expires, and then there is nothing to
//!   do. Not checked when the provider has a WeChat Pay public key: it has switched (or is switching) already.
//!
//! "Once" is a row in `certificate_alerts` per (provider, kind, serial), inserted in the transaction that enqueues
//! the notification; any later check, the same day or later, finds it. A certificate already expired and never
//! alerted (wxrisk was not running at the time) is alerted as expired, once.

use serde::Deserialize;
use serde_json::json;
use wechatpay::Certificate;

use super::{CERTIFICATE_CHECK, done, store_failure};
use crate::jobs::{JobContext, JobResult};
use crate::notify::{self, EventKind, NotificationEvent};
use crate::state::AppState;
use crate::store::jobs::{self as queue, NewJob};
use crate::store::{StoreResult, certificate_alerts, providers};

/// How many days before a certificate expires the provider is told.
pub const NOTICE_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Deserialize)]
struct CheckPayload {
    provider_id: i64,
}

/// Enqueue today's check of every provider; returns how many jobs were new.
pub async fn schedule_daily(state: &AppState) -> StoreResult<usize> {
    let now = state.now_ms();
    let day = super::violations::china_day(now);
    let mut conn = state.store().conn().await?;
    let mut created = 0;
    for provider_id in providers::ids(&mut conn).await? {
        let job = NewJob {
            kind: CERTIFICATE_CHECK.to_owned(),
            dedupe_key: format!("certificates:{provider_id}:{day}"),
            payload: json!({ "provider_id": provider_id }),
            provider_id: Some(provider_id),
            run_at: now,
        };
        if queue::enqueue(&mut conn, &job, now).await?.is_some() {
            created += 1;
        }
    }
    if created > 0 {
        state.job_wakeup().notify_waiters();
    }
    Ok(created)
}

/// A certificate the provider depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    /// `merchant` or `platform`.
    kind: &'static str,
    serial: String,
    not_after_ms: i64,
}

pub async fn check(ctx: &JobContext) -> JobResult {
    let p: CheckPayload = ctx.payload()?;
    let state = &ctx.state;
    let now = state.now_ms();
    let (provider, stored) = {
        let mut conn = state.store().conn().await.map_err(store_failure)?;
        let Some(provider) = providers::get(&mut conn, p.provider_id).await.map_err(store_failure)? else {
            return done(format!("provider {} no longer exists", p.provider_id));
        };
        let stored = providers::platform_certificates(&mut conn, p.provider_id).await.map_err(store_failure)?;
        (provider, stored)
    };
    let mut notes = Vec::new();
    let mut held = Vec::new();
    match provider.merchant_cert_pem.as_deref().map(Certificate::from_pem) {
        Some(Ok(cert)) => {
            held.push(Held { kind: "merchant", serial: cert.serial, not_after_ms: cert.not_after * 1000 })
        }
        Some(Err(e)) => notes.push(format!("merchant_cert_pem does not parse: {e}")),
        None => notes.push("merchant certificate expiry unknown: no merchant_cert_pem configured".to_owned()),
    }
    if provider.wechatpay_public_key_id.is_some() {
        notes.push("platform certificates not checked: the provider has a WeChat Pay public key".to_owned());
    } else {
        let mut platform: Vec<(String, i64)> = stored.iter().map(|c| (c.serial.clone(), c.not_after)).collect();
        // Those the client downloaded (not stored); a client that cannot be built adds nothing.
        if let Ok(Some(client)) = state.wechat().get(state, provider.id).await {
            platform.extend(client.keys().certificates().into_iter().map(|c| (c.serial, c.not_after)));
        }
        match platform.into_iter().max_by_key(|(_, not_after)| *not_after) {
            Some((serial, not_after)) => held.push(Held { kind: "platform", serial, not_after_ms: not_after * 1000 }),
            None => notes.push("no platform certificate held yet".to_owned()),
        }
    }
    let due: Vec<&Held> = held.iter().filter(|h| h.not_after_ms - now <= NOTICE_DAYS * DAY_MS).collect();
    let mut alerted = Vec::new();
    if !due.is_empty() {
        let mut tx = state.store().begin().await.map_err(store_failure)?;
        for cert in due {
            if !certificate_alerts::record(&mut tx, provider.id, cert.kind, &cert.serial, cert.not_after_ms, now)
                .await
                .map_err(store_failure)?
            {
                continue;
            }
            let days_left = (cert.not_after_ms - now).div_euclid(DAY_MS);
            let event = NotificationEvent {
                kind: EventKind::CertificateExpiring,
                key: format!("certificate:{}:{}:{}", provider.id, cert.kind, cert.serial),
                provider_id: provider.id,
                merchant_mchid: None,
                to_merchant: false,
                data: json!({
                    "certificate": {"kind": cert.kind, "serial": cert.serial, "not_after_ms": cert.not_after_ms,
                                    "days_left": days_left},
                    "time_ms": now,
                    "link_path": notify::links::provider(provider.id),
                }),
            };
            notify::enqueue(&mut tx, state, &event).await.map_err(store_failure)?;
            alerted.push(format!(
                "{} {} (expires {})",
                cert.kind,
                cert.serial,
                crate::clock::format_shanghai(cert.not_after_ms)
            ));
        }
        tx.commit().await.map_err(super::sqlx_failure)?;
    }
    let checked: Vec<String> = held
        .iter()
        .map(|h| format!("{} {} until {}", h.kind, h.serial, crate::clock::format_shanghai(h.not_after_ms)))
        .collect();
    done(json!({"checked": checked, "alerted": alerted, "notes": notes}).to_string())
}
