//! The suppression list: addresses and whole domains that must never be emailed again. A domain
//! entry covers its subdomains: `acme.com` suppresses `ada@eu.acme.com` too.

use serde::{Deserialize, Serialize};

use super::{EmailAddress, FieldIssue, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// A lower-case address (`jane@acme.com`) or a whole domain (`acme.com`).
    pub entry: String,
    /// `unsubscribed`, `hard_bounce`, `complaint`, `manual`.
    pub reason: String,
    /// What put it there: the unsubscribe link, a bounce or reply read from a mailbox, the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub created_at: Timestamp,
}

/// Reasons a person may give when adding an entry through the API.
pub const MANUAL_REASONS: [&str; 4] = ["manual", "unsubscribed", "hard_bounce", "complaint"];

impl Suppression {
    /// The entries that would suppress `address`: the address itself, its domain and every
    /// parent domain of it (never a bare top-level domain).
    pub fn keys_for(address: &EmailAddress) -> Vec<String> {
        let domain = address.domain().to_ascii_lowercase();
        let mut keys = vec![address.dedupe_key()];
        let mut rest = domain.as_str();
        while rest.contains('.') {
            keys.push(rest.to_string());
            rest = rest.split_once('.').map_or("", |(_, parent)| parent);
        }
        keys
    }

    /// An entry a person adds: an address or a domain, checked and written the way lookups
    /// read it (lower case, no trailing dot).
    pub fn entry_from(raw: &str) -> Result<String, FieldIssue> {
        let raw = raw.trim().trim_end_matches('.');
        if raw.contains('@') {
            return EmailAddress::parse(raw).map(|a| a.dedupe_key()).map_err(|e| FieldIssue::new("entry", e.0));
        }
        let domain = raw.to_ascii_lowercase();
        if is_domain(&domain) {
            Ok(domain)
        } else {
            Err(FieldIssue::new("entry", format!("'{raw}' is neither an email address nor a domain such as acme.com")))
        }
    }
}

/// A host name of at least two labels, each 1 to 63 letters, digits or inner hyphens, ending in
/// a top-level domain that is not all digits.
fn is_domain(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    let valid_label = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(valid_label)
        && !labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_covered_by_its_domain_and_every_parent_domain_but_not_the_tld() {
        let address = EmailAddress::parse("Ada@EU.Sales.Acme.com").unwrap();
        assert_eq!(Suppression::keys_for(&address), ["ada@eu.sales.acme.com", "eu.sales.acme.com", "sales.acme.com", "acme.com"]);
    }

    #[test]
    fn entries_are_addresses_or_domains_and_anything_else_names_the_field() {
        assert_eq!(Suppression::entry_from(" Ada@Initech.example ").unwrap(), "ada@initech.example");
        assert_eq!(Suppression::entry_from("Globex.example.").unwrap(), "globex.example");
        for bad in ["", "com", "not a domain", "-bad.example", "x@", "192.168.0.1", "a..b"] {
            assert_eq!(Suppression::entry_from(bad).unwrap_err().field, "entry", "{bad}");
        }
    }
}
