//! Replies: read new mail from every watched folder, match each message to the lead it is
//! about, and act. A reply, a hard bounce, a complaint or an unsubscribe request ends the lead's
//! sequence; the last three also put the address on the suppression list. An out-of-office moves
//! the next follow-up past the absence. Each folder's cursor (UIDVALIDITY and last UID) is kept
//! in the store, and every message is kept on its lead under its Message-ID, so reading the same
//! mail twice changes nothing.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Days, Duration, NaiveDate};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::journal::{self, lead_entry};
use super::{RetryableStepError, progress};
use crate::domain::{
    EmailAddress, ExecutionCounters, InboundRecord, Lead, LeadEvent, LeadStateKind, LogLevel, MailboxCursor, Suppression, Timestamp,
};
use crate::inbound::{self, BounceReport, InboundMail, MailClass};
use crate::ports::store::LeadQuery;
use crate::ports::{Clock, FolderBatch, InboundMessage, Inbox, PageRequest, Store, StoreError};

/// When an out-of-office names no date, the next follow-up waits at least this long after it.
pub const UNDATED_ABSENCE: Duration = Duration::days(7);

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplyReport {
    pub read: u32,
    pub matched: u32,
    pub unmatched: u32,
    /// Read before and already acted on.
    pub duplicates: u32,
    /// Our own messages (sent copies, notes to self).
    pub own: u32,
    /// Left for the next run because their lead had a send in flight.
    pub deferred: u32,
    /// Folders that could not be read this time, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_folders: Vec<String>,
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
            Self::Complaint => ExecutionCounters { complained: 1, unsubscribed: 1, ..Default::default() },
            Self::Unsubscribed => ExecutionCounters { unsubscribed: 1, ..Default::default() },
        }
    }
}

/// What one inbound message does to its lead.
enum Action {
    End(SequenceEnd),
    /// Kept on the lead; nothing else changes but a counter and, for an out-of-office, the
    /// next follow-up's due time (moved past the record's `absent_until`).
    Note {
        counters: ExecutionCounters,
        moves_follow_up: bool,
    },
}

fn action_for(class: &MailClass) -> Action {
    match class {
        MailClass::HumanReply => Action::End(SequenceEnd::Replied),
        MailClass::Bounce(BounceReport { permanent: true, .. }) => Action::End(SequenceEnd::HardBounce),
        MailClass::Complaint { .. } => Action::End(SequenceEnd::Complaint),
        MailClass::UnsubscribeRequest => Action::End(SequenceEnd::Unsubscribed),
        MailClass::Bounce(_) => {
            Action::Note { counters: ExecutionCounters { soft_bounced: 1, ..Default::default() }, moves_follow_up: false }
        }
        MailClass::AutoReply { .. } => {
            Action::Note { counters: ExecutionCounters { auto_replied: 1, ..Default::default() }, moves_follow_up: true }
        }
        MailClass::DeliveryReport { .. } => Action::Note { counters: ExecutionCounters::default(), moves_follow_up: false },
    }
}

/// The next follow-up after an out-of-office: not before the day after the absence (at the
/// time of day it was due), or `UNDATED_ABSENCE` after the auto-reply when it names no date.
fn due_after_absence(due: Timestamp, absent_until: Option<NaiveDate>, received_at: Timestamp) -> Timestamp {
    let back = match absent_until.and_then(|d| d.checked_add_days(Days::new(1))) {
        Some(day) => day.and_time(due.time()).and_utc(),
        None => received_at + UNDATED_ABSENCE,
    };
    due.max(back)
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
    settle(store, clock, lead, Action::End(end), inbound).await
}

/// Writes what a message does to its lead in one conditional update. Returns whether the lead's
/// state changed.
async fn settle(
    store: &dyn Store,
    clock: &dyn Clock,
    lead: &Lead,
    action: Action,
    inbound: Option<InboundRecord>,
) -> Result<bool, RetryableStepError> {
    let now = clock.now();
    if let Action::End(end) = action
        && let Some(reason) = end.suppression_reason()
    {
        store.suppress(&Suppression { entry: lead.contact.email.dedupe_key(), reason: reason.into(), created_at: now }).await?;
    }
    let ended = match &action {
        Action::End(end) => lead.advanced(end.event(), now).ok(),
        Action::Note { .. } => None,
    };
    let changed_state = ended.is_some();
    let mut next = ended.unwrap_or_else(|| lead.clone());
    let mut moved_due = None;
    if let (Action::Note { moves_follow_up: true, .. }, Some(record)) = (&action, &inbound)
        && lead.state.kind() == LeadStateKind::Sent
        && let Some(due) = lead.next_step_due_at
    {
        let moved = due_after_absence(due, record.absent_until, record.received_at);
        if moved != due {
            next.next_step_due_at = Some(moved);
            moved_due = Some(moved);
        }
    }
    let recorded = inbound.is_some();
    if let Some(record) = inbound.clone() {
        next.record_inbound(record);
    }
    if !changed_state && !recorded {
        return Ok(false);
    }
    next.updated_at = now;
    match store.update_lead(&next).await {
        Ok(_) => {}
        Err(StoreError::Conflict) => return Err(RetryableStepError("the lead changed meanwhile".into())),
        Err(e) => return Err(e.into()),
    }
    let counters = match &action {
        Action::End(end) if changed_state => end.counters(),
        Action::Note { counters, .. } => *counters,
        Action::End(_) => ExecutionCounters::default(),
    };
    if counters != ExecutionCounters::default() {
        store.add_to_counters(lead.execution_id, &counters).await?;
    }
    let class = inbound.as_ref().map_or("unsubscribe_request", |r| r.class.as_str());
    let message = match (changed_state, moved_due) {
        (true, _) => format!("{} → {}", lead.contact.email, next.state.kind()),
        (false, Some(due)) => format!("{} from {}: next email moved to {}", class, lead.contact.email, due.format("%Y-%m-%d")),
        (false, None) => format!("{} from {}", class, lead.contact.email),
    };
    let kind = if changed_state { format!("lead.{}", next.state.kind()) } else { format!("lead.{class}") };
    let data = inbound.map(|r| json!({"class": r.class, "subject": r.subject, "status": r.status, "absent_until": r.absent_until}));
    let mut entry = lead_entry(lead, LogLevel::Info, &kind, message, now);
    if let Some(data) = data {
        entry = entry.with_data(data);
    }
    journal::record(store, entry).await;
    if changed_state {
        progress::complete_if_finished(store, clock, lead.execution_id).await?;
    }
    Ok(changed_state)
}

pub struct ReplyProcessor {
    store: Arc<dyn Store>,
    inbox: Arc<dyn Inbox>,
    clock: Arc<dyn Clock>,
    /// How far back a folder read for the first time is searched.
    lookback_days: u32,
    /// The watched mailboxes' own addresses: mail from them is ours.
    own_addresses: Vec<String>,
}

enum Processed {
    Matched,
    Unmatched,
    Duplicate,
    Own,
    Deferred,
}

impl ReplyProcessor {
    pub fn new(store: Arc<dyn Store>, inbox: Arc<dyn Inbox>, clock: Arc<dyn Clock>, lookback_days: u32) -> Self {
        let own_addresses = inbox.own_addresses();
        Self { store, inbox, clock, lookback_days, own_addresses }
    }

    /// Reads and acts on up to `batch` new messages per folder. A folder that cannot be read is
    /// reported and retried next run; the others go on.
    pub async fn poll(&self, batch: usize) -> Result<ReplyReport, RetryableStepError> {
        let mut cursors = HashMap::new();
        for folder in self.inbox.folders() {
            if let Some(cursor) = self.store.get_mailbox_cursor(&folder).await? {
                cursors.insert(folder, cursor);
            }
        }
        let today = self.clock.now().date_naive();
        let since = today.checked_sub_days(Days::new(self.lookback_days.into())).unwrap_or(today);
        let mut report = ReplyReport::default();
        let mut first_error = None;
        for read in self.inbox.read_new(&cursors, since, batch).await {
            let previous = cursors.get(&read.folder);
            match read.result {
                Ok(folder_batch) => {
                    if let Err(error) = self.process_folder(&read.folder, previous, folder_batch, &mut report).await {
                        report.failed_folders.push(format!("{}: {}", read.folder, error.0));
                        first_error.get_or_insert(error);
                    }
                }
                Err(error) => {
                    let why = format!("{error:#}");
                    tracing::warn!(folder = %read.folder, error = %why, "a mailbox folder could not be read");
                    let mut cursor = previous.cloned().unwrap_or_else(|| self.fresh_cursor(&read.folder, 0));
                    cursor.last_polled_at = self.clock.now();
                    cursor.last_error = Some(why.clone());
                    self.store.save_mailbox_cursor(&cursor).await?;
                    report.failed_folders.push(format!("{}: {why}", read.folder));
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    fn fresh_cursor(&self, folder: &str, uid_validity: u32) -> MailboxCursor {
        MailboxCursor {
            folder: folder.into(),
            uid_validity,
            last_uid: 0,
            last_polled_at: self.clock.now(),
            last_error: None,
            messages_read: 0,
        }
    }

    /// Acts on a folder's batch in UID order, stopping at a message that must wait, and moves the
    /// folder's cursor past what was done.
    async fn process_folder(
        &self,
        folder: &str,
        previous: Option<&MailboxCursor>,
        batch: FolderBatch,
        report: &mut ReplyReport,
    ) -> Result<(), RetryableStepError> {
        let mut cursor = match previous {
            Some(cursor) if cursor.uid_validity == batch.uid_validity => cursor.clone(),
            Some(cursor) => MailboxCursor { messages_read: cursor.messages_read, ..self.fresh_cursor(folder, batch.uid_validity) },
            None => self.fresh_cursor(folder, batch.uid_validity),
        };
        let mut done_up_to = None;
        let mut outcome = Ok(());
        for message in &batch.messages {
            report.read += 1;
            let tally = match self.process(message).await {
                Ok(Processed::Deferred) => {
                    report.deferred += 1;
                    break;
                }
                Ok(Processed::Matched) => &mut report.matched,
                Ok(Processed::Unmatched) => &mut report.unmatched,
                Ok(Processed::Duplicate) => &mut report.duplicates,
                Ok(Processed::Own) => &mut report.own,
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            };
            *tally += 1;
            cursor.last_uid = cursor.last_uid.max(message.uid);
            cursor.messages_read += 1;
            done_up_to = Some(message.uid);
        }
        cursor.last_polled_at = self.clock.now();
        cursor.last_error = outcome.as_ref().err().map(|e| e.0.clone());
        self.store.save_mailbox_cursor(&cursor).await?;
        if let Some(uid) = done_up_to {
            self.inbox.acknowledge(folder, uid).await.map_err(|e| RetryableStepError(format!("inbox: {e:#}")))?;
        }
        outcome
    }

    async fn process(&self, message: &InboundMessage) -> Result<Processed, RetryableStepError> {
        let Some(mail) = inbound::read(&message.raw) else {
            tracing::warn!(folder = %message.folder, uid = message.uid, "not a parseable email; skipped");
            return Ok(Processed::Unmatched);
        };
        let from_us = |address: &str| self.own_addresses.iter().any(|own| own.eq_ignore_ascii_case(address));
        if !mail.class.is_delivery_notice() && mail.from.as_deref().is_some_and(from_us) {
            return Ok(Processed::Own);
        }
        let Some(lead) = self.match_lead(&mail).await? else {
            tracing::info!(folder = %message.folder, uid = message.uid, class = mail.class.name(), "no lead matches this message");
            return Ok(Processed::Unmatched);
        };
        if !mail.class.is_delivery_notice() && self.is_agent_sender(&lead, mail.from.as_deref()).await? {
            return Ok(Processed::Own);
        }
        let message_key = mail.message_id.clone().unwrap_or_else(|| format!("sha256:{:x}", Sha256::digest(&message.raw)));
        if lead.has_inbound(&message_key) {
            return Ok(Processed::Duplicate);
        }
        if lead.state.kind() == LeadStateKind::Sending {
            return Ok(Processed::Deferred);
        }
        let record = InboundRecord {
            class: mail.class.name().into(),
            message_key,
            from: mail.from.clone(),
            subject: mail.subject.chars().take(500).collect(),
            text: mail.text.chars().take(4_000).collect(),
            status: match &mail.class {
                MailClass::Bounce(report) => report.status.clone(),
                MailClass::DeliveryReport { status, .. } => status.clone(),
                _ => None,
            },
            absent_until: match &mail.class {
                MailClass::AutoReply { absent_until } => *absent_until,
                _ => None,
            },
            folder: message.folder.clone(),
            received_at: self.clock.now(),
        };
        settle(self.store.as_ref(), self.clock.as_ref(), &lead, action_for(&mail.class), Some(record)).await?;
        Ok(Processed::Matched)
    }

    async fn is_agent_sender(&self, lead: &Lead, from: Option<&str>) -> Result<bool, RetryableStepError> {
        let Some(from) = from else { return Ok(false) };
        match self.store.get_agent(lead.agent_id).await {
            Ok(agent) => Ok(std::iter::once(&agent.sender.email)
                .chain(agent.sender.reply_to.as_ref())
                .any(|ours| ours.as_str().eq_ignore_ascii_case(from))),
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// By the Message-IDs it refers to first, then by the address it is about among the leads we
    /// emailed, preferring one whose sequence is still running.
    async fn match_lead(&self, mail: &InboundMail) -> Result<Option<Lead>, RetryableStepError> {
        for id in &mail.referenced_ids {
            if let Some(lead) = self.store.find_lead_by_message_id(id).await? {
                return Ok(Some(lead));
            }
        }
        let address = mail.class.subject_address().map(str::to_string).or_else(|| mail.from.clone());
        let Some(address) = address.and_then(|a| EmailAddress::parse(&a).ok()) else { return Ok(None) };
        let leads = self.store.list_leads(&LeadQuery { email: Some(address), ..Default::default() }, &PageRequest::first(100)).await?;
        let contacted: Vec<Lead> = leads.items.into_iter().filter(|lead| !lead.sent_messages.is_empty()).collect();
        let running = contacted.iter().rev().find(|lead| !lead.state.kind().is_terminal()).cloned();
        Ok(running.or_else(|| contacted.into_iter().next_back()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(raw).unwrap().to_utc()
    }

    #[test]
    fn an_absence_moves_the_follow_up_to_the_day_after_it_at_the_same_hour() {
        let due = at("2026-11-27T14:00:00Z");
        let received = at("2026-11-24T10:00:00Z");
        assert_eq!(due_after_absence(due, NaiveDate::from_ymd_opt(2026, 12, 4), received), at("2026-12-05T14:00:00Z"));
        assert_eq!(due_after_absence(due, NaiveDate::from_ymd_opt(2026, 11, 25), received), due, "never earlier");
        assert_eq!(due_after_absence(due, None, received), at("2026-12-01T10:00:00Z"));
    }
}
