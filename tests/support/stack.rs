//! The deployed stack on moto, as the tests drive it: the table, indexes, queues and redrive
//! policies made from template.yaml, the secret, a verified sender, and a `Runtime` wired as the
//! functions wire it, optionally through a fault-injecting proxy. The API is called with API
//! Gateway v2 payloads; each worker is fed batches the way Lambda's event source mapping builds
//! them.

use std::sync::Arc;

use axum::http::StatusCode;
use http_body_util::BodyExt;
use sales_agent::adapters::aws::DynamoStore;
use sales_agent::app::StepWorker;
use sales_agent::config::{Backend, Settings};
use sales_agent::ports::ManualClock;
use sales_agent::runtime::Runtime;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::aws::{self, DeployedQueues};
use crate::event_source::EventSourceMapping;
use crate::fault_proxy::{self, FaultPlan, FaultProxy};

pub const SENDER: &str = "dana@northwind-analytics.example";

/// Points an API Gateway v2 event at another path.
pub fn at_path(event: &mut Value, path: &str) {
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
}

pub struct Stack {
    /// Configuration for the test's own calls to moto (setup and inspection, never faulted).
    pub config: aws_config::SdkConfig,
    pub queues: DeployedQueues,
    /// The system under test, wired as the functions wire it.
    pub runtime: Runtime,
    /// Lead addresses of this test are under this domain, so the shared moto SES store can be
    /// read per test.
    pub lead_domain: String,
    /// The proxy between the runtime and moto, when the test injects faults.
    pub proxy: Option<FaultProxy>,
    /// The runtime's clock, so a test can let time pass.
    pub clock: Arc<ManualClock>,
    pub table: String,
    pub secret_id: String,
    /// The table read straight from moto (never through the fault proxy), to check results.
    pub inspector: DynamoStore,
}

pub fn default_secret() -> Value {
    json!({"unsubscribe_signing_key": "test-only-signing-key", "openai_api_key": "", "mailboxes": []})
}

pub async fn deploy() -> Stack {
    deploy_with(default_secret(), None).await
}

pub async fn deploy_with_secret(secret: Value) -> Stack {
    deploy_with(secret, None).await
}

/// Deploys a fresh stack; with a plan, the runtime reaches moto through a fault proxy.
pub async fn deploy_with(secret: Value, faults: Option<FaultPlan>) -> Stack {
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
    let secret_id = secret.arn.expect("the secret has an ARN");
    aws_sdk_ses::Client::new(&config).verify_email_identity().email_address(SENDER).send().await.unwrap();
    let mut settings = Settings::for_data_dir(std::env::temp_dir());
    settings.backend = Backend::Aws;
    settings.public_base_url = "https://api.test.example".into();
    settings.aws.table = Some(table.clone());
    settings.aws.research_queue_url = Some(queues.urls.research.clone());
    settings.aws.draft_queue_url = Some(queues.urls.draft.clone());
    settings.aws.send_queue_url = Some(queues.urls.send.clone());
    settings.aws.secret_id = Some(secret_id.clone());
    // moto reports a sandbox account's rate (1 a second); the tests send faster. The rate read
    // from SES is tested on its own.
    settings.aws.ses_max_send_rate = Some(1000.0);
    let proxy = match faults {
        Some(plan) => Some(fault_proxy::start(aws::endpoint(), plan).await),
        None => None,
    };
    let runtime_config = match &proxy {
        Some(proxy) => aws::config_at(&proxy.endpoint).await,
        None => config.clone(),
    };
    let mut runtime = Runtime::on_aws(settings, &runtime_config).await.unwrap();
    let clock = Arc::new(ManualClock::starting_at(chrono::Utc::now()));
    runtime.clock = clock.clone();
    let lead_domain = format!("{}.example", uuid::Uuid::new_v4().simple());
    let inspector = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table.clone());
    Stack { config, queues, runtime, lead_domain, proxy, clock, table, secret_id, inspector }
}

impl Stack {
    pub fn mapping(&self, url: &str, arn: &str, deliveries_per_batch: usize) -> EventSourceMapping {
        EventSourceMapping {
            client: aws_sdk_sqs::Client::new(&self.config),
            queue_url: url.to_string(),
            queue_arn: arn.to_string(),
            deliveries_per_batch,
            max_receive_count: self.queues.max_receive_count,
        }
    }

    /// Polls research, draft and send until every queue is empty.
    pub async fn drain(&self, runtime: &Runtime, deliveries_per_batch: usize) {
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

    pub async fn api(&self, event_file: &str, edit: impl FnOnce(&mut Value)) -> (StatusCode, Value) {
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
    pub async fn start(&self, count: usize) -> String {
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

    pub async fn execution(&self, id: &str) -> Value {
        let (status, execution) = self
            .api("api-get-execution.json", |event| {
                at_path(event, &format!("/api/v1/executions/{id}"));
            })
            .await;
        assert_eq!(status, StatusCode::OK);
        execution
    }

    pub async fn leads(&self, execution_id: &str) -> Vec<Value> {
        let (_, page) = self
            .api("api-list-execution-leads.json", |event| {
                at_path(event, &format!("/api/v1/executions/{execution_id}/leads"));
                event["rawQueryString"] = json!("limit=100");
                event["queryStringParameters"] = json!({"limit": "100"});
            })
            .await;
        page["items"].as_array().unwrap().clone()
    }

    /// Creates the test agent straight in the table (setup, never faulted).
    pub async fn create_agent(&self) -> sales_agent::domain::AgentId {
        let spec: sales_agent::domain::AgentSpec = serde_json::from_value(crate::agent_spec_sending_as(SENDER)).unwrap();
        let agent = spec.into_agent(sales_agent::domain::AgentId::generate(), chrono::Utc::now());
        sales_agent::ports::store::AgentStore::create_agent(&self.inspector, &agent).await.unwrap();
        agent.id
    }

    /// One start request of `count` leads with the Idempotency-Key `key`.
    pub async fn start_once(&self, agent_id: sales_agent::domain::AgentId, key: &str, count: usize) -> (StatusCode, Value) {
        let leads: Vec<Value> = (0..count)
            .map(|i| json!({"email": format!("lead{i}@{}", self.lead_domain), "first_name": format!("Lead{i}"), "company": "Initech"}))
            .collect();
        self.api("api-start-execution-json.json", |event| {
            at_path(event, &format!("/api/v1/agents/{agent_id}/executions"));
            event["headers"]["idempotency-key"] = json!(key);
            event["body"] = json!(json!({"leads": leads}).to_string());
        })
        .await
    }

    /// Starts an execution of `count` leads as a careful client would under faults: the start is
    /// retried with one Idempotency-Key until it is answered with success.
    pub async fn start_retrying(&self, count: usize) -> String {
        let agent_id = self.create_agent().await;
        let key = uuid::Uuid::new_v4().to_string();
        for _ in 0..20 {
            let (status, started) = self.start_once(agent_id, &key, count).await;
            if status.is_success() {
                return started["execution"]["id"].as_str().unwrap().to_string();
            }
            assert!(status.is_server_error(), "only a transient failure is retried: {status} {started}");
        }
        panic!("the start never succeeded");
    }

    /// Calls `POST path` through the API with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.api("api-start-execution-json.json", |event| {
            at_path(event, path);
            event["body"] = json!(body.to_string());
        })
        .await
    }

    /// Lets the system run until nothing moves: the queues drain, then time passes beyond every
    /// step's budget and the scheduled function runs (reading replies, sweeping lost leads), as
    /// often as it takes.
    pub async fn settle(&self, deliveries_per_batch: usize) {
        let tasks = self.runtime.scheduled_tasks();
        for _ in 0..8 {
            self.drain(&self.runtime, deliveries_per_batch).await;
            self.clock.advance(sales_agent::domain::transition::STEP_BUDGET + chrono::Duration::minutes(1));
            match tasks.run().await {
                Ok(report) if report.sweep == Default::default() => return,
                Ok(_) => {}
                Err(error) => eprintln!("the scheduled run failed and runs again: {error}"),
            }
        }
    }

    /// The emails moto's SES accepted for this test's leads.
    pub async fn emails(&self) -> Vec<(Vec<String>, String)> {
        aws::sent_emails().await.into_iter().filter(|(to, _)| to.iter().any(|t| t.ends_with(&self.lead_domain))).collect()
    }
}

/// Runs research and drafting for every lead, so only send messages are left.
pub async fn draft_everything(stack: &Stack) {
    let (q, a) = (&stack.queues.urls, &stack.queues.arns);
    for _ in 0..10 {
        stack.mapping(&q.research, &a.research, 1).poll(&stack.runtime.research_step()).await;
        stack.mapping(&q.draft, &a.draft, 1).poll(&stack.runtime.draft_step()).await;
    }
}
