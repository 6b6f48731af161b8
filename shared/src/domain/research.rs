//! What research found about a company, and the email drafted from it. Both are kept apart
//! from the lead record: they are large and read only by the step that needs them.

use serde::{Deserialize, Serialize};

use super::{LeadId, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResearchFact {
    pub text: String,
    /// Where the fact was read, so a reviewer can check it.
    pub source_url: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResearchReport {
    pub company_domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub facts: Vec<ResearchFact>,
    /// The company's slogans and headlines: its marketing, kept apart from facts. A draft may
    /// take a name from them, never a figure or an event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taglines: Vec<ResearchFact>,
    /// Why the report is thin, when it is (site unreachable, research switched off, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub gathered_at: Timestamp,
}

impl ResearchReport {
    pub fn empty(company_domain: &str, note: impl Into<String>, gathered_at: Timestamp) -> Self {
        Self {
            company_domain: company_domain.into(),
            summary: None,
            facts: Vec::new(),
            taglines: Vec::new(),
            note: Some(note.into()),
            gathered_at,
        }
    }
}

/// What a model call cost, counted on the execution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailDraft {
    pub lead_id: LeadId,
    pub step: u32,
    pub subject: String,
    pub body: String,
    /// The research facts the draft relies on, verbatim.
    pub facts_used: Vec<String>,
    /// `template` or `llm:<model>`.
    pub drafted_by: String,
    pub created_at: Timestamp,
}
