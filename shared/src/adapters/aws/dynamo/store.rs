use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, PutRequest, TransactWriteItem, Update, WriteRequest};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::items::*;
use crate::domain::api_key::ApiKey;
use crate::domain::{
    Agent, AgentId, EmailAddress, EmailDraft, Execution, ExecutionCounters, ExecutionId, ExecutionLogEntry, Lead, LeadId, LeadStateKind,
    MailboxCursor, ResearchReport, Suppression, Timestamp,
};
use crate::ports::store::{
    AgentStore, ApiKeyStore, ArtifactStore, ExecutionStore, LeadQuery, LeadStore, LogStore, MailboxCursorStore, SuppressionList,
};
use crate::ports::{Page, PageRequest, StoreError};

/// Attempts at a write that DynamoDB refused because another transaction held one of its items
/// (every lead transition touches its execution's item, so this is expected under load).
const CONFLICT_ATTEMPTS: u32 = 8;

/// Cancellation reasons that say "try again", as opposed to a failed condition.
const TRANSIENT_REASONS: &[&str] = &["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"];

/// Service error codes of single-item writes that say "try again".
const TRANSIENT_CODES: &[&str] = &["TransactionConflictException", "TransactionInProgressException", "ThrottlingException"];

/// A jittered, growing pause before attempt `attempt` (0-based) of a conflicting write.
async fn back_off(attempt: u32) {
    let ceiling = 20u64 << attempt.min(6);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(ceiling)) as u64;
    tokio::time::sleep(Duration::from_millis(ceiling / 2 + jitter / 2)).await;
}

fn is_transient<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    error.as_service_error().and_then(|e| e.code()).is_some_and(|code| TRANSIENT_CODES.contains(&code))
}

/// BatchWriteItem takes at most 25 items.
const BATCH_WRITE_LIMIT: usize = 25;
/// Concurrent BatchWriteItem calls while importing leads.
const WRITE_CONCURRENCY: usize = 8;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// A failed call, said as the service's own code and message where there is one.
fn unavailable<E: ProvideErrorMetadata + std::error::Error + 'static>(error: SdkError<E>) -> StoreError {
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

    async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output =
            self.client.get_item().table_name(&self.table).set_key(Some(key)).consistent_read(true).send().await.map_err(unavailable)?;
        Ok(output.item)
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(unavailable)?;
        Ok(())
    }

    /// Puts `item` unless an item with its key exists; `Ok(false)` when one did.
    async fn put_new(&self, item: Item) -> Result<bool, StoreError> {
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
    async fn missed(&self, key: Item) -> StoreError {
        match self.get(key).await {
            Ok(Some(_)) => StoreError::Conflict,
            Ok(None) => StoreError::NotFound,
            Err(e) => e,
        }
    }

    /// Writes items in batches of 25, several batches at a time, retrying unprocessed items.
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
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
    async fn query_page(
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

    async fn execution_item(&self, id: ExecutionId) -> Result<Item, StoreError> {
        self.get(execution_key(id)).await?.ok_or(StoreError::NotFound)
    }
}

fn leads_from(items: Vec<Item>) -> Result<Vec<Lead>, StoreError> {
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
    async fn create_execution(&self, execution: &Execution, leads: &[Lead]) -> Result<(), StoreError> {
        let put_new = |item: Item| -> Result<TransactWriteItem, StoreError> {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        let mut writes = vec![put_new(execution_item(execution, leads.len() as u64)?)?];
        if let Some(key) = &execution.idempotency_key {
            let mut claim = idempotency_key(execution.agent_id, key);
            claim.insert("execution_id".into(), s(execution.id.to_string()));
            writes.push(put_new(claim)?);
        }
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|e| e.is_transaction_canceled_exception()) => return Err(StoreError::Conflict),
            Err(e) => return Err(unavailable(e)),
        }
        let items = leads.iter().map(lead_item).collect::<Result<Vec<_>, _>>()?;
        self.batch_put(items).await
    }

    async fn get_execution(&self, id: ExecutionId) -> Result<Execution, StoreError> {
        execution_from(&self.execution_item(id).await?)
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

    async fn update_execution(&self, execution: &Execution) -> Result<Execution, StoreError> {
        let mut stored = execution.clone();
        stored.version += 1;
        let data = serde_dynamo::to_attribute_value(&stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(execution_key(execution.id)))
            .update_expression("SET #data = :data, #version = :next, #state = :state")
            .condition_expression("attribute_exists(pk) AND #version = :expected")
            .expression_attribute_names("#data", "data")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":data", data)
            .expression_attribute_values(":next", n(stored.version))
            .expression_attribute_values(":state", s(stored.state.as_str()))
            .expression_attribute_values(":expected", n(execution.version));
        for attempt in 0..CONFLICT_ATTEMPTS {
            match request.clone().send().await {
                Ok(_) => return Ok(stored),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                    return Err(self.missed(execution_key(execution.id)).await);
                }
                Err(e) if is_transient(&e) => back_off(attempt).await,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(StoreError::Unavailable("the execution kept conflicting with transactions on it".into()))
    }

    async fn add_to_counters(&self, id: ExecutionId, delta: &ExecutionCounters) -> Result<(), StoreError> {
        let values = delta.values();
        let changes: Vec<(&str, u64)> = COUNTERS.into_iter().zip(values).filter(|(_, v)| *v > 0).collect();
        if changes.is_empty() {
            return Ok(());
        }
        let expression = format!("ADD {}", changes.iter().map(|(name, _)| format!("#{name} :{name}")).collect::<Vec<_>>().join(", "));
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(execution_key(id)))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)");
        for (name, value) in changes {
            update = update.expression_attribute_names(format!("#{name}"), name).expression_attribute_values(format!(":{name}"), n(value));
        }
        for attempt in 0..CONFLICT_ATTEMPTS {
            match update.clone().send().await {
                Ok(_) => return Ok(()),
                Err(e) if is_transient(&e) => back_off(attempt).await,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(StoreError::Unavailable("the counters kept conflicting with transactions on the execution".into()))
    }

    async fn lead_counts(&self, id: ExecutionId) -> Result<BTreeMap<LeadStateKind, u64>, StoreError> {
        let item = self.execution_item(id).await?;
        Ok(LeadStateKind::ALL
            .into_iter()
            .map(|kind| (kind, number_of(&item, &lead_count_attribute(kind))))
            .filter(|(_, count)| *count > 0)
            .collect())
    }

    async fn has_unfinished_executions(&self, agent_id: AgentId) -> Result<bool, StoreError> {
        let query = || {
            self.client
                .query()
                .key_condition_expression("gsi1pk = :pk")
                .filter_expression("#state IN (:created, :running, :paused)")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":pk", s(executions_of_agent(agent_id)))
                .expression_attribute_values(":created", s("created"))
                .expression_attribute_values(":running", s("running"))
                .expression_attribute_values(":paused", s("paused"))
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

    async fn update_lead(&self, lead: &Lead) -> Result<Lead, StoreError> {
        // The stored state is read first: the execution's per-state counts move with it.
        let current = self.get(lead_key(lead.id)).await?.ok_or(StoreError::NotFound)?;
        if number_of(&current, "version") != lead.version {
            return Err(StoreError::Conflict);
        }
        let previous = lead_from(&current)?.state.kind();
        let mut stored = lead.clone();
        stored.version += 1;
        let next = stored.state.kind();
        let corrupt = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Corrupt(e.to_string());
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(lead_item(&stored)?))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(lead.version))
            .build()
            .map_err(corrupt)?;
        let mut writes = vec![TransactWriteItem::builder().put(put).build()];
        if previous != next {
            let counts = Update::builder()
                .table_name(&self.table)
                .set_key(Some(execution_key(lead.execution_id)))
                .update_expression("ADD #from :minus, #to :plus")
                .expression_attribute_names("#from", lead_count_attribute(previous))
                .expression_attribute_names("#to", lead_count_attribute(next))
                .expression_attribute_values(":minus", n(-1))
                .expression_attribute_values(":plus", n(1))
                .build()
                .map_err(corrupt)?;
            writes.push(TransactWriteItem::builder().update(counts).build());
        }
        if matches!(next, LeadStateKind::Sent | LeadStateKind::Completed)
            && previous == LeadStateKind::Sending
            && let Some(sent) = stored.sent_messages.last()
        {
            let mut index = message_key(&sent.message_id);
            index.insert("lead_id".into(), s(stored.id.to_string()));
            let put = Put::builder().table_name(&self.table).set_item(Some(index)).build().map_err(corrupt)?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        for attempt in 0..CONFLICT_ATTEMPTS {
            let error = match self.client.transact_write_items().set_transact_items(Some(writes.clone())).send().await {
                Ok(_) => return Ok(stored),
                Err(error) => error,
            };
            let reasons: Vec<String> = match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    cancelled.cancellation_reasons().iter().filter_map(|r| r.code().map(str::to_string)).collect()
                }
                _ if is_transient(&error) => vec!["TransactionConflict".into()],
                _ => return Err(unavailable(error)),
            };
            if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
                return Err(self.missed(lead_key(lead.id)).await);
            }
            if !reasons.iter().any(|r| TRANSIENT_REASONS.contains(&r.as_str())) {
                return Err(StoreError::Unavailable(format!("the transaction was cancelled: {}", reasons.join(", "))));
            }
            back_off(attempt).await;
        }
        Err(StoreError::Unavailable("the lead's transaction kept conflicting with others".into()))
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

    async fn due_follow_ups(&self, now: Timestamp, limit: u32) -> Result<Vec<Lead>, StoreError> {
        let query = || {
            self.client
                .query()
                .key_condition_expression("gsi4pk = :due AND gsi4sk <= :now")
                .expression_attribute_values(":due", s("DUE"))
                .expression_attribute_values(":now", s(due_sort_key(now.timestamp_millis(), "~")))
        };
        let (items, _) = self.query_page(Some("gsi4"), query, &PageRequest::first(limit)).await?;
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
}

#[async_trait]
impl ArtifactStore for DynamoStore {
    async fn put_research(&self, report: &ResearchReport) -> Result<(), StoreError> {
        self.put(research_item(report)?).await
    }

    async fn get_research(&self, company_domain: &str) -> Result<Option<ResearchReport>, StoreError> {
        self.get(research_key(company_domain)).await?.as_ref().map(data_of).transpose()
    }

    async fn put_draft(&self, draft: &EmailDraft) -> Result<(), StoreError> {
        self.put(draft_item(draft)?).await
    }

    async fn get_draft(&self, lead_id: LeadId, step: u32) -> Result<Option<EmailDraft>, StoreError> {
        self.get(draft_key(lead_id, step)).await?.as_ref().map(data_of).transpose()
    }
}

#[async_trait]
impl LogStore for DynamoStore {
    async fn append_logs(&self, entries: &[ExecutionLogEntry]) -> Result<(), StoreError> {
        let items = entries.iter().map(log_item).collect::<Result<Vec<_>, _>>()?;
        match items.len() {
            0 => Ok(()),
            1 => self.put(items.into_iter().next().expect("one item")).await,
            _ => self.batch_put(items).await,
        }
    }

    async fn list_logs(&self, execution_id: ExecutionId, page: &PageRequest) -> Result<Page<ExecutionLogEntry>, StoreError> {
        let query = || {
            self.client.query().key_condition_expression("pk = :pk").expression_attribute_values(":pk", s(logs_of_execution(execution_id)))
        };
        let (items, next_cursor) = self.query_page(None, query, page).await?;
        Ok(Page { items: items.iter().map(data_of).collect::<Result<_, _>>()?, next_cursor })
    }
}

#[async_trait]
impl SuppressionList for DynamoStore {
    async fn suppression_for(&self, address: &EmailAddress) -> Result<Option<Suppression>, StoreError> {
        let keys = Suppression::keys_for(address).map(|entry| suppression_key(&entry));
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys.to_vec()))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let output = self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(unavailable)?;
        let mut found: HashMap<String, Vec<Item>> = output.responses.unwrap_or_default();
        found.remove(&self.table).unwrap_or_default().first().map(data_of).transpose()
    }

    async fn suppress(&self, suppression: &Suppression) -> Result<(), StoreError> {
        // The first reason an address was suppressed is the one kept.
        self.put_new(suppression_item(suppression)?).await.map(|_| ())
    }
}

#[async_trait]
impl ApiKeyStore for DynamoStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        if self.put_new(api_key_item(key)?).await? { Ok(()) } else { Err(StoreError::Conflict) }
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.get(api_key_key(id)).await?.as_ref().map(data_of).transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let query = || self.client.query().key_condition_expression("gsi1pk = :pk").expression_attribute_values(":pk", s("APIKEYS"));
        let (items, _) = self.query_page(Some("gsi1"), query, &PageRequest::first(PageRequest::MAX_LIMIT)).await?;
        items.iter().map(data_of).collect()
    }

    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<ApiKey, StoreError> {
        let mut key = self.get_api_key(id).await?.ok_or(StoreError::NotFound)?;
        key.revoked_at.get_or_insert(at);
        self.put(api_key_item(&key)?).await?;
        Ok(key)
    }
}

#[async_trait]
impl MailboxCursorStore for DynamoStore {
    async fn get_mailbox_cursor(&self, folder: &str) -> Result<Option<MailboxCursor>, StoreError> {
        self.get(mailbox_cursor_key(folder)).await?.as_ref().map(data_of).transpose()
    }

    async fn save_mailbox_cursor(&self, cursor: &MailboxCursor) -> Result<(), StoreError> {
        self.put(mailbox_cursor_item(cursor)?).await
    }

    async fn list_mailbox_cursors(&self) -> Result<Vec<MailboxCursor>, StoreError> {
        let query = || self.client.query().key_condition_expression("gsi1pk = :pk").expression_attribute_values(":pk", s("MAILBOXES"));
        let (items, _) = self.query_page(Some("gsi1"), query, &PageRequest::first(PageRequest::MAX_LIMIT)).await?;
        items.iter().map(data_of).collect()
    }
}
