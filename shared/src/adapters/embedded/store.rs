use std::collections::BTreeMap;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use serde::de::DeserializeOwned;

use super::EmbeddedDb;
use crate::adapters::cursor;
use crate::domain::api_key::ApiKey;
use crate::domain::{
    Agent, AgentId, EmailAddress, EmailDraft, Execution, ExecutionCounters, ExecutionId, ExecutionLogEntry, Lead, LeadId, LeadStateKind,
    MailboxCursor, ResearchReport, Suppression, Timestamp,
};
use crate::ports::store::{
    AgentStore, ApiKeyStore, ArtifactStore, ExecutionStore, LeadQuery, LeadStore, LogStore, MailboxCursorStore, SuppressionList,
};
use crate::ports::{Page, PageRequest, StoreError};

/// The `Store` over the embedded database.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: EmbeddedDb,
}

impl EmbeddedStore {
    pub fn new(db: EmbeddedDb) -> Self {
        Self { db }
    }
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(body)?)
}

fn limit_of(page: &PageRequest) -> i64 {
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
fn page_of<T: DeserializeOwned>(
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
fn missed_update(conn: &rusqlite::Connection, table: &str, id: &str) -> StoreError {
    match conn.query_row(&format!("SELECT 1 FROM {table} WHERE id = ?1"), [id], |_| Ok(())).optional() {
        Ok(Some(())) => StoreError::Conflict,
        Ok(None) => StoreError::NotFound,
        Err(e) => e.into(),
    }
}

fn due_millis(at: Option<Timestamp>) -> Option<i64> {
    at.map(|t| t.timestamp_millis())
}

fn counters_from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<ExecutionCounters> {
    let mut values = [0u64; ExecutionCounters::NAMES.len()];
    for (offset, value) in values.iter_mut().enumerate() {
        *value = row.get::<_, i64>(first + offset)? as u64;
    }
    Ok(ExecutionCounters::from_values(values))
}

/// `id, body` and every counter column, in `ExecutionCounters::NAMES` order.
fn execution_columns() -> String {
    format!("id, body, {}", ExecutionCounters::NAMES.join(", "))
}

fn execution_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, ExecutionCounters)> {
    Ok((row.get(0)?, row.get(1)?, counters_from_row(row, 2)?))
}

fn into_execution((id, body, counters): (String, String, ExecutionCounters)) -> Result<(String, Execution), StoreError> {
    let mut execution: Execution = parse(&body)?;
    execution.counters = counters;
    Ok((id, execution))
}

fn insert_lead(tx: &rusqlite::Transaction<'_>, lead: &Lead) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO leads (id, execution_id, agent_id, email_key, state, on_hold, next_due_at, version, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        lead.id.to_string(),
        lead.execution_id.to_string(),
        lead.agent_id.to_string(),
        lead.contact.email.dedupe_key(),
        lead.state.kind().as_str(),
        lead.on_hold,
        due_millis(lead.next_step_due_at),
        lead.version as i64,
        serde_json::to_string(lead)?,
    ])?;
    Ok(())
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

#[async_trait]
impl ExecutionStore for EmbeddedStore {
    async fn create_execution(&self, execution: &Execution, leads: &[Lead]) -> Result<(), StoreError> {
        let execution = execution.clone();
        let leads = leads.to_vec();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let inserted = tx.execute(
                    "INSERT OR IGNORE INTO executions (id, agent_id, state, idempotency_key, version, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        execution.id.to_string(),
                        execution.agent_id.to_string(),
                        execution.state.as_str(),
                        execution.idempotency_key,
                        execution.version as i64,
                        serde_json::to_string(&execution)?
                    ],
                )?;
                if inserted == 0 {
                    return Err(StoreError::Conflict);
                }
                for lead in &leads {
                    insert_lead(&tx, lead)?;
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
                let row =
                    conn.query_row(&format!("SELECT {} FROM executions WHERE id = ?1", execution_columns()), [id], execution_from_row)?;
                Ok(into_execution(row)?.1)
            })
            .await
    }

    async fn find_execution_by_idempotency_key(&self, agent_id: AgentId, key: &str) -> Result<Option<Execution>, StoreError> {
        let (agent_id, key) = (agent_id.to_string(), key.to_string());
        self.db
            .call(move |conn| {
                let row = conn
                    .query_row(
                        &format!("SELECT {} FROM executions WHERE agent_id = ?1 AND idempotency_key = ?2", execution_columns()),
                        params![agent_id, key],
                        execution_from_row,
                    )
                    .optional()?;
                row.map(|row| into_execution(row).map(|(_, e)| e)).transpose()
            })
            .await
    }

    async fn list_executions(&self, agent_id: Option<AgentId>, page: &PageRequest) -> Result<Page<Execution>, StoreError> {
        let before = cursor::decode(page.cursor.as_deref())?.unwrap_or_else(|| "~".to_string());
        let limit = limit_of(page);
        let agent_id = agent_id.map(|a| a.to_string());
        self.db
            .call(move |conn| {
                let sql = format!(
                    "SELECT {} FROM executions WHERE id < ?1 AND (?2 IS NULL OR agent_id = ?2) ORDER BY id DESC LIMIT ?3",
                    execution_columns()
                );
                let mut statement = conn.prepare_cached(&sql)?;
                let rows = statement.query_map(params![before, agent_id, limit + 1], execution_from_row)?;
                let mut items = Vec::new();
                for row in rows {
                    items.push(into_execution(row?)?);
                }
                Ok(paged(items, limit))
            })
            .await
    }

    async fn update_execution(&self, execution: &Execution) -> Result<Execution, StoreError> {
        let mut stored = execution.clone();
        stored.version += 1;
        let (id, state, body) = (execution.id.to_string(), stored.state.as_str(), serde_json::to_string(&stored)?);
        let (expected, next) = (execution.version as i64, stored.version as i64);
        self.db
            .call(move |conn| {
                let changed = conn.execute(
                    "UPDATE executions SET body = ?1, state = ?2, version = ?3 WHERE id = ?4 AND version = ?5",
                    params![body, state, next, id, expected],
                )?;
                if changed == 1 { Ok(()) } else { Err(missed_update(conn, "executions", &id)) }
            })
            .await?;
        Ok(stored)
    }

    async fn add_to_counters(&self, id: ExecutionId, delta: &ExecutionCounters) -> Result<(), StoreError> {
        let id = id.to_string();
        let d = *delta;
        self.db
            .call(move |conn| {
                let names = ExecutionCounters::NAMES;
                let increments: Vec<String> = names.iter().enumerate().map(|(i, name)| format!("{name} = {name} + ?{}", i + 1)).collect();
                let sql = format!("UPDATE executions SET {} WHERE id = ?{}", increments.join(", "), names.len() + 1);
                let mut values: Vec<rusqlite::types::Value> =
                    d.values().iter().map(|v| rusqlite::types::Value::Integer(*v as i64)).collect();
                values.push(rusqlite::types::Value::Text(id));
                conn.execute(&sql, rusqlite::params_from_iter(values))?;
                Ok(())
            })
            .await
    }

    async fn lead_counts(&self, id: ExecutionId) -> Result<BTreeMap<LeadStateKind, u64>, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |conn| {
                let mut statement = conn.prepare_cached("SELECT state, COUNT(*) FROM leads WHERE execution_id = ?1 GROUP BY state")?;
                let rows = statement.query_map([id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
                let mut counts = BTreeMap::new();
                for row in rows {
                    let (state, count) = row?;
                    let kind = LeadStateKind::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("unknown lead state {state}")))?;
                    counts.insert(kind, count as u64);
                }
                Ok(counts)
            })
            .await
    }

    async fn has_unfinished_executions(&self, agent_id: AgentId) -> Result<bool, StoreError> {
        let agent_id = agent_id.to_string();
        self.db
            .call(move |conn| {
                let found = conn
                    .query_row(
                        "SELECT 1 FROM executions WHERE agent_id = ?1 AND state IN ('created', 'running', 'paused') LIMIT 1",
                        [agent_id],
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
        self.db
            .call(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT id, body FROM leads WHERE id > ?1 AND (?2 IS NULL OR execution_id = ?2) AND (?3 IS NULL OR agent_id = ?3)
                     AND (?4 IS NULL OR state = ?4) AND (?5 IS NULL OR email_key = ?5) ORDER BY id LIMIT ?6",
                )?;
                page_of(&mut statement, params![after, execution_id, agent_id, state, email, limit + 1], limit)
            })
            .await
    }

    async fn update_lead(&self, lead: &Lead) -> Result<Lead, StoreError> {
        let mut stored = lead.clone();
        stored.version += 1;
        let body = serde_json::to_string(&stored)?;
        let record = stored.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let changed = tx.execute(
                    "UPDATE leads SET body = ?1, state = ?2, on_hold = ?3, next_due_at = ?4, version = ?5 WHERE id = ?6 AND version = ?7",
                    params![
                        body,
                        record.state.kind().as_str(),
                        record.on_hold,
                        due_millis(record.next_step_due_at),
                        record.version as i64,
                        record.id.to_string(),
                        (record.version - 1) as i64
                    ],
                )?;
                if changed == 0 {
                    return Err(missed_update(&tx, "leads", &record.id.to_string()));
                }
                for sent in &record.sent_messages {
                    tx.execute(
                        "INSERT OR IGNORE INTO sent_messages (message_id, lead_id) VALUES (?1, ?2)",
                        params![sent.message_id, record.id.to_string()],
                    )?;
                }
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(stored)
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

    async fn due_follow_ups(&self, now: Timestamp, limit: u32) -> Result<Vec<Lead>, StoreError> {
        let now = now.timestamp_millis();
        self.db
            .call(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT body FROM leads WHERE next_due_at IS NOT NULL AND next_due_at <= ?1 AND state IN ('sent', 'follow_up_due') ORDER BY next_due_at LIMIT ?2",
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
}

#[async_trait]
impl ArtifactStore for EmbeddedStore {
    async fn put_research(&self, report: &ResearchReport) -> Result<(), StoreError> {
        let (key, body) = (report.company_domain.clone(), serde_json::to_string(report)?);
        self.db
            .call(move |conn| {
                conn.execute("INSERT OR REPLACE INTO research_reports (company_domain, body) VALUES (?1, ?2)", params![key, body])?;
                Ok(())
            })
            .await
    }

    async fn get_research(&self, company_domain: &str) -> Result<Option<ResearchReport>, StoreError> {
        let key = company_domain.to_string();
        self.db
            .call(move |conn| {
                let body: Option<String> =
                    conn.query_row("SELECT body FROM research_reports WHERE company_domain = ?1", [key], |row| row.get(0)).optional()?;
                body.map(|b| parse(&b)).transpose()
            })
            .await
    }

    async fn put_draft(&self, draft: &EmailDraft) -> Result<(), StoreError> {
        let (lead_id, step, body) = (draft.lead_id.to_string(), draft.step as i64, serde_json::to_string(draft)?);
        self.db
            .call(move |conn| {
                conn.execute("INSERT OR REPLACE INTO drafts (lead_id, step, body) VALUES (?1, ?2, ?3)", params![lead_id, step, body])?;
                Ok(())
            })
            .await
    }

    async fn get_draft(&self, lead_id: LeadId, step: u32) -> Result<Option<EmailDraft>, StoreError> {
        let lead_id = lead_id.to_string();
        self.db
            .call(move |conn| {
                let body: Option<String> = conn
                    .query_row("SELECT body FROM drafts WHERE lead_id = ?1 AND step = ?2", params![lead_id, step as i64], |row| row.get(0))
                    .optional()?;
                body.map(|b| parse(&b)).transpose()
            })
            .await
    }
}

#[async_trait]
impl LogStore for EmbeddedStore {
    async fn append_logs(&self, entries: &[ExecutionLogEntry]) -> Result<(), StoreError> {
        let rows: Vec<(String, String)> =
            entries.iter().map(|e| Ok((e.execution_id.to_string(), serde_json::to_string(e)?))).collect::<Result<_, StoreError>>()?;
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                for (execution_id, body) in rows {
                    tx.prepare_cached("INSERT INTO execution_logs (execution_id, body) VALUES (?1, ?2)")?
                        .execute(params![execution_id, body])?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn list_logs(&self, execution_id: ExecutionId, page: &PageRequest) -> Result<Page<ExecutionLogEntry>, StoreError> {
        let after: i64 = match cursor::decode(page.cursor.as_deref())? {
            Some(key) => key.parse().map_err(|_| StoreError::InvalidCursor)?,
            None => 0,
        };
        let limit = limit_of(page);
        let execution_id = execution_id.to_string();
        self.db
            .call(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT CAST(seq AS TEXT), body FROM execution_logs WHERE execution_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )?;
                page_of(&mut statement, params![execution_id, after, limit + 1], limit)
            })
            .await
    }
}

#[async_trait]
impl SuppressionList for EmbeddedStore {
    async fn suppression_for(&self, address: &EmailAddress) -> Result<Option<Suppression>, StoreError> {
        let [exact, domain] = Suppression::keys_for(address);
        self.db
            .call(move |conn| {
                let body: Option<String> = conn
                    .query_row("SELECT body FROM suppressions WHERE entry IN (?1, ?2) LIMIT 1", params![exact, domain], |row| row.get(0))
                    .optional()?;
                body.map(|b| parse(&b)).transpose()
            })
            .await
    }

    async fn suppress(&self, suppression: &Suppression) -> Result<(), StoreError> {
        let (entry, body) = (suppression.entry.to_ascii_lowercase(), serde_json::to_string(suppression)?);
        self.db
            .call(move |conn| {
                conn.execute("INSERT OR IGNORE INTO suppressions (entry, body) VALUES (?1, ?2)", params![entry, body])?;
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl ApiKeyStore for EmbeddedStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let (id, body) = (key.id.clone(), serde_json::to_string(key)?);
        self.db
            .call(move |conn| {
                let inserted = conn.execute("INSERT OR IGNORE INTO api_keys (id, body) VALUES (?1, ?2)", params![id, body])?;
                if inserted == 0 { Err(StoreError::Conflict) } else { Ok(()) }
            })
            .await
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let id = id.to_string();
        self.db
            .call(move |conn| {
                let body: Option<String> = conn.query_row("SELECT body FROM api_keys WHERE id = ?1", [id], |row| row.get(0)).optional()?;
                body.map(|b| parse(&b)).transpose()
            })
            .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.db
            .call(|conn| {
                let mut statement = conn.prepare_cached("SELECT body FROM api_keys ORDER BY id")?;
                let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
                rows.map(|row| parse(&row?)).collect()
            })
            .await
    }

    async fn revoke_api_key(&self, id: &str, at: Timestamp) -> Result<ApiKey, StoreError> {
        let mut key = self.get_api_key(id).await?.ok_or(StoreError::NotFound)?;
        key.revoked_at.get_or_insert(at);
        let (id, body) = (key.id.clone(), serde_json::to_string(&key)?);
        self.db
            .call(move |conn| {
                conn.execute("UPDATE api_keys SET body = ?1 WHERE id = ?2", params![body, id])?;
                Ok(())
            })
            .await?;
        Ok(key)
    }
}

#[async_trait]
impl MailboxCursorStore for EmbeddedStore {
    async fn get_mailbox_cursor(&self, folder: &str) -> Result<Option<MailboxCursor>, StoreError> {
        let folder = folder.to_string();
        let body: Option<String> = self
            .db
            .call(move |conn| {
                Ok(conn.query_row("SELECT body FROM mailbox_cursors WHERE folder = ?1", [folder], |row| row.get(0)).optional()?)
            })
            .await?;
        body.map(|b| serde_json::from_str(&b).map_err(StoreError::from)).transpose()
    }

    async fn save_mailbox_cursor(&self, cursor: &MailboxCursor) -> Result<(), StoreError> {
        let (folder, body) = (cursor.folder.clone(), serde_json::to_string(cursor)?);
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO mailbox_cursors (folder, body) VALUES (?1, ?2) ON CONFLICT (folder) DO UPDATE SET body = excluded.body",
                    params![folder, body],
                )?;
                Ok(())
            })
            .await
    }

    async fn list_mailbox_cursors(&self) -> Result<Vec<MailboxCursor>, StoreError> {
        let bodies: Vec<String> = self
            .db
            .call(|conn| {
                let mut statement = conn.prepare_cached("SELECT body FROM mailbox_cursors ORDER BY folder")?;
                let rows = statement.query_map([], |row| row.get(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
            })
            .await?;
        bodies.iter().map(|b| serde_json::from_str(b).map_err(StoreError::from)).collect()
    }
}
