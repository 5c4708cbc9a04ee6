//! The job queue: dedupe, leases, the retry schedule on a moved clock, Retry-After, dead jobs, retry by hand,
//! crashed workers, and two workers racing for the same jobs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use wxrisk::jobs::{AttemptRecord, BoxFuture, JobContext, JobFailure, JobHandler, JobResult, NewJob, Worker};
use wxrisk::store::jobs::{self as queue, Outcome};

use crate::helpers::*;

const KIND: &str = "test.scripted";

#[derive(Debug, Clone)]
enum Step {
    Ok,
    Retry,
    RetryAfter(Duration),
    Permanent,
    Panic,
    Sleep(Duration),
    /// A failure whose answer body is 10 KB.
    HugeBody,
}

/// A handler that does, for each job, the next scripted step (`Ok` once the script is used up), and records
/// every call.
#[derive(Clone, Default)]
struct Scripted {
    scripts: Arc<Mutex<HashMap<String, VecDeque<Step>>>>,
    calls: Arc<Mutex<Vec<(String, i64, String)>>>,
}

impl Scripted {
    fn script(&self, key: &str, steps: &[Step]) {
        self.scripts.lock().expect("lock").insert(key.to_owned(), steps.iter().cloned().collect());
    }

    fn calls_for(&self, key: &str) -> usize {
        self.calls.lock().expect("lock").iter().filter(|(k, _, _)| k == key).count()
    }
}

impl JobHandler for Scripted {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, JobResult> {
        Box::pin(async move {
            let key = ctx.job.job.dedupe_key.clone();
            self.calls.lock().expect("lock").push((key.clone(), ctx.job.attempt, ctx.job.worker.clone()));
            let step =
                self.scripts.lock().expect("lock").get_mut(&key).and_then(VecDeque::pop_front).unwrap_or(Step::Ok);
            match step {
                Step::Ok => {
                    Ok(AttemptRecord { http_status: Some(200), message: Some("done".into()), ..Default::default() })
                }
                Step::Retry => Err(JobFailure::Retry {
                    record: Box::new(AttemptRecord {
                        http_status: Some(500),
                        code: Some("SYSTEM_ERROR".into()),
                        message: Some("try later".into()),
                        body: Some("{\"code\":\"SYSTEM_ERROR\"}".into()),
                        ..Default::default()
                    }),
                    retry_after: None,
                }),
                Step::RetryAfter(wait) => Err(JobFailure::Retry {
                    record: Box::new(AttemptRecord {
                        http_status: Some(429),
                        code: Some("FREQUENCY_LIMITED".into()),
                        ..Default::default()
                    }),
                    retry_after: Some(wait),
                }),
                Step::Permanent => Err(JobFailure::Permanent {
                    record: Box::new(AttemptRecord {
                        http_status: Some(400),
                        code: Some("PARAM_ERROR".into()),
                        ..Default::default()
                    }),
                }),
                Step::Panic => panic!("scripted panic"),
                Step::HugeBody => Err(JobFailure::Retry {
                    record: Box::new(AttemptRecord {
                        http_status: Some(502),
                        body: Some("<html>".repeat(2000)),
                        ..Default::default()
                    }),
                    retry_after: None,
                }),
                Step::Sleep(d) => {
                    tokio::time::sleep(d).await;
                    Ok(AttemptRecord::default())
                }
            }
        })
    }
}

async fn enqueue(app: &TestApp, key: &str) -> Option<i64> {
    let job = NewJob {
        kind: KIND.into(),
        dedupe_key: key.into(),
        payload: json!({"key": key}),
        provider_id: None,
        run_at: app.now(),
    };
    let mut tx = app.state.store().begin().await.expect("begin");
    let id = queue::enqueue(&mut tx, &job, app.now()).await.expect("enqueue");
    tx.commit().await.expect("commit");
    id
}

async fn job(app: &TestApp, id: i64) -> queue::JobRow {
    let mut conn = app.state.store().conn().await.expect("conn");
    queue::get(&mut conn, id).await.expect("get").expect("exists")
}

async fn attempts(app: &TestApp, id: i64) -> Vec<queue::AttemptRow> {
    let mut conn = app.state.store().conn().await.expect("conn");
    queue::attempts(&mut conn, id).await.expect("attempts")
}

async fn scripted_app() -> (TestApp, Scripted) {
    let handler = Scripted::default();
    let app = spawn_app_with(TestDb::new().await, with_handler(KIND, handler.clone())).await;
    (app, handler)
}

#[tokio::test]
async fn enqueue_is_idempotent_by_dedupe_key() {
    let (app, handler) = scripted_app().await;
    let first = enqueue(&app, "refund:C1:T1").await;
    assert!(first.is_some());
    assert_eq!(enqueue(&app, "refund:C1:T1").await, None);
    assert_eq!(app.count("jobs").await, 1);
    let reports = app.worker().run_pending().await.expect("run");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, Outcome::Succeeded);
    assert_eq!(handler.calls_for("refund:C1:T1"), 1);
    // Done is done: enqueueing the same effect again does not repeat it.
    assert_eq!(enqueue(&app, "refund:C1:T1").await, None);
    assert!(app.worker().run_pending().await.expect("run").is_empty());
    let row = job(&app, first.expect("id")).await;
    assert_eq!((row.status.as_str(), row.attempts), ("succeeded", 1));
    let log = attempts(&app, row.id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].outcome.as_str(), log[0].http_status, log[0].message.as_deref()),
        ("succeeded", Some(200), Some("done"))
    );
    app.stop().await;
}

#[tokio::test]
async fn retries_follow_the_schedule_on_the_injected_clock() {
    let (app, handler) = scripted_app().await;
    handler.script("k", &[Step::Retry, Step::Retry]);
    let id = enqueue(&app, "k").await.expect("id");
    let start = app.now();

    let reports = app.worker().run_pending().await.expect("run");
    assert_eq!(reports.len(), 1, "a failed job is not retried at once");
    assert_eq!(reports[0].outcome, Outcome::Retry { next_at: start + 10_000 });
    app.advance(Duration::from_millis(9_999));
    assert!(app.worker().run_pending().await.expect("run").is_empty(), "not due before 10s");
    app.advance(Duration::from_millis(1));
    let reports = app.worker().run_pending().await.expect("run");
    assert_eq!(reports[0].outcome, Outcome::Retry { next_at: start + 10_000 + 60_000 });
    app.advance(Duration::from_secs(60));
    let reports = app.worker().run_pending().await.expect("run");
    assert_eq!(reports[0].outcome, Outcome::Succeeded);
    assert_eq!(reports[0].attempt, 3);

    let row = job(&app, id).await;
    assert_eq!((row.status.as_str(), row.attempts, row.last_error.as_deref()), ("succeeded", 3, None));
    let log = attempts(&app, id).await;
    let outcomes: Vec<&str> = log.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["retry", "retry", "succeeded"]);
    assert_eq!(log[0].code.as_deref(), Some("SYSTEM_ERROR"));
    assert_eq!(log[0].http_status, Some(500));
    assert_eq!(log[0].body.as_deref(), Some("{\"code\":\"SYSTEM_ERROR\"}"));
    assert_eq!(log[0].next_attempt_at, Some(start + 10_000));
    app.stop().await;
}

#[tokio::test]
async fn retry_after_lengthens_the_wait() {
    let (app, handler) = scripted_app().await;
    handler.script("limited", &[Step::RetryAfter(Duration::from_secs(90)), Step::RetryAfter(Duration::from_secs(1))]);
    enqueue(&app, "limited").await;
    let start = app.now();
    let reports = app.worker().run_pending().await.expect("run");
    assert_eq!(reports[0].outcome, Outcome::Retry { next_at: start + 90_000 }, "90s asked for beats the 10s schedule");
    app.advance(Duration::from_secs(90));
    let reports = app.worker().run_pending().await.expect("run");
    assert_eq!(
        reports[0].outcome,
        Outcome::Retry { next_at: start + 90_000 + 60_000 },
        "1s asked for cannot shorten 60s"
    );
    app.stop().await;
}

#[tokio::test]
async fn permanent_errors_and_exhausted_retries_are_dead_and_retryable_by_hand() {
    let (app, handler) = scripted_app().await;
    handler.script("bad-params", &[Step::Permanent]);
    handler.script("flaky", &[Step::Retry, Step::Retry, Step::Retry, Step::Retry]);
    let bad = enqueue(&app, "bad-params").await.expect("id");
    let flaky = enqueue(&app, "flaky").await.expect("id");
    let healthy = enqueue(&app, "healthy").await.expect("id");

    app.worker().run_pending().await.expect("run");
    assert_eq!(job(&app, bad).await.status, "dead", "a permanent error is dead at once");
    assert_eq!(job(&app, healthy).await.status, "succeeded", "one dead job does not block others");
    for wait in [10, 60, 300] {
        app.advance(Duration::from_secs(wait));
        app.worker().run_pending().await.expect("run");
    }
    let row = job(&app, flaky).await;
    assert_eq!((row.status.as_str(), row.attempts), ("dead", 4), "schedule of 3 waits = 4 attempts");
    assert!(row.last_error.as_deref().unwrap_or_default().contains("SYSTEM_ERROR"), "{:?}", row.last_error);

    // The API shows dead jobs and their attempts, and retries them by hand with a fresh budget.
    let (status, list) = app.get(&format!("/api/v1/jobs?status=dead&kind={KIND}")).await;
    assert_eq!(status, 200);
    let ids: Vec<i64> = list["items"].as_array().expect("items").iter().filter_map(|j| j["id"].as_i64()).collect();
    assert_eq!(ids, [flaky, bad], "newest first");
    let (status, detail) = app.get(&format!("/api/v1/jobs/{flaky}")).await;
    assert_eq!(status, 200);
    assert_eq!(detail["attempt_log"].as_array().map(Vec::len), Some(4));
    assert_eq!(detail["attempt_log"][3]["outcome"], "dead");
    assert_eq!(detail["payload"], json!({"key": "flaky"}));

    let (status, retried) = app.post(&format!("/api/v1/jobs/{flaky}/retry"), &json!({})).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!((retried["status"].as_str(), retried["attempts"].as_i64()), (Some("queued"), Some(0)));
    let reports = app.worker().run_pending().await.expect("run");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, Outcome::Succeeded);
    assert_eq!(handler.calls_for("flaky"), 5);

    let (status, answer) = app.post(&format!("/api/v1/jobs/{healthy}/retry"), &json!({})).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("CONFLICT")),
        "a succeeded effect is not repeated by hand"
    );
    let (status, _) = app.post("/api/v1/jobs/999999/retry", &json!({})).await;
    assert_eq!(status, 404);
    let (status, answer) = app.get("/api/v1/jobs?status=exploded").await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("status")));
    app.stop().await;
}

#[tokio::test]
async fn attempt_log_keeps_a_bounded_body() {
    let (app, handler) = scripted_app().await;
    handler.script("gateway", &[Step::HugeBody]);
    let id = enqueue(&app, "gateway").await.expect("id");
    app.worker().run_pending().await.expect("run");
    let body = attempts(&app, id).await[0].body.clone().expect("body kept");
    assert!(body.len() < 2100 && body.starts_with("<html>") && body.ends_with("(12000 bytes)"), "{} bytes", body.len());
    app.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_is_retried_and_unknown_kinds_wait() {
    let (app, handler) = scripted_app().await;
    handler.script("boom", &[Step::Panic]);
    let id = enqueue(&app, "boom").await.expect("id");
    let reports = app.worker().run_pending().await.expect("run");
    assert!(matches!(reports[0].outcome, Outcome::Retry { .. }));
    let log = attempts(&app, id).await;
    assert!(log[0].message.as_deref().unwrap_or_default().contains("panic"), "{:?}", log[0].message);

    let job_row = NewJob {
        kind: "from.a.newer.version".into(),
        dedupe_key: "future".into(),
        payload: json!({}),
        provider_id: None,
        run_at: app.now(),
    };
    let mut tx = app.state.store().begin().await.expect("begin");
    let future = queue::enqueue(&mut tx, &job_row, app.now()).await.expect("enqueue").expect("id");
    tx.commit().await.expect("commit");
    let reports = app.worker().run_pending().await.expect("run");
    assert!(matches!(reports[0].outcome, Outcome::Retry { .. }));
    assert!(job(&app, future).await.last_error.unwrap_or_default().contains("no handler"));
    app.stop().await;
}

#[tokio::test]
async fn a_slow_attempt_times_out_and_is_retried() {
    let handler = Scripted::default();
    handler.script("slow", &[Step::Sleep(Duration::from_secs(30))]);
    let db = TestDb::new().await;
    let h = handler.clone();
    let app = spawn_app_with(db, move |b| b.job_handler(KIND, h)).await;
    // The test config's timeout is 5s; use a worker with a 200ms one so the test stays fast.
    let mut config = app.state.config().clone();
    config.jobs.timeout = Duration::from_millis(200);
    let state = wxrisk::state::AppState::new(
        config,
        app.state.store().clone(),
        Arc::new(app.clock.clone()),
        wxrisk::secrets::Keyring::from_keys(&[9u8; 32], &[]),
        {
            let mut registry = wxrisk::jobs::JobRegistry::default();
            registry.register(KIND, handler.clone());
            registry
        },
    )
    .expect("state");
    let id = enqueue(&app, "slow").await.expect("id");
    let reports = Worker::new(state, "impatient").run_pending().await.expect("run");
    assert!(matches!(reports[0].outcome, Outcome::Retry { .. }));
    let log = attempts(&app, id).await;
    assert!(log[0].message.as_deref().unwrap_or_default().contains("jobs.timeout"), "{:?}", log[0].message);
    app.stop().await;
}

#[tokio::test]
async fn a_crashed_workers_job_is_taken_over_after_its_lease() {
    let (app, handler) = scripted_app().await;
    let id = enqueue(&app, "orphan").await.expect("id");
    // A worker claims the job and dies before recording anything.
    let ghost = queue::claim_next(app.state.store(), "ghost", app.now(), 30_000).await.expect("claim").expect("a job");
    assert_eq!(ghost.job.id, id);
    assert!(app.worker().run_pending().await.expect("run").is_empty(), "the lease still holds");
    app.advance(Duration::from_secs(30));
    let reports = app.worker().run_pending().await.expect("run");
    assert_eq!(reports.len(), 1);
    assert_eq!((reports[0].outcome, reports[0].attempt), (Outcome::Succeeded, 2));
    assert_eq!(handler.calls_for("orphan"), 1);
    let log = attempts(&app, id).await;
    let outcomes: Vec<(&str, &str)> = log.iter().map(|a| (a.worker.as_str(), a.outcome.as_str())).collect();
    assert_eq!(outcomes, [("ghost", "lease_expired"), ("test-worker", "succeeded")]);

    // The ghost coming back cannot overwrite the outcome.
    let held = queue::finish(app.state.store(), &ghost, Outcome::Dead, &AttemptRecord::default(), app.now(), 1)
        .await
        .expect("finish");
    assert!(!held);
    assert_eq!(job(&app, id).await.status, "succeeded");
    app.stop().await;
}

/// Two workers — on separate connection pools, as two `wxrisk` processes would be — race for the same jobs.
#[tokio::test]
async fn two_workers_racing_run_each_job_exactly_once() {
    let (app, handler) = scripted_app().await;
    const JOBS: usize = 60;
    for i in 0..JOBS {
        enqueue(&app, &format!("race-{i}")).await;
    }
    let second = wxrisk::App::builder(test_config(&app.db, &[]))
        .clock(Arc::new(app.clock.clone()))
        .role(wxrisk::Role::Worker)
        .worker_id("second-process")
        .job_handler(KIND, handler.clone())
        .build()
        .await
        .expect("second app");
    let second_worker = second.worker();
    let (a, b) = tokio::join!(app.worker().run_pending(), second_worker.run_pending());
    let (a, b) = (a.expect("worker a"), b.expect("worker b"));
    assert_eq!(a.len() + b.len(), JOBS, "every job ran once: {} + {}", a.len(), b.len());
    for i in 0..JOBS {
        assert_eq!(handler.calls_for(&format!("race-{i}")), 1, "race-{i}");
    }
    let mut conn = app.state.store().conn().await.expect("conn");
    let counts = queue::count_by_status(&mut conn).await.expect("counts");
    assert_eq!(counts, [("succeeded".to_owned(), JOBS as i64)]);
    assert_eq!(app.count("job_attempts").await, JOBS as i64);
    drop(conn);
    second.state().store().close().await;
    app.stop().await;
}

/// `serve`'s worker: a job enqueued while running is picked up, and shutdown waits for the job in hand.
#[tokio::test]
async fn running_worker_drains_on_shutdown() {
    let handler = Scripted::default();
    handler.script("slowish", &[Step::Sleep(Duration::from_millis(500))]);
    let db = TestDb::new().await;
    let config = test_config(&db, &[("WXRISK_JOBS__POLL_INTERVAL", "50ms")]);
    let app = wxrisk::App::builder(config)
        .role(wxrisk::Role::Worker)
        .job_handler(KIND, handler.clone())
        .build()
        .await
        .expect("app");
    let state = app.state().clone();
    let shutdown = app.shutdown_token();
    let running = tokio::spawn(app.run_until_stopped());
    let job = NewJob {
        kind: KIND.into(),
        dedupe_key: "slowish".into(),
        payload: json!({}),
        provider_id: None,
        run_at: state.now_ms(),
    };
    let mut tx = state.store().begin().await.expect("begin");
    let id = queue::enqueue(&mut tx, &job, state.now_ms()).await.expect("enqueue").expect("id");
    tx.commit().await.expect("commit");
    state.job_wakeup().notify_waiters();
    // Wait (bounded) until a slot has claimed it.
    let mut claimed = false;
    for _ in 0..200 {
        let mut conn = state.store().conn().await.expect("conn");
        if queue::get(&mut conn, id).await.expect("get").expect("row").status == "running" {
            claimed = true;
            break;
        }
        drop(conn);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(claimed, "the worker picked the job up");
    shutdown.cancel();
    running.await.expect("join").expect("clean stop");
    let store = wxrisk::store::Store::connect(&db.url, &test_config(&db, &[]).database).await.expect("reconnect");
    let mut conn = store.conn().await.expect("conn");
    assert_eq!(
        queue::get(&mut conn, id).await.expect("get").expect("row").status,
        "succeeded",
        "drained, not abandoned"
    );
    drop(conn);
    store.close().await;
}
