//! The `complaint.sync` job: fetch a complaint's detail and negotiation history, store them, and decide what to
//! do about the event (DESIGN.md, peers.md §1.4):
//!
//! | action_type | wxrisk |
//! |---|---|
//! | `CREATE_COMPLAINT`, `CONTINUE_COMPLAINT` | notify provider + sub-merchant; reply; auto-refund when on (then complete) |
//! | `USER_RESPONSE` | notify |
//! | `RESPONSE_BY_PLATFORM`, `USER_APPLY_PLATFORM_SERVICE`, `USER_CANCEL_PLATFORM_SERVICE`, `PLATFORM_SERVICE_FINISHED` | notify, high priority |
//! | `SELLER_REFUND`, `MERCHANT_RESPONSE`, `MERCHANT_CONFIRM_COMPLETE`, `MERCHANT_APPROVE_REFUND`, `MERCHANT_REJECT_REFUND`, `REFUND_SUCCESS` | sync only: our own actions raise no alert |
//! | unknown | sync, notify the provider |
//! | none (reconciliation) | a complaint we never saw is handled as created, one whose `user_complaint_times` grew as continued; otherwise sync only |
//!
//! A disabled sub-merchant: stored and synced, nothing done at WeChat Pay, nobody notified. An unknown sub-merchant:
//! the provider's default reply and default auto-refund, the provider notified. A complaint already `PROCESSED`
//! when its creation is handled gets no reply and no refund. A `REFUND`-type complaint is approved through
//! `update-refund-progress` first and then refunded; WeChat completes it when the money arrives. Otherwise each
//! order is refunded (its amount, or what the user asked when less) and the complaint completed once WeChat Pay
//! accepted every refund.

use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::AnyConnection;
use wechatpay::api::complaints::{Complaint, NegotiationEntry};
use wechatpay::enums::{ActionType, ComplaintState, OperateType, ProblemType};

use super::{REFUND, REFUND_PROGRESS, REPLY, SLA, SYNC, client_for, done, say, store_failure, wechat_failure};
use crate::jobs::{JobContext, JobFailure, JobResult};
use crate::notify::{self, EventKind, NotificationEvent};
use crate::state::AppState;
use crate::store::complaints::{self as store, ComplaintRow, ComplaintWrite};
use crate::store::jobs::{self as queue, NewJob};
use crate::store::merchants::{self, MerchantRow};
use crate::store::providers::{self, ProviderRow};
use crate::store::refunds::{self, NewRefund};
use crate::store::secrets::PAYER_PHONE;
use crate::store::{StoreError, StoreResult};

#[derive(Debug, Deserialize)]
pub struct SyncPayload {
    pub provider_id: i64,
    pub complaint_id: String,
    /// From the notification; absent for reconciliation and operator syncs.
    #[serde(default)]
    pub action_type: Option<String>,
    #[serde(default)]
    pub notification_id: Option<String>,
}

/// Enqueue a sync of one complaint (reconciliation and operators); returns whether a new job was made.
pub async fn enqueue_sync(
    conn: &mut AnyConnection,
    provider_id: i64,
    complaint_id: &str,
    reason: &str,
    now: i64,
) -> StoreResult<bool> {
    let job = NewJob {
        kind: SYNC.to_owned(),
        dedupe_key: format!("sync:{provider_id}:{complaint_id}:{reason}"),
        payload: json!({"provider_id": provider_id, "complaint_id": complaint_id}),
        provider_id: Some(provider_id),
        run_at: now,
    };
    Ok(queue::enqueue(conn, &job, now).await?.is_some())
}

/// What a list entry or detail says that reconciliation compares.
pub fn fingerprint(c: &Complaint) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        c.complaint_state.as_str(),
        c.user_complaint_times.unwrap_or(1),
        u8::from(c.complaint_full_refunded),
        u8::from(c.incoming_user_response),
        u8::from(c.in_platform_service)
    )
}

/// `13800138000` → `138****8000`.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// What this sync will do beyond storing the complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    /// Created or continued: notify, reply, refund.
    Act { continued: bool },
    /// Notify only.
    Notify { kind: EventKind, provider_only: bool },
    /// Store only.
    SyncOnly,
}

fn handling(action: Option<&ActionType>, is_new: bool, times_grew: bool) -> Handling {
    match action {
        Some(ActionType::CreateComplaint) => Handling::Act { continued: false },
        Some(ActionType::ContinueComplaint) => Handling::Act { continued: true },
        Some(ActionType::UserResponse) => {
            Handling::Notify { kind: EventKind::ComplaintUserReplied, provider_only: false }
        }
        Some(
            ActionType::ResponseByPlatform
            | ActionType::UserApplyPlatformService
            | ActionType::UserCancelPlatformService
            | ActionType::PlatformServiceFinished,
        ) => Handling::Notify { kind: EventKind::ComplaintPlatformInvolved, provider_only: false },
        Some(
            ActionType::SellerRefund
            | ActionType::MerchantResponse
            | ActionType::MerchantConfirmComplete
            | ActionType::MerchantApproveRefund
            | ActionType::MerchantRejectRefund
            | ActionType::RefundSuccess,
        ) => Handling::SyncOnly,
        Some(ActionType::Unknown(_)) => Handling::Notify { kind: EventKind::ComplaintChanged, provider_only: true },
        None if is_new => Handling::Act { continued: false },
        None if times_grew => Handling::Act { continued: true },
        None => Handling::SyncOnly,
    }
}

pub async fn sync(ctx: &JobContext) -> JobResult {
    let payload: SyncPayload = ctx.payload()?;
    let state = &ctx.state;
    super::pace(ctx, payload.provider_id, state.config().complaints.history_per_minute).await?;
    let client = client_for(state, payload.provider_id).await?;
    let detail = client.complaint(&payload.complaint_id).await.map_err(wechat_failure)?;
    let history = client.full_negotiation_history(&payload.complaint_id).await.map_err(wechat_failure)?;
    let phone = match detail.payer_phone.as_deref() {
        Some(cipher) => match client.decrypt_sensitive(cipher) {
            Ok(phone) => Some(phone),
            Err(e) => {
                // Not worth failing the sync: everything else is usable.
                tracing::warn!(complaint_id = %payload.complaint_id, error = %e, "payer_phone does not decrypt");
                None
            }
        },
        None => None,
    };
    let mut tx = state.store().begin().await.map_err(store_failure)?;
    let summary =
        store_and_plan(&mut tx, state, &payload, &detail, &history, phone.as_deref()).await.map_err(|e| match e {
            StoreError::NotFound(what) => JobFailure::permanent(format!("{what} no longer exists")),
            other => store_failure(other),
        })?;
    tx.commit().await.map_err(super::sqlx_failure)?;
    state.job_wakeup().notify_waiters();
    done(summary)
}

/// Store the complaint and enqueue what it calls for, in the caller's transaction. Returns a summary.
async fn store_and_plan(
    conn: &mut AnyConnection,
    state: &AppState,
    payload: &SyncPayload,
    detail: &Complaint,
    history: &[NegotiationEntry],
    phone: Option<&str>,
) -> StoreResult<String> {
    let now = state.now_ms();
    let settings = &state.config().complaints;
    let provider = providers::get(conn, payload.provider_id).await?.ok_or(StoreError::NotFound("provider"))?;
    let existing = store::get(conn, provider.id, &detail.complaint_id).await?;
    let merchant =
        merchants::find_by_mchid(conn, Some(provider.id), &detail.complainted_mchid).await?.into_iter().next();
    let times = detail.user_complaint_times.unwrap_or(1).max(1);
    let times_grew = existing.as_ref().is_some_and(|e| times > e.user_complaint_times);
    let complaint_time = detail
        .complained_at()
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(now))
        .unwrap_or(now);
    // Deadlines run from the complaint, and again from a continued complaint.
    let (reply_due_at, resolve_due_at) = match &existing {
        Some(e) if !times_grew => (e.reply_due_at, e.resolve_due_at),
        Some(_) => (now + millis(settings.reply_deadline), now + millis(settings.resolve_deadline)),
        None => (complaint_time + millis(settings.reply_deadline), complaint_time + millis(settings.resolve_deadline)),
    };
    let orders: Vec<Value> = detail
        .complaint_order_info
        .iter()
        .map(|o| json!({"transaction_id": o.transaction_id, "out_trade_no": o.out_trade_no, "amount": o.amount}))
        .collect();
    let amount_total: i64 = detail.complaint_order_info.iter().map(|o| o.amount).sum();
    let mut stored_detail = serde_json::to_value(detail).unwrap_or(Value::Null);
    if let Some(object) = stored_detail.as_object_mut() {
        object.remove("payer_phone");
    }
    let masked = phone.map(mask_phone);
    let write = ComplaintWrite {
        provider_id: provider.id,
        complaint_id: &detail.complaint_id,
        complainted_mchid: &detail.complainted_mchid,
        state: detail.complaint_state.as_str(),
        complaint_time,
        detail: &detail.complaint_detail,
        problem_type: detail.problem_type.as_ref().map(|p| p.as_str()),
        problem_description: detail.problem_description.as_deref(),
        apply_refund_amount: detail.apply_refund_amount,
        amount_total,
        payer_phone_masked: masked.as_deref(),
        payer_openid: detail.payer_openid.as_deref(),
        user_complaint_times: times,
        full_refunded: detail.complaint_full_refunded,
        incoming_user_response: detail.incoming_user_response,
        in_platform_service: detail.in_platform_service,
        need_immediate_service: detail.need_immediate_service,
        orders: &Value::Array(orders).to_string(),
        detail_json: &stored_detail.to_string(),
        history_json: &serde_json::to_string(history).unwrap_or_else(|_| "[]".into()),
        last_action_type: payload.action_type.as_deref(),
        reply_due_at,
        resolve_due_at,
        fingerprint: &fingerprint(detail),
    };
    let (row_id, is_new) = store::upsert(conn, &write, now).await?;
    if let Some(phone) = phone {
        // Sealed for this row, now that it exists; same transaction.
        let sealed = state.keyring().seal(&PAYER_PHONE.row(row_id), phone.as_bytes())?;
        crate::store::secrets::put(conn, PAYER_PHONE, row_id, Some(&sealed)).await?;
    }
    // Decided again at every sync, so an operator moving `automation_since` earlier lets later events act.
    let historical = complaint_time < provider.automation_since;
    store::set_historical(conn, row_id, historical).await?;
    let from_callback = payload.notification_id.is_some();
    let platform_action = matches!(
        payload.action_type.as_deref().map(ActionType::parse),
        Some(
            ActionType::ResponseByPlatform | ActionType::UserApplyPlatformService | ActionType::PlatformServiceFinished
        )
    );
    if detail.in_platform_service || platform_action {
        store::mark_platform_involved(conn, row_id).await?;
    }
    super::violations::enqueue_risk_check(
        conn,
        provider.id,
        &detail.complainted_mchid,
        &format!("complaint:{}:{}", detail.complaint_id, fingerprint(detail)),
        now,
    )
    .await?;
    let row = store::by_row_id(conn, row_id).await?.ok_or(StoreError::NotFound("complaint"))?;
    let source = match (&payload.notification_id, &payload.action_type) {
        (Some(id), Some(action)) => json!({"notification_id": id, "action_type": action}),
        _ => json!({"source": "reconciliation or operator"}),
    };
    store::add_step(conn, row_id, "received", "info", &source, now).await?;
    store::add_step(conn, row_id, "fetched", "ok", &json!({"state": row.state, "times": times}), now).await?;
    // A complaint from before the automation start raises no deadline alerts of its own (hundreds of them, mostly
    // past due, would flood the provider; the backlog digest says how many are open) — unless the user continues
    // it, which starts new deadlines from now.
    if times_grew || (is_new && !historical) {
        enqueue_deadlines(conn, &row, millis(settings.due_soon), now).await?;
    }

    let action = payload.action_type.as_deref().map(ActionType::parse);
    let plan = handling(action.as_ref(), is_new, times_grew);
    if merchant.as_ref().is_some_and(|m| !m.enabled) {
        store::add_step(conn, row_id, "skipped", "skipped", &json!({"reason": "sub-merchant disabled"}), now).await?;
        return Ok(format!("{}: stored; sub-merchant disabled, nothing done", detail.complaint_id));
    }
    let ctx = PlanContext {
        state,
        provider: &provider,
        merchant: merchant.as_ref(),
        row: &row,
        detail,
        history,
        now,
        from_callback,
    };
    match plan {
        Handling::SyncOnly => Ok(format!("{}: synced ({})", detail.complaint_id, row.state)),
        Handling::Notify { kind, provider_only } => {
            let key = format!(
                "complaint:{}:{}:{}",
                provider.id,
                detail.complaint_id,
                payload.notification_id.as_deref().unwrap_or("sync")
            );
            let notified = ctx.notify(conn, kind, &key, !provider_only, Vec::new()).await?;
            Ok(format!("{}: synced, {notified} notification(s)", detail.complaint_id))
        }
        Handling::Act { continued } => ctx.act(conn, continued, times).await,
    }
}

/// One check per deadline and stage, each waiting in the queue for its moment.
async fn enqueue_deadlines(
    conn: &mut AnyConnection,
    row: &ComplaintRow,
    due_soon_ms: i64,
    now: i64,
) -> StoreResult<()> {
    for (deadline, due_at) in [("reply", row.reply_due_at), ("resolve", row.resolve_due_at)] {
        for (stage, run_at) in [("due_soon", due_at - due_soon_ms), ("overdue", due_at)] {
            let job = NewJob {
                kind: SLA.to_owned(),
                dedupe_key: format!(
                    "sla:{}:{}:{}:{deadline}:{stage}",
                    row.provider_id, row.complaint_id, row.user_complaint_times
                ),
                payload: json!({"provider_id": row.provider_id, "complaint_id": row.complaint_id, "deadline": deadline,
                                "stage": stage, "due_at": due_at, "times": row.user_complaint_times}),
                provider_id: Some(row.provider_id),
                run_at: run_at.max(now),
            };
            queue::enqueue(conn, &job, now).await?;
        }
    }
    Ok(())
}

struct PlanContext<'a> {
    state: &'a AppState,
    provider: &'a ProviderRow,
    merchant: Option<&'a MerchantRow>,
    row: &'a ComplaintRow,
    detail: &'a Complaint,
    history: &'a [NegotiationEntry],
    now: i64,
    /// Brought by WeChat's notification (not found by reconciliation or asked for by an operator).
    from_callback: bool,
}

impl PlanContext<'_> {
    fn locale(&self) -> &str {
        &self.provider.locale
    }

    async fn act(&self, conn: &mut AnyConnection, continued: bool, times: i64) -> StoreResult<String> {
        let (provider, row, now) = (self.provider, self.row, self.now);
        let complaint_id = &self.detail.complaint_id;
        let mut actions = Vec::new();
        let mut summary = Vec::new();
        if row.historical {
            // Filed before the provider's automation start: connecting a provider must not reply to and refund its
            // history. Operators act on these through the API; reconciliation sums them up in one digest.
            let since = notify::message::china_time(provider.automation_since);
            store::add_step(
                conn,
                row.id,
                "skipped",
                "skipped",
                &json!({"reason": "filed before the provider's automation start", "automation_since": since}),
                now,
            )
            .await?;
            if !self.from_callback {
                return Ok(format!("{complaint_id}: from before the automation start ({since}); recorded only"));
            }
            // Told about on its own below: the backlog digest leaves it out.
            store::mark_backlog_notified(conn, row.id).await?;
            actions.push(format!(
                "{}{since}{}",
                say(self.locale(), "投诉早于自动处理起始时间（", "filed before automation started ("),
                say(
                    self.locale(),
                    "），未自动回复、退款或完结，请人工处理",
                    "): not replied to, refunded or completed automatically"
                )
            ));
        } else if self.detail.complaint_state == ComplaintState::Processed {
            store::add_step(conn, row.id, "skipped", "skipped", &json!({"reason": "already processed"}), now).await?;
            actions.push(say(self.locale(), "投诉已处理完成，未再操作", "already processed: nothing done"));
        } else {
            // The reply.
            let text = self
                .merchant
                .and_then(|m| m.reply_text.clone())
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| provider.default_reply.clone());
            let reply = NewJob {
                kind: REPLY.to_owned(),
                dedupe_key: format!("reply:{}:{complaint_id}:{times}", provider.id),
                payload: json!({"provider_id": provider.id, "complaint_id": complaint_id,
                                "sub_mchid": self.detail.complainted_mchid, "text": text,
                                "immediate": self.detail.need_immediate_service,
                                "idempotent_id": format!("wxrisk-{complaint_id}-{times}")}),
                provider_id: Some(provider.id),
                run_at: now,
            };
            if queue::enqueue(conn, &reply, now).await?.is_some() {
                store::add_step(conn, row.id, "reply_queued", "info", &json!({"text": text}), now).await?;
            }
            actions.push(say(self.locale(), "自动回复", "auto-reply"));
            summary.push("reply");

            // The money.
            let auto_refund = self.merchant.map_or(provider.default_auto_refund, |m| m.auto_refund);
            let refund_limited = auto_refund
                && super::violations::limited_functions(conn, provider.id, &self.detail.complainted_mchid)
                    .await?
                    .iter()
                    .any(|f| f == "NO_REFUND");
            if !auto_refund {
                store::add_step(conn, row.id, "refund", "skipped", &json!({"reason": "auto-refund is off"}), now)
                    .await?;
            } else if refund_limited {
                // WeChat would refuse it: tell the provider instead of failing at WeChat.
                store::add_step(
                    conn,
                    row.id,
                    "refund",
                    "skipped",
                    &json!({"reason": "NO_REFUND: WeChat limits refunds of this sub-merchant"}),
                    now,
                )
                .await?;
                self.alert_refund_limited(conn, times).await?;
                actions.push(say(
                    self.locale(),
                    "退款功能受限（NO_REFUND），未自动退款",
                    "refunds limited by WeChat (NO_REFUND): not refunded",
                ));
            } else if self.detail.problem_type == Some(ProblemType::Refund) {
                let job = NewJob {
                    kind: REFUND_PROGRESS.to_owned(),
                    dedupe_key: format!("refund-progress:{}:{complaint_id}", provider.id),
                    payload: json!({"provider_id": provider.id, "complaint_id": complaint_id}),
                    provider_id: Some(provider.id),
                    run_at: now,
                };
                queue::enqueue(conn, &job, now).await?;
                let amount = refund_plan(self.detail).iter().map(|(_, a)| a).sum::<i64>();
                actions.push(format!(
                    "{} {}",
                    say(self.locale(), "同意退款申请并退款", "approve the refund request and refund"),
                    notify::message::yuan(amount)
                ));
                summary.push("refund approval");
            } else if self.detail.complaint_full_refunded {
                store::add_step(conn, row.id, "refund", "skipped", &json!({"reason": "already fully refunded"}), now)
                    .await?;
                enqueue_complete(conn, provider.id, complaint_id, &self.detail.complainted_mchid, times, false, now)
                    .await?;
            } else {
                let ask = RefundAsk { requested_by: "auto", complete_after: true, additional: false };
                let planned = create_refunds(conn, self.state, provider, self.detail, ask, times).await?;
                if planned.created.is_empty() {
                    // Every order already has its refund: complete once those are accepted.
                    enqueue_complete(conn, provider.id, complaint_id, &self.detail.complainted_mchid, times, true, now)
                        .await?;
                }
                let amount: i64 = refund_plan(self.detail).iter().map(|(_, a)| a).sum();
                actions.push(format!(
                    "{} {}",
                    say(self.locale(), "自动退款", "auto-refund"),
                    notify::message::yuan(amount)
                ));
                summary.push("refund");
            }
        }
        let kind = if continued { EventKind::ComplaintContinued } else { EventKind::ComplaintCreated };
        let key = format!(
            "complaint:{}:{complaint_id}:{}:{times}",
            provider.id,
            if continued { "continued" } else { "created" }
        );
        let scheduled = if actions.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "{}{}",
                say(self.locale(), "已安排：", "scheduled: "),
                actions.join(&say(self.locale(), "、", ", "))
            )]
        };
        let notified = self.notify(conn, kind, &key, true, scheduled).await?;
        Ok(format!(
            "{complaint_id}: {}; {notified} notification(s)",
            if summary.is_empty() { "no action".to_owned() } else { summary.join(", ") }
        ))
    }

    /// Tell the provider an automatic refund was not made because WeChat limits this sub-merchant's refunds.
    async fn alert_refund_limited(&self, conn: &mut AnyConnection, times: i64) -> StoreResult<()> {
        let amount: i64 = refund_plan(self.detail).iter().map(|(_, a)| a).sum();
        let event = NotificationEvent {
            kind: EventKind::RefundFailed,
            key: format!("refund-limited:{}:{}:{times}", self.provider.id, self.detail.complaint_id),
            provider_id: self.provider.id,
            merchant_mchid: Some(self.detail.complainted_mchid.clone()),
            to_merchant: false,
            data: json!({
                "complaint": {"id": self.detail.complaint_id, "amount_fen": self.row.amount_total},
                "refund": {"amount_fen": amount, "status": "NO_REFUND"},
                "actions": [say(self.locale(), "微信支付限制了该子商户的退款功能，未自动退款，请人工处理", "WeChat Pay limits this sub-merchant's refunds: not refunded automatically")],
                "time_ms": self.now,
                "link_path": notify::links::complaint(self.provider.id, &self.detail.complaint_id),
            }),
        };
        notify::enqueue(conn, self.state, &event).await?;
        Ok(())
    }

    /// Enqueue the notification for this complaint; returns how many deliveries it made.
    async fn notify(
        &self,
        conn: &mut AnyConnection,
        kind: EventKind,
        key: &str,
        to_merchant: bool,
        actions: Vec<String>,
    ) -> StoreResult<usize> {
        let row = self.row;
        let user_message = self
            .history
            .iter()
            .rev()
            .find(|h| matches!(h.operate_type, OperateType::UserResponse | OperateType::UserContinueComplaint))
            .map(|h| h.operate_details.clone());
        let data = json!({
            "merchant": {"mchid": row.complainted_mchid, "name": self.merchant.map(|m| m.name.clone())},
            "complaint": {
                "id": row.complaint_id,
                "time_ms": row.complaint_time,
                "amount_fen": row.amount_total,
                "apply_refund_amount_fen": row.apply_refund_amount,
                "problem": row.problem_description,
                "detail": row.detail,
                "user_message": user_message,
                "deadline_ms": if row.replied_at.is_none() && row.state == "PENDING" { row.reply_due_at } else { row.resolve_due_at },
            },
            "actions": actions,
            "time_ms": self.now,
            "link_path": notify::links::complaint(row.provider_id, &row.complaint_id),
        });
        let event = NotificationEvent {
            kind,
            key: key.to_owned(),
            provider_id: row.provider_id,
            merchant_mchid: Some(row.complainted_mchid.clone()),
            to_merchant,
            data,
        };
        let created = notify::enqueue(conn, self.state, &event).await?;
        if !created.is_empty() {
            store::add_step(
                conn,
                row.id,
                "notified",
                "ok",
                &json!({"event": kind.as_str(), "deliveries": created}),
                self.now,
            )
            .await?;
        }
        Ok(created.len())
    }
}

/// Each order with what to refund of it: its amount, all together at most what the user asked for. An order of
/// zero fen has nothing to refund and is skipped; the plan goes on to the next order.
pub fn refund_plan(detail: &Complaint) -> Vec<(usize, i64)> {
    let mut left = detail.apply_refund_amount.filter(|a| *a > 0).unwrap_or(i64::MAX);
    let mut plan = Vec::new();
    for (i, order) in detail.complaint_order_info.iter().enumerate() {
        if left <= 0 {
            break;
        }
        if order.amount <= 0 {
            continue;
        }
        let amount = order.amount.min(left);
        left -= amount;
        plan.push((i, amount));
    }
    plan
}

/// `out_refund_no` of the `round`-th refund (0 first) wxrisk makes of an order, for a complaint: derived from the
/// whole identity, so asking again is the same refund at WeChat Pay and two orders never share a number.
///
/// Readable when it fits — `CR{complaint_id}-{transaction_id}` plus `-R{round}` after the first — which needs
/// both ids to be letters and digits only (so the `-` between them cannot be misread) and at most 64 characters.
/// Otherwise `CR_` and 60 hex digits of SHA-256 over the length-prefixed identity: `_` never occurs in the readable
/// form, so the two forms cannot meet. Both use only WeChat's alphabet `[0-9A-Za-z_-|*@]`.
pub fn out_refund_no(complaint_id: &str, transaction_id: &str, round: i64) -> String {
    let plain = |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric());
    let suffix = if round > 0 { format!("-R{round}") } else { String::new() };
    if plain(complaint_id) && plain(transaction_id) {
        let readable = format!("CR{complaint_id}-{transaction_id}{suffix}");
        if readable.len() <= wechatpay::api::refunds::MAX_OUT_REFUND_NO_LEN {
            return readable;
        }
    }
    let identity = format!("{}:{complaint_id}|{}:{transaction_id}|{round}", complaint_id.len(), transaction_id.len());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, identity.as_bytes());
    format!("CR_{}", &hex::encode(digest.as_ref())[..60])
}

/// Who asks for refunds, and how.
#[derive(Debug, Clone, Copy)]
pub struct RefundAsk<'a> {
    /// `auto`, or the operator's label.
    pub requested_by: &'a str,
    /// Complete the complaint once the refunds are accepted.
    pub complete_after: bool,
    /// An operator's explicit refund on top of one the order already has: it does not hold the order, and the
    /// order's live refunds do not stop it. Never set by automation.
    pub additional: bool,
}

/// What [`create_refunds`] did.
#[derive(Debug, Default)]
pub struct RefundsPlanned {
    /// The `out_refund_no`s created now.
    pub created: Vec<String>,
    /// Orders left alone because a refund of them that has not failed exists already (of this complaint, another
    /// complaint, or an operator): already refunded, or being refunded.
    pub held: Vec<refunds::RefundRow>,
}

/// Create the refund rows and jobs for a complaint's orders. An order that already has a refund that has not
/// failed is not refunded again (a second refund of such an order takes an operator's `additional` refund); the
/// database's one-holder-per-order index decides between two workers acting at once.
pub async fn create_refunds(
    conn: &mut AnyConnection,
    state: &AppState,
    provider: &ProviderRow,
    detail: &Complaint,
    ask: RefundAsk<'_>,
    times: i64,
) -> StoreResult<RefundsPlanned> {
    let now = state.now_ms();
    let complaint_row = store::get(conn, provider.id, &detail.complaint_id).await?;
    let mut planned = RefundsPlanned::default();
    for (index, amount) in refund_plan(detail) {
        let order = &detail.complaint_order_info[index];
        let live = refunds::live_for_order(conn, provider.id, &order.transaction_id).await?;
        let holder = if ask.additional { None } else { live.into_iter().next() };
        let created = match holder {
            Some(holder) => refunds::Created::OrderHeld(Box::new(holder)),
            None => {
                let round = refunds::count_for_order(conn, provider.id, &order.transaction_id).await?;
                let number = out_refund_no(&detail.complaint_id, &order.transaction_id, round);
                let refund = NewRefund {
                    provider_id: provider.id,
                    complaint_id: &detail.complaint_id,
                    sub_mchid: &detail.complainted_mchid,
                    transaction_id: &order.transaction_id,
                    out_trade_no: Some(order.out_trade_no.as_str()).filter(|s| !s.is_empty()),
                    out_refund_no: &number,
                    amount,
                    total: order.amount,
                    requested_by: ask.requested_by,
                    holds_order: !ask.additional,
                };
                match refunds::create(conn, &refund, now).await? {
                    refunds::Created::New => {
                        enqueue_refund(conn, provider.id, &number, ask.complete_after, times, now).await?;
                        if let Some(row) = &complaint_row {
                            let detail = json!({"out_refund_no": number, "transaction_id": order.transaction_id,
                                                "amount": amount, "additional": ask.additional});
                            store::add_step(conn, row.id, "refund_queued", "info", &detail, now).await?;
                        }
                        planned.created.push(number);
                        continue;
                    }
                    refunds::Created::Exists => continue,
                    held => held,
                }
            }
        };
        if let refunds::Created::OrderHeld(holder) = created {
            if let Some(row) = &complaint_row {
                let detail = json!({"reason": "the order already has a refund that has not failed",
                                    "transaction_id": order.transaction_id, "out_refund_no": holder.out_refund_no,
                                    "status": holder.status, "complaint_id": holder.complaint_id});
                store::add_step(conn, row.id, "refund", "skipped", &detail, now).await?;
            }
            planned.held.push(*holder);
        }
    }
    Ok(planned)
}

async fn enqueue_refund(
    conn: &mut AnyConnection,
    provider_id: i64,
    out_refund_no: &str,
    complete_after: bool,
    times: i64,
    now: i64,
) -> StoreResult<()> {
    let job = NewJob {
        kind: REFUND.to_owned(),
        dedupe_key: format!("refund:{provider_id}:{out_refund_no}"),
        payload: json!({"provider_id": provider_id, "out_refund_no": out_refund_no, "complete_after": complete_after,
                        "times": times}),
        provider_id: Some(provider_id),
        run_at: now,
    };
    queue::enqueue(conn, &job, now).await?;
    Ok(())
}

/// Enqueue the completion of a complaint's round. With `expects_refund`, the completion first makes sure every
/// order the round refunds has a refund WeChat Pay accepted (see `effects::complete`): it is never reported
/// handled while its money is unanswered or refused.
pub async fn enqueue_complete(
    conn: &mut AnyConnection,
    provider_id: i64,
    complaint_id: &str,
    sub_mchid: &str,
    times: i64,
    expects_refund: bool,
    now: i64,
) -> StoreResult<bool> {
    let job = NewJob {
        kind: super::COMPLETE.to_owned(),
        dedupe_key: format!("complete:{provider_id}:{complaint_id}:{times}"),
        payload: json!({"provider_id": provider_id, "complaint_id": complaint_id, "sub_mchid": sub_mchid,
                        "after_reply": format!("reply:{provider_id}:{complaint_id}:{times}"),
                        "expects_refund": expects_refund}),
        provider_id: Some(provider_id),
        run_at: now,
    };
    Ok(queue::enqueue(conn, &job, now).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_masked() {
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_phone("+8613800138000"), "+86*******8000");
        assert_eq!(mask_phone("12345"), "*****");
    }

    #[test]
    fn out_refund_numbers_are_derived_from_the_whole_identity_and_valid() {
        let complaint = "200201820261127000000000001";
        let a = out_refund_no(complaint, "4200000000202611270000000001", 0);
        assert_eq!(a, "CR200201820261127000000000001-4200000000202611270000000001");
        assert_eq!(a, out_refund_no(complaint, "4200000000202611270000000001", 0), "derived: the same every time");
        // Orders ending alike (the last 8 characters were once all that was kept) get their own numbers.
        assert_ne!(a, out_refund_no(complaint, "4200000009202611270000000001", 0));
        assert_eq!(out_refund_no("2002", "42", 2), "CR2002-42-R2");
        // Too long, or not plain letters and digits: a digest, still within WeChat's rules, still one per identity.
        let long = out_refund_no(&"9".repeat(40), "4200000000202611270000000001", 1);
        assert!(long.starts_with("CR_") && long.len() <= 64 && wechatpay::api::refunds::is_valid_out_refund_no(&long));
        assert_ne!(long, out_refund_no(&"9".repeat(40), "4200000000202611270000000001", 2), "rounds differ");
        assert_ne!(out_refund_no("a-b", "c", 0), out_refund_no("a", "b-c", 0), "no two identities meet");
        assert_ne!(out_refund_no("ab", "c", 0), out_refund_no("a", "bc", 0));
        let mut seen = std::collections::HashSet::new();
        for complaint in ["1", "12", "2002018202611270000000000012345678901234"] {
            for order in ["4200000000202611270000000001", "4200000001202611270000000001", "x|y", "1"] {
                for round in 0..3 {
                    let number = out_refund_no(complaint, order, round);
                    assert!(wechatpay::api::refunds::is_valid_out_refund_no(&number), "{number}");
                    assert!(seen.insert(number.clone()), "{number} made twice");
                }
            }
        }
    }

    fn order(transaction_id: &str, amount: i64) -> wechatpay::api::complaints::ComplaintOrder {
        wechatpay::api::complaints::ComplaintOrder {
            transaction_id: transaction_id.into(),
            out_trade_no: String::new(),
            amount,
        }
    }

    #[test]
    fn a_zero_amount_order_is_skipped_and_the_plan_goes_on() {
        let mut detail: Complaint = serde_json::from_value(serde_json::json!({
            "complaint_id": "1", "complaint_time": "2026-12-01T10:00:00+08:00", "complaint_detail": "x",
            "complaint_state": "PENDING", "complainted_mchid": "1900000109", "complaint_order_info": [],
            "complaint_full_refunded": false, "incoming_user_response": false, "problem_description": "x",
            "user_complaint_times": 1
        }))
        .expect("detail");
        detail.complaint_order_info = vec![order("A", 0), order("B", 300), order("C", 500)];
        assert_eq!(refund_plan(&detail), vec![(1, 300), (2, 500)]);
        detail.apply_refund_amount = Some(400);
        assert_eq!(refund_plan(&detail), vec![(1, 300), (2, 100)], "at most what the user asked");
        detail.apply_refund_amount = Some(300);
        assert_eq!(refund_plan(&detail), vec![(1, 300)]);
    }

    #[test]
    fn every_action_type_has_its_handling() {
        use ActionType as A;
        assert_eq!(handling(Some(&A::CreateComplaint), false, false), Handling::Act { continued: false });
        assert_eq!(handling(Some(&A::ContinueComplaint), false, true), Handling::Act { continued: true });
        assert!(matches!(
            handling(Some(&A::UserResponse), false, false),
            Handling::Notify { provider_only: false, .. }
        ));
        for platform in [
            A::ResponseByPlatform,
            A::UserApplyPlatformService,
            A::UserCancelPlatformService,
            A::PlatformServiceFinished,
        ] {
            assert_eq!(
                handling(Some(&platform), false, false),
                Handling::Notify { kind: EventKind::ComplaintPlatformInvolved, provider_only: false }
            );
        }
        for own in [
            A::SellerRefund,
            A::MerchantResponse,
            A::MerchantConfirmComplete,
            A::MerchantApproveRefund,
            A::MerchantRejectRefund,
            A::RefundSuccess,
        ] {
            assert_eq!(handling(Some(&own), false, false), Handling::SyncOnly, "{own:?}");
        }
        assert_eq!(
            handling(Some(&A::Unknown("NEW_THING".into())), false, false),
            Handling::Notify { kind: EventKind::ComplaintChanged, provider_only: true }
        );
        assert_eq!(handling(None, true, false), Handling::Act { continued: false });
        assert_eq!(handling(None, false, true), Handling::Act { continued: true });
        assert_eq!(handling(None, false, false), Handling::SyncOnly);
    }
}
