//! How long starting an execution with 10,000 leads takes, from the POST to the answer: every
//! lead written and one research message enqueued per lead. API Gateway gives a request 30 s.
//!
//! `bash .ci/bench` runs it against the embedded store and against DynamoDB and SQS on moto.
//! Figures on moto measure this code plus a single-threaded Python emulator; real DynamoDB and
//! SQS answer in single-digit milliseconds and take requests in parallel. moto's SQS also
//! re-reads the whole queue on every send (its own code says so), which is why a start of more
//! than 1,000 leads sends fan-out messages and lets the research worker enqueue per lead.

use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use sales_agent::config::{Backend, Settings};
use sales_agent::runtime::Runtime;
use sales_agent_tests::{agent_spec, aws};
use tower::ServiceExt;

/// Leads per execution; `BENCH_LEADS` overrides it for a quicker look.
fn leads() -> usize {
    std::env::var("BENCH_LEADS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000)
}

fn csv() -> String {
    let mut csv = String::from("email,first_name,last_name,company,title,website\n");
    for i in 0..leads() {
        csv.push_str(&format!(
            "person{i}@company{}.example,First{i},Last{i},Company {},VP Sales,company{}.example\n",
            i % 997,
            i % 997,
            i % 997
        ));
    }
    csv
}

async fn call(router: &axum::Router, method: &str, uri: &str, content_type: &str, body: String) -> (u16, serde_json::Value) {
    let request = Request::builder().method(method).uri(uri).header("content-type", content_type).body(Body::from(body)).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

/// The two halves of a start, timed apart: writing the leads and enqueueing their messages.
async fn phases(name: &str, runtime: &Runtime) {
    use sales_agent::domain::{AgentId, EmailAddress, Execution, Lead, LeadContact, LeadSourceKind};
    use sales_agent::ports::{StepMessage, StepQueue};
    let now = chrono::Utc::now();
    let agent_id = AgentId::generate();
    let execution = Execution::new(agent_id, LeadSourceKind::Csv, leads() as u64, None, now);
    let batch: Vec<Lead> = (0..leads())
        .map(|i| {
            let contact = LeadContact {
                email: EmailAddress::parse(&format!("p{i}@phase.example")).unwrap(),
                first_name: "P".into(),
                last_name: None,
                company: "Co".into(),
                title: None,
                company_domain: None,
                time_zone: None,
            };
            Lead::new(execution.id, i, agent_id, contact, now)
        })
        .collect();
    let started = Instant::now();
    runtime.store.create_execution(&execution).await.unwrap();
    runtime.store.write_leads(&execution, &batch).await.unwrap();
    let written = started.elapsed();
    // A thousand step messages: the most a start enqueues directly, the rest goes as fan-out.
    let messages: Vec<StepMessage> =
        batch.iter().take(1_000).map(|l| StepMessage { execution_id: execution.id, lead_id: l.id, step: 0 }).collect();
    let started = Instant::now();
    runtime.queue.enqueue(StepQueue::Research, &messages).await.unwrap();
    let enqueued = started.elapsed();
    println!(
        "{name:<28}   writing {} leads alone {:>6.2} s; enqueueing 1,000 step messages {:>6.2} s",
        batch.len(),
        written.as_secs_f64(),
        enqueued.as_secs_f64()
    );
}

async fn measure(name: &str, runtime: Runtime) {
    let router = runtime.router();
    let (_, agent) = call(&router, "POST", "/api/v1/agents", "application/json", agent_spec().to_string()).await;
    let uri = format!("/api/v1/agents/{}/executions", agent["id"].as_str().unwrap());
    let body = csv();
    let bytes = body.len();
    let started = Instant::now();
    let (status, answer) = call(&router, "POST", &uri, "text/csv", body).await;
    let elapsed = started.elapsed();
    assert_eq!(status, 201, "{answer}");
    let leads = leads();
    assert_eq!(answer["accepted"], leads);
    println!(
        "{name:<28} {leads} leads ({:.1} MB CSV) started in {:>6.2} s  ({:>6.0} leads/s)",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        leads as f64 / elapsed.as_secs_f64()
    );
    phases(name, &runtime).await;
}

#[tokio::main]
async fn main() {
    let data = tempfile::tempdir().unwrap();
    let embedded = sales_agent::local::EmbeddedRuntime::open(Settings::for_data_dir(data.path())).unwrap();
    measure("embedded (SQLite)", embedded.runtime.clone()).await;

    if std::env::var_os("SALES_AGENT_TEST_AWS_ENDPOINT").is_none() {
        println!("set SALES_AGENT_TEST_AWS_ENDPOINT (bash .ci/bench does) to measure DynamoDB and SQS on moto");
        return;
    }
    let config = aws::config().await;
    let table = aws::unique("bench");
    aws::create_state_table(&config, &table).await;
    let queues = aws::create_step_queues(&config).await;
    let mut settings = Settings::for_data_dir(data.path());
    settings.backend = Backend::Aws;
    settings.aws.table = Some(table);
    settings.aws.research_queue_url = Some(queues.urls.research.clone());
    settings.aws.draft_queue_url = Some(queues.urls.draft.clone());
    settings.aws.send_queue_url = Some(queues.urls.send.clone());
    let runtime = Runtime::on_aws(settings, &config).await.unwrap();
    measure("DynamoDB + SQS on moto", runtime).await;
    let depth = aws_sdk_sqs::Client::new(&config)
        .get_queue_attributes()
        .queue_url(&queues.urls.research)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    println!("research queue holds {:?} messages", depth.attributes.unwrap_or_default().values().next());
}
