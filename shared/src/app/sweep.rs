//! The sweep, run by the scheduled function: every lead that waits carries the time the sweep
//! must look at it (`attention_at`), and the sweep decides what that time means. A sent lead's
//! next step is due; a lead whose worker step had time enough and whose queue is idle was lost
//! (its message dead-lettered, or never enqueued after the commit) and is re-driven, then failed
//! with the reason if re-driving does not move it; a send claim older than a live worker's means
//! the worker died mid-send, and the lead is parked; a lead held by a paused execution is
//! released if the execution runs again; a lead of a finished execution is skipped.

use std::collections::HashMap;

use serde::Serialize;

use super::{Committed, RetryableStepError, StepPorts};
use crate::domain::transition::{MAX_REDRIVES, STEP_BUDGET};
use crate::domain::{Execution, ExecutionId, ExecutionState, Lead, LeadEvent, LeadStateKind, SkipReason, StepQueue};
use crate::ports::StoreError;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Follow-ups that fell due and were enqueued.
    pub follow_ups: u32,
    /// Leads held because their execution is paused.
    pub held: u32,
    /// Held leads of a running execution enqueued again.
    pub released: u32,
    /// Lost leads whose step was enqueued again.
    pub redriven: u32,
    /// Sends whose worker died mid-send, parked for a person.
    pub parked: u32,
    /// Leads nothing could move, failed with the reason.
    pub failed: u32,
    /// Leads of finished executions.
    pub skipped: u32,
    /// Leads legitimately waiting (behind a busy queue, in a paused execution), looked at later.
    pub rechecked: u32,
    /// Executions whose start never finished, failed.
    pub failed_starts: u32,
}

pub struct Sweep {
    ports: StepPorts,
}

impl Sweep {
    pub fn new(ports: StepPorts) -> Self {
        Self { ports }
    }

    /// Looks at up to `limit` leads whose attention time has come.
    pub async fn run(&self, limit: u32) -> Result<SweepReport, RetryableStepError> {
        let now = self.ports.clock.now();
        let mut report = SweepReport::default();
        let mut executions: HashMap<ExecutionId, Execution> = HashMap::new();
        let mut backlogs: HashMap<StepQueue, bool> = HashMap::new();
        for lead in self.ports.store.leads_needing_attention(now, limit).await? {
            let execution = match executions.get(&lead.execution_id) {
                Some(execution) => execution.clone(),
                None => {
                    let execution = self.settled_start(self.ports.store.get_execution(lead.execution_id).await?, &mut report).await?;
                    executions.insert(lead.execution_id, execution.clone());
                    execution
                }
            };
            let Some((event, tally)) = self.decide(&lead, &execution, &mut backlogs).await? else { continue };
            let Ok(transition) = lead.advanced(event, now) else { continue };
            match self.ports.commit(&transition).await {
                Ok(()) | Err(Committed::NotEnqueued(_)) => *tally(&mut report) += 1,
                // It moved meanwhile: whatever moved it is in charge, and the next run looks again.
                Err(Committed::Refused(StoreError::Conflict | StoreError::NotFound)) => {}
                Err(Committed::Refused(e)) => return Err(e.into()),
            }
        }
        Ok(report)
    }

    /// A `created` execution older than a step's budget will not be started by its request any
    /// more: it fails, and its leads are skipped as they come up.
    async fn settled_start(&self, execution: Execution, report: &mut SweepReport) -> Result<Execution, RetryableStepError> {
        let now = self.ports.clock.now();
        if execution.state != ExecutionState::Created || now - execution.created_at < STEP_BUDGET {
            return Ok(execution);
        }
        let reason = "its start did not finish (the request failed and was not retried with its Idempotency-Key); start it again";
        let Ok(failed) = execution.failed_because(reason, now) else { return Ok(execution) };
        match self.ports.store.commit(&failed).await {
            Ok(()) => {
                report.failed_starts += 1;
                Ok(failed.next_execution().cloned().unwrap_or(execution))
            }
            Err(StoreError::Conflict) => Ok(self.ports.store.get_execution(execution.id).await?),
            Err(e) => Err(e.into()),
        }
    }

    /// What the lead's attention time means, and which tally counts it.
    async fn decide(
        &self,
        lead: &Lead,
        execution: &Execution,
        backlogs: &mut HashMap<StepQueue, bool>,
    ) -> Result<Option<(LeadEvent, Tally)>, RetryableStepError> {
        let state = lead.state.kind();
        if state == LeadStateKind::Sending {
            let why = "the send was interrupted: no worker recorded its outcome in time; the email may or may not have left";
            return Ok(Some((LeadEvent::Park(why.into()), |r| &mut r.parked)));
        }
        let decision: (LeadEvent, Tally) = match execution.state {
            ExecutionState::Created => (LeadEvent::Recheck, |r| &mut r.rechecked),
            ExecutionState::Completed | ExecutionState::Cancelled => (LeadEvent::Skip(SkipReason::ExecutionCancelled), |r| &mut r.skipped),
            ExecutionState::Failed => (LeadEvent::Skip(SkipReason::ExecutionFailed), |r| &mut r.skipped),
            ExecutionState::Paused if state == LeadStateKind::Sent => (LeadEvent::FollowUpDue { hold: true }, |r| &mut r.held),
            ExecutionState::Running if state == LeadStateKind::Sent => (LeadEvent::FollowUpDue { hold: false }, |r| &mut r.follow_ups),
            ExecutionState::Paused if lead.on_hold => (LeadEvent::Recheck, |r| &mut r.rechecked),
            ExecutionState::Paused => (LeadEvent::Hold, |r| &mut r.held),
            ExecutionState::Running if lead.on_hold => (LeadEvent::Unhold, |r| &mut r.released),
            ExecutionState::Running => {
                let Some(queue) = StepQueue::advancing(state) else { return Ok(None) };
                if self.busy(queue, backlogs).await? {
                    (LeadEvent::Recheck, |r| &mut r.rechecked)
                } else if lead.redrives >= MAX_REDRIVES {
                    let why = format!("stuck in {state}: its step was enqueued again {MAX_REDRIVES} times and nothing moved it");
                    (LeadEvent::Fail(why), |r| &mut r.failed)
                } else {
                    (LeadEvent::Redrive, |r| &mut r.redriven)
                }
            }
        };
        Ok(Some(decision))
    }

    /// Whether `queue` has messages waiting or in flight: a lead waiting for its worker may just
    /// be behind them, so it is not re-driven (which would only add duplicates).
    async fn busy(&self, queue: StepQueue, backlogs: &mut HashMap<StepQueue, bool>) -> Result<bool, RetryableStepError> {
        if let Some(busy) = backlogs.get(&queue) {
            return Ok(*busy);
        }
        let busy = self.ports.queue.backlog(queue).await.map_err(|e| RetryableStepError(e.to_string()))? > 0;
        backlogs.insert(queue, busy);
        Ok(busy)
    }
}

/// Which count of the report an action adds to.
type Tally = fn(&mut SweepReport) -> &mut u32;
