//! Glue between Lambda events and the step handlers, so each function's `main` only wires.

pub mod sqs_batch;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

use crate::app::{ScheduledReport, ScheduledTasks, StepWorker};
pub use sqs_batch::process_batch;

/// Runs a worker Lambda: each SQS batch goes through `process_batch`. `max_receive_count` is
/// the queue's redrive policy, so the last attempt is known.
pub async fn serve_step_worker(worker: impl StepWorker + 'static, max_receive_count: u32) -> Result<(), Error> {
    let worker = Arc::new(worker);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = worker.clone();
        async move { Ok::<SqsBatchResponse, Error>(process_batch(event.payload, worker.as_ref(), max_receive_count).await) }
    }))
    .await
}

/// Handles one scheduled (EventBridge) invocation. A failure is returned as an error so the
/// invocation shows as failed; the next schedule simply runs again.
pub async fn handle_scheduled(tasks: &ScheduledTasks) -> Result<ScheduledReport, Error> {
    let report = tasks.run().await.map_err(|e| Error::from(e.to_string()))?;
    tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "scheduled run finished");
    Ok(report)
}

/// Runs the scheduled Lambda; the event's content does not matter, only that it fired.
pub async fn serve_scheduled(tasks: ScheduledTasks) -> Result<(), Error> {
    let tasks = Arc::new(tasks);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<serde_json::Value>| {
        let tasks = tasks.clone();
        async move { handle_scheduled(&tasks).await }
    }))
    .await
}
