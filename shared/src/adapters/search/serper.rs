use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::send_with_retry;
use crate::ports::{SearchError, SearchHit, SearchProvider};

/// Google results through serper.dev.
pub struct Serper {
    pub http: reqwest::Client,
    /// `https://google.serper.dev`; tests point it at a local server.
    pub base_url: String,
    pub api_key: SecretString,
}

#[async_trait]
impl SearchProvider for Serper {
    fn name(&self) -> &'static str {
        "serper"
    }

    async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, SearchError> {
        let url = format!("{}/search", self.base_url.trim_end_matches('/'));
        let body = json!({"q": query, "num": limit}).to_string();
        let text = send_with_retry(|| {
            self.http
                .post(&url)
                .header("X-API-KEY", self.api_key.expose_secret())
                .header("content-type", "application/json")
                .body(body.clone())
        })
        .await?;
        let answer: Value = serde_json::from_str(&text).map_err(|_| SearchError::Unavailable("the answer was not JSON".into()))?;
        Ok(answer["organic"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|hit| {
                Some(SearchHit {
                    title: hit["title"].as_str()?.trim().to_string(),
                    snippet: hit["snippet"].as_str().unwrap_or_default().trim().to_string(),
                    url: hit["link"].as_str()?.to_string(),
                })
            })
            .take(limit)
            .collect())
    }
}
