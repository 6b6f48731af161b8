//! The step handlers: research, draft, send, due follow-ups and replies, written against the
//! ports only. A handler returns `Ok` when the message is done with (advanced, duplicate, held,
//! skipped or failed for good) and `Err` only when a retry can help.

pub mod control;
pub mod draft;
pub mod follow_ups;
pub mod journal;
pub mod progress;
pub mod replies;
pub mod research;
pub mod scheduled;
pub mod send;

use std::sync::Arc;

pub use control::ExecutionControl;
pub use draft::DraftStep;
pub use follow_ups::FollowUpScheduler;
pub use replies::ReplyProcessor;
pub use research::ResearchStep;
pub use scheduled::{ScheduledReport, ScheduledTasks};
pub use send::{SendStep, UnsubscribeSettings};

use crate::domain::{ExecutionCounters, ExecutionState, Lead, LeadEvent, LogLevel, SkipReason};
use crate::ports::{Clock, Store, StoreError};

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

/// What the execution's state means for a lead that a worker is about to advance.
pub(crate) enum Admission {
    Proceed,
    Stop(StepOutcome),
}

/// Checks the lead's execution before a step: a paused execution holds the lead where it is, a
/// finished one skips it.
pub(crate) async fn admit(store: &dyn Store, clock: &dyn Clock, lead: &Lead) -> Result<Admission, RetryableStepError> {
    let execution = store.get_execution(lead.execution_id).await?;
    match execution.state {
        state if state.lets_leads_advance() => Ok(Admission::Proceed),
        ExecutionState::Paused => {
            let mut held = lead.clone();
            held.on_hold = true;
            held.updated_at = clock.now();
            match store.update_lead(&held).await {
                Ok(_) | Err(StoreError::Conflict) => Ok(Admission::Stop(StepOutcome::Held)),
                Err(e) => Err(e.into()),
            }
        }
        _ => {
            skip(store, clock, lead, SkipReason::ExecutionCancelled).await?;
            Ok(Admission::Stop(StepOutcome::Skipped))
        }
    }
}

/// The lead a message names, or `None` when it no longer exists (the message is then dropped).
pub(crate) async fn load_lead(store: &dyn Store, id: crate::domain::LeadId) -> Result<Option<Lead>, RetryableStepError> {
    match store.get_lead(id).await {
        Ok(lead) => Ok(Some(lead)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Skips the lead when its address or its domain is on the suppression list.
pub(crate) async fn skip_if_suppressed(store: &dyn Store, clock: &dyn Clock, lead: &Lead) -> Result<bool, RetryableStepError> {
    let Some(entry) = store.suppression_for(&lead.contact.email).await? else { return Ok(false) };
    skip(store, clock, lead, SkipReason::Suppressed).await?;
    let why = format!("{} is suppressed ({})", lead.contact.email, entry.reason);
    journal::record(store, journal::lead_entry(lead, LogLevel::Info, "lead.skipped", why, clock.now())).await;
    Ok(true)
}

/// Moves a lead to `skipped`; a lead that changed meanwhile is left to whoever changed it.
pub(crate) async fn skip(store: &dyn Store, clock: &dyn Clock, lead: &Lead, reason: SkipReason) -> Result<(), RetryableStepError> {
    let Ok(skipped) = lead.advanced(LeadEvent::Skip(reason), clock.now()) else { return Ok(()) };
    match store.update_lead(&skipped).await {
        Ok(_) => progress::complete_if_finished(store, clock, lead.execution_id).await,
        Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Moves a lead to `failed` for good, counts it and logs why.
pub(crate) async fn fail_lead(store: &dyn Store, clock: &dyn Clock, lead: &Lead, why: String) -> StepResult {
    let Ok(failed) = lead.advanced(LeadEvent::Fail(why.clone()), clock.now()) else {
        return Ok(StepOutcome::Ignored("lead already finished".into()));
    };
    match store.update_lead(&failed).await {
        Ok(_) => {}
        Err(StoreError::Conflict) => return Ok(StepOutcome::AlreadyDone),
        Err(e) => return Err(e.into()),
    }
    store.add_to_counters(lead.execution_id, &ExecutionCounters { failed: 1, ..Default::default() }).await?;
    journal::record(store, journal::lead_entry(lead, LogLevel::Error, "lead.failed", why, clock.now())).await;
    progress::complete_if_finished(store, clock, lead.execution_id).await?;
    Ok(StepOutcome::Failed)
}

/// Fails the lead of a message that could not be handled after every retry, so that it shows
/// as failed with the reason instead of waiting forever.
pub async fn abandon(store: &dyn Store, clock: &dyn Clock, message: &crate::ports::StepMessage, reason: String) -> StepResult {
    let lead = store.get_lead(message.lead_id).await?;
    if let crate::domain::LeadState::Sending { .. } = lead.state {
        // The email may have left: a person decides, it is never retried blindly.
        let parked = lead.advanced(LeadEvent::Park(reason.clone()), clock.now()).map_err(|e| RetryableStepError(e.to_string()))?;
        store.update_lead(&parked).await?;
        journal::record(store, journal::lead_entry(&lead, LogLevel::Error, "lead.parked", reason, clock.now())).await;
        return Ok(StepOutcome::Parked);
    }
    fail_lead(store, clock, &lead, reason).await
}

/// A worker step: research, draft or send. Lambda and the local runner drive the same steps.
#[async_trait::async_trait]
pub trait StepWorker: Send + Sync {
    fn queue(&self) -> crate::ports::StepQueue;
    async fn handle(&self, message: &crate::ports::StepMessage) -> StepResult;
    /// Called when a message has failed on its last allowed attempt: the lead is failed with
    /// the reason (or parked, when a send may have left).
    async fn give_up(&self, message: &crate::ports::StepMessage, reason: String) -> StepResult;
    fn ports(&self) -> &StepPorts;

    /// Expands a fan-out message into one message per lead on this worker's own queue.
    async fn fan_out(&self, message: &crate::ports::FanOutMessage) -> Result<(), RetryableStepError> {
        self.ports().queue.enqueue(self.queue(), &message.expand()).await.map_err(|e| RetryableStepError(e.to_string()))
    }
}

macro_rules! step_worker {
    ($step:ty, $queue:expr) => {
        #[async_trait::async_trait]
        impl StepWorker for $step {
            fn queue(&self) -> crate::ports::StepQueue {
                $queue
            }
            async fn handle(&self, message: &crate::ports::StepMessage) -> StepResult {
                <$step>::handle(self, message).await
            }
            async fn give_up(&self, message: &crate::ports::StepMessage, reason: String) -> StepResult {
                abandon(self.ports.store.as_ref(), self.ports.clock.as_ref(), message, reason).await
            }
            fn ports(&self) -> &StepPorts {
                &self.ports
            }
        }
    };
}

step_worker!(ResearchStep, crate::ports::StepQueue::Research);
step_worker!(DraftStep, crate::ports::StepQueue::Draft);
step_worker!(SendStep, crate::ports::StepQueue::Send);

/// The ports every worker step needs.
#[derive(Clone)]
pub struct StepPorts {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn crate::ports::Queue>,
    pub clock: Arc<dyn Clock>,
}
