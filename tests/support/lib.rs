//! A test harness around the real local runtime: a temporary data folder, the REST router
//! called in-process, and workers drained until idle (tests never sleep to wait for work).

pub mod aws;
pub mod bounce_corpus;
pub mod event_source;
pub mod fault_proxy;
pub mod faults;
pub mod grounding_eval;
pub mod imap;
pub mod intent_eval;
pub mod lambda_process;
pub mod mail;
pub mod smtp;
pub mod stack;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::TimeZone;
use http_body_util::BodyExt;
use sales_agent::adapters::outbox::OutboxMailer;
use sales_agent::config::Settings;
use sales_agent::local::{DrainReport, EmbeddedRuntime, LocalRunner};
use sales_agent::ports::{Clock, ManualClock};
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct TestApp {
    pub runtime: EmbeddedRuntime,
    pub router: Router,
    pub runner: LocalRunner,
    pub clock: Arc<ManualClock>,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl Reply {
    /// The `errors[].field` names of a problem body.
    pub fn problem_fields(&self) -> Vec<String> {
        self.body["errors"].as_array().into_iter().flatten().map(|e| e["field"].as_str().unwrap_or_default().to_string()).collect()
    }
}

pub fn start_of_test_day() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

impl TestApp {
    /// A fresh app in a temporary folder.
    pub fn new() -> Self {
        Self::configured(|_| {})
    }

    /// A fresh app whose settings `configure` adjusts first.
    pub fn configured(configure: impl FnOnce(&mut Settings)) -> Self {
        let temp = tempfile::tempdir().expect("a temporary folder");
        let mut settings = Settings::for_data_dir(temp.path());
        configure(&mut settings);
        let clock = Arc::new(ManualClock::starting_at(start_of_test_day()));
        let runtime = EmbeddedRuntime::open_with_clock(settings, clock.clone()).expect("the runtime opens");
        let mut app = Self::from_runtime(runtime, clock);
        app._temp = Some(temp);
        app
    }

    /// An app over an existing data folder, as after a process restart.
    pub fn open(data_dir: &Path, clock: Arc<ManualClock>) -> Self {
        let runtime = EmbeddedRuntime::open_with_clock(Settings::for_data_dir(data_dir), clock.clone()).expect("the runtime opens");
        Self::from_runtime(runtime, clock)
    }

    /// Wraps a runtime whose adapters a test replaced.
    pub fn from_runtime(runtime: EmbeddedRuntime, clock: Arc<ManualClock>) -> Self {
        Self {
            router: runtime.router(),
            runner: runtime.runner(),
            data_dir: runtime.settings.data_dir.clone(),
            runtime,
            clock,
            _temp: None,
        }
    }

    /// Takes over `previous`'s temporary folder, for an app rebuilt around a changed runtime.
    pub fn keeping(mut self, mut previous: TestApp) -> Self {
        self._temp = previous._temp.take();
        self
    }

    /// Keeps the temporary folder alive across a simulated restart.
    pub fn restart(mut self) -> Self {
        let temp = self._temp.take();
        let mut restarted = Self::open(&self.data_dir, self.clock.clone());
        restarted._temp = temp;
        restarted
    }

    pub async fn request(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self.router.clone().oneshot(request.body(body.into()).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply { status, content_type, body }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.request(Method::GET, uri, None, Body::empty(), &[]).await
    }

    pub async fn post_json(&self, uri: &str, body: &Value) -> Reply {
        self.request(Method::POST, uri, Some("application/json"), body.to_string(), &[]).await
    }

    pub async fn post_csv(&self, uri: &str, csv: &str) -> Reply {
        self.request(Method::POST, uri, Some("text/csv"), csv.to_string(), &[]).await
    }

    pub async fn post_empty(&self, uri: &str) -> Reply {
        self.request(Method::POST, uri, None, Body::empty(), &[]).await
    }

    /// Creates an agent from `agent` and returns its id.
    pub async fn create_agent(&self, agent: &Value) -> String {
        let reply = self.post_json("/api/v1/agents", agent).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_string()
    }

    /// Starts an execution from CSV text and returns its id.
    pub async fn start_csv(&self, agent_id: &str, csv: &str) -> String {
        let reply = self.post_csv(&format!("/api/v1/agents/{agent_id}/executions"), csv).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["execution"]["id"].as_str().unwrap().to_string()
    }

    pub async fn drain(&self) -> DrainReport {
        self.runner.drain().await
    }

    /// Drops every message waiting on `queue`, for a test that drives those steps itself.
    pub async fn lose_messages(&self, queue: sales_agent::domain::StepQueue) {
        loop {
            let received = self.runtime.queue.receive(queue, 10).await.unwrap();
            if received.is_empty() {
                return;
            }
            for message in received {
                self.runtime.queue.delete(message.receipt).await.unwrap();
            }
        }
    }

    /// Runs the scheduled function once, then drains what it enqueued.
    pub async fn run_scheduled(&self) {
        self.runner.run_scheduled().await.expect("the scheduled run succeeds");
        self.drain().await;
    }

    pub fn outbox(&self) -> OutboxMailer {
        OutboxMailer::new(EmbeddedRuntime::outbox_dir(&self.runtime.settings))
    }

    /// The emails written so far, as text.
    pub fn emails(&self) -> Vec<String> {
        self.outbox().emails().unwrap().iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
    }

    pub async fn leads(&self, execution_id: &str) -> Vec<Value> {
        let reply = self.get(&format!("/api/v1/executions/{execution_id}/leads?limit=500")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["items"].as_array().unwrap().clone()
    }

    pub async fn execution(&self, execution_id: &str) -> Value {
        let reply = self.get(&format!("/api/v1/executions/{execution_id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    }

    /// Delivers a message into the local inbox, as a mail server would.
    pub fn deliver_to_inbox(&self, name: &str, raw: &str) {
        let dir = EmbeddedRuntime::inbox_dir(&self.runtime.settings).join("new");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), raw).unwrap();
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

impl Default for TestApp {
    fn default() -> Self {
        Self::new()
    }
}

/// An agent with a two-step sequence; follow-ups wait 3 days.
pub fn agent_spec() -> Value {
    json!({
        "name": "Test outreach",
        "sender": {"name": "Dana Reyes", "email": "dana@northwind.example", "company": "Northwind Analytics",
                   "postal_address": "100 Harbour Street, Springfield"},
        "pitch": {"product": "Northwind Forecast", "value_proposition": "forecasts you can trust",
                  "target_audience": "VPs of Sales", "tone": "warm", "call_to_action": "a short call"},
        "sequence": [
            {"subject": "{{company}} and forecasting", "body": "Hi {{first_name}}, a note for {{company}}."},
            {"wait_days": 3, "body": "Hi {{first_name}}, following up."}
        ]
    })
}

/// The test agent, sending as `sender`.
pub fn agent_spec_sending_as(sender: &str) -> Value {
    let mut spec = agent_spec();
    spec["sender"]["email"] = json!(sender);
    spec
}

pub const THREE_LEADS_CSV: &str = "email,first_name,last_name,company\n\
ada@initech.example,Ada,Lovelace,Initech\n\
bob@globex.example,Bob,Stone,Globex\n\
cy@umbrella.example,Cy,Young,Umbrella\n";

/// The header block of an `.eml` file, unfolded.
pub fn header<'a>(email: &'a str, name: &str) -> Option<&'a str> {
    email.lines().take_while(|l| !l.is_empty()).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}
