//! Pure sales-domain types and state transitions. Nothing here performs I/O.

pub mod agent;
pub mod api_key;
pub mod dispatch;
pub mod draft_guard;
pub mod email_address;
pub mod execution;
pub mod grounding;
pub mod ids;
pub mod lead;
pub mod lead_events;
pub mod log;
pub mod mailbox;
pub mod outreach_email;
pub mod pacing;
pub mod reply;
pub mod reply_intent;
pub mod research;
pub mod research_text;
pub mod sending_health;
pub mod suppression;
pub mod template;
pub mod transition;
pub mod unsubscribe;
pub mod validation;

pub use agent::{Agent, AgentSpec, Pitch, ReplyPolicy, Sender, SequenceStep};
pub use dispatch::{Dispatch, StepMessage, StepQueue};
pub use email_address::EmailAddress;
pub use execution::{Execution, ExecutionCommand, ExecutionCounters, ExecutionState, LeadSourceKind};
pub use ids::{AgentId, ExecutionId, LeadId};
pub use lead::{InboundRecord, Lead, LeadContact, LeadState, LeadStateKind, SendClaim, SentMessage, SkipReason, is_free_mail};
pub use lead_events::{InvalidTransition, LeadEvent, Resolution};
pub use log::{ExecutionLogEntry, LogLevel};
pub use mailbox::{FailingMessage, MailboxCursor, QuarantinedMessage};
pub use pacing::{MailboxPace, MeterUsage, SendWindow, SendingPolicy, SendingSlot, SlotRef, TimeZoneName};
pub use reply::{InboundEffect, SequenceEnd};
pub use reply_intent::{IntentReading, Referral, ReplyIntent};
pub use research::{EmailDraft, ResearchFact, ResearchReport, TokenUsage};
pub use suppression::Suppression;
pub use transition::{ContactMarker, MarkerChange, Transition};
pub use validation::{FieldIssue, ValidationErrors};

/// Timestamps are UTC everywhere; time zones only matter when a send window is computed.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
