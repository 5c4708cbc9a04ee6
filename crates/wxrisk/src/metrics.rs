//! Prometheus metrics, kept per app instance: a registry of the Prometheus project's `prometheus-client` crate
//! (which has no process-wide recorder, so the many apps a test process runs keep their figures apart), rendered
//! in the text exposition format 0.0.4 (`/metrics`).
//!
//! Contract: every metric is declared once in [`METRICS`] with the name it is exported under (counters end in
//! `_total`), its type and its help; [`Metrics::inc`], [`Metrics::observe`] and the gauges given to
//! [`Metrics::render`] name a declared metric of that type, anything else is ignored.

use std::collections::HashMap;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Histogram,
    /// Set at scrape time from the database.
    Gauge,
}

/// Every metric the app exports: name, type, help.
const METRICS: &[(&str, Kind, &str)] = &[
    ("wxrisk_http_requests_total", Kind::Counter, "HTTP requests answered, by route and status"),
    ("wxrisk_http_request_duration_seconds", Kind::Histogram, "Time to answer HTTP requests, by route"),
    ("wxrisk_jobs_finished_total", Kind::Counter, "Job attempts finished, by kind and outcome"),
    ("wxrisk_job_attempt_duration_seconds", Kind::Histogram, "Time one job attempt took, by kind"),
    ("wxrisk_jobs", Kind::Gauge, "Jobs in the database, by status"),
    (
        "wxrisk_callbacks_total",
        Kind::Counter,
        "Callbacks from WeChat Pay, by kind and outcome (accepted, duplicate, refused, unavailable)",
    ),
    ("wxrisk_callback_rejections_total", Kind::Counter, "Callbacks refused, by reason"),
    ("wxrisk_database_up", Kind::Gauge, "1 when the database answered the scrape's query"),
];

const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A count read at scrape time: metric name, labels, value.
pub type ScrapedGauge<'a> = (&'static str, Vec<(&'a str, &'a str)>, i64);

type Labels = Vec<(String, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn owned(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

fn new_histogram() -> Histogram {
    Histogram::new(BUCKETS.iter().copied())
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    counters: HashMap<&'static str, Family<Labels, Counter>>,
    histograms: HashMap<&'static str, Histograms>,
    gauges: HashMap<&'static str, Family<Labels, Gauge>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Metrics {
            registry: Registry::default(),
            counters: HashMap::new(),
            histograms: HashMap::new(),
            gauges: HashMap::new(),
        };
        for &(name, kind, help) in METRICS {
            match kind {
                Kind::Counter => {
                    let family = Family::default();
                    // The library adds `_total` to a counter's name.
                    metrics.registry.register(name.trim_end_matches("_total"), help, family.clone());
                    metrics.counters.insert(name, family);
                }
                Kind::Histogram => {
                    let family = Family::new_with_constructor(new_histogram as fn() -> Histogram);
                    metrics.registry.register(name, help, family.clone());
                    metrics.histograms.insert(name, family);
                }
                Kind::Gauge => {
                    let family = Family::default();
                    metrics.registry.register(name, help, family.clone());
                    metrics.gauges.insert(name, family);
                }
            }
        }
        metrics
    }
}

impl Metrics {
    pub fn inc(&self, name: &'static str, labels: &[(&str, &str)]) {
        if let Some(family) = self.counters.get(name) {
            family.get_or_create(&owned(labels)).inc();
        }
    }

    pub fn observe(&self, name: &'static str, labels: &[(&str, &str)], seconds: f64) {
        if let Some(family) = self.histograms.get(name) {
            family.get_or_create(&owned(labels)).observe(seconds);
        }
    }

    /// The counter's current value (tests and the console read it).
    pub fn counter(&self, name: &'static str, labels: &[(&str, &str)]) -> u64 {
        self.counters.get(name).and_then(|family| family.get(&owned(labels)).map(|c| c.get())).unwrap_or(0)
    }

    /// Text exposition; `gauges` are values read at scrape time.
    pub fn render(&self, gauges: &[ScrapedGauge<'_>]) -> String {
        for (name, labels, value) in gauges {
            if let Some(family) = self.gauges.get(name) {
                family.get_or_create(&owned(labels)).set(*value);
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
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
        let text = metrics.render(&[("wxrisk_jobs", vec![("status", "queued")], 3), ("wxrisk_database_up", vec![], 1)]);
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
        assert!(text.contains("\nwxrisk_database_up 1\n"), "{text}");
        assert_eq!(metrics.counter("wxrisk_http_requests_total", &[("route", "/healthz"), ("status", "200")]), 2);
    }
}
