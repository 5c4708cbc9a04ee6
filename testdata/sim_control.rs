//! The simulator's control API (`/_sim/…`) as the test suites of `wxsim` and `wxrisk` drive it; each includes
//! this file with `#[path]`. Panics on failure: it is test code.

#![allow(dead_code)]

use serde_json::Value;

pub struct Control {
    base: String,
    http: reqwest::Client,
}

impl Control {
    pub fn new(sim: &wxsim::Simulator) -> Self {
        Self { base: format!("{}/_sim", sim.base_url()), http: reqwest::Client::new() }
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let response = self.http.post(format!("{}{path}", self.base)).json(&body).send().await.expect("control POST");
        let status = response.status();
        let text = response.text().await.expect("body");
        assert!(status.is_success(), "control {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        let response = self.http.put(format!("{}{path}", self.base)).json(&body).send().await.expect("control PUT");
        assert!(response.status().is_success());
        response.json().await.expect("json")
    }

    pub async fn get(&self, path: &str) -> Value {
        self.http.get(format!("{}{path}", self.base)).send().await.expect("control GET").json().await.expect("json")
    }

    /// Create a complaint; returns its id.
    pub async fn complaint(&self, body: Value) -> String {
        self.post("/complaints", body).await["complaint_id"].as_str().expect("id").to_owned()
    }
}
