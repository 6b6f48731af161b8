//! An execution: one run of an agent over a set of leads, and its state machine
//! `created → running ⇄ paused → completed | cancelled | failed`.

use serde::{Deserialize, Serialize};

use super::transition::{EXECUTION_RECHECK, ExecutionChange, STEP_BUDGET, Transition};
use super::{AgentId, ExecutionId, ExecutionLogEntry, LogLevel, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionState {
    Created,
    Running,
    Paused,
    Completed,
    Cancelled,
    Failed,
}

impl ExecutionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Failed)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionCommand {
    Start,
    Pause,
    Resume,
    Cancel,
    Complete,
    Fail,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an execution that is {} cannot be {}", from.as_str(), command_verb(*command))]
pub struct InvalidExecutionTransition {
    pub from: ExecutionState,
    pub command: ExecutionCommand,
}

fn command_verb(command: ExecutionCommand) -> &'static str {
    match command {
        ExecutionCommand::Start => "started",
        ExecutionCommand::Pause => "paused",
        ExecutionCommand::Resume => "resumed",
        ExecutionCommand::Cancel => "cancelled",
        ExecutionCommand::Complete => "completed",
        ExecutionCommand::Fail => "failed",
    }
}

impl ExecutionState {
    /// The pure transition function of the execution state machine.
    pub fn apply(self, command: ExecutionCommand) -> Result<ExecutionState, InvalidExecutionTransition> {
        use ExecutionCommand as C;
        use ExecutionState as S;
        match (self, command) {
            (S::Created, C::Start) => Ok(S::Running),
            (S::Running, C::Pause) => Ok(S::Paused),
            (S::Paused, C::Resume) => Ok(S::Running),
            (S::Created | S::Running | S::Paused, C::Cancel) => Ok(S::Cancelled),
            (S::Running, C::Complete) => Ok(S::Completed),
            (S::Created | S::Running | S::Paused, C::Fail) => Ok(S::Failed),
            (from, command) => Err(InvalidExecutionTransition { from, command }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadSourceKind {
    Json,
    Csv,
    Apollo,
    /// A colleague a lead's reply named (`POST /api/v1/leads/{id}/referral`).
    Referral,
}

/// Running totals, updated by atomic increments rather than read-modify-write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionCounters {
    pub sent: u64,
    pub replied: u64,
    pub bounced: u64,
    pub unsubscribed: u64,
    pub failed: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Hard bounces are in `bounced`; these may deliver later.
    #[serde(default)]
    pub soft_bounced: u64,
    /// Spam complaints; mailbox providers start filtering above about 0.3% of emails sent.
    #[serde(default)]
    pub complained: u64,
    #[serde(default)]
    pub auto_replied: u64,
    /// Replies by intent: each human reply counts once, under the intent it was read as.
    #[serde(default)]
    pub interested: u64,
    #[serde(default)]
    pub not_interested: u64,
    #[serde(default)]
    pub meeting_requests: u64,
    #[serde(default)]
    pub referrals: u64,
    #[serde(default)]
    pub wrong_person: u64,
    #[serde(default)]
    pub questions: u64,
    #[serde(default)]
    pub other_replies: u64,
}

impl ExecutionCounters {
    /// The counters' names as stores keep them, in the order of `values`.
    pub const NAMES: [&'static str; 17] = [
        "sent",
        "replied",
        "bounced",
        "unsubscribed",
        "failed",
        "prompt_tokens",
        "completion_tokens",
        "soft_bounced",
        "complained",
        "auto_replied",
        "interested",
        "not_interested",
        "meeting_requests",
        "referrals",
        "wrong_person",
        "questions",
        "other_replies",
    ];

    pub fn values(&self) -> [u64; 17] {
        [
            self.sent,
            self.replied,
            self.bounced,
            self.unsubscribed,
            self.failed,
            self.prompt_tokens,
            self.completion_tokens,
            self.soft_bounced,
            self.complained,
            self.auto_replied,
            self.interested,
            self.not_interested,
            self.meeting_requests,
            self.referrals,
            self.wrong_person,
            self.questions,
            self.other_replies,
        ]
    }

    pub fn from_values(v: [u64; 17]) -> Self {
        Self {
            sent: v[0],
            replied: v[1],
            bounced: v[2],
            unsubscribed: v[3],
            failed: v[4],
            prompt_tokens: v[5],
            completion_tokens: v[6],
            soft_bounced: v[7],
            complained: v[8],
            auto_replied: v[9],
            interested: v[10],
            not_interested: v[11],
            meeting_requests: v[12],
            referrals: v[13],
            wrong_person: v[14],
            questions: v[15],
            other_replies: v[16],
        }
    }

    pub fn plus(&self, other: &Self) -> Self {
        let (a, b) = (self.values(), other.values());
        Self::from_values(std::array::from_fn(|i| a[i] + b[i]))
    }

    pub fn is_zero(&self) -> bool {
        self.values().iter().all(|v| *v == 0)
    }

    /// Replies counted by the intent of each lead's first answer.
    pub fn replies_by_intent(&self) -> [(super::ReplyIntent, u64); 7] {
        let mut counters = *self;
        super::ReplyIntent::ALL.map(|intent| (intent, *counters.replies_with(intent)))
    }

    /// One human reply read as `intent`.
    pub fn reply_with_intent(intent: super::ReplyIntent) -> Self {
        let mut counters = Self::default();
        *counters.replies_with(intent) = 1;
        counters
    }

    /// The counter of replies read as `intent`.
    fn replies_with(&mut self, intent: super::ReplyIntent) -> &mut u64 {
        use super::ReplyIntent as I;
        match intent {
            I::Interested => &mut self.interested,
            I::NotInterested => &mut self.not_interested,
            I::MeetingRequest => &mut self.meeting_requests,
            I::Referral => &mut self.referrals,
            I::WrongPerson => &mut self.wrong_person,
            I::Question => &mut self.questions,
            I::Other => &mut self.other_replies,
        }
    }

    pub fn response_rate(&self) -> f64 {
        if self.sent == 0 { 0.0 } else { self.replied as f64 / self.sent as f64 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub id: ExecutionId,
    pub agent_id: AgentId,
    pub state: ExecutionState,
    pub lead_source: LeadSourceKind,
    pub lead_count: u64,
    /// A client-chosen key that makes starting an execution safe to retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// A digest of the request that started the execution: the same key with another request
    /// is refused instead of silently answering with this execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Whether the start enqueued the leads' research messages (a start whose enqueue failed is
    /// finished by the retry with the same Idempotency-Key, or by the sweep).
    #[serde(default)]
    pub leads_enqueued: bool,
    /// When the sweep must look at the execution: a start that has not finished by then failed;
    /// a running execution is checked for completion and for held leads a lost resume left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_at: Option<Timestamp>,
    /// Why the execution paused by itself (a configuration fault); cleared by resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_reason: Option<String>,
    /// Why the execution's due follow-ups are waiting (its mailboxes were not read recently
    /// enough to know no one answered); cleared when they go out again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_ups_waiting: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    pub version: u64,
}

impl Execution {
    pub fn new(agent_id: AgentId, lead_source: LeadSourceKind, lead_count: u64, idempotency_key: Option<String>, now: Timestamp) -> Self {
        Self {
            id: ExecutionId::generate(),
            agent_id,
            state: ExecutionState::Created,
            lead_source,
            lead_count,
            idempotency_key,
            request_fingerprint: None,
            leads_enqueued: false,
            attention_at: Some(now + STEP_BUDGET),
            failure_reason: None,
            pause_reason: None,
            follow_ups_waiting: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
            version: 0,
        }
    }

    /// The transition `command` implies: the next execution (conditional on this version) and
    /// its log entry.
    pub fn commanded(&self, command: ExecutionCommand, now: Timestamp) -> Result<Transition, InvalidExecutionTransition> {
        self.changed(command, now, None)
    }

    /// Paused by itself: a fault every lead would meet (a key refused, a sender not verified, a
    /// quota spent). The reason stays visible until a resume.
    pub fn paused_because(&self, reason: &str, now: Timestamp) -> Result<Transition, InvalidExecutionTransition> {
        self.changed(ExecutionCommand::Pause, now, Some(reason))
    }

    /// The start's research messages are enqueued.
    pub fn leads_enqueued(&self, now: Timestamp) -> Transition {
        let mut next = self.clone();
        next.leads_enqueued = true;
        next.updated_at = now;
        next.version = self.version + 1;
        Transition { execution: Some(ExecutionChange { next }), ..Transition::default() }
    }

    /// The sweep looked at a running execution and found nothing to do: it looks again later.
    pub fn looked_at(&self, now: Timestamp) -> Transition {
        let mut next = self.clone();
        next.version = self.version + 1;
        next.attention_at = attention_for(next.state, now);
        Transition { execution: Some(ExecutionChange { next }), ..Transition::default() }
    }

    /// Records why its due follow-ups wait, or that they no longer do; `None` when that is
    /// already what it says.
    pub fn follow_ups_waiting_because(&self, reason: Option<String>, now: Timestamp) -> Option<Transition> {
        if self.follow_ups_waiting == reason {
            return None;
        }
        let mut next = self.clone();
        next.follow_ups_waiting = reason;
        next.updated_at = now;
        next.version = self.version + 1;
        Some(Transition { execution: Some(ExecutionChange { next }), ..Transition::default() })
    }

    /// Failed with the reason.
    pub fn failed_because(&self, reason: &str, now: Timestamp) -> Result<Transition, InvalidExecutionTransition> {
        self.changed(ExecutionCommand::Fail, now, Some(reason))
    }

    fn changed(&self, command: ExecutionCommand, now: Timestamp, reason: Option<&str>) -> Result<Transition, InvalidExecutionTransition> {
        let state = self.state.apply(command)?;
        let mut next = self.clone();
        next.state = state;
        next.updated_at = now;
        next.version = self.version + 1;
        if state.is_finished() {
            next.finished_at = Some(now);
        }
        next.attention_at = attention_for(state, now);
        match command {
            ExecutionCommand::Pause => next.pause_reason = reason.map(str::to_string),
            ExecutionCommand::Resume => next.pause_reason = None,
            ExecutionCommand::Fail => next.failure_reason = reason.map(str::to_string),
            _ => {}
        }
        let (level, message) = match reason {
            Some(reason) => (LogLevel::Error, format!("execution {}: {reason}", state.as_str())),
            None => (LogLevel::Info, format!("execution {}", state.as_str())),
        };
        let entry = ExecutionLogEntry::execution(level, self.id, &format!("execution.{}", state.as_str()), message, now);
        Ok(Transition { execution: Some(ExecutionChange { next }), log: vec![entry], ..Transition::default() })
    }
}

/// When the sweep looks at an execution in `state` next: a paused one waits for a person, a
/// finished one for nothing.
fn attention_for(state: ExecutionState, now: Timestamp) -> Option<Timestamp> {
    match state {
        ExecutionState::Created => Some(now + STEP_BUDGET),
        ExecutionState::Running => Some(now + EXECUTION_RECHECK),
        ExecutionState::Paused | ExecutionState::Completed | ExecutionState::Cancelled | ExecutionState::Failed => None,
    }
}

#[cfg(test)]
mod tests {
    use super::ExecutionCommand as C;
    use super::ExecutionState as S;

    #[test]
    fn pause_and_resume_alternate_and_finished_executions_stay_finished() {
        assert_eq!(S::Created.apply(C::Start), Ok(S::Running));
        assert_eq!(S::Running.apply(C::Pause), Ok(S::Paused));
        assert_eq!(S::Paused.apply(C::Resume), Ok(S::Running));
        assert!(S::Running.apply(C::Resume).is_err());
        assert!(S::Paused.apply(C::Pause).is_err());
        for finished in [S::Completed, S::Cancelled, S::Failed] {
            for command in [C::Start, C::Pause, C::Resume, C::Cancel, C::Complete, C::Fail] {
                assert!(finished.apply(command).is_err());
            }
        }
    }

    #[test]
    fn the_error_reads_as_a_sentence() {
        assert_eq!(S::Completed.apply(C::Pause).unwrap_err().to_string(), "an execution that is completed cannot be paused");
    }
}
