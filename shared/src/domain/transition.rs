//! A transition: everything one change of state implies, decided by the domain and applied by
//! the store in one atomic write (one SQLite transaction; one DynamoDB `TransactWriteItems`).
//!
//! It holds the next lead and/or execution (each written only if the stored version is still the
//! one read), the counter deltas, the log entries, the markers and index entries to write, and the
//! messages to enqueue once the write has landed. A message that is lost between the commit and
//! the enqueue is not lost for good: every lead that waits for a worker carries an
//! `attention_at`, and the scheduled sweep re-drives leads nothing moved in time.

use chrono::Duration;

use super::pacing::{MailboxError, MailboxPause};
use super::{
    AgentId, Dispatch, Execution, ExecutionCounters, ExecutionId, ExecutionLogEntry, Lead, LeadId, LeadStateKind, SendingSlot, SlotRef,
    Suppression,
};

/// How long one step may take, through every retry of its message, before the sweep looks at
/// the lead: the longest queue's visibility timeout (720 s, the draft queue) times five receives,
/// rounded up.
pub const STEP_BUDGET: Duration = Duration::hours(1);

/// How long a send claim may be owned by a live worker: longer than the send function's timeout
/// (30 s) plus its confirm retries. A delivery meeting a younger claim retries later; an older
/// claim means the worker died mid-send, and the lead is parked for a person.
pub const SEND_CLAIM_TIMEOUT: Duration = Duration::minutes(2);

/// How often the sweep looks at a running execution: whether it is complete (should the check
/// after its last lead have failed), and whether a lost resume left leads held.
pub const EXECUTION_RECHECK: Duration = Duration::hours(1);

/// Re-drives of a lead nothing moves before the sweep fails it with the reason.
pub const MAX_REDRIVES: u32 = 3;

/// Sends of one step a provider may refuse "for now" (throttled, a 4xx, no connection) before
/// the lead fails with the reason; the lead waits longer after each (see `send_retry_delay`).
pub const MAX_SEND_RETRIES: u32 = 8;

/// How long a lead waits after its `retries`-th refusal "for now": one minute, doubling, at
/// most an hour; the eight refusals before a lead fails span about two hours.
pub fn send_retry_delay(retries: u32) -> Duration {
    Duration::minutes((1i64 << retries.min(6)).min(60))
}

/// The lead part of a transition.
#[derive(Clone, Debug, PartialEq)]
pub struct LeadChange {
    /// The state the lead was read in (its per-state count moves from here).
    pub from: LeadStateKind,
    /// The lead to write; its `version` is one more than the version read, and the write only
    /// happens if the stored version is still the one read.
    pub next: Lead,
}

/// The execution part of a transition, conditional on its version like a lead's.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionChange {
    pub next: Execution,
}

/// "This agent has emailed this address, through this lead": at most one lead per agent and
/// address holds it, so no prospect gets a second first email from one agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactMarker {
    pub agent_id: AgentId,
    /// The address's dedupe key (lower-case).
    pub address: String,
    pub lead_id: LeadId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarkerChange {
    /// Taken in the send claim's write; refused when another lead holds the marker.
    ClaimContact(ContactMarker),
    /// Given back when a lead that never emailed anyone fails, so a later list may reach the
    /// prospect. Only the holder's own marker is removed.
    ReleaseContact(ContactMarker),
    /// Replies and bounces that refer to this Message-ID belong to this lead.
    IndexMessage { message_id: String, lead_id: LeadId },
    /// The address or domain is never emailed again; the first reason recorded is kept.
    Suppress(Suppression),
    /// A person took the address or domain off the suppression list.
    Unsuppress(String),
    /// A send claim takes a slot of a daily cap (and a mailbox's gap); refused with the claim
    /// when there is no room.
    TakeSlot(SendingSlot),
    /// A released claim gives its slot back.
    ReturnSlot(SlotRef),
    /// Adds to a mailbox's record since its last resume (an email it sent, a hard bounce or a
    /// complaint about one).
    CountMailbox { meter: String, sent: u64, hard_bounced: u64, complained: u64 },
    /// The mailbox stops sending; the first reason is kept.
    PauseMailbox { meter: String, pause: MailboxPause },
    /// A person resumed the mailbox: the pause is lifted and its record starts again.
    ResumeMailbox { meter: String },
    /// The mailbox's provider answered a send with something other than an acceptance.
    NoteMailboxError { meter: String, error: MailboxError },
}

/// One complete change of state. Build it with the domain (`Lead::advanced`,
/// `Execution::commanded`), combine parts with `and`, and hand it to the store's `commit`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transition {
    pub lead: Option<LeadChange>,
    pub execution: Option<ExecutionChange>,
    /// Added to the counters of the transition's execution.
    pub counters: ExecutionCounters,
    pub log: Vec<ExecutionLogEntry>,
    pub markers: Vec<MarkerChange>,
    /// To enqueue after the commit.
    pub dispatch: Vec<Dispatch>,
}

impl Transition {
    /// A transition that only writes markers (a manual suppression, say).
    pub fn markers(markers: Vec<MarkerChange>) -> Self {
        Self { markers, ..Self::default() }
    }

    /// The execution whose counters and log this transition touches.
    pub fn execution_id(&self) -> Option<ExecutionId> {
        self.lead.as_ref().map(|l| l.next.execution_id).or_else(|| self.execution.as_ref().map(|e| e.next.id))
    }

    pub fn next_lead(&self) -> Option<&Lead> {
        self.lead.as_ref().map(|l| &l.next)
    }

    pub fn next_execution(&self) -> Option<&Execution> {
        self.execution.as_ref().map(|e| &e.next)
    }

    /// Both changes in one atomic write, for example a lead held and its execution paused.
    pub fn and(mut self, other: Transition) -> Transition {
        debug_assert!(self.lead.is_none() || other.lead.is_none(), "one transition moves one lead");
        debug_assert!(self.execution.is_none() || other.execution.is_none(), "one transition moves one execution");
        self.lead = self.lead.or(other.lead);
        self.execution = self.execution.or(other.execution);
        self.counters = self.counters.plus(&other.counters);
        self.log.extend(other.log);
        self.markers.extend(other.markers);
        self.dispatch.extend(other.dispatch);
        self
    }

    /// Attaches details (a prompt, a provider id) to the transition's first log entry.
    pub fn with_log_data(mut self, data: serde_json::Value) -> Self {
        if let Some(entry) = self.log.first_mut() {
            entry.data = data;
        }
        self
    }

    /// Replaces the first log entry's message with a more specific one.
    pub fn with_log_message(mut self, message: impl Into<String>) -> Self {
        if let Some(entry) = self.log.first_mut() {
            entry.message = message.into();
        }
        self
    }

    /// Whether the lead reaches a terminal state, after which its execution may be complete.
    pub fn finishes_lead(&self) -> bool {
        self.lead.as_ref().is_some_and(|l| !l.from.is_terminal() && l.next.state.kind().is_terminal())
    }
}
