//! Pause, resume and cancel. Nothing waits in a queue for days: a worker that meets a lead of a
//! paused execution holds it, and resume enqueues the held leads again. Each held lead is
//! released by a conditional write, so concurrent resumes enqueue it once. A large resume or
//! cancel does its first page inside the request and hands the rest to a background control
//! message; the sweep catches whatever neither reached.

use super::{Committed, Interrupted, RetryableStepError, StepOutcome, StepPorts};
use crate::domain::execution::InvalidExecutionTransition;
use crate::domain::{Execution, ExecutionCommand, ExecutionId, ExecutionState, Lead, LeadEvent, LeadStateKind, SkipReason};
use crate::ports::store::LeadQuery;
use crate::ports::{ControlMessage, ControlWork, PageRequest, StoreError};

/// Leads released or skipped inside an API request; the rest continue in the background.
const INLINE_PAGE: u32 = 100;
/// Leads a background control message handles before it passes the rest on.
const BACKGROUND_PAGE: u32 = 250;

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

/// What a resume or cancel did inside the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweeping {
    /// Leads released (resume) or skipped (cancel) so far.
    pub leads: u64,
    /// Whether more leads are being handled in the background.
    pub continues_in_background: bool,
}

/// A fault every lead would meet (a refused key, an unverified sender, a spent quota): the lead
/// waits held (`lead_event` is `Hold`, or the release of its send claim with a hold) and, in the
/// same write, the execution pauses with the reason. No lead fails; resume picks up after the fix.
pub(crate) async fn pause_for_configuration(
    ports: &StepPorts,
    lead: &Lead,
    execution: &Execution,
    reason: &str,
    lead_event: LeadEvent,
) -> Result<StepOutcome, Interrupted> {
    let now = ports.clock.now();
    let Ok(hold) = lead.advanced(lead_event, now) else { return Ok(StepOutcome::Ignored(format!("lead is {}", lead.state.kind()))) };
    let transition = match execution.paused_because(reason, now) {
        Ok(pause) => hold.and(pause),
        // Already paused (by another lead that met the same fault), or finished.
        Err(_) => hold,
    };
    tracing::error!(execution_id = %execution.id, %reason, "a configuration fault pauses the execution");
    ports.commit(&transition).await?;
    Ok(StepOutcome::Held)
}

/// Releases up to `limit` held leads while the execution runs. A lead another resume (or a
/// worker) moved first is left to it: each held lead is enqueued once. Says how many it released
/// and whether more may be held.
pub(crate) async fn release_held(ports: &StepPorts, id: ExecutionId, limit: u32) -> Result<(u64, bool), ControlError> {
    if ports.store.get_execution(id).await?.state != ExecutionState::Running {
        return Ok((0, false));
    }
    let held = ports.store.held_leads(id, limit).await?;
    let mut released = 0;
    for lead in &held {
        let Ok(unhold) = lead.advanced(LeadEvent::Unhold, ports.clock.now()) else { continue };
        match ports.commit(&unhold).await {
            Ok(()) | Err(Committed::NotEnqueued(_)) => released += 1,
            Err(Committed::Refused(StoreError::Conflict | StoreError::NotFound)) => {}
            Err(Committed::Refused(e)) => return Err(e.into()),
        }
    }
    Ok((released, held.len() as u64 == u64::from(limit)))
}

pub struct ExecutionControl {
    ports: StepPorts,
}

impl ExecutionControl {
    pub fn new(ports: StepPorts) -> Self {
        Self { ports }
    }

    async fn command(&self, id: ExecutionId, command: ExecutionCommand) -> Result<Execution, ControlError> {
        for _ in 0..5 {
            let execution = self.ports.store.get_execution(id).await?;
            let transition = execution.commanded(command, self.ports.clock.now())?;
            match self.ports.commit(&transition).await {
                Ok(()) => return Ok(transition.next_execution().cloned().unwrap_or(execution)),
                Err(Committed::Refused(StoreError::Conflict)) => continue,
                Err(Committed::Refused(e)) => return Err(e.into()),
                Err(Committed::NotEnqueued(why)) => return Err(ControlError::Unavailable(why)),
            }
        }
        Err(ControlError::Unavailable("the execution kept changing; try again".into()))
    }

    pub async fn pause(&self, id: ExecutionId) -> Result<Execution, ControlError> {
        self.command(id, ExecutionCommand::Pause).await
    }

    /// Resumes a paused execution and enqueues its held leads again. On a running execution it
    /// only re-enqueues held leads, so a resume that stopped half-way can simply be repeated.
    pub async fn resume(&self, id: ExecutionId) -> Result<(Execution, Sweeping), ControlError> {
        let execution = match self.command(id, ExecutionCommand::Resume).await {
            Ok(execution) => execution,
            Err(ControlError::Invalid(InvalidExecutionTransition { from: ExecutionState::Running, .. })) => {
                self.ports.store.get_execution(id).await?
            }
            Err(e) => return Err(e),
        };
        let (released, more) = release_held(&self.ports, id, INLINE_PAGE).await?;
        let continues_in_background = more && self.hand_on(id, ControlWork::Resume).await;
        Ok((execution, Sweeping { leads: released, continues_in_background }))
    }

    /// Cancels the execution and skips every lead that has not finished, so none is contacted
    /// again. A lead whose send is in flight keeps its claim and settles on its own; a parked
    /// lead stays for a person.
    pub async fn cancel(&self, id: ExecutionId) -> Result<(Execution, Sweeping), ControlError> {
        let execution = self.command(id, ExecutionCommand::Cancel).await?;
        let (skipped, more) = self.skip_unfinished(id, INLINE_PAGE).await?;
        let continues_in_background = more && self.hand_on(id, ControlWork::Cancel).await;
        Ok((execution, Sweeping { leads: skipped, continues_in_background }))
    }

    /// One page of a background resume or cancel; the rest goes back on the queue.
    pub async fn continue_in_background(&self, message: &ControlMessage) -> Result<(), RetryableStepError> {
        let id = message.execution_id;
        let unavailable = |e: ControlError| RetryableStepError(e.to_string());
        let (_, more) = match message.control {
            ControlWork::Resume => release_held(&self.ports, id, BACKGROUND_PAGE).await.map_err(unavailable)?,
            ControlWork::Cancel => self.skip_unfinished(id, BACKGROUND_PAGE).await.map_err(unavailable)?,
        };
        if more {
            self.ports.queue.enqueue_control(message.clone()).await.map_err(|e| RetryableStepError(e.to_string()))?;
        }
        Ok(())
    }

    /// Enqueues the rest of the work; `false` (and a log line) when that fails, in which case
    /// the sweep finds the remaining leads.
    async fn hand_on(&self, execution_id: ExecutionId, control: ControlWork) -> bool {
        match self.ports.queue.enqueue_control(ControlMessage { execution_id, control }).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%execution_id, %error, "the rest of the work could not be queued; the sweep will finish it");
                false
            }
        }
    }

    /// Skips up to `limit` leads that have not finished and are not in a person's or a sending
    /// worker's hands.
    async fn skip_unfinished(&self, id: ExecutionId, limit: u32) -> Result<(u64, bool), ControlError> {
        let mut skipped = 0;
        let skippable = LeadStateKind::ALL
            .into_iter()
            .filter(|kind| !kind.is_terminal() && !matches!(kind, LeadStateKind::Sending | LeadStateKind::Parked));
        for state in skippable {
            let query = LeadQuery { execution_id: Some(id), state: Some(state), ..Default::default() };
            let page = self.ports.store.list_leads(&query, &PageRequest::first(limit - skipped as u32)).await?;
            for lead in &page.items {
                let Ok(skip) = lead.advanced(LeadEvent::Skip(SkipReason::ExecutionCancelled), self.ports.clock.now()) else { continue };
                match self.ports.commit(&skip).await {
                    Ok(()) | Err(Committed::NotEnqueued(_)) => skipped += 1,
                    Err(Committed::Refused(StoreError::Conflict | StoreError::NotFound)) => {}
                    Err(Committed::Refused(e)) => return Err(e.into()),
                }
            }
            if skipped >= u64::from(limit) || page.next_cursor.is_some() {
                return Ok((skipped, true));
            }
        }
        Ok((skipped, false))
    }
}
