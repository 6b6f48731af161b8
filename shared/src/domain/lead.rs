//! A lead (one prospect in one execution) and its state machine.
//!
//! ```text
//! queued → researched → drafted ─────────────────→ sending → sent ─(due)→ follow_up_due → drafted …
//!                          └→ awaiting_approval → approved ↗        └→ completed (last step sent)
//! terminal: replied, bounced, unsubscribed, skipped(reason), failed(reason)
//! parked(reason): a send whose outcome is unknown; a person decides.
//! ```
//! Transitions are pure: `LeadState::apply` either returns the next state or says why the event
//! does not fit. Stores write the result conditionally on the lead's version.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{AgentId, EmailAddress, ExecutionId, LeadId, Timestamp};

/// Contact data as imported. Names and companies come only from here, never from an LLM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadContact {
    pub email: EmailAddress,
    pub first_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    pub company: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The company's web domain; when absent it is taken from the email address unless that is
    /// a free-mail provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_domain: Option<String>,
    /// IANA time zone of the lead, for send windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

const FREE_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "gmx.de",
    "web.de",
    "yandex.ru",
];

impl LeadContact {
    /// The domain to research: explicit, else the email's domain unless it is free mail.
    pub fn research_domain(&self) -> Option<String> {
        if let Some(domain) = self.company_domain.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            let domain = domain.trim_start_matches("https://").trim_start_matches("http://").trim_start_matches("www.");
            return Some(domain.trim_end_matches('/').to_ascii_lowercase());
        }
        let domain = self.email.domain();
        (!FREE_MAIL_DOMAINS.contains(&domain)).then(|| domain.to_string())
    }

    pub fn full_name(&self) -> String {
        match &self.last_name {
            Some(last) if !last.trim().is_empty() => format!("{} {}", self.first_name, last),
            _ => self.first_name.clone(),
        }
    }
}

/// Why a lead was not contacted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The address or its domain is on the suppression list.
    Suppressed,
    /// The same address appears earlier in the execution.
    Duplicate,
    /// The agent already emailed this address in another execution.
    AlreadyContacted,
    /// The execution was cancelled before this lead was contacted.
    ExecutionCancelled,
    /// A reviewer rejected the draft.
    RejectedByReviewer,
}

/// A claim on sending one step to one lead. It never expires: a delivery that finds a claim
/// cannot know whether the email left, so it parks the lead instead of sending again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendClaim {
    pub claim_id: String,
    pub claimed_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LeadState {
    Queued,
    Researched,
    Drafted,
    AwaitingApproval,
    Approved,
    Sending { claim: SendClaim },
    Sent,
    FollowUpDue,
    Completed,
    Replied,
    Bounced,
    Unsubscribed,
    Skipped { reason: SkipReason },
    Failed { reason: String },
    Parked { reason: String },
}

/// The state without its data, for filters, indexes and counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStateKind {
    Queued,
    Researched,
    Drafted,
    AwaitingApproval,
    Approved,
    Sending,
    Sent,
    FollowUpDue,
    Completed,
    Replied,
    Bounced,
    Unsubscribed,
    Skipped,
    Failed,
    Parked,
}

impl LeadStateKind {
    pub const ALL: [LeadStateKind; 15] = [
        Self::Queued,
        Self::Researched,
        Self::Drafted,
        Self::AwaitingApproval,
        Self::Approved,
        Self::Sending,
        Self::Sent,
        Self::FollowUpDue,
        Self::Completed,
        Self::Replied,
        Self::Bounced,
        Self::Unsubscribed,
        Self::Skipped,
        Self::Failed,
        Self::Parked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Researched => "researched",
            Self::Drafted => "drafted",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Approved => "approved",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::FollowUpDue => "follow_up_due",
            Self::Completed => "completed",
            Self::Replied => "replied",
            Self::Bounced => "bounced",
            Self::Unsubscribed => "unsubscribed",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::Parked => "parked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// No further email will ever go to a lead in a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Replied | Self::Bounced | Self::Unsubscribed | Self::Skipped | Self::Failed)
    }

    /// States in which a lead waits for time or a person rather than for a worker.
    pub fn is_waiting(self) -> bool {
        matches!(self, Self::Sent | Self::AwaitingApproval | Self::Parked)
    }
}

impl fmt::Display for LeadStateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened to a lead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeadEvent {
    ResearchCompleted,
    DraftReady {
        needs_approval: bool,
    },
    DraftApproved,
    DraftRejected,
    SendClaimed(SendClaim),
    /// The mailer accepted the email; `more_steps` says whether a follow-up remains.
    SendConfirmed {
        claim_id: String,
        more_steps: bool,
    },
    /// The mailer refused before anything left, so the claim can be given back.
    SendReleased {
        claim_id: String,
    },
    FollowUpDue,
    ReplyReceived,
    HardBounce,
    UnsubscribeRequested,
    Skip(SkipReason),
    Fail(String),
    Park(String),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a lead in state '{from}' cannot take the event {event}")]
pub struct InvalidTransition {
    pub from: LeadStateKind,
    pub event: String,
}

impl LeadState {
    pub fn kind(&self) -> LeadStateKind {
        match self {
            Self::Queued => LeadStateKind::Queued,
            Self::Researched => LeadStateKind::Researched,
            Self::Drafted => LeadStateKind::Drafted,
            Self::AwaitingApproval => LeadStateKind::AwaitingApproval,
            Self::Approved => LeadStateKind::Approved,
            Self::Sending { .. } => LeadStateKind::Sending,
            Self::Sent => LeadStateKind::Sent,
            Self::FollowUpDue => LeadStateKind::FollowUpDue,
            Self::Completed => LeadStateKind::Completed,
            Self::Replied => LeadStateKind::Replied,
            Self::Bounced => LeadStateKind::Bounced,
            Self::Unsubscribed => LeadStateKind::Unsubscribed,
            Self::Skipped { .. } => LeadStateKind::Skipped,
            Self::Failed { .. } => LeadStateKind::Failed,
            Self::Parked { .. } => LeadStateKind::Parked,
        }
    }

    /// The pure transition function of the lead state machine.
    pub fn apply(&self, event: LeadEvent) -> Result<LeadState, InvalidTransition> {
        use LeadState as S;
        let kind = self.kind();
        let next = match (self, &event) {
            (S::Queued, LeadEvent::ResearchCompleted) => Some(S::Researched),
            (S::Researched | S::FollowUpDue, LeadEvent::DraftReady { needs_approval }) => {
                Some(if *needs_approval { S::AwaitingApproval } else { S::Drafted })
            }
            (S::AwaitingApproval, LeadEvent::DraftApproved) => Some(S::Approved),
            (S::AwaitingApproval, LeadEvent::DraftRejected) => Some(S::Skipped { reason: SkipReason::RejectedByReviewer }),
            (S::Drafted | S::Approved, LeadEvent::SendClaimed(claim)) => Some(S::Sending { claim: claim.clone() }),
            (S::Sending { claim }, LeadEvent::SendConfirmed { claim_id, more_steps }) if &claim.claim_id == claim_id => {
                Some(if *more_steps { S::Sent } else { S::Completed })
            }
            (S::Sending { claim }, LeadEvent::SendReleased { claim_id }) if &claim.claim_id == claim_id => Some(S::Drafted),
            (S::Sent, LeadEvent::FollowUpDue) => Some(S::FollowUpDue),
            // A reply, bounce or unsubscribe ends the sequence wherever it stands, except while a
            // send is in flight: that claim must be settled first.
            (_, LeadEvent::ReplyReceived)
                if kind != LeadStateKind::Sending
                    && !matches!(kind, LeadStateKind::Replied | LeadStateKind::Bounced | LeadStateKind::Unsubscribed) =>
            {
                Some(S::Replied)
            }
            (_, LeadEvent::HardBounce)
                if kind != LeadStateKind::Sending && !matches!(kind, LeadStateKind::Bounced | LeadStateKind::Unsubscribed) =>
            {
                Some(S::Bounced)
            }
            (_, LeadEvent::UnsubscribeRequested) if kind != LeadStateKind::Sending && kind != LeadStateKind::Unsubscribed => {
                Some(S::Unsubscribed)
            }
            (_, LeadEvent::Skip(reason)) if !kind.is_terminal() && kind != LeadStateKind::Sending => {
                Some(S::Skipped { reason: reason.clone() })
            }
            (_, LeadEvent::Fail(reason)) if !kind.is_terminal() => Some(S::Failed { reason: reason.clone() }),
            (S::Sending { .. }, LeadEvent::Park(reason)) => Some(S::Parked { reason: reason.clone() }),
            _ => None,
        };
        next.ok_or_else(|| InvalidTransition { from: kind, event: format!("{event:?}") })
    }
}

/// A record of one email that left for this lead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub step: u32,
    /// The RFC 5322 Message-ID we set, without angle brackets.
    pub message_id: String,
    /// The id the mail provider returned (SES message id, outbox file name, ...).
    pub provider_message_id: String,
    pub subject: String,
    pub sent_at: Timestamp,
}

/// A message from the lead's side: a reply, an auto-reply, a bounce, a complaint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundRecord {
    /// `human_reply`, `auto_reply`, `hard_bounce`, `soft_bounce`, `complaint`,
    /// `unsubscribe_request`.
    pub class: String,
    /// The message's Message-ID (or a digest of it when it has none): what makes reading the
    /// same message twice change nothing.
    pub message_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub subject: String,
    /// The new text of a reply without quoted history, or what a bouncing server said; at most
    /// a few thousand characters.
    pub text: String,
    /// The enhanced status code of a bounce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The last day of an absence an out-of-office named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent_until: Option<chrono::NaiveDate>,
    /// `account/folder` it was read from.
    #[serde(default)]
    pub folder: String,
    pub received_at: Timestamp,
}

/// How many inbound messages a lead keeps; older ones are dropped, newest kept.
pub const MAX_INBOUND_RECORDS: usize = 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    pub id: LeadId,
    pub execution_id: ExecutionId,
    pub agent_id: AgentId,
    pub contact: LeadContact,
    #[serde(flatten)]
    pub state: LeadState,
    /// The sequence step the lead is on (0-based).
    pub step: u32,
    /// The lead's execution was paused while the lead waited for a worker; resume re-enqueues it.
    #[serde(default)]
    pub on_hold: bool,
    /// When the next follow-up is due, for a lead in `sent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step_due_at: Option<Timestamp>,
    /// The research report's key (the company domain), kept out of the lead item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub research_key: Option<String>,
    #[serde(default)]
    pub sent_messages: Vec<SentMessage>,
    /// Messages from the lead's side, oldest first (at most `MAX_INBOUND_RECORDS`).
    #[serde(default)]
    pub inbound: Vec<InboundRecord>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

impl Lead {
    pub fn new(execution_id: ExecutionId, agent_id: AgentId, contact: LeadContact, now: Timestamp) -> Self {
        Self {
            id: LeadId::generate(),
            execution_id,
            agent_id,
            contact,
            state: LeadState::Queued,
            step: 0,
            on_hold: false,
            next_step_due_at: None,
            research_key: None,
            sent_messages: Vec::new(),
            inbound: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    /// The lead after `event`, ready for a conditional write against `self.version`.
    pub fn advanced(&self, event: LeadEvent, now: Timestamp) -> Result<Lead, InvalidTransition> {
        let state = self.state.apply(event)?;
        let mut next = self.clone();
        // A lead that moves is no longer waiting for a resume.
        next.on_hold = false;
        // A due time only means something while the lead waits for its next step.
        if !matches!(state.kind(), LeadStateKind::Sent | LeadStateKind::FollowUpDue) {
            next.next_step_due_at = None;
        }
        next.state = state;
        next.updated_at = now;
        Ok(next)
    }

    /// The first email's Message-ID, which follow-ups thread on.
    pub fn thread_root(&self) -> Option<&SentMessage> {
        self.sent_messages.iter().min_by_key(|m| m.step)
    }

    pub fn has_inbound(&self, message_key: &str) -> bool {
        self.inbound.iter().any(|m| m.message_key == message_key)
    }

    /// Keeps `record`, dropping the oldest beyond the limit.
    pub fn record_inbound(&mut self, record: InboundRecord) {
        self.inbound.push(record);
        let excess = self.inbound.len().saturating_sub(MAX_INBOUND_RECORDS);
        self.inbound.drain(..excess);
    }

    pub fn has_sent_step(&self, step: u32) -> bool {
        self.sent_messages.iter().any(|m| m.step == step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(id: &str) -> SendClaim {
        SendClaim { claim_id: id.into(), claimed_at: chrono::Utc::now() }
    }

    #[test]
    fn a_lead_walks_the_happy_path_to_completion() {
        let mut state = LeadState::Queued;
        for event in [
            LeadEvent::ResearchCompleted,
            LeadEvent::DraftReady { needs_approval: false },
            LeadEvent::SendClaimed(claim("c1")),
            LeadEvent::SendConfirmed { claim_id: "c1".into(), more_steps: true },
            LeadEvent::FollowUpDue,
            LeadEvent::DraftReady { needs_approval: true },
            LeadEvent::DraftApproved,
            LeadEvent::SendClaimed(claim("c2")),
            LeadEvent::SendConfirmed { claim_id: "c2".into(), more_steps: false },
        ] {
            state = state.apply(event).unwrap();
        }
        assert_eq!(state, LeadState::Completed);
    }

    #[test]
    fn a_claimed_send_cannot_be_claimed_again_or_confirmed_by_another_claim() {
        let sending = LeadState::Sending { claim: claim("c1") };
        assert!(sending.apply(LeadEvent::SendClaimed(claim("c2"))).is_err());
        assert!(sending.apply(LeadEvent::SendConfirmed { claim_id: "c2".into(), more_steps: false }).is_err());
        assert_eq!(sending.apply(LeadEvent::SendReleased { claim_id: "c1".into() }), Ok(LeadState::Drafted));
        assert!(matches!(sending.apply(LeadEvent::Park("unknown".into())), Ok(LeadState::Parked { .. })));
    }

    #[test]
    fn replies_end_the_sequence_but_never_interrupt_a_send_in_flight() {
        assert_eq!(LeadState::Sent.apply(LeadEvent::ReplyReceived), Ok(LeadState::Replied));
        assert_eq!(LeadState::Completed.apply(LeadEvent::ReplyReceived), Ok(LeadState::Replied));
        assert!(LeadState::Replied.apply(LeadEvent::ReplyReceived).is_err());
        assert!(LeadState::Sending { claim: claim("c") }.apply(LeadEvent::ReplyReceived).is_err());
        assert_eq!(LeadState::Replied.apply(LeadEvent::HardBounce), Ok(LeadState::Bounced));
    }

    #[test]
    fn terminal_leads_cannot_be_skipped_or_failed() {
        for terminal in [LeadState::Completed, LeadState::Replied, LeadState::Failed { reason: "x".into() }] {
            assert!(terminal.apply(LeadEvent::Skip(SkipReason::ExecutionCancelled)).is_err());
            assert!(terminal.apply(LeadEvent::Fail("again".into())).is_err());
        }
    }

    #[test]
    fn research_domain_prefers_the_explicit_domain_and_ignores_free_mail() {
        let mut contact = LeadContact {
            email: EmailAddress::parse("ada@gmail.com").unwrap(),
            first_name: "Ada".into(),
            last_name: None,
            company: "Initech".into(),
            title: None,
            company_domain: None,
            time_zone: None,
        };
        assert_eq!(contact.research_domain(), None);
        contact.company_domain = Some("https://www.Initech.example/".into());
        assert_eq!(contact.research_domain().as_deref(), Some("initech.example"));
    }

    #[test]
    fn state_serialises_flat_with_its_data() {
        let json = serde_json::to_value(LeadState::Skipped { reason: SkipReason::Duplicate }).unwrap();
        assert_eq!(json, serde_json::json!({"state": "skipped", "reason": "duplicate"}));
        for kind in LeadStateKind::ALL {
            assert_eq!(LeadStateKind::parse(kind.as_str()), Some(kind));
        }
    }
}
