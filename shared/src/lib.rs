//! The serverless sales agent: its domain, the ports it talks through, the step handlers that
//! move leads through research → draft → send, the REST router, and the adapters that connect
//! the ports to the embedded store, the local outbox and (later) AWS.
//!
//! Every Lambda in `functions/` and the one-process local mode are thin wirings of this crate.

pub mod adapters;
pub mod admin;
pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod inbound;
pub mod lambda;
pub mod local;
pub mod ports;
pub mod runtime;
pub mod telemetry;
