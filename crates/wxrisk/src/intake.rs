//! Callback endpoints: where WeChat Pay delivers complaint, violation and refund notifications.
//!
//! Contract (DESIGN.md "Intake does four things only"): read the raw body (at most
//! `complaints.callback_max_body_bytes`), verify its signature over those exact bytes (timestamp window, known
//! certificate serial or public key id), decrypt it, and in one transaction record the notification keyed by
//! WeChat's `id` (`on conflict do nothing`) together with the job that will act on it; answer `204` — also for a
//! redelivery, which records and enqueues nothing. No outside call is made in the request: an unknown certificate
//! serial is refused (WeChat retries) while a certificate download starts in the background — at most one a minute
//! per provider, and the "due" check comes before the task is spawned, so forged serials spawn nothing more. A
//! refused callback is answered 4xx with `{"code":"FAIL","message"}`, stored nowhere as work, counted in
//! `wxrisk_callback_rejections_total{reason}` and written to the capped rejection log (at most
//! [`RejectionBudget::PER_SECOND`](crate::state::RejectionBudget) a second).
//!
//! Unbounded input stops at the door:
//! - the `Wechatpay-*` headers are checked for shape first (see `wechatpay::verify`), before any provider or key is
//!   looked up, anything decoded or the database touched; a malformed one is refused as `MALFORMED_HEADER`
//!   naming the header, a missing one as `SIGNATURE`;
//! - a provider id that is not a positive number is refused without a lookup; one that names no provider is
//!   remembered as unknown for a minute ([`crate::wechat::WechatClients`]);
//! - whatever of the request is stored in the rejection log or echoed in the answer is cut to
//!   [`MAX_ECHO_CHARS`](crate::store::inbound::MAX_ECHO_CHARS) characters, and every stored row has a fixed
//!   largest size (`store::inbound`);
//! - the warning line for a refused callback is written at most [`WarnLimiter::PER_MINUTE`] times a minute per
//!   reason; the next line written says how many were left out.
//!
//! A notification WeChat created more than `retention.days - 1` days ago is acknowledged (`204`) and ignored:
//! its records may have been deleted by the retention (`workflow::retention`), so recording it again could repeat
//! what it caused. WeChat redelivers for about a day, so a genuine one is never that old.
//!
//! Paths: `/callbacks/{provider_id}/complaints`, `/callbacks/{provider_id}/violations`,
//! `/callbacks/{provider_id}/refunds`, and the paths of the system wxrisk replaces, [`LEGACY_COMPLAINTS`] and
//! [`LEGACY_VIOLATIONS`] (also under `complaints.legacy_prefix`), which name no provider: the provider is the one
//! whose keys verify the signature and whose APIv3 key decrypts the resource.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use wechatpay::callback::CallbackError;
use wechatpay::verify::SignatureHeaders;
use wechatpay::{Client, Event, Notification, Verified, VerifyError};

use crate::state::AppState;
use crate::store::inbound::{self, MAX_DETAIL_CHARS, MAX_ECHO_CHARS, NewInbound, Rejection, cut};
use crate::store::jobs::{self, NewJob};
use crate::store::{StoreError, StoreResult};
use crate::workflow;

/// The complaint callback path of the system wxrisk replaces.
pub const LEGACY_COMPLAINTS: &str = "/complaint/complaintbaseinfo/notify/complaintNotifyCallBack";
/// Its violation callback path.
pub const LEGACY_VIOLATIONS: &str = "/violation/violationbaseinfo/notify/violationNotifyCallBack";

pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new()
        .route("/callbacks/{provider_id}/complaints", post(complaint_callback))
        .route("/callbacks/{provider_id}/refunds", post(refund_callback))
        .route("/callbacks/{provider_id}/violations", post(violation_callback))
        .route(LEGACY_COMPLAINTS, post(legacy_complaint_callback))
        .route(LEGACY_VIOLATIONS, post(legacy_violation_callback));
    let prefix = &state.config().complaints.legacy_prefix;
    if !prefix.is_empty() {
        router = router
            .route(&format!("{prefix}{LEGACY_COMPLAINTS}"), post(legacy_complaint_callback))
            .route(&format!("{prefix}{LEGACY_VIOLATIONS}"), post(legacy_violation_callback));
    }
    router
}

/// Which notifications a path takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Complaint,
    Refund,
    Violation,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Complaint => "complaint",
            Family::Refund => "refund",
            Family::Violation => "violation",
        }
    }
}

/// Why a callback was refused.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    reason: &'static str,
    message: String,
    provider_id: Option<i64>,
    serial: Option<String>,
}

impl Refusal {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self { status, reason, message: message.into(), provider_id: None, serial: None }
    }
}

/// A failure on our side (database down): answered 5xx so WeChat delivers again; not a rejection.
#[derive(Debug)]
struct Unavailable(String);

enum Outcome {
    Accepted {
        duplicate: bool,
    },
    /// Genuine, but created longer ago than the retention keeps records: acknowledged, not acted on.
    TooOld,
    Refused(Refusal),
    Unavailable(Unavailable),
}

/// The provider a `/callbacks/{provider_id}/…` path names: its id, or `None` when the segment is not a positive
/// number (no provider can have it: refused without a lookup).
fn path_provider(segment: &str) -> Option<i64> {
    segment.parse::<i64>().ok().filter(|id| *id > 0)
}

/// The path as logged: the provider segment is the sender's, so it is cut.
fn callback_path(segment: &str, family: Family) -> String {
    format!("/callbacks/{}/{}s", cut(segment, MAX_ECHO_CHARS), family.name())
}

async fn complaint_callback(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = callback_path(&provider_id, Family::Complaint);
    let outcome = receive(&state, Some(path_provider(&provider_id)), Family::Complaint, &headers, body).await;
    answer(&state, &path, Family::Complaint, &headers, outcome).await
}

async fn refund_callback(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = callback_path(&provider_id, Family::Refund);
    let outcome = receive(&state, Some(path_provider(&provider_id)), Family::Refund, &headers, body).await;
    answer(&state, &path, Family::Refund, &headers, outcome).await
}

async fn violation_callback(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = callback_path(&provider_id, Family::Violation);
    let outcome = receive(&state, Some(path_provider(&provider_id)), Family::Violation, &headers, body).await;
    answer(&state, &path, Family::Violation, &headers, outcome).await
}

async fn legacy_complaint_callback(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let outcome = receive(&state, None, Family::Complaint, &headers, body).await;
    answer(&state, LEGACY_COMPLAINTS, Family::Complaint, &headers, outcome).await
}

async fn legacy_violation_callback(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let outcome = receive(&state, None, Family::Violation, &headers, body).await;
    answer(&state, LEGACY_VIOLATIONS, Family::Violation, &headers, outcome).await
}

/// What the body was, for the rejection log (never the body itself: it may be anyone's).
struct BodyFacts {
    sha256: String,
    len: i64,
}

/// `provider`: `Some` on the paths that name a provider (`Some(None)`: a segment no provider can have), `None` on
/// the legacy paths.
async fn receive(
    state: &AppState,
    provider: Option<Option<i64>>,
    family: Family,
    headers: &HeaderMap,
    body: Body,
) -> (Outcome, Option<BodyFacts>) {
    let limit = state.config().complaints.callback_max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let refusal = Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "TOO_LARGE",
                format!("the body is over {limit} bytes or could not be read"),
            );
            return (Outcome::Refused(refusal), None);
        }
    };
    let facts = BodyFacts {
        sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes)),
        len: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
    };
    // Shape first: nothing below (a provider lookup, a key lookup, base64, JSON, the database) sees a header
    // that is not what WeChat sends.
    let signature = match SignatureHeaders::from_headers(headers) {
        Ok(signature) => signature,
        Err(error) => return (Outcome::Refused(header_refusal(&error, headers)), Some(facts)),
    };
    let unknown = |what: String| {
        Outcome::Refused(Refusal::new(StatusCode::NOT_FOUND, "UNKNOWN_PROVIDER", format!("no provider has id {what}")))
    };
    let outcome = match provider {
        Some(None) => unknown("like that".to_owned()),
        Some(Some(id)) => match state.wechat().get(state, id).await {
            Ok(Some(client)) => accept(state, id, &client, family, &signature, &bytes).await,
            Ok(None) => unknown(id.to_string()),
            Err(e) => Outcome::Unavailable(Unavailable(e.to_string())),
        },
        None => legacy(state, family, &signature, &bytes).await,
    };
    (outcome, Some(facts))
}

/// A `Wechatpay-*` header missing or of the wrong shape.
fn header_refusal(error: &VerifyError, headers: &HeaderMap) -> Refusal {
    let mut refusal = match error {
        VerifyError::MalformedHeader { .. } => {
            Refusal::new(StatusCode::BAD_REQUEST, "MALFORMED_HEADER", format!("refused: {error}"))
        }
        _ => Refusal::new(StatusCode::UNAUTHORIZED, "SIGNATURE", format!("signature rejected: {error}")),
    };
    // Kept for the log as sent (cut to 64 characters when stored).
    refusal.serial = headers.get("wechatpay-serial").and_then(|v| v.to_str().ok()).map(str::to_owned);
    refusal
}

/// The legacy path: the provider whose keys verify the signature and whose APIv3 key decrypts the resource.
async fn legacy(state: &AppState, family: Family, signature: &SignatureHeaders, bytes: &Bytes) -> Outcome {
    let ids = match state.wechat().provider_ids(state).await {
        Ok(ids) => ids,
        Err(e) => return Outcome::Unavailable(Unavailable(e.to_string())),
    };
    let mut first_refusal = None;
    for id in ids {
        let client = match state.wechat().get(state, id).await {
            Ok(Some(client)) => client,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(provider_id = id, error = %e, "provider skipped on the legacy callback path");
                continue;
            }
        };
        let verified = match verify(state, &client, signature, bytes) {
            Ok(verified) => verified,
            Err(refusal) => {
                first_refusal.get_or_insert(refusal);
                continue;
            }
        };
        // Verified by this provider's keys; it is this provider's if its APIv3 key opens the resource.
        if verified.opens_with(client.apiv3_key()) {
            return record(state, id, &client, family, &verified).await;
        }
        first_refusal.get_or_insert(Refusal::new(
            StatusCode::BAD_REQUEST,
            "DECRYPT",
            "the resource does not decrypt with the APIv3 key of the provider whose key verified it",
        ));
    }
    Outcome::Refused(
        first_refusal
            .unwrap_or_else(|| Refusal::new(StatusCode::NOT_FOUND, "UNKNOWN_PROVIDER", "no provider is configured")),
    )
}

async fn accept(
    state: &AppState,
    provider_id: i64,
    client: &Client,
    family: Family,
    signature: &SignatureHeaders,
    bytes: &Bytes,
) -> Outcome {
    match verify(state, client, signature, bytes) {
        Ok(verified) => record(state, provider_id, client, family, &verified).await,
        Err(mut refusal) => {
            refusal.provider_id = Some(provider_id);
            Outcome::Refused(refusal)
        }
    }
}

/// Verify against the provider's keys with the real clock (WeChat's timestamps are real time; so is a
/// certificate's validity).
fn verify(
    state: &AppState,
    client: &Client,
    signature: &SignatureHeaders,
    bytes: &Bytes,
) -> Result<Verified<Notification>, Refusal> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    wechatpay::callback::verify_notification_headers(client.keys(), signature, bytes, now).map_err(|error| {
        let mut refusal = match &error {
            CallbackError::Signature(e) => {
                let reason = match e {
                    VerifyError::Probe => "PROBE",
                    VerifyError::Stale { .. } => "STALE",
                    VerifyError::UnknownSerial(_) | VerifyError::UnknownPublicKey(_) => "UNKNOWN_KEY",
                    VerifyError::CertificateExpired { .. } => "CERT_EXPIRED",
                    VerifyError::CertificateNotYetValid { .. } => "CERT_NOT_YET_VALID",
                    VerifyError::MalformedHeader { .. } => "MALFORMED_HEADER",
                    _ => "SIGNATURE",
                };
                // The certificate may be new: download in the background; WeChat delivers again in 15 seconds.
                // Whether a download is due is decided here, before a task exists: a flood of forged serials
                // spawns one download a minute, not one per request.
                if e.wants_certificate_refresh() && client.claim_unknown_serial_refresh() {
                    state.intake_guards().note_refresh_started();
                    let client = client.clone();
                    tokio::spawn(async move {
                        if let Err(error) = client.refresh_certificates().await {
                            tracing::warn!(mchid = client.mchid(), %error, "platform certificate download failed");
                        }
                    });
                }
                Refusal::new(StatusCode::UNAUTHORIZED, reason, format!("signature rejected: {e}"))
            }
            other => Refusal::new(StatusCode::BAD_REQUEST, "MALFORMED", other.to_string()),
        };
        refusal.serial = Some(signature.serial.clone());
        refusal
    })
}

/// Decrypt, check the event belongs on this path, and record it with its job.
async fn record(
    state: &AppState,
    provider_id: i64,
    client: &Client,
    family: Family,
    verified: &Verified<Notification>,
) -> Outcome {
    let refused = |status, reason, message: String| {
        let mut refusal = Refusal::new(status, reason, message);
        refusal.provider_id = Some(provider_id);
        Outcome::Refused(refusal)
    };
    let event = match verified.event(client.apiv3_key()) {
        Ok(event) => event,
        Err(CallbackError::Decrypt(e)) => {
            return refused(StatusCode::BAD_REQUEST, "DECRYPT", format!("the resource does not decrypt: {e}"));
        }
        Err(e) => return refused(StatusCode::BAD_REQUEST, "MALFORMED", e.to_string()),
    };
    let notification = verified.get();
    if is_older_than_retention(state, notification) {
        tracing::info!(provider_id, notification_id = %notification.id, create_time = %notification.create_time,
            "notification older than the retention acknowledged and ignored");
        return Outcome::TooOld;
    }
    let (job, resource) = match (&event, family) {
        (Event::Complaint(notice), Family::Complaint) => (
            NewJob {
                kind: workflow::SYNC.to_owned(),
                dedupe_key: format!("sync:{provider_id}:notification:{}", notification.id),
                payload: json!({"provider_id": provider_id, "complaint_id": notice.complaint_id,
                                "action_type": notice.action_type.as_str(), "notification_id": notification.id}),
                provider_id: Some(provider_id),
                run_at: state.now_ms(),
            },
            serde_json::to_string(notice),
        ),
        (Event::Violation(notice), Family::Violation) => (
            NewJob {
                kind: workflow::VIOLATION.to_owned(),
                dedupe_key: format!("violation-notification:{provider_id}:{}", notification.id),
                payload: json!({"provider_id": provider_id, "notification_id": notification.id,
                                "event_type": notification.event_type.as_str(), "notice": notice}),
                provider_id: Some(provider_id),
                run_at: state.now_ms(),
            },
            serde_json::to_string(notice),
        ),
        (Event::Refund(notice), Family::Refund) => (
            NewJob {
                kind: workflow::REFUND_NOTIFICATION.to_owned(),
                dedupe_key: format!("refund-notification:{provider_id}:{}", notification.id),
                payload: json!({"provider_id": provider_id, "notice": notice}),
                provider_id: Some(provider_id),
                run_at: state.now_ms(),
            },
            serde_json::to_string(notice),
        ),
        _ => {
            return refused(
                StatusCode::BAD_REQUEST,
                "WRONG_EVENT",
                format!("{} does not belong on the {} callback path", notification.event_type, family.name()),
            );
        }
    };
    let resource = match resource {
        Ok(resource) => resource,
        Err(e) => return refused(StatusCode::BAD_REQUEST, "MALFORMED", e.to_string()),
    };
    let inbound = NewInbound {
        provider_id,
        notification_id: &notification.id,
        event_type: notification.event_type.as_str(),
        resource: &resource,
        create_time: &notification.create_time,
    };
    match store_with_job(state, &inbound, &job).await {
        Ok(duplicate) => Outcome::Accepted { duplicate },
        Err(e) => Outcome::Unavailable(Unavailable(e)),
    }
}

/// Whether WeChat created this notification more than `retention.days - 1` days ago (by the app's clock): its
/// inbox row and jobs may have been deleted, so it must not be recorded as new. The day of margin covers any
/// difference between WeChat's clock and ours; a `create_time` that does not parse proves nothing (recorded as
/// usual: the inbox row of a recent one is still there).
fn is_older_than_retention(state: &AppState, notification: &Notification) -> bool {
    let Some(created) = notification.created_at() else { return false };
    let created_ms = i64::try_from(created.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MIN);
    let horizon = state.config().retention.millis().saturating_sub(86_400_000);
    created_ms < state.now_ms().saturating_sub(horizon)
}

/// Record the notification with its job through the inbox writer; `true` for a redelivery.
async fn store_with_job(state: &AppState, inbound: &NewInbound<'_>, job: &NewJob) -> Result<bool, String> {
    let pending = PendingWrite {
        provider_id: inbound.provider_id,
        notification_id: inbound.notification_id.to_owned(),
        event_type: inbound.event_type.to_owned(),
        resource: inbound.resource.to_owned(),
        create_time: inbound.create_time.to_owned(),
        job: job.clone(),
        now: state.now_ms(),
    };
    state.inbox().write(pending).await
}

/// One callback waiting to be written.
#[derive(Debug)]
pub struct PendingWrite {
    provider_id: i64,
    notification_id: String,
    event_type: String,
    resource: String,
    create_time: String,
    job: NewJob,
    now: i64,
}

type Answer = tokio::sync::oneshot::Sender<Result<bool, String>>;

/// The callbacks' writer: one task takes every callback waiting and writes them in one transaction (group
/// commit), each with its job, then answers each one. Why: on SQLite, one writer at a time is the rule, and many
/// request handlers each opening its own write transaction wait on each other in SQLite's busy handler (sleeps of
/// milliseconds); one writer batching them turns that queue into one commit. Nobody is answered before the
/// commit that holds their callback.
#[derive(Debug)]
pub struct Inbox {
    queue: tokio::sync::mpsc::Sender<(PendingWrite, Answer)>,
}

/// Most callbacks written in one transaction.
const MAX_BATCH: usize = 256;

impl Inbox {
    /// Start the writer (it ends when the inbox is dropped).
    pub fn start(store: crate::store::Store, wakeup: std::sync::Arc<tokio::sync::Notify>) -> Self {
        let (queue, mut receiver) = tokio::sync::mpsc::channel::<(PendingWrite, Answer)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while let Some(first) = receiver.recv().await {
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let results = write_batch(&store, &batch).await;
                let mut any_new = false;
                match results {
                    Ok(duplicates) => {
                        for ((_, answer), duplicate) in batch.drain(..).zip(duplicates) {
                            any_new |= !duplicate;
                            let _ = answer.send(Ok(duplicate));
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        for (_, answer) in batch.drain(..) {
                            let _ = answer.send(Err(message.clone()));
                        }
                    }
                }
                if any_new {
                    wakeup.notify_waiters();
                }
            }
        });
        Self { queue }
    }

    async fn write(&self, pending: PendingWrite) -> Result<bool, String> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.queue.send((pending, answer)).await.map_err(|_| "the callback writer stopped".to_owned())?;
        answered.await.map_err(|_| "the callback writer stopped".to_owned())?
    }
}

/// One transaction for the batch: the notifications WeChat did not send before, and their jobs (two statements,
/// whatever the batch size).
async fn write_batch(store: &crate::store::Store, batch: &[(PendingWrite, Answer)]) -> StoreResult<Vec<bool>> {
    let now = batch.first().map_or(0, |(p, _)| p.now);
    let inbound: Vec<NewInbound<'_>> = batch
        .iter()
        .map(|(p, _)| NewInbound {
            provider_id: p.provider_id,
            notification_id: &p.notification_id,
            event_type: &p.event_type,
            resource: &p.resource,
            create_time: &p.create_time,
        })
        .collect();
    let mut tx = store.begin().await?;
    let new: std::collections::HashSet<String> =
        inbound::insert_many(&mut tx, &inbound, now).await?.into_iter().collect();
    // A notification twice in one batch (WeChat sends copies together) is new once: its first copy carries the job.
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = Vec::with_capacity(batch.len());
    let mut jobs = Vec::new();
    for (p, _) in batch {
        let key = format!("{}:{}", p.provider_id, p.notification_id);
        let is_new = new.contains(&key) && seen.insert(key);
        if is_new {
            jobs.push(&p.job);
        }
        duplicates.push(!is_new);
    }
    jobs::enqueue_many(&mut tx, &jobs, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(duplicates)
}

async fn answer(
    state: &AppState,
    path: &str,
    family: Family,
    headers: &HeaderMap,
    (outcome, facts): (Outcome, Option<BodyFacts>),
) -> Response {
    let metrics = state.metrics();
    match outcome {
        Outcome::Accepted { duplicate } => {
            let result = if duplicate { "duplicate" } else { "accepted" };
            metrics.inc("wxrisk_callbacks_total", &[("kind", family.name()), ("outcome", result)]);
            StatusCode::NO_CONTENT.into_response()
        }
        Outcome::TooOld => {
            metrics.inc("wxrisk_callbacks_total", &[("kind", family.name()), ("outcome", "too_old")]);
            StatusCode::NO_CONTENT.into_response()
        }
        Outcome::Unavailable(Unavailable(message)) => {
            metrics.inc("wxrisk_callbacks_total", &[("kind", family.name()), ("outcome", "unavailable")]);
            tracing::error!(path, error = %message, "callback not recorded; WeChat will deliver it again");
            let body = json!({"code": "FAIL", "message": "temporarily unavailable"});
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
        Outcome::Refused(refusal) => {
            metrics.inc("wxrisk_callbacks_total", &[("kind", family.name()), ("outcome", "refused")]);
            metrics.inc("wxrisk_callback_rejections_total", &[("reason", refusal.reason)]);
            let now = state.now_ms();
            // What is logged, stored and echoed is bounded: the message quotes at most 64 characters of the
            // request (the verifier's errors do) and is itself cut.
            let message = cut(&refusal.message, MAX_DETAIL_CHARS);
            if let Some(suppressed) = state.intake_guards().warnings.admit(refusal.reason, now) {
                tracing::warn!(
                    path,
                    reason = refusal.reason,
                    provider_id = refusal.provider_id,
                    message,
                    suppressed_since_last = suppressed,
                    "callback refused"
                );
            }
            if state.rejection_budget().take(now) {
                let (sha256, len) = facts.map(|f| (f.sha256, f.len)).unwrap_or_default();
                let serial = refusal
                    .serial
                    .clone()
                    .or_else(|| headers.get("wechatpay-serial").and_then(|v| v.to_str().ok()).map(str::to_owned));
                let rejection = Rejection {
                    provider_id: refusal.provider_id,
                    path,
                    reason: refusal.reason,
                    detail: message,
                    serial: serial.as_deref().map(|s| cut(s, MAX_ECHO_CHARS)),
                    body_sha256: &sha256,
                    body_len: len,
                };
                let keep = state.config().complaints.rejection_log_size;
                let logged = async {
                    let mut conn = state.store().conn().await?;
                    inbound::reject(&mut conn, &rejection, keep, now).await
                };
                if let Err(e) = logged.await {
                    tracing::warn!(error = %e, "could not write the rejection log");
                }
            }
            let body = json!({"code": "FAIL", "message": message});
            (refusal.status, axum::Json(body)).into_response()
        }
    }
}

/// The callback door's guards that live in memory (one set per process, in the app state).
#[derive(Debug, Default)]
pub struct IntakeGuards {
    /// Rate limit of the warning line per refused callback.
    pub warnings: WarnLimiter,
    refreshes_started: std::sync::atomic::AtomicU64,
}

impl IntakeGuards {
    fn note_refresh_started(&self) {
        self.refreshes_started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Certificate downloads started because a callback named an unknown serial.
    pub fn certificate_refreshes_started(&self) -> u64 {
        self.refreshes_started.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// At most [`WarnLimiter::PER_MINUTE`] warning lines a minute (by the app's clock) per refusal reason. A flood of
/// forgeries is counted in the metrics and sampled in the rejection log; the log file gets a few lines a minute,
/// the first of each minute saying how many were left out before it.
#[derive(Debug, Default)]
pub struct WarnLimiter(std::sync::Mutex<std::collections::HashMap<&'static str, WarnSlot>>);

#[derive(Debug, Default, Clone, Copy)]
struct WarnSlot {
    minute: i64,
    written: u32,
    suppressed: u64,
}

impl WarnLimiter {
    pub const PER_MINUTE: u32 = 10;

    /// `Some(n)`: write this warning, saying that `n` were left out since the last one written; `None`: leave it
    /// out. Reasons are a fixed set of constants, so the map stays small.
    pub fn admit(&self, reason: &'static str, now_ms: i64) -> Option<u64> {
        let mut slots = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(reason).or_default();
        let minute = now_ms.div_euclid(60_000);
        if slot.minute != minute {
            slot.minute = minute;
            slot.written = 0;
        }
        if slot.written < Self::PER_MINUTE {
            slot.written += 1;
            Some(std::mem::take(&mut slot.suppressed))
        } else {
            slot.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_rate_limited_per_reason_and_count_what_was_left_out() {
        let limiter = WarnLimiter::default();
        // The start of a minute (1_795_800_000_000 is a multiple of 60,000).
        let minute = 1_795_800_000_000;
        let admitted: Vec<Option<u64>> = (0..25).map(|i| limiter.admit("SIGNATURE", minute + i)).collect();
        assert_eq!(admitted.iter().filter(|a| a.is_some()).count(), WarnLimiter::PER_MINUTE as usize);
        assert!(admitted[..10].iter().all(|a| *a == Some(0)));
        assert!(admitted[10..].iter().all(Option::is_none));
        // Another reason has its own budget.
        assert_eq!(limiter.admit("STALE", minute + 30), Some(0));
        // The next minute: written again, with the count of those left out.
        assert_eq!(limiter.admit("SIGNATURE", minute + 60_000), Some(15));
        assert_eq!(limiter.admit("SIGNATURE", minute + 60_001), Some(0));
    }

    #[test]
    fn provider_segments_no_provider_can_have_are_known_without_a_lookup() {
        assert_eq!(path_provider("12"), Some(12));
        for bad in ["0", "-1", "abc", "", "99999999999999999999999", "1 "] {
            assert_eq!(path_provider(bad), None, "{bad}");
        }
        let long = "9".repeat(5000);
        assert!(callback_path(&long, Family::Complaint).len() < 100);
        assert_eq!(callback_path("7", Family::Violation), "/callbacks/7/violations");
    }
}
