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

/// Many leads at once, for a large start: the worker that receives it enqueues one step
/// message per lead, so the API request only writes a few messages however many leads there are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanOutMessage {
    pub execution_id: ExecutionId,
    pub step: u32,
    pub fan_out: Vec<LeadId>,
}

impl FanOutMessage {
    /// One step message per lead.
    pub fn expand(&self) -> Vec<StepMessage> {
        self.fan_out.iter().map(|&lead_id| StepMessage { execution_id: self.execution_id, lead_id, step: self.step }).collect()
    }
}

/// Anything a step queue carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QueueMessage {
    Step(StepMessage),
    FanOut(FanOutMessage),
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
    /// Sends serialised messages, or reports how many failed.
    async fn send(&self, queue: StepQueue, bodies: Vec<String>) -> Result<(), QueueError>;

    /// Enqueues every message or reports how many failed; callers may retry the whole call,
    /// because every step handler tolerates duplicates.
    async fn enqueue(&self, queue: StepQueue, messages: &[StepMessage]) -> Result<(), QueueError> {
        self.send(queue, messages.iter().map(|m| serde_json::to_string(m).expect("step messages always serialise")).collect()).await
    }

    async fn enqueue_fan_out(&self, queue: StepQueue, messages: &[FanOutMessage]) -> Result<(), QueueError> {
        self.send(queue, messages.iter().map(|m| serde_json::to_string(m).expect("fan-out messages always serialise")).collect()).await
    }
}
