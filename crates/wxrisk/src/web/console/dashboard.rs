//! The dashboard: what needs a person now, then how the last days went.

use askama::Template;
use axum::response::Response;

use super::page::{ConsoleError, Ctx, render};
use super::session::Console;

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    ctx: Ctx,
}

pub async fn show(console: Console) -> Result<Response, ConsoleError> {
    render(&DashboardPage { ctx: console.ctx("dashboard") })
}
