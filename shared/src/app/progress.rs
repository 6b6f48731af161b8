//! Execution completion: once no lead can move any more, the execution is completed. A parked
//! lead or a draft awaiting approval still needs a person, so it keeps the execution running.

use super::StepPorts;
use crate::domain::{ExecutionCommand, ExecutionId, ExecutionState};
use crate::ports::StoreError;

/// Completes the execution if every lead has finished. Best effort: the sweep and the next
/// finished lead check again, so a failure here is only logged.
pub(crate) async fn complete_if_finished(ports: &StepPorts, execution_id: ExecutionId) {
    for _ in 0..3 {
        match try_complete(ports, execution_id).await {
            Ok(()) => return,
            Err(StoreError::Conflict) => continue,
            Err(error) => {
                tracing::warn!(%execution_id, %error, "could not check whether the execution is complete");
                return;
            }
        }
    }
}

async fn try_complete(ports: &StepPorts, execution_id: ExecutionId) -> Result<(), StoreError> {
    if ports.store.execution_progress(execution_id).await?.unfinished() > 0 {
        return Ok(());
    }
    let execution = ports.store.get_execution(execution_id).await?;
    if execution.state != ExecutionState::Running {
        return Ok(());
    }
    let Ok(completed) = execution.commanded(ExecutionCommand::Complete, ports.clock.now()) else { return Ok(()) };
    let completed = completed.with_log_message("execution completed: every lead has finished");
    ports.store.commit(&completed).await?;
    super::journal::trace(&completed);
    Ok(())
}
