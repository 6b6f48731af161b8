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
        "AWS tests run against moto: run `bash .ci/test`, or start `moto_server -H 127.0.0.1 -p 5000` and set \
         SALES_AGENT_TEST_AWS_ENDPOINT=http://127.0.0.1:5000",
    )
}

/// An SDK configuration pointing every client at moto, with throwaway credentials.
pub async fn config() -> aws_config::SdkConfig {
    let endpoint = endpoint();
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

/// The template's resources, with CloudFormation's `!Ref`-style tags kept as tagged values.
pub fn template_resource(logical_id: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let template: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    template["Resources"][logical_id]["Properties"].clone()
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
