use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::LeadContact;

/// A search for people at a lead provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub enum LeadSourceSpec {
    Apollo {
        #[serde(default)]
        titles: Vec<String>,
        #[serde(default)]
        seniorities: Vec<String>,
        #[serde(default)]
        locations: Vec<String>,
        /// Employee-count ranges such as `"11,50"`.
        #[serde(default)]
        company_sizes: Vec<String>,
        /// How many people to bring in at most.
        limit: u32,
    },
}

impl LeadSourceSpec {
    pub fn provider(&self) -> &'static str {
        match self {
            Self::Apollo { .. } => "apollo",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeadSourceError {
    #[error("the lead source '{0}' is not configured: set its API key to use it")]
    NotConfigured(&'static str),
    #[error("the lead source refused the search: {0}")]
    Rejected(String),
    #[error("the lead source is unavailable: {0}")]
    Unavailable(String),
}

/// What a search brought in, and what it cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SourcedLeads {
    /// The leads themselves; the rest is the report shown with the start.
    #[serde(skip)]
    pub contacts: Vec<LeadContact>,
    /// People the search found before enrichment.
    pub found: u64,
    /// Enrichment credits the provider charged, when it says.
    pub credits_spent: u64,
    /// People found but left out (no email, or an address that would bounce).
    pub without_email: u64,
}

#[async_trait]
pub trait LeadSource: Send + Sync {
    async fn find_leads(&self, spec: &LeadSourceSpec) -> Result<SourcedLeads, LeadSourceError>;
}
