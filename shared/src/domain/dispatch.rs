//! Which worker moves a lead on next, and the small claim-check message that asks it to. The
//! state lives in the store; a message only names the lead and the step.

use serde::{Deserialize, Serialize};

use super::{ExecutionId, LeadId, LeadStateKind};

/// The step queues, one per worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepQueue {
    Research,
    Draft,
    Send,
}

impl StepQueue {
    pub const ALL: [StepQueue; 3] = [StepQueue::Research, StepQueue::Draft, StepQueue::Send];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Research => "research",
            Self::Draft => "draft",
            Self::Send => "send",
        }
    }

    /// The queue whose worker advances a lead waiting in `state`, if a worker does.
    pub fn advancing(state: LeadStateKind) -> Option<StepQueue> {
        match state {
            LeadStateKind::Queued => Some(Self::Research),
            LeadStateKind::Researched | LeadStateKind::FollowUpDue => Some(Self::Draft),
            LeadStateKind::Drafted | LeadStateKind::Approved => Some(Self::Send),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMessage {
    pub execution_id: ExecutionId,
    pub lead_id: LeadId,
    /// The sequence step the message is about (0 for the first email).
    pub step: u32,
}

/// A message to enqueue once a transition is committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispatch {
    pub queue: StepQueue,
    pub message: StepMessage,
}
