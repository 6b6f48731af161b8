//! The deployed system on moto: the table, indexes, queues and redrive policies come from
//! template.yaml; the API is driven with API Gateway v2 payloads; each worker is fed batches
//! received from its queue the way Lambda's event source mapping builds them. Then the faults:
//! SES throttling, a crash after SES accepted, two workers racing, a poison message.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use http_body_util::BodyExt;
use sales_agent::adapters::aws::{SecretUnsubscribeKeys, SesMailer};
use sales_agent::app::StepWorker;
use sales_agent::config::{Backend, Settings};
use sales_agent::lambda::{handle_scheduled, process_batch};
use sales_agent::ports::ManualClock;
use sales_agent::runtime::Runtime;
use sales_agent_tests::aws::{self, DeployedQueues};
use sales_agent_tests::event_source::EventSourceMapping;
use sales_agent_tests::faults::DiesAfterSending;
use sales_agent_tests::imap::TestMailbox;
use sales_agent_tests::mail::{delivery_failure, reply_to};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tower::ServiceExt;

const SENDER: &str = "dana@northwind-analytics.example";

/// Points an API Gateway v2 event at another path.
fn at_path(event: &mut Value, path: &str) {
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
}

struct Stack {
    config: aws_config::SdkConfig,
    queues: DeployedQueues,
    runtime: Runtime,
    /// Lead addresses of this test are under this domain, so the shared moto SES store can be
    /// read per test.
    lead_domain: String,
}

async fn deploy() -> Stack {
    deploy_with_secret(json!({"unsubscribe_signing_key": "test-only-signing-key", "openai_api_key": "", "mailboxes": []})).await
}

async fn deploy_with_secret(secret: Value) -> Stack {
    let config = aws::config().await;
    let table = aws::unique("sales-agent");
    aws::create_state_table(&config, &table).await;
    let queues = aws::create_step_queues(&config).await;
    let secret = aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name(aws::unique("sales-agent-secret"))
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap();
    aws_sdk_ses::Client::new(&config).verify_email_identity().email_address(SENDER).send().await.unwrap();
    let mut settings = Settings::for_data_dir(std::env::temp_dir());
    settings.backend = Backend::Aws;
    settings.public_base_url = "https://api.test.example".into();
    settings.aws.table = Some(table);
    settings.aws.research_queue_url = Some(queues.urls.research.clone());
    settings.aws.draft_queue_url = Some(queues.urls.draft.clone());
    settings.aws.send_queue_url = Some(queues.urls.send.clone());
    settings.aws.secret_id = secret.arn;
    let runtime = Runtime::on_aws(settings, &config).await.unwrap();
    Stack { config, queues, runtime, lead_domain: format!("{}.example", uuid::Uuid::new_v4().simple()) }
}

impl Stack {
    fn mapping(&self, url: &str, arn: &str, deliveries_per_batch: usize) -> EventSourceMapping {
        EventSourceMapping {
            client: aws_sdk_sqs::Client::new(&self.config),
            queue_url: url.to_string(),
            queue_arn: arn.to_string(),
            deliveries_per_batch,
            max_receive_count: self.queues.max_receive_count,
        }
    }

    /// Polls research, draft and send until every queue is empty.
    async fn drain(&self, runtime: &Runtime, deliveries_per_batch: usize) {
        let (q, a) = (&self.queues.urls, &self.queues.arns);
        let stages: [(EventSourceMapping, Box<dyn StepWorker>); 3] = [
            (self.mapping(&q.research, &a.research, deliveries_per_batch), Box::new(runtime.research_step())),
            (self.mapping(&q.draft, &a.draft, deliveries_per_batch), Box::new(runtime.draft_step())),
            (self.mapping(&q.send, &a.send, deliveries_per_batch), Box::new(runtime.send_step())),
        ];
        for _ in 0..200 {
            let mut received = 0;
            for (mapping, worker) in &stages {
                received += mapping.poll(worker.as_ref()).await.received;
            }
            if received == 0 {
                return;
            }
        }
        panic!("the queues did not drain");
    }

    async fn api(&self, event_file: &str, edit: impl FnOnce(&mut Value)) -> (StatusCode, Value) {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(event_file);
        let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        edit(&mut event);
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let response = self.runtime.router().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Creates the sample agent and starts an execution with `count` leads, through the API.
    async fn start(&self, count: usize) -> String {
        let (status, agent) = self.api("api-create-agent.json", |_| {}).await;
        assert_eq!(status, StatusCode::CREATED, "{agent}");
        let agent_id = agent["id"].as_str().unwrap().to_string();
        let leads: Vec<Value> = (0..count)
            .map(|i| json!({"email": format!("lead{i}@{}", self.lead_domain), "first_name": format!("Lead{i}"), "company": "Initech"}))
            .collect();
        let (status, started) = self
            .api("api-start-execution-json.json", |event| {
                at_path(event, &format!("/api/v1/agents/{agent_id}/executions"));
                event["body"] = json!(json!({"leads": leads}).to_string());
            })
            .await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        started["execution"]["id"].as_str().unwrap().to_string()
    }

    async fn execution(&self, id: &str) -> Value {
        let (status, execution) = self
            .api("api-get-execution.json", |event| {
                at_path(event, &format!("/api/v1/executions/{id}"));
            })
            .await;
        assert_eq!(status, StatusCode::OK);
        execution
    }

    async fn leads(&self, execution_id: &str) -> Vec<Value> {
        let (_, page) = self
            .api("api-list-execution-leads.json", |event| {
                at_path(event, &format!("/api/v1/executions/{execution_id}/leads"));
                event["rawQueryString"] = json!("limit=100");
                event["queryStringParameters"] = json!({"limit": "100"});
            })
            .await;
        page["items"].as_array().unwrap().clone()
    }

    /// The emails moto's SES accepted for this test's leads.
    async fn emails(&self) -> Vec<(Vec<String>, String)> {
        aws::sent_emails().await.into_iter().filter(|(to, _)| to.iter().any(|t| t.ends_with(&self.lead_domain))).collect()
    }
}

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

/// Answers the first `throttles` SendRawEmail calls with SES's own Throttling error and passes
/// everything else to moto.
async fn throttling_proxy(throttles: usize) -> (String, Arc<AtomicUsize>) {
    let remaining = Arc::new(AtomicUsize::new(throttles));
    let sends = Arc::new(AtomicUsize::new(0));
    let target = aws::endpoint();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback({
        let (remaining, sends) = (remaining.clone(), sends.clone());
        move |request: axum::extract::Request| {
            let (remaining, sends, http, target) = (remaining.clone(), sends.clone(), http.clone(), target.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                if String::from_utf8_lossy(&body).contains("Action=SendRawEmail") {
                    sends.fetch_add(1, Ordering::SeqCst);
                    if remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                        let xml = "<ErrorResponse xmlns=\"http://ses.amazonaws.com/doc/2010-12-01/\"><Error><Type>Sender</Type>\
                                   <Code>Throttling</Code><Message>Maximum sending rate exceeded.</Message></Error>\
                                   <RequestId>throttled-1</RequestId></ErrorResponse>";
                        return axum::http::Response::builder()
                            .status(400)
                            .header("content-type", "text/xml")
                            .body(axum::body::Body::from(xml))
                            .unwrap();
                    }
                }
                let mut forward = http.request(parts.method.clone(), format!("{target}{}", parts.uri));
                for (name, value) in &parts.headers {
                    if name != "host" && name != "content-length" {
                        forward = forward.header(name, value);
                    }
                }
                let answer = forward.body(body).send().await.unwrap();
                let mut response = axum::http::Response::builder().status(answer.status().as_u16());
                for (name, value) in answer.headers() {
                    if name != "content-length" && name != "transfer-encoding" {
                        response = response.header(name, value);
                    }
                }
                response.body(axum::body::Body::from(answer.bytes().await.unwrap())).unwrap()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, sends)
}

#[tokio::test]
async fn ses_throttling_then_acceptance_sends_one_email() {
    let stack = deploy().await;
    let execution_id = stack.start(1).await;
    let (proxy, sends) = throttling_proxy(1).await;
    let mut runtime = stack.runtime.clone();
    let through_proxy = aws_config::SdkConfig::builder()
        .region(stack.config.region().cloned())
        .credentials_provider(stack.config.credentials_provider().unwrap())
        .endpoint_url(proxy)
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    runtime.mailer = Arc::new(SesMailer::new(&through_proxy, None));

    stack.drain(&runtime, 1).await;

    assert_eq!(sends.load(Ordering::SeqCst), 2, "throttled once, accepted on the retry");
    assert_eq!(stack.emails().await.len(), 1);
    assert_eq!(stack.leads(&execution_id).await[0]["state"], "sent");
}

/// Runs research and drafting for every lead, so only send messages are left.
async fn draft_everything(stack: &Stack) {
    let (q, a) = (&stack.queues.urls, &stack.queues.arns);
    for _ in 0..10 {
        stack.mapping(&q.research, &a.research, 1).poll(&stack.runtime.research_step()).await;
        stack.mapping(&q.draft, &a.draft, 1).poll(&stack.runtime.draft_step()).await;
    }
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
    let (status, resumed) = stack
        .api("api-get-execution.json", |event| {
            at_path(event, &format!("/api/v1/executions/{execution_id}/resume"));
            event["requestContext"]["http"]["method"] = json!("POST");
        })
        .await;
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
