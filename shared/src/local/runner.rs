//! Runs the workers over the embedded queue the way Lambda's SQS event source would: batches,
//! redelivery after a failure with a growing delay, and a dead-letter state after five tries,
//! at which point the lead is failed with the last error so it is visible, not silently stuck.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;

use crate::adapters::embedded::{Delivery, EmbeddedQueue, QueueSettings};
use crate::ports::{Clock, QueueMessage, Store};
use crate::steps::{ScheduledReport, ScheduledTasks, StepWorker};

const BATCH_SIZE: usize = 10;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    pub handled: u64,
    pub retried: u64,
    pub gave_up: u64,
}

pub struct LocalRunner {
    pub queue: Arc<EmbeddedQueue>,
    pub workers: Vec<Arc<dyn StepWorker>>,
    pub scheduled: ScheduledTasks,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

fn retry_delay(receive_count: u32) -> Duration {
    Duration::from_millis(250 * 2u64.pow(receive_count.min(8))).min(Duration::from_secs(60))
}

impl LocalRunner {
    /// Handles messages until no queue has a visible message. Messages waiting out a retry
    /// delay are left for a later call.
    pub async fn drain(&self) -> DrainReport {
        let mut report = DrainReport::default();
        loop {
            let mut progressed = false;
            for worker in &self.workers {
                let deliveries = match self.queue.receive(worker.queue(), BATCH_SIZE).await {
                    Ok(deliveries) => deliveries,
                    Err(error) => {
                        tracing::warn!(%error, "receiving from the local queue failed");
                        continue;
                    }
                };
                progressed |= !deliveries.is_empty();
                let results = join_all(deliveries.into_iter().map(|delivery| self.handle(worker.as_ref(), delivery))).await;
                for result in results {
                    match result {
                        Handled::Done => report.handled += 1,
                        Handled::Retry => report.retried += 1,
                        Handled::GaveUp => report.gave_up += 1,
                    }
                }
            }
            if !progressed {
                return report;
            }
        }
    }

    async fn handle(&self, worker: &dyn StepWorker, delivery: Delivery) -> Handled {
        let message = match serde_json::from_str::<QueueMessage>(&delivery.body) {
            Ok(QueueMessage::Step(message)) => message,
            Ok(QueueMessage::FanOut(fan_out)) => {
                return match worker.fan_out(&fan_out).await {
                    Ok(()) => {
                        let _ = self.queue.delete(delivery.receipt).await;
                        Handled::Done
                    }
                    Err(error) => {
                        tracing::warn!(%error, "fan-out will be retried");
                        let _ = self.queue.retry_later(delivery.receipt, retry_delay(delivery.receive_count)).await;
                        Handled::Retry
                    }
                };
            }
            Err(error) => {
                tracing::error!(%error, "dropping an unreadable queue message");
                let _ = self.queue.delete(delivery.receipt).await;
                return Handled::GaveUp;
            }
        };
        match worker.handle(&message).await {
            Ok(outcome) => {
                tracing::debug!(queue = worker.queue().as_str(), lead_id = %message.lead_id, ?outcome, "handled");
                if let Err(error) = self.queue.delete(delivery.receipt).await {
                    tracing::warn!(%error, "could not delete a handled message; it will be delivered again");
                }
                Handled::Done
            }
            Err(error) if delivery.receive_count >= QueueSettings::default().max_receive_count => {
                tracing::error!(queue = worker.queue().as_str(), lead_id = %message.lead_id, %error, "giving up after repeated failures");
                let reason = format!("{} step gave up after {} attempts: {error}", worker.queue().as_str(), delivery.receive_count);
                if worker.give_up(&message, reason).await.is_ok() {
                    let _ = self.queue.delete(delivery.receipt).await;
                }
                Handled::GaveUp
            }
            Err(error) => {
                tracing::warn!(queue = worker.queue().as_str(), lead_id = %message.lead_id, %error, attempt = delivery.receive_count, "will retry");
                let _ = self.queue.retry_later(delivery.receipt, retry_delay(delivery.receive_count)).await;
                Handled::Retry
            }
        }
    }

    pub async fn run_scheduled(&self) -> Option<ScheduledReport> {
        match self.scheduled.run().await {
            Ok(report) => Some(report),
            Err(error) => {
                tracing::warn!(%error, "the scheduled run failed; it runs again at the next interval");
                None
            }
        }
    }

    /// Drains the queues continuously and runs the scheduled tasks every `interval`, until
    /// `shutdown` resolves.
    pub async fn run_until(&self, interval: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut schedule = tokio::time::interval(interval);
        let mut poll = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = schedule.tick() => {
                    if let Some(report) = self.run_scheduled().await {
                        tracing::debug!(?report, "scheduled run");
                    }
                }
                _ = poll.tick() => {
                    let report = self.drain().await;
                    if report != DrainReport::default() {
                        tracing::debug!(?report, "drained");
                    }
                }
            }
        }
    }
}

enum Handled {
    Done,
    Retry,
    GaveUp,
}
