//! Every draft passes the guards before it can be sent; a refused draft is written again with
//! the reasons, and after the last try the lead fails with them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use sales_agent::domain::EmailDraft;
use sales_agent::ports::{DraftError, DraftOutcome, DraftRequest, Drafter};
use sales_agent_tests::{TestApp, agent_spec, header};
use serde_json::json;

#[tokio::test]
async fn a_template_that_reads_as_spam_fails_the_lead_with_the_reason_and_sends_nothing() {
    let app = TestApp::new();
    let mut spec = agent_spec();
    spec["sequence"][0]["body"] = json!("Hi {{first_name}}, act now: this offer is guaranteed.");
    let agent_id = app.create_agent(&spec).await;
    let execution_id = app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;

    app.drain().await;

    assert!(app.emails().is_empty());
    let lead = &app.leads(&execution_id).await[0];
    assert_eq!(lead["state"], "failed");
    let reason = lead["reason"].as_str().unwrap();
    assert!(reason.contains("refused after 2 attempts") && reason.contains("'act now'") && reason.contains("'guaranteed'"), "{reason}");
    let logs = app.get(&format!("/api/v1/executions/{execution_id}/logs?limit=500")).await;
    assert!(logs.body["items"].as_array().unwrap().iter().any(|e| e["event"] == "lead.draft_refused"));
}

/// Greets the wrong person first; writes a correct draft once told why.
struct LearnsFromFeedback {
    calls: AtomicUsize,
    feedback_seen: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl Drafter for LearnsFromFeedback {
    async fn draft(&self, request: DraftRequest<'_>) -> Result<DraftOutcome, DraftError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.feedback_seen.lock().unwrap().extend(request.feedback.iter().cloned());
        let name = if request.feedback.is_empty() { "Grace" } else { request.lead.contact.first_name.as_str() };
        Ok(DraftOutcome {
            draft: EmailDraft {
                lead_id: request.lead.id,
                step: request.step,
                subject: format!("{} and forecasting", request.lead.contact.company),
                body: format!("Hi {name},\n\nA short note."),
                facts_used: vec![],
                drafted_by: "llm:test".into(),
                created_at: chrono::Utc::now(),
            },
            usage: None,
            transcript: None,
        })
    }
}

#[tokio::test]
async fn a_refused_draft_is_written_again_with_the_reasons_and_the_better_one_is_sent() {
    let mut app = TestApp::new();
    let drafter = Arc::new(LearnsFromFeedback { calls: AtomicUsize::new(0), feedback_seen: Default::default() });
    let mut runtime = app.runtime.clone();
    runtime.drafter = drafter.clone();
    app = TestApp::from_runtime(runtime, app.clock.clone()).keeping(app);
    let agent_id = app.create_agent(&agent_spec()).await;
    app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;

    app.drain().await;

    assert_eq!(drafter.calls.load(Ordering::SeqCst), 2);
    assert_eq!(*drafter.feedback_seen.lock().unwrap(), ["the greeting addresses 'Grace', but the lead's first name is 'Ada'"]);
    let emails = app.emails();
    assert_eq!(emails.len(), 1);
    assert!(emails[0].contains("Hi Ada,"));
    assert_eq!(header(&emails[0], "Subject"), Some("Initech and forecasting"));
}
