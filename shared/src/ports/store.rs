//! The store speaks in domain operations, not raw keys. Every change of a lead or an execution
//! is a `Transition` the domain built, applied by `Ledger::commit` in one atomic write that is
//! conditional on the versions the caller read, so two deliveries of one message, or two
//! workers, can never both advance a lead. The stores know keys, indexes and transactions; what
//! a state means is the domain's business.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::api_key::ApiKey;
use crate::domain::{
    Agent, AgentId, EmailAddress, EmailDraft, Execution, ExecutionCounters, ExecutionId, ExecutionLogEntry, Lead, LeadId, LeadStateKind,
    MailboxCursor, MeterUsage, ResearchReport, Suppression, Timestamp, Transition,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// Something the write was decided on changed since it was read (or, on creation, already
    /// exists): re-read and decide again.
    #[error("the item was changed by someone else")]
    Conflict,
    /// The send claim's contact marker is held by another lead of the same agent: that lead
    /// already emailed (or is emailing) the prospect.
    #[error("another lead of this agent already contacted the address")]
    ContactHeld,
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
    /// The intent of the lead's latest reply.
    pub intent: Option<crate::domain::ReplyIntent>,
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

/// Where an execution stands: its counters and how many leads are in each state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutionProgress {
    pub counters: ExecutionCounters,
    pub lead_counts: BTreeMap<LeadStateKind, u64>,
}

impl ExecutionProgress {
    pub fn count(&self, state: LeadStateKind) -> u64 {
        self.lead_counts.get(&state).copied().unwrap_or(0)
    }

    /// Leads that have not reached a terminal state.
    pub fn unfinished(&self) -> u64 {
        self.lead_counts.iter().filter(|(kind, _)| !kind.is_terminal()).map(|(_, n)| n).sum()
    }
}

/// The one way lead and execution state changes.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Applies `transition` atomically: the lead and execution writes (each only if the stored
    /// version is still the one the transition was built from), the counter deltas, the log
    /// entries and the markers. `Conflict` when a version moved on or a pacing slot has no room
    /// left; `ContactHeld` when the transition claims a contact marker another lead holds;
    /// nothing is written then.
    async fn commit(&self, transition: &Transition) -> Result<(), StoreError>;
}

#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Writes a new execution (`created`, no leads yet). With an idempotency key the agent
    /// already used, nothing is written and `Conflict` is returned.
    async fn create_execution(&self, execution: &Execution) -> Result<(), StoreError>;
    /// Writes the leads of an execution that has not started, leaving any lead that exists
    /// already as it is (a retried start writes them again, and a concurrent one may have
    /// started the execution meanwhile), and records their count by state.
    async fn write_leads(&self, execution: &Execution, leads: &[Lead]) -> Result<(), StoreError>;
    async fn get_execution(&self, id: ExecutionId) -> Result<Execution, StoreError>;
    async fn find_execution_by_idempotency_key(&self, agent_id: AgentId, key: &str) -> Result<Option<Execution>, StoreError>;
    /// Newest first; all agents when `agent_id` is `None`.
    async fn list_executions(&self, agent_id: Option<AgentId>, page: &PageRequest) -> Result<Page<Execution>, StoreError>;
    async fn execution_progress(&self, id: ExecutionId) -> Result<ExecutionProgress, StoreError>;
    /// Executions whose `attention_at` is at or before `now`, earliest first.
    async fn executions_needing_attention(&self, now: Timestamp, limit: u32) -> Result<Vec<Execution>, StoreError>;
    /// Whether the agent has an execution in one of `states`.
    async fn has_executions_in(&self, agent_id: AgentId, states: &[crate::domain::ExecutionState]) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait LeadStore: Send + Sync {
    async fn get_lead(&self, id: LeadId) -> Result<Lead, StoreError>;
    /// In creation order.
    async fn list_leads(&self, query: &LeadQuery, page: &PageRequest) -> Result<Page<Lead>, StoreError>;
    /// The lead an email with this Message-ID (without brackets) was sent to.
    async fn find_lead_by_message_id(&self, message_id: &str) -> Result<Option<Lead>, StoreError>;
    /// Leads whose `attention_at` is at or before `now`, earliest first.
    async fn leads_needing_attention(&self, now: Timestamp, limit: u32) -> Result<Vec<Lead>, StoreError>;
    /// Leads put on hold by a pause, for resume to re-enqueue.
    async fn held_leads(&self, execution_id: ExecutionId, limit: u32) -> Result<Vec<Lead>, StoreError>;
    /// The lead holding the agent's contact marker for this address, if any.
    async fn contact_holder(&self, agent_id: AgentId, address: &EmailAddress) -> Result<Option<LeadId>, StoreError>;
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
    /// The entry that suppresses this address (the address itself, its domain or a parent
    /// domain), if any. A
    /// lookup that cannot be completed is an error, never "not suppressed". Entries are added
    /// through `Ledger::commit` (`MarkerChange::Suppress`).
    async fn suppression_for(&self, address: &EmailAddress) -> Result<Option<Suppression>, StoreError>;
    /// The entry for exactly this address or domain, if there is one.
    async fn suppression_entry(&self, entry: &str) -> Result<Option<Suppression>, StoreError>;
    /// Every entry, in the order of the entries' text.
    async fn list_suppressions(&self, page: &PageRequest) -> Result<Page<Suppression>, StoreError>;
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

/// What each pacing meter (a mailbox, an agent) has used. Slots are taken and given back
/// through `Ledger::commit` (`MarkerChange::TakeSlot`, `ReturnSlot`), with the send claim.
#[async_trait]
pub trait SendingMeters: Send + Sync {
    /// Sends counted on `meter` on `day` (its local day), and its gap.
    async fn meter_usage(&self, meter: &str, day: chrono::NaiveDate) -> Result<MeterUsage, StoreError>;
    /// A mailbox meter's record since its last resume, and its pause.
    async fn mailbox_standing(&self, meter: &str) -> Result<crate::domain::pacing::MailboxStanding, StoreError>;
}

/// Whether the store can be written right now, for the health check.
#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// Writes a small probe record; an error when the store cannot be written.
    async fn probe(&self, now: Timestamp) -> Result<(), StoreError>;
}

/// Everything the system stores. Handlers that need less ask for the narrower trait.
pub trait Store:
    Ledger
    + AgentStore
    + ExecutionStore
    + LeadStore
    + ArtifactStore
    + LogStore
    + SuppressionList
    + ApiKeyStore
    + MailboxCursorStore
    + SendingMeters
    + HealthProbe
{
}

impl<T> Store for T where
    T: Ledger
        + AgentStore
        + ExecutionStore
        + LeadStore
        + ArtifactStore
        + LogStore
        + SuppressionList
        + ApiKeyStore
        + MailboxCursorStore
        + SendingMeters
        + HealthProbe
{
}
