//! SQS batches with partial batch failures: the delivery driver decides what happens to each
//! message, and only the ones not done with are reported back: those to deliver again, and those
//! for the dead-letter queue, which the redrive policy moves there once they have been received
//! `maxReceiveCount` times (a body that can never be read is received that often first). Requires
//! `ReportBatchItemFailures` on the event source mapping.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

use crate::app::StepWorker;
use crate::app::delivery::{Delivery, DeliveryDriver, Disposition};

fn receive_count(record: &SqsMessage) -> u32 {
    record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1)
}

/// Handles one SQS batch with `worker` and returns the ids of the messages not done with.
pub async fn process_batch(event: SqsEvent, worker: &dyn StepWorker, max_receive_count: u32) -> SqsBatchResponse {
    let deliveries: Vec<Delivery> = event
        .records
        .iter()
        .map(|record| Delivery {
            id: record.message_id.clone().unwrap_or_default(),
            body: record.body.clone().unwrap_or_default(),
            receive_count: receive_count(record),
        })
        .collect();
    let dispositions = DeliveryDriver { worker, max_receive_count }.deliver_all(&deliveries).await;
    let mut response = SqsBatchResponse::default();
    for (delivery, disposition) in deliveries.into_iter().zip(dispositions) {
        if disposition != Disposition::Done {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = delivery.id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
