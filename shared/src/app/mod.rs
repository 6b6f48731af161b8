//! The application layer: every use case (start, approve, reject, resolve, pause, resume,
//! cancel, unsubscribe, each worker step, each reply action, the sweep) loads what it needs,
//! asks the domain for a `Transition`, and applies it with `commit`, the one place that writes
//! lead and execution state and enqueues what follows. The REST handlers and the Lambda and
//! local glue only map their inputs to these use cases.

pub mod admission;
pub mod control;
pub mod delivery;
pub mod draft;
pub mod feedback;
pub mod journal;
pub mod pacing;
pub mod progress;
pub mod replies;
pub mod reply_freshness;
pub mod research;
pub mod review;
pub mod scheduled;
pub mod send;
pub mod sending_health;
pub mod start;
pub mod sweep;

use std::sync::Arc;

pub use control::ExecutionControl;
pub use draft::DraftStep;
pub use feedback::{FeedbackConsumer, FeedbackError, FeedbackOutcome};
pub use pacing::SendingMailboxes;
pub use replies::ReplyProcessor;
pub use reply_freshness::{FreshnessRule, ReplyReading};
pub use research::ResearchStep;
pub use scheduled::{ScheduledReport, ScheduledTasks};
pub use send::{SendStep, UnsubscribeKeys, UnsubscribeSettings};
pub use sweep::Sweep;

use crate::domain::{Lead, LeadId, Transition};
use crate::ports::{Clock, ControlMessage, FanOutMessage, Queue, QueueError, StepMessage, StepQueue, Store, StoreError};

/// What a handler did with one message, for logs and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// The lead moved on and the next step was enqueued.
    Advanced,
    /// The message repeated work already done; the next step was enqueued again if needed.
    AlreadyDone,
    /// The execution is paused; the lead waits for resume.
    Held,
    /// The lead was skipped (suppressed, execution cancelled, ...).
    Skipped,
    /// The lead failed for good; the reason is on the lead.
    Failed,
    /// The send's outcome was unknown; the lead waits for a person.
    Parked,
    /// The lead may not be sent yet (its send window, a cap, a gap, a provider's "later"); it
    /// waits in the store and the sweep enqueues it when the time comes.
    Waiting,
    /// The message named a lead or step that no longer applies.
    Ignored(String),
}

/// Only a transient failure is worth a redelivery.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RetryableStepError(pub String);

impl From<StoreError> for RetryableStepError {
    fn from(error: StoreError) -> Self {
        Self(format!("store: {error}"))
    }
}

pub type StepResult = Result<StepOutcome, RetryableStepError>;

/// Why one attempt at a use case stopped short.
#[derive(Debug)]
pub(crate) enum Interrupted {
    /// What the decision was based on changed (a `Conflict`): read again and decide again.
    Changed,
    Retry(String),
}

impl From<StoreError> for Interrupted {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => Self::Changed,
            other => Self::Retry(format!("store: {other}")),
        }
    }
}

impl From<RetryableStepError> for Interrupted {
    fn from(error: RetryableStepError) -> Self {
        Self::Retry(error.0)
    }
}

impl From<Committed> for Interrupted {
    fn from(error: Committed) -> Self {
        match error {
            Committed::Refused(error) => error.into(),
            Committed::NotEnqueued(why) => Self::Retry(why),
        }
    }
}

/// How often a use case reads again after a `Conflict` before it lets the message be retried.
const REREADS: u32 = 5;

/// Runs `attempt` again while it reports that the lead changed under it.
pub(crate) async fn deciding<T, F, Fut>(mut attempt: F) -> Result<T, RetryableStepError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Interrupted>>,
{
    for _ in 0..REREADS {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(Interrupted::Changed) => continue,
            Err(Interrupted::Retry(why)) => return Err(RetryableStepError(why)),
        }
    }
    Err(RetryableStepError("the lead kept changing while it was being decided; retrying later".into()))
}

/// Why a commit did not fully happen.
#[derive(Debug)]
pub(crate) enum Committed {
    /// Nothing was written.
    Refused(StoreError),
    /// The transition was written but a message after it could not be enqueued; the sweep
    /// re-drives the lead if the retry does not.
    NotEnqueued(String),
}

/// The ports every use case needs.
#[derive(Clone)]
pub struct StepPorts {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
}

impl StepPorts {
    /// Applies `transition` atomically, then enqueues the messages it implies. This is the only
    /// place lead and execution state is written.
    pub(crate) async fn commit(&self, transition: &Transition) -> Result<(), Committed> {
        self.store.commit(transition).await.map_err(Committed::Refused)?;
        journal::trace(transition);
        let mut by_queue: Vec<(StepQueue, Vec<StepMessage>)> = Vec::new();
        for dispatch in &transition.dispatch {
            match by_queue.iter_mut().find(|(queue, _)| *queue == dispatch.queue) {
                Some((_, messages)) => messages.push(dispatch.message.clone()),
                None => by_queue.push((dispatch.queue, vec![dispatch.message.clone()])),
            }
        }
        for (queue, messages) in by_queue {
            self.queue.enqueue(queue, &messages).await.map_err(|e| Committed::NotEnqueued(enqueue_failure(&e)))?;
        }
        if transition.finishes_lead()
            && let Some(execution_id) = transition.execution_id()
        {
            progress::complete_if_finished(self, execution_id).await;
        }
        Ok(())
    }

    pub(crate) async fn load_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        match self.store.get_lead(id).await {
            Ok(lead) => Ok(Some(lead)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn enqueue_failure(error: &QueueError) -> String {
    format!("committed, but the next step could not be enqueued ({error}); the retry or the sweep enqueues it")
}

/// A worker step: research, draft or send. Lambda and the local runner drive the same steps
/// through `delivery`.
#[async_trait::async_trait]
pub trait StepWorker: Send + Sync {
    fn queue(&self) -> StepQueue;
    async fn handle(&self, message: &StepMessage) -> StepResult;
    fn ports(&self) -> &StepPorts;

    /// Called when a message has failed on its last allowed receive: the lead is failed with
    /// the reason (or parked, when a send may have left), so it shows why it stopped.
    async fn give_up(&self, message: &StepMessage, reason: String) -> StepResult {
        admission::abandon(self.ports(), message.lead_id, reason).await
    }

    /// Expands a fan-out message into one message per lead on this worker's own queue.
    async fn fan_out(&self, message: &FanOutMessage) -> Result<(), RetryableStepError> {
        self.ports().queue.enqueue(self.queue(), &message.expand()).await.map_err(|e| RetryableStepError(e.to_string()))
    }

    /// Carries on a large resume or cancel.
    async fn control(&self, message: &ControlMessage) -> Result<(), RetryableStepError> {
        ExecutionControl::new(self.ports().clone()).continue_in_background(message).await
    }
}

macro_rules! step_worker {
    ($step:ty, $queue:expr) => {
        #[async_trait::async_trait]
        impl StepWorker for $step {
            fn queue(&self) -> StepQueue {
                $queue
            }
            async fn handle(&self, message: &StepMessage) -> StepResult {
                <$step>::handle(self, message).await
            }
            fn ports(&self) -> &StepPorts {
                &self.ports
            }
        }
    };
}

step_worker!(ResearchStep, StepQueue::Research);
step_worker!(DraftStep, StepQueue::Draft);
step_worker!(SendStep, StepQueue::Send);
