//! The REST surface driven as a client would: create an agent, start an execution from CSV,
//! follow it through the GET endpoints, pause, resume, cancel, restart the process.

use axum::http::StatusCode;
use sales_agent::ports::StepQueue;
use sales_agent_tests::{THREE_LEADS_CSV, TestApp, agent_spec, header};
use serde_json::json;

#[tokio::test]
async fn given_three_csv_leads_when_the_workers_drain_then_each_lead_gets_one_email_visible_through_the_api() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;

    let execution_id = app.start_csv(&agent_id, THREE_LEADS_CSV).await;
    let started = app.execution(&execution_id).await;
    assert_eq!(started["state"], "running");
    assert_eq!(started["lead_counts"], json!({"queued": 3}));

    app.drain().await;

    let execution = app.execution(&execution_id).await;
    assert_eq!(execution["lead_counts"], json!({"sent": 3}), "{execution}");
    assert_eq!(execution["counters"]["sent"], 3);
    let sent = app.get(&format!("/api/v1/executions/{execution_id}/leads?state=sent")).await;
    assert_eq!(sent.body["items"].as_array().unwrap().len(), 3);

    let emails = app.emails();
    assert_eq!(emails.len(), 3);
    let ada = emails.iter().find(|e| e.contains("ada@initech.example")).expect("Ada's email");
    assert_eq!(header(ada, "Subject"), Some("Initech and forecasting"));
    assert_eq!(header(ada, "List-Unsubscribe-Post"), Some("List-Unsubscribe=One-Click"));
    assert!(header(ada, "List-Unsubscribe").is_some_and(|v| v.contains("/unsubscribe/")));
    assert!(ada.contains("100 Harbour Street, Springfield"), "the footer carries the postal address");

    let lead_id = sent.body["items"][0]["id"].as_str().unwrap();
    let lead = app.get(&format!("/api/v1/leads/{lead_id}")).await;
    assert_eq!(lead.status, StatusCode::OK);
    let message_id = lead.body["sent_messages"][0]["message_id"].as_str().unwrap();
    assert_eq!(message_id, format!("{lead_id}.step0@northwind.example"), "the Message-ID is derived from lead and step");
    assert!(lead.body["draft"]["body"].as_str().unwrap().starts_with("Hi "));
    assert!(lead.body["next_step_due_at"].is_string(), "the follow-up is scheduled");

    let first_page = app.get(&format!("/api/v1/executions/{execution_id}/logs?limit=4")).await;
    assert_eq!(first_page.body["items"].as_array().unwrap().len(), 4);
    let cursor = first_page.body["next_cursor"].as_str().expect("more log entries");
    let rest = app.get(&format!("/api/v1/executions/{execution_id}/logs?limit=500&cursor={cursor}")).await;
    let events: Vec<&str> = first_page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest.body["items"].as_array().unwrap())
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for expected in ["execution.running", "lead.researched", "lead.drafted", "lead.sent"] {
        assert!(events.contains(&expected), "{expected} missing from {events:?}");
    }
    assert_eq!(events.iter().filter(|e| **e == "lead.sent").count(), 3);

    let stats = app.get("/api/v1/stats/overview").await;
    assert_eq!(stats.body["sent"], 3);
    assert_eq!(stats.body["agents"][0]["agent_id"], agent_id);
    let health = app.get("/health").await;
    assert_eq!(health.body["status"], "ok");
}

#[tokio::test]
async fn executions_are_listed_newest_first_in_pages_and_leads_can_be_found_across_executions() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let older = app.start_csv(&agent_id, THREE_LEADS_CSV).await;
    let newer = app.start_csv(&agent_id, "email,first_name,company\nzed@zeta.example,Zed,Zeta\n").await;

    let page = app.get(&format!("/api/v1/agents/{agent_id}/executions?limit=1")).await;
    assert_eq!(page.body["items"][0]["id"], newer);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = app.get(&format!("/api/v1/executions?agent_id={agent_id}&limit=1&cursor={cursor}")).await;
    assert_eq!(next.body["items"][0]["id"], older);
    assert!(next.body["next_cursor"].is_null());

    let by_email = app.get("/api/v1/leads?email=ZED@zeta.example").await;
    assert_eq!(by_email.body["items"][0]["execution_id"], newer);
    let queued = app.get(&format!("/api/v1/leads?agent_id={agent_id}&state=queued")).await;
    assert_eq!(queued.body["items"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn given_a_paused_execution_when_workers_run_then_leads_wait_and_resume_sends_them() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, THREE_LEADS_CSV).await;

    let paused = app.post_empty(&format!("/api/v1/executions/{execution_id}/pause")).await;
    assert_eq!(paused.status, StatusCode::OK);
    assert_eq!(paused.body["state"], "paused");
    app.drain().await;
    assert!(app.emails().is_empty(), "nothing is sent while paused");
    let leads = app.leads(&execution_id).await;
    assert!(leads.iter().all(|l| l["on_hold"] == true && l["state"] == "queued"), "{leads:?}");
    assert_eq!(app.runtime.queue.depth(StepQueue::Research).await.unwrap(), 0, "nothing waits in the queue while paused");

    let again = app.post_empty(&format!("/api/v1/executions/{execution_id}/pause")).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.content_type, "application/problem+json");

    let resumed = app.post_empty(&format!("/api/v1/executions/{execution_id}/resume")).await;
    assert_eq!(resumed.status, StatusCode::OK);
    assert_eq!(resumed.body["state"], "running");
    assert_eq!(resumed.body["requeued_leads"], 3);
    app.drain().await;
    assert_eq!(app.emails().len(), 3);
    assert_eq!(app.execution(&execution_id).await["lead_counts"], json!({"sent": 3}));
}

#[tokio::test]
async fn given_a_crash_mid_campaign_when_the_process_restarts_then_nothing_is_lost_and_nothing_is_sent_twice() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, THREE_LEADS_CSV).await;
    // The process dies holding two research messages it had received but not finished.
    let in_flight = app.runtime.queue.receive(StepQueue::Research, 2).await.unwrap();
    assert_eq!(in_flight.len(), 2);

    let app = app.restart();
    app.runtime.queue.recover_in_flight().await.unwrap();
    app.drain().await;
    assert_eq!(app.emails().len(), 3);

    let app = app.restart();
    app.runtime.queue.recover_in_flight().await.unwrap();
    app.drain().await;
    app.run_scheduled().await;
    assert_eq!(app.emails().len(), 3, "a restart resends nothing");
    assert_eq!(app.execution(&execution_id).await["counters"]["sent"], 3);
    assert_eq!(app.get(&format!("/api/v1/agents/{agent_id}")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn given_a_cancelled_execution_then_no_lead_is_contacted_and_it_cannot_be_resumed() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, THREE_LEADS_CSV).await;

    let cancelled = app.post_empty(&format!("/api/v1/executions/{execution_id}/cancel")).await;
    assert_eq!(cancelled.body["state"], "cancelled");
    assert_eq!(cancelled.body["lead_counts"], json!({"skipped": 3}));
    app.drain().await;
    assert!(app.emails().is_empty());
    let resumed = app.post_empty(&format!("/api/v1/executions/{execution_id}/resume")).await;
    assert_eq!(resumed.status, StatusCode::CONFLICT);
    assert_eq!(resumed.body["detail"], "an execution that is cancelled cannot be resumed");

    let deleted = app.request(axum::http::Method::DELETE, &format!("/api/v1/agents/{agent_id}"), None, "", &[]).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_agent_with_running_executions_cannot_be_deleted_but_can_be_replaced() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    app.start_csv(&agent_id, THREE_LEADS_CSV).await;
    let deleted = app.request(axum::http::Method::DELETE, &format!("/api/v1/agents/{agent_id}"), None, "", &[]).await;
    assert_eq!(deleted.status, StatusCode::CONFLICT);

    let mut changed = agent_spec();
    changed["name"] = json!("Renamed outreach");
    let replaced = app
        .request(axum::http::Method::PUT, &format!("/api/v1/agents/{agent_id}"), Some("application/json"), changed.to_string(), &[])
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["name"], "Renamed outreach");
    assert_eq!(replaced.body["version"], 1);
}

#[tokio::test]
async fn starting_twice_with_one_idempotency_key_starts_one_execution() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let uri = format!("/api/v1/agents/{agent_id}/executions");
    let first = app.request(axum::http::Method::POST, &uri, Some("text/csv"), THREE_LEADS_CSV, &[("idempotency-key", "import-42")]).await;
    let second = app.request(axum::http::Method::POST, &uri, Some("text/csv"), THREE_LEADS_CSV, &[("idempotency-key", "import-42")]).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["replayed"], true);
    assert_eq!(first.body["execution"]["id"], second.body["execution"]["id"]);
    let all = app.get("/api/v1/executions").await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn given_an_agent_requiring_approval_then_drafts_wait_for_a_reviewer_who_may_edit_or_reject_them() {
    let app = TestApp::new();
    let mut spec = agent_spec();
    spec["require_approval"] = json!(true);
    let agent_id = app.create_agent(&spec).await;
    let execution_id =
        app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\nbob@globex.example,Bob,Globex\n").await;
    app.drain().await;
    assert!(app.emails().is_empty());
    let waiting = app.get(&format!("/api/v1/executions/{execution_id}/leads?state=awaiting_approval")).await;
    let ids: Vec<String> = waiting.body["items"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 2);

    let approved = app.post_json(&format!("/api/v1/leads/{}/approve", ids[0]), &json!({"subject": "A question for Initech"})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    let rejected = app.post_empty(&format!("/api/v1/leads/{}/reject", ids[1])).await;
    assert_eq!(rejected.body["state"], "skipped");
    assert_eq!(rejected.body["reason"], "rejected_by_reviewer");
    app.drain().await;

    let emails = app.emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(header(&emails[0], "Subject"), Some("A question for Initech"));
    let twice = app.post_empty(&format!("/api/v1/leads/{}/approve", ids[0])).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_one_click_unsubscribe_link_stops_the_lead_and_suppresses_the_address() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    app.drain().await;
    let email = &app.emails()[0];
    let link = header(email, "List-Unsubscribe").unwrap();
    let path = link.split('<').nth(1).unwrap().split('>').next().unwrap().trim_start_matches("http://127.0.0.1:3000").to_string();

    let page = app.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "a GET only shows a confirmation page");
    assert_eq!(app.leads(&execution_id).await[0]["state"], "sent");
    let done =
        app.request(axum::http::Method::POST, &path, Some("application/x-www-form-urlencoded"), "List-Unsubscribe=One-Click", &[]).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(app.leads(&execution_id).await[0]["state"], "unsubscribed");
    assert_eq!(app.get("/unsubscribe/forged.token").await.status, StatusCode::NOT_FOUND);

    let later = app.start_csv(&agent_id, "email,first_name,company\nADA@initech.example,Ada,Initech\n").await;
    app.drain().await;
    let lead = &app.leads(&later).await[0];
    assert_eq!((lead["state"].as_str(), lead["reason"].as_str()), (Some("skipped"), Some("suppressed")));
    assert_eq!(app.emails().len(), 1);
}

#[tokio::test]
async fn a_large_start_fans_out_in_the_background_and_every_lead_still_gets_one_email() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let csv = "email,first_name,company\n".to_string()
        + &(0..1_200).map(|i| format!("p{i}@co{}.example,P{i},Co {}\n", i % 40, i % 40)).collect::<String>();

    let execution_id = app.start_csv(&agent_id, &csv).await;

    assert_eq!(
        app.runtime.queue.depth(StepQueue::Research).await.unwrap(),
        3,
        "1,200 leads start as three fan-out messages of at most 500"
    );
    app.drain().await;
    assert_eq!(app.execution(&execution_id).await["lead_counts"], json!({"sent": 1200}));
    assert_eq!(app.emails().len(), 1200);
}

#[tokio::test]
async fn a_prospect_the_agent_already_emailed_is_skipped_in_a_later_execution() {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    app.start_csv(&agent_id, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    app.drain().await;

    let later =
        app.start_csv(&agent_id, "email,first_name,company\nADA@initech.example,Ada,Initech\nbob@globex.example,Bob,Globex\n").await;
    app.drain().await;

    let leads = app.leads(&later).await;
    let ada = leads.iter().find(|l| l["contact"]["email"] == "ADA@initech.example").unwrap();
    assert_eq!((ada["state"].as_str(), ada["reason"].as_str()), (Some("skipped"), Some("already_contacted")));
    assert_eq!(app.emails().len(), 2, "Ada once, Bob once");
    let other_agent = app.create_agent(&agent_spec()).await;
    let elsewhere = app.start_csv(&other_agent, "email,first_name,company\nada@initech.example,Ada,Initech\n").await;
    app.drain().await;
    assert_eq!(app.leads(&elsewhere).await[0]["state"], "sent", "another agent may write to her");
}
