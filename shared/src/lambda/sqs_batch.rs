//! SQS batches with partial batch failures: every message of a batch is handled concurrently,
//! and only the ones that may succeed on a retry are reported back, so SQS redelivers those
//! and deletes the rest. Requires `ReportBatchItemFailures` on the event source mapping.
//!
//! On a message's last allowed receive (the redrive policy's `maxReceiveCount`) a failure also
//! fails its lead with the reason, so the lead shows why it stopped while the message itself
//! moves on to the dead-letter queue for inspection.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use tracing::Instrument;

use crate::ports::QueueMessage;
use crate::steps::StepWorker;

fn receive_count(record: &SqsMessage) -> u32 {
    record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1)
}

/// Handles one SQS batch with `worker` and returns the ids of the messages to retry.
pub async fn process_batch(event: SqsEvent, worker: &dyn StepWorker, max_receive_count: u32) -> SqsBatchResponse {
    let handled = event.records.into_iter().map(|record| {
        let message_id = record.message_id.clone().unwrap_or_default();
        let attempt = receive_count(&record);
        let span = tracing::info_span!("step", queue = worker.queue().as_str(), message_id = %message_id, receive_count = attempt);
        async move {
            let body = record.body.as_deref().unwrap_or_default();
            let message = match serde_json::from_str::<QueueMessage>(body) {
                Ok(QueueMessage::Step(message)) => message,
                Ok(QueueMessage::FanOut(fan_out)) => {
                    return match worker.fan_out(&fan_out).await {
                        Ok(()) => None,
                        Err(error) => {
                            tracing::warn!(execution_id = %fan_out.execution_id, %error, "fan-out will be retried");
                            Some(message_id)
                        }
                    };
                }
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
                Err(error) if attempt >= max_receive_count => {
                    let reason = format!("{} step gave up after {attempt} attempts: {error}", worker.queue().as_str());
                    tracing::error!(lead_id = %message.lead_id, step = message.step, %reason, "moving to the dead-letter queue");
                    if let Err(e) = worker.give_up(&message, reason).await {
                        tracing::error!(error = %e, "could not mark the lead failed");
                    }
                    Some(message_id)
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
    use crate::ports::{StepMessage, StepQueue};
    use crate::steps::{RetryableStepError, StepOutcome, StepResult};

    /// Fails the leads it is told to fail, and records what it saw and gave up on.
    struct ScriptedWorker {
        failing: Vec<LeadId>,
        seen: Mutex<Vec<LeadId>>,
        given_up: Mutex<Vec<(LeadId, String)>>,
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
        async fn give_up(&self, message: &StepMessage, reason: String) -> StepResult {
            self.given_up.lock().unwrap().push((message.lead_id, reason));
            Ok(StepOutcome::Failed)
        }
        fn ports(&self) -> &crate::steps::StepPorts {
            unreachable!("these tests send no fan-out messages")
        }
    }

    fn worker(failing: Vec<LeadId>) -> ScriptedWorker {
        ScriptedWorker { failing, seen: Mutex::new(Vec::new()), given_up: Mutex::new(Vec::new()) }
    }

    fn body(lead_id: LeadId) -> String {
        serde_json::to_string(&StepMessage { execution_id: ExecutionId::generate(), lead_id, step: 0 }).unwrap()
    }

    fn record(id: &str, body: String, receive_count: u32) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.into());
        record.body = Some(body);
        record.attributes = HashMap::from([("ApproximateReceiveCount".to_string(), receive_count.to_string())]);
        record
    }

    #[tokio::test]
    async fn only_retryable_failures_and_unreadable_bodies_are_reported() {
        let (ok, failing) = (LeadId::generate(), LeadId::generate());
        let mut event = SqsEvent::default();
        event.records = vec![record("m-ok", body(ok), 1), record("m-retry", body(failing), 1), record("m-garbage", "{not json".into(), 1)];
        let worker = worker(vec![failing]);

        let response = process_batch(event, &worker, 5).await;

        let mut failed: Vec<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        failed.sort();
        assert_eq!(failed, vec!["m-garbage".to_string(), "m-retry".to_string()]);
        assert_eq!(worker.seen.lock().unwrap().len(), 2, "the unreadable body never reaches the worker");
        assert!(worker.given_up.lock().unwrap().is_empty(), "nothing was on its last attempt");
    }

    #[tokio::test]
    async fn on_the_last_attempt_a_failure_fails_the_lead_and_still_goes_to_the_dead_letter_queue() {
        let failing = LeadId::generate();
        let mut event = SqsEvent::default();
        event.records = vec![record("m-last", body(failing), 5)];
        let worker = worker(vec![failing]);

        let response = process_batch(event, &worker, 5).await;

        assert_eq!(response.batch_item_failures.len(), 1, "reported, so the redrive policy moves it to the DLQ");
        let given_up = worker.given_up.lock().unwrap();
        assert_eq!(given_up[0].0, failing);
        assert_eq!(given_up[0].1, "research step gave up after 5 attempts: store unavailable");
    }
}
