use async_trait::async_trait;
use scraper::{Html, Selector};

use super::send_with_retry;
use crate::adapters::site_research::bounded_markup;
use crate::ports::{SearchError, SearchHit, SearchProvider};

/// DuckDuckGo's HTML results page: no key, so it is the fallback when no search API is set.
pub struct DuckDuckGo {
    pub http: reqwest::Client,
    /// `https://html.duckduckgo.com`; tests point it at a local server.
    pub base_url: String,
}

/// Result links go through a redirect (`//duckduckgo.com/l/?uddg=<target>`); the target is kept.
fn target_of(href: &str) -> Option<String> {
    let url = reqwest::Url::parse(&if href.starts_with("//") { format!("https:{href}") } else { href.to_string() }).ok()?;
    match url.query_pairs().find(|(k, _)| k == "uddg") {
        Some((_, target)) => Some(target.into_owned()),
        None => Some(url.to_string()),
    }
}

pub fn parse_results(html: &str, limit: usize) -> Vec<SearchHit> {
    let document = Html::parse_document(bounded_markup(html));
    let (Ok(result), Ok(link), Ok(snippet)) =
        (Selector::parse(".result"), Selector::parse("a.result__a"), Selector::parse(".result__snippet"))
    else {
        return Vec::new();
    };
    let clean = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
    document
        .select(&result)
        .filter_map(|r| {
            let a = r.select(&link).next()?;
            Some(SearchHit {
                title: clean(a.text().collect()),
                snippet: r.select(&snippet).next().map(|s| clean(s.text().collect())).unwrap_or_default(),
                url: target_of(a.value().attr("href")?)?,
            })
        })
        .filter(|hit| !hit.title.is_empty())
        .take(limit)
        .collect()
}

#[async_trait]
impl SearchProvider for DuckDuckGo {
    fn name(&self) -> &'static str {
        "duckduckgo"
    }

    async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, SearchError> {
        let url = format!("{}/html/", self.base_url.trim_end_matches('/'));
        let html = send_with_retry(|| self.http.get(&url).query(&[("q", query)])).await?;
        Ok(parse_results(&html, limit))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_are_read_with_their_real_target_and_snippet() {
        let html = r#"<div class="result"><a class="result__a" href="//duckduckgo.com/l/?uddg=https%3A%2F%2Fnews.example%2Finitech-denver&rut=x">Initech opens
            Denver office</a><a class="result__snippet">Initech, the payroll company, opened an office in Denver.</a></div>
            <div class="result"><a class="result__a" href="https://initech.example/about">About Initech</a></div>"#;
        let hits = super::parse_results(html, 5);
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].url, "https://news.example/initech-denver");
        assert_eq!(hits[0].title, "Initech opens Denver office");
        assert_eq!(hits[0].snippet, "Initech, the payroll company, opened an office in Denver.");
        assert_eq!(hits[1].url, "https://initech.example/about");
        assert_eq!(super::parse_results("<html>no results</html>", 5), vec![]);
    }
}
