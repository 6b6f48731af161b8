use async_trait::async_trait;

use crate::domain::ResearchReport;

/// Finds facts about a company on the web. Implementations never fail a lead: when the web is
/// out of reach they return a report with no facts and a note saying why.
#[async_trait]
pub trait WebResearch: Send + Sync {
    async fn research_company(&self, company_name: &str, company_domain: &str) -> ResearchReport;
}
