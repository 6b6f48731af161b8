//! Messages as they arrive in the team's mailbox: replies, bounces, complaints, auto-replies;
//! and the leads (as the API lists them) they answer.

use serde_json::Value;

/// The lead with `email` among leads as the API lists them.
pub fn lead<'a>(leads: &'a [Value], email: &str) -> &'a Value {
    leads.iter().find(|l| l["contact"]["email"] == email).expect("the lead")
}

/// The Message-ID of the first email the lead with `email` was sent.
pub fn first_message_id(leads: &[Value], email: &str) -> String {
    lead(leads, email)["sent_messages"][0]["message_id"].as_str().expect("a sent email").to_string()
}

/// A reply to the email whose Message-ID is `message_id`.
pub fn reply_to(message_id: &str, from: &str, extra_headers: &str, text: &str) -> String {
    format!(
        "From: {from}\r\nTo: dana@northwind.example\r\nSubject: Re: hello\r\nMessage-ID: <{}@reply.example>\r\n\
         In-Reply-To: <{message_id}>\r\nReferences: <{message_id}>\r\n{extra_headers}\r\n{text}\r\n",
        uuid::Uuid::new_v4()
    )
}

/// A delivery status notification (RFC 3464) for `recipient`, returning the original's headers
/// when `original_message_id` is given.
pub fn delivery_failure(recipient: &str, status: &str, original_message_id: Option<&str>) -> String {
    let domain = recipient.rsplit('@').next().unwrap_or("example.com");
    let original = original_message_id
        .map(|id| format!("--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{id}>\r\nSubject: hello\r\n\r\n"))
        .unwrap_or_default();
    format!(
        "From: MAILER-DAEMON@mx.{domain}\r\nTo: dana@northwind.example\r\nSubject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <{}@mx.{domain}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; mx.{domain}\r\n\r\nFinal-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n\
Diagnostic-Code: smtp; 550 {status} mailbox unavailable\r\n\r\n{original}--b1--\r\n",
        uuid::Uuid::new_v4()
    )
}

/// An abuse complaint (RFC 5965) about the email `original_message_id` sent to `recipient`.
pub fn complaint(recipient: &str, original_message_id: &str) -> String {
    format!(
        "From: feedback@fbl.mailbox.example\r\nTo: dana@northwind.example\r\nSubject: Abuse report\r\nMessage-ID: <{}@fbl.mailbox.example>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"f1\"\r\n\r\n\
--f1\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n--f1\r\nContent-Type: message/feedback-report\r\n\r\n\
Feedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: {recipient}\r\n\r\n\
--f1\r\nContent-Type: message/rfc822\r\n\r\nFrom: dana@northwind.example\r\nTo: {recipient}\r\nMessage-ID: <{original_message_id}>\r\n\
Subject: hello\r\n\r\nHi\r\n--f1--\r\n",
        uuid::Uuid::new_v4()
    )
}
