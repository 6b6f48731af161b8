//! A fault-injecting layer between the AWS clients under test and moto. It forwards every
//! request and, as its plan says, answers instead with the errors real services give: SES
//! throttling before anything is sent, SES 500 after the email was accepted, DynamoDB and SQS
//! 500s before or after the call took effect, state writes that fail right after a send, and
//! batch reads left unprocessed. It counts what it did, so a test can say which faults ran.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Response};
use http_body_util::BodyExt;

/// Which faults to inject.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// SES SendRawEmail: forwarded (the email is accepted), then answered with a 500.
    pub ses_500_after_accepting: bool,
    /// SES SendRawEmail: the first this many are answered `400 Throttling` before forwarding.
    pub ses_throttles: usize,
    /// SES SendRawEmail: then this many are answered as when the account's daily quota is spent.
    pub ses_quota_spent: usize,
    /// SES SendRawEmail: held this long before forwarding, so a duplicate delivery can race it.
    pub ses_delay: Duration,
    /// After each accepted SendRawEmail, the next this many DynamoDB TransactWriteItems calls
    /// fail with a 500 (every attempt of the SDK's retries, so the first state write after the
    /// send fails) ...
    pub writes_failing_after_each_send: usize,
    /// ... after they took effect (`true`) or before (`false`).
    pub write_failures_land: bool,
    /// This share of DynamoDB and SQS calls fail with a 500, half of them after taking effect,
    /// drawn from a generator seeded with the second value.
    pub random_failures: Option<(f64, u64)>,
    /// DynamoDB BatchGetItem answered with every key unprocessed (as under throttling).
    pub unprocessed_batch_gets: bool,
    /// Calls that fail with a 500 before taking effect, every time: an operation
    /// (`AmazonSQS.SendMessageBatch`, …) and a text its request body contains ("" for any).
    pub failing_calls: Vec<(&'static str, &'static str)>,
}

/// What the proxy did.
#[derive(Debug, Default)]
pub struct FaultCounts {
    /// SendRawEmail requests that reached the proxy (before any delay).
    pub send_requests: AtomicUsize,
    pub emails_accepted: AtomicUsize,
    pub ses_500s: AtomicUsize,
    pub ses_throttles: AtomicUsize,
    pub ses_quota_refusals: AtomicUsize,
    pub failed_writes: AtomicUsize,
    pub random_before: AtomicUsize,
    pub random_after: AtomicUsize,
    pub unprocessed_reads: AtomicUsize,
}

impl FaultCounts {
    pub fn summary(&self) -> String {
        let n = |c: &AtomicUsize| c.load(Ordering::SeqCst);
        format!(
            "SES accepted {} emails through the proxy; SES 500 after accepting {}, throttled {}; failed writes after a send {}; injected 500s {} \
             before + {} after taking effect; unprocessed batch reads {}",
            n(&self.emails_accepted),
            n(&self.ses_500s),
            n(&self.ses_throttles),
            n(&self.failed_writes),
            n(&self.random_before),
            n(&self.random_after),
            n(&self.unprocessed_reads)
        )
    }
}

pub struct FaultProxy {
    pub endpoint: String,
    pub counts: Arc<FaultCounts>,
    plan: Arc<Mutex<FaultPlan>>,
}

impl FaultProxy {
    /// Changes the plan for the requests that follow (for example, to let a fixed fault go).
    pub fn replan(&self, plan: FaultPlan) {
        *self.plan.lock().unwrap() = plan;
    }
}

/// A small seeded generator (xorshift), so a failing run can be repeated.
struct Dice(AtomicU64);

impl Dice {
    fn roll(&self) -> f64 {
        let mut x = self.0.load(Ordering::SeqCst);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.store(x, Ordering::SeqCst);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct State {
    target: String,
    http: reqwest::Client,
    plan: Arc<Mutex<FaultPlan>>,
    counts: Arc<FaultCounts>,
    dice: Dice,
    writes_to_fail: AtomicUsize,
}

/// The AWS operation a request calls, as `Service.Action`.
fn operation(headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.to_string();
    }
    let form = String::from_utf8_lossy(body);
    match form.split('&').find_map(|pair| pair.strip_prefix("Action=")) {
        Some(action) => format!("SES.{action}"),
        None => "unknown".into(),
    }
}

fn json_error(status: u16, kind: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Body::from(format!(r#"{{"__type":"{kind}","message":"injected fault"}}"#)))
        .unwrap()
}

fn ses_error(status: u16, kind: &str, code: &str, message: &str) -> Response<Body> {
    let xml = format!(
        "<ErrorResponse xmlns=\"http://ses.amazonaws.com/doc/2010-12-01/\"><Error><Type>{kind}</Type><Code>{code}</Code>\
         <Message>{message}</Message></Error><RequestId>injected-1</RequestId></ErrorResponse>"
    );
    Response::builder().status(status).header("content-type", "text/xml").body(Body::from(xml)).unwrap()
}

fn service_error(operation: &str) -> Response<Body> {
    if operation.starts_with("AmazonSQS.") {
        json_error(500, "com.amazonaws.sqs#InternalError")
    } else {
        json_error(500, "com.amazonaws.dynamodb.v20120810#InternalServerError")
    }
}

async fn forward(state: &State, parts: &axum::http::request::Parts, body: axum::body::Bytes) -> Response<Body> {
    let mut request = state.http.request(parts.method.clone(), format!("{}{}", state.target, parts.uri));
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answer = request.body(body).send().await.expect("moto answers");
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    response.body(Body::from(answer.bytes().await.expect("moto's answer"))).unwrap()
}

/// Every key of a BatchGetItem request, left unprocessed.
fn all_unprocessed(body: &[u8]) -> Response<Body> {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let answer = serde_json::json!({"Responses": {}, "UnprocessedKeys": request["RequestItems"]});
    Response::builder().status(200).header("content-type", "application/x-amz-json-1.0").body(Body::from(answer.to_string())).unwrap()
}

async fn handle(state: Arc<State>, request: axum::extract::Request) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let operation = operation(&parts.headers, &body);
    let plan = state.plan.lock().unwrap().clone();
    let counts = &state.counts;
    if operation == "SES.SendRawEmail" {
        counts.send_requests.fetch_add(1, Ordering::SeqCst);
        if counts.ses_throttles.load(Ordering::SeqCst) < plan.ses_throttles {
            counts.ses_throttles.fetch_add(1, Ordering::SeqCst);
            return ses_error(400, "Sender", "Throttling", "Maximum sending rate exceeded.");
        }
        if counts.ses_quota_refusals.load(Ordering::SeqCst) < plan.ses_quota_spent {
            counts.ses_quota_refusals.fetch_add(1, Ordering::SeqCst);
            return ses_error(400, "Sender", "Throttling", "Daily message quota exceeded.");
        }
        tokio::time::sleep(plan.ses_delay).await;
        let answer = forward(&state, &parts, body).await;
        if answer.status().is_success() {
            counts.emails_accepted.fetch_add(1, Ordering::SeqCst);
            state.writes_to_fail.fetch_add(plan.writes_failing_after_each_send, Ordering::SeqCst);
            if plan.ses_500_after_accepting {
                counts.ses_500s.fetch_add(1, Ordering::SeqCst);
                return ses_error(500, "Receiver", "InternalFailure", "An internal error occurred.");
            }
        }
        return answer;
    }
    let text = String::from_utf8_lossy(&body);
    if plan.failing_calls.iter().any(|(failing, containing)| *failing == operation && text.contains(containing)) {
        counts.random_before.fetch_add(1, Ordering::SeqCst);
        return service_error(&operation);
    }
    if operation == "DynamoDB_20120810.BatchGetItem" && plan.unprocessed_batch_gets {
        counts.unprocessed_reads.fetch_add(1, Ordering::SeqCst);
        return all_unprocessed(&body);
    }
    if operation == "DynamoDB_20120810.TransactWriteItems"
        && state.writes_to_fail.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    {
        counts.failed_writes.fetch_add(1, Ordering::SeqCst);
        if plan.write_failures_land {
            forward(&state, &parts, body).await;
        }
        return service_error(&operation);
    }
    let faulty = operation.starts_with("DynamoDB_") || operation.starts_with("AmazonSQS.");
    if let Some((share, _)) = plan.random_failures.filter(|_| faulty)
        && state.dice.roll() < share
    {
        if state.dice.roll() < 0.5 {
            counts.random_before.fetch_add(1, Ordering::SeqCst);
        } else {
            counts.random_after.fetch_add(1, Ordering::SeqCst);
            forward(&state, &parts, body).await;
        }
        return service_error(&operation);
    }
    forward(&state, &parts, body).await
}

/// Starts a proxy in front of `target` (moto) with `plan`.
pub async fn start(target: String, plan: FaultPlan) -> FaultProxy {
    let seed = plan.random_failures.map_or(0x9E37_79B9_7F4A_7C15, |(_, seed)| seed.max(1));
    let plan = Arc::new(Mutex::new(plan));
    let counts = Arc::new(FaultCounts::default());
    let state = Arc::new(State {
        target,
        http: reqwest::Client::new(),
        plan: plan.clone(),
        counts: counts.clone(),
        dice: Dice(AtomicU64::new(seed)),
        writes_to_fail: AtomicUsize::new(0),
    });
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| handle(state.clone(), request));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FaultProxy { endpoint, counts, plan }
}
