//! The execution log. Entries that describe a state change are part of its transition and are
//! written with it; the ones here describe something that changed no state (a refused draft),
//! and a failure to write them never fails the step they describe.

use crate::domain::{ExecutionLogEntry, Transition};
use crate::ports::Store;

fn trace_entry(entry: &ExecutionLogEntry) {
    let (event, message) = (&entry.event, &entry.message);
    match entry.lead_id {
        Some(lead_id) => tracing::info!(execution_id = %entry.execution_id, %lead_id, %event, "{message}"),
        None => tracing::info!(execution_id = %entry.execution_id, %event, "{message}"),
    }
}

/// Traces the log entries of a committed transition.
pub fn trace(transition: &Transition) {
    transition.log.iter().for_each(trace_entry);
}

/// Writes a log entry that goes with no state change.
pub async fn record(store: &dyn Store, entry: ExecutionLogEntry) {
    trace_entry(&entry);
    if let Err(error) = store.append_logs(std::slice::from_ref(&entry)).await {
        tracing::warn!(%error, event = %entry.event, "could not write the execution log entry");
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
