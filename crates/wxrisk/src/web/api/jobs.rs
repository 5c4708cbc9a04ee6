//! `/api/v1/jobs`: the queue of outside effects, its attempts, and retrying a dead job by hand.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::clock::format_shanghai;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Page;
use crate::store::jobs::{self, AttemptRow, JobFilter, JobRow, JobStatus};
use crate::web::api::commit_audited;
use crate::web::json::{ApiQuery, IdPath, ListOut};

#[derive(Debug, Serialize, ToSchema)]
pub struct JobOut {
    pub id: i64,
    pub kind: String,
    pub dedupe_key: String,
    /// `queued`, `running`, `succeeded` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub provider_id: Option<i64>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// When it runs next (queued) or ran last.
    pub run_at: String,
    pub locked_until: Option<String>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    /// Every attempt, oldest first (only on `GET /jobs/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptOut>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    pub attempt: i64,
    pub worker: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    /// `running`, `succeeded`, `retry`, `dead` or `lease_expired`.
    pub outcome: String,
    pub http_status: Option<i64>,
    pub code: Option<String>,
    pub message: Option<String>,
    /// The answer's body, truncated.
    pub body: Option<String>,
    pub next_attempt_at: Option<String>,
    /// The other side's id for what was done (msgid, SerialNo, SMTP reply, refund id).
    pub external_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobListQuery {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub provider_id: Option<i64>,
    /// Jobs are listed newest first; `next_cursor` continues with older ones.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

pub fn to_out(row: JobRow, attempt_log: Option<Vec<AttemptRow>>) -> JobOut {
    let payload = serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::String(row.payload.clone()));
    JobOut {
        id: row.id,
        kind: row.kind,
        dedupe_key: row.dedupe_key,
        status: row.status,
        attempts: row.attempts,
        provider_id: row.provider_id,
        payload,
        run_at: format_shanghai(row.run_at),
        locked_until: row.locked_until.map(format_shanghai),
        locked_by: row.locked_by,
        last_error: row.last_error,
        created_at: format_shanghai(row.created_at),
        updated_at: format_shanghai(row.updated_at),
        finished_at: row.finished_at.map(format_shanghai),
        attempt_log: attempt_log.map(|log| {
            log.into_iter()
                .map(|a| AttemptOut {
                    attempt: a.attempt,
                    worker: a.worker,
                    started_at: format_shanghai(a.started_at),
                    finished_at: a.finished_at.map(format_shanghai),
                    duration_ms: a.duration_ms,
                    outcome: a.outcome,
                    http_status: a.http_status,
                    code: a.code,
                    message: a.message,
                    body: a.body,
                    next_attempt_at: a.next_attempt_at.map(format_shanghai),
                    external_id: a.external_id,
                })
                .collect()
        }),
    }
}

/// Parse list parameters shared by the API and `wxrisk jobs list`.
pub fn filter_of(status: Option<&str>, kind: Option<String>, provider_id: Option<i64>) -> Result<JobFilter, ApiError> {
    let status = match status {
        None | Some("") => None,
        Some(text) => Some(JobStatus::parse(text).ok_or_else(|| {
            ApiError::invalid("status", format!("`{text}` is not one of queued, running, succeeded, dead"))
        })?),
    };
    Ok(JobFilter { status, kind: kind.filter(|k| !k.is_empty()), provider_id })
}

#[utoipa::path(get, path = "/jobs", tag = "jobs", params(JobListQuery),
    responses((status = 200, body = ListOut<JobOut>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _actor: Actor,
    ApiQuery(query): ApiQuery<JobListQuery>,
) -> Result<Json<ListOut<JobOut>>, ApiError> {
    let filter = filter_of(query.status.as_deref(), query.kind, query.provider_id)?;
    let page = crate::web::json::PageQuery { cursor: query.cursor, limit: query.limit }.page()?;
    let before = (page.after_id > 0).then_some(page.after_id);
    let mut conn = state.store().conn().await?;
    let rows = jobs::list(&mut conn, &filter, before, page.limit + 1).await?;
    let (rows, next) = Page { after_id: 0, limit: page.limit }.finish(rows, |j| j.id);
    Ok(Json(ListOut::new(rows.into_iter().map(|r| to_out(r, None)).collect(), next)))
}

#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = JobOut), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get(State(state): State<AppState>, _actor: Actor, IdPath(id): IdPath) -> Result<Json<JobOut>, ApiError> {
    let mut conn = state.store().conn().await?;
    let row = jobs::get(&mut conn, id).await?.ok_or(ApiError::NotFound("job"))?;
    let attempts = jobs::attempts(&mut conn, id).await?;
    Ok(Json(to_out(row, Some(attempts))))
}

/// Requeue a dead job (or run a waiting one now) with a fresh retry budget.
#[utoipa::path(post, path = "/jobs/{id}/retry", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = JobOut), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn retry(State(state): State<AppState>, actor: Actor, IdPath(id): IdPath) -> Result<Json<JobOut>, ApiError> {
    let row = retry_job(&state, &actor, id).await?;
    Ok(Json(to_out(row, None)))
}

/// Shared by the API and `wxrisk jobs retry`.
pub async fn retry_job(state: &AppState, actor: &Actor, id: i64) -> Result<JobRow, ApiError> {
    let now = state.now_ms();
    let mut tx = state.store().begin().await?;
    let row = match jobs::retry_now(&mut tx, id, now).await {
        Err(crate::store::StoreError::Conflict { constraint }) => {
            return Err(ApiError::Conflict {
                field: None,
                message: format!("only dead or waiting jobs can be retried; this one has {constraint}"),
            });
        }
        other => other?,
    };
    commit_audited(tx, now, actor, "job.retry", ("job", id), serde_json::json!({"kind": row.kind})).await?;
    state.job_wakeup().notify_waiters();
    Ok(row)
}
