//! `/healthz`, `/readyz`, `/metrics`, and the migrations behind readiness.

use std::collections::{BTreeMap, BTreeSet};

use wxrisk::store::{Store, migrate};

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let (status, body) = app.get("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let backend = if app.db.is_postgres() { "postgres" } else { "sqlite" };
    assert_eq!(body["database"], backend);

    app.get("/api/v1/providers").await;
    let response = app.client.get(app.url("/metrics")).send().await.expect("GET");
    assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = response.text().await.expect("text");
    assert!(text.contains("wxrisk_http_requests_total{route=\"/api/v1/providers\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("wxrisk_jobs{status=\"queued\"} 0"), "{text}");
    assert!(text.contains("wxrisk_database_up 1"), "{text}");

    // With the database gone, the service is alive but not ready.
    app.state.store().close().await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!((status, body["status"].as_str()), (503, Some("unavailable")), "{body}");
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn migrations_apply_once_and_refuse_edited_history() {
    let db = TestDb::new().await;
    let config = test_config(&db, &[]);
    let store = Store::connect(&db.url, &config.database).await.expect("connect");
    let all: Vec<i64> = migrate::MIGRATIONS.iter().map(|m| m.version).collect();
    assert!(all.len() >= 5 && all.windows(2).all(|w| w[0] < w[1]), "numbered in order: {all:?}");
    assert_eq!(migrate::pending(&store).await.expect("pending"), all);
    // Two instances starting at once on a fresh database: the migration is applied exactly once.
    let other = Store::connect(&db.url, &config.database).await.expect("connect");
    let (a, b) = tokio::join!(migrate::run(&store, 0), migrate::run(&other, 0));
    let mut applied = a.expect("a");
    applied.extend(b.expect("b"));
    applied.sort_unstable();
    assert_eq!(applied, all);
    assert!(migrate::pending(&store).await.expect("pending").is_empty());
    assert!(migrate::run(&store, 0).await.expect("again").is_empty(), "idempotent");

    sqlx::query("update schema_migrations set checksum = 'edited' where version = 1")
        .execute(store.pool())
        .await
        .expect("tamper");
    let error = migrate::run(&store, 0).await.expect_err("edited migration");
    assert!(error.to_string().contains("changed after it was applied"), "{error}");
    store.close().await;
    other.close().await;
}

type Labels = Vec<(String, String)>;
/// One sample of the text exposition: name, labels in order, value.
type Sample = (String, Labels, f64);
/// Each family's type and samples, by family name.
type Families = BTreeMap<String, (String, Vec<Sample>)>;

/// A metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (no colon in label names).
fn valid_name(name: &str, colon: bool) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':');
    name.chars().next().is_some_and(|c| ok(c) && !c.is_ascii_digit()) && name.chars().all(ok)
}

/// `{a="x",b="y\"z"}` → the pairs, with the only escapes the format has (`\\`, `\"`, `\n`), and the rest.
fn parse_labels(text: &str) -> Result<(Labels, &str), String> {
    let Some(mut rest) = text.strip_prefix('{') else { return Ok((Vec::new(), text)) };
    let mut labels = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest.split_once("=\"").ok_or(format!("no label value in {text:?}"))?;
        if !valid_name(name, false) {
            return Err(format!("label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().ok_or(format!("unterminated label value in {text:?}"))? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().map(|(_, c)| c) {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => return Err(format!("escape {other:?} in {text:?}")),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((name.to_owned(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Checks Prometheus text exposition 0.0.4 strictly and returns each family's type and samples. A sample belongs
/// to a family whose `# TYPE` came first (`_bucket`/`_sum`/`_count` for histograms), families are not split, a
/// series appears once, and each histogram's buckets are cumulative up to `le="+Inf"`, which equals its count.
fn check_exposition(text: &str) -> Result<Families, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the last line has no line feed".into());
    }
    let mut families = Families::new();
    let mut current: Option<String> = None;
    let mut series = BTreeSet::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.trim_start().splitn(3, ' ').collect();
            match words.as_slice() {
                ["TYPE", name, kind] => {
                    if !valid_name(name, true) || families.contains_key(*name) {
                        return Err(format!("TYPE {name}: bad or repeated"));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(kind) {
                        return Err(format!("TYPE {name} {kind}"));
                    }
                    families.insert((*name).to_owned(), ((*kind).to_owned(), Vec::new()));
                    current = Some((*name).to_owned());
                }
                ["HELP", name, ..] if !valid_name(name, true) => return Err(format!("HELP {name}")),
                _ => {}
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or(format!("no value: {line:?}"))?;
        let (name, rest) = line.split_at(name_end);
        let (labels, rest) = parse_labels(rest)?;
        let mut fields = rest.split_whitespace();
        let value = match fields.next().ok_or(format!("no value: {line:?}"))? {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            number => number.parse::<f64>().map_err(|_| format!("value of {line:?}"))?,
        };
        if fields.next().is_some_and(|t| t.parse::<i64>().is_err()) || fields.next().is_some() {
            return Err(format!("after the value: {line:?}"));
        }
        let family = current.clone().ok_or(format!("a sample before any TYPE: {line:?}"))?;
        let (kind, samples) = families.get_mut(&family).ok_or("family")?;
        let belongs = match kind.as_str() {
            "histogram" => ["_bucket", "_sum", "_count"].iter().any(|s| name == format!("{family}{s}")),
            _ => name == family,
        };
        if !belongs {
            return Err(format!("{name} is not in family {family} ({kind}): split or undeclared"));
        }
        if !series.insert((name.to_owned(), labels.clone())) {
            return Err(format!("series twice: {line:?}"));
        }
        samples.push((name.to_owned(), labels, value));
    }
    for (family, (kind, samples)) in &families {
        if kind != "histogram" {
            continue;
        }
        let without_le =
            |labels: &[(String, String)]| -> Labels { labels.iter().filter(|(n, _)| n != "le").cloned().collect() };
        let sets: BTreeSet<Labels> = samples.iter().map(|(_, l, _)| without_le(l)).collect();
        for set in sets {
            let mut buckets: Vec<(f64, f64)> = Vec::new();
            let mut count = None;
            for (name, labels, value) in samples.iter().filter(|(_, l, _)| without_le(l) == set) {
                if name.ends_with("_bucket") {
                    let le = labels.iter().find(|(n, _)| n == "le").ok_or(format!("{family}: bucket without le"))?;
                    let bound = if le.1 == "+Inf" { f64::INFINITY } else { le.1.parse().map_err(|_| "le")? };
                    buckets.push((bound, *value));
                } else if name.ends_with("_count") {
                    count = Some(*value);
                }
            }
            let cumulative = buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
            if !cumulative || buckets.last().map(|b| (b.0, Some(b.1))) != Some((f64::INFINITY, count)) {
                return Err(format!("{family} {set:?}: buckets {buckets:?}, count {count:?}"));
            }
        }
    }
    Ok(families)
}

#[test]
fn the_exposition_checker_refuses_what_prometheus_would() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"\"} 2\n";
    assert!(check_exposition(good).is_ok(), "{:?}", check_exposition(good));
    for bad in [
        "a_total 1\n",                                                                    // no TYPE
        "# TYPE a_total counter\na_total 1",                                              // no final line feed
        "# TYPE a_total counter\na_total 1\na_total 2\n",                                 // a series twice
        "# TYPE a_total counter\na_total{x=\"1} 1\n",                                     // unterminated value
        "# TYPE a_total counter\na_total one\n",                                          // not a number
        "# TYPE a_total counter\nb_total 1\n",                                            // outside its family
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", // not cumulative
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n",                       // +Inf is not the count
    ] {
        assert!(check_exposition(bad).is_err(), "accepted: {bad:?}");
    }
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text_with_the_documented_names() {
    let app = spawn_app().await;
    app.get("/api/v1/providers").await;
    app.get("/api/v1/providers").await;
    app.get("/no/such/route").await;
    let (status, _) = app.post_raw("/callbacks/999999/complaints", "application/json", "{}").await;
    assert!(status >= 400);
    let text = app.client.get(app.url("/metrics")).send().await.expect("GET").text().await.expect("text");
    let families = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for (family, kind) in [
        ("wxrisk_http_requests_total", "counter"),
        ("wxrisk_http_request_duration_seconds", "histogram"),
        ("wxrisk_callbacks_total", "counter"),
        ("wxrisk_callback_rejections_total", "counter"),
        ("wxrisk_jobs", "gauge"),
        ("wxrisk_database_up", "gauge"),
    ] {
        assert_eq!(families.get(family).map(|f| f.0.as_str()), Some(kind), "{family}\n{text}");
    }
    assert!(families.keys().all(|name| name.starts_with("wxrisk_")), "{text}");
    let requests = &families["wxrisk_http_requests_total"].1;
    let providers = [("route".to_owned(), "/api/v1/providers".to_owned()), ("status".to_owned(), "200".to_owned())];
    assert!(requests.iter().any(|(_, labels, value)| labels == &providers && *value == 2.0), "{text}");
    assert!(requests.iter().any(|(_, labels, _)| labels.iter().any(|(_, v)| v == "unmatched")), "{text}");
    let statuses: BTreeSet<&str> =
        families["wxrisk_jobs"].1.iter().flat_map(|(_, labels, _)| labels.iter().map(|(_, v)| v.as_str())).collect();
    assert!(statuses.contains("queued") && statuses.contains("dead"), "every job status is exported: {text}");
    app.stop().await;
}
