//! Due follow-ups. SQS can delay a message by 15 minutes at most, so a sent lead records when
//! its next step is due and the scheduled function moves due leads on.
//!
//! A lead moved to `follow_up_due` keeps a due time an hour ahead: should its draft message be
//! lost, the next run enqueues it again (every step tolerates duplicates).

use std::collections::HashMap;

use chrono::Duration;
use serde::Serialize;

use super::journal::{self, lead_entry};
use super::{RetryableStepError, StepPorts, skip};
use crate::domain::{Execution, ExecutionId, ExecutionState, Lead, LeadEvent, LeadStateKind, LogLevel, SkipReason};
use crate::ports::{StepMessage, StepQueue, StoreError};

/// How long a `follow_up_due` lead may wait for its draft before it is enqueued again.
const REDRIVE_AFTER: Duration = Duration::hours(1);

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FollowUpReport {
    pub enqueued: u32,
    pub held: u32,
    pub skipped: u32,
}

pub struct FollowUpScheduler {
    ports: StepPorts,
}

impl FollowUpScheduler {
    pub fn new(ports: StepPorts) -> Self {
        Self { ports }
    }

    /// Moves up to `limit` due leads to drafting.
    pub async fn enqueue_due(&self, limit: u32) -> Result<FollowUpReport, RetryableStepError> {
        let store = self.ports.store.as_ref();
        let clock = self.ports.clock.as_ref();
        let now = clock.now();
        let mut report = FollowUpReport::default();
        let mut executions: HashMap<ExecutionId, Execution> = HashMap::new();
        for lead in store.due_follow_ups(now, limit).await? {
            let execution = match executions.get(&lead.execution_id) {
                Some(execution) => execution.clone(),
                None => {
                    let execution = store.get_execution(lead.execution_id).await?;
                    executions.insert(lead.execution_id, execution.clone());
                    execution
                }
            };
            if execution.state.is_finished() {
                skip(store, clock, &lead, SkipReason::ExecutionCancelled).await?;
                report.skipped += 1;
                continue;
            }
            let mut due = match lead.state.kind() {
                LeadStateKind::Sent => {
                    let Ok(mut due) = lead.advanced(LeadEvent::FollowUpDue, now) else { continue };
                    due.step = lead.step + 1;
                    due
                }
                _ => lead.clone(),
            };
            due.next_step_due_at = Some(now + REDRIVE_AFTER);
            due.on_hold = execution.state == ExecutionState::Paused;
            match store.update_lead(&due).await {
                Ok(_) => {}
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
            if due.on_hold {
                report.held += 1;
                continue;
            }
            self.enqueue_draft(&due).await?;
            report.enqueued += 1;
            if lead.state.kind() == LeadStateKind::Sent {
                journal::record(store, lead_entry(&lead, LogLevel::Info, "lead.follow_up_due", format!("step {} is due", due.step), now))
                    .await;
            }
        }
        Ok(report)
    }

    async fn enqueue_draft(&self, lead: &Lead) -> Result<(), RetryableStepError> {
        let message = StepMessage { execution_id: lead.execution_id, lead_id: lead.id, step: lead.step };
        self.ports.queue.enqueue(StepQueue::Draft, &[message]).await.map_err(|e| RetryableStepError(e.to_string()))
    }
}
