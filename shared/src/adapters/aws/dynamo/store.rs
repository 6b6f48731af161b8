//! The `Store` on DynamoDB: reads of agents, executions and leads, and the item helpers the
//! other parts share. State changes are in `ledger.rs`; artifacts, logs, suppressions, keys,
//! cursors and the health probe in `records.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, PutRequest, TransactWriteItem, WriteRequest};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::items::*;
use crate::domain::{
    Agent, AgentId, EmailAddress, Execution, ExecutionCounters, ExecutionId, ExecutionState, Lead, LeadId, LeadStateKind, Timestamp,
};
use crate::ports::store::{AgentStore, ExecutionProgress, ExecutionStore, LeadQuery, LeadStore};
use crate::ports::{Page, PageRequest, StoreError};

/// BatchWriteItem takes at most 25 items.
const BATCH_WRITE_LIMIT: usize = 25;
/// Concurrent BatchWriteItem calls while importing leads.
const WRITE_CONCURRENCY: usize = 8;

#[derive(Clone)]
pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) table: String,
}

/// A failed call, said as the service's own code and message where there is one.
pub(super) fn unavailable<E: ProvideErrorMetadata + std::error::Error + 'static>(error: SdkError<E>) -> StoreError {
    match error.as_service_error() {
        Some(service) => {
            StoreError::Unavailable(format!("{}: {}", service.code().unwrap_or("ServiceError"), service.message().unwrap_or_default()))
        }
        None => StoreError::Unavailable(DisplayErrorContext(&error).to_string()),
    }
}

fn limit_of(page: &PageRequest) -> usize {
    page.limit.clamp(1, PageRequest::MAX_LIMIT) as usize
}

/// The index attributes that make up a page cursor for each index.
fn cursor_attributes(index: Option<&str>) -> &'static [&'static str] {
    match index {
        None => &["pk", "sk"],
        Some("gsi1") => &["pk", "sk", "gsi1pk", "gsi1sk"],
        Some("gsi2") => &["pk", "sk", "gsi2pk", "gsi2sk"],
        Some("gsi3") => &["pk", "sk", "gsi3pk", "gsi3sk"],
        Some(_) => &["pk", "sk", "gsi4pk", "gsi4sk"],
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(super) async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output =
            self.client.get_item().table_name(&self.table).set_key(Some(key)).consistent_read(true).send().await.map_err(unavailable)?;
        Ok(output.item)
    }

    pub(super) async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(unavailable)?;
        Ok(())
    }

    /// Puts `item` unless an item with its key exists; `Ok(false)` when one did.
    pub(super) async fn put_new(&self, item: Item) -> Result<bool, StoreError> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Replaces `item` if the stored version is `expected`.
    async fn put_versioned(&self, item: Item, key: Item, expected: u64) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_exists(pk) AND #version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(expected))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Err(self.missed(key).await),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Why a conditional write failed: the item is gone, or it changed since it was read.
    pub(super) async fn missed(&self, key: Item) -> StoreError {
        match self.get(key).await {
            Ok(Some(_)) => StoreError::Conflict,
            Ok(None) => StoreError::NotFound,
            Err(e) => e,
        }
    }

    /// Writes items in batches of 25, several batches at a time, retrying unprocessed items.
    pub(super) async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let mut chunks = Vec::new();
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            chunks.push(items.by_ref().take(BATCH_WRITE_LIMIT).collect::<Vec<_>>());
        }
        stream::iter(chunks).map(|chunk| self.write_batch(chunk)).buffer_unordered(WRITE_CONCURRENCY).try_collect::<Vec<()>>().await?;
        Ok(())
    }

    async fn write_batch(&self, chunk: Vec<Item>) -> Result<(), StoreError> {
        let mut requests: Vec<WriteRequest> = chunk
            .into_iter()
            .map(|item| PutRequest::builder().set_item(Some(item)).build().map(|put| WriteRequest::builder().put_request(put).build()))
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut delay = Duration::from_millis(50);
        for _ in 0..8 {
            let output = self.client.batch_write_item().request_items(&self.table, requests).send().await.map_err(unavailable)?;
            requests = output.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            // Throttled: back off before sending what was left.
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        Err(StoreError::Unavailable(format!("{} items stayed unprocessed after repeated retries", requests.len())))
    }

    /// Runs a query until a page (plus one item, to know whether more follow) is collected.
    pub(super) async fn query_page(
        &self,
        index: Option<&str>,
        query: impl Fn() -> QueryFluentBuilder,
        page: &PageRequest,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let limit = limit_of(page);
        let mut start = decode_cursor(page.cursor.as_deref())?;
        let mut items: Vec<Item> = Vec::new();
        loop {
            let output = query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .set_exclusive_start_key(start.take())
                .limit((limit + 1 - items.len()) as i32)
                .send()
                .await
                .map_err(unavailable)?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if items.len() <= limit => start = Some(key),
                _ => break,
            }
        }
        if items.len() <= limit {
            return Ok((items, None));
        }
        items.truncate(limit);
        let last = items.last().expect("a full page has a last item");
        let key: Item = cursor_attributes(index).iter().filter_map(|name| last.get(*name).map(|v| (name.to_string(), v.clone()))).collect();
        Ok((items, Some(encode_cursor(&key)?)))
    }

    /// A transaction item that puts `item` unless its key exists.
    pub(super) fn put_new_write(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Reads items by key, retrying the keys DynamoDB leaves unprocessed (under throttling); an
    /// error when some stay unread, never a silently shorter answer.
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut pending = keys;
        let mut delay = Duration::from_millis(50);
        for attempt in 0..8 {
            if pending.is_empty() {
                return Ok(found);
            }
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let output = self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(unavailable)?;
            found.extend(output.responses.unwrap_or_default().remove(&self.table).unwrap_or_default());
            pending = output.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
        }
        if pending.is_empty() {
            return Ok(found);
        }
        Err(StoreError::Unavailable(format!("{} keys stayed unprocessed after repeated retries", pending.len())))
    }
}

pub(super) fn leads_from(items: Vec<Item>) -> Result<Vec<Lead>, StoreError> {
    items.iter().map(lead_from).collect()
}

#[async_trait]
impl AgentStore for DynamoStore {
    async fn create_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        if self.put_new(agent_item(agent)?).await? { Ok(()) } else { Err(StoreError::Conflict) }
    }

    async fn get_agent(&self, id: AgentId) -> Result<Agent, StoreError> {
        agent_from(&self.get(agent_key(id)).await?.ok_or(StoreError::NotFound)?)
    }

    async fn list_agents(&self, page: &PageRequest) -> Result<Page<Agent>, StoreError> {
        let query = || self.client.query().key_condition_expression("gsi1pk = :pk").expression_attribute_values(":pk", s("AGENTS"));
        let (items, next_cursor) = self.query_page(Some("gsi1"), query, page).await?;
        Ok(Page { items: items.iter().map(agent_from).collect::<Result<_, _>>()?, next_cursor })
    }

    async fn update_agent(&self, agent: &Agent) -> Result<Agent, StoreError> {
        let mut stored = agent.clone();
        stored.version += 1;
        self.put_versioned(agent_item(&stored)?, agent_key(agent.id), agent.version).await?;
        Ok(stored)
    }

    async fn delete_agent(&self, id: AgentId) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(agent_key(id)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Err(StoreError::NotFound),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl ExecutionStore for DynamoStore {
    async fn create_execution(&self, execution: &Execution) -> Result<(), StoreError> {
        let mut writes = vec![self.put_new_write(execution_item(execution)?)?];
        if let Some(key) = &execution.idempotency_key {
            let mut claim = idempotency_key(execution.agent_id, key);
            claim.insert("execution_id".into(), s(execution.id.to_string()));
            writes.push(self.put_new_write(claim)?);
        }
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_transaction_canceled_exception()) => Err(StoreError::Conflict),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn write_leads(&self, execution: &Execution, leads: &[Lead]) -> Result<(), StoreError> {
        let items = leads.iter().map(lead_item).collect::<Result<Vec<_>, _>>()?;
        self.create_absent(items).await?;
        // Written last and set rather than added: a retried start writes the same numbers, and the
        // shards hold every move away from these starting states.
        let mut counts = start_counts_key(execution.id);
        let mut by_state: BTreeMap<LeadStateKind, u64> = BTreeMap::new();
        for lead in leads {
            *by_state.entry(lead.state.kind()).or_default() += 1;
        }
        for (state, count) in by_state {
            counts.insert(lead_count_attribute(state), n(count));
        }
        self.put(counts).await
    }

    async fn get_execution(&self, id: ExecutionId) -> Result<Execution, StoreError> {
        execution_from(&self.get(execution_key(id)).await?.ok_or(StoreError::NotFound)?)
    }

    async fn find_execution_by_idempotency_key(&self, agent_id: AgentId, key: &str) -> Result<Option<Execution>, StoreError> {
        let Some(claim) = self.get(idempotency_key(agent_id, key)).await? else { return Ok(None) };
        let id = claim.get("execution_id").and_then(|v| v.as_s().ok()).and_then(|v| v.parse::<ExecutionId>().ok());
        let id = id.ok_or_else(|| StoreError::Corrupt("an idempotency key names no execution".into()))?;
        self.get_execution(id).await.map(Some)
    }

    async fn list_executions(&self, agent_id: Option<AgentId>, page: &PageRequest) -> Result<Page<Execution>, StoreError> {
        let (index, partition) = match agent_id {
            Some(agent_id) => ("gsi1", executions_of_agent(agent_id)),
            None => ("gsi2", "EXECS".to_string()),
        };
        let condition = format!("{index}pk = :pk");
        let query = || {
            self.client
                .query()
                .key_condition_expression(condition.clone())
                .expression_attribute_values(":pk", s(partition.clone()))
                .scan_index_forward(false)
        };
        let (items, next_cursor) = self.query_page(Some(index), query, page).await?;
        Ok(Page { items: items.iter().map(execution_from).collect::<Result<_, _>>()?, next_cursor })
    }

    async fn execution_progress(&self, id: ExecutionId) -> Result<ExecutionProgress, StoreError> {
        let mut keys: Vec<Item> = (0..COUNTER_SHARDS).map(|shard| counter_shard_key(id, shard)).collect();
        keys.push(start_counts_key(id));
        let shards = self.batch_get(keys).await?;
        let sum = |name: &str| shards.iter().map(|item| signed_number_of(item, name)).sum::<i64>().max(0) as u64;
        let counters = ExecutionCounters::from_values(COUNTERS.map(sum));
        let lead_counts =
            LeadStateKind::ALL.into_iter().map(|kind| (kind, sum(&lead_count_attribute(kind)))).filter(|(_, count)| *count > 0).collect();
        Ok(ExecutionProgress { counters, lead_counts })
    }

    async fn executions_needing_attention(&self, now: Timestamp, limit: u32) -> Result<Vec<Execution>, StoreError> {
        let query = || {
            self.client
                .query()
                .key_condition_expression("gsi4pk = :due AND gsi4sk <= :now")
                .expression_attribute_values(":due", s(EXECUTIONS_DUE))
                .expression_attribute_values(":now", s(due_sort_key(now.timestamp_millis(), "~")))
        };
        let (items, _) = self.query_page(Some("gsi4"), query, &PageRequest::first(limit)).await?;
        items.iter().map(execution_from).collect()
    }

    async fn has_executions_in(&self, agent_id: AgentId, states: &[ExecutionState]) -> Result<bool, StoreError> {
        if states.is_empty() {
            return Ok(false);
        }
        let names: Vec<String> = (0..states.len()).map(|i| format!(":s{i}")).collect();
        let filter = format!("#state IN ({})", names.join(", "));
        let query = || {
            let mut query = self
                .client
                .query()
                .key_condition_expression("gsi1pk = :pk")
                .filter_expression(filter.clone())
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":pk", s(executions_of_agent(agent_id)));
            for (name, state) in names.iter().zip(states) {
                query = query.expression_attribute_values(name.clone(), s(state.as_str()));
            }
            query
        };
        let (items, _) = self.query_page(Some("gsi1"), query, &PageRequest::first(1)).await?;
        Ok(!items.is_empty())
    }
}

#[async_trait]
impl LeadStore for DynamoStore {
    async fn get_lead(&self, id: LeadId) -> Result<Lead, StoreError> {
        lead_from(&self.get(lead_key(id)).await?.ok_or(StoreError::NotFound)?)
    }

    async fn list_leads(&self, query: &LeadQuery, page: &PageRequest) -> Result<Page<Lead>, StoreError> {
        // The most selective index carries the key condition; the other criteria filter.
        let (index, partition) = if let Some(execution_id) = query.execution_id {
            ("gsi1", leads_of_execution(execution_id))
        } else if let Some(email) = &query.email {
            ("gsi2", format!("EMAIL#{}", email.dedupe_key()))
        } else if let Some(state) = query.state {
            ("gsi3", format!("STATE#{}", state.as_str()))
        } else {
            return Err(StoreError::Corrupt("a lead query needs an execution, an email or a state".into()));
        };
        let mut condition = format!("{index}pk = :pk");
        let mut filters = Vec::new();
        let mut values: Vec<(&str, AttributeValue)> = vec![(":pk", s(partition))];
        // Leads of an execution are sorted by state, so a state narrows the key condition.
        if let (true, Some(state)) = (index == "gsi1", query.state) {
            condition.push_str(" AND begins_with(gsi1sk, :prefix)");
            values.push((":prefix", s(format!("{}#", state.as_str()))));
        }
        if let Some(intent) = query.intent {
            filters.push("reply_intent = :intent");
            values.push((":intent", s(intent.as_str())));
        }
        if let Some(agent_id) = query.agent_id {
            filters.push("agent_id = :agent");
            values.push((":agent", s(agent_id.to_string())));
        }
        if index != "gsi1"
            && let Some(execution_id) = query.execution_id
        {
            filters.push("gsi1pk = :execution");
            values.push((":execution", s(leads_of_execution(execution_id))));
        }
        if index != "gsi3"
            && index != "gsi1"
            && let Some(state) = query.state
        {
            filters.push("gsi3pk = :state");
            values.push((":state", s(format!("STATE#{}", state.as_str()))));
        }
        let filter = (!filters.is_empty()).then(|| filters.join(" AND "));
        let build = || {
            let mut q = self.client.query().key_condition_expression(condition.clone()).set_filter_expression(filter.clone());
            for (name, value) in &values {
                q = q.expression_attribute_values(*name, value.clone());
            }
            q
        };
        let (items, next_cursor) = self.query_page(Some(index), build, page).await?;
        Ok(Page { items: leads_from(items)?, next_cursor })
    }

    async fn find_lead_by_message_id(&self, message_id: &str) -> Result<Option<Lead>, StoreError> {
        let Some(index) = self.get(message_key(message_id)).await? else { return Ok(None) };
        let Some(lead_id) = index.get("lead_id").and_then(|v| v.as_s().ok()).and_then(|v| v.parse::<LeadId>().ok()) else {
            return Err(StoreError::Corrupt("a Message-ID index item names no lead".into()));
        };
        match self.get_lead(lead_id).await {
            Ok(lead) => Ok(Some(lead)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn leads_needing_attention(&self, now: Timestamp, limit: u32) -> Result<Vec<Lead>, StoreError> {
        let until = s(due_sort_key(now.timestamp_millis(), "~"));
        let shards = (0..ATTENTION_SHARDS).map(|shard| {
            let until = until.clone();
            async move {
                let query = || {
                    self.client
                        .query()
                        .key_condition_expression("gsi4pk = :due AND gsi4sk <= :now")
                        .expression_attribute_values(":due", s(attention_partition(shard)))
                        .expression_attribute_values(":now", until.clone())
                };
                self.query_page(Some("gsi4"), query, &PageRequest::first(limit)).await.map(|(items, _)| items)
            }
        });
        let mut items: Vec<Item> = futures::future::try_join_all(shards).await?.into_iter().flatten().collect();
        let sort_key = |item: &Item| item.get("gsi4sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        items.sort_by_key(sort_key);
        items.truncate(limit as usize);
        leads_from(items)
    }

    async fn held_leads(&self, execution_id: ExecutionId, limit: u32) -> Result<Vec<Lead>, StoreError> {
        let query = || {
            self.client
                .query()
                .key_condition_expression("gsi1pk = :pk")
                .filter_expression("on_hold = :held")
                .expression_attribute_values(":pk", s(leads_of_execution(execution_id)))
                .expression_attribute_values(":held", AttributeValue::Bool(true))
        };
        let (items, _) = self.query_page(Some("gsi1"), query, &PageRequest::first(limit)).await?;
        leads_from(items)
    }

    async fn contact_holder(&self, agent_id: AgentId, address: &EmailAddress) -> Result<Option<LeadId>, StoreError> {
        let Some(marker) = self.get(contact_key(agent_id, &address.dedupe_key())).await? else { return Ok(None) };
        let holder = marker.get("lead_id").and_then(|v| v.as_s().ok()).and_then(|v| v.parse::<LeadId>().ok());
        holder.map(Some).ok_or_else(|| StoreError::Corrupt("a contact marker names no lead".into()))
    }
}
