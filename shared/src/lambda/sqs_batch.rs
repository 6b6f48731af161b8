//! SQS batches with partial batch failures: every message of a batch is handled concurrently,
//! and only the ones that may succeed on a retry are reported back, so SQS redelivers those
//! and deletes the rest. Requires `ReportBatchItemFailures` on the event source mapping.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use tracing::Instrument;

use crate::ports::StepMessage;
use crate::steps::StepWorker;

fn receive_count(record: &SqsMessage) -> u32 {
    record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1)
}

/// Handles one SQS batch with `worker` and returns the ids of the messages to retry.
pub async fn process_batch(event: SqsEvent, worker: &dyn StepWorker) -> SqsBatchResponse {
    let handled = event.records.into_iter().map(|record| {
        let message_id = record.message_id.clone().unwrap_or_default();
        let span =
            tracing::info_span!("step", queue = worker.queue().as_str(), message_id = %message_id, receive_count = receive_count(&record));
        async move {
            let body = record.body.as_deref().unwrap_or_default();
            let message: StepMessage = match serde_json::from_str(body) {
                Ok(message) => message,
                Err(error) => {
                    // It will never parse; failing it lets the redrive policy move it to the DLQ.
                    tracing::error!(%error, "the message body is not a step message");
                    return Some(message_id);
                }
            };
            match worker.handle(&message).await {
                Ok(outcome) => {
                    tracing::info!(lead_id = %message.lead_id, step = message.step, ?outcome, "handled");
                    None
                }
                Err(error) => {
                    tracing::warn!(lead_id = %message.lead_id, step = message.step, %error, "will be retried");
                    Some(message_id)
                }
            }
        }
        .instrument(span)
    });
    let mut response = SqsBatchResponse::default();
    for failed in join_all(handled).await.into_iter().flatten() {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = failed;
        response.batch_item_failures.push(failure);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::domain::{ExecutionId, LeadId};
    use crate::ports::StepQueue;
    use crate::steps::{RetryableStepError, StepOutcome, StepResult};

    /// Fails the leads it is told to fail, and records what it saw.
    struct ScriptedWorker {
        failing: Vec<LeadId>,
        seen: Mutex<Vec<LeadId>>,
    }

    #[async_trait::async_trait]
    impl StepWorker for ScriptedWorker {
        fn queue(&self) -> StepQueue {
            StepQueue::Research
        }
        async fn handle(&self, message: &StepMessage) -> StepResult {
            self.seen.lock().unwrap().push(message.lead_id);
            if self.failing.contains(&message.lead_id) {
                Err(RetryableStepError("store unavailable".into()))
            } else {
                Ok(StepOutcome::Advanced)
            }
        }
    }

    fn record(id: &str, body: String) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.into());
        record.body = Some(body);
        record.attributes = HashMap::from([("ApproximateReceiveCount".to_string(), "1".to_string())]);
        record
    }

    #[tokio::test]
    async fn only_retryable_failures_and_unreadable_bodies_are_reported() {
        let (ok, failing) = (LeadId::generate(), LeadId::generate());
        let body = |lead_id| serde_json::to_string(&StepMessage { execution_id: ExecutionId::generate(), lead_id, step: 0 }).unwrap();
        let mut event = SqsEvent::default();
        event.records = vec![record("m-ok", body(ok)), record("m-retry", body(failing)), record("m-garbage", "{not json".into())];
        let worker = ScriptedWorker { failing: vec![failing], seen: Mutex::new(Vec::new()) };

        let response = process_batch(event, &worker).await;

        let mut failed: Vec<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        failed.sort();
        assert_eq!(failed, vec!["m-garbage".to_string(), "m-retry".to_string()]);
        assert_eq!(worker.seen.lock().unwrap().len(), 2, "the unreadable body never reaches the worker");
    }
}
