//! Job kinds and the worker that runs them. Every outside effect (a WeChat call, a notification) is a job.
//!
//! Contract: a handler is told one claimed job and answers with what it found out ([`AttemptRecord`]) or why it
//! failed ([`JobFailure`]): `Retry` (worth trying again, maybe after WeChat's `Retry-After`) or `Permanent`
//! (retrying cannot help: the job is dead at once). Handlers must be idempotent: a job can run again after a
//! crash between its outside call and the recording of its outcome.

pub mod retry;
pub mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::state::AppState;
pub use crate::store::jobs::{AttemptRecord, ClaimedJob, NewJob};
pub use retry::RetryPolicy;
pub use worker::Worker;

/// Why an attempt failed.
#[derive(Debug, Clone)]
pub enum JobFailure {
    /// Worth trying again; not before `retry_after` when the other side said so.
    Retry { record: Box<AttemptRecord>, retry_after: Option<Duration> },
    /// Trying again cannot help (bad parameters, refused authorisation): the job is dead now.
    Permanent { record: Box<AttemptRecord> },
    /// Not now, and not a failure: run again at `until` (Unix ms) without using up an attempt (a destination's
    /// rate limit is reached).
    Defer { until: i64 },
}

impl JobFailure {
    pub fn retry(message: impl Into<String>) -> Self {
        JobFailure::Retry {
            record: Box::new(AttemptRecord { message: Some(message.into()), ..Default::default() }),
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        JobFailure::Permanent {
            record: Box::new(AttemptRecord { message: Some(message.into()), ..Default::default() }),
        }
    }
}

pub type JobResult = Result<AttemptRecord, JobFailure>;
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a handler is given.
#[derive(Debug)]
pub struct JobContext {
    pub state: AppState,
    pub job: ClaimedJob,
}

impl JobContext {
    /// The payload, parsed into the handler's type.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobFailure> {
        serde_json::from_str(&self.job.job.payload)
            .map_err(|e| JobFailure::permanent(format!("payload of {} job does not parse: {e}", self.job.job.kind)))
    }
}

pub trait JobHandler: Send + Sync + 'static {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, JobResult>;
}

/// Job kinds this process can run.
#[derive(Clone, Default)]
pub struct JobRegistry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl std::fmt::Debug for JobRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kinds: Vec<&String> = self.handlers.keys().collect();
        kinds.sort();
        f.debug_struct("JobRegistry").field("kinds", &kinds).finish()
    }
}

impl JobRegistry {
    pub fn register(&mut self, kind: impl Into<String>, handler: impl JobHandler) {
        self.handlers.insert(kind.into(), Arc::new(handler));
    }

    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.get(kind).cloned()
    }
}

/// Truncate a response body for the attempt log: enough to diagnose, never a whole payload.
pub fn truncate_body(body: &str) -> String {
    const MAX: usize = 2000;
    if body.len() <= MAX {
        return body.to_owned();
    }
    let mut end = MAX;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &body[..end], body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_utf8_whole() {
        let body = "投".repeat(1000);
        let cut = truncate_body(&body);
        assert!(cut.len() < body.len());
        assert!(cut.ends_with("(3000 bytes)"));
        assert_eq!(truncate_body("short"), "short");
    }
}
