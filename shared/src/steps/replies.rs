//! Replies: read new mail, match it to the lead it answers, and act. A reply, a hard bounce, a
//! complaint or an unsubscribe request ends the lead's sequence; the last three also put the
//! address on the suppression list. Processing a message twice changes nothing: the second
//! transition does not fit the lead's state and is dropped.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::journal::{self, lead_entry};
use super::{RetryableStepError, progress};
use crate::domain::{EmailAddress, ExecutionCounters, InboundRecord, Lead, LeadEvent, LeadStateKind, LogLevel, Suppression};
use crate::inbound::{self as inbound_mail, BounceReport, InboundMail, MailClass};
use crate::ports::store::LeadQuery;
use crate::ports::{Clock, InboundMessage, Inbox, PageRequest, Store, StoreError};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplyReport {
    pub read: u32,
    pub matched: u32,
    pub unmatched: u32,
    /// Messages left for the next run because their lead had a send in flight.
    pub deferred: u32,
}

/// Why a lead's sequence ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceEnd {
    Replied,
    HardBounce,
    Complaint,
    Unsubscribed,
}

impl SequenceEnd {
    fn event(self) -> LeadEvent {
        match self {
            Self::Replied => LeadEvent::ReplyReceived,
            Self::HardBounce => LeadEvent::HardBounce,
            Self::Complaint | Self::Unsubscribed => LeadEvent::UnsubscribeRequested,
        }
    }

    fn suppression_reason(self) -> Option<&'static str> {
        match self {
            Self::Replied => None,
            Self::HardBounce => Some("hard_bounce"),
            Self::Complaint => Some("complaint"),
            Self::Unsubscribed => Some("unsubscribed"),
        }
    }

    fn counters(self) -> ExecutionCounters {
        match self {
            Self::Replied => ExecutionCounters { replied: 1, ..Default::default() },
            Self::HardBounce => ExecutionCounters { bounced: 1, ..Default::default() },
            Self::Complaint | Self::Unsubscribed => ExecutionCounters { unsubscribed: 1, ..Default::default() },
        }
    }
}

/// Ends a lead's sequence, suppresses the address where that applies and updates counters.
/// Returns `false` when the lead was already in that state (nothing changed).
pub async fn end_sequence(
    store: &dyn Store,
    clock: &dyn Clock,
    lead: &Lead,
    end: SequenceEnd,
    inbound: Option<InboundRecord>,
) -> Result<bool, RetryableStepError> {
    if let Some(reason) = end.suppression_reason() {
        store.suppress(&Suppression { entry: lead.contact.email.dedupe_key(), reason: reason.into(), created_at: clock.now() }).await?;
    }
    let Ok(mut ended) = lead.advanced(end.event(), clock.now()) else { return Ok(false) };
    if inbound.is_some() {
        ended.last_inbound = inbound;
    }
    match store.update_lead(&ended).await {
        Ok(_) => {}
        Err(StoreError::Conflict) => return Err(RetryableStepError("the lead changed meanwhile".into())),
        Err(e) => return Err(e.into()),
    }
    store.add_to_counters(lead.execution_id, &end.counters()).await?;
    journal::record(
        store,
        lead_entry(
            lead,
            LogLevel::Info,
            &format!("lead.{}", ended.state.kind()),
            format!("{} → {}", lead.contact.email, ended.state.kind()),
            clock.now(),
        ),
    )
    .await;
    progress::complete_if_finished(store, clock, lead.execution_id).await?;
    Ok(true)
}

pub struct ReplyProcessor {
    store: Arc<dyn Store>,
    inbox: Arc<dyn Inbox>,
    clock: Arc<dyn Clock>,
}

impl ReplyProcessor {
    pub fn new(store: Arc<dyn Store>, inbox: Arc<dyn Inbox>, clock: Arc<dyn Clock>) -> Self {
        Self { store, inbox, clock }
    }

    /// Reads and acts on up to `batch` new messages.
    pub async fn poll(&self, batch: usize) -> Result<ReplyReport, RetryableStepError> {
        let messages = self.inbox.fetch_new(batch).await.map_err(|e| RetryableStepError(format!("inbox: {e:#}")))?;
        let mut report = ReplyReport::default();
        let mut done = Vec::new();
        for message in messages {
            report.read += 1;
            match self.process(&message).await? {
                Processed::Matched => report.matched += 1,
                Processed::Unmatched => report.unmatched += 1,
                Processed::Deferred => {
                    report.deferred += 1;
                    continue;
                }
            }
            done.push(message);
        }
        self.inbox.acknowledge(&done).await.map_err(|e| RetryableStepError(format!("inbox: {e:#}")))?;
        Ok(report)
    }

    async fn process(&self, message: &InboundMessage) -> Result<Processed, RetryableStepError> {
        let Some(mail) = inbound_mail::read(&message.raw) else {
            tracing::warn!(mailbox = %message.mailbox, key = %message.key, "not a parseable email; skipped");
            return Ok(Processed::Unmatched);
        };
        let Some(lead) = self.match_lead(&mail).await? else {
            tracing::info!(from = ?mail.from, subject = %mail.subject, "no lead matches this message");
            return Ok(Processed::Unmatched);
        };
        let agent = self.store.get_agent(lead.agent_id).await?;
        if mail.from.as_deref() == Some(agent.sender.email.dedupe_key().as_str()) {
            return Ok(Processed::Unmatched);
        }
        if lead.state.kind() == LeadStateKind::Sending {
            return Ok(Processed::Deferred);
        }
        let record = InboundRecord {
            class: mail.class.name().into(),
            message_id: mail.message_id.clone(),
            subject: mail.subject.clone(),
            text: mail.text.chars().take(4_000).collect(),
            received_at: self.clock.now(),
        };
        let end = match &mail.class {
            MailClass::HumanReply => Some(SequenceEnd::Replied),
            MailClass::Bounce(BounceReport { permanent: true, .. }) => Some(SequenceEnd::HardBounce),
            MailClass::Complaint { .. } => Some(SequenceEnd::Complaint),
            MailClass::UnsubscribeRequest => Some(SequenceEnd::Unsubscribed),
            MailClass::AutoReply { .. } | MailClass::Bounce(_) | MailClass::DeliveryReport { .. } => None,
        };
        match end {
            Some(end) => {
                end_sequence(self.store.as_ref(), self.clock.as_ref(), &lead, end, Some(record)).await?;
            }
            None => {
                journal::record(
                    self.store.as_ref(),
                    lead_entry(
                        &lead,
                        LogLevel::Info,
                        &format!("lead.{}", record.class),
                        format!("{} from {}: \"{}\"", record.class, lead.contact.email, record.subject),
                        self.clock.now(),
                    )
                    .with_data(json!({"class": mail.class})),
                )
                .await;
            }
        }
        Ok(Processed::Matched)
    }

    /// By the Message-IDs it refers to first, then by the sender among leads we emailed.
    async fn match_lead(&self, mail: &InboundMail) -> Result<Option<Lead>, RetryableStepError> {
        for id in &mail.referenced_ids {
            if let Some(lead) = self.store.find_lead_by_message_id(id).await? {
                return Ok(Some(lead));
            }
        }
        let address = mail.class.subject_address().map(str::to_string).or_else(|| mail.from.clone());
        let Some(address) = address.and_then(|a| EmailAddress::parse(&a).ok()) else { return Ok(None) };
        let leads = self.store.list_leads(&LeadQuery { email: Some(address), ..Default::default() }, &PageRequest::first(100)).await?;
        Ok(leads.items.into_iter().rev().find(|lead| !lead.sent_messages.is_empty()))
    }
}

enum Processed {
    Matched,
    Unmatched,
    Deferred,
}
