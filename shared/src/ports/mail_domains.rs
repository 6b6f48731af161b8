//! Whether a recipient's domain can receive mail at all, and what a sending domain publishes for
//! receivers to check it (SPF, DMARC). Email to a domain without mail servers only bounces, and
//! bounces cost the sender's reputation.

use async_trait::async_trait;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainVerdict {
    /// It has an MX record, or (without one) an address, which RFC 5321 makes its mail server.
    Accepts,
    /// It does not exist, has neither MX nor address records, or publishes a null MX (RFC 7505).
    Undeliverable(String),
}

/// A sending domain's records as receivers see them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SendingDomainRecords {
    pub domain: String,
    pub spf: Option<String>,
    pub dmarc: Option<String>,
    /// What a receiver would hold against the domain (no SPF, two SPF records, no DMARC).
    pub problems: Vec<String>,
}

#[async_trait]
pub trait MailDomains: Send + Sync {
    /// `Err` when the answer could not be had (a timeout, SERVFAIL): nothing is known then.
    async fn verdict(&self, domain: &str) -> Result<DomainVerdict, String>;
    async fn sending_records(&self, domain: &str) -> Result<SendingDomainRecords, String>;
}

/// For a run that sends nothing real (the local outbox): every domain is taken to accept mail,
/// and no sending records are looked up.
pub struct UncheckedDomains;

#[async_trait]
impl MailDomains for UncheckedDomains {
    async fn verdict(&self, _domain: &str) -> Result<DomainVerdict, String> {
        Ok(DomainVerdict::Accepts)
    }

    async fn sending_records(&self, domain: &str) -> Result<SendingDomainRecords, String> {
        Err(format!("DNS checks are off; {domain}'s records were not looked up"))
    }
}
