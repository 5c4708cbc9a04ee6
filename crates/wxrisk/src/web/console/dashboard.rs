//! The dashboard (`/console`): what needs a person now, then how the last days went.
//!
//! Contract: first what needs a person — open complaints whose next deadline is within `complaints.due_soon` or
//! past (soonest first), refunds that failed in the last 30 days, dead jobs and deliveries, callbacks refused in
//! the last hour (a wrong APIv3 key shows up here first) — or one line saying nothing does. Then counts for today,
//! the last 7 and the last 30 days (Asia/Shanghai days, today included): complaints by their state now, refunds by
//! outcome with their sums in yuan, violations by kind; a per-day chart of complaints and violations (an SVG drawn
//! here, no script); and the sub-merchants with the highest risk score now.
//!
//! The page costs a fixed number of queries (`store::dashboard`), whatever the data's size. Pending refund
//! approvals join the first part when the automation policy (issue 12) brings them.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::merchants::{risk_link, score_class};
use super::page::{ConsoleError, Ctx, Lang, link, render, shanghai, yuan};
use super::session::Console;
use crate::state::AppState;
use crate::store::dashboard::{self as store, DayCounts, shanghai_day, shanghai_day_start};
use crate::store::{merchants, providers};
use crate::workflow::violations::current_scores;

/// Rows shown per "needs a person" list.
const SHOWN: i64 = 8;
/// Counting stops here ("1000+"), so a huge backlog costs no more than a big one.
const COUNT_CAP: i64 = 1000;
/// Days in the chart and the longest window.
const DAYS: i64 = 30;
/// Risk candidates read before recomputing their scores now (stored scores only fall as days pass).
const RISK_CANDIDATES: i64 = 50;
const RISK_SHOWN: usize = 10;

/// `PENDING`, `PROCESSING`, `PROCESSED` in the user's language.
pub fn complaint_state_label(state: &str, lang: Lang) -> &str {
    match state {
        "PENDING" => lang.pick("待处理", "Pending"),
        "PROCESSING" => lang.pick("处理中", "Processing"),
        "PROCESSED" => lang.pick("已处理完成", "Processed"),
        other => other,
    }
}

/// WeChat's `problem_type` in the user's language.
pub fn problem_label(problem_type: Option<&str>, lang: Lang) -> &str {
    match problem_type {
        Some("REFUND") => lang.pick("申请退款", "Refund request"),
        Some("SERVICE_NOT_WORK") => lang.pick("服务权益未生效", "Service not delivered"),
        Some("OTHERS") => lang.pick("其他", "Other"),
        Some(other) => other,
        None => "—",
    }
}

/// A span of time as people say it: `2 天 3 小时`, `1 小时 20 分`, `5 分` (or `2 d 3 h`, `1 h 20 min`, `5 min`).
pub fn span_text(ms: i64, lang: Lang) -> String {
    let minutes = ms.abs() / 60_000;
    let (days, hours, mins) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    match lang {
        Lang::Zh if days > 0 => format!("{days} 天 {hours} 小时"),
        Lang::Zh if hours > 0 => format!("{hours} 小时 {mins} 分"),
        Lang::Zh => format!("{mins} 分"),
        Lang::En if days > 0 => format!("{days} d {hours} h"),
        Lang::En if hours > 0 => format!("{hours} h {mins} min"),
        Lang::En => format!("{mins} min"),
    }
}

/// `1000+` past the cap.
fn count_text(n: i64) -> String {
    if n >= COUNT_CAP { format!("{COUNT_CAP}+") } else { n.to_string() }
}

fn clip(text: &str, chars: usize) -> String {
    let mut out: String = text.chars().take(chars).collect();
    if text.chars().count() > chars {
        out.push('…');
    }
    out
}

#[derive(Debug)]
pub struct DueItem {
    pub link: String,
    pub complaint_id: String,
    pub merchant: String,
    pub mchid: String,
    pub problem: String,
    pub amount: String,
    pub state: String,
    pub state_code: String,
    pub deadline: &'static str,
    pub due_at: String,
    pub overdue: bool,
    /// `还剩 1 小时 20 分` / `超时 3 小时`.
    pub left: String,
}

#[derive(Debug)]
pub struct RefundItem {
    pub link: String,
    pub complaint_id: String,
    pub merchant: String,
    pub amount: String,
    pub status: String,
    pub error: String,
    pub at: String,
}

#[derive(Debug)]
pub struct DeadItem {
    pub link: String,
    pub id: i64,
    pub what: String,
    pub error: String,
    pub at: String,
}

#[derive(Debug)]
pub struct RejectionItem {
    /// The provider when the callback proved whose it was, else `None`.
    pub provider: Option<String>,
    pub path: String,
    pub reason: String,
    pub label: String,
    pub count: i64,
    pub last_at: String,
}

/// One figure of one window: a count, and under it an amount when the figure has one.
#[derive(Debug)]
pub struct StatCell {
    pub count: String,
    pub amount: Option<String>,
}

/// One figure over the three windows: today, 7 days, 30 days.
#[derive(Debug)]
pub struct StatRow {
    pub label: String,
    /// `total` rows are bold; `sub` rows are indented under them.
    pub class: &'static str,
    pub cells: [StatCell; 3],
}

#[derive(Debug)]
pub struct RiskItem {
    pub link: String,
    pub merchant_link: Option<String>,
    pub name: String,
    pub mchid: String,
    pub score: i64,
    pub score_class: &'static str,
    pub complaints: i64,
    pub punishments: i64,
}

/// One day's bars of the chart, in the SVG's coordinates.
#[derive(Debug)]
pub struct ChartDay {
    pub x_complaints: i64,
    pub x_violations: i64,
    pub y_complaints: i64,
    pub h_complaints: i64,
    pub y_violations: i64,
    pub h_violations: i64,
    /// `12-07：投诉 3，违规 1` (the bar's tooltip).
    pub title: String,
    /// The date under every fifth day and the last, else empty.
    pub label: String,
    pub x_label: i64,
}

#[derive(Debug)]
pub struct Chart {
    pub days: Vec<ChartDay>,
    pub max: i64,
    pub total_complaints: i64,
    pub total_violations: i64,
}

/// The chart's drawing area: `CHART_W` × `CHART_H` units, bars from the baseline up.
const CHART_W: i64 = 600;
const CHART_H: i64 = 150;
const SLOT: i64 = CHART_W / DAYS;

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    ctx: Ctx,
    all_clear: bool,
    due_soon: String,
    due: Vec<DueItem>,
    due_total: String,
    due_more: bool,
    due_link: String,
    historical_open: String,
    historical_link: String,
    refunds: Vec<RefundItem>,
    refunds_total: i64,
    dead: Vec<DeadItem>,
    dead_jobs: i64,
    dead_deliveries: i64,
    rejections: Vec<RejectionItem>,
    rejections_total: i64,
    stats: Vec<StatRow>,
    chart: Chart,
    risk: Vec<RiskItem>,
    alert_score: i64,
}

/// Short words for the refusal reasons (`intake`): the rejected-callbacks page explains each.
fn rejection_label(reason: &str, lang: Lang) -> &str {
    match reason {
        "SIGNATURE" => lang.pick("签名无效", "bad signature"),
        "PROBE" => lang.pick("探测请求（无签名）", "probe (unsigned)"),
        "STALE" => lang.pick("时间戳过期（时钟偏差？）", "stale timestamp (clock skew?)"),
        "UNKNOWN_KEY" => lang.pick("未知的平台证书或公钥", "unknown certificate or public key"),
        "DECRYPT" => lang.pick("无法解密（APIv3 密钥错误？）", "undecryptable (wrong APIv3 key?)"),
        "MALFORMED" => lang.pick("格式错误", "malformed"),
        "WRONG_EVENT" => lang.pick("事件类型不符", "wrong event type"),
        "UNKNOWN_PROVIDER" => lang.pick("未知服务商", "unknown provider"),
        "TOO_LARGE" => lang.pick("请求过大", "too large"),
        other => other,
    }
}

fn refund_status_label(status: &str, lang: Lang) -> &str {
    match status {
        "FAILED" => lang.pick("失败", "Failed"),
        "ABNORMAL" => lang.pick("异常", "Abnormal"),
        "CLOSED" => lang.pick("已关闭", "Closed"),
        other => other,
    }
}

/// Sums of day counts over the three windows (today, 7 days, 30 days), for the keys `keep` accepts.
fn windows(counts: &DayCounts, today: i64, keep: impl Fn(&str) -> bool) -> [(i64, i64); 3] {
    let mut sums = [(0, 0); 3];
    for (day, key, n, fen) in counts {
        if !keep(key) {
            continue;
        }
        for (i, days) in [1, 7, DAYS].into_iter().enumerate() {
            if *day > today - days && *day <= today {
                sums[i].0 += n;
                sums[i].1 += fen;
            }
        }
    }
    sums
}

fn stat(label: String, class: &'static str, sums: [(i64, i64); 3], show: impl Fn((i64, i64)) -> StatCell) -> StatRow {
    StatRow { label, class, cells: sums.map(show) }
}

fn stats(complaints: &DayCounts, refunds: &DayCounts, violations: &DayCounts, today: i64, lang: Lang) -> Vec<StatRow> {
    let count = |(n, _): (i64, i64)| StatCell { count: n.to_string(), amount: None };
    let money = |(n, fen): (i64, i64)| StatCell {
        count: match lang {
            Lang::Zh => format!("{n} 笔"),
            Lang::En => n.to_string(),
        },
        amount: Some(yuan(fen)),
    };
    let mut rows =
        vec![stat(lang.pick("投诉", "Complaints").into(), "total", windows(complaints, today, |_| true), count)];
    for state in ["PENDING", "PROCESSING", "PROCESSED"] {
        let sums = windows(complaints, today, |k| k == state);
        rows.push(stat(complaint_state_label(state, lang).into(), "sub", sums, count));
    }
    let refunded = |k: &str| matches!(k, "SUCCESS");
    let running = |k: &str| matches!(k, "REQUESTED" | "PROCESSING");
    let failed = |k: &str| matches!(k, "FAILED" | "ABNORMAL" | "CLOSED");
    rows.push(stat(lang.pick("退款成功", "Refunded").into(), "total", windows(refunds, today, refunded), money));
    rows.push(stat(
        lang.pick("退款处理中", "Refunds in progress").into(),
        "sub",
        windows(refunds, today, running),
        money,
    ));
    rows.push(stat(
        lang.pick("退款未成功（失败、异常、关闭）", "Refunds not made (failed, abnormal, closed)").into(),
        "sub",
        windows(refunds, today, failed),
        money,
    ));
    rows.push(stat(lang.pick("违规处置", "Violations").into(), "total", windows(violations, today, |_| true), count));
    for kind in ["PUNISH", "INTERCEPT", "APPEAL"] {
        let sums = windows(violations, today, |k| k == kind);
        rows.push(stat(super::violations::kind_label(kind, lang), "sub", sums, count));
    }
    rows
}

fn chart(complaints: &DayCounts, violations: &DayCounts, today: i64, lang: Lang) -> Chart {
    let first = today - DAYS + 1;
    let mut per_day: HashMap<i64, (i64, i64)> = HashMap::new();
    for (day, _, n, _) in complaints {
        per_day.entry(*day).or_default().0 += n;
    }
    for (day, _, n, _) in violations {
        per_day.entry(*day).or_default().1 += n;
    }
    let max = (first..=today).map(|d| per_day.get(&d).map_or(0, |(c, v)| (*c).max(*v))).max().unwrap_or(0).max(1);
    let bar = |n: i64| if n == 0 { 0 } else { (n * CHART_H / max).max(2) };
    let mut days = Vec::new();
    let (mut total_complaints, mut total_violations) = (0, 0);
    for (i, day) in (first..=today).enumerate() {
        let i = i as i64;
        let (c, v) = per_day.get(&day).copied().unwrap_or_default();
        total_complaints += c;
        total_violations += v;
        let date = shanghai(shanghai_day_start(day));
        let month_day = date.get(5..10).unwrap_or_default().to_owned();
        let title = match lang {
            Lang::Zh => format!("{month_day}：投诉 {c}，违规 {v}"),
            Lang::En => format!("{month_day}: {c} complaints, {v} violations"),
        };
        let x = i * SLOT;
        days.push(ChartDay {
            x_complaints: x + 2,
            x_violations: x + SLOT / 2,
            y_complaints: CHART_H - bar(c),
            h_complaints: bar(c),
            y_violations: CHART_H - bar(v),
            h_violations: bar(v),
            title,
            label: if i % 5 == 0 || day == today { month_day } else { String::new() },
            x_label: x + SLOT / 2,
        });
    }
    Chart { days, max, total_complaints, total_violations }
}

pub async fn show(State(state): State<AppState>, console: Console) -> Result<Response, ConsoleError> {
    let lang = console.lang;
    let now = state.now_ms();
    let config = state.config();
    let due_soon_ms = i64::try_from(config.complaints.due_soon.as_millis()).unwrap_or(i64::MAX / 4);
    let today = shanghai_day(now);
    let since = shanghai_day_start(today - DAYS + 1);
    let mut conn = state.store().conn().await?;

    let (due_rows, due_total) = store::due_complaints(&mut conn, now + due_soon_ms, SHOWN, COUNT_CAP).await?;
    let historical_open = store::open_historical(&mut conn, COUNT_CAP).await?;
    let (refund_rows, refunds_total) = store::failed_refunds(&mut conn, now - DAYS * 86_400_000, SHOWN).await?;
    let (dead_rows, dead_jobs, dead_deliveries) = store::dead_jobs(&mut conn, SHOWN).await?;
    let rejection_rows = store::rejections_since(&mut conn, now - 3_600_000).await?;
    let complaints = store::complaints_per_day(&mut conn, since).await?;
    let refunds = store::refunds_per_day(&mut conn, since).await?;
    let violations = store::violations_per_day(&mut conn, since).await?;
    let candidates = store::risk_candidates(&mut conn, RISK_CANDIDATES).await?;
    let scores = current_scores(&mut conn, &candidates, now).await?;
    let provider_names: HashMap<i64, String> =
        providers::all(&mut conn).await?.into_iter().map(|p| (p.id, format!("{}（{}）", p.name, p.mchid))).collect();

    let mut risk: Vec<(i64, String, crate::workflow::violations::CurrentScore)> =
        scores.into_iter().filter(|(_, s)| s.score > 0).map(|((p, m), s)| (p, m, s)).collect();
    risk.sort_by(|a, b| {
        b.2.score.cmp(&a.2.score).then_with(|| b.2.last_30_days.complaints.cmp(&a.2.last_30_days.complaints))
    });
    risk.truncate(RISK_SHOWN);

    let mut pairs: Vec<(i64, String)> = due_rows.iter().map(|d| (d.provider_id, d.complainted_mchid.clone())).collect();
    pairs.extend(refund_rows.iter().map(|r| (r.provider_id, r.sub_mchid.clone())));
    pairs.extend(risk.iter().map(|(p, m, _)| (*p, m.clone())));
    pairs.sort_unstable();
    pairs.dedup();
    let registered = merchants::of_pairs(&mut conn, &pairs).await?;
    drop(conn);
    let name_of = |provider_id: i64, mchid: &str| {
        registered.get(&(provider_id, mchid.to_owned())).map(|m| m.name.clone()).unwrap_or_else(|| mchid.to_owned())
    };

    let due: Vec<DueItem> = due_rows
        .into_iter()
        .map(|d| {
            let overdue = d.due_at < now;
            let span = span_text(d.due_at - now, lang);
            DueItem {
                link: crate::notify::links::complaint(d.provider_id, &d.complaint_id),
                merchant: name_of(d.provider_id, &d.complainted_mchid),
                mchid: d.complainted_mchid,
                problem: problem_label(d.problem_type.as_deref(), lang).to_owned(),
                amount: yuan(d.amount_total),
                state: complaint_state_label(&d.state, lang).to_owned(),
                state_code: d.state,
                deadline: match d.deadline {
                    "reply" => lang.pick("回复", "Reply"),
                    _ => lang.pick("处理完成", "Resolution"),
                },
                due_at: shanghai(d.due_at),
                left: match (overdue, lang) {
                    (true, Lang::Zh) => format!("已超时 {span}"),
                    (true, Lang::En) => format!("{span} overdue"),
                    (false, Lang::Zh) => format!("还剩 {span}"),
                    (false, Lang::En) => format!("{span} left"),
                },
                overdue,
                complaint_id: d.complaint_id,
            }
        })
        .collect();
    let refund_items: Vec<RefundItem> = refund_rows
        .into_iter()
        .map(|r| RefundItem {
            link: crate::notify::links::complaint(r.provider_id, &r.complaint_id),
            merchant: name_of(r.provider_id, &r.sub_mchid),
            amount: yuan(r.amount),
            status: refund_status_label(&r.status, lang).to_owned(),
            error: clip(r.last_error.as_deref().unwrap_or_default(), 120),
            at: shanghai(r.created_at),
            complaint_id: r.complaint_id,
        })
        .collect();
    let dead: Vec<DeadItem> = dead_rows
        .into_iter()
        .map(|j| {
            let what = match (&j.channel_kind, &j.event_kind) {
                (Some(channel), Some(event)) => format!("{} · {channel} · {event}", lang.pick("通知", "Notification")),
                _ => j.kind.clone(),
            };
            DeadItem {
                link: crate::notify::links::job(j.id),
                id: j.id,
                what,
                error: clip(j.last_error.as_deref().unwrap_or_default(), 120),
                at: shanghai(j.updated_at),
            }
        })
        .collect();
    let rejections: Vec<RejectionItem> = rejection_rows
        .into_iter()
        .map(|r| RejectionItem {
            provider: r.provider_id.and_then(|id| provider_names.get(&id).cloned()),
            path: r.path,
            label: rejection_label(&r.reason, lang).to_owned(),
            reason: r.reason,
            count: r.count,
            last_at: shanghai(r.last_at),
        })
        .collect();
    let rejections_total = rejections.iter().map(|r| r.count).sum();
    let risk: Vec<RiskItem> = risk
        .into_iter()
        .map(|(provider_id, mchid, s)| {
            let merchant = registered.get(&(provider_id, mchid.clone()));
            RiskItem {
                link: risk_link(provider_id, &mchid),
                merchant_link: merchant.map(|m| format!("/console/merchants/{}", m.id)),
                name: merchant.map(|m| m.name.clone()).unwrap_or_default(),
                score_class: score_class(s.score, config.risk.alert_score),
                score: s.score,
                complaints: s.last_30_days.complaints,
                punishments: s.last_30_days.punishments,
                mchid,
            }
        })
        .collect();

    let all_clear = due.is_empty() && refund_items.is_empty() && dead.is_empty() && rejections.is_empty();
    render(&DashboardPage {
        ctx: console.ctx("dashboard"),
        all_clear,
        due_soon: span_text(due_soon_ms, lang),
        due_more: due_total > due.len() as i64,
        due,
        due_total: count_text(due_total),
        due_link: link("/console/complaints", &[("overdue", Some("true"))]),
        historical_open: count_text(historical_open),
        historical_link: link("/console/complaints", &[("historical", Some("true"))]),
        refunds: refund_items,
        refunds_total,
        dead,
        dead_jobs,
        dead_deliveries,
        rejections,
        rejections_total,
        stats: stats(&complaints, &refunds, &violations, today, lang),
        chart: chart(&complaints, &violations, today, lang),
        risk,
        alert_score: config.risk.alert_score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span_text(5 * 60_000 + 59_000, Lang::Zh), "5 分");
        assert_eq!(span_text(-(80 * 60_000), Lang::Zh), "1 小时 20 分");
        assert_eq!(span_text(51 * 3_600_000, Lang::En), "2 d 3 h");
        assert_eq!(count_text(999), "999");
        assert_eq!(count_text(1000), "1000+");
    }

    #[test]
    fn windows_count_today_the_week_and_the_month() {
        let today = 20_000;
        let counts: DayCounts = vec![
            (today, "PENDING".into(), 2, 0),
            (today - 6, "PENDING".into(), 3, 0),
            (today - 7, "PROCESSED".into(), 4, 0),
            (today - 29, "PROCESSED".into(), 5, 0),
            (today - 30, "PROCESSED".into(), 100, 0),
        ];
        assert_eq!(windows(&counts, today, |_| true).map(|w| w.0), [2, 5, 14]);
        assert_eq!(windows(&counts, today, |k| k == "PROCESSED").map(|w| w.0), [0, 0, 9]);
        let chart = chart(&counts, &Vec::new(), today, Lang::En);
        assert_eq!(chart.days.len(), 30);
        assert_eq!((chart.total_complaints, chart.max), (14, 5));
        // The tallest bar fills the chart; an empty day draws nothing.
        let last = chart.days.last().expect("today");
        assert_eq!((last.h_complaints, last.h_violations), (CHART_H * 2 / 5, 0));
        assert_eq!(chart.days[0].h_complaints, CHART_H);
    }
}
