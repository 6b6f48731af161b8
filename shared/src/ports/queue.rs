//! Step queues. A message is a small claim check naming the lead and the step; the state
//! lives in the store.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{ExecutionId, LeadId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMessage {
    pub execution_id: ExecutionId,
    pub lead_id: LeadId,
    /// The sequence step the message is about (0 for the first email).
    pub step: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
    #[error("{failed} of {total} messages could not be enqueued: {reason}")]
    Partial { failed: usize, total: usize, reason: String },
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Enqueues every message or reports how many failed; callers may retry the whole call,
    /// because every step handler tolerates duplicates.
    async fn enqueue(&self, queue: StepQueue, messages: &[StepMessage]) -> Result<(), QueueError>;
}
