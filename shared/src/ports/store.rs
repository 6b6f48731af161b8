//! The store speaks in domain operations, not raw keys. Every write that changes a lead or an
//! execution is conditional on the version the writer read, so two deliveries of one message,
//! or two workers, can never both advance a lead.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::api_key::ApiKey;
use crate::domain::{
    Agent, AgentId, EmailAddress, EmailDraft, Execution, ExecutionCounters, ExecutionId, ExecutionLogEntry, Lead, LeadId, LeadStateKind,
    MailboxCursor, ResearchReport, Suppression, Timestamp,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The item changed since it was read (or already exists); re-read and decide again.
    #[error("the item was changed by someone else")]
    Conflict,
    #[error("the paging cursor is not one this service issued")]
    InvalidCursor,
    /// A transient failure; the operation may succeed if retried.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back: a bug or a manual edit.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// A page request: an opaque cursor from the previous page and how many items to return.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: u32,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;

    pub fn first(limit: u32) -> Self {
        Self { cursor: None, limit }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Which leads to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeadQuery {
    pub execution_id: Option<ExecutionId>,
    pub agent_id: Option<AgentId>,
    pub state: Option<LeadStateKind>,
    pub email: Option<EmailAddress>,
}

#[async_trait]
pub trait AgentStore: Send + Sync {
    async fn create_agent(&self, agent: &Agent) -> Result<(), StoreError>;
    async fn get_agent(&self, id: AgentId) -> Result<Agent, StoreError>;
    async fn list_agents(&self, page: &PageRequest) -> Result<Page<Agent>, StoreError>;
    /// Writes `agent` if the stored version is `agent.version`; the stored version becomes +1.
    async fn update_agent(&self, agent: &Agent) -> Result<Agent, StoreError>;
    async fn delete_agent(&self, id: AgentId) -> Result<(), StoreError>;
}

#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Writes the execution and all its leads. With an idempotency key that the agent already
    /// used, nothing is written and `Conflict` is returned.
    async fn create_execution(&self, execution: &Execution, leads: &[Lead]) -> Result<(), StoreError>;
    async fn get_execution(&self, id: ExecutionId) -> Result<Execution, StoreError>;
    async fn find_execution_by_idempotency_key(&self, agent_id: AgentId, key: &str) -> Result<Option<Execution>, StoreError>;
    /// Newest first; all agents when `agent_id` is `None`.
    async fn list_executions(&self, agent_id: Option<AgentId>, page: &PageRequest) -> Result<Page<Execution>, StoreError>;
    /// Conditional on `execution.version`; counters are left alone (they change atomically).
    async fn update_execution(&self, execution: &Execution) -> Result<Execution, StoreError>;
    async fn add_to_counters(&self, id: ExecutionId, delta: &ExecutionCounters) -> Result<(), StoreError>;
    async fn lead_counts(&self, id: ExecutionId) -> Result<BTreeMap<LeadStateKind, u64>, StoreError>;
    /// Whether the agent has an execution that is not finished.
    async fn has_unfinished_executions(&self, agent_id: AgentId) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait LeadStore: Send + Sync {
    async fn get_lead(&self, id: LeadId) -> Result<Lead, StoreError>;
    /// In creation order.
    async fn list_leads(&self, query: &LeadQuery, page: &PageRequest) -> Result<Page<Lead>, StoreError>;
    /// Conditional on `lead.version`; returns the lead as stored (version + 1).
    async fn update_lead(&self, lead: &Lead) -> Result<Lead, StoreError>;
    /// The lead an email with this Message-ID (without brackets) was sent to.
    async fn find_lead_by_message_id(&self, message_id: &str) -> Result<Option<Lead>, StoreError>;
    /// Leads in `sent` (or stuck in `follow_up_due`) whose due time is at or before `now`.
    async fn due_follow_ups(&self, now: Timestamp, limit: u32) -> Result<Vec<Lead>, StoreError>;
    /// Leads put on hold by a pause, for resume to re-enqueue.
    async fn held_leads(&self, execution_id: ExecutionId, limit: u32) -> Result<Vec<Lead>, StoreError>;
}

#[async_trait]
pub trait ArtifactStore: Send + Sync {
    async fn put_research(&self, report: &ResearchReport) -> Result<(), StoreError>;
    async fn get_research(&self, company_domain: &str) -> Result<Option<ResearchReport>, StoreError>;
    async fn put_draft(&self, draft: &EmailDraft) -> Result<(), StoreError>;
    async fn get_draft(&self, lead_id: LeadId, step: u32) -> Result<Option<EmailDraft>, StoreError>;
}

#[async_trait]
pub trait LogStore: Send + Sync {
    async fn append_logs(&self, entries: &[ExecutionLogEntry]) -> Result<(), StoreError>;
    /// Oldest first.
    async fn list_logs(&self, execution_id: ExecutionId, page: &PageRequest) -> Result<Page<ExecutionLogEntry>, StoreError>;
}

#[async_trait]
pub trait SuppressionList: Send + Sync {
    /// The entry that suppresses this address (the address itself or its domain), if any.
    async fn suppression_for(&self, address: &EmailAddress) -> Result<Option<Suppression>, StoreError>;
    async fn suppress(&self, suppression: &Suppression) -> Result<(), StoreError>;
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError>;
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Marks the key revoked; `NotFound` when there is no such key.
    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<ApiKey, StoreError>;
}

/// The reply poller's position in each mailbox folder it watches.
#[async_trait]
pub trait MailboxCursorStore: Send + Sync {
    async fn get_mailbox_cursor(&self, folder: &str) -> Result<Option<MailboxCursor>, StoreError>;
    async fn save_mailbox_cursor(&self, cursor: &MailboxCursor) -> Result<(), StoreError>;
    /// Every folder's cursor, for the health view.
    async fn list_mailbox_cursors(&self) -> Result<Vec<MailboxCursor>, StoreError>;
}

/// Everything the system stores. Handlers that need less ask for the narrower trait.
pub trait Store:
    AgentStore + ExecutionStore + LeadStore + ArtifactStore + LogStore + SuppressionList + ApiKeyStore + MailboxCursorStore
{
}

impl<T> Store for T where
    T: AgentStore + ExecutionStore + LeadStore + ArtifactStore + LogStore + SuppressionList + ApiKeyStore + MailboxCursorStore
{
}
