//! Reading a message from the team's mailbox: which of our emails it answers and what kind of
//! answer it is. Parsing is done by a real MIME parser; classification follows what mail servers
//! send: delivery status notifications (RFC 3464) and the prose bounces of servers that predate
//! them, feedback reports (RFC 5965), Amazon SES notifications, automatic replies (RFC 3834).

pub mod auto_reply;
pub mod bulk_mail;
pub mod delivery_status;
pub mod feedback;
pub mod intent;
pub mod reply_text;
pub mod ses_notification;
pub mod text;

use chrono::NaiveDate;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use serde::Serialize;

pub use delivery_status::{BounceReport, DeliveryOutcome};
pub use feedback::Complaint;
use ses_notification::SesEvent;
use text::strip_angle_brackets;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum MailClass {
    /// A person answered.
    HumanReply,
    /// An out-of-office or other automatic answer; `absent_until` is the last day of an absence
    /// it names.
    AutoReply { absent_until: Option<NaiveDate> },
    /// A delivery status notification about a message that did not arrive.
    Bounce(BounceReport),
    /// A delivery status notification that reports success; nothing to act on.
    DeliveryReport { recipient: Option<String>, status: Option<String> },
    /// An abuse / spam complaint.
    Complaint { recipient: Option<String>, feedback_type: Option<String> },
    /// The lead asked not to be contacted again.
    UnsubscribeRequest,
    /// A newsletter or other bulk or list mail, even from the lead's own address: never a reply.
    BulkMail { list: Option<String> },
}

impl MailClass {
    /// The class as the API shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::HumanReply => "human_reply",
            Self::AutoReply { .. } => "auto_reply",
            Self::Bounce(BounceReport { permanent: true, .. }) => "hard_bounce",
            Self::Bounce(_) => "soft_bounce",
            Self::DeliveryReport { .. } => "delivery_report",
            Self::Complaint { .. } => "complaint",
            Self::UnsubscribeRequest => "unsubscribe_request",
            Self::BulkMail { .. } => "bulk_mail",
        }
    }

    /// The address the message is about when that is not its sender: the bounced or
    /// complaining recipient.
    pub fn subject_address(&self) -> Option<&str> {
        match self {
            Self::Bounce(BounceReport { recipient, .. }) | Self::DeliveryReport { recipient, .. } | Self::Complaint { recipient, .. } => {
                recipient.as_deref()
            }
            _ => None,
        }
    }

    /// Messages written by a machine about delivery, never by the lead.
    pub fn is_delivery_notice(&self) -> bool {
        matches!(self, Self::Bounce(_) | Self::DeliveryReport { .. } | Self::Complaint { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InboundMail {
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: String,
    /// Message-IDs this message refers to: In-Reply-To, References, and for bounces and
    /// complaints the Message-ID of the returned original.
    pub referenced_ids: Vec<String>,
    pub class: MailClass,
    /// The new text of a reply without the quoted history; for a bounce, what the server said.
    pub text: String,
    /// When the sender's mail client says it wrote the message.
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The headers of our own message as a bounce or complaint returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReturnedOriginal {
    pub from: Option<String>,
    pub to: Vec<String>,
    pub message_id: Option<String>,
    /// Outlook.com names the complaining recipient in a header of the returned copy.
    pub complained_recipient: Option<String>,
}

pub(crate) fn part_text(part: &mail_parser::MessagePart<'_>) -> Option<String> {
    match &part.body {
        PartType::Text(text) | PartType::Html(text) => Some(text.to_string()),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    }
}

/// The longest Message-ID taken from a message, in bytes. Ids become store keys (DynamoDB
/// refuses a key over 1 KB and an item over 400 KB); real ones are well under 200 bytes.
pub const MAX_MESSAGE_ID_BYTES: usize = 250;
/// The most ids taken from `References`: the newest, where the email it answers is.
const MAX_REFERENCES: usize = 20;

/// A Message-ID as a key, or `None` when it is too long, empty or holds spaces or controls.
pub fn usable_message_id(raw: &str) -> Option<String> {
    let id = strip_angle_brackets(raw);
    let fits = !id.is_empty() && id.len() <= MAX_MESSAGE_ID_BYTES;
    (fits && id.chars().all(|c| c.is_ascii_graphic() || (!c.is_ascii() && !c.is_control()))).then_some(id)
}

fn header_ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    value.as_text_list().map(|ids| ids.iter().filter_map(|id| usable_message_id(id)).collect()).unwrap_or_default()
}

pub(crate) fn addresses_of(list: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    // A parser may hand back a part of an address it could not read ("@example.com"); only
    // whole addresses count.
    list.map(|l| l.iter().filter_map(|a| a.address()).flat_map(text::addresses_in).collect()).unwrap_or_default()
}

fn original_from_headers(headers: &str) -> ReturnedOriginal {
    let value = |name: &str| {
        headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
        })
    };
    ReturnedOriginal {
        from: value("from").and_then(|v| text::addresses_in(&v).into_iter().next()),
        to: value("to").map(|v| text::addresses_in(&v)).unwrap_or_default(),
        message_id: value("message-id").and_then(|v| usable_message_id(&v)),
        complained_recipient: value("x-hmxmroriginalrecipient").and_then(|v| text::addresses_in(&v).into_iter().next()),
    }
}

/// The returned copy of our own message: an attached `message/rfc822`, `text/rfc822-headers`,
/// or the text after a "copy of the message follows" line of the message's `body`.
fn returned_original(message: &Message<'_>, body: &str) -> Option<ReturnedOriginal> {
    for part in message.parts.iter().skip(1) {
        if let Some(original) = part.message() {
            return Some(ReturnedOriginal {
                from: addresses_of(original.from()).into_iter().next(),
                to: addresses_of(original.to()),
                message_id: original.message_id().and_then(usable_message_id),
                complained_recipient: original
                    .header_raw("X-HmXmrOriginalRecipient")
                    .and_then(|v| text::addresses_in(v).into_iter().next()),
            });
        }
        let is_headers = part.content_type().is_some_and(|ct| ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers")));
        if is_headers {
            return part_text(part).map(|h| original_from_headers(&h));
        }
    }
    text::after_original_message(body).map(original_from_headers)
}

/// All the text parts of the message itself (not of attached messages), joined.
fn full_text(message: &Message<'_>) -> String {
    let count = message.text_body_count().max(message.html_body_count());
    let mut text = String::new();
    for index in 0..count {
        if let Some(part) = message.body_text(index) {
            text.push_str(&part);
            text.push('\n');
        }
    }
    if text.trim().is_empty()
        && let Some(root) = message.parts.first().and_then(part_text)
    {
        text = root;
    }
    text
}

/// Parses and classifies one raw message; `None` when it is not a parseable email at all.
pub fn read(raw: &[u8]) -> Option<InboundMail> {
    let message = MessageParser::default().parse(raw)?;
    let subject = message.subject().unwrap_or_default().trim().to_string();
    let from = addresses_of(message.from()).into_iter().next();
    let mut referenced_ids = header_ids(message.in_reply_to());
    referenced_ids.truncate(MAX_REFERENCES);
    let references = header_ids(message.references());
    for id in references.iter().rev().take(MAX_REFERENCES).rev().cloned().collect::<Vec<_>>() {
        if !referenced_ids.contains(&id) {
            referenced_ids.push(id);
        }
    }
    let body = full_text(&message);
    let explanation = text::before_original_message(&body).to_string();
    let original = returned_original(&message, &body);
    let new_text = reply_text::new_text(&body);

    let ses = ses_notification::read(&body);
    let class = if let Some(complaint) = feedback::complaint(&message, &subject, original.as_ref()) {
        MailClass::Complaint { recipient: complaint.recipient, feedback_type: complaint.feedback_type }
    } else if let Some(outcome) = delivery_status::from_status_report(&message, &explanation, original.as_ref()) {
        outcome.into()
    } else if let Some(notice) = &ses {
        referenced_ids.extend(notice.message_ids.iter().cloned());
        match &notice.event {
            SesEvent::Delivery(outcome) => outcome.clone().into(),
            SesEvent::Complaint(c) => MailClass::Complaint { recipient: c.recipient.clone(), feedback_type: c.feedback_type.clone() },
        }
    } else if delivery_status::looks_like_bounce(&message, &subject) {
        MailClass::Bounce(delivery_status::from_prose(&message, &explanation, original.as_ref()))
    } else if subject.eq_ignore_ascii_case("unsubscribe") {
        // A mail client's unsubscribe button (it may mark its message auto-submitted).
        MailClass::UnsubscribeRequest
    } else if auto_reply::is_auto_reply(&message, &subject) || auto_reply::is_challenge(&message, &subject, &new_text) {
        let today = message.date().and_then(|d| NaiveDate::from_ymd_opt(d.year as i32, d.month as u32, d.day as u32));
        let today = today.unwrap_or_else(|| chrono::Utc::now().date_naive());
        MailClass::AutoReply { absent_until: auto_reply::absence_ends(&new_text, today) }
    } else if let Some(list) = bulk_mail::bulk_list(&message) {
        // Before the unsubscribe reading: every newsletter says "unsubscribe" somewhere.
        MailClass::BulkMail { list: Some(list).filter(|l| !l.is_empty()) }
    } else if reply_text::is_unsubscribe_request(&subject, &new_text) {
        MailClass::UnsubscribeRequest
    } else {
        MailClass::HumanReply
    };
    if class.is_delivery_notice()
        && let Some(id) = original.and_then(|o| o.message_id)
        && !referenced_ids.contains(&id)
    {
        referenced_ids.push(id);
    }
    let text = match &class {
        MailClass::Bounce(report) => report.diagnostic.clone().unwrap_or_else(|| explanation.trim().chars().take(1_000).collect()),
        _ => new_text,
    };
    Some(InboundMail {
        message_id: message.message_id().and_then(usable_message_id),
        from,
        subject,
        referenced_ids,
        class,
        text,
        sent_at: message.date().and_then(|d| chrono::DateTime::from_timestamp(d.to_timestamp(), 0)),
    })
}

/// An SES event from the feedback queue as the message it stands for, and the key that makes
/// applying it twice change nothing; `None` when the body is not such an event.
pub fn read_ses_event(body: &str) -> Option<(InboundMail, String)> {
    let (notice, key) = ses_notification::read_queued(body)?;
    let class = match notice.event {
        SesEvent::Delivery(outcome) => outcome.into(),
        SesEvent::Complaint(c) => MailClass::Complaint { recipient: c.recipient, feedback_type: c.feedback_type },
    };
    let text = match &class {
        MailClass::Bounce(report) => report.diagnostic.clone().unwrap_or_default(),
        _ => String::new(),
    };
    let subject = format!("Amazon SES {} notification", class.name().replace('_', " "));
    Some((InboundMail { message_id: None, from: None, subject, referenced_ids: notice.message_ids, class, text, sent_at: None }, key))
}

impl From<DeliveryOutcome> for MailClass {
    fn from(outcome: DeliveryOutcome) -> Self {
        match outcome {
            DeliveryOutcome::Failed(report) => Self::Bounce(report),
            DeliveryOutcome::Delivered { recipient, status } => Self::DeliveryReport { recipient, status },
        }
    }
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
        let ooo = b"From: ada@initech.example\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nSubject: Out of Office: back on Monday\r\n\
Auto-Submitted: auto-replied\r\n\r\nAway until December 3.\r\n";
        assert_eq!(read(ooo).unwrap().class, MailClass::AutoReply { absent_until: NaiveDate::from_ymd_opt(2026, 12, 3) });
        let stop = b"From: ada@initech.example\r\nSubject: Re: hello\r\n\r\nPlease remove me from your list.\r\n";
        assert_eq!(read(stop).unwrap().class, MailClass::UnsubscribeRequest);
    }

    #[test]
    fn newsletters_are_bulk_mail_even_from_the_lead_and_an_out_of_office_sent_in_bulk_stays_one() {
        let newsletter = b"From: Ada <ada@initech.example>\r\nSubject: Initech News: November\r\n\
List-Id: Initech News <news.initech.example>\r\nList-Unsubscribe: <https://initech.example/u>\r\n\
In-Reply-To: <lead.step0@northwind.example>\r\n\r\nOur November news. Unsubscribe here.\r\n";
        assert_eq!(read(newsletter).unwrap().class, MailClass::BulkMail { list: Some("Initech News <news.initech.example>".into()) });
        let campaign = b"From: ada@initech.example\r\nSubject: Webinar invite\r\nPrecedence: bulk\r\n\r\nJoin us. Remove me from this list? Click here.\r\n";
        assert_eq!(read(campaign).unwrap().class.name(), "bulk_mail");
        let ooo = b"From: ada@initech.example\r\nSubject: Automatic reply: hello\r\nPrecedence: bulk\r\n\
Auto-Submitted: auto-replied\r\n\r\nI am away.\r\n";
        assert_eq!(read(ooo).unwrap().class.name(), "auto_reply");
        let human = b"From: ada@initech.example\r\nSubject: Re: hello\r\n\r\nSure, Tuesday.\r\n";
        assert_eq!(read(human).unwrap().class, MailClass::HumanReply);
    }

    #[test]
    fn a_delivery_status_notification_is_a_bounce_with_recipient_status_and_original_id() {
        let raw = b"From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n\
--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; ghost@initech.example\r\n\
Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n\
Message-ID: <lead.step0@northwind.example>\r\nSubject: hello\r\n\r\n--b--\r\n";
        let mail = read(raw).unwrap();
        assert_eq!(
            mail.class,
            MailClass::Bounce(BounceReport {
                recipient: Some("ghost@initech.example".into()),
                status: Some("5.1.1".into()),
                diagnostic: Some("550 5.1.1 no such user".into()),
                permanent: true
            })
        );
        assert_eq!(mail.class.name(), "hard_bounce");
        assert!(mail.referenced_ids.contains(&"lead.step0@northwind.example".to_string()));
    }

    #[test]
    fn a_prose_bounce_names_the_failed_address_not_the_sender() {
        let raw = b"From: MAILER-DAEMON@mx4.example.jp\r\nTo: dana@northwind.example\r\nSubject: failure notice\r\n\r\n\
Hi. This is the qmail-send program at mx4.example.jp.\r\n\r\n<ghost@initech.example>:\r\nremote host said: 550 Unknown user\r\n\r\n\
--- Below this line is a copy of the message.\r\n\r\nFrom: Dana <dana@northwind.example>\r\nTo: ghost@initech.example\r\n\
Message-ID: <lead.step0@northwind.example>\r\n\r\nHi\r\n";
        let mail = read(raw).unwrap();
        let MailClass::Bounce(report) = &mail.class else { panic!("{:?}", mail.class) };
        assert_eq!(report.recipient.as_deref(), Some("ghost@initech.example"));
        assert_eq!(report.status.as_deref(), Some("5.0.0"));
        assert!(mail.referenced_ids.contains(&"lead.step0@northwind.example".to_string()));
    }

    #[test]
    fn an_ses_event_names_the_regional_message_id_recipients_saw() {
        let event = serde_json::json!({"eventType": "Complaint", "mail": {"messageId": "0102abc", "destination": ["ada@initech.example"]},
            "complaint": {"complainedRecipients": [{"emailAddress": "ada@initech.example"}]}});
        let body = serde_json::json!({"Type": "Notification", "MessageId": "n1", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:t",
            "Message": event.to_string()});
        let (mail, key) = read_ses_event(&body.to_string()).unwrap();
        assert_eq!(key, "sns:n1");
        assert!(mail.referenced_ids.contains(&"0102abc@eu-west-1.amazonses.com".to_string()), "{:?}", mail.referenced_ids);
        assert!(matches!(mail.class, MailClass::Complaint { .. }));
    }
}
