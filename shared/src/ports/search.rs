use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One web search result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub title: String,
    pub snippet: String,
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("the search provider refused: {0}")]
    Refused(String),
    #[error("the search provider is unavailable: {0}")]
    Unavailable(String),
}

/// A web search engine: a keyed API, or a keyless fallback.
#[async_trait]
pub trait SearchProvider: Send + Sync {
    fn name(&self) -> &'static str;
    async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, SearchError>;
}
