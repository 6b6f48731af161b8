//! The fault suite: the functions on moto, with a fault-injecting proxy between their AWS
//! clients and moto. Each run starts an execution of at least ten leads through the API,
//! injects its fault, lets the system settle (the queues drained, time passed, the scheduled
//! sweep run) and then checks the promises against moto's own records:
//! - zero duplicate emails (per address and step, counted in moto's SES store);
//! - zero lost leads: every lead terminal, waiting (for its follow-up, or held by an execution
//!   that paused with the reason), parked and visible, or failed with a reason; none sitting in
//!   a worker's state with nothing to move it;
//! - counters that equal the leads' states.
//!
//! Every run prints one row of the table (`cargo test --test aws_faults -- --nocapture`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use sales_agent::domain::{ExecutionId, LeadStateKind};
use sales_agent::lambda::process_batch;
use sales_agent::ports::PageRequest;
use sales_agent::ports::store::{ExecutionStore, LeadQuery, LeadStore};
use sales_agent_tests::event_source::{EventSourceMapping, ReceivedBatch};
use sales_agent_tests::fault_proxy::FaultPlan;
use sales_agent_tests::lambda_process::SendFunctionProcess;
use sales_agent_tests::stack::{Stack, default_secret, deploy_with, draft_everything};
use serde_json::json;

const LEADS: usize = 10;

/// What a run ended with.
#[derive(Debug)]
struct Audit {
    leads: usize,
    emails: usize,
    duplicates: usize,
    /// Leads in a worker's state after the system settled, or failed without a reason.
    lost: Vec<String>,
    states: BTreeMap<LeadStateKind, u64>,
    counters_match: bool,
    counter_detail: String,
}

impl Audit {
    fn row(&self, scenario: &str, faults: &str) -> String {
        let states: Vec<String> = self.states.iter().map(|(state, n)| format!("{state} {n}")).collect();
        format!(
            "FAULT-TABLE | {scenario} | {} leads | {} emails | {} duplicates | {} lost | {} | counters {} | {faults}",
            self.leads,
            self.emails,
            self.duplicates,
            self.lost.len(),
            states.join(", "),
            if self.counters_match { "match" } else { "DIFFER" }
        )
    }

    /// The three promises every run must keep.
    fn assert_kept(&self, scenario: &str) {
        assert_eq!(self.duplicates, 0, "{scenario}: a prospect got a second email of one step");
        assert!(self.lost.is_empty(), "{scenario}: leads were lost: {:?}", self.lost);
        assert!(self.counters_match, "{scenario}: counters differ from the leads: {}", self.counter_detail);
    }
}

/// Reads the outcome straight from moto: the leads, the execution's counters and the emails.
async fn audit(stack: &Stack, execution_id: &str) -> Audit {
    let execution_id: ExecutionId = execution_id.parse().unwrap();
    let query = LeadQuery { execution_id: Some(execution_id), ..Default::default() };
    let leads = stack.inspector.list_leads(&query, &PageRequest::first(500)).await.unwrap().items;
    let mut states: BTreeMap<LeadStateKind, u64> = BTreeMap::new();
    let mut lost = Vec::new();
    for lead in &leads {
        let kind = lead.state.kind();
        *states.entry(kind).or_default() += 1;
        // A held lead waits for its execution's resume, with the reason on the execution.
        let stuck = (sales_agent::domain::StepQueue::advancing(kind).is_some() && !lead.on_hold) || kind == LeadStateKind::Sending;
        let failed_silently = matches!(&lead.state, sales_agent::domain::LeadState::Failed { reason } if reason.trim().is_empty());
        if stuck || failed_silently {
            lost.push(format!("{} in {kind}", lead.contact.email));
        }
    }
    let mut per_step: BTreeMap<(String, String), usize> = BTreeMap::new();
    let emails = stack.emails().await;
    for (to, raw) in &emails {
        let step = raw
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
            .and_then(|l| l.split(".step").nth(1))
            .map_or("?".to_string(), |rest| rest.chars().take_while(char::is_ascii_digit).collect());
        *per_step.entry((to.join(","), step)).or_default() += 1;
    }
    let duplicates = per_step.values().map(|n| n - 1).sum();
    let progress = stack.inspector.execution_progress(execution_id).await.unwrap();
    let sent_records: u64 = leads.iter().map(|l| l.sent_messages.len() as u64).sum();
    let failed = states.get(&LeadStateKind::Failed).copied().unwrap_or(0);
    let counted: BTreeMap<LeadStateKind, u64> = progress.lead_counts.clone();
    let counters_match = progress.counters.sent == sent_records && progress.counters.failed == failed && counted == states;
    let counter_detail = format!(
        "sent {} vs {sent_records} recorded; failed {} vs {failed}; counts {counted:?} vs {states:?}",
        progress.counters.sent, progress.counters.failed
    );
    Audit { leads: leads.len(), emails: emails.len(), duplicates, lost, states, counters_match, counter_detail }
}

fn faults_of(stack: &Stack) -> String {
    stack.proxy.as_ref().map_or_else(|| "no faults".into(), |p| p.counts.summary())
}

/// Runs a campaign of `LEADS` leads under `plan`, delivering every batch `deliveries` times.
async fn campaign(scenario: &str, plan: FaultPlan, deliveries: usize) -> (Stack, String, Audit) {
    let stack = deploy_with(default_secret(), Some(plan)).await;
    let execution_id = stack.start_retrying(LEADS).await;
    stack.settle(deliveries).await;
    let audit = audit(&stack, &execution_id).await;
    println!("{}", audit.row(scenario, &faults_of(&stack)));
    audit.assert_kept(scenario);
    (stack, execution_id, audit)
}

fn count(audit: &Audit, state: LeadStateKind) -> u64 {
    audit.states.get(&state).copied().unwrap_or(0)
}

#[tokio::test]
async fn ses_answering_500_after_accepting_parks_every_lead_and_sends_nothing_twice() {
    let plan = FaultPlan { ses_500_after_accepting: true, ..FaultPlan::default() };
    let (stack, execution_id, audit) = campaign("SES answers 500 after accepting", plan, 1).await;
    assert_eq!((audit.emails, count(&audit, LeadStateKind::Parked)), (LEADS, LEADS as u64), "{audit:?}");
    let execution = stack.execution(&execution_id).await;
    assert_eq!(execution["state"], "running", "an execution with parked leads is not complete");
    assert!(execution["needs_attention"][0].as_str().unwrap().contains(&format!("{LEADS} lead(s) parked")), "{execution}");

    // A person checks SES, sees the emails left, and resolves each lead as sent.
    for lead in stack.leads(&execution_id).await {
        let (status, resolved) =
            stack.post(&format!("/api/v1/leads/{}/resolve", lead["id"].as_str().unwrap()), json!({"resolution": "sent"})).await;
        assert_eq!((status, resolved["state"].as_str()), (StatusCode::OK, Some("sent")), "{resolved}");
    }
    let resolved = audit_after_resolving(&stack, &execution_id).await;
    assert_eq!((count(&resolved, LeadStateKind::Sent), resolved.emails, resolved.duplicates), (LEADS as u64, LEADS, 0));
    assert_eq!(stack.execution(&execution_id).await["counters"]["sent"], LEADS);
}

async fn audit_after_resolving(stack: &Stack, execution_id: &str) -> Audit {
    stack.settle(1).await;
    let audit = audit(stack, execution_id).await;
    audit.assert_kept("after resolving");
    audit
}

#[tokio::test]
async fn ses_throttling_gives_the_claim_back_and_every_lead_is_sent_once() {
    let plan = FaultPlan { ses_throttles: LEADS, ..FaultPlan::default() };
    let (_, _, audit) = campaign("SES throttles the first 10 sends", plan, 1).await;
    assert_eq!((audit.emails, count(&audit, LeadStateKind::Sent)), (LEADS, LEADS as u64), "{audit:?}");
}

#[tokio::test]
async fn the_first_state_write_after_each_send_failing_before_it_lands_loses_no_send() {
    let plan = FaultPlan { writes_failing_after_each_send: 3, ..FaultPlan::default() };
    let (_, _, audit) = campaign("first write after each send fails (not applied)", plan, 1).await;
    assert_eq!((audit.emails, count(&audit, LeadStateKind::Sent)), (LEADS, LEADS as u64), "{audit:?}");
}

#[tokio::test]
async fn the_first_state_write_after_each_send_failing_after_it_landed_loses_no_send() {
    let plan = FaultPlan { writes_failing_after_each_send: 3, write_failures_land: true, ..FaultPlan::default() };
    let (_, _, audit) = campaign("first write after each send fails (applied)", plan, 1).await;
    assert_eq!((audit.emails, count(&audit, LeadStateKind::Sent)), (LEADS, LEADS as u64), "{audit:?}");
}

async fn random_faults(seed: u64) {
    let plan = FaultPlan { random_failures: Some((0.10, seed)), ..FaultPlan::default() };
    let (_, _, audit) = campaign(&format!("10% of DynamoDB and SQS calls fail (seed {seed})"), plan, 1).await;
    assert_eq!(audit.leads, LEADS, "every lead was written");
    assert_eq!(audit.emails as u64, count(&audit, LeadStateKind::Sent) + count(&audit, LeadStateKind::Parked), "{audit:?}");
}

#[tokio::test]
async fn ten_percent_of_dynamodb_and_sqs_calls_failing_loses_and_duplicates_nothing_seed_1() {
    random_faults(1).await;
}

#[tokio::test]
async fn ten_percent_of_dynamodb_and_sqs_calls_failing_loses_and_duplicates_nothing_seed_2() {
    random_faults(2).await;
}

#[tokio::test]
async fn ten_percent_of_dynamodb_and_sqs_calls_failing_loses_and_duplicates_nothing_seed_3() {
    random_faults(3).await;
}

#[tokio::test]
async fn every_message_delivered_twice_sends_each_email_once() {
    let (_, _, audit) = campaign("every message delivered twice", FaultPlan::default(), 2).await;
    assert_eq!((audit.emails, count(&audit, LeadStateKind::Sent)), (LEADS, LEADS as u64), "{audit:?}");
}

#[tokio::test]
async fn every_message_delivered_twice_while_calls_fail_at_random_sends_nothing_twice() {
    let plan = FaultPlan { random_failures: Some((0.10, 7)), ..FaultPlan::default() };
    let (_, _, audit) = campaign("delivered twice + 10% random failures (seed 7)", plan, 2).await;
    assert_eq!(audit.emails as u64, count(&audit, LeadStateKind::Sent) + count(&audit, LeadStateKind::Parked), "{audit:?}");
}

/// A campaign whose sends take `ses_delay` each, researched and drafted, with its first batch of
/// send messages received (and not yet handed to a worker).
async fn drafted_with_a_send_batch(ses_delay: Duration) -> (Stack, String, EventSourceMapping, ReceivedBatch) {
    let stack = deploy_with(default_secret(), Some(FaultPlan { ses_delay, ..FaultPlan::default() })).await;
    let execution_id = stack.start_retrying(LEADS).await;
    draft_everything(&stack).await;
    let mapping = stack.mapping(&stack.queues.urls.send, &stack.queues.arns.send, 1);
    let batch = mapping.receive().await.expect("send messages");
    (stack, execution_id, mapping, batch)
}

#[tokio::test]
async fn a_second_delivery_during_a_slow_send_waits_for_it_instead_of_parking() {
    let (stack, execution_id, mapping, batch) = drafted_with_a_send_batch(Duration::from_secs(3)).await;
    let (first, second) = (Arc::new(stack.runtime.send_step()), Arc::new(stack.runtime.send_step()));
    let event = batch.event.clone();
    let running = tokio::spawn(async move { process_batch(event, first.as_ref(), 5).await });
    // SQS hands the batch to a second worker while every send of the first is inside its SES call.
    let in_flight = || stack.proxy.as_ref().unwrap().counts.send_requests.load(Ordering::SeqCst);
    while in_flight() < batch.event.records.len() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let duplicate = process_batch(batch.event.clone(), second.as_ref(), 5).await;
    let original = running.await.unwrap();
    assert!(original.batch_item_failures.is_empty(), "{original:?}");
    assert_eq!(duplicate.batch_item_failures.len(), batch.event.records.len(), "every duplicate waits for the live claim");
    mapping.settle(&batch, &[]).await;
    stack.settle(1).await;

    let audit = audit(&stack, &execution_id).await;
    println!("{}", audit.row("a second delivery during a 3 s SES call", &faults_of(&stack)));
    audit.assert_kept("slow send raced");
    let sent_in_batch = batch.event.records.len() as u64;
    assert_eq!(count(&audit, LeadStateKind::Parked), 0, "nothing parked: {audit:?}");
    assert!(count(&audit, LeadStateKind::Sent) >= sent_in_batch);
    assert_eq!(audit.emails as u64, count(&audit, LeadStateKind::Sent));
}

#[tokio::test]
async fn a_send_function_killed_mid_batch_sends_nothing_twice_and_every_lead_ends_sent_once_resolved() {
    let (stack, execution_id, mapping, batch) = drafted_with_a_send_batch(Duration::from_millis(600)).await;
    let proxy = stack.proxy.as_ref().unwrap();

    // The real send bootstrap, as Lambda runs it, handed the batch and killed (SIGKILL) once
    // the first emails have left and the rest are in flight.
    let mut function = SendFunctionProcess::start(&stack).await;
    function.invoke(&batch.event).await;
    for _ in 0..300 {
        if proxy.counts.emails_accepted.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    function.kill().await;
    let accepted_before_the_kill = proxy.counts.emails_accepted.load(Ordering::SeqCst);
    assert!(accepted_before_the_kill >= 2, "the function was killed mid-batch");

    // SQS delivers the batch again after its visibility timeout; by then the claims are old.
    stack.clock.advance(chrono::Duration::minutes(3));
    tokio::time::sleep(Duration::from_secs(1)).await; // sends the proxy still held finish
    mapping.release(&batch).await;
    stack.settle(1).await;
    let audit = audit(&stack, &execution_id).await;
    println!("{}", audit.row("the send function killed mid-batch (SIGKILL)", &faults_of(&stack)));
    audit.assert_kept("worker killed");
    assert!(count(&audit, LeadStateKind::Parked) >= 1, "claims left by the dead worker are parked: {audit:?}");

    // A person resolves each parked lead from what SES shows: sent if an email left, else sent again.
    let sent_to: Vec<String> = stack.emails().await.into_iter().flat_map(|(to, _)| to).collect();
    for lead in stack.leads(&execution_id).await.into_iter().filter(|l| l["state"] == "parked") {
        let resolution = if sent_to.iter().any(|to| to == lead["contact"]["email"].as_str().unwrap()) { "sent" } else { "send_again" };
        let (status, _) =
            stack.post(&format!("/api/v1/leads/{}/resolve", lead["id"].as_str().unwrap()), json!({"resolution": resolution})).await;
        assert_eq!(status, StatusCode::OK);
    }
    let resolved = audit_after_resolving(&stack, &execution_id).await;
    println!("{}", resolved.row("  … after a person resolved the parked leads", &faults_of(&stack)));
    assert_eq!((count(&resolved, LeadStateKind::Sent), resolved.emails), (LEADS as u64, LEADS), "{resolved:?}");
}

#[tokio::test]
async fn a_throttled_suppression_lookup_fails_closed() {
    let stack = deploy_with(default_secret(), Some(FaultPlan::default())).await;
    let execution_id = stack.start_retrying(LEADS).await;
    let suppressed = format!("lead0@{}", stack.lead_domain);
    let entry = sales_agent::domain::Suppression {
        entry: suppressed.clone(),
        reason: "manual".into(),
        source: None,
        created_at: chrono::Utc::now(),
    };
    let transition = sales_agent::domain::Transition::markers(vec![sales_agent::domain::MarkerChange::Suppress(entry)]);
    sales_agent::ports::Ledger::commit(&stack.inspector, &transition).await.unwrap();
    draft_everything(&stack).await;
    let mapping = stack.mapping(&stack.queues.urls.send, &stack.queues.arns.send, 1);
    stack.proxy.as_ref().unwrap().replan(FaultPlan { unprocessed_batch_gets: true, ..FaultPlan::default() });

    let report = mapping.poll(&stack.runtime.send_step()).await;

    assert_eq!(report.failed, report.received, "an unanswered lookup is retried, never read as 'not suppressed'");
    assert!(stack.emails().await.is_empty());
    stack.proxy.as_ref().unwrap().replan(FaultPlan::default());
    stack.settle(1).await;
    let audit = audit(&stack, &execution_id).await;
    println!("{}", audit.row("suppression reads left unprocessed (throttled)", &faults_of(&stack)));
    audit.assert_kept("unprocessed reads");
    assert!(!stack.emails().await.iter().any(|(to, _)| to.contains(&suppressed)), "the suppressed address got nothing");
    assert_eq!(audit.emails, LEADS - 1);
}

#[tokio::test]
async fn an_unverified_sender_pauses_the_execution_fails_no_lead_and_resume_sends_after_the_fix() {
    let stack = deploy_with(default_secret(), Some(FaultPlan::default())).await;
    let sender = format!("rep@{}", uuid::Uuid::new_v4().simple());
    let spec: sales_agent::domain::AgentSpec =
        serde_json::from_value(sales_agent_tests::agent_spec_sending_as(&format!("{sender}.example"))).unwrap();
    let agent = spec.into_agent(sales_agent::domain::AgentId::generate(), chrono::Utc::now());
    sales_agent::ports::store::AgentStore::create_agent(&stack.inspector, &agent).await.unwrap();
    let leads: Vec<serde_json::Value> =
        (0..LEADS).map(|i| json!({"email": format!("lead{i}@{}", stack.lead_domain), "first_name": "Ada", "company": "Initech"})).collect();
    let (status, started) = stack.post(&format!("/api/v1/agents/{}/executions", agent.id), json!({"leads": leads})).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let execution_id = started["execution"]["id"].as_str().unwrap().to_string();

    stack.settle(1).await;

    let execution = stack.execution(&execution_id).await;
    assert_eq!(execution["state"], "paused", "{execution}");
    assert!(execution["pause_reason"].as_str().unwrap().contains("cannot send as configured: MessageRejected"), "{execution}");
    let paused = audit(&stack, &execution_id).await;
    println!("{}", paused.row("the sender identity is not verified", "SES MessageRejected (moto)"));
    assert_eq!((paused.emails, count(&paused, LeadStateKind::Failed)), (0, 0), "{paused:?}");

    aws_sdk_ses::Client::new(&stack.config).verify_email_identity().email_address(format!("{sender}.example")).send().await.unwrap();
    let (status, resumed) = stack.post(&format!("/api/v1/executions/{execution_id}/resume"), json!({})).await;
    assert_eq!((status, resumed["requeued_leads"].as_u64()), (StatusCode::OK, Some(LEADS as u64)), "{resumed}");
    stack.settle(1).await;
    let audit = audit(&stack, &execution_id).await;
    audit.assert_kept("after the identity was verified");
    assert_eq!((audit.emails, count(&audit, LeadStateKind::Sent)), (LEADS, LEADS as u64), "{audit:?}");
}

/// A start that failed half-way with `failing` is answered 503, left unreleased, and finished
/// by its retry with the same Idempotency-Key; it is never replayed as a success it was not.
async fn a_failed_start_is_finished_by_its_retry(scenario: &str, failing: (&'static str, &'static str)) -> (Stack, String) {
    let plan = FaultPlan { failing_calls: vec![failing], ..FaultPlan::default() };
    let stack = deploy_with(default_secret(), Some(plan)).await;
    let agent_id = stack.create_agent().await;
    let (status, refused) = stack.start_once(agent_id, "import-1", LEADS).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    let left = stack.inspector.find_execution_by_idempotency_key(agent_id, "import-1").await.unwrap().expect("the execution record");

    stack.proxy.as_ref().unwrap().replan(FaultPlan::default());
    let (status, retried) = stack.start_once(agent_id, "import-1", LEADS).await;

    assert_eq!((status, retried["replayed"].as_bool()), (StatusCode::OK, Some(true)), "{retried}");
    assert_eq!(retried["execution"]["id"].as_str(), Some(left.id.to_string().as_str()));
    assert_eq!(retried["execution"]["state"], "running");
    let execution_id = left.id.to_string();
    stack.settle(1).await;
    let audit = audit(&stack, &execution_id).await;
    println!("{}", audit.row(scenario, &faults_of(&stack)));
    audit.assert_kept(scenario);
    assert_eq!((audit.leads, audit.emails, count(&audit, LeadStateKind::Sent)), (LEADS, LEADS, LEADS as u64), "{audit:?}");
    (stack, execution_id)
}

#[tokio::test]
async fn a_start_whose_lead_writes_failed_is_finished_by_its_retry_never_replayed_as_success() {
    // The transactions that create the leads (they carry the execution's leads index key).
    let lead_writes = ("DynamoDB_20120810.TransactWriteItems", "#LEADS");
    a_failed_start_is_finished_by_its_retry("the start's lead writes fail, then its retry", lead_writes).await;
}

#[tokio::test]
async fn a_start_whose_enqueue_failed_enqueues_its_leads_on_the_retry() {
    a_failed_start_is_finished_by_its_retry("the start's enqueue fails, then its retry", ("AmazonSQS.SendMessageBatch", "")).await;
}

#[tokio::test]
async fn health_fails_while_the_store_cannot_be_written() {
    let stack = deploy_with(default_secret(), None).await;
    assert_eq!(stack.api("api-health.json", |_| {}).await.0, StatusCode::OK);
    aws_sdk_dynamodb::Client::new(&stack.config).delete_table().table_name(&stack.table).send().await.unwrap();
    let (status, problem) = stack.api("api-health.json", |_| {}).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
}
