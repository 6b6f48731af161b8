//! After a hard bounce or a complaint is recorded, the execution pauses by itself once its
//! rates reach the agent's limits (`AutoPause`); only an explicit resume continues it.

use super::{Committed, RetryableStepError, StepPorts};
use crate::domain::{AgentId, ExecutionId, ExecutionState};
use crate::ports::StoreError;

/// Pauses the execution if its bounces or complaints reached the agent's limits. Says whether
/// it paused it now.
pub(crate) async fn pause_if_unhealthy(
    ports: &StepPorts,
    execution_id: ExecutionId,
    agent_id: AgentId,
) -> Result<bool, RetryableStepError> {
    let limits = match ports.store.get_agent(agent_id).await {
        Ok(agent) => agent.auto_pause,
        // A deleted agent's limits are the defaults.
        Err(StoreError::NotFound) => Default::default(),
        Err(e) => return Err(e.into()),
    };
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
