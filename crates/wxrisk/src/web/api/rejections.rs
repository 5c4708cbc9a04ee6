//! `/api/v1/callback-rejections`: callbacks refused at the door (newest first), for operators checking why
//! WeChat Pay's notifications do not arrive — a wrong platform certificate, a clock off by minutes, a proxy that
//! drops the `Wechatpay-*` headers — or who is knocking with forged ones.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Actor;
use crate::clock::format_shanghai;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Page;
use crate::store::inbound;
use crate::web::json::{ApiQuery, ListOut, PageQuery};

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionOut {
    pub id: i64,
    pub provider_id: Option<i64>,
    pub path: String,
    /// `SIGNATURE`, `PROBE`, `STALE`, `UNKNOWN_KEY`, `DECRYPT`, `MALFORMED`, `WRONG_EVENT`, `UNKNOWN_PROVIDER`,
    /// `TOO_LARGE`.
    pub reason: String,
    pub detail: String,
    /// The `Wechatpay-Serial` the callback named.
    pub serial: Option<String>,
    /// The body itself is not kept (it may be anyone's); its hash and length are.
    pub body_sha256: String,
    pub body_len: i64,
    pub received_at: String,
}

#[utoipa::path(get, path = "/callback-rejections", tag = "callbacks", params(PageQuery),
    responses((status = 200, body = ListOut<RejectionOut>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _actor: Actor,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListOut<RejectionOut>>, ApiError> {
    let page = query.page()?;
    let before = (page.after_id > 0).then_some(page.after_id);
    let mut conn = state.store().conn().await?;
    let rows = inbound::rejections(&mut conn, before, page.limit + 1).await?;
    let (rows, next) = Page { after_id: 0, limit: page.limit }.finish(rows, |r| r.id);
    let items = rows
        .into_iter()
        .map(|r| RejectionOut {
            id: r.id,
            provider_id: r.provider_id,
            path: r.path,
            reason: r.reason,
            detail: r.detail,
            serial: r.serial,
            body_sha256: r.body_sha256,
            body_len: r.body_len,
            received_at: format_shanghai(r.received_at),
        })
        .collect();
    Ok(Json(ListOut::new(items, next)))
}
