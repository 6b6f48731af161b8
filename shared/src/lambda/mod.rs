//! Glue between Lambda events and the step handlers, so each function's `main` only wires.

pub mod sqs_batch;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

use crate::app::{FeedbackConsumer, FeedbackError, ReplyReading, ScheduledReport, ScheduledTasks, StepWorker};
use crate::runtime::Runtime;
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

/// Applies one batch of SES events from the feedback queue; the messages to deliver again (or,
/// after the queue's receive count, to dead-letter) are reported back.
pub async fn handle_feedback(consumer: &FeedbackConsumer, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let body = record.body.unwrap_or_default();
        let failed = match consumer.handle(&body).await {
            Ok(outcome) => {
                tracing::info!(?outcome, "an SES event was read");
                false
            }
            Err(error @ FeedbackError::Unreadable(_)) => {
                tracing::error!(%error, "an unreadable message on the feedback queue; it will reach the dead-letter queue");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "an SES event will be applied again");
                true
            }
        };
        if failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Runs the feedback Lambda.
pub async fn serve_feedback(consumer: FeedbackConsumer) -> Result<(), Error> {
    let consumer = Arc::new(consumer);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let consumer = consumer.clone();
        async move { Ok::<SqsBatchResponse, Error>(handle_feedback(&consumer, event.payload).await) }
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

/// Runs the scheduled Lambda; the event's content does not matter, only that it fired. While
/// the mailbox settings (or the secret holding them) could not be loaded, `connect` loads them
/// again before each run: a passing fault must not hold follow-ups for the container's life.
pub async fn serve_scheduled<F, Fut>(runtime: Runtime, connect: F) -> Result<(), Error>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Runtime>> + Send,
{
    let current = Arc::new(tokio::sync::Mutex::new(runtime));
    let connect = Arc::new(connect);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<serde_json::Value>| {
        let (current, connect) = (current.clone(), connect.clone());
        async move {
            let mut runtime = current.lock().await;
            if matches!(runtime.inbox, ReplyReading::Broken(_)) {
                match connect().await {
                    Ok(fresh) if !matches!(fresh.inbox, ReplyReading::Broken(_)) => {
                        tracing::info!("the mailbox settings load again; replies are read");
                        *runtime = fresh;
                    }
                    Ok(_) => tracing::warn!("the mailbox settings still cannot be loaded"),
                    Err(error) => tracing::warn!(error = %format!("{error:#}"), "the runtime could not be set up again"),
                }
            }
            handle_scheduled(&runtime.scheduled_tasks()).await
        }
    }))
    .await
}
