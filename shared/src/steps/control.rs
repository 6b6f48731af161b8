//! Pause, resume and cancel. Nothing waits in a queue for days: a worker that meets a lead of a
//! paused execution puts it on hold, and resume enqueues the held leads again.

use std::collections::HashMap;

use super::journal;
use super::{RetryableStepError, StepPorts, skip};
use crate::domain::execution::{ExecutionCommand, InvalidExecutionTransition};
use crate::domain::{Execution, ExecutionId, ExecutionLogEntry, Lead, LeadStateKind, LogLevel, SkipReason};
use crate::ports::store::LeadQuery;
use crate::ports::{PageRequest, StepMessage, StepQueue, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no execution with this id")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] InvalidExecutionTransition),
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for ControlError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<RetryableStepError> for ControlError {
    fn from(error: RetryableStepError) -> Self {
        Self::Unavailable(error.0)
    }
}

/// The queue that advances a lead waiting in `state`.
pub fn queue_for(state: LeadStateKind) -> Option<StepQueue> {
    match state {
        LeadStateKind::Queued => Some(StepQueue::Research),
        LeadStateKind::Researched | LeadStateKind::FollowUpDue => Some(StepQueue::Draft),
        LeadStateKind::Drafted | LeadStateKind::Approved => Some(StepQueue::Send),
        _ => None,
    }
}

pub struct ExecutionControl {
    ports: StepPorts,
}

impl ExecutionControl {
    pub fn new(ports: StepPorts) -> Self {
        Self { ports }
    }

    async fn command(&self, id: ExecutionId, command: ExecutionCommand) -> Result<Execution, ControlError> {
        let store = self.ports.store.as_ref();
        // A concurrent counter update or state change is retried a few times before giving up.
        for _ in 0..5 {
            let execution = store.get_execution(id).await?;
            let next = execution.commanded(command, self.ports.clock.now())?;
            match store.update_execution(&next).await {
                Ok(stored) => {
                    let event = format!("execution.{}", stored.state.as_str());
                    journal::record(
                        store,
                        ExecutionLogEntry::execution(
                            LogLevel::Info,
                            id,
                            &event,
                            format!("execution {}", stored.state.as_str()),
                            self.ports.clock.now(),
                        ),
                    )
                    .await;
                    return Ok(stored);
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ControlError::Unavailable("the execution kept changing; try again".into()))
    }

    pub async fn start(&self, id: ExecutionId) -> Result<Execution, ControlError> {
        self.command(id, ExecutionCommand::Start).await
    }

    pub async fn pause(&self, id: ExecutionId) -> Result<Execution, ControlError> {
        self.command(id, ExecutionCommand::Pause).await
    }

    /// Resumes a paused execution and enqueues its held leads again. On a running execution it
    /// only re-enqueues held leads, so a resume that failed half-way can simply be repeated.
    pub async fn resume(&self, id: ExecutionId) -> Result<(Execution, u64), ControlError> {
        let execution = match self.command(id, ExecutionCommand::Resume).await {
            Ok(execution) => execution,
            Err(ControlError::Invalid(InvalidExecutionTransition { from: crate::domain::ExecutionState::Running, .. })) => {
                self.ports.store.get_execution(id).await?
            }
            Err(e) => return Err(e),
        };
        let requeued = self.requeue_held(id).await?;
        Ok((execution, requeued))
    }

    async fn requeue_held(&self, id: ExecutionId) -> Result<u64, ControlError> {
        let store = self.ports.store.as_ref();
        let mut total = 0;
        loop {
            let held = store.held_leads(id, 500).await?;
            if held.is_empty() {
                return Ok(total);
            }
            // Enqueue before clearing the hold: if enqueueing fails the leads stay held and a
            // repeated resume finds them; a worker that wins the race clears the hold itself.
            let mut batches: HashMap<StepQueue, Vec<StepMessage>> = HashMap::new();
            for lead in &held {
                if let Some(queue) = queue_for(lead.state.kind()) {
                    batches.entry(queue).or_default().push(StepMessage { execution_id: id, lead_id: lead.id, step: lead.step });
                }
            }
            for (queue, messages) in batches {
                self.ports.queue.enqueue(queue, &messages).await.map_err(|e| ControlError::Unavailable(e.to_string()))?;
            }
            for lead in held {
                let released = Lead { on_hold: false, updated_at: self.ports.clock.now(), ..lead };
                match store.update_lead(&released).await {
                    Ok(_) | Err(StoreError::Conflict) => total += 1,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    /// Cancels the execution and skips every lead that has not finished, so none is contacted
    /// again. A lead whose send is in flight keeps its claim and settles on its own.
    pub async fn cancel(&self, id: ExecutionId) -> Result<Execution, ControlError> {
        let execution = self.command(id, ExecutionCommand::Cancel).await?;
        let store = self.ports.store.as_ref();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let leads = store.list_leads(&LeadQuery { execution_id: Some(id), ..Default::default() }, &page).await?;
            for lead in &leads.items {
                let kind = lead.state.kind();
                if !kind.is_terminal() && !matches!(kind, LeadStateKind::Sending | LeadStateKind::Parked) {
                    skip(store, self.ports.clock.as_ref(), lead, SkipReason::ExecutionCancelled).await?;
                }
            }
            match leads.next_cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => return Ok(execution),
            }
        }
    }
}
