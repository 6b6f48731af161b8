//! The step queues on SQS. Messages go out with SendMessageBatch in tens, several batches at a
//! time, and entries SQS reports as failed are sent again before giving up.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use futures::stream::{self, StreamExt};

use crate::ports::{Queue, QueueError, StepQueue};

/// SendMessageBatch takes at most ten messages.
const BATCH_LIMIT: usize = 10;
/// Batches in flight at once: enough to enqueue 10,000 leads well inside API Gateway's 30 s.
const CONCURRENT_BATCHES: usize = 32;
const ATTEMPTS: usize = 4;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrls {
    pub research: String,
    pub draft: String,
    pub send: String,
}

impl QueueUrls {
    pub fn of(&self, queue: StepQueue) -> &str {
        match queue {
            StepQueue::Research => &self.research,
            StepQueue::Draft => &self.draft,
            StepQueue::Send => &self.send,
        }
    }
}

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    urls: QueueUrls,
}

impl SqsQueue {
    pub fn new(client: Client, urls: QueueUrls) -> Self {
        Self { client, urls }
    }

    /// Sends one batch; returns how many entries still failed after the retries, and why.
    async fn send_batch(&self, url: &str, batch: Vec<(String, String)>) -> Option<(usize, String)> {
        let mut pending = batch;
        let mut last_error = String::new();
        let mut delay = Duration::from_millis(100);
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            let entries: Vec<SendMessageBatchRequestEntry> = pending
                .iter()
                .filter_map(|(id, body)| SendMessageBatchRequestEntry::builder().id(id).message_body(body).build().ok())
                .collect();
            match self.client.send_message_batch().queue_url(url).set_entries(Some(entries)).send().await {
                Ok(output) => {
                    let failed: Vec<String> = output.failed.iter().map(|f| f.id.clone()).collect();
                    if let Some(first) = output.failed.first() {
                        last_error = format!("{}: {}", first.code, first.message.as_deref().unwrap_or_default());
                    }
                    pending.retain(|(id, _)| failed.contains(id));
                    if pending.is_empty() {
                        return None;
                    }
                }
                Err(error) => {
                    last_error = match error.as_service_error() {
                        Some(e) => format!("{}: {}", e.code().unwrap_or("ServiceError"), e.message().unwrap_or_default()),
                        None => DisplayErrorContext(&error).to_string(),
                    };
                }
            }
        }
        Some((pending.len(), last_error))
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, queue: StepQueue, bodies: Vec<String>) -> Result<(), QueueError> {
        let url = self.urls.of(queue);
        let total = bodies.len();
        let bodies: Vec<(String, String)> =
            bodies.into_iter().enumerate().map(|(i, body)| (format!("m{}", i % BATCH_LIMIT), body)).collect();
        let batches: Vec<Vec<(String, String)>> = bodies.chunks(BATCH_LIMIT).map(<[_]>::to_vec).collect();
        let failures: Vec<(usize, String)> = stream::iter(batches)
            .map(|batch| self.send_batch(url, batch))
            .buffer_unordered(CONCURRENT_BATCHES)
            .filter_map(|f| async { f })
            .collect()
            .await;
        if failures.is_empty() {
            return Ok(());
        }
        let failed = failures.iter().map(|(n, _)| n).sum();
        Err(QueueError::Partial { failed, total, reason: failures[0].1.clone() })
    }

    async fn backlog(&self, queue: StepQueue) -> Result<u64, QueueError> {
        let counted = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(self.urls.of(queue))
            .set_attribute_names(Some(counted.to_vec()))
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(DisplayErrorContext(&e).to_string()))?;
        let attributes = output.attributes.unwrap_or_default();
        Ok(counted.iter().filter_map(|name| attributes.get(name)).filter_map(|n| n.parse::<u64>().ok()).sum())
    }
}
