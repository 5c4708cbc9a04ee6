//! Fault injection: the next N matching calls answer an error, arrive late, lose their connection, or (WeChat Pay)
//! carry a signature-probe signature. Also records every call to a simulated service.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::Sim;
use crate::state::Recorded;

/// A fault waiting for matching calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    /// `GET`, `POST` …; any method when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// A path prefix, e.g. `/v3/refund/domestic/refunds` or `/cgi-bin/message/template/send`.
    pub path: String,
    /// How many calls it hits.
    #[serde(default = "one")]
    pub count: u32,
    pub action: FaultAction,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer this status with `{"code", "message"}`.
    Respond {
        status: u16,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
        /// Seconds, sent as `Retry-After`.
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Answer normally, this much later.
    Latency { ms: u64 },
    /// Send headers, then break the connection before the body.
    Drop,
    /// Do what was asked, then break the connection before the answer's body: the caller cannot tell whether it
    /// happened (a refund made while the caller's process died, a lost answer).
    LoseAnswer,
    /// Answer normally, with a `WECHATPAY/SIGNTEST/` signature (WeChat Pay only).
    Probe,
    /// Do what was asked, then answer this error instead (`{"code", "message"}`): a refusal that is no proof
    /// nothing happened (a refund made by an earlier, lost attempt and refused on the retry, a gateway's error).
    ApplyThenRespond {
        status: u16,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
}

/// Marks a request whose answer must carry a probe signature.
#[derive(Debug, Clone, Copy)]
pub struct ProbeSignature;

/// Set on an error answer so the request log shows its code.
#[derive(Debug, Clone)]
pub struct ErrorCode(pub String);

/// A body that fails on first read: the client sees the connection drop mid-answer.
struct BrokenBody;

impl http_body::Body for BrokenBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "simulated dropped connection"))))
    }
}

/// An error answer `{"code", "message"}` (`SYSTEM_ERROR` unless told), with its code kept for the request log.
fn error_answer(status: u16, code: Option<String>, message: Option<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = code.unwrap_or_else(|| "SYSTEM_ERROR".into());
    let body = serde_json::json!({"code": code, "message": message.unwrap_or_else(|| "simulated failure".into())});
    let mut response = (status, axum::Json(body)).into_response();
    response.extensions_mut().insert(ErrorCode(code));
    response
}

pub async fn inject(State(sim): State<Arc<Sim>>, mut request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let target = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let path = request.uri().path().to_owned();
    let action = {
        let mut state = sim.state();
        let hit = state.faults.iter_mut().find(|f| {
            f.count > 0
                && path.starts_with(&f.path)
                && f.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(&method))
        });
        hit.map(|fault| {
            fault.count -= 1;
            fault.action.clone()
        })
    };
    if let Some(action) = &action {
        tracing::info!(%method, %target, ?action, "simulator: injecting a fault");
    }
    let response = match action {
        Some(FaultAction::Respond { status, code, message, retry_after }) => {
            let mut response = error_answer(status, code, message);
            if let Some(seconds) = retry_after
                && let Ok(value) = seconds.to_string().parse()
            {
                response.headers_mut().insert("Retry-After", value);
            }
            response
        }
        Some(FaultAction::ApplyThenRespond { status, code, message }) => {
            let _done = next.run(request).await;
            error_answer(status, code, message)
        }
        Some(FaultAction::Drop) => {
            let mut response = Response::new(Body::new(BrokenBody));
            response.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
            response
        }
        Some(FaultAction::LoseAnswer) => {
            let done = next.run(request).await;
            let (parts, _) = done.into_parts();
            Response::from_parts(parts, Body::new(BrokenBody))
        }
        Some(FaultAction::Latency { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(request).await
        }
        Some(FaultAction::Probe) => {
            request.extensions_mut().insert(ProbeSignature);
            next.run(request).await
        }
        None => next.run(request).await,
    };
    let code = response.extensions().get::<ErrorCode>().map(|c| c.0.clone());
    sim.state().record(Recorded {
        at_ms: sim.clock.now_ms(),
        method,
        target,
        status: response.status().as_u16(),
        code,
    });
    response
}
