//! Bounces: what a mail server says about a message it could not deliver. Standard delivery
//! status notifications (RFC 3464) are read field by field; the many servers that still answer
//! in prose (qmail, Exim, Gmail, Yahoo, ...) are read for the failed address and the code.

use mail_parser::{Message, MimeHeaders};
use serde::Serialize;

use super::ReturnedOriginal;
use super::text::{self, address_field, field, report_blocks};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BounceReport {
    /// The address that could not be reached.
    pub recipient: Option<String>,
    /// The enhanced status code (RFC 3463), for example `5.1.1`.
    pub status: Option<String>,
    /// What the receiving server said, when it said something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
    /// 5.x.x: the address will never work. 4.x.x: it may work later.
    pub permanent: bool,
}

/// What a delivery status notification reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Failed(BounceReport),
    /// A success notice (`Action: delivered`, `2.x.x`): nothing to act on.
    Delivered {
        recipient: Option<String>,
        status: Option<String>,
    },
}

fn is_delivery_status_part(part: &mail_parser::MessagePart<'_>) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("message")
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("delivery-status") || s.eq_ignore_ascii_case("global-delivery-status"))
    })
}

pub fn is_report_of_type(message: &Message<'_>, report_type: &str) -> bool {
    message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct.attribute("report-type").is_some_and(|t| t.eq_ignore_ascii_case(report_type))
    })
}

/// Reads a standard delivery status notification: its `message/delivery-status` part.
pub fn from_status_report(message: &Message<'_>, explanation: &str, original: Option<&ReturnedOriginal>) -> Option<DeliveryOutcome> {
    let report =
        message.parts.iter().filter(|p| is_delivery_status_part(p)).find_map(super::part_text).or_else(|| report_in_text(message))?;
    let blocks = report_blocks(&report);
    let recipients: Vec<&Vec<(String, String)>> = blocks
        .iter()
        .filter(|b| field(b, "final-recipient").is_some() || field(b, "original-recipient").is_some() || field(b, "action").is_some())
        .collect();
    let failed = recipients.iter().find(|b| field(b, "action").is_some_and(|a| !is_success_action(a))).or(recipients.first());
    let Some(block) = failed else {
        // A report part with no recipient fields: fall back to the human-readable part.
        return Some(DeliveryOutcome::Failed(from_prose(message, explanation, original)));
    };
    let recipient = field(block, "original-recipient")
        .filter(|v| v.to_ascii_lowercase().starts_with("rfc822"))
        .and_then(address_field)
        .or_else(|| field(block, "final-recipient").and_then(address_field))
        .or_else(|| failed_recipient_in_prose(message, explanation, original));
    let diagnostic = field(block, "diagnostic-code").map(|d| d.split_once(';').map_or(d, |(_, text)| text).trim().to_string());
    let action = field(block, "action").map(str::to_ascii_lowercase);
    let status = field(block, "status")
        .and_then(|s| text::enhanced_status_in(s, true))
        .or_else(|| diagnostic.as_deref().and_then(|d| text::enhanced_status_in(d, false)))
        .or_else(|| diagnostic.as_deref().and_then(text::smtp_reply_class_in))
        .or_else(|| text::enhanced_status_in(explanation, false))
        .or_else(|| match action.as_deref() {
            Some("delayed") => Some("4.0.0".into()),
            Some(a) if is_success_action(a) => Some("2.0.0".into()),
            _ => Some(inferred_status(explanation).into()),
        });
    if action.as_deref().is_some_and(is_success_action) || status.as_deref().is_some_and(|s| s.starts_with('2')) {
        return Some(DeliveryOutcome::Delivered { recipient, status });
    }
    let permanent = status.as_deref().is_none_or(|s| s.starts_with('5'));
    Some(DeliveryOutcome::Failed(BounceReport { recipient, status, diagnostic, permanent }))
}

/// Some servers send a MIME report without MIME headers, so no parser sees its parts: the report
/// is then found by its content type line in the text.
fn report_in_text(message: &Message<'_>) -> Option<String> {
    let body = message.parts.first().and_then(super::part_text)?;
    let start = body.to_ascii_lowercase().find("content-type: message/delivery-status")?;
    let report = &body[start..];
    let report = report.split_once('\n').map_or("", |(_, rest)| rest);
    let end = report.lines().position(|l| l.starts_with("--")).unwrap_or(usize::MAX);
    Some(report.lines().take(end).collect::<Vec<_>>().join("\n"))
}

fn is_success_action(action: &str) -> bool {
    let action = action.trim().to_ascii_lowercase();
    action.starts_with("delivered") || action.starts_with("relayed") || action.starts_with("expanded")
}

/// Sender names and subjects mail servers use for bounces written in prose.
const DAEMON_LOCAL_PARTS: &[&str] = &["mailer-daemon", "postmaster", "mail-daemon", "maildaemon", "mailerdaemon", "bounce", "bounces"];
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliver",
    "undelivered",
    "delivery status notification",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "failure notice",
    "failure delivery",
    "returned mail",
    "mail delivery failed",
    "could not be delivered",
    "couldn't be delivered",
    "non-delivery",
    "nondeliverable",
    "non delivery",
    "mail failure",
    "delivery notification",
    "not delivered",
    "delivery problem",
    "delayed mail",
    "delivery delayed",
    "mail system error",
    "warning: could not send",
];

pub fn looks_like_bounce(message: &Message<'_>, subject: &str) -> bool {
    if message.header_raw("X-Failed-Recipients").is_some() {
        return true;
    }
    let from = message.from().and_then(|a| a.first());
    let from_daemon = from.is_some_and(|a| {
        let local = a.address().and_then(|x| x.split('@').next()).unwrap_or_default().to_ascii_lowercase();
        let name = a.name().unwrap_or_default().to_ascii_lowercase();
        DAEMON_LOCAL_PARTS.iter().any(|d| local == *d || local.starts_with(&format!("{d}+")))
            || name.contains("mail delivery")
            || name.contains("mailer-daemon")
    }) || from.is_some_and(|a| a.address().is_none_or(str::is_empty));
    let subject = subject.to_ascii_lowercase();
    let bounce_subject = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    from_daemon
        || (bounce_subject && message.header_raw("Return-Path").is_some_and(|r| r.trim() == "<>"))
        || (bounce_subject && !subject.starts_with("re:"))
}

/// Reads a bounce written in prose.
pub fn from_prose(message: &Message<'_>, explanation: &str, original: Option<&ReturnedOriginal>) -> BounceReport {
    let recipient = failed_recipient_in_prose(message, explanation, original);
    let status = text::enhanced_status_in(explanation, false)
        .or_else(|| text::smtp_reply_class_in(explanation))
        .unwrap_or_else(|| inferred_status(explanation).to_string());
    let diagnostic = diagnostic_line(explanation);
    let permanent = status.starts_with('5');
    BounceReport { recipient, status: Some(status), diagnostic, permanent }
}

fn is_daemon(address: &str) -> bool {
    DAEMON_LOCAL_PARTS.contains(&address.split('@').next().unwrap_or_default())
}

/// A bounce that gives no code: "permanent" and "temporary" in its words decide.
fn inferred_status(explanation: &str) -> &'static str {
    let lower = explanation.to_ascii_lowercase();
    let temporary =
        ["temporar", "delayed", "will retry", "will be retried", "still trying", "not yet been delivered", "deferred", "try again later"];
    if lower.contains("permanent") || !temporary.iter().any(|t| lower.contains(t)) { "5.0.0" } else { "4.0.0" }
}

fn diagnostic_line(explanation: &str) -> Option<String> {
    explanation
        .lines()
        .map(str::trim)
        .find(|line| text::enhanced_status_in(line, false).is_some() || text::smtp_reply_class_in(line).is_some())
        .map(|line| line.chars().take(300).collect())
}

/// The failed address of a prose bounce: `X-Failed-Recipients`, else the first address in the
/// explanation that is neither the bouncing server nor us, else the returned copy's `To`.
fn failed_recipient_in_prose(message: &Message<'_>, explanation: &str, original: Option<&ReturnedOriginal>) -> Option<String> {
    if let Some(header) = message.header_raw("X-Failed-Recipients")
        && let Some(address) = text::addresses_in(header).into_iter().next()
    {
        return Some(address);
    }
    // Our own address: the returned copy's sender, else the bounce's addressee.
    let ours: Vec<String> = match original.and_then(|o| o.from.clone()) {
        Some(sender) => vec![sender],
        None => super::addresses_of(message.to()),
    };
    let is_ours_or_daemon = |address: &str| ours.iter().any(|o| o == address) || is_daemon(address);
    // qmail's "<jane@acme.example>:" and Exim's or Gmail's indented address lines name the
    // failed recipient on a line of its own.
    let on_own_line = explanation.lines().find_map(|line| {
        let bare = line.trim().trim_end_matches(':').trim_start_matches('<').trim_end_matches('>');
        let found = text::addresses_in(bare);
        (found.len() == 1 && found[0] == bare.to_ascii_lowercase() && !is_daemon(&found[0])).then(|| found[0].clone())
    });
    on_own_line
        .or_else(|| text::addresses_in(explanation).into_iter().find(|a| !is_ours_or_daemon(a)))
        .or_else(|| original.and_then(|o| o.to.first().cloned()))
}
