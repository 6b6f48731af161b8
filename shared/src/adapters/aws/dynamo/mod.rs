//! The store on DynamoDB, in one table. Every access pattern is a GetItem or a Query:
//!
//! | item | pk / sk | gsi1 | gsi2 | gsi3 | gsi4 |
//! |---|---|---|---|---|---|
//! | agent | `AGENT#id` / `AGENT` | `AGENTS` / id | | | |
//! | execution | `EXEC#id` / `EXEC` | `AGENT#id#EXECS` / id (newest first) | `EXECS` / id | | |
//! | idempotency key | `IDEMPOTENCY#agent#key` / `KEY` | | | | |
//! | lead | `LEAD#id` / `LEAD` | `EXEC#id#LEADS` / `state#lead` | `EMAIL#address` / lead | `STATE#state` / lead | `DUE` / `millis#lead` (sparse) |
//! | draft | `LEAD#id` / `DRAFT#step` | | | | |
//! | sent Message-ID | `MESSAGE#id` / `MESSAGE` | | | | |
//! | research | `RESEARCH#domain` / `RESEARCH` | | | | |
//! | log entry | `EXEC#id#LOG` / `millis#uuid` | | | | |
//! | suppression | `SUPPRESS#entry` / `SUPPRESS` | | | | |
//! | API key | `APIKEY#id` / `APIKEY` | `APIKEYS` / id | | | |
//! | mailbox cursor | `MAILBOX#account/folder` / `CURSOR` | `MAILBOXES` / folder | | | |
//!
//! An execution item also carries atomic counters (`sent`, `replied`, …) and one count of leads
//! per state (`leads_<state>`), moved in the same transaction as each lead's conditional write,
//! so reading an execution's progress is one GetItem however many leads it has.

mod items;
mod store;

pub use store::DynamoStore;
