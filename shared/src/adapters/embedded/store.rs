//! The `Store` over the embedded database: reads of agents, executions and leads. State changes
//! are in `ledger.rs`; artifacts, logs, suppressions, keys and cursors in `records.rs`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use serde::de::DeserializeOwned;

use super::EmbeddedDb;
use crate::adapters::cursor;
use crate::domain::{
    Agent, AgentId, EmailAddress, Execution, ExecutionCounters, ExecutionId, ExecutionState, Lead, LeadId, LeadStateKind, Timestamp,
};
use crate::ports::store::{AgentStore, ExecutionProgress, ExecutionStore, LeadQuery, LeadStore};
use crate::ports::{Page, PageRequest, StoreError};

/// The `Store` over the embedded database.
#[derive(Clone)]
pub struct EmbeddedStore {
    pub(super) db: EmbeddedDb,
}

impl EmbeddedStore {
    pub fn new(db: EmbeddedDb) -> Self {
        Self { db }
    }
}

pub(super) fn parse<T: DeserializeOwned>(body: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(body)?)
}

pub(super) fn limit_of(page: &PageRequest) -> i64 {
    page.limit.clamp(1, PageRequest::MAX_LIMIT) as i64
}

/// Builds a page from `limit + 1` rows: the extra row only says there is a next page.
fn paged<T>(mut rows: Vec<(String, T)>, limit: i64) -> Page<T> {
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if has_more { rows.last().map(|(key, _)| cursor::encode(key)) } else { None };
    Page { items: rows.into_iter().map(|(_, item)| item).collect(), next_cursor }
}

/// Reads `(key, JSON body)` rows, one more than the page holds, into a page.
pub(super) fn page_of<T: DeserializeOwned>(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
    limit: i64,
) -> Result<Page<T>, StoreError> {
    let rows = statement.query_map(params, |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
    let mut items = Vec::new();
    for row in rows {
        let (key, body) = row?;
        items.push((key, parse(&body)?));
    }
    Ok(paged(items, limit))
}

/// Why a conditional update changed no row: the item is gone, or its version moved on.
pub(super) fn missed_update(conn: &rusqlite::Connection, table: &str, id: &str) -> StoreError {
    match conn.query_row(&format!("SELECT 1 FROM {table} WHERE id = ?1"), [id], |_| Ok(())).optional() {
        Ok(Some(())) => StoreError::Conflict,
        Ok(None) => StoreError::NotFound,
        Err(e) => e.into(),
    }
}

pub(super) fn millis(at: Option<Timestamp>) -> Option<i64> {
    at.map(|t| t.timestamp_millis())
}

fn counters_from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<ExecutionCounters> {
    let mut values = [0u64; ExecutionCounters::NAMES.len()];
    for (offset, value) in values.iter_mut().enumerate() {
        *value = row.get::<_, i64>(first + offset)? as u64;
    }
    Ok(ExecutionCounters::from_values(values))
}

#[async_trait]
impl AgentStore for EmbeddedStore {
    async fn create_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        let (id, body) = (agent.id.to_string(), serde_json::to_string(agent)?);
        let version = agent.version as i64;
        self.db
            .call(move |conn| {
                let inserted =
                    conn.execute("INSERT OR IGNORE INTO agents (id, version, body) VALUES (?1, ?2, ?3)", params![id, version, body])?;
                if inserted == 0 { Err(StoreError::Conflict) } else { Ok(()) }
            })
            .await
    }

    async fn get_agent(&self, id: AgentId) -> Result<Agent, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |conn| {
                let body: String = conn.query_row("SELECT body FROM agents WHERE id = ?1", [id], |row| row.get(0))?;
                parse(&body)
            })
            .await
    }

    async fn list_agents(&self, page: &PageRequest) -> Result<Page<Agent>, StoreError> {
        let after = cursor::decode(page.cursor.as_deref())?.unwrap_or_default();
        let limit = limit_of(page);
        self.db
            .call(move |conn| {
                let mut statement = conn.prepare_cached("SELECT id, body FROM agents WHERE id > ?1 ORDER BY id LIMIT ?2")?;
                page_of(&mut statement, params![after, limit + 1], limit)
            })
            .await
    }

    async fn update_agent(&self, agent: &Agent) -> Result<Agent, StoreError> {
        let mut stored = agent.clone();
        stored.version += 1;
        let (id, body, expected, next) =
            (agent.id.to_string(), serde_json::to_string(&stored)?, agent.version as i64, stored.version as i64);
        self.db
            .call(move |conn| {
                let changed = conn.execute(
                    "UPDATE agents SET body = ?1, version = ?2 WHERE id = ?3 AND version = ?4",
                    params![body, next, id, expected],
                )?;
                if changed == 1 { Ok(()) } else { Err(missed_update(conn, "agents", &id)) }
            })
            .await?;
        Ok(stored)
    }

    async fn delete_agent(&self, id: AgentId) -> Result<(), StoreError> {
        let id = id.to_string();
        self.db
            .call(move |conn| {
                let deleted = conn.execute("DELETE FROM agents WHERE id = ?1", [id])?;
                if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            })
            .await
    }
}

fn executions_from(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<(String, Execution)>, StoreError> {
    let rows = statement.query_map(params, |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
    let mut items = Vec::new();
    for row in rows {
        let (id, body) = row?;
        items.push((id, parse(&body)?));
    }
    Ok(items)
}

#[async_trait]
impl ExecutionStore for EmbeddedStore {
    async fn create_execution(&self, execution: &Execution) -> Result<(), StoreError> {
        let execution = execution.clone();
        self.db
            .call(move |conn| {
                let inserted = conn.execute(
                    "INSERT OR IGNORE INTO executions (id, agent_id, state, idempotency_key, version, attention_at, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        execution.id.to_string(),
                        execution.agent_id.to_string(),
                        execution.state.as_str(),
                        execution.idempotency_key,
                        execution.version as i64,
                        millis(execution.attention_at),
                        serde_json::to_string(&execution)?
                    ],
                )?;
                if inserted == 0 { Err(StoreError::Conflict) } else { Ok(()) }
            })
            .await
    }

    async fn write_leads(&self, _execution: &Execution, leads: &[Lead]) -> Result<(), StoreError> {
        let leads = leads.to_vec();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                for lead in &leads {
                    super::ledger::insert_lead(&tx, lead)?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn get_execution(&self, id: ExecutionId) -> Result<Execution, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |conn| {
                let body: String = conn.query_row("SELECT body FROM executions WHERE id = ?1", [id], |row| row.get(0))?;
                parse(&body)
            })
            .await
    }

    async fn find_execution_by_idempotency_key(&self, agent_id: AgentId, key: &str) -> Result<Option<Execution>, StoreError> {
        let (agent_id, key) = (agent_id.to_string(), key.to_string());
        self.db
            .call(move |conn| {
                let body: Option<String> = conn
                    .query_row("SELECT body FROM executions WHERE agent_id = ?1 AND idempotency_key = ?2", params![agent_id, key], |row| {
                        row.get(0)
                    })
                    .optional()?;
                body.map(|b| parse(&b)).transpose()
            })
            .await
    }

    async fn list_executions(&self, agent_id: Option<AgentId>, page: &PageRequest) -> Result<Page<Execution>, StoreError> {
        let before = cursor::decode(page.cursor.as_deref())?.unwrap_or_else(|| "~".to_string());
        let limit = limit_of(page);
        let agent_id = agent_id.map(|a| a.to_string());
        self.db
            .call(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT id, body FROM executions WHERE id < ?1 AND (?2 IS NULL OR agent_id = ?2) ORDER BY id DESC LIMIT ?3",
                )?;
                Ok(paged(executions_from(&mut statement, params![before, agent_id, limit + 1])?, limit))
            })
            .await
    }

    async fn execution_progress(&self, id: ExecutionId) -> Result<ExecutionProgress, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |conn| {
                let sql = format!("SELECT {} FROM executions WHERE id = ?1", ExecutionCounters::NAMES.join(", "));
                let counters = conn.query_row(&sql, [&id], |row| counters_from_row(row, 0))?;
                let mut statement = conn.prepare_cached("SELECT state, COUNT(*) FROM leads WHERE execution_id = ?1 GROUP BY state")?;
                let rows = statement.query_map([&id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
                let mut lead_counts = BTreeMap::new();
                for row in rows {
                    let (state, count) = row?;
                    let kind = LeadStateKind::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("unknown lead state {state}")))?;
                    lead_counts.insert(kind, count as u64);
                }
                Ok(ExecutionProgress { counters, lead_counts })
            })
            .await
    }

    async fn executions_needing_attention(&self, now: Timestamp, limit: u32) -> Result<Vec<Execution>, StoreError> {
        let now = now.timestamp_millis();
        self.db
            .call(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT id, body FROM executions WHERE attention_at IS NOT NULL AND attention_at <= ?1 ORDER BY attention_at LIMIT ?2",
                )?;
                Ok(executions_from(&mut statement, params![now, limit as i64])?.into_iter().map(|(_, e)| e).collect())
            })
            .await
    }

    async fn has_executions_in(&self, agent_id: AgentId, states: &[ExecutionState]) -> Result<bool, StoreError> {
        let agent_id = agent_id.to_string();
        let states = serde_json::to_string(&states.iter().map(|s| s.as_str()).collect::<Vec<_>>())?;
        self.db
            .call(move |conn| {
                let found = conn
                    .query_row(
                        "SELECT 1 FROM executions WHERE agent_id = ?1 AND state IN (SELECT value FROM json_each(?2)) LIMIT 1",
                        params![agent_id, states],
                        |_| Ok(()),
                    )
                    .optional()?;
                Ok(found.is_some())
            })
            .await
    }
}

#[async_trait]
impl LeadStore for EmbeddedStore {
    async fn get_lead(&self, id: LeadId) -> Result<Lead, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |conn| {
                let body: String = conn.query_row("SELECT body FROM leads WHERE id = ?1", [id], |row| row.get(0))?;
                parse(&body)
            })
            .await
    }

    async fn list_leads(&self, query: &LeadQuery, page: &PageRequest) -> Result<Page<Lead>, StoreError> {
        let after = cursor::decode(page.cursor.as_deref())?.unwrap_or_default();
        let limit = limit_of(page);
        let execution_id = query.execution_id.map(|e| e.to_string());
        let agent_id = query.agent_id.map(|a| a.to_string());
        let state = query.state.map(|s| s.as_str());
        let email = query.email.as_ref().map(|e| e.dedupe_key());
        let intent = query.intent.map(|i| i.as_str());
        self.db
            .call(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT id, body FROM leads WHERE id > ?1 AND (?2 IS NULL OR execution_id = ?2) AND (?3 IS NULL OR agent_id = ?3)
                     AND (?4 IS NULL OR state = ?4) AND (?5 IS NULL OR email_key = ?5)
                     AND (?7 IS NULL OR json_extract(body, '$.reply_intent') = ?7) ORDER BY id LIMIT ?6",
                )?;
                page_of(&mut statement, params![after, execution_id, agent_id, state, email, limit + 1, intent], limit)
            })
            .await
    }

    async fn find_lead_by_message_id(&self, message_id: &str) -> Result<Option<Lead>, StoreError> {
        let message_id = message_id.to_string();
        self.db
            .call(move |conn| {
                let body: Option<String> = conn
                    .query_row(
                        "SELECT leads.body FROM sent_messages JOIN leads ON leads.id = sent_messages.lead_id WHERE sent_messages.message_id = ?1",
                        [message_id],
                        |row| row.get(0),
                    )
                    .optional()?;
                body.map(|b| parse(&b)).transpose()
            })
            .await
    }

    async fn leads_needing_attention(&self, now: Timestamp, limit: u32) -> Result<Vec<Lead>, StoreError> {
        let now = now.timestamp_millis();
        self.db
            .call(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT body FROM leads WHERE attention_at IS NOT NULL AND attention_at <= ?1 ORDER BY attention_at LIMIT ?2",
                )?;
                let rows = statement.query_map(params![now, limit as i64], |row| row.get::<_, String>(0))?;
                rows.map(|row| parse(&row?)).collect()
            })
            .await
    }

    async fn held_leads(&self, execution_id: ExecutionId, limit: u32) -> Result<Vec<Lead>, StoreError> {
        let execution_id = execution_id.to_string();
        self.db
            .call(move |conn| {
                let mut statement =
                    conn.prepare_cached("SELECT body FROM leads WHERE execution_id = ?1 AND on_hold = 1 ORDER BY id LIMIT ?2")?;
                let rows = statement.query_map(params![execution_id, limit as i64], |row| row.get::<_, String>(0))?;
                rows.map(|row| parse(&row?)).collect()
            })
            .await
    }

    async fn contact_holder(&self, agent_id: AgentId, address: &EmailAddress) -> Result<Option<LeadId>, StoreError> {
        let (agent_id, email_key) = (agent_id.to_string(), address.dedupe_key());
        self.db
            .call(move |conn| {
                let holder: Option<String> = conn
                    .query_row(
                        "SELECT lead_id FROM contact_markers WHERE agent_id = ?1 AND email_key = ?2",
                        params![agent_id, email_key],
                        |row| row.get(0),
                    )
                    .optional()?;
                holder.map(|id| id.parse().map_err(|_| StoreError::Corrupt(format!("contact marker names '{id}'")))).transpose()
            })
            .await
    }
}
