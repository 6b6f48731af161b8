//! Runs the workers over the embedded queue the way Lambda's SQS event source would: batches,
//! each message decided by the same delivery driver Lambda uses, redelivery after a failure
//! with a growing delay, and the dead-letter state for what can never succeed.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::adapters::embedded::{EmbeddedQueue, Receipt};
use crate::app::delivery::{Delivery, DeliveryDriver, Disposition};
use crate::app::{ScheduledReport, ScheduledTasks, StepWorker};
use crate::ports::{Clock, Store};

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
    /// The configured receive count after which a failure is final.
    pub max_receive_count: u32,
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
                let driver = DeliveryDriver { worker: worker.as_ref(), max_receive_count: self.max_receive_count };
                let messages: Vec<Delivery> = deliveries.iter().map(Receipt::delivery).collect();
                let dispositions = driver.deliver_all(&messages).await;
                for (receipt, disposition) in deliveries.iter().zip(dispositions) {
                    let settled = match disposition {
                        Disposition::Done => {
                            report.handled += 1;
                            self.queue.delete(receipt.receipt).await
                        }
                        Disposition::Retry(_) => {
                            report.retried += 1;
                            self.queue.retry_later(receipt.receipt, retry_delay(receipt.receive_count)).await
                        }
                        Disposition::DeadLetter(reason) => {
                            report.gave_up += 1;
                            self.queue.dead_letter(receipt.receipt, reason).await
                        }
                    };
                    if let Err(error) = settled {
                        tracing::warn!(%error, "could not settle a local queue message; it will be delivered again");
                    }
                }
            }
            if !progressed {
                return report;
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
