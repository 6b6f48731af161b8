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

mod reviewer_edits {
    use axum::http::{Method, StatusCode};
    use sales_agent_tests::{TestApp, agent_spec};
    use serde_json::{Value, json};

    /// The app with keys required, and a key's token.
    async fn app_with_key() -> (TestApp, String) {
        let app = TestApp::configured(|settings| settings.auth_required = true);
        let output = sales_agent::admin::create_api_key(&app.runtime, "reviewer").await.unwrap();
        let token = output.lines().find(|l| l.starts_with("sa_")).expect("the token is printed").to_string();
        (app, token)
    }

    async fn call(app: &TestApp, token: &str, method: Method, uri: &str, content_type: &str, body: String) -> (StatusCode, Value) {
        let bearer = format!("Bearer {token}");
        let reply = app.request(method, uri, Some(content_type), body, &[("authorization", bearer.as_str())]).await;
        (reply.status, reply.body)
    }

    #[tokio::test]
    async fn an_edit_passes_the_same_guards_and_a_claim_the_reviewer_accepts_is_logged_with_their_key() {
        let (app, token) = app_with_key().await;
        let key_id = token.trim_start_matches("sa_").split('.').next().unwrap().to_string();
        let mut spec = agent_spec();
        spec["require_approval"] = json!(true);
        let (_, agent) = call(&app, &token, Method::POST, "/api/v1/agents", "application/json", spec.to_string()).await;
        let uri = format!("/api/v1/agents/{}/executions", agent["id"].as_str().unwrap());
        let csv = "email,first_name,company\nada@initech.example,Ada,Initech\n".to_string();
        let (status, started) = call(&app, &token, Method::POST, &uri, "text/csv", csv).await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        app.drain().await;
        let execution_id = started["execution"]["id"].as_str().unwrap();
        let (_, leads) =
            call(&app, &token, Method::GET, &format!("/api/v1/executions/{execution_id}/leads"), "application/json", String::new()).await;
        let lead_id = leads["items"][0]["id"].as_str().unwrap().to_string();
        let approve = format!("/api/v1/leads/{lead_id}/approve");
        let (_, before) = call(&app, &token, Method::GET, &format!("/api/v1/leads/{lead_id}"), "application/json", String::new()).await;

        // A huge body with three links, one a shortener, greeting someone else.
        let spammy = format!(
            "Hi Grace,\n\nSee https://northwind.example, www.northwind.example/pricing and bit.ly/x about Initech.\n\n{}",
            "More words. ".repeat(90_000)
        );
        let (status, problem) = call(&app, &token, Method::POST, &approve, "application/json", json!({"body": spammy}).to_string()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        let messages: Vec<&str> = problem["errors"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
        for expected in ["longer than", "3 links", "'bit.ly'", "greeting addresses 'Grace'"] {
            assert!(messages.iter().any(|m| m.contains(expected)), "{expected} missing from {messages:?}");
        }
        assert!(problem["errors"].as_array().unwrap().iter().all(|e| e["field"] == "body"), "{problem}");

        // A claim research never found is refused by name, and the draft stays as it was.
        let edit = json!({"subject": "Initech's Series B", "body": "Hi Ada,\n\nCongrats on the Series B. Worth a short call?\n\nDana"});
        let (status, problem) = call(&app, &token, Method::POST, &approve, "application/json", edit.to_string()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("accept_claims"), "{problem}");
        let refused: Vec<(String, String)> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].as_str().unwrap().to_string(), e["message"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(refused, [("body".to_string(), "the name 'Series B' is not in the research, the lead record or the brief".to_string())]);
        let (_, after) = call(&app, &token, Method::GET, &format!("/api/v1/leads/{lead_id}"), "application/json", String::new()).await;
        assert_eq!(after["draft"], before["draft"], "a refused edit changes nothing");
        assert_eq!(after["state"], "awaiting_approval");

        // The reviewer knows better and accepts the claim by name.
        let mut accepted = edit.clone();
        accepted["accept_claims"] = json!(["Series B"]);
        let (status, lead) = call(&app, &token, Method::POST, &approve, "application/json", accepted.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{lead}");
        let (status, late) = call(&app, &token, Method::POST, &approve, "application/json", edit.to_string()).await;
        assert_eq!(status, StatusCode::CONFLICT, "an edit after the approval would never be sent: {late}");
        app.drain().await;
        let emails = app.emails();
        assert_eq!(emails.len(), 1);
        assert!(emails[0].contains("Congrats on the Series B."));
        let logs_uri = format!("/api/v1/executions/{execution_id}/logs?limit=500");
        let (_, logs) = call(&app, &token, Method::GET, &logs_uri, "application/json", String::new()).await;
        let edited =
            logs["items"].as_array().unwrap().iter().find(|e| e["event"] == "lead.approved").expect("the approval is logged").clone();
        assert_eq!(edited["data"]["reviewer"], format!("API key {key_id}"));
        assert_eq!(edited["data"]["accepted_claims"], json!(["Series B"]));
        assert!(edited["message"].as_str().unwrap().contains("accepted: Series B"), "{edited}");
    }
}
