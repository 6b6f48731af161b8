//! Reading a message from the team's mailbox: which of our emails it answers and what kind of
//! answer it is. Parsing is done by a real MIME parser; classification follows the standards
//! mail servers use (RFC 3464 delivery status, RFC 5965 feedback reports, RFC 3834 auto-replies).

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum MailClass {
    /// A person answered.
    HumanReply,
    /// An out-of-office or other automatic answer.
    AutoReply,
    /// A delivery status notification. `permanent` for 5.x.x codes.
    Bounce { recipient: Option<String>, status: Option<String>, permanent: bool },
    /// An abuse / spam complaint feedback report.
    Complaint { recipient: Option<String> },
    /// The lead asked not to be contacted again.
    UnsubscribeRequest,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InboundMail {
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: String,
    /// Message-IDs this message refers to: In-Reply-To, References, and for bounces the
    /// Message-ID of the returned original.
    pub referenced_ids: Vec<String>,
    pub class: MailClass,
    /// The new text of a reply, without the quoted history.
    pub text: String,
}

fn strip_brackets(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').to_string()
}

fn header_ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    value.as_text_list().map(|ids| ids.iter().map(|id| strip_brackets(id)).collect()).unwrap_or_default()
}

/// The reply's own words: everything above the first line that starts the quoted history.
pub fn strip_quoted_history(text: &str) -> String {
    let mut kept = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let starts_history = trimmed.starts_with('>')
            || (trimmed.starts_with("On ") && trimmed.trim_end().ends_with("wrote:"))
            || trimmed.starts_with("-----Original Message-----")
            || trimmed.starts_with("From: ");
        if starts_history {
            break;
        }
        kept.push(line);
    }
    kept.join("\n").trim().to_string()
}

fn field<'a>(report: &'a str, name: &str) -> Option<&'a str> {
    report.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn address_of(value: &str) -> String {
    // "rfc822; jane@acme.example" → "jane@acme.example"
    let value = value.rsplit(';').next().unwrap_or(value);
    strip_brackets(value).to_ascii_lowercase()
}

fn part_text(part: &mail_parser::MessagePart<'_>) -> Option<String> {
    match &part.body {
        PartType::Text(text) | PartType::Html(text) => Some(text.to_string()),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    }
}

fn report_type(message: &Message<'_>) -> Option<String> {
    let content_type = message.content_type()?;
    let is_report =
        content_type.ctype().eq_ignore_ascii_case("multipart") && content_type.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"));
    is_report.then(|| content_type.attribute("report-type").unwrap_or_default().to_ascii_lowercase())
}

fn is_auto_reply(message: &Message<'_>, subject: &str) -> bool {
    let header = |name: &str| message.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    if header("Auto-Submitted").is_some_and(|v| !v.is_empty() && v != "no") {
        return true;
    }
    if header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("X-Auto-Response-Suppress").is_some_and(|v| v.contains("oof"))
    {
        return true;
    }
    if header("Precedence").is_some_and(|v| v == "auto_reply") {
        return true;
    }
    let subject = subject.to_ascii_lowercase();
    ["out of office", "out of the office", "automatic reply", "auto reply", "autoreply", "auto:", "abwesenheit", "absence"]
        .iter()
        .any(|marker| subject.contains(marker))
}

fn is_unsubscribe_request(subject: &str, text: &str) -> bool {
    let subject = subject.to_ascii_lowercase();
    let first_lines: String = text.lines().take(3).collect::<Vec<_>>().join(" ").to_ascii_lowercase();
    subject.trim() == "unsubscribe"
        || ["unsubscribe", "remove me", "take me off", "stop emailing", "do not contact"].iter().any(|p| first_lines.contains(p))
}

/// Parses and classifies one raw message; `None` when it is not a parseable email at all.
pub fn read(raw: &[u8]) -> Option<InboundMail> {
    let message = MessageParser::default().parse(raw)?;
    let subject = message.subject().unwrap_or_default().to_string();
    let from = message.from().and_then(|a| a.first()).and_then(|a| a.address()).map(|a| a.to_ascii_lowercase());
    let mut referenced_ids = header_ids(message.in_reply_to());
    for id in header_ids(message.references()) {
        if !referenced_ids.contains(&id) {
            referenced_ids.push(id);
        }
    }
    let body = message.body_text(0).map(|t| t.into_owned()).unwrap_or_default();

    let class = match report_type(&message).as_deref() {
        Some("delivery-status") => {
            let mut recipient = None;
            let mut status = None;
            for part in &message.parts {
                let Some(content_type) = part.content_type() else { continue };
                let subtype = content_type.subtype().unwrap_or_default().to_ascii_lowercase();
                match (content_type.ctype().to_ascii_lowercase().as_str(), subtype.as_str()) {
                    ("message", "delivery-status") | ("message", "global-delivery-status") => {
                        if let Some(report) = part_text(part) {
                            recipient = field(&report, "Final-Recipient").or_else(|| field(&report, "Original-Recipient")).map(address_of);
                            status = field(&report, "Status").map(|s| s.split_whitespace().next().unwrap_or(s).to_string());
                        }
                    }
                    ("message", "rfc822") => {
                        if let Some(id) = part.message().and_then(|m| m.message_id()) {
                            referenced_ids.push(strip_brackets(id));
                        }
                    }
                    ("text", "rfc822-headers") => {
                        if let Some(id) = part_text(part).as_deref().and_then(|h| field(h, "Message-ID")) {
                            referenced_ids.push(strip_brackets(id));
                        }
                    }
                    _ => {}
                }
            }
            let permanent = status.as_deref().is_none_or(|s| s.starts_with('5'));
            MailClass::Bounce { recipient, status, permanent }
        }
        Some("feedback-report") => {
            let recipient = message.parts.iter().filter_map(part_text).find_map(|t| field(&t, "Original-Rcpt-To").map(address_of));
            MailClass::Complaint { recipient }
        }
        _ if is_auto_reply(&message, &subject) => MailClass::AutoReply,
        _ if is_unsubscribe_request(&subject, &strip_quoted_history(&body)) => MailClass::UnsubscribeRequest,
        _ => MailClass::HumanReply,
    };
    Some(InboundMail {
        message_id: message.message_id().map(strip_brackets),
        from,
        subject,
        referenced_ids,
        class,
        text: strip_quoted_history(&body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_matched_by_its_threading_headers_and_stripped_of_history() {
        let raw = b"From: Ada <ada@initech.example>\r\nTo: dana@northwind.example\r\nSubject: Re: Initech and forecasting\r\n\
Message-ID: <r1@initech.example>\r\nIn-Reply-To: <lead.step0@northwind.example>\r\nReferences: <lead.step0@northwind.example>\r\n\r\n\
Sounds interesting, Tuesday works.\r\n\r\nOn Mon, Dana wrote:\r\n> Hi Ada\r\n";
        let mail = read(raw).unwrap();
        assert_eq!(mail.class, MailClass::HumanReply);
        assert_eq!(mail.referenced_ids, vec!["lead.step0@northwind.example".to_string()]);
        assert_eq!(mail.text, "Sounds interesting, Tuesday works.");
        assert_eq!(mail.from.as_deref(), Some("ada@initech.example"));
    }

    #[test]
    fn out_of_office_and_unsubscribe_requests_are_told_apart_from_replies() {
        let ooo = b"From: ada@initech.example\r\nSubject: Out of Office: back on Monday\r\nAuto-Submitted: auto-replied\r\n\r\nAway.\r\n";
        assert_eq!(read(ooo).unwrap().class, MailClass::AutoReply);
        let stop = b"From: ada@initech.example\r\nSubject: Re: hello\r\n\r\nPlease remove me from your list.\r\n";
        assert_eq!(read(stop).unwrap().class, MailClass::UnsubscribeRequest);
    }

    #[test]
    fn a_delivery_status_notification_is_a_bounce_with_recipient_status_and_original_id() {
        let raw = b"From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n\
--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; ghost@initech.example\r\n\
Action: failed\r\nStatus: 5.1.1\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <lead.step0@northwind.example>\r\n\
Subject: hello\r\n\r\n--b--\r\n";
        let mail = read(raw).unwrap();
        assert_eq!(
            mail.class,
            MailClass::Bounce { recipient: Some("ghost@initech.example".into()), status: Some("5.1.1".into()), permanent: true }
        );
        assert!(mail.referenced_ids.contains(&"lead.step0@northwind.example".to_string()));
    }
}
