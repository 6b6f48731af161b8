//! The sweep, run by the scheduled function: every lead that waits carries the time the sweep
//! must look at it (`attention_at`), and the sweep decides what that time means. A sent lead's
//! next step is due; a lead whose worker step had time enough and whose queue is idle was lost
//! (its message dead-lettered, or never enqueued after the commit) and is re-driven, then failed
//! with the reason if re-driving does not move it; a send claim older than a live worker's means
//! the worker died mid-send, and the lead is parked; a lead held by a paused execution is
//! released if the execution runs again; a lead of a finished execution is skipped.
//!
//! Executions carry an attention time too: a start that has not finished within a step's
//! budget is failed, and a running execution is looked at hourly, completed if every lead has
//! finished (should the check after its last lead have failed), and its held leads released
//! (should its resume's background work have been lost).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::control::release_held;
use super::reply_freshness::{FreshnessCheck, FreshnessRule};
use super::{Committed, RetryableStepError, StepPorts, progress};
use crate::domain::transition::MAX_REDRIVES;
use crate::domain::{AgentId, Execution, ExecutionId, ExecutionState, Lead, LeadEvent, LeadStateKind, SkipReason, StepQueue};
use crate::ports::StoreError;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Follow-ups that fell due and were enqueued.
    pub follow_ups: u32,
    /// Waiting leads that became sendable and were enqueued.
    pub sendable: u32,
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
    /// Due follow-ups that wait because their mailboxes were not read recently enough.
    pub follow_ups_waiting: u32,
    /// Why, per agent whose follow-ups wait.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_because: Vec<String>,
    /// Leads or executions the sweep could not handle this time (logged; looked at again).
    pub errors: u32,
}

pub struct Sweep {
    ports: StepPorts,
    /// How long one run may keep taking batches of due leads.
    time_budget: Duration,
    /// What must hold before a follow-up leaves: its mailboxes were read recently.
    freshness: FreshnessRule,
}

/// What one run has learned so far, so each execution, agent and queue is read once.
#[derive(Default)]
struct RunMemo {
    executions: HashMap<ExecutionId, Execution>,
    agents: HashMap<AgentId, Option<String>>,
    backlogs: HashMap<StepQueue, bool>,
    /// Per execution: why its follow-ups wait (`None`: one went out this run).
    follow_ups: HashMap<ExecutionId, Option<String>>,
}

/// Executions looked at per run.
const EXECUTIONS_PER_RUN: u32 = 100;

impl Sweep {
    pub fn new(ports: StepPorts, freshness: FreshnessRule) -> Self {
        Self { ports, time_budget: Duration::from_secs(60), freshness }
    }

    /// Looks at due leads in batches of `limit`, until none is due or the run's time budget is
    /// spent, then at the executions. One lead that cannot be handled is logged and left for the
    /// next run; it never stops the others.
    pub async fn run(&self, limit: u32) -> Result<SweepReport, RetryableStepError> {
        let started = Instant::now();
        let now = self.ports.clock.now();
        let mut report = SweepReport::default();
        let freshness = self.freshness.check(self.ports.store.as_ref()).await?;
        let mut memo = RunMemo::default();
        loop {
            let leads = self.ports.store.leads_needing_attention(now, limit).await?;
            let full = leads.len() as u32 >= limit;
            for lead in leads {
                if let Err(error) = self.attend(&lead, &freshness, &mut memo, &mut report).await {
                    report.errors += 1;
                    tracing::warn!(lead_id = %lead.id, %error, "the sweep could not handle a lead; it looks again next run");
                }
            }
            if !full || started.elapsed() >= self.time_budget {
                break;
            }
        }
        self.note_waiting_follow_ups(&memo, &mut report).await;
        // After the leads: what the look at executions enqueues must not make a queue look busy
        // to the leads it has not reached yet.
        self.look_at_executions(&freshness, &mut memo, &mut report).await?;
        Ok(report)
    }

    /// Says on each execution why its follow-ups wait, or that they no longer do.
    async fn note_waiting_follow_ups(&self, memo: &RunMemo, report: &mut SweepReport) {
        let now = self.ports.clock.now();
        for (execution_id, why) in &memo.follow_ups {
            let Some(execution) = memo.executions.get(execution_id) else { continue };
            let current = match self.ports.store.get_execution(execution.id).await {
                Ok(current) => current,
                Err(error) => {
                    report.errors += 1;
                    tracing::warn!(%execution_id, %error, "the sweep could not note the execution's follow-ups");
                    continue;
                }
            };
            if let Some(transition) = current.follow_ups_waiting_because(why.clone(), now) {
                if let Some(why) = why {
                    tracing::warn!(%execution_id, reason = %why, "due follow-ups wait");
                }
                match self.ports.store.commit(&transition).await {
                    // Moved meanwhile: the next run notes it again.
                    Ok(()) | Err(StoreError::Conflict) => {}
                    Err(error) => {
                        report.errors += 1;
                        tracing::warn!(%execution_id, %error, "the sweep could not note the execution's follow-ups");
                    }
                }
            }
        }
    }

    /// Why the follow-ups of `execution`'s agent must wait, read once per agent and run.
    async fn follow_ups_must_wait(
        &self,
        execution: &Execution,
        freshness: &FreshnessCheck,
        memo: &mut RunMemo,
    ) -> Result<Option<String>, RetryableStepError> {
        if let Some(why) = memo.agents.get(&execution.agent_id) {
            return Ok(why.clone());
        }
        let agent = self.ports.store.get_agent(execution.agent_id).await?;
        let why = freshness.why_waiting(&agent, self.ports.clock.now());
        memo.agents.insert(execution.agent_id, why.clone());
        Ok(why)
    }

    async fn attend(
        &self,
        lead: &Lead,
        freshness: &FreshnessCheck,
        memo: &mut RunMemo,
        report: &mut SweepReport,
    ) -> Result<(), RetryableStepError> {
        let execution = match memo.executions.get(&lead.execution_id) {
            Some(execution) => execution.clone(),
            None => {
                let execution = self.ports.store.get_execution(lead.execution_id).await?;
                memo.executions.insert(lead.execution_id, execution.clone());
                execution
            }
        };
        let follow_up_due = execution.state == ExecutionState::Running
            && (lead.state.kind() == LeadStateKind::Sent || (lead.state.kind() == LeadStateKind::Waiting && lead.step > 0));
        if follow_up_due {
            let why = self.follow_ups_must_wait(&execution, freshness, memo).await?;
            if let Some(why) = &why {
                if !report.waiting_because.contains(why) {
                    report.waiting_because.push(why.clone());
                }
                let until = self.ports.clock.now() + self.freshness.recheck_after();
                if let Ok(transition) = lead.advanced(LeadEvent::FollowUpWaits { until }, self.ports.clock.now()) {
                    match self.ports.store.commit(&transition).await {
                        Ok(()) => report.follow_ups_waiting += 1,
                        // It moved meanwhile (an answer was read): whatever moved it is in charge.
                        Err(StoreError::Conflict) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            // One reason per execution: a waiting one wins over a follow-up that left earlier.
            let noted = memo.follow_ups.entry(execution.id).or_insert(None);
            if noted.is_none() {
                *noted = why.clone();
            }
            if why.is_some() {
                return Ok(());
            }
        }
        let Some((event, tally)) = self.decide(lead, &execution, &mut memo.backlogs).await? else { return Ok(()) };
        let Ok(transition) = lead.advanced(event, self.ports.clock.now()) else { return Ok(()) };
        match self.ports.commit(&transition).await {
            Ok(()) | Err(Committed::NotEnqueued(_)) => *tally(report) += 1,
            // It moved meanwhile: whatever moved it is in charge, and the next run looks again.
            Err(Committed::Refused(StoreError::Conflict | StoreError::NotFound)) => {}
            Err(Committed::Refused(e)) => return Err(e.into()),
        }
        Ok(())
    }

    /// Fails starts that never finished; completes running executions whose leads have all
    /// finished, and releases the held leads of running ones.
    async fn look_at_executions(
        &self,
        freshness: &FreshnessCheck,
        memo: &mut RunMemo,
        report: &mut SweepReport,
    ) -> Result<(), RetryableStepError> {
        let now = self.ports.clock.now();
        for execution in self.ports.store.executions_needing_attention(now, EXECUTIONS_PER_RUN).await? {
            let looked_at = match execution.state {
                ExecutionState::Created => {
                    let reason =
                        "its start did not finish (the request failed and was not retried with its Idempotency-Key); start it again";
                    let failed = execution.failed_because(reason, now).ok();
                    if failed.is_some() {
                        report.failed_starts += 1;
                    }
                    failed
                }
                ExecutionState::Running => {
                    progress::complete_if_finished(&self.ports, execution.id).await;
                    let (released, _) =
                        release_held(&self.ports, execution.id, EXECUTIONS_PER_RUN).await.map_err(|e| RetryableStepError(e.to_string()))?;
                    report.released += released as u32;
                    // Read again: the completion check or a worker may have moved it.
                    let current = self.ports.store.get_execution(execution.id).await?;
                    let mut looked_at = (current.attention_at == execution.attention_at).then(|| current.looked_at(now));
                    // Follow-ups that waited may all have ended (the leads answered): the note
                    // goes once the mailboxes are read again.
                    if let Some(change) = looked_at.as_mut().and_then(|t| t.execution.as_mut())
                        && current.follow_ups_waiting.is_some()
                        && self.follow_ups_must_wait(&current, freshness, memo).await?.is_none()
                    {
                        change.next.follow_ups_waiting = None;
                    }
                    looked_at
                }
                _ => Some(execution.looked_at(now)),
            };
            if let Some(transition) = looked_at {
                match self.ports.store.commit(&transition).await {
                    Ok(()) | Err(StoreError::Conflict) => {}
                    Err(error) => {
                        report.errors += 1;
                        tracing::warn!(execution_id = %execution.id, %error, "the sweep could not look at an execution");
                    }
                }
            }
        }
        Ok(())
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
            // Its start is failed by the look at executions once its budget has passed.
            ExecutionState::Created => (LeadEvent::Recheck, |r| &mut r.rechecked),
            ExecutionState::Completed | ExecutionState::Cancelled => (LeadEvent::Skip(SkipReason::ExecutionCancelled), |r| &mut r.skipped),
            ExecutionState::Failed => (LeadEvent::Skip(SkipReason::ExecutionFailed), |r| &mut r.skipped),
            ExecutionState::Paused if state == LeadStateKind::Sent => (LeadEvent::FollowUpDue { hold: true }, |r| &mut r.held),
            ExecutionState::Running if state == LeadStateKind::Sent => (LeadEvent::FollowUpDue { hold: false }, |r| &mut r.follow_ups),
            ExecutionState::Paused if state == LeadStateKind::Waiting => (LeadEvent::SendDue { hold: true }, |r| &mut r.held),
            ExecutionState::Running if state == LeadStateKind::Waiting => (LeadEvent::SendDue { hold: false }, |r| &mut r.sendable),
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
