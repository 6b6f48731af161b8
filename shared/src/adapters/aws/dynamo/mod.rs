//! The store on DynamoDB, in one table. Every access pattern is a GetItem or a Query:
//!
//! | item | pk / sk | gsi1 | gsi2 | gsi3 | gsi4 |
//! |---|---|---|---|---|---|
//! | agent | `AGENT#id` / `AGENT` | `AGENTS` / id | | | |
//! | execution | `EXEC#id` / `EXEC` | `AGENT#id#EXECS` / id (newest first) | `EXECS` / id | | `EXECUTIONS#DUE` / `millis#execution` (sparse: `attention_at`) |
//! | idempotency key | `IDEMPOTENCY#agent#key` / `KEY` | | | | |
//! | lead | `LEAD#id` / `LEAD` | `EXEC#id#LEADS` / `state#lead` | `EMAIL#address` / lead | `STATE#state` / lead | `DUE#0..7` / `millis#lead` (sparse: `attention_at`) |
//! | counter shard | `EXEC#id#COUNTS#00..15` / `COUNTS` (and `…#START`) | | | | |
//! | contact marker | `CONTACT#agent#address` / `CONTACT` | | | | |
//! | draft | `LEAD#id` / `DRAFT#step` | | | | |
//! | sent Message-ID | `MESSAGE#id` / `MESSAGE` | | | | |
//! | research | `RESEARCH#domain` / `RESEARCH` | | | | |
//! | log entry | `EXEC#id#LOG` / `millis#uuid` | | | | |
//! | suppression | `SUPPRESS#entry` / `SUPPRESS` | | | | |
//! | API key | `APIKEY#id` / `APIKEY` | `APIKEYS` / id | | | |
//! | mailbox cursor | `MAILBOX#account/folder` / `CURSOR` | `MAILBOXES` / folder | | | |
//! | health probe | `HEALTH` / `PROBE` | | | | |
//!
//! An execution's counters (`sent`, `replied`, …) and its count of leads per state
//! (`leads_<state>`) live in 16 counter shards plus the counts its start wrote. Each lead
//! transition adds to the shard its lead id picks, in the same transaction as the lead's
//! conditional write; reading an execution's progress is one BatchGetItem of the 17 items.

mod items;
mod ledger;
mod records;
mod store;

pub use store::DynamoStore;
