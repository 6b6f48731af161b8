//! A deliverable-looking email address. The check is deliberately strict: an address that a
//! mail server would reject costs a bounce, and bounces hurt the sender's reputation.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEmailAddress(pub String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmailAddress> {
        let raw = raw.trim();
        let invalid = |why: &str| InvalidEmailAddress(format!("'{raw}' is not a valid email address: {why}"));
        if raw.is_empty() {
            return Err(InvalidEmailAddress("an email address is required".into()));
        }
        if raw.len() > 254 {
            return Err(invalid("longer than 254 characters"));
        }
        let (local, domain) = raw.rsplit_once('@').ok_or_else(|| invalid("no '@'"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(invalid("the part before '@' must have 1 to 64 characters"));
        }
        let local_ok = local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !local_ok {
            return Err(invalid("the part before '@' has characters mail servers reject"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
            && labels.last().is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()));
        if !domain_ok {
            return Err(invalid("the domain is not a valid host name"));
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }

    /// The key two addresses are compared by: mailbox providers treat the local part as
    /// case-insensitive in practice, so `Jane@X.com` and `jane@x.com` are one lead.
    pub fn dedupe_key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        EmailAddress::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_business_addresses_and_lowercases_the_domain() {
        let address = EmailAddress::parse(" Jane.Doe+sales@Acme.Example ").unwrap();
        assert_eq!(address.as_str(), "Jane.Doe+sales@acme.example");
        assert_eq!(address.domain(), "acme.example");
        assert_eq!(address.dedupe_key(), "jane.doe+sales@acme.example");
    }

    #[test]
    fn rejects_what_a_mail_server_would_bounce() {
        for bad in [
            "",
            "jane",
            "jane@",
            "@acme.com",
            "jane@acme",
            "ja ne@acme.com",
            "jane@acme..com",
            "jane@-acme.com",
            "jane..d@acme.com",
            "jane@acme.c0m.1",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
