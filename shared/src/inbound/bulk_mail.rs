//! Bulk and list mail: newsletters, announcements, marketing sends. A lead's company newsletter
//! may arrive from the lead's own address; it is never an answer to our email.

use mail_parser::Message;

/// Headers only a bulk sender adds: list headers (RFC 2369, RFC 2919), a bulk precedence, and
/// the campaign headers of the common sending platforms.
const CAMPAIGN_HEADERS: &[&str] = &[
    "List-Id",
    "List-Post",
    "Feedback-ID",
    "X-Campaign-Id",
    "X-CampaignID",
    "X-MC-User",
    "X-Mailchimp-Campaign",
    "X-SG-EID",
    "X-CSA-Complaints",
    "X-HubSpot-Message-Id",
    "X-Marketo-Message-Id",
    "X-Listmonk-Campaign",
];

/// Whether the message is bulk or list mail, and the list it names when it names one.
pub fn bulk_list(message: &Message<'_>) -> Option<String> {
    let header = |name: &str| message.header_raw(name).map(|v| v.trim().to_string());
    if let Some(list) = header("List-Id") {
        return Some(list);
    }
    let precedence = header("Precedence").map(|p| p.to_ascii_lowercase());
    let bulk = precedence.as_deref().is_some_and(|p| matches!(p, "bulk" | "list" | "junk"))
        || header("List-Unsubscribe").is_some()
        || CAMPAIGN_HEADERS.iter().any(|h| header(h).is_some());
    bulk.then(|| header("From").unwrap_or_default())
}
