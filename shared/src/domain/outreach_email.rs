//! The RFC 5322 message that goes to a lead: deterministic Message-ID per (lead, step),
//! threading headers for follow-ups, RFC 8058 one-click unsubscribe headers, and a CAN-SPAM
//! footer with the sender's postal address.

use mail_builder::MessageBuilder;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;

use super::{Agent, EmailDraft, Lead, LeadId, MailboxPace, Timestamp};

/// Where a lead can unsubscribe: an HTTPS one-click link and a mailto fallback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubscribeLinks {
    pub https_url: String,
    pub mailto: String,
}

/// A composed email, ready for any mailer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutreachEmail {
    pub lead_id: LeadId,
    pub step: u32,
    /// Without angle brackets.
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    /// The full MIME message.
    pub raw: Vec<u8>,
}

/// The Message-ID of step `step` to lead `lead_id`. Deterministic, so that a retried send of the
/// same step carries the same id and a reply can always be traced back.
pub fn message_id_for(lead_id: LeadId, step: u32, sender_domain: &str) -> String {
    format!("{lead_id}.step{step}@{sender_domain}")
}

/// The subject a step goes out with: follow-ups reply in the first email's thread.
pub fn subject_for_step(lead: &Lead, draft: &EmailDraft) -> String {
    match lead.thread_root() {
        Some(first) if draft.step > 0 => {
            if first.subject.to_ascii_lowercase().starts_with("re:") {
                first.subject.clone()
            } else {
                format!("Re: {}", first.subject)
            }
        }
        _ => draft.subject.clone(),
    }
}

/// The email of `draft` to `lead`, from `mailbox` when the agent sends from its own mailboxes
/// (its address, and its display name or the sender's name), else from the agent's sender.
pub fn compose(
    agent: &Agent,
    lead: &Lead,
    draft: &EmailDraft,
    unsubscribe: &UnsubscribeLinks,
    mailbox: Option<&MailboxPace>,
    date: Timestamp,
) -> std::io::Result<OutreachEmail> {
    let from_address = mailbox.map_or(&agent.sender.email, |m| &m.address);
    let from_name = mailbox.and_then(|m| m.display_name.as_deref()).unwrap_or(&agent.sender.name);
    let message_id = message_id_for(lead.id, draft.step, from_address.domain());
    let subject = subject_for_step(lead, draft);
    let body = format!(
        "{}\n\n--\n{} · {}\n{}\nNot interested? Reply \"unsubscribe\" or open {} and you will not hear from us again.\n",
        draft.body.trim_end(),
        agent.sender.name,
        agent.sender.company,
        agent.sender.postal_address,
        unsubscribe.https_url
    );
    let mut builder = MessageBuilder::new()
        .from((from_name, from_address.as_str()))
        .to((lead.contact.full_name(), lead.contact.email.to_string()))
        .subject(subject.clone())
        .message_id(message_id.clone())
        .date(date.timestamp())
        .header("List-Unsubscribe", Raw::new(format!("<{}>, <{}>", unsubscribe.https_url, unsubscribe.mailto)))
        .header("List-Unsubscribe-Post", Raw::new("List-Unsubscribe=One-Click"))
        .text_body(body);
    if let Some(reply_to) = &agent.sender.reply_to {
        builder = builder.reply_to(reply_to.as_str());
    }
    if draft.step > 0 {
        let earlier: Vec<String> = lead.sent_messages.iter().filter(|m| m.step < draft.step).map(|m| m.message_id.clone()).collect();
        if let Some(last) = earlier.last() {
            builder = builder.in_reply_to(last.clone()).references(MessageId::new_list(earlier.iter().cloned()));
        }
    }
    let raw = builder.write_to_vec()?;
    Ok(OutreachEmail {
        lead_id: lead.id,
        step: draft.step,
        message_id,
        from: from_address.to_string(),
        to: lead.contact.email.to_string(),
        subject,
        raw,
    })
}
