//! What Lambda's SQS event source mapping does, on moto: receive a batch, hand it to the
//! function as an `SqsEvent` (message ids, receipt handles, receive counts, the queue ARN),
//! delete what succeeded, and leave the reported failures for redelivery.

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use sales_agent::app::StepWorker;
use sales_agent::lambda::process_batch;

pub struct EventSourceMapping {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    /// Hand every batch to the function this many times before settling it, as SQS's
    /// at-least-once delivery may.
    pub deliveries_per_batch: usize,
    pub max_receive_count: u32,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollReport {
    pub received: usize,
    pub failed: usize,
}

/// A received batch: the event Lambda would get and the receipt handles to settle it with.
pub struct ReceivedBatch {
    pub event: SqsEvent,
    receipts: HashMap<String, String>,
}

impl EventSourceMapping {
    /// Receives up to ten messages and builds the `SqsEvent` Lambda would be invoked with.
    pub async fn receive(&self) -> Option<ReceivedBatch> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive from moto");
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return None;
        }
        let mut event = SqsEvent::default();
        let mut receipts = HashMap::new();
        for message in &messages {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id.clone();
            record.receipt_handle = message.receipt_handle.clone();
            record.body = message.body.clone();
            record.attributes =
                message.attributes.clone().unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_string(), v)).collect();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(self.queue_arn.clone());
            record.aws_region = Some("us-east-1".into());
            receipts.insert(message.message_id.clone().unwrap_or_default(), message.receipt_handle.clone().unwrap_or_default());
            event.records.push(record);
        }
        Some(ReceivedBatch { event, receipts })
    }

    /// Deletes what succeeded; makes the reported failures visible again at once, so a test
    /// sees the redelivery without waiting out the visibility timeout.
    pub async fn settle(&self, batch: &ReceivedBatch, failed: &[String]) {
        let done: Vec<DeleteMessageBatchRequestEntry> = batch
            .receipts
            .iter()
            .filter(|(id, _)| !failed.contains(id))
            .map(|(id, receipt)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(id.replace(|c: char| !c.is_ascii_alphanumeric(), ""))
                    .receipt_handle(receipt)
                    .build()
                    .unwrap()
            })
            .collect();
        if !done.is_empty() {
            self.client.delete_message_batch().queue_url(&self.queue_url).set_entries(Some(done)).send().await.expect("delete from moto");
        }
        for id in failed {
            self.release_one(&batch.receipts[id]).await;
        }
    }

    /// What the visibility timeout's expiry does: every message of the batch is visible again.
    pub async fn release(&self, batch: &ReceivedBatch) {
        for receipt in batch.receipts.values() {
            self.release_one(receipt).await;
        }
    }

    async fn release_one(&self, receipt: &str) {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }

    /// One poll: receive a batch, invoke `worker` with it (several times, if asked), settle it.
    pub async fn poll(&self, worker: &dyn StepWorker) -> PollReport {
        let Some(batch) = self.receive().await else { return PollReport::default() };
        let mut failed: Vec<String> = Vec::new();
        for _ in 0..self.deliveries_per_batch.max(1) {
            let response = process_batch(batch.event.clone(), worker, self.max_receive_count).await;
            failed = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        }
        self.settle(&batch, &failed).await;
        PollReport { received: batch.event.records.len(), failed: failed.len() }
    }
}
