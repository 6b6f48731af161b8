//! The deployed system on moto: the table, indexes, queues and redrive policies come from
//! template.yaml; the API is driven with API Gateway v2 payloads; each worker is fed batches
//! received from its queue the way Lambda's event source mapping builds them. Then the faults:
//! SES throttling, a crash after SES accepted, two workers racing, a poison message.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use sales_agent::adapters::aws::SecretUnsubscribeKeys;
use sales_agent::lambda::{handle_scheduled, process_batch};
use sales_agent::ports::store::SuppressionList;
use sales_agent::ports::{Clock, ManualClock};
use sales_agent_tests::fault_proxy::FaultPlan;
use sales_agent_tests::faults::DiesAfterSending;
use sales_agent_tests::imap::TestMailbox;
use sales_agent_tests::mail::{delivery_failure, reply_to};
use sales_agent_tests::stack::{SENDER, default_secret, deploy, deploy_with, deploy_with_secret, draft_everything};
use serde_json::json;
use tokio::sync::Notify;

#[tokio::test]
async fn five_leads_go_from_the_post_to_five_emails_in_ses_exactly_once_though_every_message_is_delivered_twice() {
    let stack = deploy().await;
    assert!(stack.runtime.unsubscribe_keys.signer().await.is_some(), "the signing key was read from the secret");
    let execution_id = stack.start(5).await;

    stack.drain(&stack.runtime, 2).await;

    let emails = stack.emails().await;
    let mut recipients: Vec<String> = emails.iter().map(|(to, _)| to[0].clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(emails.len(), 5, "one email per lead: {recipients:?}");
    assert_eq!(recipients.len(), 5);
    for (_, raw) in &emails {
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(raw.contains("https://api.test.example/unsubscribe/"));
        assert!(raw.contains(".step0@northwind-analytics.example>"), "the Message-ID is ours");
    }
    let execution = stack.execution(&execution_id).await;
    assert_eq!(execution["lead_counts"], json!({"sent": 5}), "{execution}");
    assert_eq!(execution["counters"]["sent"], 5);
    let leads = stack.leads(&execution_id).await;
    for lead in &leads {
        let sent = &lead["sent_messages"][0];
        let provider_id = sent["provider_message_id"].as_str().unwrap();
        assert_eq!(sent["message_id"], format!("{provider_id}@email.amazonses.com"), "SES's own Message-ID is what replies refer to");
    }
}

#[tokio::test]
async fn ses_throttling_then_acceptance_sends_one_email() {
    let mut stack = deploy_with(default_secret(), Some(FaultPlan { ses_throttles: 1, ..FaultPlan::default() })).await;
    let clock = Arc::new(ManualClock::starting_at(chrono::Utc::now()));
    stack.runtime.clock = clock.clone();
    let execution_id = stack.start(1).await;

    stack.drain(&stack.runtime, 1).await;
    let lead = &stack.leads(&execution_id).await[0];
    assert_eq!(lead["state"], "waiting", "a throttled send waits in the table, not in the queue: {lead}");
    assert!(lead["why"].as_str().unwrap().contains("Throttling"), "{lead}");
    clock.advance(chrono::Duration::minutes(2));
    stack.runtime.scheduled_tasks().run().await.expect("the scheduled run");
    stack.drain(&stack.runtime, 1).await;

    let counts = &stack.proxy.as_ref().unwrap().counts;
    assert_eq!(
        (counts.ses_throttles.load(Ordering::SeqCst), counts.emails_accepted.load(Ordering::SeqCst)),
        (1, 1),
        "throttled once, accepted on the retry"
    );
    assert_eq!(stack.emails().await.len(), 1);
    assert_eq!(stack.leads(&execution_id).await[0]["state"], "sent");
}

#[tokio::test]
async fn a_spent_ses_quota_makes_the_lead_wait_an_hour_without_counting_against_it() {
    let mut stack = deploy_with(default_secret(), Some(FaultPlan { ses_quota_spent: 1, ..FaultPlan::default() })).await;
    let clock = Arc::new(ManualClock::starting_at(chrono::Utc::now()));
    stack.runtime.clock = clock.clone();
    let execution_id = stack.start(1).await;

    stack.drain(&stack.runtime, 1).await;
    let lead = &stack.leads(&execution_id).await[0];
    assert_eq!(lead["state"], "waiting", "{lead}");
    assert!(lead["why"].as_str().unwrap().contains("Daily message quota"), "{lead}");
    assert_eq!(lead["send_retries"], serde_json::Value::Null, "a spent quota is no refusal of this email");
    let until: chrono::DateTime<chrono::Utc> = lead["until"].as_str().unwrap().parse().unwrap();
    assert_eq!(until - clock.now(), chrono::Duration::hours(1), "SES's quota is a rolling day: an hour frees some of it");
    assert_eq!(stack.execution(&execution_id).await["state"], "running", "a spent quota no longer pauses the execution");

    clock.advance(chrono::Duration::minutes(61));
    stack.runtime.scheduled_tasks().run().await.expect("the scheduled run");
    stack.drain(&stack.runtime, 1).await;
    assert_eq!(stack.leads(&execution_id).await[0]["state"], "sent");
    assert_eq!(stack.emails().await.len(), 1);
}

#[tokio::test]
async fn a_crash_after_ses_accepted_parks_the_lead_once_the_claim_is_stale_and_sends_no_second_email() {
    let mut stack = deploy().await;
    let clock = Arc::new(ManualClock::starting_at(chrono::Utc::now()));
    stack.runtime.clock = clock.clone();
    let execution_id = stack.start(1).await;
    draft_everything(&stack).await;
    let sent = Arc::new(Notify::new());
    let mut crashing = stack.runtime.clone();
    crashing.mailer = Arc::new(DiesAfterSending { mailer: stack.runtime.mailer.clone(), sent: sent.clone() });
    let mapping = stack.mapping(&stack.queues.urls.send, &stack.queues.arns.send, 1);
    let batch = mapping.receive().await.expect("a send message");
    let doomed = crashing.send_step();
    let event = batch.event.clone();
    let invocation = tokio::spawn(async move { process_batch(event, &doomed, 5).await });
    sent.notified().await;
    invocation.abort();
    assert_eq!(stack.emails().await.len(), 1);

    // The message was never deleted: SQS delivers it again. While the claim is young a live
    // worker may still own it, so the delivery waits instead of parking or sending.
    mapping.release(&batch).await;
    let early = mapping.poll(&stack.runtime.send_step()).await;
    assert_eq!((early.received, early.failed), (1, 1), "retried later");
    assert_eq!(stack.leads(&execution_id).await[0]["state"], "sending");

    // Past the send timeout the worker is certainly gone: the next delivery parks the lead.
    clock.advance(chrono::Duration::minutes(3));
    mapping.release(&batch).await;
    let redelivered = mapping.poll(&stack.runtime.send_step()).await;

    assert_eq!((redelivered.received, redelivered.failed), (1, 0));
    assert_eq!(stack.emails().await.len(), 1, "no second email");
    let lead = &stack.leads(&execution_id).await[0];
    assert_eq!(lead["state"], "parked", "{lead}");
    assert!(lead["reason"].as_str().unwrap().contains("may or may not have left"));
    let execution = stack.execution(&execution_id).await;
    assert!(execution["needs_attention"][0].as_str().unwrap().contains("parked"), "the execution says so: {execution}");
}

#[tokio::test]
async fn two_workers_racing_on_one_send_message_send_one_email() {
    let stack = deploy().await;
    stack.start(1).await;
    draft_everything(&stack).await;
    let sqs = aws_sdk_sqs::Client::new(&stack.config);
    let received = sqs.receive_message().queue_url(&stack.queues.urls.send).max_number_of_messages(10).send().await.unwrap();
    let message = received.messages.unwrap().remove(0);
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
    record.message_id = message.message_id.clone();
    record.body = message.body.clone();
    event.records.push(record);
    let (one, other) = (stack.runtime.send_step(), stack.runtime.send_step());

    let (a, b) = tokio::join!(process_batch(event.clone(), &one, 5), process_batch(event.clone(), &other, 5));

    assert_eq!(stack.emails().await.len(), 1);
    let waiting = a.batch_item_failures.len() + b.batch_item_failures.len();
    assert!(waiting <= 1, "at most the loser waits for the live claim: {a:?} {b:?}");
    // Delivered again once the winner recorded the send: done, nothing sent.
    let again = process_batch(event, &stack.runtime.send_step(), 5).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(stack.emails().await.len(), 1);
}

#[tokio::test]
async fn a_poison_message_ends_in_the_dead_letter_queue_and_its_lead_shows_failed_with_the_reason() {
    let stack = deploy().await;
    let execution_id = stack.start(1).await;
    let (q, a) = (&stack.queues.urls, &stack.queues.arns);
    stack.mapping(&q.research, &a.research, 1).poll(&stack.runtime.research_step()).await;
    // The agent disappears behind the API's back: every draft attempt now fails.
    let agent_id = stack.leads(&execution_id).await[0]["agent_id"].as_str().unwrap().parse().unwrap();
    stack.runtime.store.delete_agent(agent_id).await.unwrap();

    let draft = stack.mapping(&q.draft, &a.draft, 1);
    let mut attempts = 0;
    for _ in 0..20 {
        let report = draft.poll(&stack.runtime.draft_step()).await;
        if report.received == 0 {
            break;
        }
        attempts += report.received;
    }

    assert_eq!(attempts as u32, stack.queues.max_receive_count);
    let sqs = aws_sdk_sqs::Client::new(&stack.config);
    let dead = sqs.receive_message().queue_url(&stack.queues.dead_letters.draft).max_number_of_messages(10).send().await.unwrap();
    assert_eq!(dead.messages.unwrap_or_default().len(), 1, "the message is in the draft dead-letter queue");
    let lead = &stack.leads(&execution_id).await[0];
    assert_eq!(lead["state"], "failed");
    assert!(lead["reason"].as_str().unwrap().starts_with("draft step gave up after 5 attempts"), "{lead}");
}

#[tokio::test]
async fn a_secret_without_the_signing_key_pauses_the_execution_fails_no_lead_and_resume_sends_after_the_fix() {
    let mut stack = deploy_with_secret(json!({"openai_api_key": ""})).await;
    let secret_id = stack.runtime.settings.aws.secret_id.clone().unwrap();
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.config);
    stack.runtime.unsubscribe_keys =
        Arc::new(SecretUnsubscribeKeys::new(secrets.clone(), Some(secret_id.clone()), None).retrying_after(std::time::Duration::ZERO));
    assert!(stack.runtime.unsubscribe_keys.signer().await.is_none());
    let execution_id = stack.start(1).await;
    draft_everything(&stack).await;

    let report = stack.mapping(&stack.queues.urls.send, &stack.queues.arns.send, 1).poll(&stack.runtime.send_step()).await;

    assert_eq!((report.received, report.failed), (1, 0), "the message is done with: the lead waits held, not in the queue");
    assert!(stack.emails().await.is_empty(), "no email without a working unsubscribe link");
    let lead = &stack.leads(&execution_id).await[0];
    assert_eq!((lead["state"].as_str(), lead["on_hold"].as_bool()), (Some("drafted"), Some(true)), "{lead}");
    let execution = stack.execution(&execution_id).await;
    assert_eq!(execution["state"], "paused");
    assert!(execution["pause_reason"].as_str().unwrap().contains("unsubscribe signing key"), "{execution}");
    assert!(execution["needs_attention"][0].as_str().unwrap().contains("resume"), "{execution}");

    // The team adds the key to the secret and resumes: the warm function reads the key again.
    let fixed = json!({"unsubscribe_signing_key": "test-only-signing-key", "openai_api_key": ""});
    secrets.put_secret_value().secret_id(&secret_id).secret_string(fixed.to_string()).send().await.unwrap();
    let (status, resumed) = stack.post(&format!("/api/v1/executions/{execution_id}/resume"), json!({})).await;
    assert_eq!((status, resumed["requeued_leads"].as_u64()), (StatusCode::OK, Some(1)), "{resumed}");
    stack.drain(&stack.runtime, 1).await;
    assert_eq!(stack.emails().await.len(), 1);
    assert_eq!(stack.leads(&execution_id).await[0]["state"], "sent");
}

#[tokio::test]
async fn the_scheduled_function_reads_the_secrets_mailbox_and_ends_sequences_on_dynamodb() {
    let mailbox = TestMailbox::user(5);
    let stack = deploy_with_secret(json!({
        "unsubscribe_signing_key": "test-only-signing-key",
        "mailboxes": [{"host": "127.0.0.1", "port": mailbox.plain_port, "username": mailbox.user, "password": mailbox.password,
                       "security": "plain", "address": SENDER}]
    }))
    .await;
    let execution_id = stack.start(2).await;
    stack.drain(&stack.runtime, 1).await;
    let leads = stack.leads(&execution_id).await;
    let email = |i: usize| leads[i]["contact"]["email"].as_str().unwrap().to_string();
    // The reply refers to the Message-ID SES gave the email.
    let replied_to = leads[0]["sent_messages"][0]["message_id"].as_str().unwrap();
    mailbox.deliver(&reply_to(replied_to, &email(0), "", "Sounds good, send me times."));
    mailbox.deliver(&delivery_failure(&email(1), "5.1.1", None));

    let tasks = stack.runtime.scheduled_tasks();
    let report = handle_scheduled(&tasks).await.unwrap().replies.expect("the secret's mailbox is read");
    assert_eq!((report.read, report.matched), (2, 2), "{report:?}");
    let leads = stack.leads(&execution_id).await;
    let state_of = |address: &str| leads.iter().find(|l| l["contact"]["email"] == address).unwrap()["state"].clone();
    assert_eq!(state_of(&email(0)), "replied");
    assert_eq!(state_of(&email(1)), "bounced");
    let execution = stack.execution(&execution_id).await;
    assert_eq!((execution["counters"]["replied"].as_u64(), execution["counters"]["bounced"].as_u64()), (Some(1), Some(1)));

    let cursors = stack.runtime.store.list_mailbox_cursors().await.unwrap();
    let cursor = cursors.iter().find(|c| c.folder == format!("{}/INBOX", mailbox.user)).expect("the cursor is in DynamoDB");
    assert_eq!(cursor.last_uid, 2);
    let again = handle_scheduled(&tasks).await.unwrap().replies.unwrap();
    assert_eq!(again.read, 0, "the cursor holds: {again:?}");
}

#[tokio::test]
async fn a_model_key_refused_then_fixed_in_the_secret_works_on_resume_without_a_cold_start() {
    use sales_agent::adapters::aws::SecretReloadingDrafter;
    use sales_agent::adapters::llm_drafter::LlmSettings;
    use wiremock::matchers::{body_partial_json, header, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let model = MockServer::start().await;
    let draft = json!({"subject": "Initech and forecasting", "body": "Hi there,\n\nA note about forecasting.", "facts_used": []});
    let answer = json!({"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": draft.to_string()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}});
    let accepted = ResponseTemplate::new(200).set_body_json(answer);
    let refused = ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "Incorrect API key provided"}}));
    let checked = json!({"claims": []}).to_string();
    let verified = ResponseTemplate::new(200).set_body_json(json!({"id": "c2", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": checked}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}));
    Mock::given(method("POST"))
        .and(header("authorization", "Bearer fixed-key"))
        .and(body_partial_json(json!({"response_format": {"json_schema": {"name": "claim_check"}}})))
        .respond_with(verified)
        .with_priority(1)
        .mount(&model)
        .await;
    Mock::given(method("POST"))
        .and(header("authorization", "Bearer fixed-key"))
        .respond_with(accepted)
        .with_priority(2)
        .mount(&model)
        .await;
    Mock::given(method("POST")).respond_with(refused).with_priority(3).mount(&model).await;
    let mut stack = deploy_with_secret(json!({"unsubscribe_signing_key": "test-only-signing-key", "openai_api_key": "revoked-key"})).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.config);
    let llm = LlmSettings {
        base_url: format!("{}/v1", model.uri()),
        api_key: secrecy::SecretString::from("revoked-key"),
        model: "m".into(),
        temperature: 0.2,
        timeout: std::time::Duration::from_secs(5),
        max_attempts: 1,
    };
    let drafter = SecretReloadingDrafter::new(secrets.clone(), stack.secret_id.clone(), llm, stack.clock.clone()).unwrap();
    stack.runtime.drafter = Arc::new(drafter.reloading_after(std::time::Duration::ZERO));
    let execution_id = stack.start(2).await;

    stack.drain(&stack.runtime, 1).await;

    let execution = stack.execution(&execution_id).await;
    assert_eq!(execution["state"], "paused", "{execution}");
    assert!(execution["pause_reason"].as_str().unwrap().contains("401"), "{execution}");
    assert_eq!(execution["lead_counts"], json!({"researched": 2}), "no lead failed");

    let fixed = json!({"unsubscribe_signing_key": "test-only-signing-key", "openai_api_key": "fixed-key"});
    secrets.put_secret_value().secret_id(&stack.secret_id).secret_string(fixed.to_string()).send().await.unwrap();
    let (status, resumed) = stack.post(&format!("/api/v1/executions/{execution_id}/resume"), json!({})).await;
    assert_eq!((status, resumed["requeued_leads"].as_u64()), (StatusCode::OK, Some(2)), "{resumed}");
    stack.drain(&stack.runtime, 1).await;

    let execution = stack.execution(&execution_id).await;
    assert_eq!(execution["lead_counts"], json!({"sent": 2}), "{execution}");
    assert_eq!(stack.emails().await.len(), 2);
}

/// An SES event as the configuration set publishes it, in the envelope SNS delivers to SQS.
fn sns_envelope(sns_id: &str, event: serde_json::Value) -> String {
    json!({
        "Type": "Notification", "MessageId": sns_id, "TopicArn": "arn:aws:sns:us-east-1:123456789012:sales-agent-feedback-test",
        "Message": event.to_string(), "Timestamp": "2026-11-30T10:00:00.000Z", "SignatureVersion": "1",
    })
    .to_string()
}

fn ses_event(kind: &str, ses_message_id: &str, recipient: &str) -> serde_json::Value {
    let mail = json!({"timestamp": "2026-11-30T09:59:00.000Z", "source": SENDER, "messageId": ses_message_id, "destination": [recipient]});
    match kind {
        "Bounce" => json!({"eventType": "Bounce", "mail": mail, "bounce": {
            "bounceType": "Permanent", "bounceSubType": "General", "timestamp": "2026-11-30T10:00:00.000Z",
            "bouncedRecipients": [{"emailAddress": recipient, "action": "failed", "status": "5.1.1",
                                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}}),
        "Complaint" => json!({"eventType": "Complaint", "mail": mail, "complaint": {
            "complainedRecipients": [{"emailAddress": recipient}], "complaintFeedbackType": "abuse",
            "timestamp": "2026-11-30T10:00:00.000Z"}}),
        _ => json!({"eventType": "Delivery", "mail": mail, "delivery": {
            "recipients": [recipient], "smtpResponse": "250 2.0.0 OK", "timestamp": "2026-11-30T10:00:00.000Z"}}),
    }
}

#[tokio::test]
async fn ses_events_from_the_feedback_queue_end_their_leads_once_and_an_unreadable_one_goes_back_to_the_queue() {
    let stack = deploy().await;
    let execution_id = stack.start(3).await;
    stack.drain(&stack.runtime, 1).await;
    let leads = stack.leads(&execution_id).await;
    let sqs = aws_sdk_sqs::Client::new(&stack.config);
    let (url, arn) = sales_agent_tests::aws::create_queue(&sqs, &sales_agent_tests::aws::unique("feedback"), vec![]).await;
    let email_of = |lead: &serde_json::Value| lead["contact"]["email"].as_str().unwrap().to_string();
    let ses_id_of = |lead: &serde_json::Value| lead["sent_messages"][0]["provider_message_id"].as_str().unwrap().to_string();
    for (index, kind) in ["Bounce", "Complaint", "Delivery"].into_iter().enumerate() {
        let body = sns_envelope(
            &format!("sns-{index}-{}", uuid::Uuid::new_v4()),
            ses_event(kind, &ses_id_of(&leads[index]), &email_of(&leads[index])),
        );
        sqs.send_message().queue_url(&url).message_body(body).send().await.unwrap();
    }
    sqs.send_message().queue_url(&url).message_body("{\"not\": \"an SES event\"}").send().await.unwrap();

    let mapping = stack.mapping(&url, &arn, 1);
    let consumer = stack.runtime.feedback_consumer();
    let batch = mapping.receive().await.expect("the events");
    assert_eq!(batch.event.records.len(), 4);
    let mut failures = Vec::new();
    for _ in 0..2 {
        // SQS delivers at least once: the whole batch twice.
        let response = sales_agent::lambda::handle_feedback(&consumer, batch.event.clone()).await;
        failures = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect::<Vec<_>>();
    }
    let unreadable = batch.event.records.iter().find(|r| r.body.as_deref().unwrap().contains("not")).unwrap();
    assert_eq!(failures, vec![unreadable.message_id.clone().unwrap()], "only the unreadable one is kept for the dead-letter queue");

    let now_leads = stack.leads(&execution_id).await;
    let state_of = |lead: &serde_json::Value| now_leads.iter().find(|l| l["id"] == lead["id"]).unwrap().clone();
    let states: Vec<String> = leads.iter().map(|l| state_of(l)["state"].as_str().unwrap().to_string()).collect();
    assert_eq!(states, ["bounced", "unsubscribed", "sent"]);
    let execution = stack.execution(&execution_id).await;
    assert_eq!(
        (execution["counters"]["bounced"].as_u64(), execution["counters"]["complained"].as_u64()),
        (Some(1), Some(1)),
        "counted once"
    );
    for lead in &leads[..2] {
        let address = sales_agent::domain::EmailAddress::parse(&email_of(lead)).unwrap();
        let entry = stack.inspector.suppression_for(&address).await.unwrap().expect("suppressed");
        assert_eq!(entry.source.as_deref().map(|s| s.ends_with("ses-events")), Some(true), "{entry:?}");
    }
    let delivered = state_of(&leads[2]);
    assert_eq!(delivered["inbound"][0]["class"], "delivery_report", "{delivered}");
}

#[tokio::test]
async fn the_send_pace_is_this_functions_share_of_the_accounts_maximum_send_rate() {
    let config = sales_agent_tests::aws::config().await;
    // moto reports a sandbox account's 1 email a second; two send functions share it.
    let mailer = sales_agent::adapters::aws::SesMailer::new(&config, None, 2, None);
    assert_eq!(mailer.pace().await.expect("the rate is read from SES").interval(), std::time::Duration::from_secs(2));
}
