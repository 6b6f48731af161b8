//! Complaints: a recipient pressed "this is spam" and the mailbox provider tells us so, in an
//! Abuse Reporting Format feedback report (RFC 5965) or, for some providers, a forwarded copy.

use mail_parser::{Message, MimeHeaders};

use super::ReturnedOriginal;
use super::text::{self, field, report_blocks};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Complaint {
    pub recipient: Option<String>,
    /// `abuse`, `fraud`, `not-spam`, ... as the provider reported it.
    pub feedback_type: Option<String>,
}

fn is_feedback_part(part: &mail_parser::MessagePart<'_>) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("message") && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("feedback-report"))
    })
}

/// Reads an ARF report, or a provider's forwarded complaint (Outlook.com's
/// "complaint about message from ..." with the original attached).
pub fn complaint(message: &Message<'_>, subject: &str, original: Option<&ReturnedOriginal>) -> Option<Complaint> {
    let report = message.parts.iter().filter(|p| is_feedback_part(p)).find_map(super::part_text);
    let is_arf = report.is_some() || super::delivery_status::is_report_of_type(message, "feedback-report");
    let forwarded_recipient = original.and_then(|o| o.complained_recipient.clone());
    let is_forwarded_complaint = subject.to_ascii_lowercase().contains("complaint about message") || forwarded_recipient.is_some();
    if !is_arf && !is_forwarded_complaint {
        return None;
    }
    let blocks = report.as_deref().map(report_blocks).unwrap_or_default();
    let report_field = |name: &str| blocks.iter().find_map(|b| field(b, name).map(str::to_string));
    let recipient = report_field("original-rcpt-to")
        .or_else(|| report_field("removal-recipient"))
        .and_then(|v| text::addresses_in(&v).into_iter().next())
        .or(forwarded_recipient)
        .or_else(|| original.and_then(|o| o.to.first().cloned()));
    Some(Complaint { recipient, feedback_type: report_field("feedback-type").map(|t| t.to_ascii_lowercase()) })
}
