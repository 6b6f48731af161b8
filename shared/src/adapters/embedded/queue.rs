//! Step queues in the embedded database, with the SQS semantics the workers are written for:
//! at-least-once delivery, a visibility timeout, a receive count, and a dead-letter state once a
//! message has been received too often.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::params;

use super::EmbeddedDb;
use crate::ports::{Queue, QueueError, StepQueue, StoreError};

#[derive(Clone, Copy, Debug)]
pub struct QueueSettings {
    /// How long a received message stays invisible to other receivers.
    pub visibility_timeout: Duration,
    /// After this many receives a message goes to the dead-letter state instead.
    pub max_receive_count: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self { visibility_timeout: Duration::from_secs(60), max_receive_count: 5 }
    }
}

/// One received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub receipt: i64,
    pub receive_count: u32,
    pub body: String,
}

impl Receipt {
    /// The message as the delivery driver sees it.
    pub fn delivery(&self) -> crate::app::delivery::Delivery {
        crate::app::delivery::Delivery { id: self.receipt.to_string(), body: self.body.clone(), receive_count: self.receive_count }
    }
}

#[derive(Clone)]
pub struct EmbeddedQueue {
    db: EmbeddedDb,
    settings: QueueSettings,
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

fn dead_letter_name(queue: StepQueue) -> String {
    format!("{}-dlq", queue.as_str())
}

impl EmbeddedQueue {
    pub fn new(db: EmbeddedDb, settings: QueueSettings) -> Self {
        Self { db, settings }
    }

    /// Receives up to `max` visible messages and hides them for the visibility timeout.
    pub async fn receive(&self, queue: StepQueue, max: usize) -> Result<Vec<Receipt>, StoreError> {
        let settings = self.settings;
        self.db
            .call(move |conn| {
                let now = now_millis();
                let tx = conn.transaction()?;
                let candidates: Vec<(i64, u32, String)> = {
                    let mut statement = tx.prepare_cached(
                        "SELECT id, receive_count, body FROM queue_messages WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, id LIMIT ?3",
                    )?;
                    let rows = statement.query_map(params![queue.as_str(), now, max as i64], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
                    rows.collect::<Result<_, _>>()?
                };
                let mut deliveries = Vec::new();
                for (id, count, body) in candidates {
                    if count >= settings.max_receive_count {
                        tx.execute(
                            "UPDATE queue_messages SET queue = ?1, dead_reason = 'received too often' WHERE id = ?2",
                            params![dead_letter_name(queue), id],
                        )?;
                        continue;
                    }
                    let visible_at = now + settings.visibility_timeout.as_millis() as i64;
                    tx.execute("UPDATE queue_messages SET visible_at = ?1, receive_count = receive_count + 1 WHERE id = ?2", params![visible_at, id])?;
                    deliveries.push(Receipt { receipt: id, receive_count: count + 1, body });
                }
                tx.commit()?;
                Ok(deliveries)
            })
            .await
    }

    /// Removes a processed message.
    pub async fn delete(&self, receipt: i64) -> Result<(), StoreError> {
        self.db
            .call(move |conn| {
                conn.execute("DELETE FROM queue_messages WHERE id = ?1", [receipt])?;
                Ok(())
            })
            .await
    }

    /// Moves a message that can never succeed to its queue's dead-letter state at once.
    pub async fn dead_letter(&self, receipt: i64, reason: String) -> Result<(), StoreError> {
        self.db
            .call(move |conn| {
                conn.execute(
                    "UPDATE queue_messages SET queue = queue || '-dlq', dead_reason = ?1 WHERE id = ?2 AND queue NOT LIKE '%-dlq'",
                    params![reason, receipt],
                )?;
                Ok(())
            })
            .await
    }

    /// Makes a failed message visible again after `delay`, like a changed visibility timeout.
    pub async fn retry_later(&self, receipt: i64, delay: Duration) -> Result<(), StoreError> {
        self.db
            .call(move |conn| {
                conn.execute(
                    "UPDATE queue_messages SET visible_at = ?1 WHERE id = ?2",
                    params![now_millis() + delay.as_millis() as i64, receipt],
                )?;
                Ok(())
            })
            .await
    }

    /// One process owns the embedded queue, so at start-up nothing can still be in flight:
    /// messages received before a crash become visible at once instead of after the timeout.
    pub async fn recover_in_flight(&self) -> Result<u64, StoreError> {
        self.db
            .call(|conn| {
                let changed = conn
                    .execute("UPDATE queue_messages SET visible_at = 0 WHERE visible_at > ?1 AND queue NOT LIKE '%-dlq'", [now_millis()])?;
                Ok(changed as u64)
            })
            .await
    }

    /// Messages waiting or in flight in `queue`.
    pub async fn depth(&self, queue: StepQueue) -> Result<u64, StoreError> {
        self.count(queue.as_str().to_string()).await
    }

    pub async fn dead_letter_depth(&self, queue: StepQueue) -> Result<u64, StoreError> {
        self.count(dead_letter_name(queue)).await
    }

    async fn count(&self, name: String) -> Result<u64, StoreError> {
        self.db
            .call(move |conn| {
                Ok(conn.query_row("SELECT COUNT(*) FROM queue_messages WHERE queue = ?1", [name], |row| row.get::<_, i64>(0))? as u64)
            })
            .await
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn send(&self, queue: StepQueue, bodies: Vec<String>) -> Result<(), QueueError> {
        self.db
            .call(move |conn| {
                let now = now_millis();
                let tx = conn.transaction()?;
                {
                    let mut statement =
                        tx.prepare_cached("INSERT INTO queue_messages (queue, body, visible_at, enqueued_at) VALUES (?1, ?2, ?3, ?3)")?;
                    for body in &bodies {
                        statement.execute(params![queue.as_str(), body, now])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))
    }

    async fn backlog(&self, queue: StepQueue) -> Result<u64, QueueError> {
        self.depth(queue).await.map_err(|e| QueueError::Unavailable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ExecutionId, LeadId};
    use crate::ports::StepMessage;

    fn message() -> StepMessage {
        StepMessage { execution_id: ExecutionId::generate(), lead_id: LeadId::generate(), step: 0 }
    }

    #[tokio::test]
    async fn a_received_message_is_hidden_until_deleted_or_released() {
        let queue = EmbeddedQueue::new(EmbeddedDb::in_memory().unwrap(), QueueSettings::default());
        queue.enqueue(StepQueue::Research, &[message(), message()]).await.unwrap();
        let first = queue.receive(StepQueue::Research, 1).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].receive_count, 1);
        let second = queue.receive(StepQueue::Research, 10).await.unwrap();
        assert_eq!(second.len(), 1, "the first message is invisible while in flight");
        queue.delete(first[0].receipt).await.unwrap();
        queue.retry_later(second[0].receipt, Duration::ZERO).await.unwrap();
        let again = queue.receive(StepQueue::Research, 10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].receive_count, 2);
        assert_eq!(queue.depth(StepQueue::Draft).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_message_received_too_often_goes_to_the_dead_letter_state() {
        let settings = QueueSettings { visibility_timeout: Duration::ZERO, max_receive_count: 2 };
        let queue = EmbeddedQueue::new(EmbeddedDb::in_memory().unwrap(), settings);
        queue.enqueue(StepQueue::Send, &[message()]).await.unwrap();
        assert_eq!(queue.receive(StepQueue::Send, 1).await.unwrap().len(), 1);
        assert_eq!(queue.receive(StepQueue::Send, 1).await.unwrap().len(), 1);
        assert!(queue.receive(StepQueue::Send, 1).await.unwrap().is_empty());
        assert_eq!(queue.dead_letter_depth(StepQueue::Send).await.unwrap(), 1);
        assert_eq!(queue.depth(StepQueue::Send).await.unwrap(), 0);
    }
}
