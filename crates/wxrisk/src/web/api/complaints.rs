//! `/api/v1/complaints`: complaints as wxrisk knows them — their detail, negotiation history, timeline, refunds
//! and jobs — and the actions an operator takes on one (reply, refund, complete, approve a refund request).
//!
//! Contract: complaints are addressed by WeChat's `complaint_id` (add `provider_id` in the rare case two providers
//! hold the same id). The payer's phone is shown masked. Actions go through the job queue like automatic ones
//! (same dedupe rules: an order is never refunded twice) and are idempotent under an `Idempotency-Key` header: the
//! same key with the same request answers the first answer again; with another request, 422.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::clock::format_shanghai;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::complaints::{self as store, ComplaintFilter, ComplaintRow};
use crate::store::idempotency;
use crate::store::jobs::{self as queue, NewJob};
use crate::store::{Page, providers, refunds};
use crate::web::api::commit_audited;
use crate::web::api::jobs::{JobOut, to_out as job_out};
use crate::web::json::{ApiJson, ApiPath, ApiQuery, ListOut, PageQuery, time_param};
use crate::workflow;

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderOut {
    pub transaction_id: String,
    pub out_trade_no: String,
    /// Fen.
    pub amount: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundOut {
    pub out_refund_no: String,
    pub transaction_id: String,
    /// Fen.
    pub amount: i64,
    /// `REQUESTED`, `PROCESSING`, `SUCCESS`, `CLOSED`, `ABNORMAL`, `FAILED`.
    pub status: String,
    pub refund_id: Option<String>,
    pub user_received_account: Option<String>,
    pub last_error: Option<String>,
    /// `auto` or the operator.
    pub requested_by: String,
    /// `false` only for an operator's additional refund (`"additional": true`): every other refund is the one
    /// refund its order may have at a time.
    pub holds_order: bool,
    pub created_at: String,
    pub succeeded_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineOut {
    pub at: String,
    pub step: String,
    /// `ok`, `failed`, `skipped` or `info`.
    pub outcome: String,
    #[schema(value_type = Object)]
    pub detail: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComplaintOut {
    pub provider_id: i64,
    pub complaint_id: String,
    pub complainted_mchid: String,
    /// `PENDING`, `PROCESSING` or `PROCESSED`.
    pub state: String,
    pub complaint_time: String,
    pub detail: String,
    pub problem_type: Option<String>,
    pub problem_description: Option<String>,
    /// Fen.
    pub amount: i64,
    pub apply_refund_amount: Option<i64>,
    /// Masked, e.g. `138****8000`.
    pub payer_phone: Option<String>,
    pub user_complaint_times: i64,
    pub full_refunded: bool,
    pub incoming_user_response: bool,
    pub in_platform_service: bool,
    pub need_immediate_service: bool,
    pub orders: Vec<OrderOut>,
    pub last_action_type: Option<String>,
    /// First reply due.
    pub reply_due_at: String,
    pub resolve_due_at: String,
    /// Past a deadline not met.
    pub overdue: bool,
    /// From before the provider's `automation_since`: recorded and listed, but wxrisk neither replies, refunds nor
    /// completes it by itself; operators act on it with the actions below.
    pub historical: bool,
    pub replied_at: Option<String>,
    pub completed_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Only on `GET /complaints/{complaint_id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub wechat_detail: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub history: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunds: Option<Vec<RefundOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Vec<JobOut>>,
}

fn overdue(row: &ComplaintRow, now: i64) -> bool {
    row.state != "PROCESSED" && (row.resolve_due_at < now || (row.replied_at.is_none() && row.reply_due_at < now))
}

fn to_out(row: ComplaintRow, now: i64) -> ComplaintOut {
    let orders: Vec<OrderOut> = serde_json::from_str::<Vec<Value>>(&row.orders)
        .unwrap_or_default()
        .into_iter()
        .map(|o| OrderOut {
            transaction_id: o["transaction_id"].as_str().unwrap_or_default().to_owned(),
            out_trade_no: o["out_trade_no"].as_str().unwrap_or_default().to_owned(),
            amount: o["amount"].as_i64().unwrap_or_default(),
        })
        .collect();
    ComplaintOut {
        overdue: overdue(&row, now),
        historical: row.historical,
        provider_id: row.provider_id,
        complaint_id: row.complaint_id,
        complainted_mchid: row.complainted_mchid,
        state: row.state,
        complaint_time: format_shanghai(row.complaint_time),
        detail: row.detail,
        problem_type: row.problem_type,
        problem_description: row.problem_description,
        amount: row.amount_total,
        apply_refund_amount: row.apply_refund_amount,
        payer_phone: row.payer_phone_masked,
        user_complaint_times: row.user_complaint_times,
        full_refunded: row.full_refunded,
        incoming_user_response: row.incoming_user_response,
        in_platform_service: row.in_platform_service,
        need_immediate_service: row.need_immediate_service,
        orders,
        last_action_type: row.last_action_type,
        reply_due_at: format_shanghai(row.reply_due_at),
        resolve_due_at: format_shanghai(row.resolve_due_at),
        replied_at: row.replied_at.map(format_shanghai),
        completed_at: row.completed_at.map(format_shanghai),
        created_at: format_shanghai(row.created_at),
        updated_at: format_shanghai(row.updated_at),
        wechat_detail: None,
        history: None,
        timeline: None,
        refunds: None,
        jobs: None,
    }
}

fn refund_out(r: refunds::RefundRow) -> RefundOut {
    RefundOut {
        out_refund_no: r.out_refund_no,
        transaction_id: r.transaction_id,
        amount: r.amount,
        status: r.status,
        refund_id: r.refund_id,
        user_received_account: r.user_received_account,
        last_error: r.last_error,
        requested_by: r.requested_by,
        holds_order: r.holds_order,
        created_at: format_shanghai(r.created_at),
        succeeded_at: r.succeeded_at.map(format_shanghai),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ComplaintListQuery {
    pub provider_id: Option<i64>,
    /// The sub-merchant complained about.
    pub mchid: Option<String>,
    /// `PENDING`, `PROCESSING` or `PROCESSED`.
    pub state: Option<String>,
    /// Complained at or after: RFC 3339 or a date (Asia/Shanghai).
    pub since: Option<String>,
    /// Complained before: RFC 3339, or a date (through the end of that day).
    pub until: Option<String>,
    /// `true`: only complaints past a deadline they have not met.
    pub overdue: Option<bool>,
    /// `true`: only complaints from before the provider's automation start; `false`: only those since.
    pub historical: Option<bool>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/complaints", tag = "complaints", params(ComplaintListQuery),
    responses((status = 200, body = ListOut<ComplaintOut>), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _actor: Actor,
    ApiQuery(query): ApiQuery<ComplaintListQuery>,
) -> Result<Json<ListOut<ComplaintOut>>, ApiError> {
    let now = state.now_ms();
    let state_filter = match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s @ ("PENDING" | "PROCESSING" | "PROCESSED")) => Some(s.to_owned()),
        Some(other) => {
            return Err(ApiError::invalid("state", format!("`{other}` is not one of PENDING, PROCESSING, PROCESSED")));
        }
    };
    let filter = ComplaintFilter {
        provider_id: query.provider_id,
        complainted_mchid: query.mchid.filter(|m| !m.is_empty()),
        state: state_filter,
        since: time_param("since", query.since.as_deref(), false)?,
        until: time_param("until", query.until.as_deref(), true)?,
        overdue_at: query.overdue.unwrap_or(false).then_some(now),
        historical: query.historical,
    };
    let page = PageQuery { cursor: query.cursor, limit: query.limit }.page()?;
    let before = (page.after_id > 0).then_some(page.after_id);
    let mut conn = state.store().conn().await?;
    let rows = store::list(&mut conn, &filter, before, page.limit + 1).await?;
    let (rows, next) = Page { after_id: 0, limit: page.limit }.finish(rows, |c| c.id);
    Ok(Json(ListOut::new(rows.into_iter().map(|r| to_out(r, now)).collect(), next)))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WhichProvider {
    /// Only needed when two providers hold the same complaint id.
    pub provider_id: Option<i64>,
}

async fn find(
    conn: &mut sqlx::AnyConnection,
    complaint_id: &str,
    provider_id: Option<i64>,
) -> Result<ComplaintRow, ApiError> {
    let mut found = store::find(conn, complaint_id).await?;
    if let Some(provider_id) = provider_id {
        found.retain(|c| c.provider_id == provider_id);
    }
    match found.len() {
        0 => Err(ApiError::NotFound("complaint")),
        1 => Ok(found.remove(0)),
        _ => Err(ApiError::invalid("provider_id", "several providers hold this complaint id; give provider_id")),
    }
}

#[utoipa::path(get, path = "/complaints/{complaint_id}", tag = "complaints",
    params(("complaint_id" = String, Path), WhichProvider),
    responses((status = 200, body = ComplaintOut), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _actor: Actor,
    ApiPath(complaint_id): ApiPath<String>,
    ApiQuery(which): ApiQuery<WhichProvider>,
) -> Result<Json<ComplaintOut>, ApiError> {
    let now = state.now_ms();
    let mut conn = state.store().conn().await?;
    let row = find(&mut conn, &complaint_id, which.provider_id).await?;
    let timeline = store::timeline(&mut conn, row.id).await?;
    let refund_rows = refunds::for_complaint(&mut conn, row.provider_id, &row.complaint_id).await?;
    let job_rows = queue::mentioning(&mut conn, row.provider_id, &row.complaint_id, 200).await?;
    let wechat_detail = serde_json::from_str(&row.detail_json).ok();
    let history = serde_json::from_str(&row.history_json).ok();
    let mut out = to_out(row, now);
    out.wechat_detail = wechat_detail;
    out.history = history;
    out.timeline = Some(
        timeline
            .into_iter()
            .map(|t| TimelineOut {
                at: format_shanghai(t.at),
                step: t.step,
                outcome: t.outcome,
                detail: serde_json::from_str(&t.detail).unwrap_or(Value::Null),
            })
            .collect(),
    );
    out.refunds = Some(refund_rows.into_iter().map(refund_out).collect());
    out.jobs = Some(job_rows.into_iter().map(|j| job_out(j, None)).collect());
    Ok(Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyIn {
    /// 1–200 characters.
    pub text: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundIn {
    /// Only this order (default: every order of the complaint without a refund that counts).
    pub transaction_id: Option<String>,
    /// Fen (default: the order's amount, or what the user asked when less).
    pub amount: Option<i64>,
    /// `true`: refund although the order already has a refund that succeeded or whose outcome is not known yet —
    /// an operator's explicit decision (automation never does this). Needs `transaction_id` and `amount`, and the
    /// amount must fit in what is left of the order after its other refunds. Without it such an order is
    /// refused with 409.
    #[serde(default)]
    pub additional: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundProgressIn {
    /// `APPROVE` (then refunded) or `REJECT`.
    pub action: String,
    pub reject_reason: Option<String>,
}

/// What an action started.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActionOut {
    pub complaint_id: String,
    /// The jobs doing it (follow them at `/jobs/{id}`); empty when there was nothing to do.
    pub jobs: Vec<i64>,
    pub message: String,
}

/// The idempotency key of an action, when given.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let key = value.to_str().map_err(|_| ApiError::invalid("Idempotency-Key", "must be ASCII"))?.trim();
            if key.is_empty() || key.len() > 255 {
                return Err(ApiError::invalid("Idempotency-Key", "must be 1 to 255 characters"));
            }
            Ok(Some(key.to_owned()))
        }
    }
}

/// Run an action once per idempotency key.
async fn idempotent(
    state: &AppState,
    actor: &Actor,
    headers: &HeaderMap,
    request: Value,
    action: impl AsyncFnOnce() -> Result<ActionOut, ApiError>,
) -> Result<(StatusCode, Json<ActionOut>), ApiError> {
    let Some(key) = idempotency_key(headers)? else {
        return Ok((StatusCode::ACCEPTED, Json(action().await?)));
    };
    let label = actor.label();
    let hash = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, request.to_string().as_bytes()));
    let saved = {
        let mut conn = state.store().conn().await?;
        idempotency::reserve(&mut conn, &label, &key, &hash, state.now_ms()).await?
    };
    if let Some(saved) = saved {
        if saved.request_hash != hash {
            return Err(ApiError::Unprocessable {
                field: Some("Idempotency-Key".into()),
                message: "this key was used for a different request".into(),
            });
        }
        if saved.status == 0 {
            return Err(ApiError::Conflict {
                field: Some("Idempotency-Key".into()),
                message: "a request with this key is still being handled".into(),
            });
        }
        let out: ActionOut = serde_json::from_str(&saved.response)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("stored idempotent response: {e}")))?;
        let status = u16::try_from(saved.status).ok().and_then(|s| StatusCode::from_u16(s).ok());
        return Ok((status.unwrap_or(StatusCode::ACCEPTED), Json(out)));
    }
    let result = action().await;
    let mut conn = state.store().conn().await?;
    match result {
        Ok(out) => {
            let response = serde_json::to_string(&out).map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
            idempotency::finish(&mut conn, &label, &key, 202, &response).await?;
            Ok((StatusCode::ACCEPTED, Json(out)))
        }
        Err(error) => {
            idempotency::release(&mut conn, &label, &key).await?;
            Err(error)
        }
    }
}

fn job(kind: &str, key: String, provider_id: i64, payload: Value, now: i64) -> NewJob {
    NewJob { kind: kind.to_owned(), dedupe_key: key, payload, provider_id: Some(provider_id), run_at: now }
}

#[utoipa::path(post, path = "/complaints/{complaint_id}/reply", tag = "complaints",
    params(("complaint_id" = String, Path), WhichProvider, ("Idempotency-Key" = Option<String>, Header)), request_body = ReplyIn,
    responses((status = 202, body = ActionOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn reply(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    ApiPath(complaint_id): ApiPath<String>,
    ApiQuery(which): ApiQuery<WhichProvider>,
    ApiJson(input): ApiJson<ReplyIn>,
) -> Result<(StatusCode, Json<ActionOut>), ApiError> {
    let text = workflow::effects::fit_reply(&input.text);
    if text.is_empty() || input.text.trim().chars().count() > 200 {
        return Err(ApiError::invalid("text", "must be 1 to 200 characters"));
    }
    let request = json!({"action": "reply", "complaint_id": complaint_id, "text": text});
    idempotent(&state, &actor, &headers, request, async || {
        let now = state.now_ms();
        let mut tx = state.store().begin().await?;
        let row = find(&mut tx, &complaint_id, which.provider_id).await?;
        let id = format!("op-{now}");
        let new = job(
            workflow::REPLY,
            format!("reply:{}:{}:operator:{now}", row.provider_id, row.complaint_id),
            row.provider_id,
            json!({"provider_id": row.provider_id, "complaint_id": row.complaint_id, "sub_mchid": row.complainted_mchid,
                   "text": text, "immediate": row.need_immediate_service, "idempotent_id": format!("wxrisk-{}-{id}", row.complaint_id)}),
            now,
        );
        let job_id = queue::enqueue(&mut tx, &new, now).await?;
        store::add_step(&mut tx, row.id, "reply_queued", "info", &json!({"text": text, "by": actor.label()}), now).await?;
        commit_audited(tx, now, &actor, "complaint.reply", ("complaint", row.id), json!({"complaint_id": row.complaint_id})).await?;
        state.job_wakeup().notify_waiters();
        Ok(ActionOut { complaint_id: row.complaint_id, jobs: job_id.into_iter().collect(), message: "reply queued".into() })
    })
    .await
}

#[utoipa::path(post, path = "/complaints/{complaint_id}/refund", tag = "complaints",
    params(("complaint_id" = String, Path), WhichProvider, ("Idempotency-Key" = Option<String>, Header)), request_body = RefundIn,
    responses((status = 202, body = ActionOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn refund(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    ApiPath(complaint_id): ApiPath<String>,
    ApiQuery(which): ApiQuery<WhichProvider>,
    ApiJson(input): ApiJson<RefundIn>,
) -> Result<(StatusCode, Json<ActionOut>), ApiError> {
    if input.amount.is_some_and(|a| a <= 0) {
        return Err(ApiError::invalid("amount", "must be more than zero"));
    }
    if input.additional && (input.transaction_id.is_none() || input.amount.is_none()) {
        return Err(ApiError::invalid(
            "additional",
            "an additional refund names its order (transaction_id) and amount",
        ));
    }
    let request = json!({"action": "refund", "complaint_id": complaint_id, "transaction_id": input.transaction_id,
                         "amount": input.amount, "additional": input.additional});
    idempotent(&state, &actor, &headers, request, async || {
        let now = state.now_ms();
        let mut tx = state.store().begin().await?;
        let row = find(&mut tx, &complaint_id, which.provider_id).await?;
        let provider = providers::get(&mut tx, row.provider_id).await?.ok_or(ApiError::NotFound("provider"))?;
        let mut detail: wechatpay::api::complaints::Complaint = serde_json::from_str(&row.detail_json)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("stored complaint detail: {e}")))?;
        if let Some(tx_id) = &input.transaction_id {
            detail.complaint_order_info.retain(|o| &o.transaction_id == tx_id);
            if detail.complaint_order_info.is_empty() {
                return Err(ApiError::invalid("transaction_id", "is not an order of this complaint"));
            }
        }
        if let Some(amount) = input.amount {
            let largest = detail.complaint_order_info.iter().map(|o| o.amount).max().unwrap_or(0);
            if detail.complaint_order_info.len() != 1 || amount > largest {
                return Err(ApiError::invalid("amount", "give one order (transaction_id) and at most its amount"));
            }
            detail.apply_refund_amount = Some(amount);
        }
        for order in &detail.complaint_order_info {
            let live = refunds::live_for_order(&mut tx, row.provider_id, &order.transaction_id).await?;
            if live.is_empty() {
                continue;
            }
            if !input.additional {
                let numbers: Vec<String> = live.iter().map(|r| format!("{} ({})", r.out_refund_no, r.status)).collect();
                return Err(ApiError::Conflict {
                    field: None,
                    message: format!(
                        "order {} already has a refund that has not failed: {}; to refund it again on purpose, send \
                         \"additional\": true with the amount",
                        order.transaction_id,
                        numbers.join(", ")
                    ),
                });
            }
            let taken: i64 = live.iter().map(|r| r.amount).sum();
            let amount = input.amount.unwrap_or_default();
            if taken + amount > order.amount {
                return Err(ApiError::invalid(
                    "amount",
                    format!(
                        "the order's other refunds take {} of its {} fen: at most {} fen is left",
                        taken,
                        order.amount,
                        order.amount - taken
                    ),
                ));
            }
        }
        let ask = workflow::complaints::RefundAsk {
            requested_by: &actor.label(),
            complete_after: false,
            additional: input.additional,
        };
        let planned =
            workflow::complaints::create_refunds(&mut tx, &state, &provider, &detail, ask, row.user_complaint_times)
                .await?;
        if let Some(held) = planned.held.first() {
            // Another worker or operator took the order between the check above and the insert.
            return Err(ApiError::Conflict {
                field: None,
                message: format!("order {} is being refunded already ({})", held.transaction_id, held.out_refund_no),
            });
        }
        let created = planned.created;
        let mut jobs = Vec::new();
        for number in &created {
            if let Some(j) = queue::find_by_dedupe_key(&mut tx, &format!("refund:{}:{number}", row.provider_id)).await?
            {
                jobs.push(j.id);
            }
        }
        commit_audited(tx, now, &actor, "complaint.refund", ("complaint", row.id), json!({"out_refund_nos": created}))
            .await?;
        state.job_wakeup().notify_waiters();
        Ok(ActionOut { complaint_id: row.complaint_id, jobs, message: format!("{} refund(s) queued", created.len()) })
    })
    .await
}

#[utoipa::path(post, path = "/complaints/{complaint_id}/complete", tag = "complaints",
    params(("complaint_id" = String, Path), WhichProvider, ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = ActionOut), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn complete(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    ApiPath(complaint_id): ApiPath<String>,
    ApiQuery(which): ApiQuery<WhichProvider>,
) -> Result<(StatusCode, Json<ActionOut>), ApiError> {
    let request = json!({"action": "complete", "complaint_id": complaint_id});
    idempotent(&state, &actor, &headers, request, async || {
        let now = state.now_ms();
        let mut tx = state.store().begin().await?;
        let row = find(&mut tx, &complaint_id, which.provider_id).await?;
        let new = job(
            workflow::COMPLETE,
            format!("complete:{}:{}:operator:{now}", row.provider_id, row.complaint_id),
            row.provider_id,
            json!({"provider_id": row.provider_id, "complaint_id": row.complaint_id, "sub_mchid": row.complainted_mchid}),
            now,
        );
        let job_id = queue::enqueue(&mut tx, &new, now).await?;
        commit_audited(tx, now, &actor, "complaint.complete", ("complaint", row.id), json!({"complaint_id": row.complaint_id})).await?;
        state.job_wakeup().notify_waiters();
        Ok(ActionOut { complaint_id: row.complaint_id, jobs: job_id.into_iter().collect(), message: "completion queued".into() })
    })
    .await
}

#[utoipa::path(post, path = "/complaints/{complaint_id}/refund-progress", tag = "complaints",
    params(("complaint_id" = String, Path), WhichProvider, ("Idempotency-Key" = Option<String>, Header)), request_body = RefundProgressIn,
    responses((status = 202, body = ActionOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn refund_progress(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    ApiPath(complaint_id): ApiPath<String>,
    ApiQuery(which): ApiQuery<WhichProvider>,
    ApiJson(input): ApiJson<RefundProgressIn>,
) -> Result<(StatusCode, Json<ActionOut>), ApiError> {
    let action = input.action.trim().to_ascii_uppercase();
    let reason = input.reject_reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned);
    match (action.as_str(), &reason) {
        ("APPROVE", _) => {}
        ("REJECT", Some(r)) if r.chars().count() <= 200 => {}
        ("REJECT", _) => {
            return Err(ApiError::invalid("reject_reason", "REJECT needs a reason of 1 to 200 characters"));
        }
        _ => return Err(ApiError::invalid("action", "must be APPROVE or REJECT")),
    }
    let request =
        json!({"action": "refund-progress", "complaint_id": complaint_id, "decision": action, "reason": reason});
    idempotent(&state, &actor, &headers, request, async || {
        let now = state.now_ms();
        let mut tx = state.store().begin().await?;
        let row = find(&mut tx, &complaint_id, which.provider_id).await?;
        if row.problem_type.as_deref() != Some("REFUND") {
            return Err(ApiError::invalid("action", "only refund-request complaints (problem_type REFUND) take a refund decision"));
        }
        let new = job(
            workflow::REFUND_PROGRESS,
            format!("refund-progress:{}:{}:operator:{now}", row.provider_id, row.complaint_id),
            row.provider_id,
            json!({"provider_id": row.provider_id, "complaint_id": row.complaint_id, "action": action, "reject_reason": reason}),
            now,
        );
        let job_id = queue::enqueue(&mut tx, &new, now).await?;
        commit_audited(tx, now, &actor, "complaint.refund_progress", ("complaint", row.id), json!({"decision": action})).await?;
        state.job_wakeup().notify_waiters();
        Ok(ActionOut { complaint_id: row.complaint_id, jobs: job_id.into_iter().collect(), message: format!("{action} queued") })
    })
    .await
}
