//! The execution log: what happened to each lead, in order, readable through the API.

use serde::{Deserialize, Serialize};

use super::{ExecutionId, LeadId, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionLogEntry {
    pub execution_id: ExecutionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<LeadId>,
    pub at: Timestamp,
    pub level: LogLevel,
    /// A stable, machine-readable name such as `lead.sent` or `lead.parked`.
    pub event: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

impl ExecutionLogEntry {
    pub fn lead(
        level: LogLevel,
        execution_id: ExecutionId,
        lead_id: LeadId,
        event: &str,
        message: impl Into<String>,
        at: Timestamp,
    ) -> Self {
        Self {
            execution_id,
            lead_id: Some(lead_id),
            at,
            level,
            event: event.into(),
            message: message.into(),
            data: serde_json::Value::Null,
        }
    }

    pub fn execution(level: LogLevel, execution_id: ExecutionId, event: &str, message: impl Into<String>, at: Timestamp) -> Self {
        Self { execution_id, lead_id: None, at, level, event: event.into(), message: message.into(), data: serde_json::Value::Null }
    }

    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}
