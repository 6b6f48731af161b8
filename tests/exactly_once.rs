//! Sending exactly once: duplicate deliveries, racing workers, a crash between the send and the
//! state write, and mailer refusals.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use sales_agent::app::StepOutcome;
use sales_agent::domain::outreach_email::OutreachEmail;
use sales_agent::ports::{Clock, MailError, Mailer, SendReceipt, StepMessage};
use sales_agent_tests::faults::DiesAfterSending;
use sales_agent_tests::{TestApp, agent_spec};
use tokio::sync::Notify;

/// Starts a one-lead execution and runs research and drafting, so the send step is next.
async fn drafted_lead(app: &TestApp) -> StepMessage {
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    let lead = &app.leads(&execution_id).await[0];
    let message =
        StepMessage { execution_id: execution_id.parse().unwrap(), lead_id: lead["id"].as_str().unwrap().parse().unwrap(), step: 0 };
    assert_eq!(app.runtime.research_step().handle(&message).await.unwrap(), StepOutcome::Advanced);
    assert_eq!(app.runtime.draft_step().handle(&message).await.unwrap(), StepOutcome::Advanced);
    message
}

async fn lead_state(app: &TestApp, message: &StepMessage) -> serde_json::Value {
    app.get(&format!("/api/v1/leads/{}", message.lead_id)).await.body
}

#[tokio::test]
async fn given_a_send_message_delivered_three_times_then_one_email_leaves() {
    let app = TestApp::new();
    let message = drafted_lead(&app).await;
    let send = app.runtime.send_step();

    let outcomes = [send.handle(&message).await.unwrap(), send.handle(&message).await.unwrap(), send.handle(&message).await.unwrap()];

    assert_eq!(outcomes, [StepOutcome::Advanced, StepOutcome::AlreadyDone, StepOutcome::AlreadyDone]);
    assert_eq!(app.emails().len(), 1);
    let lead = lead_state(&app, &message).await;
    assert_eq!(lead["state"], "sent");
    assert_eq!(lead["sent_messages"].as_array().unwrap().len(), 1);
    assert_eq!(app.execution(&message.execution_id.to_string()).await["counters"]["sent"], 1);
}

#[tokio::test]
async fn given_three_workers_racing_on_one_lead_then_one_email_leaves() {
    let app = TestApp::new();
    let message = drafted_lead(&app).await;
    let (a, b, c) = (app.runtime.send_step(), app.runtime.send_step(), app.runtime.send_step());

    let (ra, rb, rc) = tokio::join!(a.handle(&message), b.handle(&message), c.handle(&message));

    let results = [ra, rb, rc];
    let advanced = results.iter().filter(|r| matches!(r, Ok(StepOutcome::Advanced))).count();
    assert_eq!(advanced, 1, "{results:?}");
    for result in &results {
        match result {
            Ok(StepOutcome::Advanced | StepOutcome::AlreadyDone) => {}
            // A loser that met the winner's fresh claim waits for it instead of parking the lead.
            Err(waiting) => assert!(waiting.0.contains("in flight"), "{waiting}"),
            other => panic!("a lost race is not an ambiguity: {other:?}"),
        }
    }
    assert_eq!(app.emails().len(), 1);
    assert_eq!(app.runtime.send_step().handle(&message).await.unwrap(), StepOutcome::AlreadyDone, "the retry finds it sent");
    assert_eq!(app.emails().len(), 1);
}

#[tokio::test]
async fn given_a_crash_between_the_send_and_the_state_write_then_the_redelivery_parks_the_lead_and_sends_nothing() {
    let app = TestApp::new();
    let message = drafted_lead(&app).await;
    let sent = Arc::new(Notify::new());
    let mut crashing = app.runtime.clone();
    crashing.mailer = Arc::new(DiesAfterSending { mailer: app.runtime.mailer.clone(), sent: sent.clone() });
    let doomed = crashing.send_step();
    let delivery = tokio::spawn({
        let message = message.clone();
        async move { doomed.handle(&message).await }
    });
    sent.notified().await;
    delivery.abort();
    assert_eq!(app.emails().len(), 1);
    assert_eq!(lead_state(&app, &message).await["state"], "sending");

    // A redelivery while the claim is young may meet a live worker: it waits, it does not park.
    let waiting = app.runtime.send_step().handle(&message).await.unwrap_err();
    assert!(waiting.0.contains("in flight"), "{waiting}");
    assert_eq!(lead_state(&app, &message).await["state"], "sending");

    // Past the send timeout no live worker can own the claim.
    app.clock.advance(chrono::Duration::minutes(3));
    let outcome = app.runtime.send_step().handle(&message).await.unwrap();

    assert_eq!(outcome, StepOutcome::Parked);
    assert_eq!(app.emails().len(), 1, "no second email");
    let lead = lead_state(&app, &message).await;
    assert_eq!(lead["state"], "parked");
    assert!(lead["reason"].as_str().unwrap().contains("may or may not have left"));
    let parked = app.get("/api/v1/leads?state=parked").await;
    assert_eq!(parked.body["items"].as_array().unwrap().len(), 1, "a person can find parked leads");
    let logs = app.get(&format!("/api/v1/executions/{}/logs?limit=500", message.execution_id)).await;
    assert!(logs.body["items"].as_array().unwrap().iter().any(|e| e["event"] == "lead.parked" && e["level"] == "error"));
    assert_eq!(app.runtime.send_step().handle(&message).await.unwrap(), StepOutcome::Ignored("lead is parked".into()));
    assert_eq!(app.emails().len(), 1);
}

/// Refuses the first `refusals` sends with a throttling error, then delegates.
struct ThrottledAtFirst {
    outbox: Arc<dyn Mailer>,
    refusals: AtomicUsize,
}

#[async_trait]
impl Mailer for ThrottledAtFirst {
    async fn send(&self, email: &OutreachEmail) -> Result<SendReceipt, MailError> {
        if self.refusals.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(MailError::Retryable("Throttling: Maximum sending rate exceeded".into()));
        }
        self.outbox.send(email).await
    }
}

#[tokio::test]
async fn given_a_throttled_mailer_then_the_lead_waits_without_a_queued_message_and_the_retry_sends_one_email() {
    let app = TestApp::new();
    let message = drafted_lead(&app).await;
    let mut throttled = app.runtime.clone();
    throttled.mailer = Arc::new(ThrottledAtFirst { outbox: app.runtime.mailer.clone(), refusals: AtomicUsize::new(2) });
    let send = throttled.send_step();

    assert_eq!(send.handle(&message).await.unwrap(), StepOutcome::Waiting, "a throttled send waits");
    let lead = lead_state(&app, &message).await;
    assert_eq!(lead["state"], "waiting", "the claim was given back and the lead waits: {lead}");
    assert_eq!(lead["send_retries"], 1);
    let until: chrono::DateTime<chrono::Utc> = lead["until"].as_str().unwrap().parse().unwrap();
    assert_eq!(until - app.clock.now(), chrono::Duration::minutes(1), "the first retry waits a minute");
    assert_eq!(send.handle(&message).await.unwrap(), StepOutcome::Ignored("lead is waiting".into()), "a duplicate delivery sends nothing");

    app.clock.advance(chrono::Duration::minutes(2));
    app.run_scheduled().await;
    app.drain().await;
    assert_eq!(lead_state(&app, &message).await["state"], "sent", "sent once the wait is over");
    assert_eq!(app.emails().len(), 1);
    assert_eq!(lead_state(&app, &message).await["send_retries"], serde_json::Value::Null, "the count ends with the send");
}

struct Answers(fn() -> MailError);

#[async_trait]
impl Mailer for Answers {
    async fn send(&self, _email: &OutreachEmail) -> Result<SendReceipt, MailError> {
        Err((self.0)())
    }
}

#[tokio::test]
async fn a_rejected_send_fails_the_lead_and_an_ambiguous_one_parks_it() {
    for (answer, state) in [
        (Answers(|| MailError::Rejected("550 recipient unknown".into())), "failed"),
        (Answers(|| MailError::Ambiguous("connection reset after DATA".into())), "parked"),
    ] {
        let app = TestApp::new();
        let message = drafted_lead(&app).await;
        let mut runtime = app.runtime.clone();
        runtime.mailer = Arc::new(answer);
        runtime.send_step().handle(&message).await.unwrap();
        let lead = lead_state(&app, &message).await;
        assert_eq!(lead["state"], state, "{lead}");
        assert!(app.runtime.send_step().handle(&message).await.is_ok());
        assert!(app.emails().is_empty());
    }
}

#[tokio::test]
async fn a_send_the_providers_rate_has_no_turn_for_waits_a_minute_without_counting_as_a_refusal() {
    let app = TestApp::new();
    let message = drafted_lead(&app).await;
    let mut runtime = app.runtime.clone();
    runtime.mailer = Arc::new(Answers(|| MailError::Paced(std::time::Duration::from_secs(4))));
    assert_eq!(runtime.send_step().handle(&message).await.unwrap(), StepOutcome::Waiting);
    let lead = lead_state(&app, &message).await;
    assert_eq!(lead["state"], "waiting", "{lead}");
    assert_eq!(lead["send_retries"], serde_json::Value::Null);
    let until: chrono::DateTime<chrono::Utc> = lead["until"].as_str().unwrap().parse().unwrap();
    assert_eq!(until - app.clock.now(), chrono::Duration::minutes(1));
    assert!(app.emails().is_empty());
}
