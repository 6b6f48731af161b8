//! Item layout: keys, index attributes and conversion between domain objects and items.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::adapters::cursor;
use crate::domain::api_key::ApiKey;
use crate::domain::{
    Agent, EmailDraft, Execution, ExecutionCounters, ExecutionLogEntry, Lead, LeadStateKind, MailboxCursor, ResearchReport,
};
use crate::ports::StoreError;

pub type Item = HashMap<String, AttributeValue>;

pub const COUNTERS: [&str; ExecutionCounters::NAMES.len()] = ExecutionCounters::NAMES;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub fn agent_key(id: impl std::fmt::Display) -> Item {
    key(format!("AGENT#{id}"), "AGENT")
}

pub fn execution_key(id: impl std::fmt::Display) -> Item {
    key(format!("EXEC#{id}"), "EXEC")
}

pub fn lead_key(id: impl std::fmt::Display) -> Item {
    key(format!("LEAD#{id}"), "LEAD")
}

pub fn idempotency_key(agent_id: impl std::fmt::Display, idempotency_key: &str) -> Item {
    key(format!("IDEMPOTENCY#{agent_id}#{idempotency_key}"), "KEY")
}

pub fn message_key(message_id: &str) -> Item {
    key(format!("MESSAGE#{message_id}"), "MESSAGE")
}

pub fn research_key(domain: &str) -> Item {
    key(format!("RESEARCH#{domain}"), "RESEARCH")
}

pub fn draft_key(lead_id: impl std::fmt::Display, step: u32) -> Item {
    key(format!("LEAD#{lead_id}"), format!("DRAFT#{step:03}"))
}

/// The list partition of suppression entries on `gsi1`.
pub const SUPPRESSIONS: &str = "SUPPRESSIONS";

pub fn suppression_key(entry: &str) -> Item {
    key(format!("SUPPRESS#{}", entry.to_ascii_lowercase()), "SUPPRESS")
}

pub fn executions_of_agent(agent_id: impl std::fmt::Display) -> String {
    format!("AGENT#{agent_id}#EXECS")
}

pub fn leads_of_execution(execution_id: impl std::fmt::Display) -> String {
    format!("EXEC#{execution_id}#LEADS")
}

pub fn logs_of_execution(execution_id: impl std::fmt::Display) -> String {
    format!("EXEC#{execution_id}#LOG")
}

pub fn lead_count_attribute(state: LeadStateKind) -> String {
    format!("leads_{}", state.as_str())
}

/// Counter shards per execution: a lead's transitions add to the shard of its id, so an
/// execution's workers spread their counter writes over this many items instead of
/// serialising on one.
pub const COUNTER_SHARDS: u64 = 16;

/// Partitions of the attention index, so the sweep's index is not one hot partition.
pub const ATTENTION_SHARDS: u64 = 8;

/// A stable small number from an id, for picking a shard.
pub fn shard_of(id: impl std::fmt::Display, shards: u64) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.to_string().as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes")) % shards
}

pub fn counter_shard_key(execution_id: impl std::fmt::Display, shard: u64) -> Item {
    key(format!("EXEC#{execution_id}#COUNTS#{shard:02}"), "COUNTS")
}

/// The counts of an execution's leads as its start wrote them (set, not added, so a retried
/// start writes the same numbers).
pub fn start_counts_key(execution_id: impl std::fmt::Display) -> Item {
    key(format!("EXEC#{execution_id}#COUNTS#START"), "COUNTS")
}

pub fn contact_key(agent_id: impl std::fmt::Display, address: &str) -> Item {
    key(format!("CONTACT#{agent_id}#{address}"), "CONTACT")
}

/// One meter's sends on one local day.
pub fn meter_day_key(meter: &str, day: chrono::NaiveDate) -> Item {
    key(format!("METER#{meter}"), format!("DAY#{day}"))
}

/// One meter's gap: when its next send may go out, and when its last one did.
pub fn meter_gap_key(meter: &str) -> Item {
    key(format!("METER#{meter}"), "GAP")
}

/// A mailbox's record since its last resume, and its pause.
pub fn mailbox_health_key(meter: &str) -> Item {
    key(format!("METER#{meter}"), "HEALTH")
}

pub fn health_key() -> Item {
    key("HEALTH", "PROBE")
}

/// The attention index's partition for executions (few, and each looked at hourly at most).
pub const EXECUTIONS_DUE: &str = "EXECUTIONS#DUE";

pub fn attention_partition(shard: u64) -> String {
    format!("DUE#{shard}")
}

/// A domain object as the `data` attribute of an item, next to keys and a version.
pub fn item_with<T: Serialize>(mut item: Item, version: u64, data: &T) -> Result<Item, StoreError> {
    let data = serde_dynamo::to_attribute_value(data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    item.insert("data".into(), data);
    item.insert("version".into(), n(version));
    Ok(item)
}

pub fn data_of<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let data = item.get("data").cloned().ok_or_else(|| StoreError::Corrupt("an item has no data attribute".into()))?;
    serde_dynamo::from_attribute_value(data).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn number_of(item: &Item, name: &str) -> u64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub fn agent_item(agent: &Agent) -> Result<Item, StoreError> {
    let mut item = agent_key(agent.id);
    item.insert("gsi1pk".into(), s("AGENTS"));
    item.insert("gsi1sk".into(), s(agent.id.to_string()));
    item_with(item, agent.version, agent)
}

/// An execution item: its data and the attributes its indexes and conditions use. Counters are
/// in the counter shards, not here.
pub fn execution_item(execution: &Execution) -> Result<Item, StoreError> {
    let mut item = execution_key(execution.id);
    item.insert("gsi1pk".into(), s(executions_of_agent(execution.agent_id)));
    item.insert("gsi1sk".into(), s(execution.id.to_string()));
    item.insert("gsi2pk".into(), s("EXECS"));
    item.insert("gsi2sk".into(), s(execution.id.to_string()));
    item.insert("state".into(), s(execution.state.as_str()));
    if let Some(at) = execution.attention_at {
        item.insert("gsi4pk".into(), s(EXECUTIONS_DUE));
        item.insert("gsi4sk".into(), s(due_sort_key(at.timestamp_millis(), execution.id)));
    }
    item_with(item, execution.version, execution)
}

pub fn execution_from(item: &Item) -> Result<Execution, StoreError> {
    let mut execution: Execution = data_of(item)?;
    execution.version = number_of(item, "version");
    Ok(execution)
}

/// A signed number attribute (counter shards hold deltas, which may be negative).
pub fn signed_number_of(item: &Item, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The sort key of the due-follow-ups index: zero-padded so text order is time order.
pub fn due_sort_key(millis: i64, lead_id: impl std::fmt::Display) -> String {
    format!("{millis:015}#{lead_id}")
}

pub fn lead_item(lead: &Lead) -> Result<Item, StoreError> {
    let state = lead.state.kind().as_str();
    let mut item = lead_key(lead.id);
    item.insert("gsi1pk".into(), s(leads_of_execution(lead.execution_id)));
    item.insert("gsi1sk".into(), s(format!("{state}#{}", lead.id)));
    item.insert("gsi2pk".into(), s(format!("EMAIL#{}", lead.contact.email.dedupe_key())));
    item.insert("gsi2sk".into(), s(lead.id.to_string()));
    item.insert("gsi3pk".into(), s(format!("STATE#{state}")));
    item.insert("gsi3sk".into(), s(lead.id.to_string()));
    if let Some(at) = lead.attention_at {
        item.insert("gsi4pk".into(), s(attention_partition(shard_of(lead.id, ATTENTION_SHARDS))));
        item.insert("gsi4sk".into(), s(due_sort_key(at.timestamp_millis(), lead.id)));
    }
    item.insert("agent_id".into(), s(lead.agent_id.to_string()));
    item.insert("on_hold".into(), AttributeValue::Bool(lead.on_hold));
    if let Some(intent) = lead.reply_intent {
        item.insert("reply_intent".into(), s(intent.as_str()));
    }
    item_with(item, lead.version, lead)
}

pub fn lead_from(item: &Item) -> Result<Lead, StoreError> {
    let mut lead: Lead = data_of(item)?;
    lead.version = number_of(item, "version");
    Ok(lead)
}

pub fn agent_from(item: &Item) -> Result<Agent, StoreError> {
    let mut agent: Agent = data_of(item)?;
    agent.version = number_of(item, "version");
    Ok(agent)
}

pub fn research_item(report: &ResearchReport) -> Result<Item, StoreError> {
    item_with(research_key(&report.company_domain), 0, report)
}

pub fn draft_item(draft: &EmailDraft) -> Result<Item, StoreError> {
    item_with(draft_key(draft.lead_id, draft.step), 0, draft)
}

pub fn log_item(entry: &ExecutionLogEntry) -> Result<Item, StoreError> {
    // The uuid keeps two entries of the same millisecond apart, in the order they were written.
    let sort = format!("{:015}#{}", entry.at.timestamp_millis(), uuid::Uuid::now_v7());
    item_with(key(logs_of_execution(entry.execution_id), sort), 0, entry)
}

/// Index attributes a cursor may carry: a cursor naming anything else was not issued here.
const KEY_ATTRIBUTES: [&str; 10] = ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "gsi4pk", "gsi4sk"];

pub fn encode_cursor(last_key: &Item) -> Result<String, StoreError> {
    let plain: HashMap<&str, &str> = last_key.iter().filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str()))).collect();
    Ok(cursor::encode(&serde_json::to_string(&plain)?))
}

pub fn decode_cursor(raw: Option<&str>) -> Result<Option<Item>, StoreError> {
    let Some(json) = cursor::decode(raw)? else { return Ok(None) };
    let plain: HashMap<String, String> = serde_json::from_str(&json).map_err(|_| StoreError::InvalidCursor)?;
    if plain.is_empty() || plain.keys().any(|k| !KEY_ATTRIBUTES.contains(&k.as_str())) {
        return Err(StoreError::InvalidCursor);
    }
    Ok(Some(plain.into_iter().map(|(k, v)| (k, s(v))).collect()))
}

pub fn api_key_key(id: &str) -> Item {
    key(format!("APIKEY#{id}"), "APIKEY")
}

pub fn api_key_item(api_key: &ApiKey) -> Result<Item, StoreError> {
    let mut item = api_key_key(&api_key.id);
    item.insert("gsi1pk".into(), s("APIKEYS"));
    item.insert("gsi1sk".into(), s(api_key.id.clone()));
    item_with(item, 0, api_key)
}

pub fn mailbox_cursor_key(folder: &str) -> Item {
    key(format!("MAILBOX#{folder}"), "CURSOR")
}

pub fn mailbox_cursor_item(cursor: &MailboxCursor) -> Result<Item, StoreError> {
    let mut item = mailbox_cursor_key(&cursor.folder);
    item.insert("gsi1pk".into(), s("MAILBOXES"));
    item.insert("gsi1sk".into(), s(cursor.folder.clone()));
    item_with(item, 0, cursor)
}
