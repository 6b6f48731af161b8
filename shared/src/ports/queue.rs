//! Step queues. A message is a small claim check naming the lead and the step; the state
//! lives in the store.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{ExecutionId, LeadId};
pub use crate::domain::{StepMessage, StepQueue};

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

/// What a control message continues in the background.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlWork {
    /// Re-enqueue the leads a pause held.
    Resume,
    /// Skip the leads that had not finished.
    Cancel,
}

/// The rest of a large resume or cancel, carried out page by page by a worker, so the API
/// request that started it stays short.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlMessage {
    pub execution_id: ExecutionId,
    pub control: ControlWork,
}

/// Anything a step queue carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QueueMessage {
    Step(StepMessage),
    FanOut(FanOutMessage),
    Control(ControlMessage),
}

impl QueueMessage {
    pub fn body(&self) -> String {
        serde_json::to_string(self).expect("queue messages always serialise")
    }
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

    /// How many messages wait in `queue` or are being handled: while there are any, a lead
    /// waiting for that queue's worker may simply be behind them.
    async fn backlog(&self, queue: StepQueue) -> Result<u64, QueueError>;

    /// Enqueues every message or reports how many failed; callers may retry the whole call,
    /// because every step handler tolerates duplicates.
    async fn enqueue(&self, queue: StepQueue, messages: &[StepMessage]) -> Result<(), QueueError> {
        self.send(queue, messages.iter().map(|m| QueueMessage::Step(m.clone()).body()).collect()).await
    }

    async fn enqueue_fan_out(&self, queue: StepQueue, messages: &[FanOutMessage]) -> Result<(), QueueError> {
        self.send(queue, messages.iter().map(|m| QueueMessage::FanOut(m.clone()).body()).collect()).await
    }

    /// Background control work goes through the research queue, whose worker carries it out.
    async fn enqueue_control(&self, message: ControlMessage) -> Result<(), QueueError> {
        self.send(StepQueue::Research, vec![QueueMessage::Control(message).body()]).await
    }
}
