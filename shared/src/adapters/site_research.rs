//! Research from the company's own web site (the home page's title, description and headline,
//! and the About page's first paragraphs) and from a web search, each fact kept with the URL it
//! was read from. What a page says is untrusted: sentences that are instructions are dropped and
//! slogans kept apart from facts (`research_text`), and pages are fetched only from public
//! addresses (`safe_fetch`). Any failure (no network, a slow or hostile site) yields an empty
//! report with a note, never a failed lead.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scraper::{Html, Selector};

use super::safe_fetch::{FetchPolicy, guarded_client};
use crate::domain::lead::not_a_host_name;
use crate::domain::research_text::sort_passages;
use crate::domain::{ResearchFact, ResearchReport};
use crate::ports::{Clock, SearchProvider, WebResearch};

#[derive(Clone, Debug)]
pub struct SiteResearchLimits {
    /// The whole fetch, connection included.
    pub timeout: Duration,
    /// Bytes read from a page at most; the rest is ignored.
    pub max_page_bytes: usize,
}

impl Default for SiteResearchLimits {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(8), max_page_bytes: 512 * 1024 }
    }
}

/// What research may reach: public addresses, and exact `ip:port` exceptions; names resolved
/// by the system's resolver or by these name servers.
#[derive(Clone, Debug, Default)]
pub struct NetworkAccess {
    pub exceptions: Vec<std::net::SocketAddr>,
    pub name_servers: Option<Vec<std::net::SocketAddr>>,
}

/// Redirects followed per page at most.
const MAX_REDIRECTS: usize = 4;

pub struct SiteResearch {
    /// A web search for what the company's own site does not say (news, announcements).
    pub search: Option<Arc<dyn SearchProvider>>,
    http: reqwest::Client,
    policy: Arc<FetchPolicy>,
    /// `{domain}` is replaced by the company domain; tests point it at a local server.
    url_pattern: String,
    limits: SiteResearchLimits,
    clock: Arc<dyn Clock>,
}

impl SiteResearch {
    pub fn with_search(mut self, search: Option<Arc<dyn SearchProvider>>) -> Self {
        self.search = search;
        self
    }

    pub fn new(
        url_pattern: impl Into<String>,
        limits: SiteResearchLimits,
        access: NetworkAccess,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let policy = Arc::new(FetchPolicy::with_exceptions(access.exceptions));
        let resolver = match &access.name_servers {
            Some(servers) => super::dns::resolver_for(servers),
            None => super::dns::system_resolver()?,
        };
        let http = guarded_client(policy.clone(), resolver, limits.timeout, MAX_REDIRECTS)?;
        Ok(Self { search: None, http, policy, url_pattern: url_pattern.into(), limits, clock })
    }

    async fn fetch_page(&self, url: &str) -> Result<String, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url} is not a link: {e}"))?;
        if let Some(why) = self.policy.refusal(&parsed) {
            return Err(why);
        }
        let mut response = self.http.get(parsed).send().await.map_err(|e| format!("could not fetch {url}: {}", error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading {url} failed: {e}"))? {
            let room = self.limits.max_page_bytes.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= self.limits.max_page_bytes {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// An error with its causes: a refused redirect or address says why only in its source.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn clean(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Bytes of a page the parser sees at most: the head and the first screen of the body.
const PARSED_BYTES: usize = 48 * 1024;
/// Tags the parser sees at most. Deeply nested markup makes an HTML5 parser's work grow with
/// the square of the depth, so a hostile page could otherwise stall research for minutes.
const PARSED_TAGS: usize = 3_000;

/// The part of a page worth parsing: its head and first screen, bounded in size and tags.
pub fn bounded_markup(html: &str) -> &str {
    let mut end = html.len().min(PARSED_BYTES);
    while !html.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = &html[..end];
    match prefix.match_indices('<').nth(PARSED_TAGS) {
        Some((cut, _)) => &prefix[..cut],
        None => prefix,
    }
}

/// Facts a reader sees first on a home page: the title, the description and the main headline.
pub fn facts_from_home_page(html: &str, source_url: &str) -> (Option<String>, Vec<ResearchFact>) {
    let document = Html::parse_document(bounded_markup(html));
    let first_text = |selector: &str| {
        Selector::parse(selector).ok().and_then(|s| document.select(&s).next().map(|e| clean(&e.text().collect::<String>())))
    };
    let meta = |selector: &str| {
        Selector::parse(selector).ok().and_then(|s| document.select(&s).next().and_then(|e| e.value().attr("content").map(clean)))
    };
    let description = meta("meta[name=description]").or_else(|| meta("meta[property='og:description']"));
    let mut facts = Vec::new();
    // Most specific first: the description says what the company does, the title least.
    for text in [description.clone(), first_text("h1"), first_text("title")].into_iter().flatten() {
        let text: String = text.chars().take(300).collect();
        if text.len() > 3 && !facts.iter().any(|f: &ResearchFact| f.text == text) {
            facts.push(ResearchFact { text, source_url: source_url.to_string() });
        }
    }
    (description, facts)
}

/// Paragraphs from an About page worth citing: readable sentences, not menus or legal lines.
pub fn facts_from_about_page(html: &str, source_url: &str) -> Vec<ResearchFact> {
    let document = Html::parse_document(bounded_markup(html));
    let Ok(paragraphs) = Selector::parse("p") else { return Vec::new() };
    document
        .select(&paragraphs)
        .map(|p| clean(&p.text().collect::<String>()))
        .filter(|text| (60..=300).contains(&text.chars().count()) && text.contains(' ') && !text.to_lowercase().contains("cookie"))
        .take(3)
        .map(|text| ResearchFact { text, source_url: source_url.to_string() })
        .collect()
}

/// Search results the draft may cite: a snippet with its page, about this company.
const SEARCH_FACTS: usize = 3;

impl SiteResearch {
    async fn site_facts(&self, company_domain: &str) -> (Option<String>, Vec<ResearchFact>, Option<String>) {
        let url = self.url_pattern.replace("{domain}", company_domain);
        match self.fetch_page(&url).await {
            Ok(html) => {
                let (summary, passages) = facts_from_home_page(&html, &url);
                let note = passages.is_empty().then(|| format!("{url} had no title, description or headline"));
                (summary, passages, note)
            }
            Err(why) => (None, Vec::new(), Some(why)),
        }
    }

    /// The About page's paragraphs; a site without one simply has none.
    async fn about_facts(&self, company_domain: &str) -> Vec<ResearchFact> {
        let home = self.url_pattern.replace("{domain}", company_domain);
        let url = if home.ends_with('/') { format!("{home}about") } else { format!("{home}/about") };
        match self.fetch_page(&url).await {
            Ok(html) => facts_from_about_page(&html, &url),
            Err(_) => Vec::new(),
        }
    }

    async fn search_facts(&self, company_name: &str, company_domain: &str) -> (Vec<ResearchFact>, Option<String>) {
        let Some(search) = &self.search else { return (Vec::new(), None) };
        let query = format!("\"{company_name}\" {company_domain}");
        match search.search(&query, SEARCH_FACTS * 2).await {
            Ok(hits) => {
                let facts = hits
                    .into_iter()
                    .filter(|hit| !hit.snippet.is_empty())
                    .map(|hit| ResearchFact { text: hit.snippet.chars().take(300).collect(), source_url: hit.url })
                    .take(SEARCH_FACTS)
                    .collect();
                (facts, None)
            }
            Err(why) => (Vec::new(), Some(format!("{} search: {why}", search.name()))),
        }
    }
}

#[async_trait]
impl WebResearch for SiteResearch {
    async fn research_company(&self, company_name: &str, company_domain: &str) -> ResearchReport {
        if let Some(why) = not_a_host_name(company_domain) {
            return ResearchReport::empty(company_domain, why, self.clock.now());
        }
        let ((summary, mut passages, site_note), about, (found, search_note)) = tokio::join!(
            self.site_facts(company_domain),
            self.about_facts(company_domain),
            self.search_facts(company_name, company_domain)
        );
        for passage in about.into_iter().chain(found) {
            if !passages.iter().any(|f| f.text == passage.text) {
                passages.push(passage);
            }
        }
        let (facts, taglines, dropped) = sort_passages(passages);
        // The description as a fact, with what it said to a model taken out.
        let summary = summary.and_then(|s| facts.iter().find(|f| s.contains(&f.text)).map(|f| f.text.clone()));
        let dropped_note =
            (dropped > 0).then(|| format!("{dropped} sentence(s) addressed to a model or to the reader were not kept as facts"));
        let notes: Vec<String> = [site_note, search_note, dropped_note].into_iter().flatten().collect();
        if facts.is_empty() {
            tracing::info!(company = company_name, domain = company_domain, why = %notes.join("; "), "research found nothing; drafting from the lead record");
        }
        ResearchReport {
            company_domain: company_domain.into(),
            summary,
            facts,
            taglines,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
            gathered_at: self.clock.now(),
        }
    }
}

/// Research switched off (no network, or a team that drafts from the lead record only).
pub struct NoResearch {
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl WebResearch for NoResearch {
    async fn research_company(&self, _company_name: &str, company_domain: &str) -> ResearchReport {
        ResearchReport::empty(company_domain, "web research is switched off", self.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bounded_prefix_of_a_page_is_parsed() {
        let nested = "<div>".repeat(100_000);
        assert!(bounded_markup(&nested).len() <= PARSED_BYTES);
        assert_eq!(bounded_markup(&nested).matches('<').count(), PARSED_TAGS);
        let accented = "é".repeat(PARSED_BYTES);
        assert!(bounded_markup(&accented).len() <= PARSED_BYTES, "cut on a character boundary");
        assert_eq!(bounded_markup("<title>x</title>"), "<title>x</title>");
    }

    #[test]
    fn reads_title_description_and_headline_with_their_source() {
        let html = r#"<html><head><title> Initech | Payroll
            software </title><meta name="description" content="Payroll for 4,000 mid-size firms."></head>
            <body><h1>Payroll that runs itself</h1></body></html>"#;
        let (summary, facts) = facts_from_home_page(html, "https://initech.example/");
        assert_eq!(summary.as_deref(), Some("Payroll for 4,000 mid-size firms."));
        let texts: Vec<&str> = facts.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(texts, ["Payroll for 4,000 mid-size firms.", "Payroll that runs itself", "Initech | Payroll software"]);
        assert!(facts.iter().all(|f| f.source_url == "https://initech.example/"));
    }
}
