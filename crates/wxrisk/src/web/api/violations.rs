//! `/api/v1/violations`: disposal records of sub-merchants (平台违规处置) — punishments, interceptions, appeals —
//! newest first, with the events WeChat sent about each and the sub-merchant's current limitations.
//!
//! Contract: [`list_violations`] (the filters checked, one page of records) and [`violation_detail`] (a record with
//! its events and the sub-merchant's stored limitations) are what the API handlers and the console's pages both
//! read through.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::clock::format_shanghai;
use crate::domain::risk::risk_label;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Page;
use crate::store::violations::{self as store, EventRow, LimitationsRow, ViolationFilter, ViolationRow};
use crate::web::json::{ApiQuery, IdPath, ListOut, PageQuery, time_param};

#[derive(Debug, Serialize, ToSchema)]
pub struct ViolationEventOut {
    pub notification_id: String,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub resource: Value,
    pub received_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViolationOut {
    pub id: i64,
    pub provider_id: i64,
    pub record_id: String,
    pub sub_mchid: String,
    pub company_name: String,
    /// `PUNISH`, `INTERCEPT` or `APPEAL` (the first event about the record).
    pub kind: String,
    pub risk_type: String,
    /// The Chinese label (WeChat's own description for values this version does not know).
    pub risk_label: String,
    pub risk_description: String,
    /// Free text, as WeChat sent it.
    pub punish_plan: String,
    pub punish_time: String,
    pub punish_description: String,
    /// The latest APPEAL event's state (e.g. `APPEAL_SUCCESSFUL`), when there was one.
    pub appeal_state: Option<String>,
    pub appeal_detail: Option<String>,
    pub appeal_updated_at: Option<String>,
    pub last_event_type: String,
    pub created_at: String,
    pub updated_at: String,
    /// Only on `GET /violations/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<ViolationEventOut>>,
    /// The sub-merchant's limitations as last read (only on `GET /violations/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub limitations: Option<Value>,
}

fn to_out(r: ViolationRow) -> ViolationOut {
    ViolationOut {
        risk_label: risk_label(&r.risk_type, &r.risk_description),
        id: r.id,
        provider_id: r.provider_id,
        record_id: r.record_id,
        sub_mchid: r.sub_mchid,
        company_name: r.company_name,
        kind: r.kind,
        risk_type: r.risk_type,
        risk_description: r.risk_description,
        punish_plan: r.punish_plan,
        punish_time: r.punish_time,
        punish_description: r.punish_description,
        appeal_state: r.appeal_state,
        appeal_detail: r.appeal_detail,
        appeal_updated_at: r.appeal_updated_at.map(format_shanghai),
        last_event_type: r.last_event_type,
        created_at: format_shanghai(r.created_at),
        updated_at: format_shanghai(r.updated_at),
        events: None,
        limitations: None,
    }
}

#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ViolationListQuery {
    pub provider_id: Option<i64>,
    /// The sub-merchant.
    pub mchid: Option<String>,
    /// `PUNISH`, `INTERCEPT` or `APPEAL`.
    pub event: Option<String>,
    /// A `risk_type`, e.g. `TRANSACTION_DISPUTE`.
    pub risk_type: Option<String>,
    /// Received at or after: RFC 3339, or a date (Asia/Shanghai).
    pub since: Option<String>,
    /// Received before: RFC 3339, or a date (through the end of that day).
    pub until: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/violations", tag = "violations", params(ViolationListQuery),
    responses((status = 200, body = ListOut<ViolationOut>), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _actor: Actor,
    ApiQuery(query): ApiQuery<ViolationListQuery>,
) -> Result<Json<ListOut<ViolationOut>>, ApiError> {
    let (rows, next) = list_violations(&state, query).await?;
    Ok(Json(ListOut::new(rows.into_iter().map(to_out).collect(), next)))
}

/// One page of records, newest first, and the cursor of the next page. Filters are checked here: a bad `event`,
/// `since`, `until`, `cursor` or `limit` is an error naming it.
pub(crate) async fn list_violations(
    state: &AppState,
    query: ViolationListQuery,
) -> Result<(Vec<ViolationRow>, Option<i64>), ApiError> {
    let kind = match query.event.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(event) => {
            let kind = event.strip_prefix("VIOLATION.").unwrap_or(event).to_ascii_uppercase();
            if !matches!(kind.as_str(), "PUNISH" | "INTERCEPT" | "APPEAL") {
                return Err(ApiError::invalid("event", format!("`{event}` is not one of PUNISH, INTERCEPT, APPEAL")));
            }
            Some(kind)
        }
    };
    let filter = ViolationFilter {
        provider_id: query.provider_id,
        sub_mchid: query.mchid.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()),
        kind,
        risk_type: query.risk_type.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()),
        since: time_param("since", query.since.as_deref(), false)?,
        until: time_param("until", query.until.as_deref(), true)?,
    };
    let page = PageQuery { cursor: query.cursor, limit: query.limit }.page()?;
    let before = (page.after_id > 0).then_some(page.after_id);
    let mut conn = state.store().conn().await?;
    let rows = store::list(&mut conn, &filter, before, page.limit + 1).await?;
    Ok(Page { after_id: 0, limit: page.limit }.finish(rows, |v| v.id))
}

#[utoipa::path(get, path = "/violations/{id}", tag = "violations", params(("id" = i64, Path)),
    responses((status = 200, body = ViolationOut), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    _actor: Actor,
    IdPath(id): IdPath,
) -> Result<Json<ViolationOut>, ApiError> {
    let detail = violation_detail(&state, WhichViolation::Id(id)).await?;
    let mut out = to_out(detail.row);
    out.events = Some(
        detail
            .events
            .into_iter()
            .map(|e| ViolationEventOut {
                notification_id: e.notification_id,
                event_type: e.event_type,
                resource: serde_json::from_str(&e.resource).unwrap_or(Value::Null),
                received_at: format_shanghai(e.received_at),
            })
            .collect(),
    );
    out.limitations = detail.limitations.map(|l| {
        let mut details: Value = serde_json::from_str(&l.details).unwrap_or(Value::Null);
        details["checked_at"] = Value::String(format_shanghai(l.checked_at));
        details
    });
    Ok(Json(out))
}

/// Which record: the API's row id, or the provider and WeChat's `record_id` (the console's links).
#[derive(Debug, Clone, Copy)]
pub(crate) enum WhichViolation<'a> {
    Id(i64),
    Record { provider_id: i64, record_id: &'a str },
}

/// A record, every event about it (oldest first) and its sub-merchant's limitations as last read.
#[derive(Debug, Clone)]
pub(crate) struct ViolationDetail {
    pub row: ViolationRow,
    pub events: Vec<EventRow>,
    pub limitations: Option<LimitationsRow>,
}

pub(crate) async fn violation_detail(state: &AppState, which: WhichViolation<'_>) -> Result<ViolationDetail, ApiError> {
    let mut conn = state.store().conn().await?;
    let row = match which {
        WhichViolation::Id(id) => store::get(&mut conn, id).await?,
        WhichViolation::Record { provider_id, record_id } => {
            store::get_by_record(&mut conn, provider_id, record_id).await?
        }
    }
    .ok_or(ApiError::NotFound("violation"))?;
    let events = store::events(&mut conn, row.id).await?;
    let limitations = store::limitations(&mut conn, row.provider_id, &row.sub_mchid).await?;
    Ok(ViolationDetail { row, events, limitations })
}
