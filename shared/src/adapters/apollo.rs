//! Apollo as a lead source: a people search (free, without emails) page by page, then bulk
//! enrichment in tens to obtain work emails (charged in credits, which are reported).

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::domain::{EmailAddress, LeadContact};
use crate::ports::{LeadSource, LeadSourceError, LeadSourceSpec, SourcedLeads};

/// People per search page (Apollo's maximum).
const PER_PAGE: u32 = 100;
/// People per bulk enrichment request (Apollo's maximum).
const ENRICH_BATCH: usize = 10;
const ATTEMPTS: u32 = 3;

#[derive(Clone, Debug)]
pub struct ApolloSettings {
    /// `https://api.apollo.io/api/v1`; tests point it at a local server.
    pub base_url: String,
    pub api_key: SecretString,
    pub timeout: Duration,
}

pub struct ApolloLeadSource {
    http: reqwest::Client,
    settings: ApolloSettings,
}

impl ApolloLeadSource {
    pub fn new(settings: ApolloSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(settings.timeout).build()?;
        Ok(Self { http, settings })
    }

    /// One POST, retried on 429, 5xx and timeouts with a growing pause.
    async fn post(&self, path: &str, body: &Value) -> Result<Value, LeadSourceError> {
        let url = format!("{}/{path}", self.settings.base_url.trim_end_matches('/'));
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(400 << attempt)).await;
            }
            let sent = self
                .http
                .post(&url)
                .header("x-api-key", self.settings.api_key.expose_secret())
                .header("content-type", "application/json")
                .header("cache-control", "no-cache")
                .body(body.to_string())
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(e) => {
                    last = if e.is_timeout() { "Apollo did not answer in time".into() } else { format!("could not reach Apollo: {e}") };
                    continue;
                }
            };
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if status.is_success() {
                return serde_json::from_str(&text)
                    .map_err(|_| LeadSourceError::Unavailable(format!("Apollo answered {path} with something other than JSON")));
            }
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().or(v["message"].as_str()).map(str::to_string))
                .unwrap_or_else(|| text.chars().take(200).collect());
            match status.as_u16() {
                401 | 403 => return Err(LeadSourceError::Rejected(format!("Apollo refused the API key ({status}): {message}"))),
                429 | 500..=599 => last = format!("{status}: {message}"),
                _ => return Err(LeadSourceError::Rejected(format!("{status}: {message}"))),
            }
        }
        Err(LeadSourceError::Unavailable(format!("Apollo {path} failed {ATTEMPTS} times: {last}")))
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

/// A lead from an enriched person, when Apollo gave a deliverable-looking work email.
fn contact_from(person: &Value) -> Option<LeadContact> {
    let email = EmailAddress::parse(person["email"].as_str()?).ok()?;
    // Apollo marks addresses it could not reveal or verify; those would bounce.
    if email.as_str().starts_with("email_not_unlocked") || person["email_status"].as_str() == Some("unavailable") {
        return None;
    }
    let organization = &person["organization"];
    Some(LeadContact {
        first_name: text(&person["first_name"])?,
        last_name: text(&person["last_name"]),
        company: text(&organization["name"]).or_else(|| text(&person["organization_name"]))?,
        title: text(&person["title"]),
        company_domain: text(&organization["primary_domain"]).or_else(|| text(&organization["website_url"])),
        time_zone: text(&person["time_zone"]),
        email,
    })
}

#[async_trait]
impl LeadSource for ApolloLeadSource {
    async fn find_leads(&self, spec: &LeadSourceSpec) -> Result<SourcedLeads, LeadSourceError> {
        let LeadSourceSpec::Apollo { titles, seniorities, locations, company_sizes, limit } = spec;
        let limit = (*limit).max(1) as usize;
        let mut ids: Vec<String> = Vec::new();
        let mut page = 1;
        while ids.len() < limit {
            let body = json!({
                "person_titles": titles, "person_seniorities": seniorities, "person_locations": locations,
                "organization_num_employees_ranges": company_sizes, "page": page, "per_page": PER_PAGE,
            });
            let answer = self.post("mixed_people/api_search", &body).await?;
            let people = answer["people"].as_array().cloned().unwrap_or_default();
            if people.is_empty() {
                break;
            }
            ids.extend(people.iter().filter_map(|p| text(&p["id"])).take(limit - ids.len()));
            let total_pages = answer["pagination"]["total_pages"].as_u64().unwrap_or(page);
            if page >= total_pages {
                break;
            }
            page += 1;
        }
        let mut sourced = SourcedLeads { found: ids.len() as u64, ..Default::default() };
        for batch in ids.chunks(ENRICH_BATCH) {
            let details: Vec<Value> = batch.iter().map(|id| json!({"id": id})).collect();
            let answer = self.post("people/bulk_match", &json!({"details": details, "reveal_personal_emails": false})).await?;
            sourced.credits_spent += answer["credits_consumed"].as_u64().unwrap_or(0);
            for person in answer["matches"].as_array().into_iter().flatten() {
                match contact_from(person) {
                    Some(contact) => sourced.contacts.push(contact),
                    None => sourced.without_email += 1,
                }
            }
        }
        sourced.without_email += sourced.found.saturating_sub(sourced.contacts.len() as u64 + sourced.without_email);
        Ok(sourced)
    }
}
