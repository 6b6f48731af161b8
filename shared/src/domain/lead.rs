//! A lead (one prospect in one execution) and its state machine.
//!
//! ```text
//! queued → researched → drafted ─────────────────→ sending → sent ─(due)→ follow_up_due → drafted …
//!                          └→ awaiting_approval → approved ↗        └→ completed (last step sent)
//! drafted/approved ⇄ waiting(until): outside the send window, no room in the mailboxes today,
//! or the provider asked to slow down; the sweep enqueues the send when the time comes.
//! terminal: replied, bounced, unsubscribed, skipped(reason), failed(reason)
//! parked(reason): a send whose outcome is unknown; a person decides.
//! ```
//! The transitions themselves are in `lead_events`: `Lead::advanced` returns the complete
//! `Transition` an event implies, which the store commits conditionally on the lead's version.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{AgentId, EmailAddress, ExecutionId, LeadId, SlotRef, Timestamp};

/// Contact data as imported. Names and companies come only from here, never from an LLM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadContact {
    pub email: EmailAddress,
    pub first_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    pub company: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The company's web domain; when absent it is taken from the email address unless that is
    /// a free-mail provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_domain: Option<String>,
    /// IANA time zone of the lead, for send windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// Mail domains shared by people who are not colleagues: free mail, internet providers'
/// mailboxes, and national networks many separate organisations share.
const FREE_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "yahoo.de",
    "yahoo.es",
    "ymail.com",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.fr",
    "hotmail.de",
    "hotmail.es",
    "outlook.com",
    "outlook.de",
    "outlook.fr",
    "live.com",
    "live.co.uk",
    "msn.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "tutanota.com",
    "fastmail.com",
    "hey.com",
    "zoho.com",
    "mail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "t-online.de",
    "freenet.de",
    "posteo.de",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "sfr.fr",
    "wanadoo.fr",
    "libero.it",
    "btinternet.com",
    "comcast.net",
    "verizon.net",
    "att.net",
    "sbcglobal.net",
    "qq.com",
    "163.com",
    "126.com",
    "yandex.ru",
    "mail.ru",
    "nhs.net",
];

/// Whether `domain` is shared by people who are not colleagues (see [`FREE_MAIL_DOMAINS`]).
pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL_DOMAINS.iter().any(|free| domain.eq_ignore_ascii_case(free))
}

/// Why `domain` is not a company's host name, if it is not. Research reads only host names: an
/// address or a port in a lead's record would let the record choose what research reaches.
pub fn not_a_host_name(domain: &str) -> Option<String> {
    let valid_label =
        |l: &str| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !l.starts_with('-');
    let labels: Vec<&str> = domain.split('.').collect();
    // Read as a browser would: "0x7f.1", "2130706433" and "127.1" are addresses too.
    let as_url = url::Url::parse(&format!("http://{domain}/"));
    let numeric = matches!(as_url.as_ref().map(|u| u.host()), Ok(Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))))
        || domain.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok()
        || labels.last().is_some_and(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()));
    if numeric || domain.contains(':') {
        return Some(format!("'{domain}' is an address or has a port, not a company's host name"));
    }
    (labels.len() < 2 || !labels.iter().all(|l| valid_label(l))).then(|| format!("'{domain}' is not a host name"))
}

/// A web domain as people write it ("https://www.Acme.example/about"), reduced to its host.
pub fn host_of(written: &str) -> String {
    let lower = written.trim().to_ascii_lowercase();
    let rest = lower.trim_start_matches("https://").trim_start_matches("http://");
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    host.trim_start_matches("www.").trim_end_matches('.').to_string()
}

impl LeadContact {
    /// The domain to research: explicit, else the email's domain unless it is free mail. Never
    /// an address: a record naming one has no domain to research.
    pub fn research_domain(&self) -> Option<String> {
        if let Some(written) = self.company_domain.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            let domain = host_of(written);
            return not_a_host_name(&domain).is_none().then_some(domain);
        }
        let domain = self.email.domain();
        (!is_free_mail(domain)).then(|| domain.to_string())
    }

    /// The company's mail domain, lowercased: the address's domain unless it is free mail
    /// (colleagues do not share gmail.com).
    pub fn company_mail_domain(&self) -> Option<String> {
        let domain = self.email.domain().to_ascii_lowercase();
        (!is_free_mail(&domain)).then_some(domain)
    }

    pub fn full_name(&self) -> String {
        match &self.last_name {
            Some(last) if !last.trim().is_empty() => format!("{} {}", self.first_name, last),
            _ => self.first_name.clone(),
        }
    }
}

/// Why a lead was not contacted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The address or its domain is on the suppression list.
    Suppressed,
    /// The same address appears earlier in the execution.
    Duplicate,
    /// The agent already emailed this address in another execution.
    AlreadyContacted,
    /// The execution was cancelled before this lead was contacted.
    ExecutionCancelled,
    /// A reviewer rejected the draft.
    RejectedByReviewer,
    /// The execution's start never finished (its leads were never released to the workers).
    ExecutionFailed,
    /// The address's domain cannot receive mail (no such domain, no MX or address, a null MX).
    Undeliverable,
    /// Someone else at the lead's company answered: its sequence stopped (the agent's
    /// `replies.stop_company`).
    ColleagueReplied,
}

/// A claim on sending one step to one lead. It never expires: a delivery that finds an old
/// claim cannot know whether the email left, so it parks the lead instead of sending again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendClaim {
    pub claim_id: String,
    pub claimed_at: Timestamp,
    /// The configured mailbox the email goes out from; none for the default mailer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<EmailAddress>,
    /// The cap slots the claim took, given back if the claim is released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<SlotRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LeadState {
    Queued,
    Researched,
    Drafted,
    AwaitingApproval,
    Approved,
    /// Drafted (and approved, if the agent asks for it), but not sendable before `until`.
    Waiting {
        until: Timestamp,
        why: String,
    },
    Sending {
        claim: SendClaim,
    },
    Sent,
    FollowUpDue,
    Completed,
    Replied,
    Bounced,
    Unsubscribed,
    Skipped {
        reason: SkipReason,
    },
    Failed {
        reason: String,
    },
    /// A send whose outcome is unknown; a person decides. The claim is kept so that a worker
    /// that did send can still record it.
    Parked {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claim: Option<SendClaim>,
    },
}

/// The state without its data, for filters, indexes and counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStateKind {
    Queued,
    Researched,
    Drafted,
    AwaitingApproval,
    Approved,
    Waiting,
    Sending,
    Sent,
    FollowUpDue,
    Completed,
    Replied,
    Bounced,
    Unsubscribed,
    Skipped,
    Failed,
    Parked,
}

impl LeadStateKind {
    pub const ALL: [LeadStateKind; 16] = [
        Self::Queued,
        Self::Researched,
        Self::Drafted,
        Self::AwaitingApproval,
        Self::Approved,
        Self::Waiting,
        Self::Sending,
        Self::Sent,
        Self::FollowUpDue,
        Self::Completed,
        Self::Replied,
        Self::Bounced,
        Self::Unsubscribed,
        Self::Skipped,
        Self::Failed,
        Self::Parked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Researched => "researched",
            Self::Drafted => "drafted",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Approved => "approved",
            Self::Waiting => "waiting",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::FollowUpDue => "follow_up_due",
            Self::Completed => "completed",
            Self::Replied => "replied",
            Self::Bounced => "bounced",
            Self::Unsubscribed => "unsubscribed",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::Parked => "parked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// No further email will ever go to a lead in a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Replied | Self::Bounced | Self::Unsubscribed | Self::Skipped | Self::Failed)
    }

    /// States in which a lead waits for time or a person rather than for a worker.
    pub fn is_waiting(self) -> bool {
        matches!(self, Self::Sent | Self::AwaitingApproval | Self::Parked | Self::Waiting)
    }
}

impl fmt::Display for LeadStateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl LeadState {
    pub fn kind(&self) -> LeadStateKind {
        match self {
            Self::Queued => LeadStateKind::Queued,
            Self::Researched => LeadStateKind::Researched,
            Self::Drafted => LeadStateKind::Drafted,
            Self::AwaitingApproval => LeadStateKind::AwaitingApproval,
            Self::Approved => LeadStateKind::Approved,
            Self::Waiting { .. } => LeadStateKind::Waiting,
            Self::Sending { .. } => LeadStateKind::Sending,
            Self::Sent => LeadStateKind::Sent,
            Self::FollowUpDue => LeadStateKind::FollowUpDue,
            Self::Completed => LeadStateKind::Completed,
            Self::Replied => LeadStateKind::Replied,
            Self::Bounced => LeadStateKind::Bounced,
            Self::Unsubscribed => LeadStateKind::Unsubscribed,
            Self::Skipped { .. } => LeadStateKind::Skipped,
            Self::Failed { .. } => LeadStateKind::Failed,
            Self::Parked { .. } => LeadStateKind::Parked,
        }
    }

    /// The send claim a lead in `sending` (or parked from it) carries.
    pub fn claim(&self) -> Option<&SendClaim> {
        match self {
            Self::Sending { claim } | Self::Parked { claim: Some(claim), .. } => Some(claim),
            _ => None,
        }
    }
}

/// A record of one email that left for this lead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub step: u32,
    /// The RFC 5322 Message-ID we set, without angle brackets.
    pub message_id: String,
    /// The id the mail provider returned (SES message id, outbox file name, ...).
    pub provider_message_id: String,
    pub subject: String,
    pub sent_at: Timestamp,
    /// The configured mailbox it left from; the lead's follow-ups leave from the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<EmailAddress>,
}

/// A message from the lead's side: a reply, an auto-reply, a bounce, a complaint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundRecord {
    /// `human_reply`, `auto_reply`, `hard_bounce`, `soft_bounce`, `complaint`,
    /// `unsubscribe_request`.
    pub class: String,
    /// The message's Message-ID (or a digest of it when it has none): what makes reading the
    /// same message twice change nothing.
    pub message_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub subject: String,
    /// The new text of a reply without quoted history, or what a bouncing server said; at most
    /// a few thousand characters.
    pub text: String,
    /// The enhanced status code of a bounce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The last day of an absence an out-of-office named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent_until: Option<chrono::NaiveDate>,
    /// `account/folder` it was read from.
    #[serde(default)]
    pub folder: String,
    pub received_at: Timestamp,
    /// What a person's reply means for the sale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<super::ReplyIntent>,
    /// The colleague a referral names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<super::Referral>,
    /// What reading the message's intent with a model cost, counted on the execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<super::TokenUsage>,
}

/// How many inbound messages a lead keeps; older ones are dropped, newest kept.
pub const MAX_INBOUND_RECORDS: usize = 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    pub id: LeadId,
    pub execution_id: ExecutionId,
    pub agent_id: AgentId,
    pub contact: LeadContact,
    #[serde(flatten)]
    pub state: LeadState,
    /// The sequence step the lead is on (0-based).
    pub step: u32,
    /// The lead's execution was paused while the lead waited for a worker; resume re-enqueues it.
    #[serde(default)]
    pub on_hold: bool,
    /// When the next follow-up is due, for a lead in `sent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step_due_at: Option<Timestamp>,
    /// When the scheduled sweep must look at the lead: its follow-up is due, or the worker step
    /// it waits for has had time enough, or its send claim is older than a live worker's. Absent
    /// while a person decides and once the lead has finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_at: Option<Timestamp>,
    /// Whether the lead took the agent's contact marker for its address (its first send claim).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub contact_claimed: bool,
    /// How often the sweep re-enqueued the lead's current step because nothing moved it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redrives: u32,
    /// How often the mailer refused the current step "for now".
    #[serde(default, skip_serializing_if = "is_zero")]
    pub send_retries: u32,
    /// The research report's key (the company domain), kept out of the lead item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub research_key: Option<String>,
    #[serde(default)]
    pub sent_messages: Vec<SentMessage>,
    /// Messages from the lead's side, oldest first (at most `MAX_INBOUND_RECORDS`).
    #[serde(default)]
    pub inbound: Vec<InboundRecord>,
    /// The intent of the lead's latest reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_intent: Option<super::ReplyIntent>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

impl Lead {
    /// Lead number `row` of a new execution. Its id is derived from the execution's id and the
    /// row, so a retried start writes the same leads again instead of new ones.
    pub fn new(execution_id: ExecutionId, row: usize, agent_id: AgentId, contact: LeadContact, now: Timestamp) -> Self {
        Self {
            id: LeadId::for_row(execution_id, row),
            execution_id,
            agent_id,
            contact,
            state: LeadState::Queued,
            step: 0,
            on_hold: false,
            next_step_due_at: None,
            attention_at: Some(now + super::transition::STEP_BUDGET),
            contact_claimed: false,
            redrives: 0,
            send_retries: 0,
            research_key: None,
            sent_messages: Vec::new(),
            inbound: Vec::new(),
            reply_intent: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    /// The first email's Message-ID, which follow-ups thread on.
    pub fn thread_root(&self) -> Option<&SentMessage> {
        self.sent_messages.iter().min_by_key(|m| m.step)
    }

    pub fn has_inbound(&self, message_key: &str) -> bool {
        self.inbound.iter().any(|m| m.message_key == message_key)
    }

    /// Keeps `record`, dropping the oldest beyond the limit.
    pub fn record_inbound(&mut self, record: InboundRecord) {
        self.inbound.push(record);
        let excess = self.inbound.len().saturating_sub(MAX_INBOUND_RECORDS);
        self.inbound.drain(..excess);
    }

    /// The mailbox the lead's thread was started from, which its follow-ups must use.
    pub fn thread_mailbox(&self) -> Option<&EmailAddress> {
        self.thread_root().and_then(|m| m.mailbox.as_ref())
    }

    pub fn has_sent_step(&self, step: u32) -> bool {
        self.sent_messages.iter().any(|m| m.step == step)
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn research_domain_prefers_the_explicit_domain_and_ignores_free_mail() {
        let mut contact = LeadContact {
            email: EmailAddress::parse("ada@gmail.com").unwrap(),
            first_name: "Ada".into(),
            last_name: None,
            company: "Initech".into(),
            title: None,
            company_domain: None,
            time_zone: None,
        };
        assert_eq!(contact.research_domain(), None);
        contact.company_domain = Some("https://www.Initech.example/".into());
        assert_eq!(contact.research_domain().as_deref(), Some("initech.example"));
        for address in ["127.0.0.1", "0x7f.0x1", "2130706433", "127.1", "[::1]", "initech.example:8443", "localhost"] {
            contact.company_domain = Some(address.into());
            assert_eq!(contact.research_domain(), None, "{address}");
        }
    }

    #[test]
    fn state_serialises_flat_with_its_data() {
        let json = serde_json::to_value(LeadState::Skipped { reason: SkipReason::Duplicate }).unwrap();
        assert_eq!(json, serde_json::json!({"state": "skipped", "reason": "duplicate"}));
        let parked: LeadState = serde_json::from_value(serde_json::json!({"state": "parked", "reason": "unknown"})).unwrap();
        assert_eq!(parked, LeadState::Parked { reason: "unknown".into(), claim: None }, "parked leads stored before claims were kept");
        for kind in LeadStateKind::ALL {
            assert_eq!(LeadStateKind::parse(kind.as_str()), Some(kind));
        }
    }
}
