//! `Ledger::commit` on DynamoDB: a transition is one `TransactWriteItems`. The lead and the
//! execution are written only if their version is still the one read; the counter deltas go to
//! one of the execution's counter shards (picked by the lead's id), so an execution's workers do
//! not all write one item; log entries, markers and the Message-ID index go in the same
//! transaction. Cancellation reasons say which condition failed: the lead's or the execution's
//! version (`Conflict`), or a contact marker another lead holds (`ContactHeld`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::items::*;
use super::store::{DynamoStore, unavailable};
use crate::domain::{ContactMarker, MarkerChange, SendingSlot, Transition};
use crate::ports::StoreError;
use crate::ports::store::Ledger;

/// Attempts at a transaction DynamoDB cancelled because another transaction held one of its
/// items, or throttled it.
const CONFLICT_ATTEMPTS: u32 = 10;

/// Cancellation reasons that say "try again", as opposed to a failed condition.
const TRANSIENT_REASONS: &[&str] = &["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"];

/// Service error codes that say "try again".
const TRANSIENT_CODES: &[&str] =
    &["TransactionConflictException", "TransactionInProgressException", "ThrottlingException", "ProvisionedThroughputExceededException"];

/// What a transaction item's condition guards, to read its cancellation reason.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Guard {
    None,
    Lead,
    Execution,
    Contact,
    /// A pacing slot: no room left today, or the meter's gap has not passed.
    Slot,
}

/// A jittered, growing pause before attempt `attempt` (0-based) of a conflicting write.
async fn back_off(attempt: u32) {
    let ceiling = 20u64 << attempt.min(6);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(ceiling)) as u64;
    tokio::time::sleep(Duration::from_millis(ceiling / 2 + jitter / 2)).await;
}

fn corrupt(error: BuildError) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

struct Writes<'a> {
    table: &'a str,
    items: Vec<TransactWriteItem>,
    guards: Vec<Guard>,
}

impl Writes<'_> {
    fn push(&mut self, item: TransactWriteItem, guard: Guard) {
        self.items.push(item);
        self.guards.push(guard);
    }

    fn update(&mut self, update: aws_sdk_dynamodb::types::builders::UpdateBuilder, guard: Guard) -> Result<(), StoreError> {
        self.push(TransactWriteItem::builder().update(update.build().map_err(corrupt)?).build(), guard);
        Ok(())
    }

    fn put(&mut self, item: Item, condition: Option<(&str, Item)>, guard: Guard) -> Result<(), StoreError> {
        let mut put = Put::builder().table_name(self.table).set_item(Some(item));
        if let Some((expression, values)) = condition {
            put = put.condition_expression(expression).set_expression_attribute_values(Some(values));
            put = put.expression_attribute_names("#version", "version");
        }
        self.push(TransactWriteItem::builder().put(put.build().map_err(corrupt)?).build(), guard);
        Ok(())
    }

    fn contact(&mut self, marker: &ContactMarker, claim: bool) -> Result<(), StoreError> {
        let key = contact_key(marker.agent_id, &marker.address);
        let condition = "attribute_not_exists(pk) OR lead_id = :lead";
        let lead = s(marker.lead_id.to_string());
        let item = if claim {
            let mut item = key;
            item.insert("lead_id".into(), lead.clone());
            let put = Put::builder()
                .table_name(self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .expression_attribute_values(":lead", lead);
            TransactWriteItem::builder().put(put.build().map_err(corrupt)?).build()
        } else {
            let delete = Delete::builder()
                .table_name(self.table)
                .set_key(Some(key))
                .condition_expression(condition)
                .expression_attribute_values(":lead", lead);
            TransactWriteItem::builder().delete(delete.build().map_err(corrupt)?).build()
        };
        self.push(item, Guard::Contact);
        Ok(())
    }

    fn marker(&mut self, change: &MarkerChange) -> Result<(), StoreError> {
        match change {
            MarkerChange::ClaimContact(marker) => self.contact(marker, true),
            MarkerChange::ReleaseContact(marker) => self.contact(marker, false),
            MarkerChange::IndexMessage { message_id, lead_id } => {
                let mut index = message_key(message_id);
                index.insert("lead_id".into(), s(lead_id.to_string()));
                self.put(index, None, Guard::None)
            }
            MarkerChange::Unsuppress(entry) => {
                let delete = Delete::builder().table_name(self.table).set_key(Some(suppression_key(entry)));
                self.push(TransactWriteItem::builder().delete(delete.build().map_err(corrupt)?).build(), Guard::None);
                Ok(())
            }
            MarkerChange::TakeSlot(slot) => self.take_slot(slot),
            MarkerChange::ReturnSlot(slot) => {
                // Unconditional: a failed condition would cancel the release itself.
                let update = Update::builder()
                    .table_name(self.table)
                    .set_key(Some(meter_day_key(&slot.meter, slot.day)))
                    .update_expression("ADD sent :minus")
                    .expression_attribute_values(":minus", n(-1));
                self.update(update, Guard::None)
            }
            MarkerChange::CountMailbox { meter, sent, hard_bounced, complained } => {
                let update = Update::builder()
                    .table_name(self.table)
                    .set_key(Some(mailbox_health_key(meter)))
                    .update_expression("ADD sent :sent, hard_bounced :bounced, complained :complained")
                    .expression_attribute_values(":sent", n(*sent))
                    .expression_attribute_values(":bounced", n(*hard_bounced))
                    .expression_attribute_values(":complained", n(*complained));
                self.update(update, Guard::None)
            }
            MarkerChange::PauseMailbox { meter, pause } => {
                let data = serde_dynamo::to_attribute_value(pause).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let update = Update::builder()
                    .table_name(self.table)
                    .set_key(Some(mailbox_health_key(meter)))
                    .update_expression("SET pause = if_not_exists(pause, :pause)")
                    .expression_attribute_values(":pause", data);
                self.update(update, Guard::None)
            }
            MarkerChange::NoteMailboxError { meter, error } => {
                let data = serde_dynamo::to_attribute_value(error).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let update = Update::builder()
                    .table_name(self.table)
                    .set_key(Some(mailbox_health_key(meter)))
                    .update_expression("SET last_error = :error")
                    .expression_attribute_values(":error", data);
                self.update(update, Guard::None)
            }
            MarkerChange::ResumeMailbox { meter } => {
                let update = Update::builder()
                    .table_name(self.table)
                    .set_key(Some(mailbox_health_key(meter)))
                    .update_expression("SET sent = :zero, hard_bounced = :zero, complained = :zero REMOVE pause")
                    .expression_attribute_values(":zero", n(0));
                self.update(update, Guard::None)
            }
            MarkerChange::Suppress(suppression) => {
                // The first reason an address was suppressed is the one kept; the list index is
                // set either way.
                let data = serde_dynamo::to_attribute_value(suppression).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let update = Update::builder()
                    .table_name(self.table)
                    .set_key(Some(suppression_key(&suppression.entry)))
                    .update_expression(
                        "SET #data = if_not_exists(#data, :data), #version = if_not_exists(#version, :zero), gsi1pk = :list, gsi1sk = :entry",
                    )
                    .expression_attribute_names("#data", "data")
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":data", data)
                    .expression_attribute_values(":zero", n(0))
                    .expression_attribute_values(":list", s(SUPPRESSIONS))
                    .expression_attribute_values(":entry", s(suppression.entry.to_ascii_lowercase()));
                self.update(update, Guard::None)
            }
        }
    }

    /// Counts the send on the meter's day unless the cap is reached, and moves the meter's gap on
    /// unless it has not passed.
    fn take_slot(&mut self, slot: &SendingSlot) -> Result<(), StoreError> {
        let count = Update::builder()
            .table_name(self.table)
            .set_key(Some(meter_day_key(&slot.meter, slot.day)))
            .update_expression("ADD sent :one")
            .condition_expression("attribute_not_exists(sent) OR sent < :cap")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(slot.cap));
        self.update(count, Guard::Slot)?;
        if let Some(gap) = &slot.gap {
            let pace = Update::builder()
                .table_name(self.table)
                .set_key(Some(meter_gap_key(&slot.meter)))
                .update_expression("SET next_send_at = :next, last_sent_at = :now")
                .condition_expression("attribute_not_exists(next_send_at) OR next_send_at <= :now")
                .expression_attribute_values(":next", n(gap.next_send_at.timestamp_millis()))
                .expression_attribute_values(":now", n(gap.now.timestamp_millis()));
            self.update(pace, Guard::Slot)?;
        }
        Ok(())
    }

    /// The counter deltas and the per-state count moves, added to the lead's counter shard.
    fn counters(&mut self, transition: &Transition) -> Result<(), StoreError> {
        let Some(execution_id) = transition.execution_id() else { return Ok(()) };
        let mut adds: Vec<(String, i64)> = COUNTERS
            .iter()
            .zip(transition.counters.values())
            .filter(|(_, v)| *v > 0)
            .map(|(name, v)| (name.to_string(), v as i64))
            .collect();
        if let Some(change) = transition.lead.as_ref().filter(|c| c.from != c.next.state.kind()) {
            adds.push((lead_count_attribute(change.from), -1));
            adds.push((lead_count_attribute(change.next.state.kind()), 1));
        }
        if adds.is_empty() {
            return Ok(());
        }
        let shard_source = transition.lead.as_ref().map_or_else(|| execution_id.to_string(), |l| l.next.id.to_string());
        let expression = (0..adds.len()).map(|i| format!("#c{i} :c{i}")).collect::<Vec<_>>().join(", ");
        let mut update = Update::builder()
            .table_name(self.table)
            .set_key(Some(counter_shard_key(execution_id, shard_of(shard_source, COUNTER_SHARDS))))
            .update_expression(format!("ADD {expression}"));
        for (i, (name, value)) in adds.into_iter().enumerate() {
            update = update.expression_attribute_names(format!("#c{i}"), name).expression_attribute_values(format!(":c{i}"), n(value));
        }
        self.update(update, Guard::None)
    }
}

/// TransactWriteItems takes at most 100 items.
const TRANSACTION_LIMIT: usize = 100;
/// Creation transactions in flight at once.
const CREATE_CONCURRENCY: usize = 8;

impl DynamoStore {
    /// Creates every item whose key does not exist yet and leaves existing ones as they are,
    /// 100 to a transaction: a retried start must never reset a lead a worker already moved.
    pub(super) async fn create_absent(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let mut chunks: Vec<Vec<Item>> = Vec::new();
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            chunks.push(items.by_ref().take(TRANSACTION_LIMIT).collect());
        }
        stream::iter(chunks).map(|chunk| self.create_chunk(chunk)).buffer_unordered(CREATE_CONCURRENCY).try_collect::<Vec<()>>().await?;
        Ok(())
    }

    async fn create_chunk(&self, mut chunk: Vec<Item>) -> Result<(), StoreError> {
        for attempt in 0..CONFLICT_ATTEMPTS {
            if chunk.is_empty() {
                return Ok(());
            }
            let writes = chunk.iter().map(|item| self.put_new_write(item.clone())).collect::<Result<Vec<_>, _>>()?;
            let error = match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = error.as_service_error() else {
                if error.as_service_error().and_then(ProvideErrorMetadata::code).is_some_and(|c| TRANSIENT_CODES.contains(&c)) {
                    back_off(attempt).await;
                    continue;
                }
                return Err(unavailable(error));
            };
            let exists: Vec<bool> = cancelled.cancellation_reasons().iter().map(|r| r.code() == Some("ConditionalCheckFailed")).collect();
            // Items that exist already stay as they are; the rest are tried again.
            let mut index = 0;
            chunk.retain(|_| {
                let keep = !exists.get(index).copied().unwrap_or(false);
                index += 1;
                keep
            });
            if !exists.iter().any(|e| *e) {
                back_off(attempt).await;
            }
        }
        Err(StoreError::Unavailable("creating the leads kept conflicting with other writes".into()))
    }

    fn transaction_items<'a>(&'a self, transition: &Transition) -> Result<Writes<'a>, StoreError> {
        let mut writes = Writes { table: &self.table, items: Vec::new(), guards: Vec::new() };
        if let Some(change) = &transition.lead {
            let expected = Item::from([(":expected".to_string(), n(change.next.version - 1))]);
            writes.put(lead_item(&change.next)?, Some(("#version = :expected", expected)), Guard::Lead)?;
        }
        if let Some(change) = &transition.execution {
            let expected = Item::from([(":expected".to_string(), n(change.next.version - 1))]);
            writes.put(execution_item(&change.next)?, Some(("#version = :expected", expected)), Guard::Execution)?;
        }
        writes.counters(transition)?;
        for entry in &transition.log {
            writes.put(log_item(entry)?, None, Guard::None)?;
        }
        for marker in &transition.markers {
            writes.marker(marker)?;
        }
        Ok(writes)
    }

    /// Why a cancelled transaction's guarded item refused.
    async fn refused(&self, transition: &Transition, guard: Guard) -> StoreError {
        match guard {
            Guard::Contact => StoreError::ContactHeld,
            Guard::Slot => StoreError::Conflict,
            Guard::Lead => match &transition.lead {
                Some(change) => self.missed(lead_key(change.next.id)).await,
                None => StoreError::Conflict,
            },
            Guard::Execution => match &transition.execution {
                Some(change) => self.missed(execution_key(change.next.id)).await,
                None => StoreError::Conflict,
            },
            Guard::None => StoreError::Unavailable("a transaction item without a condition was refused".into()),
        }
    }
}

#[async_trait]
impl Ledger for DynamoStore {
    async fn commit(&self, transition: &Transition) -> Result<(), StoreError> {
        let writes = self.transaction_items(transition)?;
        if writes.items.is_empty() {
            return Ok(());
        }
        // The token makes a retry of a request that did land (an answer lost on the way back, the
        // SDK's own retries, one still in progress) a no-op on DynamoDB instead of a failed
        // condition. A new one is taken only after a cancellation, which wrote nothing.
        let mut token = uuid::Uuid::new_v4().to_string();
        for attempt in 0..CONFLICT_ATTEMPTS {
            let request =
                self.client.transact_write_items().set_transact_items(Some(writes.items.clone())).client_request_token(token.clone());
            let error = match request.send().await {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            let reasons: Vec<Option<String>> = match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    cancelled.cancellation_reasons().iter().map(|r| r.code().map(str::to_string)).collect()
                }
                Some(service) if service.code().is_some_and(|c| TRANSIENT_CODES.contains(&c)) => {
                    back_off(attempt).await;
                    continue;
                }
                _ => return Err(unavailable(error)),
            };
            let failed = reasons.iter().zip(&writes.guards).find(|(reason, _)| reason.as_deref() == Some("ConditionalCheckFailed"));
            if let Some((_, guard)) = failed {
                return Err(self.refused(transition, *guard).await);
            }
            if !reasons.iter().flatten().any(|r| TRANSIENT_REASONS.contains(&r.as_str())) {
                let reasons: Vec<String> = reasons.into_iter().flatten().collect();
                return Err(StoreError::Unavailable(format!("the transaction was cancelled: {}", reasons.join(", "))));
            }
            token = uuid::Uuid::new_v4().to_string();
            back_off(attempt).await;
        }
        Err(StoreError::Unavailable("the transaction kept conflicting with others".into()))
    }
}
