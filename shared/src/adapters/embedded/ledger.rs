//! `Ledger::commit` on the embedded database: a transition is one SQLite transaction. The lead
//! and execution rows are written only if their version is still the one read; counters, log
//! entries, markers and index rows go in the same transaction, so a crash leaves all or none.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::EmbeddedStore;
use super::store::{millis, missed_update};
use crate::domain::{ContactMarker, Execution, ExecutionCounters, Lead, MarkerChange, SendingSlot, Transition};
use crate::ports::StoreError;
use crate::ports::store::Ledger;

/// Inserts a lead row with its indexed columns, unless the lead exists: a retried start must
/// never reset a lead a worker already moved.
pub(super) fn insert_lead(tx: &rusqlite::Transaction<'_>, lead: &Lead) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO leads (id, execution_id, agent_id, email_key, state, on_hold, attention_at, version, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        lead.id.to_string(),
        lead.execution_id.to_string(),
        lead.agent_id.to_string(),
        lead.contact.email.dedupe_key(),
        lead.state.kind().as_str(),
        lead.on_hold,
        millis(lead.attention_at),
        lead.version as i64,
        serde_json::to_string(lead)?,
    ])?;
    Ok(())
}

fn update_lead(tx: &rusqlite::Transaction<'_>, lead: &Lead) -> Result<(), StoreError> {
    let changed = tx
        .prepare_cached(
            "UPDATE leads SET body = ?1, state = ?2, on_hold = ?3, attention_at = ?4, version = ?5 WHERE id = ?6 AND version = ?7",
        )?
        .execute(params![
            serde_json::to_string(lead)?,
            lead.state.kind().as_str(),
            lead.on_hold,
            millis(lead.attention_at),
            lead.version as i64,
            lead.id.to_string(),
            lead.version as i64 - 1,
        ])?;
    if changed == 0 { Err(missed_update(tx, "leads", &lead.id.to_string())) } else { Ok(()) }
}

fn update_execution(tx: &rusqlite::Transaction<'_>, execution: &Execution) -> Result<(), StoreError> {
    let changed =
        tx.prepare_cached("UPDATE executions SET body = ?1, state = ?2, version = ?3 WHERE id = ?4 AND version = ?5")?.execute(params![
            serde_json::to_string(execution)?,
            execution.state.as_str(),
            execution.version as i64,
            execution.id.to_string(),
            execution.version as i64 - 1
        ])?;
    if changed == 0 { Err(missed_update(tx, "executions", &execution.id.to_string())) } else { Ok(()) }
}

fn add_counters(tx: &rusqlite::Transaction<'_>, execution_id: &str, delta: &ExecutionCounters) -> Result<(), StoreError> {
    let names = ExecutionCounters::NAMES;
    let increments: Vec<String> = names.iter().enumerate().map(|(i, name)| format!("{name} = {name} + ?{}", i + 1)).collect();
    let sql = format!("UPDATE executions SET {} WHERE id = ?{}", increments.join(", "), names.len() + 1);
    let mut values: Vec<rusqlite::types::Value> = delta.values().iter().map(|v| rusqlite::types::Value::Integer(*v as i64)).collect();
    values.push(rusqlite::types::Value::Text(execution_id.to_string()));
    tx.execute(&sql, rusqlite::params_from_iter(values))?;
    Ok(())
}

fn claim_contact(tx: &rusqlite::Transaction<'_>, marker: &ContactMarker) -> Result<(), StoreError> {
    let (agent_id, lead_id) = (marker.agent_id.to_string(), marker.lead_id.to_string());
    tx.execute(
        "INSERT OR IGNORE INTO contact_markers (agent_id, email_key, lead_id) VALUES (?1, ?2, ?3)",
        params![agent_id, marker.address, lead_id],
    )?;
    let holder: Option<String> = tx
        .query_row("SELECT lead_id FROM contact_markers WHERE agent_id = ?1 AND email_key = ?2", params![agent_id, marker.address], |row| {
            row.get(0)
        })
        .optional()?;
    if holder.as_deref() == Some(lead_id.as_str()) { Ok(()) } else { Err(StoreError::ContactHeld) }
}

/// Counts a send on the slot's meter and day unless the cap is reached, and moves the meter's gap
/// on unless it has not passed: `Conflict` (the whole transaction rolls back) otherwise.
fn take_slot(tx: &rusqlite::Transaction<'_>, slot: &SendingSlot) -> Result<(), StoreError> {
    let counted = tx.execute(
        "INSERT INTO meter_days (meter, day, sent) VALUES (?1, ?2, 1)
         ON CONFLICT (meter, day) DO UPDATE SET sent = sent + 1 WHERE sent < ?3",
        params![slot.meter, slot.day.to_string(), slot.cap],
    )?;
    if counted == 0 {
        return Err(StoreError::Conflict);
    }
    let Some(gap) = &slot.gap else { return Ok(()) };
    let moved = tx.execute(
        "INSERT INTO meter_gaps (meter, next_send_at, last_sent_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (meter) DO UPDATE SET next_send_at = excluded.next_send_at, last_sent_at = excluded.last_sent_at
         WHERE next_send_at <= excluded.last_sent_at",
        params![slot.meter, gap.next_send_at.timestamp_millis(), gap.now.timestamp_millis()],
    )?;
    if moved == 0 { Err(StoreError::Conflict) } else { Ok(()) }
}

fn apply_marker(tx: &rusqlite::Transaction<'_>, change: &MarkerChange) -> Result<(), StoreError> {
    match change {
        MarkerChange::ClaimContact(marker) => claim_contact(tx, marker),
        MarkerChange::ReleaseContact(marker) => {
            tx.execute(
                "DELETE FROM contact_markers WHERE agent_id = ?1 AND email_key = ?2 AND lead_id = ?3",
                params![marker.agent_id.to_string(), marker.address, marker.lead_id.to_string()],
            )?;
            Ok(())
        }
        MarkerChange::IndexMessage { message_id, lead_id } => {
            tx.execute(
                "INSERT OR IGNORE INTO sent_messages (message_id, lead_id) VALUES (?1, ?2)",
                params![message_id, lead_id.to_string()],
            )?;
            Ok(())
        }
        MarkerChange::Unsuppress(entry) => {
            tx.execute("DELETE FROM suppressions WHERE entry = ?1", [entry.to_ascii_lowercase()])?;
            Ok(())
        }
        MarkerChange::TakeSlot(slot) => take_slot(tx, slot),
        MarkerChange::ReturnSlot(slot) => {
            tx.execute(
                "UPDATE meter_days SET sent = sent - 1 WHERE meter = ?1 AND day = ?2 AND sent > 0",
                params![slot.meter, slot.day.to_string()],
            )?;
            Ok(())
        }
        MarkerChange::CountMailbox { meter, sent, hard_bounced, complained } => {
            tx.execute(
                "INSERT INTO mailbox_health (meter, sent, hard_bounced, complained) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (meter) DO UPDATE SET sent = sent + excluded.sent, hard_bounced = hard_bounced + excluded.hard_bounced,
                     complained = complained + excluded.complained",
                params![meter, *sent as i64, *hard_bounced as i64, *complained as i64],
            )?;
            Ok(())
        }
        MarkerChange::PauseMailbox { meter, pause } => {
            tx.execute(
                "INSERT INTO mailbox_health (meter, pause) VALUES (?1, ?2) ON CONFLICT (meter) DO UPDATE SET pause = coalesce(pause, excluded.pause)",
                params![meter, serde_json::to_string(pause)?],
            )?;
            Ok(())
        }
        MarkerChange::NoteMailboxError { meter, error } => {
            tx.execute(
                "INSERT INTO mailbox_health (meter, last_error) VALUES (?1, ?2) ON CONFLICT (meter) DO UPDATE SET last_error = excluded.last_error",
                params![meter, serde_json::to_string(error)?],
            )?;
            Ok(())
        }
        MarkerChange::ResumeMailbox { meter } => {
            tx.execute("UPDATE mailbox_health SET sent = 0, hard_bounced = 0, complained = 0, pause = NULL WHERE meter = ?1", [meter])?;
            Ok(())
        }
        MarkerChange::Suppress(suppression) => {
            tx.execute(
                "INSERT OR IGNORE INTO suppressions (entry, body) VALUES (?1, ?2)",
                params![suppression.entry.to_ascii_lowercase(), serde_json::to_string(suppression)?],
            )?;
            Ok(())
        }
    }
}

#[async_trait]
impl Ledger for EmbeddedStore {
    async fn commit(&self, transition: &Transition) -> Result<(), StoreError> {
        let transition = transition.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                if let Some(change) = &transition.lead {
                    update_lead(&tx, &change.next)?;
                }
                if let Some(change) = &transition.execution {
                    update_execution(&tx, &change.next)?;
                }
                if let Some(execution_id) = transition.execution_id().filter(|_| !transition.counters.is_zero()) {
                    add_counters(&tx, &execution_id.to_string(), &transition.counters)?;
                }
                for entry in &transition.log {
                    tx.prepare_cached("INSERT INTO execution_logs (execution_id, body) VALUES (?1, ?2)")?
                        .execute(params![entry.execution_id.to_string(), serde_json::to_string(entry)?])?;
                }
                for marker in &transition.markers {
                    apply_marker(&tx, marker)?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }
}
