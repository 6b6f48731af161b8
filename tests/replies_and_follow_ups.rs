//! Follow-ups go out when due, threaded on the first email, unless the lead replied; replies,
//! bounces and out-of-office answers in the inbox are matched to their leads.

use chrono::Duration;
use sales_agent_tests::mail::{first_message_id, lead, reply_to};
use sales_agent_tests::{TestApp, agent_spec, header};
use serde_json::{Value, json};

const TWO_LEADS: &str = "email,first_name,company\nada@initech.example,Ada,Initech\nbob@globex.example,Bob,Globex\n";

/// Ada and Bob, each sent the first email of the sequence.
async fn two_leads_emailed() -> (TestApp, String, String, Vec<Value>) {
    let app = TestApp::new();
    let agent_id = app.create_agent(&agent_spec()).await;
    let execution_id = app.start_csv(&agent_id, TWO_LEADS).await;
    app.drain().await;
    let leads = app.leads(&execution_id).await;
    (app, agent_id, execution_id, leads)
}

#[tokio::test]
async fn given_one_lead_replied_when_the_follow_up_is_due_then_only_the_other_gets_it_threaded_on_the_first_email() {
    let (app, _agent_id, execution_id, leads) = two_leads_emailed().await;
    let ada_first = first_message_id(&leads, "ada@initech.example");
    let bob_first = first_message_id(&leads, "bob@globex.example");

    app.deliver_to_inbox(
        "1.eml",
        &reply_to(&ada_first, "Ada <ada@initech.example>", "", "Yes, let's talk Tuesday.\r\n\r\nOn Monday Dana wrote:\r\n> Hi"),
    );
    app.run_scheduled().await;
    let leads = app.leads(&execution_id).await;
    let ada = lead(&leads, "ada@initech.example");
    assert_eq!(ada["state"], "replied");
    assert_eq!(ada["inbound"][0]["class"], "human_reply");
    assert_eq!(ada["inbound"][0]["text"], "Yes, let's talk Tuesday.");
    let execution = app.execution(&execution_id).await;
    assert_eq!(execution["counters"]["replied"], 1);
    assert_eq!(execution["response_rate"], 0.5);

    app.clock.advance(Duration::days(2));
    app.run_scheduled().await;
    assert_eq!(app.emails().len(), 2, "nothing is due after two days");

    app.clock.advance(Duration::days(1) + Duration::minutes(1));
    app.run_scheduled().await;
    let emails = app.emails();
    assert_eq!(emails.len(), 3, "Bob's follow-up went out; Ada, who replied, got none");
    let follow_up = emails.iter().find(|e| e.contains(".step1@")).expect("the follow-up");
    assert_eq!(header(follow_up, "To").map(|t| t.contains("bob@globex.example")), Some(true));
    assert_eq!(header(follow_up, "Subject"), Some("Re: Globex and forecasting"));
    assert_eq!(header(follow_up, "In-Reply-To"), Some(format!("<{bob_first}>").as_str()));
    assert_eq!(header(follow_up, "References"), Some(format!("<{bob_first}>").as_str()));

    let execution = app.execution(&execution_id).await;
    assert_eq!(execution["lead_counts"], json!({"completed": 1, "replied": 1}));
    assert_eq!(execution["state"], "completed", "every lead finished");

    app.clock.advance(Duration::days(30));
    app.run_scheduled().await;
    assert_eq!(app.emails().len(), 3, "a finished sequence sends nothing more");
}

#[tokio::test]
async fn bounces_suppress_the_address_out_of_office_changes_nothing_and_a_second_reading_is_harmless() {
    let (app, agent_id, execution_id, leads) = two_leads_emailed().await;
    let ada_first = first_message_id(&leads, "ada@initech.example");

    let bounce = "From: MAILER-DAEMON@mx.globex.example\r\nTo: dana@northwind.example\r\nSubject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n\
Your message could not be delivered.\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.globex.example\r\n\r\n\
Final-Recipient: rfc822; bob@globex.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b1--\r\n";
    app.deliver_to_inbox("1-bounce.eml", bounce);
    let out_of_office = reply_to(&ada_first, "ada@initech.example", "Auto-Submitted: auto-replied\r\n", "I am away until Monday.");
    app.deliver_to_inbox("2-ooo.eml", &out_of_office);
    app.run_scheduled().await;

    let leads = app.leads(&execution_id).await;
    assert_eq!(lead(&leads, "bob@globex.example")["state"], "bounced");
    assert_eq!(lead(&leads, "ada@initech.example")["state"], "sent", "an out-of-office does not stop the sequence");
    let execution = app.execution(&execution_id).await;
    assert_eq!(execution["counters"]["bounced"], 1);

    // The same messages read again (a re-delivered mailbox) change nothing.
    app.deliver_to_inbox("3-bounce-again.eml", bounce);
    app.run_scheduled().await;
    assert_eq!(app.execution(&execution_id).await["counters"]["bounced"], 1);

    let again = app.start_csv(&agent_id, "email,first_name,company\nbob@globex.example,Bob,Globex\n").await;
    app.drain().await;
    assert_eq!(app.leads(&again).await[0]["reason"], "suppressed", "a hard-bounced address is never emailed again");
}

#[tokio::test]
async fn bounces_past_the_agents_limit_pause_the_execution_with_the_reason_until_it_is_resumed() {
    let app = TestApp::new();
    let mut spec = agent_spec();
    spec["auto_pause"] = json!({"max_hard_bounce_rate": 0.2, "min_sends": 4});
    let agent_id = app.create_agent(&spec).await;
    let csv = "email,first_name,company\nada@initech.example,Ada,Initech\nbob@globex.example,Bob,Globex\n\
               cy@umbrella.example,Cy,Umbrella\ndee@hooli.example,Dee,Hooli\n";
    let execution_id = app.start_csv(&agent_id, csv).await;
    app.drain().await;

    // One hard bounce of four sends: 25 %, past the agent's 20 %.
    app.deliver_to_inbox("1-bounce.eml", &sales_agent_tests::mail::delivery_failure("bob@globex.example", "5.1.1", None));
    app.run_scheduled().await;

    let execution = app.execution(&execution_id).await;
    assert_eq!(execution["state"], "paused", "{execution}");
    let reason = execution["pause_reason"].as_str().unwrap();
    assert_eq!(reason, "hard bounces reached 25.0 % of 4 emails sent (the limit is 20.0 %)");
    let logs = app.get(&format!("/api/v1/executions/{execution_id}/logs?limit=500")).await;
    assert!(
        logs.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "execution.paused" && e["message"].as_str().unwrap().contains(reason))
    );

    // Follow-ups fall due while it is paused: none goes out.
    app.clock.advance(Duration::days(4));
    app.run_scheduled().await;
    assert_eq!(app.emails().len(), 4, "no follow-up while paused");

    let resumed = app.post_empty(&format!("/api/v1/executions/{execution_id}/resume")).await;
    assert_eq!(resumed.body["state"], "running");
    app.drain().await;
    assert_eq!(app.emails().len(), 7, "after the resume the three leads that did not bounce get their follow-up");
}

#[tokio::test]
async fn an_agent_with_no_limits_set_waits_for_twenty_sends_before_judging_its_bounce_rate() {
    let (app, _agent_id, execution_id, _) = two_leads_emailed().await;
    app.deliver_to_inbox("1-bounce.eml", &sales_agent_tests::mail::delivery_failure("bob@globex.example", "5.1.1", None));
    app.run_scheduled().await;
    assert_eq!(app.execution(&execution_id).await["state"], "running", "one bounce of two sends is too small a sample");
}

#[tokio::test]
async fn mailbox_settings_that_fail_to_load_fail_every_run_with_the_reason_and_hold_the_follow_ups() {
    let (app, _agent_id, execution_id, _leads) = two_leads_emailed().await;
    let mut broken = app.runtime.clone();
    broken.inbox = sales_agent::app::ReplyReading::Broken("mailboxes[0].host is empty".into());
    app.clock.advance(Duration::days(3) + Duration::minutes(1));

    let failure = broken.scheduled_tasks().run().await.expect_err("the run says replies cannot be read");
    assert!(failure.0.contains("mailboxes[0].host is empty"), "{failure}");
    app.drain().await;
    assert!(!app.emails().iter().any(|e| e.contains(".step1@")), "no follow-up while replies cannot be read");
    let execution = app.execution(&execution_id).await;
    assert!(execution["follow_ups_waiting"].as_str().unwrap().contains("replies cannot be read"), "{execution}");

    // The settings are fixed (the next cold start loads them): the follow-ups go.
    app.clock.advance(Duration::minutes(5));
    app.run_scheduled().await;
    assert_eq!(app.emails().iter().filter(|e| e.contains(".step1@")).count(), 2);
}

#[tokio::test]
async fn a_follow_up_released_by_a_resume_is_still_not_sent_while_replies_cannot_be_read() {
    let (app, _agent_id, execution_id, leads) = two_leads_emailed().await;
    assert_eq!(app.post_json(&format!("/api/v1/executions/{execution_id}/pause"), &json!({})).await.status, 200);
    app.clock.advance(Duration::days(3) + Duration::minutes(1));
    app.run_scheduled().await;
    app.lose_messages(sales_agent::domain::StepQueue::Draft).await;
    assert_eq!(app.post_json(&format!("/api/v1/executions/{execution_id}/resume"), &json!({})).await.status, 200);
    app.lose_messages(sales_agent::domain::StepQueue::Draft).await;

    // The resume released Ada's follow-up to the workers while her mailbox cannot be read.
    let mut broken = app.runtime.clone();
    broken.inbox = sales_agent::app::ReplyReading::Broken("the secret could not be read: access denied".into());
    let ada = lead(&leads, "ada@initech.example");
    let message = sales_agent::domain::StepMessage {
        execution_id: execution_id.parse().unwrap(),
        lead_id: ada["id"].as_str().unwrap().parse().unwrap(),
        step: 1,
    };
    broken.draft_step().handle(&message).await.unwrap();
    app.lose_messages(sales_agent::domain::StepQueue::Send).await;
    broken.send_step().handle(&message).await.unwrap();
    let ada = app.get(&format!("/api/v1/leads/{}", ada["id"].as_str().unwrap())).await.body;
    assert_eq!(ada["state"], "waiting", "{ada}");
    assert!(ada["why"].as_str().unwrap().contains("replies cannot be read"), "{ada}");
    assert!(!app.emails().iter().any(|e| e.contains(".step1@")));

    // Read again: the waiting follow-up goes.
    app.clock.advance(Duration::minutes(5));
    app.run_scheduled().await;
    assert!(app.emails().iter().any(|e| e.contains(".step1@") && e.contains("ada@initech.example")));
}
