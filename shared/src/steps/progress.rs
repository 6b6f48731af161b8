//! Execution completion: once every lead is in a terminal state, the execution is completed.

use crate::domain::ExecutionId;
use crate::domain::execution::ExecutionCommand;
use crate::domain::{ExecutionLogEntry, ExecutionState, LogLevel};
use crate::ports::{Clock, Store, StoreError};

use super::{RetryableStepError, journal};

pub async fn complete_if_finished(store: &dyn Store, clock: &dyn Clock, execution_id: ExecutionId) -> Result<(), RetryableStepError> {
    let counts = store.lead_counts(execution_id).await?;
    let unfinished: u64 = counts.iter().filter(|(kind, _)| !kind.is_terminal()).map(|(_, n)| n).sum();
    if unfinished > 0 {
        return Ok(());
    }
    let execution = store.get_execution(execution_id).await?;
    if execution.state != ExecutionState::Running {
        return Ok(());
    }
    let Ok(completed) = execution.commanded(ExecutionCommand::Complete, clock.now()) else { return Ok(()) };
    match store.update_execution(&completed).await {
        Ok(_) => {
            journal::record(
                store,
                ExecutionLogEntry::execution(LogLevel::Info, execution_id, "execution.completed", "every lead has finished", clock.now()),
            )
            .await;
            Ok(())
        }
        Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
