//! Tables mirror the access patterns the DynamoDB design serves: every list is a keyset scan of
//! an index, never a full scan. Domain objects are stored as JSON next to the indexed columns.

use rusqlite::Connection;

const SCHEMA_VERSION: i64 = 8;

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    if version < 1 {
        create_version_1(conn)?;
    }
    if version < 2 {
        // Version 2: API keys.
        conn.execute_batch(
            "BEGIN;
            CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, body TEXT NOT NULL);
            PRAGMA user_version = 2;
            COMMIT;",
        )?;
    }
    if version < 3 {
        // Version 3: reply counters and mailbox cursors.
        conn.execute_batch(
            "BEGIN;
            ALTER TABLE executions ADD COLUMN soft_bounced INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE executions ADD COLUMN complained INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE executions ADD COLUMN auto_replied INTEGER NOT NULL DEFAULT 0;
            CREATE TABLE IF NOT EXISTS mailbox_cursors (folder TEXT PRIMARY KEY, body TEXT NOT NULL);
            PRAGMA user_version = 3;
            COMMIT;",
        )?;
    }
    // Version 4: the ledger. Leads and executions carry the time the sweep must look at them (a
    // due follow-up keeps its due time; every other unfinished lead and execution is looked at
    // at once); one contact marker per agent and address, taken by the lead that emailed it
    // (leads that already did are backfilled); a health probe row.
    if version < 4 {
        migrate_to_ledger(conn)?;
    }
    // Versions 5 and 6: pacing. Sends counted per meter (a mailbox, an agent) and local day, each
    // meter's gap, and each mailbox's record since its last resume with its pause.
    if version < 6 {
        migrate_to_pacing(conn)?;
    }
    // Version 7: each mailbox's last provider answer that was not an acceptance.
    if version < 7 {
        conn.execute_batch(
            "BEGIN;
            ALTER TABLE mailbox_health ADD COLUMN last_error TEXT;
            PRAGMA user_version = 7;
            COMMIT;",
        )?;
    }
    // Version 8: replies counted by intent.
    conn.execute_batch(
        "BEGIN;
        ALTER TABLE executions ADD COLUMN interested INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE executions ADD COLUMN not_interested INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE executions ADD COLUMN meeting_requests INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE executions ADD COLUMN referrals INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE executions ADD COLUMN wrong_person INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE executions ADD COLUMN questions INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE executions ADD COLUMN other_replies INTEGER NOT NULL DEFAULT 0;
        PRAGMA user_version = 8;
        COMMIT;",
    )
}

fn migrate_to_pacing(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "BEGIN;
        CREATE TABLE IF NOT EXISTS meter_days (meter TEXT NOT NULL, day TEXT NOT NULL, sent INTEGER NOT NULL, PRIMARY KEY (meter, day));
        CREATE TABLE IF NOT EXISTS meter_gaps (meter TEXT PRIMARY KEY, next_send_at INTEGER NOT NULL, last_sent_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS mailbox_health (meter TEXT PRIMARY KEY, sent INTEGER NOT NULL DEFAULT 0,
            hard_bounced INTEGER NOT NULL DEFAULT 0, complained INTEGER NOT NULL DEFAULT 0, pause TEXT);
        PRAGMA user_version = 6;
        COMMIT;",
    )
}

fn migrate_to_ledger(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "BEGIN;
        ALTER TABLE leads ADD COLUMN attention_at INTEGER;
        UPDATE leads SET attention_at = next_due_at WHERE state = 'sent';
        DROP INDEX IF EXISTS leads_due;
        ALTER TABLE leads DROP COLUMN next_due_at;
        CREATE INDEX IF NOT EXISTS leads_attention ON leads (attention_at) WHERE attention_at IS NOT NULL;
        CREATE TABLE IF NOT EXISTS contact_markers (
            agent_id TEXT NOT NULL, email_key TEXT NOT NULL, lead_id TEXT NOT NULL, PRIMARY KEY (agent_id, email_key));
        INSERT OR IGNORE INTO contact_markers (agent_id, email_key, lead_id)
            SELECT agent_id, email_key, id FROM leads
            WHERE state IN ('sending', 'parked') OR json_array_length(json_extract(body, '$.sent_messages')) > 0
            ORDER BY id;
        UPDATE leads SET attention_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
            WHERE on_hold = 0 AND state IN ('queued', 'researched', 'drafted', 'approved', 'follow_up_due', 'sending');
        ALTER TABLE executions ADD COLUMN attention_at INTEGER;
        UPDATE executions SET attention_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000 WHERE state IN ('created', 'running');
        CREATE INDEX IF NOT EXISTS executions_attention ON executions (attention_at) WHERE attention_at IS NOT NULL;
        CREATE TABLE IF NOT EXISTS health_probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL);
        PRAGMA user_version = 4;
        COMMIT;",
    )
}

fn create_version_1(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "BEGIN;
        CREATE TABLE IF NOT EXISTS agents (
            id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS executions (
            id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, state TEXT NOT NULL, idempotency_key TEXT,
            version INTEGER NOT NULL, body TEXT NOT NULL,
            sent INTEGER NOT NULL DEFAULT 0, replied INTEGER NOT NULL DEFAULT 0,
            bounced INTEGER NOT NULL DEFAULT 0, unsubscribed INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX IF NOT EXISTS executions_by_agent ON executions (agent_id, id);
        CREATE UNIQUE INDEX IF NOT EXISTS executions_by_idempotency_key
            ON executions (agent_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
        CREATE TABLE IF NOT EXISTS leads (
            id TEXT PRIMARY KEY, execution_id TEXT NOT NULL, agent_id TEXT NOT NULL,
            email_key TEXT NOT NULL, state TEXT NOT NULL, on_hold INTEGER NOT NULL,
            next_due_at INTEGER, version INTEGER NOT NULL, body TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS leads_by_execution_state ON leads (execution_id, state, id);
        CREATE INDEX IF NOT EXISTS leads_by_execution ON leads (execution_id, id);
        CREATE INDEX IF NOT EXISTS leads_by_agent_email ON leads (agent_id, email_key);
        CREATE INDEX IF NOT EXISTS leads_by_email ON leads (email_key);
        CREATE INDEX IF NOT EXISTS leads_due ON leads (next_due_at) WHERE next_due_at IS NOT NULL;
        CREATE INDEX IF NOT EXISTS leads_on_hold ON leads (execution_id) WHERE on_hold = 1;
        CREATE TABLE IF NOT EXISTS sent_messages (
            message_id TEXT PRIMARY KEY, lead_id TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS research_reports (
            company_domain TEXT PRIMARY KEY, body TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS drafts (
            lead_id TEXT NOT NULL, step INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (lead_id, step));
        CREATE TABLE IF NOT EXISTS execution_logs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, execution_id TEXT NOT NULL, body TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS execution_logs_by_execution ON execution_logs (execution_id, seq);
        CREATE TABLE IF NOT EXISTS suppressions (
            entry TEXT PRIMARY KEY, body TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS queue_messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, body TEXT NOT NULL,
            visible_at INTEGER NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0,
            enqueued_at INTEGER NOT NULL, dead_reason TEXT);
        CREATE INDEX IF NOT EXISTS queue_messages_ready ON queue_messages (queue, visible_at, id);
        PRAGMA user_version = 1;
        COMMIT;",
    )
}
