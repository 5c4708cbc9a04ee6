//! `/api/v1/deliveries`: every notification sent or to be sent, what the service answered, and retrying one.
//!
//! Contract: a delivery's `status` is its job's (`queued`, `running`, `succeeded`, `dead`); a delivery sent inside
//! another's digest shows `digested_into` and shares that delivery's status. Retrying a dead delivery requeues
//! its job with a fresh retry budget; retrying a digested one retries the digest that carried it.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::clock::format_shanghai;
use crate::error::ApiError;
use crate::notify::EventKind;
use crate::state::AppState;
use crate::store::deliveries::{self, DeliveryFilter, DeliveryRow};
use crate::store::jobs::{self, JobStatus};
use crate::web::api::jobs::{AttemptOut, retry_job, to_out as job_out};
use crate::web::json::{ApiQuery, IdPath, ListOut, PageQuery, time_param};

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    pub id: i64,
    pub job_id: i64,
    pub provider_id: i64,
    pub channel_id: i64,
    pub channel_kind: String,
    /// An address, openid or phone number; `*` for channels with one destination (robots, email, webhook).
    pub recipient: String,
    pub event_kind: String,
    /// What happened, e.g. `complaint:{id}:{notification id}`.
    pub event_key: String,
    pub subject: String,
    pub locale: String,
    /// `queued`, `running`, `succeeded` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// The service's last answer code (`250`, `0`, `Ok`, `535` …).
    pub last_code: Option<String>,
    /// The service's id for the message: `msgid`, `SerialNo`, the SMTP reply.
    pub external_id: Option<String>,
    /// Set when this message went out inside that delivery's digest.
    pub digested_into: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub delivered_at: Option<String>,
    /// Every attempt of its job, oldest first (only on `GET /deliveries/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptOut>>,
    /// The rendered message (only on `GET /deliveries/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub message: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListQuery {
    pub channel_id: Option<i64>,
    pub provider_id: Option<i64>,
    /// `queued`, `running`, `succeeded` or `dead`.
    pub status: Option<String>,
    /// An event kind, e.g. `complaint_created`.
    pub event: Option<String>,
    /// Created at or after: RFC 3339, or a date (that day in Asia/Shanghai).
    pub since: Option<String>,
    /// Created before: RFC 3339, or a date (through the end of that day).
    pub until: Option<String>,
    /// Deliveries are listed newest first; `next_cursor` continues with older ones.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

fn to_out(row: DeliveryRow, attempt_log: Option<Vec<AttemptOut>>, with_message: bool) -> DeliveryOut {
    let message = with_message.then(|| serde_json::from_str(&row.message).unwrap_or(serde_json::Value::Null));
    DeliveryOut {
        id: row.id,
        job_id: row.job_id,
        provider_id: row.provider_id,
        channel_id: row.channel_id,
        channel_kind: row.channel_kind,
        recipient: row.recipient,
        event_kind: row.event_kind,
        event_key: row.event_key,
        subject: row.subject,
        locale: row.locale,
        status: row.status,
        attempts: row.attempts,
        last_error: row.last_error,
        last_code: row.last_code,
        external_id: row.external_id,
        digested_into: row.digested_into,
        created_at: format_shanghai(row.created_at),
        updated_at: format_shanghai(row.updated_at),
        delivered_at: row.delivered_at.map(format_shanghai),
        attempt_log,
        message,
    }
}

fn filter_of(query: &DeliveryListQuery) -> Result<DeliveryFilter, ApiError> {
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(JobStatus::parse(text).map(|s| s.as_str().to_owned()).ok_or_else(|| {
            ApiError::invalid("status", format!("`{text}` is not one of queued, running, succeeded, dead"))
        })?),
    };
    let event_kind = match query.event.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(
            EventKind::parse(text)
                .ok_or_else(|| {
                    let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                    ApiError::invalid("event", format!("`{text}` is not one of {}", kinds.join(", ")))
                })?
                .as_str()
                .to_owned(),
        ),
    };
    Ok(DeliveryFilter {
        channel_id: query.channel_id,
        provider_id: query.provider_id,
        status,
        event_kind,
        since: time_param("since", query.since.as_deref(), false)?,
        until: time_param("until", query.until.as_deref(), true)?,
    })
}

#[utoipa::path(get, path = "/deliveries", tag = "deliveries", params(DeliveryListQuery),
    responses((status = 200, body = ListOut<DeliveryOut>), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _actor: Actor,
    ApiQuery(query): ApiQuery<DeliveryListQuery>,
) -> Result<Json<ListOut<DeliveryOut>>, ApiError> {
    let filter = filter_of(&query)?;
    let page = PageQuery { cursor: query.cursor, limit: query.limit }.page()?;
    let before = (page.after_id > 0).then_some(page.after_id);
    let mut conn = state.store().conn().await?;
    let rows = deliveries::list(&mut conn, &filter, before, page.limit + 1).await?;
    let (rows, next) = crate::store::Page { after_id: 0, limit: page.limit }.finish(rows, |d| d.id);
    Ok(Json(ListOut::new(rows.into_iter().map(|r| to_out(r, None, false)).collect(), next)))
}

#[utoipa::path(get, path = "/deliveries/{id}", tag = "deliveries", params(("id" = i64, Path)),
    responses((status = 200, body = DeliveryOut), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _actor: Actor,
    IdPath(id): IdPath,
) -> Result<Json<DeliveryOut>, ApiError> {
    let mut conn = state.store().conn().await?;
    let row = deliveries::get(&mut conn, id).await?.ok_or(ApiError::NotFound("delivery"))?;
    let job = jobs::get(&mut conn, row.job_id).await?.ok_or(ApiError::NotFound("job"))?;
    let attempts = jobs::attempts(&mut conn, row.job_id).await?;
    let log = job_out(job, Some(attempts)).attempt_log;
    Ok(Json(to_out(row, log, true)))
}

/// Send a dead delivery again (or a waiting one now), with a fresh retry budget.
#[utoipa::path(post, path = "/deliveries/{id}/retry", tag = "deliveries", params(("id" = i64, Path)),
    responses((status = 200, body = DeliveryOut), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    actor: Actor,
    IdPath(id): IdPath,
) -> Result<Json<DeliveryOut>, ApiError> {
    let mut conn = state.store().conn().await?;
    let row = deliveries::get(&mut conn, id).await?.ok_or(ApiError::NotFound("delivery"))?;
    // A digested delivery travels with its carrier.
    let carrier = match row.digested_into {
        Some(carrier_id) => deliveries::get(&mut conn, carrier_id).await?.ok_or(ApiError::NotFound("delivery"))?,
        None => row,
    };
    drop(conn);
    retry_job(&state, &actor, carrier.job_id).await?;
    let mut conn = state.store().conn().await?;
    let row = deliveries::get(&mut conn, id).await?.ok_or(ApiError::NotFound("delivery"))?;
    Ok(Json(to_out(row, None, false)))
}
