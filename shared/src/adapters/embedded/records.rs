//! Artifacts, logs, suppressions, API keys, mailbox cursors, pacing meters and the health probe on the
//! embedded database.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::EmbeddedStore;
use super::store::{limit_of, page_of, parse};
use crate::adapters::cursor;
use crate::domain::api_key::ApiKey;
use crate::domain::{
    EmailAddress, EmailDraft, ExecutionId, ExecutionLogEntry, LeadId, MailboxCursor, MeterUsage, ResearchReport, Suppression, Timestamp,
};
use crate::ports::store::{ApiKeyStore, ArtifactStore, HealthProbe, LogStore, MailboxCursorStore, SendingMeters, SuppressionList};
use crate::ports::{Page, PageRequest, StoreError};

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
        let keys = serde_json::to_string(&Suppression::keys_for(address))?;
        self.db
            .call(move |conn| {
                let body: Option<String> = conn
                    .query_row(
                        "SELECT body FROM suppressions WHERE entry IN (SELECT value FROM json_each(?1)) ORDER BY length(entry) DESC LIMIT 1",
                        [keys],
                        |row| row.get(0),
                    )
                    .optional()?;
                body.map(|b| parse(&b)).transpose()
            })
            .await
    }

    async fn suppression_entry(&self, entry: &str) -> Result<Option<Suppression>, StoreError> {
        let entry = entry.to_ascii_lowercase();
        self.db
            .call(move |conn| {
                let body: Option<String> =
                    conn.query_row("SELECT body FROM suppressions WHERE entry = ?1", [entry], |row| row.get(0)).optional()?;
                body.map(|b| parse(&b)).transpose()
            })
            .await
    }

    async fn list_suppressions(&self, page: &PageRequest) -> Result<Page<Suppression>, StoreError> {
        let after = cursor::decode(page.cursor.as_deref())?.unwrap_or_default();
        let limit = limit_of(page);
        self.db
            .call(move |conn| {
                let mut statement = conn.prepare_cached("SELECT entry, body FROM suppressions WHERE entry > ?1 ORDER BY entry LIMIT ?2")?;
                page_of(&mut statement, params![after, limit + 1], limit)
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
impl SendingMeters for EmbeddedStore {
    async fn meter_usage(&self, meter: &str, day: chrono::NaiveDate) -> Result<MeterUsage, StoreError> {
        let meter = meter.to_string();
        self.db
            .call(move |conn| {
                let sent: Option<i64> = conn
                    .query_row("SELECT sent FROM meter_days WHERE meter = ?1 AND day = ?2", params![meter, day.to_string()], |row| {
                        row.get(0)
                    })
                    .optional()?;
                let gap: Option<(i64, i64)> = conn
                    .query_row("SELECT next_send_at, last_sent_at FROM meter_gaps WHERE meter = ?1", [&meter], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()?;
                let at = |millis: i64| chrono::DateTime::from_timestamp_millis(millis);
                Ok(MeterUsage {
                    sent: sent.unwrap_or(0).max(0) as u32,
                    next_send_at: gap.and_then(|(next, _)| at(next)),
                    last_sent_at: gap.and_then(|(_, last)| at(last)),
                })
            })
            .await
    }

    async fn mailbox_standing(&self, meter: &str) -> Result<crate::domain::pacing::MailboxStanding, StoreError> {
        let meter = meter.to_string();
        let row: Option<(i64, i64, i64, Option<String>, Option<String>)> = self
            .db
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT sent, hard_bounced, complained, pause, last_error FROM mailbox_health WHERE meter = ?1",
                        [meter],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
                    )
                    .optional()?)
            })
            .await?;
        let Some((sent, hard_bounced, complained, pause, last_error)) = row else { return Ok(Default::default()) };
        Ok(crate::domain::pacing::MailboxStanding {
            sent: sent.max(0) as u64,
            hard_bounced: hard_bounced.max(0) as u64,
            complained: complained.max(0) as u64,
            paused: pause.map(|p| serde_json::from_str(&p)).transpose()?,
            last_error: last_error.map(|e| serde_json::from_str(&e)).transpose()?,
        })
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

#[async_trait]
impl HealthProbe for EmbeddedStore {
    async fn probe(&self, now: Timestamp) -> Result<(), StoreError> {
        let at = now.timestamp_millis();
        self.db
            .call(move |conn| {
                conn.execute("INSERT INTO health_probe (id, at) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET at = excluded.at", [at])?;
                Ok(())
            })
            .await
    }
}
