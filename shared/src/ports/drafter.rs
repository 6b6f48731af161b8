pub use crate::domain::TokenUsage;
use crate::domain::grounding::UnsupportedClaim;
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

/// A draft to check against the sources its request allowed.
pub struct VerifyRequest<'a> {
    pub agent: &'a Agent,
    pub lead: &'a Lead,
    pub research: Option<&'a ResearchReport>,
    pub subject: &'a str,
    pub body: &'a str,
}

/// What a verifier found: the claims it could not trace to a source, and what the check cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Verification {
    pub unsupported: Vec<UnsupportedClaim>,
    pub usage: TokenUsage,
    /// The prompt, the answer and the latency, for the execution log.
    pub transcript: serde_json::Value,
}

/// Writes the email for one step to one lead: a template engine or an LLM.
#[async_trait]
pub trait Drafter: Send + Sync {
    async fn draft(&self, request: DraftRequest<'_>) -> Result<DraftOutcome, DraftError>;

    /// A second, independent reading of a draft's claims, by a model asked to trace each to
    /// its source. `None` when there is no model to ask (templates claim only what they fill).
    async fn verify(&self, _request: VerifyRequest<'_>) -> Result<Option<Verification>, DraftError> {
        Ok(None)
    }

    /// What a person's reply (its new text, without the quoted history) means for the sale, read
    /// by a model. `None` when there is no model to ask: the rules decide.
    async fn read_reply(&self, _reply: &str) -> Result<Option<crate::domain::IntentReading>, DraftError> {
        Ok(None)
    }
}
