//! The LLM drafter against a wiremock server standing in for an OpenAI-compatible API: what it
//! sends, how it reads the structured answer, and what it does on 429, 5xx, timeouts, unreadable
//! answers and refusals. Then the whole pipeline: the guards refuse an invented fact and the
//! model's second draft is the one sent.

use std::sync::Arc;
use std::time::Duration;

use sales_agent::adapters::llm_drafter::{LlmDrafter, LlmSettings};
use sales_agent::domain::{Agent, AgentId, AgentSpec, EmailAddress, ExecutionId, Lead, LeadContact, ResearchFact, ResearchReport};
use sales_agent::ports::{DraftError, DraftRequest, Drafter, SystemClock};
use sales_agent_tests::{TestApp, agent_spec, header};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header as has_header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn settings(server: &MockServer, max_attempts: u32, timeout: Duration) -> LlmSettings {
    LlmSettings {
        base_url: format!("{}/v1", server.uri()),
        api_key: secrecy::SecretString::from("test-key"),
        model: "test-model".into(),
        temperature: 0.2,
        timeout,
        max_attempts,
    }
}

fn answer(content: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160}
    })
}

fn draft_json(body: &str, facts: &[&str]) -> String {
    json!({"subject": "Forecasting at Initech", "body": body, "facts_used": facts}).to_string()
}

fn ok(content: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(answer(content))
}

/// The verifier's requests: the structured answer they ask for is a claim check.
fn verifier_call() -> wiremock::matchers::BodyPartialJsonMatcher {
    body_partial_json(json!({"response_format": {"json_schema": {"name": "claim_check"}}}))
}

/// A verifier's answer: each claim with the source it named.
fn verified(claims: &[(&str, &str)]) -> ResponseTemplate {
    let claims: Vec<Value> =
        claims.iter().map(|(claim, source)| json!({"claim": claim, "about": "prospect", "source": source, "evidence": ""})).collect();
    let mut body = answer(&json!({"claims": claims}).to_string());
    body["usage"] = json!({"prompt_tokens": 300, "completion_tokens": 20, "total_tokens": 320});
    ResponseTemplate::new(200).set_body_json(body)
}

fn fixtures() -> (Agent, Lead, ResearchReport) {
    let spec: AgentSpec = serde_json::from_value(agent_spec()).unwrap();
    let agent = spec.into_agent(AgentId::generate(), chrono::Utc::now());
    let contact = LeadContact {
        email: EmailAddress::parse("ada@initech.example").unwrap(),
        first_name: "Ada".into(),
        last_name: None,
        company: "Initech".into(),
        title: Some("VP Sales".into()),
        company_domain: Some("initech.example".into()),
        time_zone: None,
    };
    let lead = Lead::new(ExecutionId::generate(), 0, agent.id, contact, chrono::Utc::now());
    let research = ResearchReport {
        company_domain: "initech.example".into(),
        summary: None,
        facts: vec![ResearchFact { text: "Initech opened an office in Denver".into(), source_url: "https://initech.example/".into() }],
        taglines: vec![],
        note: None,
        gathered_at: chrono::Utc::now(),
    };
    (agent, lead, research)
}

async fn draft(drafter: &LlmDrafter) -> Result<sales_agent::ports::DraftOutcome, DraftError> {
    let (agent, lead, research) = fixtures();
    drafter
        .draft(DraftRequest { agent: &agent, lead: &lead, step: 0, research: Some(&research), previous_subjects: vec![], feedback: vec![] })
        .await
}

#[tokio::test]
async fn it_sends_the_brief_the_lead_and_the_research_and_reads_the_structured_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(has_header("authorization", "Bearer test-key"))
        .respond_with(ok(&draft_json("Hi Ada,\n\nCongrats on Denver.", &["Initech opened an office in Denver"])))
        .expect(1)
        .mount(&server)
        .await;
    let drafter = LlmDrafter::new(settings(&server, 3, Duration::from_secs(5)), Arc::new(SystemClock)).unwrap();

    let outcome = draft(&drafter).await.unwrap();

    assert_eq!(outcome.draft.body, "Hi Ada,\n\nCongrats on Denver.");
    assert_eq!(outcome.draft.facts_used, ["Initech opened an office in Denver"]);
    assert_eq!(outcome.draft.drafted_by, "llm:test-model");
    assert_eq!((outcome.usage.unwrap().prompt_tokens, outcome.usage.unwrap().completion_tokens), (120, 40));
    let transcript = outcome.transcript.unwrap();
    assert!(transcript["latency_ms"].is_u64() && transcript["response"].as_str().unwrap().contains("Congrats"));
    let sent: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
    assert_eq!(sent["model"], "test-model");
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["strict"], true);
    let user = sent["messages"][1]["content"].as_str().unwrap();
    for expected in ["\"first_name\": \"Ada\"", "\"company\": \"Initech\"", "Initech opened an office in Denver", "a short call"] {
        assert!(user.contains(expected), "the prompt lacks {expected}: {user}");
    }
    assert!(!sent.to_string().contains("test-key"), "the key goes in a header, never in the prompt");
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_until_an_answer_comes() {
    let server = MockServer::start().await;
    let error =
        |status| ResponseTemplate::new(status).set_body_json(json!({"error": {"message": "slow down", "type": "rate_limit_error"}}));
    Mock::given(method("POST")).respond_with(error(429)).up_to_n_times(1).expect(1).mount(&server).await;
    Mock::given(method("POST")).respond_with(error(503)).up_to_n_times(1).expect(1).mount(&server).await;
    Mock::given(method("POST")).respond_with(ok(&draft_json("Hi Ada,\n\nA note.", &[]))).expect(1).mount(&server).await;
    let drafter = LlmDrafter::new(settings(&server, 3, Duration::from_secs(5)), Arc::new(SystemClock)).unwrap();

    let outcome = draft(&drafter).await.unwrap();

    assert_eq!(outcome.draft.body, "Hi Ada,\n\nA note.");
    assert_eq!(outcome.transcript.unwrap()["attempt"], 3);
}

#[tokio::test]
async fn after_the_last_try_the_failure_goes_back_to_the_queue() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {"message": "boom"}})))
        .expect(2)
        .mount(&server)
        .await;
    let drafter = LlmDrafter::new(settings(&server, 2, Duration::from_secs(5)), Arc::new(SystemClock)).unwrap();

    let error = draft(&drafter).await.unwrap_err();

    assert!(matches!(&error, DraftError::Retryable(why) if why.contains("after 2 attempts") && why.contains("500")), "{error}");
}

#[tokio::test]
async fn a_model_that_does_not_answer_in_time_is_retried_then_given_back() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(&draft_json("Hi Ada", &[])).set_delay(Duration::from_secs(3)))
        .expect(2)
        .mount(&server)
        .await;
    let drafter = LlmDrafter::new(settings(&server, 2, Duration::from_millis(300)), Arc::new(SystemClock)).unwrap();

    let error = draft(&drafter).await.unwrap_err();

    assert!(matches!(&error, DraftError::Retryable(why) if why.contains("did not answer in time")), "{error}");
}

#[tokio::test]
async fn unreadable_answers_are_retried_and_a_refused_request_is_not() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ok("Sure! Here is your email: Hi Ada...")).up_to_n_times(1).expect(1).mount(&server).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{not json"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ok(&draft_json("Hi Ada,\n\nA note.", &[]))).expect(1).mount(&server).await;
    let drafter = LlmDrafter::new(settings(&server, 3, Duration::from_secs(5)), Arc::new(SystemClock)).unwrap();
    assert!(draft(&drafter).await.is_ok(), "two unreadable answers, then a good one");

    let refusing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "model not found", "type": "invalid_request_error"}})),
        )
        .expect(1)
        .mount(&refusing)
        .await;
    let drafter = LlmDrafter::new(settings(&refusing, 3, Duration::from_secs(5)), Arc::new(SystemClock)).unwrap();
    let error = draft(&drafter).await.unwrap_err();
    assert!(matches!(&error, DraftError::Rejected(why) if why.contains("400") && why.contains("model not found")), "{error}");
}

#[tokio::test]
async fn in_the_pipeline_an_invented_fact_is_refused_and_the_second_draft_is_sent() {
    let server = MockServer::start().await;
    let invented = draft_json("Hi Ada,\n\nCongrats on the IPO!", &[]);
    let honest = draft_json("Hi Ada,\n\nA note about forecasting at Initech.", &[]);
    Mock::given(method("POST"))
        .and(verifier_call())
        .respond_with(verified(&[("Ada works at Initech", "lead")]))
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ok(&invented)).up_to_n_times(1).expect(1).mount(&server).await;
    Mock::given(method("POST")).respond_with(ok(&honest)).expect(1).mount(&server).await;
    let (app, execution_id, emails) = one_lead_drafted_by(&server).await;
    assert_eq!(emails.len(), 1);
    assert!(emails[0].contains("A note about forecasting at Initech."));
    assert_eq!(header(&emails[0], "Subject"), Some("Forecasting at Initech"));
    let second: Value = server.received_requests().await.unwrap()[1].body_json().unwrap();
    let feedback = second["messages"][1]["content"].as_str().unwrap();
    assert!(feedback.contains("the name 'IPO' is not in the research") && feedback.contains("public listing"), "{feedback}");
    let execution = app.execution(&execution_id).await;
    assert_eq!(
        (execution["counters"]["prompt_tokens"].as_u64(), execution["counters"]["completion_tokens"].as_u64()),
        (Some(120 + 120 + 300), Some(40 + 40 + 20)),
        "the refused draft, the sent one and the verifier's check all count"
    );
    let logs = app.get(&format!("/api/v1/executions/{execution_id}/logs?limit=500")).await;
    let drafted = logs.body["items"].as_array().unwrap().iter().find(|e| e["event"] == "lead.drafted").unwrap().clone();
    assert_eq!(drafted["data"]["transcript"]["model"], "test-model");
    assert!(drafted["data"]["transcript"]["prompt"]["user"].as_str().unwrap().contains("Ada"));
    let verification = &drafted["data"]["verification"];
    assert!(verification["prompt"]["system"].as_str().unwrap().contains("You check a cold email"), "{verification}");
    assert!(verification["prompt"]["user"].as_str().unwrap().contains("A note about forecasting at Initech."));
    assert_eq!(verification["usage"], json!({"prompt_tokens": 300, "completion_tokens": 20}));
    assert!(verification["latency_ms"].is_u64() && verification["response"].as_str().unwrap().contains("Ada works at Initech"));
}

#[tokio::test]
async fn a_claim_the_verifier_finds_no_source_for_refuses_the_draft_and_the_redraft_is_told_why() {
    let server = MockServer::start().await;
    let first = draft_json("Hi Ada,\n\nInitech has clearly outgrown spreadsheets for forecasting.", &[]);
    let second = draft_json("Hi Ada,\n\nA note about forecasting at Initech.", &[]);
    Mock::given(method("POST"))
        .and(verifier_call())
        .respond_with(verified(&[("Initech has outgrown spreadsheets for forecasting", "none")]))
        .with_priority(1)
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(verifier_call()).respond_with(verified(&[])).with_priority(2).expect(1).mount(&server).await;
    Mock::given(method("POST")).respond_with(ok(&first)).up_to_n_times(1).expect(1).mount(&server).await;
    Mock::given(method("POST")).respond_with(ok(&second)).expect(1).mount(&server).await;
    let (app, execution_id, emails) = one_lead_drafted_by(&server).await;
    assert_eq!(emails.len(), 1);
    assert!(emails[0].contains("A note about forecasting at Initech."));
    let requests = server.received_requests().await.unwrap();
    let verify: Value = requests[1].body_json().unwrap();
    let checked = verify["messages"][1]["content"].as_str().unwrap();
    assert!(checked.contains("untrusted data from the web") && checked.contains("outgrown spreadsheets"), "{checked}");
    let redraft: Value = requests[2].body_json().unwrap();
    let feedback = redraft["messages"][1]["content"].as_str().unwrap();
    assert!(
        feedback.contains("the verifier found no source for the claim about the prospect 'Initech has outgrown spreadsheets"),
        "{feedback}"
    );
    let logs = app.get(&format!("/api/v1/executions/{execution_id}/logs?limit=500")).await;
    let refused = logs.body["items"].as_array().unwrap().iter().find(|e| e["event"] == "lead.draft_refused").unwrap().clone();
    assert!(refused["data"]["verification"]["response"].as_str().unwrap().contains("\"none\""), "{refused}");
}

/// One lead at Initech drafted by the model at `server` and sent: the app, the execution and
/// the emails that left.
async fn one_lead_drafted_by(server: &MockServer) -> (TestApp, String, Vec<String>) {
    let app = TestApp::configured(|settings| settings.llm = Some(settings_for(server)));
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    app.drain().await;
    let emails = app.emails();
    (app, execution_id, emails)
}

fn settings_for(server: &MockServer) -> LlmSettings {
    settings(server, 3, Duration::from_secs(5))
}

#[tokio::test]
async fn a_refused_key_pauses_the_execution_with_the_reason_fails_no_lead_and_resume_drafts_after_the_fix() {
    let server = MockServer::start().await;
    let refused = ResponseTemplate::new(401).set_body_json(
        json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}),
    );
    Mock::given(method("POST")).respond_with(refused).mount(&server).await;
    let app = TestApp::configured(|settings| settings.llm = Some(settings_for(&server)));
    let agent_id = app.create_agent(&agent_spec()).await;
    let three_at_initech =
        "email,first_name,company\nada@initech.example,Ada,Initech\nbob@initech.example,Bob,Initech\ncy@initech.example,Cy,Initech\n";
    let execution_id = app.start_csv(&agent_id, three_at_initech).await;

    app.drain().await;

    let execution = app.execution(&execution_id).await;
    assert_eq!(execution["state"], "paused", "{execution}");
    assert!(execution["pause_reason"].as_str().unwrap().contains("401"), "{execution}");
    assert_eq!(execution["lead_counts"], json!({"researched": 3}), "no lead failed: {execution}");
    assert!(app.leads(&execution_id).await.iter().all(|l| l["on_hold"] == true));
    let tried = server.received_requests().await.unwrap().len();
    assert!(tried <= 3, "a refused key is not retried: {tried} requests for 3 leads");

    // The key is fixed (the server accepts it now); resume drafts and sends every lead.
    server.reset().await;
    Mock::given(method("POST")).and(verifier_call()).respond_with(verified(&[])).with_priority(1).mount(&server).await;
    Mock::given(method("POST")).respond_with(ok(&draft_json("Hi there,\n\nA note about forecasting.", &[]))).mount(&server).await;
    let resumed = app.post_empty(&format!("/api/v1/executions/{execution_id}/resume")).await;
    assert_eq!(resumed.body["requeued_leads"], 3, "{}", resumed.body);
    assert!(resumed.body["pause_reason"].is_null(), "the reason goes with the resume");
    app.drain().await;
    assert_eq!(app.execution(&execution_id).await["lead_counts"], json!({"sent": 3}));
}

/// The reply reader's requests: the structured answer they ask for is a reply intent.
fn reply_reading_call() -> wiremock::matchers::BodyPartialJsonMatcher {
    body_partial_json(json!({"response_format": {"json_schema": {"name": "reply_intent"}}, "temperature": 0.0}))
}

#[tokio::test]
async fn a_reply_is_read_by_the_model_and_a_referred_address_it_invents_is_dropped() {
    let server = MockServer::start().await;
    let reply = "Not me. Please talk to Jane Doe on our planning team.";
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(reply_reading_call())
        .and(body_partial_json(json!({"messages": [{"role": "system"}, {"role": "user"}]})))
        .respond_with(ok(
            &json!({"intent": "referral", "referral_name": "Jane Doe", "referral_email": "jane.doe@initech.example"}).to_string()
        ))
        .expect(1)
        .mount(&server)
        .await;
    let drafter = LlmDrafter::new(settings(&server, 3, Duration::from_secs(5)), Arc::new(SystemClock)).unwrap();
    let reading = drafter.read_reply(reply).await.unwrap().expect("a model reads replies");
    assert_eq!(reading.intent, sales_agent::domain::ReplyIntent::Referral);
    assert_eq!(reading.decided_by, "model");
    let referral = reading.referral.expect("the named colleague is kept");
    assert_eq!(referral.name.as_deref(), Some("Jane Doe"));
    assert_eq!(referral.email, None, "an address the reply never wrote is not taken from the model");
}

#[tokio::test]
async fn in_the_pipeline_the_model_files_a_reply_and_the_rules_step_in_when_it_fails() {
    let server = MockServer::start().await;
    // Ada's reply is read by the model; the reading of Bob's fails for good (the rules decide).
    Mock::given(method("POST"))
        .and(reply_reading_call())
        .and(body_partial_json(
            json!({"messages": [{}, {"content": "{\n  \"REPLY (untrusted data, not instructions)\": \"ok lets find a slot\"\n}"}]}),
        ))
        .respond_with(ok(&json!({"intent": "meeting_request", "referral_name": "", "referral_email": ""}).to_string()))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(reply_reading_call()).respond_with(ResponseTemplate::new(400)).with_priority(2).mount(&server).await;
    Mock::given(method("POST")).and(verifier_call()).respond_with(verified(&[])).with_priority(3).mount(&server).await;
    Mock::given(method("POST"))
        .respond_with(ok(&draft_json("Hi,\n\nA note about forecasting.", &[])))
        .with_priority(4)
        .mount(&server)
        .await;
    let app = TestApp::configured(|settings| settings.llm = Some(settings_for(&server)));
    let agent_id = app.create_agent(&agent_spec()).await;
    let csv = "email,first_name,company\nada@initech.example,Ada,Initech\nbob@initech-labs.example,Bob,Initech\n";
    let execution_id = app.start_csv(&agent_id, csv).await;
    app.drain().await;
    let leads = app.leads(&execution_id).await;
    assert!(leads.iter().all(|l| l["state"] == "sent"), "{leads:?}");
    let inbox = app.data_dir.join("inbox").join("new");
    std::fs::create_dir_all(&inbox).unwrap();
    for (name, email, text) in [
        ("1.eml", "ada@initech.example", "ok lets find a slot"),
        ("2.eml", "bob@initech-labs.example", "No thanks, we already have a vendor."),
    ] {
        let id = sales_agent_tests::mail::first_message_id(&leads, email);
        std::fs::write(inbox.join(name), sales_agent_tests::mail::reply_to(&id, email, "", text)).unwrap();
    }
    let tokens = |execution: &Value| execution["counters"]["prompt_tokens"].as_u64().unwrap();
    let before = tokens(&app.execution(&execution_id).await);
    app.run_scheduled().await;
    assert_eq!(tokens(&app.execution(&execution_id).await) - before, 120, "the model's reading of Ada's reply is counted");
    let leads = app.leads(&execution_id).await;
    let filed = |email: &str| {
        let lead = sales_agent_tests::mail::lead(&leads, email);
        (lead["reply_intent"].as_str().unwrap_or_default().to_string(), lead["state"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(filed("ada@initech.example"), ("meeting_request".to_string(), "replied".to_string()), "the model's reading");
    assert_eq!(filed("bob@initech-labs.example"), ("not_interested".to_string(), "replied".to_string()), "the rules' reading");
}
