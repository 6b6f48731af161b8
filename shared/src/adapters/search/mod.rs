//! Web search providers for research: Serper (a keyed Google search API) and DuckDuckGo's HTML
//! results page as the keyless fallback.

mod duckduckgo;
mod serper;

pub use duckduckgo::DuckDuckGo;
pub use serper::Serper;

use std::time::Duration;

use crate::ports::SearchError;

/// GETs or POSTs once more after a 429, a 5xx or a timeout, with a short pause.
pub(crate) async fn send_with_retry(request: impl Fn() -> reqwest::RequestBuilder) -> Result<String, SearchError> {
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(300 << attempt)).await;
        }
        match request().send().await {
            Ok(response) if response.status().is_success() => {
                return response.text().await.map_err(|e| SearchError::Unavailable(e.to_string()));
            }
            Ok(response) if response.status().as_u16() == 429 || response.status().is_server_error() => {
                last = response.status().to_string();
            }
            Ok(response) => return Err(SearchError::Refused(response.status().to_string())),
            Err(e) => last = if e.is_timeout() { "timed out".into() } else { e.to_string() },
        }
    }
    Err(SearchError::Unavailable(last))
}
