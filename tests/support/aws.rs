//! AWS for tests: moto on loopback, with the table and queues created from template.yaml's own
//! definitions, so the tests exercise the resources exactly as they are deployed.

use std::path::PathBuf;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use serde_yaml::Value;

/// The moto endpoint `.ci/test` started, e.g. `http://127.0.0.1:5000`.
pub fn endpoint() -> String {
    std::env::var("SALES_AGENT_TEST_AWS_ENDPOINT").expect(
        "AWS tests run against moto: run `bash .ci/test`, or start `python .ci/moto-serial.py 127.0.0.1 5000` (moto installed) and set \
         SALES_AGENT_TEST_AWS_ENDPOINT=http://127.0.0.1:5000",
    )
}

/// An SDK configuration pointing every client at moto, with throwaway credentials.
pub async fn config() -> aws_config::SdkConfig {
    config_at(&endpoint()).await
}

/// The same, pointing at another loopback endpoint (a fault proxy in front of moto).
pub async fn config_at(endpoint: &str) -> aws_config::SdkConfig {
    assert!(endpoint.starts_with("http://127.") || endpoint.starts_with("http://localhost"), "tests only talk to loopback, not {endpoint}");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

/// A name no other test uses, so tests share one moto server.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn template() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A resource's properties, with CloudFormation's `!Ref`-style tags kept as tagged values.
pub fn template_resource(logical_id: &str) -> Value {
    template()["Resources"][logical_id]["Properties"].clone()
}

/// A literal, or a `!Ref` to a parameter resolved to the parameter's default.
fn resolve(value: &Value) -> Value {
    match value {
        Value::Tagged(tagged) if tagged.tag == "!Ref" => {
            let name = tagged.value.as_str().expect("!Ref names a parameter");
            template()["Parameters"][name]["Default"].clone()
        }
        other => other.clone(),
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected text, got {value:?}")).to_string()
}

fn key_schema(value: &Value) -> Vec<KeySchemaElement> {
    value
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| {
            let key_type = if text(&k["KeyType"]) == "HASH" { KeyType::Hash } else { KeyType::Range };
            KeySchemaElement::builder().attribute_name(text(&k["AttributeName"])).key_type(key_type).build().unwrap()
        })
        .collect()
}

/// Creates a table named `name` with the StateTable's keys and indexes from template.yaml.
pub async fn create_state_table(config: &aws_config::SdkConfig, name: &str) {
    let table = template_resource("StateTable");
    let client = aws_sdk_dynamodb::Client::new(config);
    let attributes = table["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| {
            let kind = match text(&a["AttributeType"]).as_str() {
                "S" => ScalarAttributeType::S,
                "N" => ScalarAttributeType::N,
                _ => ScalarAttributeType::B,
            };
            AttributeDefinition::builder().attribute_name(text(&a["AttributeName"])).attribute_type(kind).build().unwrap()
        })
        .collect();
    let indexes = table["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|index| {
            assert_eq!(text(&index["Projection"]["ProjectionType"]), "ALL", "the store reads whole items from every index");
            GlobalSecondaryIndex::builder()
                .index_name(text(&index["IndexName"]))
                .set_key_schema(Some(key_schema(&index["KeySchema"])))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .unwrap()
        })
        .collect();
    assert_eq!(text(&table["BillingMode"]), "PAY_PER_REQUEST");
    client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(&table["KeySchema"])))
        .set_global_secondary_indexes(Some(indexes))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("the table from template.yaml is created on moto");
}

/// The step queues and their dead-letter queues, made from template.yaml's definitions.
pub struct DeployedQueues {
    pub urls: sales_agent::adapters::aws::QueueUrls,
    pub dead_letters: sales_agent::adapters::aws::QueueUrls,
    pub arns: sales_agent::adapters::aws::QueueUrls,
    /// `maxReceiveCount` of the redrive policies.
    pub max_receive_count: u32,
}

pub async fn create_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: Vec<(aws_sdk_sqs::types::QueueAttributeName, String)>,
) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let mut request = client.create_queue().queue_name(name);
    for (key, value) in attributes {
        request = request.attributes(key, value);
    }
    let url = request.send().await.expect("the queue is created on moto").queue_url.unwrap();
    let arn = client.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::QueueArn).send().await.unwrap();
    let arn = arn.attributes.unwrap().remove(&QueueAttributeName::QueueArn).unwrap();
    (url, arn)
}

fn number(value: &Value) -> String {
    match &resolve(value) {
        Value::Number(n) => n.to_string(),
        other => text(other),
    }
}

/// Creates the three step queues with their dead-letter queues as template.yaml defines them.
pub async fn create_step_queues(config: &aws_config::SdkConfig) -> DeployedQueues {
    use aws_sdk_sqs::types::QueueAttributeName;
    let client = aws_sdk_sqs::Client::new(config);
    let prefix = unique("stack");
    let mut made = Vec::new();
    let mut max_receive_count = 0;
    for (queue, dead_letter) in
        [("ResearchQueue", "ResearchDeadLetterQueue"), ("DraftQueue", "DraftDeadLetterQueue"), ("SendQueue", "SendDeadLetterQueue")]
    {
        let definition = template_resource(queue);
        let dlq_definition = template_resource(dead_letter);
        let (dlq_url, dlq_arn) = create_queue(
            &client,
            &format!("{prefix}-{dead_letter}"),
            vec![(QueueAttributeName::MessageRetentionPeriod, number(&dlq_definition["MessageRetentionPeriod"]))],
        )
        .await;
        let redrive = &definition["RedrivePolicy"];
        max_receive_count = resolve(&redrive["maxReceiveCount"]).as_u64().expect("maxReceiveCount is a number") as u32;
        let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}).to_string();
        let (url, arn) = create_queue(
            &client,
            &format!("{prefix}-{queue}"),
            vec![
                (QueueAttributeName::VisibilityTimeout, number(&definition["VisibilityTimeout"])),
                (QueueAttributeName::MessageRetentionPeriod, number(&definition["MessageRetentionPeriod"])),
                (QueueAttributeName::RedrivePolicy, policy),
            ],
        )
        .await;
        made.push((url, arn, dlq_url));
    }
    let pick = |i: usize, f: fn(&(String, String, String)) -> String| f(&made[i]);
    let set = |f: fn(&(String, String, String)) -> String| sales_agent::adapters::aws::QueueUrls {
        research: pick(0, f),
        draft: pick(1, f),
        send: pick(2, f),
    };
    DeployedQueues { urls: set(|m| m.0.clone()), arns: set(|m| m.1.clone()), dead_letters: set(|m| m.2.clone()), max_receive_count }
}

/// The raw emails moto's SES accepted, as (destinations, MIME text), from the small route
/// `.ci/moto-serial.py` adds (moto's own data.json dumps every model of every service).
pub async fn sent_emails() -> Vec<(Vec<String>, String)> {
    let data: serde_json::Value =
        reqwest::get(format!("{}/sales-agent-test/ses-messages", endpoint())).await.unwrap().json().await.unwrap();
    data.as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let destinations = m["destinations"].as_array().into_iter().flatten().filter_map(|d| d.as_str().map(str::to_string)).collect();
            (destinations, m["raw_data"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}
