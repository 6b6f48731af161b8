//! Every sample event in `events/` is fed to its handler the way Lambda would deliver it.

use std::path::PathBuf;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use axum::http::StatusCode;
use chrono::Duration;
use http_body_util::BodyExt;
use sales_agent::app::StepWorker;
use sales_agent::lambda::{handle_feedback, handle_scheduled, process_batch};
use sales_agent_tests::TestApp;
use serde_json::Value;
use tower::ServiceExt;

const AGENT_PLACEHOLDER: &str = "11111111-1111-7111-8111-111111111111";
const EXECUTION_PLACEHOLDER: &str = "22222222-2222-7222-8222-222222222222";
const LEAD_PLACEHOLDER: &str = "33333333-3333-7333-8333-333333333333";

#[derive(Default)]
struct Ids {
    agent: Option<String>,
    execution: Option<String>,
    lead: Option<String>,
}

fn event(name: &str, ids: &Ids) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (placeholder, id) in [(AGENT_PLACEHOLDER, &ids.agent), (EXECUTION_PLACEHOLDER, &ids.execution), (LEAD_PLACEHOLDER, &ids.lead)] {
        if let Some(id) = id {
            text = text.replace(placeholder, id);
        }
    }
    text
}

/// Sends an API Gateway v2 event through the router, as `lambda_http::run` does.
async fn invoke_api(app: &TestApp, name: &str, ids: &Ids) -> (StatusCode, Value) {
    let request = lambda_http::request::from_str(&event(name, ids)).unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"));
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn sqs_event(name: &str, ids: &Ids) -> SqsEvent {
    serde_json::from_str(&event(name, ids)).unwrap_or_else(|e| panic!("{name} is not an SQS event: {e}"))
}

#[tokio::test]
async fn the_api_gateway_events_drive_every_main_route() {
    let app = TestApp::new();
    let mut ids = Ids::default();

    assert_eq!(invoke_api(&app, "api-health.json", &ids).await.0, StatusCode::OK);
    let (status, agent) = invoke_api(&app, "api-create-agent.json", &ids).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    ids.agent = agent["id"].as_str().map(str::to_string);
    let (_, agents) = invoke_api(&app, "api-list-agents.json", &ids).await;
    assert_eq!(agents["items"].as_array().unwrap().len(), 1);

    let (status, started) = invoke_api(&app, "api-start-execution-csv.json", &ids).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(started["accepted"], 3);
    ids.execution = started["execution"]["id"].as_str().map(str::to_string);
    let (status, started_json) = invoke_api(&app, "api-start-execution-json.json", &ids).await;
    assert_eq!(status, StatusCode::CREATED, "{started_json}");
    let (_, executions) = invoke_api(&app, "api-list-executions.json", &ids).await;
    assert_eq!(executions["items"].as_array().unwrap().len(), 2);

    let (status, execution) = invoke_api(&app, "api-get-execution.json", &ids).await;
    assert_eq!((status, execution["lead_counts"]["queued"].as_u64()), (StatusCode::OK, Some(3)));
    let (_, leads) = invoke_api(&app, "api-list-execution-leads.json", &ids).await;
    assert_eq!(leads["items"].as_array().unwrap().len(), 3);
    ids.lead = leads["items"][0]["id"].as_str().map(str::to_string);
    assert_eq!(invoke_api(&app, "api-get-lead.json", &ids).await.0, StatusCode::OK);

    let (_, paused) = invoke_api(&app, "api-pause-execution.json", &ids).await;
    assert_eq!(paused["state"], "paused");
    let (_, resumed) = invoke_api(&app, "api-resume-execution.json", &ids).await;
    assert_eq!(resumed["state"], "running");
    let (_, logs) = invoke_api(&app, "api-execution-logs.json", &ids).await;
    assert!(logs["items"].as_array().unwrap().iter().any(|e| e["event"] == "execution.paused"));
    let (_, stats) = invoke_api(&app, "api-stats-overview.json", &ids).await;
    assert_eq!(stats["executions"], 2);

    let (status, problem) = invoke_api(&app, "api-get-execution.json", &Ids::default()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the unedited event names an execution that does not exist");
    assert_eq!(problem["status"], 404);
}

#[tokio::test]
async fn the_sqs_events_move_a_lead_through_research_draft_and_send_once() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&sales_agent_tests::agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    let lead_id = app.leads(&execution_id).await[0]["id"].as_str().unwrap().to_string();
    let ids = Ids { agent: Some(agent_id), execution: Some(execution_id.clone()), lead: Some(lead_id) };
    let workers: [(&str, Box<dyn StepWorker>, &str); 3] = [
        ("sqs-research.json", Box::new(app.runtime.research_step()), "researched"),
        ("sqs-draft.json", Box::new(app.runtime.draft_step()), "drafted"),
        ("sqs-send.json", Box::new(app.runtime.send_step()), "sent"),
    ];
    for (name, worker, state) in &workers {
        let response = process_batch(sqs_event(name, &ids), worker.as_ref(), 5).await;
        assert!(response.batch_item_failures.is_empty(), "{name}");
        assert_eq!(app.leads(&execution_id).await[0]["state"], *state, "after {name}");
    }
    let redelivered = process_batch(sqs_event("sqs-send.json", &ids), workers[2].1.as_ref(), 5).await;
    assert!(redelivered.batch_item_failures.is_empty());
    assert_eq!(app.emails().len(), 1, "a redelivered send message sends nothing");

    let unedited = process_batch(sqs_event("sqs-send.json", &Ids::default()), workers[2].1.as_ref(), 5).await;
    assert!(unedited.batch_item_failures.is_empty(), "a message for an unknown lead is dropped, not retried forever");

    // SES's bounce event for the email, naming it by the id it was sent with.
    let feedback = app.runtime.feedback_consumer();
    let sent_id = app.leads(&execution_id).await[0]["sent_messages"][0]["message_id"].as_str().unwrap().to_string();
    let mut bounce = sqs_event("sqs-ses-feedback.json", &ids);
    let body = bounce.records[0].body.take().unwrap();
    bounce.records[0].body = Some(body.replace("0100019c-sample-ses-message-id", &sent_id));
    for _ in 0..2 {
        let response = handle_feedback(&feedback, bounce.clone()).await;
        assert!(response.batch_item_failures.is_empty());
    }
    // Another system's email to the same address (same configuration set) is not ours.
    let unknown = handle_feedback(&feedback, sqs_event("sqs-ses-feedback.json", &ids)).await;
    assert!(unknown.batch_item_failures.is_empty(), "acknowledged, not retried");
    let lead = &app.leads(&execution_id).await[0];
    assert_eq!(lead["state"], "bounced", "{lead}");
    assert_eq!(lead["inbound"].as_array().unwrap().len(), 1, "a redelivered event changes nothing");
    assert_eq!(app.execution(&execution_id).await["counters"]["bounced"], 1);
}

#[tokio::test]
async fn the_scheduled_event_reads_replies_and_enqueues_due_follow_ups() {
    let app = TestApp::new();
    let scheduled: EventBridgeEvent<Value> = serde_json::from_str(&event("schedule-reply-check.json", &Ids::default())).unwrap();
    assert_eq!(scheduled.detail_type, "Scheduled Event");
    let agent_id = app.create_agent(&sales_agent_tests::agent_spec()).await;
    app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    app.drain().await;
    let tasks = app.runtime.scheduled_tasks();

    let early = handle_scheduled(&tasks).await.unwrap();
    assert_eq!(early.sweep.follow_ups, 0);
    app.clock.advance(Duration::days(3));
    let due = handle_scheduled(&tasks).await.unwrap();
    assert_eq!(due.sweep.follow_ups, 1);
    assert_eq!(due.replies.map(|r| r.read), Some(0));
    app.drain().await;
    assert_eq!(app.emails().len(), 2);
}
