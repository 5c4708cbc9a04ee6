//! Sub-merchant risk: `GET /api/v1/merchants/{id}/risk` (one sub-merchant over 7, 30 and 90 days) and
//! `GET /api/v1/risk/merchants` (a provider's sub-merchants ranked by score). The score and its formula:
//! `domain::risk`, documented for operators in `docs/risk.md`. [`risk_of`] is what the API and the console's risk
//! page both show.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::domain::risk::RiskFigures;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::violations as store;
use crate::store::{merchants, providers};
use crate::web::json::{ApiQuery, IdPath};
use crate::workflow::violations::{current_score, figures};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RiskOut {
    pub provider_id: i64,
    pub mchid: String,
    /// The registered sub-merchant's name, when it is registered.
    pub name: Option<String>,
    /// 0–100, from the last 30 days and current limitations.
    pub score: i64,
    /// The score at which the provider is alerted (`risk.alert_score`).
    pub alert_score: i64,
    pub last_7_days: RiskFigures,
    pub last_30_days: RiskFigures,
    pub last_90_days: RiskFigures,
    /// Violations of the last 90 days by `risk_type`.
    #[schema(value_type = Object)]
    pub violations_by_type: Value,
    /// What WeChat limits now (`NO_REFUND` …), as last read.
    pub limited_functions: Vec<String>,
}

/// A sub-merchant's score and figures now (`name`: the registered sub-merchant's, when it is registered).
pub(crate) async fn risk_of(
    conn: &mut sqlx::AnyConnection,
    state: &AppState,
    provider_id: i64,
    mchid: &str,
    name: Option<String>,
) -> Result<RiskOut, ApiError> {
    let now = state.now_ms();
    let (score, last_30_days, limited_functions) = current_score(conn, provider_id, mchid, now).await?;
    let violations = store::list(
        conn,
        &store::ViolationFilter {
            provider_id: Some(provider_id),
            sub_mchid: Some(mchid.to_owned()),
            since: Some(now - 90 * 86_400_000),
            ..store::ViolationFilter::default()
        },
        None,
        1000,
    )
    .await?;
    let mut by_type = serde_json::Map::new();
    for v in violations {
        let entry = by_type.entry(v.risk_type).or_insert(Value::from(0));
        *entry = Value::from(entry.as_i64().unwrap_or(0) + 1);
    }
    Ok(RiskOut {
        provider_id,
        mchid: mchid.to_owned(),
        name,
        score,
        alert_score: state.config().risk.alert_score,
        last_7_days: figures(conn, provider_id, mchid, 7, now).await?,
        last_30_days,
        last_90_days: figures(conn, provider_id, mchid, 90, now).await?,
        violations_by_type: Value::Object(by_type),
        limited_functions,
    })
}

#[utoipa::path(get, path = "/merchants/{id}/risk", tag = "risk", params(("id" = i64, Path)),
    responses((status = 200, body = RiskOut), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn merchant(
    State(state): State<AppState>,
    _actor: Actor,
    IdPath(id): IdPath,
) -> Result<Json<RiskOut>, ApiError> {
    let mut conn = state.store().conn().await?;
    let row = merchants::get(&mut conn, id).await?.ok_or(ApiError::NotFound("sub-merchant"))?;
    Ok(Json(risk_of(&mut conn, &state, row.provider_id, &row.mchid, Some(row.name)).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RankingQuery {
    /// Only this provider's sub-merchants.
    pub provider_id: Option<i64>,
    /// How many (1–200, default 50), highest score first.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RankingOut {
    pub items: Vec<RiskOut>,
}

/// Every sub-merchant that is registered, was complained about or was punished, highest score first.
#[utoipa::path(get, path = "/risk/merchants", tag = "risk", params(RankingQuery),
    responses((status = 200, body = RankingOut), (status = 400, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn ranking(
    State(state): State<AppState>,
    _actor: Actor,
    ApiQuery(query): ApiQuery<RankingQuery>,
) -> Result<Json<RankingOut>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 200"));
    }
    let mut conn = state.store().conn().await?;
    let provider_ids = match query.provider_id {
        Some(id) => {
            providers::get(&mut conn, id)
                .await?
                .ok_or_else(|| ApiError::invalid("provider_id", format!("no provider has id {id}")))?;
            vec![id]
        }
        None => providers::ids(&mut conn).await?,
    };
    let mut items = Vec::new();
    for provider_id in provider_ids {
        for mchid in store::known_mchids(&mut conn, provider_id).await? {
            let name = merchants::find_by_mchid(&mut conn, Some(provider_id), &mchid)
                .await?
                .into_iter()
                .next()
                .map(|m| m.name);
            items.push(risk_of(&mut conn, &state, provider_id, &mchid, name).await?);
        }
    }
    items.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| b.last_30_days.complaints.cmp(&a.last_30_days.complaints)));
    items.truncate(usize::try_from(limit).unwrap_or(50));
    Ok(Json(RankingOut { items }))
}
