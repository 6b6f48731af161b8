pub use crate::domain::TokenUsage;
use crate::domain::{Agent, EmailDraft, Lead, ResearchReport};
use async_trait::async_trait;

pub struct DraftRequest<'a> {
    pub agent: &'a Agent,
    pub lead: &'a Lead,
    pub step: u32,
    pub research: Option<&'a ResearchReport>,
    /// The subjects already sent to this lead, oldest first, so a follow-up can refer back.
    pub previous_subjects: Vec<String>,
    /// Why the previous attempt at this draft was refused, for a drafter that can do better.
    pub feedback: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftOutcome {
    pub draft: EmailDraft,
    pub usage: Option<TokenUsage>,
    /// The prompt and the raw response, for the execution log (secrets never appear here).
    pub transcript: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("drafting failed for now: {0}")]
    Retryable(String),
    #[error("no acceptable draft: {0}")]
    Rejected(String),
    /// The model cannot be used as configured (a key refused, no access, an unknown model):
    /// every draft would fail the same way, so the execution pauses until the setting is fixed.
    #[error("the model is not usable as configured: {0}")]
    Configuration(String),
}

/// Writes the email for one step to one lead: a template engine or an LLM.
#[async_trait]
pub trait Drafter: Send + Sync {
    async fn draft(&self, request: DraftRequest<'_>) -> Result<DraftOutcome, DraftError>;
}
