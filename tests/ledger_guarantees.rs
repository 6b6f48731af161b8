//! The guarantees the ledger gives, driven through the API of the local runtime: unsubscribe
//! links that cannot be forged, resumes that enqueue each held lead once however many run at
//! once, an Idempotency-Key bound to its request, one first email per prospect and agent across
//! executions, parked leads resolved through the API, the sweep that finds lost leads, and a
//! local server that answers only loopback names while it asks for no key.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sales_agent::app::StepOutcome;
use sales_agent::domain::transition::{SEND_CLAIM_TIMEOUT, STEP_BUDGET};
use sales_agent::ports::{FixedUnsubscribeKey, StepMessage, StepQueue};
use sales_agent_tests::faults::send_then_die;
use sales_agent_tests::{THREE_LEADS_CSV, TestApp, agent_spec, header};
use serde_json::json;
use tower::ServiceExt;

fn csv_of(count: usize) -> String {
    let mut csv = String::from("email,first_name,company\n");
    for i in 0..count {
        csv.push_str(&format!("lead{i}@initech.example,Lead,Initech\n"));
    }
    csv
}

/// The unsubscribe link of the first email in the outbox.
fn unsubscribe_token(app: &TestApp) -> String {
    let email = &app.emails()[0];
    let link = email.lines().find(|l| l.starts_with("List-Unsubscribe:")).expect("the header");
    let start = link.find("/unsubscribe/").unwrap() + "/unsubscribe/".len();
    link[start..].split('>').next().unwrap().to_string()
}

#[tokio::test]
async fn a_forged_unsubscribe_tag_of_any_shorter_length_is_refused_and_the_real_one_works() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    app.drain().await;
    let token = unsubscribe_token(&app);
    let (id_part, tag_part) = token.split_once('.').unwrap();
    let tag = URL_SAFE_NO_PAD.decode(tag_part).unwrap();

    // Every one-byte tag (what an attacker who knows the lead id would try first) ...
    for byte in 0..=255u8 {
        let forged = format!("{id_part}.{}", URL_SAFE_NO_PAD.encode([byte]));
        let reply = app.request(Method::POST, &format!("/unsubscribe/{forged}"), None, "List-Unsubscribe=One-Click", &[]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "one-byte tag {byte}");
    }
    // ... and every prefix of the real tag.
    for length in 0..tag.len() {
        let forged = format!("{id_part}.{}", URL_SAFE_NO_PAD.encode(&tag[..length]));
        let reply = app.request(Method::POST, &format!("/unsubscribe/{forged}"), None, "List-Unsubscribe=One-Click", &[]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "a {length}-byte prefix of the real tag");
    }
    assert_eq!(app.leads(&execution_id).await[0]["state"], "sent", "no forged link unsubscribed the lead");

    let reply = app.request(Method::POST, &format!("/unsubscribe/{token}"), None, "List-Unsubscribe=One-Click", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(app.leads(&execution_id).await[0]["state"], "unsubscribed");
}

#[tokio::test]
async fn while_the_signing_key_cannot_be_loaded_unsubscribe_answers_503_never_404() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    app.drain().await;
    let token = unsubscribe_token(&app);
    let mut keyless = app.runtime.clone();
    keyless.unsubscribe_keys = Arc::new(FixedUnsubscribeKey(None));
    let clock = app.clock.clone();
    let app = TestApp::from_runtime(keyless, clock).keeping(app);

    for method in [Method::GET, Method::POST] {
        let reply = app.request(method, &format!("/unsubscribe/{token}"), None, Body::empty(), &[]).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "a valid link is never called invalid: {}", reply.body);
    }
}

#[tokio::test]
async fn twenty_concurrent_resumes_enqueue_each_held_lead_once() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, &csv_of(90)).await;
    assert_eq!(app.post_empty(&format!("/api/v1/executions/{execution_id}/pause")).await.status, StatusCode::OK);
    app.drain().await;
    assert_eq!(app.get(&format!("/api/v1/leads?execution_id={execution_id}&limit=500")).await.body["items"].as_array().unwrap().len(), 90);
    assert_eq!(app.runtime.queue.depth(StepQueue::Research).await.unwrap(), 0, "the workers held every lead");

    let uri = format!("/api/v1/executions/{execution_id}/resume");
    let resumes = futures::future::join_all((0..20).map(|_| app.post_empty(&uri))).await;

    assert!(resumes.iter().all(|r| r.status == StatusCode::OK), "every resume answers");
    let requeued: u64 = resumes.iter().map(|r| r.body["requeued_leads"].as_u64().unwrap()).sum();
    assert_eq!(requeued, 90, "each held lead released by exactly one of the resumes");
    assert_eq!(app.runtime.queue.depth(StepQueue::Research).await.unwrap(), 90, "one message per held lead, not 20");
    app.drain().await;
    assert_eq!(app.emails().len(), 90);
}

#[tokio::test]
async fn a_large_resume_and_a_large_cancel_finish_in_the_background() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, &csv_of(250)).await;
    app.post_empty(&format!("/api/v1/executions/{execution_id}/pause")).await;
    app.drain().await;

    let resumed = app.post_empty(&format!("/api/v1/executions/{execution_id}/resume")).await;

    assert_eq!((resumed.body["requeued_leads"].as_u64(), resumed.body["continues_in_background"].as_bool()), (Some(100), Some(true)));
    app.drain().await;
    assert_eq!(app.emails().len(), 250, "the background continuation released the rest");

    let other = app.start_csv(&agent_id, &csv_of(250).replace("initech", "globex")).await;
    let cancelled = app.post_empty(&format!("/api/v1/executions/{other}/cancel")).await;
    assert_eq!((cancelled.body["skipped_leads"].as_u64(), cancelled.body["continues_in_background"].as_bool()), (Some(100), Some(true)));
    app.drain().await;
    assert_eq!(app.execution(&other).await["lead_counts"], json!({"skipped": 250}));
    assert_eq!(app.emails().len(), 250, "nothing of the cancelled execution was sent");
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_request_is_refused_and_the_same_request_is_replayed() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let uri = format!("/api/v1/agents/{agent_id}/executions");
    let first = json!({"leads": [{"email": "ada@initech.example", "first_name": "Ada", "company": "Initech"}]}).to_string();
    let other = json!({"leads": [{"email": "bob@globex.example", "first_name": "Bob", "company": "Globex"}]}).to_string();
    let post = |body: String| app.request(Method::POST, &uri, Some("application/json"), body, &[("idempotency-key", "march")]);

    let created = post(first.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let reused = post(other).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reused.body);
    assert_eq!(reused.problem_fields(), ["Idempotency-Key"]);
    let replayed = post(first).await;
    assert_eq!((replayed.status, replayed.body["replayed"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(replayed.body["execution"]["id"], created.body["execution"]["id"]);
    let executions = app.get(&format!("/api/v1/agents/{agent_id}/executions")).await;
    assert_eq!(executions.body["items"].as_array().unwrap().len(), 1, "the other request's leads were not silently dropped into it");
}

#[tokio::test]
async fn two_executions_of_one_agent_with_overlapping_lists_email_each_prospect_once() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let first = app.start_csv(&agent_id, THREE_LEADS_CSV).await;
    let second = app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\ndee@hooli.example,Dee,Hooli\n").await;

    // Both are researched and drafted before either sends: the research-time check sees nothing.
    app.drain().await;

    let emails = app.emails();
    assert_eq!(emails.iter().filter(|e| header(e, "To").is_some_and(|to| to.contains("ada@initech.example"))).count(), 1);
    assert_eq!(emails.len(), 4, "ada once, bob, cy and dee");
    let ada: Vec<serde_json::Value> = app.get("/api/v1/leads?email=ada@initech.example").await.body["items"].as_array().unwrap().clone();
    let states: Vec<(&str, &str)> = ada.iter().map(|l| (l["state"].as_str().unwrap(), l["reason"].as_str().unwrap_or(""))).collect();
    assert!(states.contains(&("sent", "")) && states.contains(&("skipped", "already_contacted")), "{states:?}");
    assert!(
        app.execution(&first).await["lead_counts"]["sent"].as_u64().unwrap()
            + app.execution(&second).await["lead_counts"]["sent"].as_u64().unwrap()
            == 4
    );
}

/// Loses every message waiting in `queue`, as a dead-lettered fan-out or an enqueue that failed
/// after its commit would.
/// A one-lead execution whose send was claimed by a worker that died after the email left.
async fn crashed_send(app: &TestApp) -> (String, String) {
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    let lead_id = app.leads(&execution_id).await[0]["id"].as_str().unwrap().to_string();
    let message = StepMessage { execution_id: execution_id.parse().unwrap(), lead_id: lead_id.parse().unwrap(), step: 0 };
    app.runtime.research_step().handle(&message).await.unwrap();
    app.runtime.draft_step().handle(&message).await.unwrap();
    send_then_die(&app.runtime, &message).await;
    // Nothing of the send step's queue message is left in this test: only the sweep can find the lead.
    app.lose_messages(StepQueue::Send).await;
    (execution_id, lead_id)
}

#[tokio::test]
async fn the_sweep_parks_a_claim_its_worker_left_and_a_person_resolves_it_as_sent() {
    let app = TestApp::new();
    let (execution_id, lead_id) = crashed_send(&app).await;
    app.run_scheduled().await;
    assert_eq!(app.get(&format!("/api/v1/leads/{lead_id}")).await.body["state"], "sending", "a young claim is left to its worker");

    app.clock.advance(SEND_CLAIM_TIMEOUT + chrono::Duration::seconds(1));
    app.run_scheduled().await;

    let lead = app.get(&format!("/api/v1/leads/{lead_id}")).await.body;
    assert_eq!(lead["state"], "parked", "{lead}");
    let execution = app.execution(&execution_id).await;
    assert!(execution["needs_attention"][0].as_str().unwrap().contains("1 lead(s) parked"), "{execution}");
    let again = app.start_csv(execution["agent_id"].as_str().unwrap(), "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    app.drain().await;
    assert_eq!(app.leads(&again).await[0]["reason"], "already_contacted", "a parked lead counts as contacted");

    let resolved =
        app.post_json(&format!("/api/v1/leads/{lead_id}/resolve"), &json!({"resolution": "sent", "provider_message_id": "outbox-1"})).await;
    assert_eq!((resolved.status, resolved.body["state"].as_str()), (StatusCode::OK, Some("sent")), "{}", resolved.body);
    assert!(resolved.body["next_step_due_at"].is_string(), "the follow-up is scheduled");
    let message_id = resolved.body["sent_messages"][0]["message_id"].as_str().unwrap();
    assert_eq!(message_id, format!("{lead_id}.step0@northwind.example"), "replies to the email match the lead");
    let execution = app.execution(&execution_id).await;
    assert_eq!((execution["counters"]["sent"].as_u64(), execution["lead_counts"]["sent"].as_u64()), (Some(1), Some(1)));
    assert_eq!(app.emails().len(), 1, "resolving sends nothing");
}

#[tokio::test]
async fn a_parked_lead_resolved_as_send_again_is_sent_once_more_and_bad_resolutions_name_the_field() {
    let app = TestApp::new();
    let (_, lead_id) = crashed_send(&app).await;
    let uri = format!("/api/v1/leads/{lead_id}/resolve");
    let early = app.post_json(&uri, &json!({"resolution": "send_again"})).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "only a parked lead is resolved: {}", early.body);
    app.clock.advance(SEND_CLAIM_TIMEOUT + chrono::Duration::seconds(1));
    app.run_scheduled().await;

    let unknown = app.post_json(&uri, &json!({"resolution": "maybe"})).await;
    assert_eq!((unknown.status, unknown.problem_fields()), (StatusCode::UNPROCESSABLE_ENTITY, vec!["resolution".to_string()]));
    let mixed = app.post_json(&uri, &json!({"resolution": "send_again", "provider_message_id": "x"})).await;
    assert_eq!(mixed.problem_fields(), ["provider_message_id"]);
    let extra = app.post_json(&uri, &json!({"resolution": "sent", "why": "x"})).await;
    assert_eq!(extra.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get(&format!("/api/v1/leads/{lead_id}")).await.body["state"], "parked", "refused requests changed nothing");

    // The person found the email never arrived (here: it is gone from the outbox) and sends it again.
    for email in app.outbox().emails().unwrap() {
        std::fs::remove_file(email).unwrap();
    }
    let again = app.post_json(&uri, &json!({"resolution": "send_again"})).await;
    assert_eq!((again.status, again.body["state"].as_str()), (StatusCode::OK, Some("drafted")));
    app.drain().await;
    assert_eq!(app.emails().len(), 1, "sent again, explicitly, once");
    assert_eq!(app.get(&format!("/api/v1/leads/{lead_id}")).await.body["state"], "sent");
}

#[tokio::test]
async fn the_sweep_re_drives_a_lead_whose_message_was_lost_and_fails_one_nothing_moves() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, THREE_LEADS_CSV).await;
    // The research messages are lost (a dead-lettered fan-out, an enqueue that failed after the commit).
    app.lose_messages(StepQueue::Research).await;
    app.run_scheduled().await;
    assert_eq!(app.execution(&execution_id).await["lead_counts"], json!({"queued": 3}), "within the step's budget, nothing is done");

    app.clock.advance(STEP_BUDGET + chrono::Duration::minutes(1));
    app.run_scheduled().await;

    assert_eq!(app.execution(&execution_id).await["lead_counts"], json!({"sent": 3}));
    let logs = app.get(&format!("/api/v1/executions/{execution_id}/logs?limit=500")).await;
    assert_eq!(logs.body["items"].as_array().unwrap().iter().filter(|e| e["event"] == "lead.redriven").count(), 3);

    // A lead whose message is lost again and again is failed with the reason, not left waiting.
    let stuck = app.start_csv(&agent_id, "email,first_name,company\nzed@zeta.example,Zed,Zeta\n").await;
    for _ in 0..5 {
        app.lose_messages(StepQueue::Research).await;
        app.clock.advance(STEP_BUDGET + chrono::Duration::minutes(1));
        app.runner.run_scheduled().await.unwrap();
    }
    let lead = &app.leads(&stuck).await[0];
    assert_eq!(lead["state"], "failed", "{lead}");
    assert!(lead["reason"].as_str().unwrap().contains("nothing moved it"), "{lead}");
    assert_eq!(app.execution(&stuck).await["counters"]["failed"], 1);
}

#[tokio::test]
async fn a_fan_out_that_cannot_be_expanded_fails_its_leads_with_the_reason_on_its_last_receive() {
    use sales_agent::app::delivery::{Delivery, DeliveryDriver, Disposition};
    use sales_agent::app::{RetryableStepError, StepPorts, StepResult, StepWorker};
    use sales_agent::ports::{FanOutMessage, QueueMessage};

    /// The research worker, but its queue refuses the expanded messages.
    struct QueueDown(StepPorts);
    #[async_trait::async_trait]
    impl StepWorker for QueueDown {
        fn queue(&self) -> StepQueue {
            StepQueue::Research
        }
        async fn handle(&self, _message: &StepMessage) -> StepResult {
            Ok(StepOutcome::Ignored("not used".into()))
        }
        fn ports(&self) -> &StepPorts {
            &self.0
        }
        async fn fan_out(&self, _message: &FanOutMessage) -> Result<(), RetryableStepError> {
            Err(RetryableStepError("the queue is unavailable".into()))
        }
    }

    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, THREE_LEADS_CSV).await;
    let leads: Vec<_> = app.leads(&execution_id).await.iter().map(|l| l["id"].as_str().unwrap().parse().unwrap()).collect();
    let fan_out = QueueMessage::FanOut(FanOutMessage { execution_id: execution_id.parse().unwrap(), step: 0, fan_out: leads });
    let worker = QueueDown(app.runtime.step_ports());
    let driver = DeliveryDriver { worker: &worker, max_receive_count: 5 };
    let delivery = |receive_count| Delivery { id: "m1".into(), body: fan_out.body(), receive_count };

    assert!(matches!(driver.deliver(&delivery(1)).await, Disposition::Retry(_)));
    assert_eq!(app.execution(&execution_id).await["lead_counts"], json!({"queued": 3}));
    let last = driver.deliver(&delivery(5)).await;

    assert!(matches!(&last, Disposition::DeadLetter(why) if why.contains("research step gave up after 5 attempts")), "{last:?}");
    let leads = app.leads(&execution_id).await;
    assert!(
        leads.iter().all(|l| l["state"] == "failed" && l["reason"].as_str().unwrap().contains("the queue is unavailable")),
        "{leads:?}"
    );
    assert!(matches!(
        driver.deliver(&Delivery { id: "m2".into(), body: "{not json".into(), receive_count: 1 }).await,
        Disposition::DeadLetter(_)
    ));
}

#[tokio::test]
async fn without_api_keys_the_local_server_answers_only_loopback_names() {
    let app = TestApp::new();
    let router = app.runtime.local_server_router();
    let call = |host: &'static str| {
        let router = router.clone();
        async move {
            let request = Request::builder().uri("/health").header("host", host).body(Body::empty()).unwrap();
            router.oneshot(request).await.unwrap().status()
        }
    };
    assert_eq!(call("localhost:3000").await, StatusCode::OK);
    assert_eq!(call("127.0.0.1:3000").await, StatusCode::OK);
    assert_eq!(call("attacker.example").await, StatusCode::MISDIRECTED_REQUEST, "a rebound name is refused");
    assert_eq!(call("attacker.example:3000").await, StatusCode::MISDIRECTED_REQUEST);
    let keyed = TestApp::configured(|settings| settings.auth_required = true);
    let request = Request::builder().uri("/health").header("host", "sales.internal.example").body(Body::empty()).unwrap();
    assert_eq!(keyed.runtime.local_server_router().oneshot(request).await.unwrap().status(), StatusCode::OK, "with keys, any name");
}

#[tokio::test]
async fn the_sweep_completes_an_execution_whose_completion_check_was_lost_and_fails_a_start_that_never_finished() {
    use sales_agent::domain::{Execution, LeadEvent, LeadSourceKind, SkipReason};
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    let lead = app.runtime.store.get_lead(app.leads(&execution_id).await[0]["id"].as_str().unwrap().parse().unwrap()).await.unwrap();
    // The last lead finishes, but the completion check that follows it never runs.
    let skip = lead.advanced(LeadEvent::Skip(SkipReason::Suppressed), app.now()).unwrap();
    app.runtime.store.commit(&skip).await.unwrap();
    app.lose_messages(StepQueue::Research).await;
    assert_eq!(app.execution(&execution_id).await["state"], "running");
    // A start whose request failed before it wrote a single lead, and was never retried.
    let abandoned = Execution::new(agent_id.parse().unwrap(), LeadSourceKind::Json, 5, None, app.now());
    app.runtime.store.create_execution(&abandoned).await.unwrap();

    app.clock.advance(STEP_BUDGET + chrono::Duration::minutes(1));
    app.run_scheduled().await;

    assert_eq!(app.execution(&execution_id).await["state"], "completed");
    let failed = app.execution(&abandoned.id.to_string()).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["failure_reason"].as_str().unwrap().contains("did not finish"), "{failed}");
}

#[tokio::test]
async fn held_leads_a_lost_background_resume_left_are_released_by_the_sweep() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, &csv_of(150)).await;
    app.post_empty(&format!("/api/v1/executions/{execution_id}/pause")).await;
    app.drain().await;
    let resumed = app.post_empty(&format!("/api/v1/executions/{execution_id}/resume")).await;
    assert_eq!(resumed.body["continues_in_background"], true);
    // The background continuation is lost (dead-lettered, say), along with the released leads' messages.
    app.lose_messages(StepQueue::Research).await;
    let held = app.get(&format!("/api/v1/executions/{execution_id}/leads?limit=500")).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["on_hold"] == true)
        .count();
    assert_eq!(held, 50);

    app.clock.advance(STEP_BUDGET + chrono::Duration::minutes(1));
    app.run_scheduled().await;

    assert_eq!(
        app.execution(&execution_id).await["lead_counts"],
        json!({"sent": 150}),
        "the held ones by the look at the execution, the rest re-driven"
    );
    assert_eq!(app.emails().len(), 150);
}

#[tokio::test]
async fn the_suppression_list_is_listed_added_to_by_address_or_domain_and_taken_off_through_the_api() {
    let app = TestApp::new();
    let added = app.post_json("/api/v1/suppressions", &json!({"entry": "Globex.example", "reason": "complaint"})).await;
    assert_eq!(
        (added.status, added.body["entry"].as_str(), added.body["source"].as_str()),
        (StatusCode::CREATED, Some("globex.example"), Some("api"))
    );
    let again = app.post_json("/api/v1/suppressions", &json!({"entry": "globex.example"})).await;
    assert_eq!((again.status, again.body["reason"].as_str()), (StatusCode::OK, Some("complaint")), "the first reason is kept");
    assert_eq!(app.post_json("/api/v1/suppressions", &json!({"entry": "ada@initech.example"})).await.status, StatusCode::CREATED);
    for (body, field) in [
        (json!({"entry": "not a domain"}), "entry"),
        (json!({"entry": "x@"}), "entry"),
        (json!({"entry": "ada@initech.example", "reason": "dislike"}), "reason"),
    ] {
        let refused = app.post_json("/api/v1/suppressions", &body).await;
        assert_eq!((refused.status, refused.problem_fields()), (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_string()]), "{body}");
    }
    let listed = app.get("/api/v1/suppressions?limit=1").await;
    assert_eq!(listed.body["items"][0]["entry"], "ada@initech.example");
    let next = app.get(&format!("/api/v1/suppressions?cursor={}", listed.body["next_cursor"].as_str().unwrap())).await;
    assert_eq!(next.body["items"][0]["entry"], "globex.example");

    // A domain covers its subdomains.
    let agent_id = app.create_agent(&agent_spec()).await;
    let csv =
        "email,first_name,company\nbob@eu.globex.example,Bob,Globex\nada@initech.example,Ada,Initech\ncy@umbrella.example,Cy,Umbrella\n";
    let execution_id = app.start_csv(&agent_id, csv).await;
    app.drain().await;
    assert_eq!(app.execution(&execution_id).await["lead_counts"], json!({"sent": 1, "skipped": 2}));

    assert_eq!(
        app.request(Method::DELETE, "/api/v1/suppressions/globex.example", None, Body::empty(), &[]).await.status,
        StatusCode::NO_CONTENT
    );
    let missing = app.request(Method::DELETE, "/api/v1/suppressions/globex.example", None, Body::empty(), &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let again = app.start_csv(&agent_id, "email,first_name,company\nbob@eu.globex.example,Bob,Globex\n").await;
    app.drain().await;
    assert_eq!(app.execution(&again).await["lead_counts"], json!({"sent": 1}), "taken off the list, the address is emailed");
}
