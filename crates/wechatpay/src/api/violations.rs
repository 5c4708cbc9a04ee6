//! The violation notification URL (`/v3/merchant-risk-manage/violation-notifications`). Its field is
//! `notify_url` — not `url` as for complaints.

use http::Method;
use serde::{Deserialize, Serialize};

use super::{json_body, notify_url};
use crate::client::{ApiRequest, Body, Client};
use crate::error::{Error, Result};

const PATH: &str = "/v3/merchant-risk-manage/violation-notifications";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationNotificationUrl {
    pub notify_url: String,
}

impl Client {
    /// The violation notification URL WeChat has, if any (404 `NOT_FOUND` means none).
    pub async fn violation_notification_url(&self) -> Result<Option<ViolationNotificationUrl>> {
        match self
            .json(ApiRequest {
                method: Method::GET,
                target: PATH.into(),
                body: Body::Empty,
                encrypted: false,
                verify: true,
            })
            .await
        {
            Ok(url) => Ok(Some(url)),
            Err(Error::Api(api)) if api.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create (`update = false`) or replace the violation notification URL.
    pub async fn set_violation_notification_url(&self, url: &str, update: bool) -> Result<ViolationNotificationUrl> {
        notify_url("notify_url", url, 256)?;
        let body = json_body(&ViolationNotificationUrl { notify_url: url.to_owned() })?;
        let method = if update { Method::PUT } else { Method::POST };
        self.json(ApiRequest { method, target: PATH.into(), body: Body::Json(body), encrypted: false, verify: true })
            .await
    }

    pub async fn delete_violation_notification_url(&self) -> Result<()> {
        self.no_content(ApiRequest {
            method: Method::DELETE,
            target: PATH.into(),
            body: Body::Empty,
            encrypted: false,
            verify: true,
        })
        .await
    }
}
