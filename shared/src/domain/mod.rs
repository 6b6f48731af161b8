//! Pure sales-domain types and state transitions. Nothing here performs I/O.

pub mod agent;
pub mod api_key;
pub mod draft_guard;
pub mod email_address;
pub mod execution;
pub mod ids;
pub mod lead;
pub mod log;
pub mod mailbox;
pub mod outreach_email;
pub mod research;
pub mod suppression;
pub mod template;
pub mod unsubscribe;
pub mod validation;

pub use agent::{Agent, AgentSpec, Pitch, Sender, SequenceStep};
pub use email_address::EmailAddress;
pub use execution::{Execution, ExecutionCounters, ExecutionState, LeadSourceKind};
pub use ids::{AgentId, ExecutionId, LeadId};
pub use lead::{InboundRecord, Lead, LeadContact, LeadEvent, LeadState, LeadStateKind, SendClaim, SentMessage, SkipReason};
pub use log::{ExecutionLogEntry, LogLevel};
pub use mailbox::MailboxCursor;
pub use research::{EmailDraft, ResearchFact, ResearchReport};
pub use suppression::Suppression;
pub use validation::{FieldIssue, ValidationErrors};

/// Timestamps are UTC everywhere; time zones only matter when a send window is computed.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
