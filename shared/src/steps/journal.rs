//! Writing to the execution log. A log entry that cannot be written is reported through
//! tracing but never fails the step it describes: the lead's state is the source of truth.

use crate::domain::ExecutionLogEntry;
use crate::ports::Store;

pub async fn record(store: &dyn Store, entry: ExecutionLogEntry) {
    let (event, message) = (entry.event.clone(), entry.message.clone());
    match entry.lead_id {
        Some(lead_id) => tracing::info!(execution_id = %entry.execution_id, %lead_id, %event, "{message}"),
        None => tracing::info!(execution_id = %entry.execution_id, %event, "{message}"),
    }
    if let Err(error) = store.append_logs(std::slice::from_ref(&entry)).await {
        tracing::warn!(%error, %event, "could not write the execution log entry");
    }
}

/// A log entry about one lead.
pub fn lead_entry(
    lead: &crate::domain::Lead,
    level: crate::domain::LogLevel,
    event: &str,
    message: String,
    at: crate::domain::Timestamp,
) -> ExecutionLogEntry {
    ExecutionLogEntry::lead(level, lead.execution_id, lead.id, event, message, at)
}
