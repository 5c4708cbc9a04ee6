//! Violations (平台违规处置) and what follows them: each disposal record stored once (by `record_id`) with every
//! event about it, the provider and the sub-merchant told, the sub-merchant's limitations read again, its risk
//! score recomputed.
//!
//! Contract:
//! - `violation.record`: one job per notification (the intake's dedupe by notification id); a second notification
//!   about the same record (`record_id`) is recorded as an event but alerts nobody again. PUNISH alerts once per
//!   record. INTERCEPT alerts at most once per sub-merchant per day in Asia/Shanghai (by our clock), whatever WeChat
//!   retries or duplicates. APPEAL updates its record's appeal state and alerts once per state. A disabled
//!   sub-merchant's records are stored; nobody is notified on its behalf.
//! - `merchant.limitations`: `merchant-limitations` of one sub-merchant, stored whole (after every violation event,
//!   and daily for registered sub-merchants). A stored `NO_REFUND` stops automatic refunds (see
//!   `complaints::PlanContext::act`).
//! - `merchant.risk`: the sub-merchant's score (`domain::risk::score`); reaching `risk.alert_score` alerts the
//!   provider once, until the score falls below it again.

use serde::Deserialize;
use serde_json::json;
use sqlx::AnyConnection;
use wechatpay::callback::ViolationNotice;

use super::{LIMITATIONS, RISK_CHECK, client_for, done, store_failure, wechat_failure};
use crate::clock::SHANGHAI;
use crate::domain::risk;
use crate::jobs::{JobContext, JobFailure, JobResult};
use crate::notify::{self, EventKind, NotificationEvent};
use crate::state::AppState;
use crate::store::jobs::{self as queue, NewJob};
use crate::store::violations::{self as store, ViolationWrite};
use crate::store::{StoreError, StoreResult, merchants, providers};

#[derive(Debug, Deserialize)]
struct ViolationPayload {
    provider_id: i64,
    notification_id: String,
    event_type: String,
    notice: ViolationNotice,
}

/// `2026-11-27` for a moment, in Asia/Shanghai.
pub fn china_day(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(SHANGHAI);
    format!("{:04}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day())
}

pub async fn record(ctx: &JobContext) -> JobResult {
    let p: ViolationPayload = ctx.payload()?;
    let state = &ctx.state;
    let mut tx = state.store().begin().await.map_err(store_failure)?;
    let summary = store_and_notify(&mut tx, state, &p).await.map_err(|e| match e {
        StoreError::NotFound(what) => JobFailure::permanent(format!("{what} no longer exists")),
        other => store_failure(other),
    })?;
    tx.commit().await.map_err(super::sqlx_failure)?;
    state.job_wakeup().notify_waiters();
    done(summary)
}

async fn store_and_notify(conn: &mut AnyConnection, state: &AppState, p: &ViolationPayload) -> StoreResult<String> {
    let now = state.now_ms();
    let n = &p.notice;
    let provider = providers::get(conn, p.provider_id).await?.ok_or(StoreError::NotFound("provider"))?;
    let kind = p.event_type.strip_prefix("VIOLATION.").unwrap_or(&p.event_type).to_owned();
    let punished_at = n.punished_at().map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(now));
    let write = ViolationWrite {
        provider_id: provider.id,
        record_id: &n.record_id,
        sub_mchid: &n.sub_mchid,
        company_name: &n.company_name,
        kind: &kind,
        risk_type: n.risk_type.as_str(),
        risk_description: &n.risk_description,
        punish_plan: &n.punish_plan,
        punish_time: &n.punish_time,
        punish_time_ms: punished_at,
        punish_description: &n.punish_description,
        event_type: &p.event_type,
    };
    let (row_id, is_new) = store::insert_or_get(conn, &write, now).await?;
    let resource = serde_json::to_string(n).unwrap_or_default();
    if !store::add_event(conn, row_id, &p.notification_id, &p.event_type, &resource, now).await? {
        return Ok(format!("{} already recorded", p.notification_id));
    }
    if !is_new {
        store::touch(conn, row_id, &p.event_type, now).await?;
    }
    let label = risk::risk_label(n.risk_type.as_str(), &n.risk_description);
    let (event_kind, key) = match kind.as_str() {
        "INTERCEPT" => (
            EventKind::ViolationIntercept,
            format!("violation:{}:{}:intercept:{}", provider.id, n.sub_mchid, china_day(now)),
        ),
        "APPEAL" => {
            let appeal_state = if n.risk_type.as_str().is_empty() { "APPEAL" } else { n.risk_type.as_str() };
            let detail = [label.as_str(), n.punish_plan.as_str(), n.punish_description.as_str()]
                .into_iter()
                .filter(|s| !s.trim().is_empty())
                .collect::<Vec<_>>()
                .join("；");
            store::set_appeal(conn, row_id, appeal_state, &detail, now).await?;
            (
                EventKind::ViolationAppeal,
                format!("violation:{}:{}:appeal:{appeal_state}:{}", provider.id, n.record_id, n.punish_time),
            )
        }
        _ => (EventKind::ViolationPunish, format!("violation:{}:{}:punish", provider.id, n.record_id)),
    };
    let merchant = merchants::find_by_mchid(conn, Some(provider.id), &n.sub_mchid).await?.into_iter().next();
    let event = NotificationEvent {
        kind: event_kind,
        key,
        provider_id: provider.id,
        merchant_mchid: Some(n.sub_mchid.clone()),
        to_merchant: true,
        data: json!({
            "merchant": {"mchid": n.sub_mchid, "name": merchant.as_ref().map(|m| m.name.clone()).unwrap_or_else(|| n.company_name.clone())},
            "violation": {"record_id": n.record_id, "company_name": n.company_name, "risk_type": n.risk_type.as_str(),
                          "risk_label": label, "punish_plan": n.punish_plan, "punish_time": n.punish_time,
                          "description": n.punish_description},
            "time_ms": now,
            "link_path": notify::links::violation(provider.id, &n.record_id),
        }),
    };
    let deliveries = notify::enqueue(conn, state, &event).await?;
    enqueue_limitations(conn, provider.id, &n.sub_mchid, &format!("event:{}", p.notification_id), now).await?;
    enqueue_risk_check(conn, provider.id, &n.sub_mchid, &p.notification_id, now).await?;
    Ok(format!("{} {} for {}: {} notification(s)", kind, n.record_id, n.sub_mchid, deliveries.len()))
}

pub async fn enqueue_limitations(
    conn: &mut AnyConnection,
    provider_id: i64,
    sub_mchid: &str,
    reason: &str,
    now: i64,
) -> StoreResult<bool> {
    let job = NewJob {
        kind: LIMITATIONS.to_owned(),
        dedupe_key: format!("limitations:{provider_id}:{sub_mchid}:{reason}"),
        payload: json!({"provider_id": provider_id, "sub_mchid": sub_mchid}),
        provider_id: Some(provider_id),
        run_at: now,
    };
    Ok(queue::enqueue(conn, &job, now).await?.is_some())
}

/// Recompute a sub-merchant's score after something about it changed (`cause`: what, for the dedupe key).
pub async fn enqueue_risk_check(
    conn: &mut AnyConnection,
    provider_id: i64,
    sub_mchid: &str,
    cause: &str,
    now: i64,
) -> StoreResult<()> {
    let job = NewJob {
        kind: RISK_CHECK.to_owned(),
        dedupe_key: format!("risk:{provider_id}:{sub_mchid}:{cause}"),
        payload: json!({"provider_id": provider_id, "sub_mchid": sub_mchid}),
        provider_id: Some(provider_id),
        run_at: now,
    };
    queue::enqueue(conn, &job, now).await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
struct MerchantPayload {
    provider_id: i64,
    sub_mchid: String,
}

pub async fn check_limitations(ctx: &JobContext) -> JobResult {
    let p: MerchantPayload = ctx.payload()?;
    let state = &ctx.state;
    let client = client_for(state, p.provider_id).await?;
    let answer = client.merchant_limitations(&p.sub_mchid).await.map_err(wechat_failure)?;
    let functions: Vec<&str> = answer.limited_functions.iter().map(|f| f.as_str()).collect();
    let now = state.now_ms();
    let mut tx = state.store().begin().await.map_err(store_failure)?;
    let before = store::limitations(&mut tx, p.provider_id, &p.sub_mchid).await.map_err(store_failure)?;
    let functions_json = serde_json::to_string(&functions).unwrap_or_else(|_| "[]".into());
    let details = serde_json::to_string(&answer).unwrap_or_else(|_| "{}".into());
    store::set_limitations(&mut tx, p.provider_id, &p.sub_mchid, &functions_json, &details, now)
        .await
        .map_err(store_failure)?;
    if before.as_ref().map(|b| b.limited_functions.as_str()) != Some(functions_json.as_str()) {
        enqueue_risk_check(&mut tx, p.provider_id, &p.sub_mchid, &format!("limitations:{now}"), now)
            .await
            .map_err(store_failure)?;
    }
    tx.commit().await.map_err(super::sqlx_failure)?;
    done(if functions.is_empty() { "no limitation".to_owned() } else { format!("limited: {}", functions.join(", ")) })
}

/// The functions WeChat limits for this sub-merchant, as last read.
pub async fn limited_functions(
    conn: &mut AnyConnection,
    provider_id: i64,
    sub_mchid: &str,
) -> StoreResult<Vec<String>> {
    Ok(store::limitations(conn, provider_id, sub_mchid)
        .await?
        .and_then(|l| serde_json::from_str(&l.limited_functions).ok())
        .unwrap_or_default())
}

/// The figures of the last `days` days for a sub-merchant.
pub async fn figures(
    conn: &mut AnyConnection,
    provider_id: i64,
    sub_mchid: &str,
    days: i64,
    now: i64,
) -> StoreResult<risk::RiskFigures> {
    store::figures(conn, provider_id, sub_mchid, now - days * 86_400_000).await
}

/// A sub-merchant's score now.
pub async fn current_score(
    conn: &mut AnyConnection,
    provider_id: i64,
    sub_mchid: &str,
    now: i64,
) -> StoreResult<(i64, risk::RiskFigures, Vec<String>)> {
    let key = (provider_id, sub_mchid.to_owned());
    let mut all = current_scores(conn, std::slice::from_ref(&key), now).await?;
    let current = all.remove(&key).unwrap_or_default();
    Ok((current.score, current.last_30_days, current.limited_functions))
}

/// A sub-merchant's score now, what it comes from.
#[derive(Debug, Clone, Default)]
pub struct CurrentScore {
    pub score: i64,
    pub last_30_days: risk::RiskFigures,
    pub limited_functions: Vec<String>,
}

/// The scores now of several sub-merchants (`(provider_id, sub_mchid)`): a handful of grouped queries whatever their
/// number (`store::violations::figures_of`, `limitations_of`), for pages that list many.
pub async fn current_scores(
    conn: &mut AnyConnection,
    merchants: &[(i64, String)],
    now: i64,
) -> StoreResult<std::collections::HashMap<(i64, String), CurrentScore>> {
    let figures = store::figures_of(conn, merchants, now - 30 * 86_400_000).await?;
    let mut limitations = store::limitations_of(conn, merchants).await?;
    Ok(figures
        .into_iter()
        .map(|(key, last_30_days)| {
            let limited_functions: Vec<String> = limitations
                .remove(&key)
                .and_then(|l| serde_json::from_str(&l.limited_functions).ok())
                .unwrap_or_default();
            let score = risk::score(&last_30_days, !limited_functions.is_empty());
            (key, CurrentScore { score, last_30_days, limited_functions })
        })
        .collect())
}

pub async fn check_risk(ctx: &JobContext) -> JobResult {
    let p: MerchantPayload = ctx.payload()?;
    let state = &ctx.state;
    let now = state.now_ms();
    let threshold = state.config().risk.alert_score;
    let mut tx = state.store().begin().await.map_err(store_failure)?;
    let (score, last_30, limited) =
        current_score(&mut tx, p.provider_id, &p.sub_mchid, now).await.map_err(store_failure)?;
    let (_, alerted_at, crossings) =
        store::risk_state(&mut tx, p.provider_id, &p.sub_mchid).await.map_err(store_failure)?.unwrap_or((0, None, 0));
    let (alerted_at, crossings, message) = if score >= threshold && alerted_at.is_none() {
        let merchant = merchants::find_by_mchid(&mut tx, Some(p.provider_id), &p.sub_mchid)
            .await
            .map_err(store_failure)?
            .into_iter()
            .next();
        let summary = format!(
            "30 天：投诉 {} 起（重复 {}，平台介入 {}），超时 {} 起，处罚 {} 次，拦截 {} 次{}",
            last_30.complaints,
            last_30.repeat_complaints,
            last_30.platform_assisted,
            last_30.sla_misses,
            last_30.punishments,
            last_30.interceptions,
            if limited.is_empty() { String::new() } else { format!("，受限：{}", limited.join("、")) }
        );
        let event = NotificationEvent {
            kind: EventKind::RiskAlert,
            key: format!("risk:{}:{}:{}", p.provider_id, p.sub_mchid, crossings + 1),
            provider_id: p.provider_id,
            merchant_mchid: Some(p.sub_mchid.clone()),
            to_merchant: false,
            data: json!({
                "merchant": {"mchid": p.sub_mchid, "name": merchant.map(|m| m.name)},
                "risk": {"score": score, "threshold": threshold, "summary": summary},
                "time_ms": now,
                "link_path": notify::links::merchant_risk(p.provider_id, &p.sub_mchid),
            }),
        };
        notify::enqueue(&mut tx, state, &event).await.map_err(store_failure)?;
        (Some(now), crossings + 1, format!("score {score}: at or over {threshold}, provider alerted"))
    } else if score < threshold {
        (None, crossings, format!("score {score}"))
    } else {
        (alerted_at, crossings, format!("score {score}: over {threshold}, alerted before"))
    };
    store::set_risk_state(&mut tx, p.provider_id, &p.sub_mchid, score, alerted_at, crossings, now)
        .await
        .map_err(store_failure)?;
    tx.commit().await.map_err(super::sqlx_failure)?;
    state.job_wakeup().notify_waiters();
    done(message)
}

/// Once a day: read the limitations of every registered sub-merchant. Returns how many jobs were new.
pub async fn schedule_daily(state: &AppState) -> StoreResult<usize> {
    let now = state.now_ms();
    let day = china_day(now);
    let mut conn = state.store().conn().await?;
    let mut created = 0;
    for provider_id in providers::ids(&mut conn).await? {
        for merchant in merchants::for_provider(&mut conn, provider_id).await? {
            if enqueue_limitations(&mut conn, provider_id, &merchant.mchid, &format!("day:{day}"), now).await? {
                created += 1;
            }
        }
    }
    Ok(created)
}
