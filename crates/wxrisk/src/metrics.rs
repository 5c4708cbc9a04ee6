//! Prometheus metrics, kept per app instance (no process-wide recorder), rendered in the text exposition format.
//!
//! Why not the `metrics` crate: its recorder is a process global, and tests run many apps in one process; a
//! registry owned by the app keeps each app's figures its own and costs ~150 lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Every metric the app exports: name, type, help.
const DESCRIPTIONS: &[(&str, &str, &str)] = &[
    ("wxrisk_http_requests_total", "counter", "HTTP requests answered, by route and status"),
    ("wxrisk_http_request_duration_seconds", "histogram", "Time to answer HTTP requests, by route"),
    ("wxrisk_jobs_finished_total", "counter", "Job attempts finished, by kind and outcome"),
    ("wxrisk_job_attempt_duration_seconds", "histogram", "Time one job attempt took, by kind"),
    ("wxrisk_jobs", "gauge", "Jobs in the database, by status"),
    (
        "wxrisk_callbacks_total",
        "counter",
        "Callbacks from WeChat Pay, by kind and outcome (accepted, duplicate, refused, unavailable)",
    ),
    ("wxrisk_callback_rejections_total", "counter", "Callbacks refused, by reason"),
    ("wxrisk_database_up", "gauge", "1 when the database answered the scrape's query"),
];

const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

type Key = (&'static str, String);

/// A value read at scrape time: metric name, labels, value.
pub type Gauge<'a> = (&'static str, Vec<(&'a str, &'a str)>, f64);

#[derive(Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Registry {
    counters: BTreeMap<Key, u64>,
    histograms: BTreeMap<Key, Histogram>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

fn render_labels(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(out, "{name}=\"{escaped}\"");
    }
    out
}

fn with_labels(name: &str, labels: &str, extra: Option<&str>) -> String {
    match (labels.is_empty(), extra) {
        (true, None) => name.to_owned(),
        (true, Some(e)) => format!("{name}{{{e}}}"),
        (false, None) => format!("{name}{{{labels}}}"),
        (false, Some(e)) => format!("{name}{{{labels},{e}}}"),
    }
}

impl Metrics {
    pub fn inc(&self, name: &'static str, labels: &[(&str, &str)]) {
        if let Ok(mut registry) = self.registry.lock() {
            *registry.counters.entry((name, render_labels(labels))).or_default() += 1;
        }
    }

    pub fn observe(&self, name: &'static str, labels: &[(&str, &str)], seconds: f64) {
        if let Ok(mut registry) = self.registry.lock() {
            let histogram = registry
                .histograms
                .entry((name, render_labels(labels)))
                .or_insert_with(|| Histogram { counts: vec![0; BUCKETS.len()], ..Histogram::default() });
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    histogram.counts[i] += 1;
                }
            }
            histogram.sum += seconds;
            histogram.count += 1;
        }
    }

    /// The counter's current value (tests and the console read it).
    pub fn counter(&self, name: &'static str, labels: &[(&str, &str)]) -> u64 {
        self.registry.lock().ok().and_then(|r| r.counters.get(&(name, render_labels(labels))).copied()).unwrap_or(0)
    }

    /// Text exposition; `gauges` are values read at scrape time.
    pub fn render(&self, gauges: &[Gauge<'_>]) -> String {
        let mut out = String::new();
        let Ok(registry) = self.registry.lock() else {
            return out;
        };
        for (name, kind, help) in DESCRIPTIONS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((metric, labels), value) in &registry.counters {
                if metric == name {
                    let _ = writeln!(out, "{} {value}", with_labels(name, labels, None));
                }
            }
            for ((metric, labels), h) in &registry.histograms {
                if metric != name {
                    continue;
                }
                for (bound, count) in BUCKETS.iter().zip(&h.counts) {
                    let le = format!("le=\"{bound}\"");
                    let _ = writeln!(out, "{} {count}", with_labels(&format!("{name}_bucket"), labels, Some(&le)));
                }
                let _ = writeln!(
                    out,
                    "{} {}",
                    with_labels(&format!("{name}_bucket"), labels, Some("le=\"+Inf\"")),
                    h.count
                );
                let _ = writeln!(out, "{} {}", with_labels(&format!("{name}_sum"), labels, None), h.sum);
                let _ = writeln!(out, "{} {}", with_labels(&format!("{name}_count"), labels, None), h.count);
            }
            for (metric, labels, value) in gauges {
                if metric == name {
                    let _ = writeln!(out, "{} {value}", with_labels(name, &render_labels(labels), None));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.inc("wxrisk_http_requests_total", &[("route", "/healthz"), ("status", "200")]);
        metrics.inc("wxrisk_http_requests_total", &[("route", "/healthz"), ("status", "200")]);
        metrics.observe("wxrisk_http_request_duration_seconds", &[("route", "/a\"b")], 0.003);
        let text = metrics.render(&[("wxrisk_jobs", vec![("status", "queued")], 3.0)]);
        assert!(text.contains("wxrisk_http_requests_total{route=\"/healthz\",status=\"200\"} 2"), "{text}");
        assert!(
            text.contains("wxrisk_http_request_duration_seconds_bucket{route=\"/a\\\"b\",le=\"0.0025\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("wxrisk_http_request_duration_seconds_bucket{route=\"/a\\\"b\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(text.contains("wxrisk_http_request_duration_seconds_count{route=\"/a\\\"b\"} 1"), "{text}");
        assert!(text.contains("wxrisk_jobs{status=\"queued\"} 3"), "{text}");
        assert!(text.contains("# TYPE wxrisk_jobs gauge"));
        assert_eq!(metrics.counter("wxrisk_http_requests_total", &[("route", "/healthz"), ("status", "200")]), 2);
    }
}
