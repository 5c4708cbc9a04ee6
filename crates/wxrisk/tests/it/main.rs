//! wxrisk's integration tests: one binary. Every test gets a fresh database — SQLite, or PostgreSQL when
//! `WXRISK_TEST_DATABASE_URL` is set (`scripts/test` runs the suite both ways).

mod access;
mod api_channels;
mod api_deliveries;
mod api_merchants;
mod api_providers;
mod automation_start;
mod certificates;
mod cli;
mod cluster;
mod complaints;
mod console_channels;
mod console_client;
mod console_dashboard;
mod console_merchants;
mod console_signin;
mod console_violations;
mod crosscheck;
mod destinations;
mod health;
mod helpers;
mod intake;
mod jobs;
mod logs;
mod notify;
mod notify_email;
mod packaging;
mod refunds;
mod retention;
mod secrets_at_rest;
#[path = "../../../../testdata/sim_control.rs"]
mod sim_control;
#[path = "../../../../testdata/test_support.rs"]
mod support;
mod violations;
