//! The one delivery driver: what happens to a queue message, decided in one place for Lambda's
//! SQS batches and the local runner alike. It parses the body, expands fan-outs, carries on
//! control work, hands step messages to the worker, and says what to do with the message:
//! delete it, deliver it again, or keep it in the dead-letter queue. On the message's last
//! allowed receive a failure fails its lead (or its fan-out's leads) with the reason, and parks a
//! lead whose send may have left, so nothing waits without a visible reason.

use futures::future::join_all;
use tracing::Instrument;

use super::admission::abandon_fan_out;
use super::{StepOutcome, StepWorker};
use crate::ports::QueueMessage;

/// One received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The transport's id for the message (SQS message id, local receipt).
    pub id: String,
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// What to do with a message after it was delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Done with: delete it.
    Done,
    /// A retry may succeed: deliver it again later.
    Retry(String),
    /// It will never succeed: keep it in the dead-letter queue for inspection.
    DeadLetter(String),
}

pub struct DeliveryDriver<'a> {
    pub worker: &'a dyn StepWorker,
    /// The queue's redrive `maxReceiveCount`: the receive after which a failure is final.
    pub max_receive_count: u32,
}

impl DeliveryDriver<'_> {
    /// Delivers every message of a batch concurrently; the dispositions come back in order.
    pub async fn deliver_all(&self, deliveries: &[Delivery]) -> Vec<Disposition> {
        join_all(deliveries.iter().map(|delivery| self.deliver(delivery))).await
    }

    pub async fn deliver(&self, delivery: &Delivery) -> Disposition {
        let queue = self.worker.queue().as_str();
        let span = tracing::info_span!("step", queue, message_id = %delivery.id, receive_count = delivery.receive_count);
        self.dispose(delivery).instrument(span).await
    }

    async fn dispose(&self, delivery: &Delivery) -> Disposition {
        let queue = self.worker.queue().as_str();
        let last = delivery.receive_count >= self.max_receive_count;
        let gave_up = |error: &dyn std::fmt::Display| format!("{queue} step gave up after {} attempts: {error}", delivery.receive_count);
        let message = match serde_json::from_str::<QueueMessage>(&delivery.body) {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(%error, "the message body is not a queue message; it goes to the dead-letter queue");
                return Disposition::DeadLetter(format!("the message body is not a queue message: {error}"));
            }
        };
        match message {
            QueueMessage::Step(message) => match self.worker.handle(&message).await {
                Ok(outcome) => {
                    tracing::info!(lead_id = %message.lead_id, step = message.step, ?outcome, "handled");
                    Disposition::Done
                }
                Err(error) if last => {
                    let reason = gave_up(&error);
                    tracing::error!(lead_id = %message.lead_id, step = message.step, %reason, "giving up");
                    match self.worker.give_up(&message, reason.clone()).await {
                        Ok(StepOutcome::Failed | StepOutcome::Parked) => {}
                        Ok(outcome) => tracing::info!(?outcome, "the lead had moved on; nothing to give up"),
                        Err(e) => tracing::error!(error = %e, "could not mark the lead; the sweep will find it"),
                    }
                    Disposition::DeadLetter(reason)
                }
                Err(error) => {
                    tracing::warn!(lead_id = %message.lead_id, step = message.step, %error, "will be retried");
                    Disposition::Retry(error.0)
                }
            },
            QueueMessage::FanOut(fan_out) => match self.worker.fan_out(&fan_out).await {
                Ok(()) => Disposition::Done,
                Err(error) if last => {
                    let reason = gave_up(&error);
                    match abandon_fan_out(self.worker.ports(), &fan_out.fan_out, &reason).await {
                        Ok(failed) => tracing::error!(execution_id = %fan_out.execution_id, failed, %reason, "a fan-out gave up"),
                        Err(e) => tracing::error!(error = %e, "could not fail the fan-out's leads; the sweep will find them"),
                    }
                    Disposition::DeadLetter(reason)
                }
                Err(error) => {
                    tracing::warn!(execution_id = %fan_out.execution_id, %error, "fan-out will be retried");
                    Disposition::Retry(error.0)
                }
            },
            QueueMessage::Control(control) => match self.worker.control(&control).await {
                Ok(()) => Disposition::Done,
                // What is left is found by the sweep.
                Err(error) if last => Disposition::DeadLetter(gave_up(&error)),
                Err(error) => Disposition::Retry(error.0),
            },
        }
    }
}
