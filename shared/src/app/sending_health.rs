//! After a hard bounce or a complaint is recorded, the execution and the mailbox that sent the
//! email pause by themselves once their rates reach the agent's limits (`AutoPause`); only an
//! explicit resume continues them.

use super::{Committed, RetryableStepError, StepPorts};
use crate::domain::pacing::{MailboxPause, mailbox_meter};
use crate::domain::sending_health::AutoPause;
use crate::domain::{AgentId, EmailAddress, ExecutionCounters, ExecutionId, ExecutionState, MarkerChange, Transition};
use crate::ports::StoreError;

/// The agent's limits; a deleted agent's are the defaults.
async fn limits_of(ports: &StepPorts, agent_id: AgentId) -> Result<AutoPause, RetryableStepError> {
    match ports.store.get_agent(agent_id).await {
        Ok(agent) => Ok(agent.auto_pause),
        Err(StoreError::NotFound) => Ok(AutoPause::default()),
        Err(e) => Err(e.into()),
    }
}

/// Pauses `mailbox` if its record since its last resume reached `agent_id`'s limits. Says
/// whether it paused it now.
pub(crate) async fn pause_mailbox_if_unhealthy(
    ports: &StepPorts,
    mailbox: &EmailAddress,
    agent_id: AgentId,
) -> Result<bool, RetryableStepError> {
    let limits = limits_of(ports, agent_id).await?;
    let meter = mailbox_meter(mailbox);
    let standing = ports.store.mailbox_standing(&meter).await?;
    if standing.paused.is_some() {
        return Ok(false);
    }
    let record =
        ExecutionCounters { sent: standing.sent, bounced: standing.hard_bounced, complained: standing.complained, ..Default::default() };
    let Some(breach) = limits.breach(&record) else { return Ok(false) };
    let reason = format!("{mailbox}: {breach}");
    let pause = MailboxPause { reason: reason.clone(), at: ports.clock.now() };
    match ports.commit(&Transition::markers(vec![MarkerChange::PauseMailbox { meter, pause }])).await {
        Ok(()) | Err(Committed::NotEnqueued(_)) => {
            tracing::warn!(%mailbox, %reason, "the mailbox paused by itself");
            Ok(true)
        }
        Err(Committed::Refused(e)) => Err(e.into()),
    }
}

/// Pauses the execution if its bounces or complaints reached the agent's limits. Says whether
/// it paused it now.
pub(crate) async fn pause_if_unhealthy(
    ports: &StepPorts,
    execution_id: ExecutionId,
    agent_id: AgentId,
) -> Result<bool, RetryableStepError> {
    let limits = limits_of(ports, agent_id).await?;
    for _ in 0..5 {
        let counters = ports.store.execution_progress(execution_id).await?.counters;
        let Some(reason) = limits.breach(&counters) else { return Ok(false) };
        let execution = ports.store.get_execution(execution_id).await?;
        if execution.state != ExecutionState::Running {
            return Ok(false);
        }
        let Ok(pause) = execution.paused_because(&reason, ports.clock.now()) else { return Ok(false) };
        match ports.commit(&pause).await {
            Ok(()) | Err(Committed::NotEnqueued(_)) => {
                tracing::warn!(%execution_id, %reason, "the execution paused by itself");
                return Ok(true);
            }
            Err(Committed::Refused(StoreError::Conflict)) => continue,
            Err(Committed::Refused(e)) => return Err(e.into()),
        }
    }
    Err(RetryableStepError("the execution kept changing while its sending health was checked".into()))
}
