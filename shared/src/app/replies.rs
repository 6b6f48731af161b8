//! Replies: read new mail from every watched folder, match each message to the lead it is
//! about, and act. A reply, a hard bounce, a complaint or an unsubscribe request ends the lead's
//! sequence; the last three also put the address on the suppression list. An out-of-office moves
//! the next follow-up past the absence. Each folder's cursor (UIDVALIDITY and last UID) is kept
//! in the store, and every message is kept on its lead under its Message-ID, so reading the same
//! mail twice changes nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Days;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::sending_health::{pause_if_unhealthy, pause_mailbox_if_unhealthy};
use super::{Committed, RetryableStepError, StepPorts, deciding};
use crate::domain::{Agent, ExecutionId, ExecutionState, IntentReading, LeadId, ReplyIntent, Timestamp};
use crate::domain::{
    EmailAddress, InboundEffect, InboundRecord, Lead, LeadEvent, LeadStateKind, MailboxCursor, QuarantinedMessage, SequenceEnd,
};
use crate::inbound::{self, BounceReport, InboundMail, MailClass, intent};
use crate::ports::Drafter;
use crate::ports::store::LeadQuery;
use crate::ports::{Clock, FolderBatch, InboundMessage, Inbox, PageRequest, ReadBounds, Store, StoreError};

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
    /// Skipped for good after failing on three runs in a row (see the folder's cursor).
    pub quarantined: u32,
    /// Bytes fetched from the mailboxes.
    pub bytes_read: u64,
    /// Messages over the size bound, of which only the start was fetched.
    pub cut_short: u32,
    /// A folder had more new mail than one run reads; the next run goes on.
    pub more_waiting: bool,
    /// Folders that could not be read this time, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_folders: Vec<String>,
}

impl ReplyReport {
    fn tally(&mut self, processed: Processed) -> &mut u32 {
        match processed {
            Processed::Matched => &mut self.matched,
            Processed::Unmatched => &mut self.unmatched,
            Processed::Duplicate => &mut self.duplicates,
            Processed::Own => &mut self.own,
            Processed::Deferred => &mut self.deferred,
        }
    }
}

/// A sender's address as kept in the store: no real address is longer than 320 characters.
fn kept_sender(from: &str) -> String {
    from.chars().take(320).collect()
}

/// Whether `from` is the agent's own address (its sender or reply-to).
fn sent_by(agent: &Agent, from: Option<&str>) -> bool {
    let Some(from) = from else { return false };
    std::iter::once(&agent.sender.email).chain(agent.sender.reply_to.as_ref()).any(|ours| ours.as_str().eq_ignore_ascii_case(from))
}

/// Fills a quarantined entry with what a person needs to find the message in the mailbox.
fn describe(quarantined: &mut QuarantinedMessage, message: &InboundMessage) {
    if let Some(mail) = inbound::read(&message.raw) {
        quarantined.message_id = mail.message_id;
        quarantined.from = mail.from.as_deref().map(kept_sender);
        quarantined.subject = mail.subject.chars().take(200).collect();
    }
}

/// What one inbound message does to its lead.
fn effect_of(class: &MailClass) -> InboundEffect {
    match class {
        MailClass::HumanReply => InboundEffect::Ends(SequenceEnd::Replied),
        MailClass::Bounce(BounceReport { permanent: true, .. }) => InboundEffect::Ends(SequenceEnd::HardBounce),
        MailClass::Complaint { .. } => InboundEffect::Ends(SequenceEnd::Complaint),
        MailClass::UnsubscribeRequest => InboundEffect::Ends(SequenceEnd::Unsubscribed),
        MailClass::Bounce(_) => InboundEffect::SoftBounce,
        MailClass::AutoReply { absent_until } => InboundEffect::AutoReply { absent_until: *absent_until },
        MailClass::DeliveryReport { .. } | MailClass::BulkMail { .. } => InboundEffect::Noted,
    }
}

/// How long one poll may read and act before it leaves the rest to the next run, so the sweep
/// after it still fits the scheduled function's five minutes.
const POLL_BUDGET: Duration = Duration::from_secs(150);

pub struct ReplyProcessor {
    actions: InboundActions,
    store: Arc<dyn Store>,
    inbox: Arc<dyn Inbox>,
    clock: Arc<dyn Clock>,
    /// How far back a folder read for the first time is searched.
    lookback_days: u32,
    /// The watched mailboxes' own addresses: mail from them is ours.
    own_addresses: Vec<String>,
}

/// What a message from the lead's side does, wherever it was read: matched to its lead, kept on
/// it under its key (so a second reading changes nothing), and acted on.
pub(crate) struct InboundActions {
    ports: StepPorts,
    /// The model that reads a person's reply for its intent, when one is configured.
    reader: Option<Arc<dyn Drafter>>,
}

/// How a message finds its lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Matching {
    /// By the Message-IDs it refers to, then by the address it is about (mail read from a
    /// mailbox: a bounce may quote nothing of ours).
    ByIdsThenAddress,
    /// By the Message-IDs only (SES events name the email exactly; a configuration set may also
    /// carry another system's mail to the same address).
    ByIdsOnly,
}

pub(crate) enum Processed {
    Matched,
    Unmatched,
    Duplicate,
    Own,
    Deferred,
}

impl ReplyProcessor {
    pub fn new(ports: StepPorts, inbox: Arc<dyn Inbox>, reader: Arc<dyn Drafter>, lookback_days: u32) -> Self {
        let own_addresses = inbox.own_addresses();
        Self {
            store: ports.store.clone(),
            clock: ports.clock.clone(),
            actions: InboundActions::new(ports, Some(reader)),
            inbox,
            lookback_days,
            own_addresses,
        }
    }

    /// Reads and acts on the new messages of every folder, within `bounds`. A folder that cannot
    /// be read is reported and retried next run; the others go on.
    pub async fn poll(&self, bounds: ReadBounds) -> Result<ReplyReport, RetryableStepError> {
        let deadline = Instant::now() + POLL_BUDGET;
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
        for read in self.inbox.read_new(&cursors, since, bounds).await {
            let previous = cursors.get(&read.folder);
            match read.result {
                Ok(folder_batch) => {
                    report.bytes_read += folder_batch.bytes;
                    report.cut_short += folder_batch.cut_short;
                    report.more_waiting |= folder_batch.more_waiting;
                    if let Err(error) = self.process_folder(&read.folder, previous, folder_batch, deadline, &mut report).await {
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
            last_read_at: None,
            failing: None,
            quarantined: Vec::new(),
        }
    }

    /// Acts on a folder's batch in UID order and moves the folder's cursor past each message
    /// done. A message that fails stops the folder for this run and is tried first on the next;
    /// one that fails on [`crate::domain::mailbox::QUARANTINE_AFTER_FAILURES`] runs in a row is quarantined (kept in the
    /// mailbox, shown on the cursor) and skipped, so one message can never stop a folder for
    /// good. A message whose lead has a send in flight waits for the next run the same way.
    async fn process_folder(
        &self,
        folder: &str,
        previous: Option<&MailboxCursor>,
        batch: FolderBatch,
        deadline: Instant,
        report: &mut ReplyReport,
    ) -> Result<(), RetryableStepError> {
        let mut cursor = match previous {
            Some(cursor) if cursor.uid_validity == batch.uid_validity => cursor.clone(),
            Some(cursor) => MailboxCursor {
                messages_read: cursor.messages_read,
                quarantined: cursor.quarantined.clone(),
                last_read_at: cursor.last_read_at,
                ..self.fresh_cursor(folder, batch.uid_validity)
            },
            None => self.fresh_cursor(folder, batch.uid_validity),
        };
        let now = self.clock.now();
        let mut done_up_to = None;
        let mut outcome = Ok(());
        let mut stopped = false;
        for message in &batch.messages {
            if Instant::now() >= deadline {
                // The rest waits for the next run, which goes on from the cursor.
                report.more_waiting = true;
                stopped = true;
                break;
            }
            report.read += 1;
            let (failure, retryable) = match self.process(message).await {
                Ok(Processed::Deferred) => {
                    report.deferred += 1;
                    ("its lead had a send in flight on every try".to_string(), None)
                }
                Ok(processed) => {
                    *report.tally(processed) += 1;
                    cursor.message_done(message.uid);
                    done_up_to = Some(message.uid);
                    continue;
                }
                Err(error) => (error.0.clone(), Some(error)),
            };
            match cursor.message_failed(message.uid, &failure, now) {
                Some(quarantined) => {
                    describe(quarantined, message);
                    tracing::error!(folder, uid = message.uid, error = %quarantined.error, "a message was quarantined; the folder reads on");
                    report.quarantined += 1;
                    done_up_to = Some(message.uid);
                }
                None => {
                    tracing::warn!(folder, uid = message.uid, error = %failure, "a message could not be acted on; it is tried again next run");
                    if let Some(error) = retryable {
                        outcome = Err(error);
                    }
                    stopped = true;
                    break;
                }
            }
        }
        if !stopped {
            // Nothing failed this run: a message that failed before is gone (deleted, moved).
            cursor.failing = None;
        }
        cursor.last_polled_at = now;
        cursor.last_error = outcome.as_ref().err().map(|e| e.0.clone());
        // Read to the end: nothing failed, nothing was left for the next run.
        if !stopped && !batch.more_waiting {
            cursor.last_read_at = Some(now);
        }
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
        let message_key = mail.message_id.clone().unwrap_or_else(|| format!("sha256:{:x}", Sha256::digest(&message.raw)));
        self.actions.act(&mail, message_key, &message.folder, Matching::ByIdsThenAddress).await
    }
}

impl InboundActions {
    pub(crate) fn new(ports: StepPorts, reader: Option<Arc<dyn Drafter>>) -> Self {
        Self { ports, reader }
    }

    /// A person's reply read for its intent: by the model when one is configured (its reading
    /// checked against the reply's words), by the rules otherwise or when the model fails.
    async fn intent_of(&self, mail: &InboundMail) -> IntentReading {
        let sender = mail.from.as_deref();
        // What a person writes fits in a few thousand characters; the rest is quoted or pasted.
        let text: String = mail.text.chars().take(4_000).collect();
        if let Some(reader) = &self.reader {
            match reader.read_reply(&text).await {
                Ok(Some(mut reading)) => {
                    // The model may name any address the reply holds; only a colleague's is kept.
                    if let Some(referral) = &mut reading.referral {
                        referral.email = referral.email.take().filter(|email| intent::could_be_referred(email, sender));
                    }
                    return reading;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "the model could not read the reply's intent; the rules decide"),
            }
        }
        // The rules read untrusted text: should they ever fail, the reply is still acted on.
        std::panic::catch_unwind(|| intent::by_rules(&text, sender)).unwrap_or_else(|_| {
            tracing::error!("the intent rules failed on a reply; it is filed as other");
            IntentReading { intent: ReplyIntent::Other, referral: None, decided_by: "rules".into(), usage: None }
        })
    }

    /// Matches `mail` to its lead and applies it once; `source` says where it was read (a
    /// mailbox folder, the SES feedback queue).
    pub(crate) async fn act(
        &self,
        mail: &InboundMail,
        message_key: String,
        source: &str,
        matching: Matching,
    ) -> Result<Processed, RetryableStepError> {
        let Some(lead) = self.match_lead(mail, matching).await? else {
            tracing::info!(%source, class = mail.class.name(), "no lead matches this message");
            return Ok(Processed::Unmatched);
        };
        // A delivery notice is a machine's; anything else may be the agent's own mail, and a
        // person's answer may stop the company.
        let agent = if mail.class.is_delivery_notice() { None } else { self.agent_of(&lead).await? };
        if agent.as_ref().is_some_and(|agent| sent_by(agent, mail.from.as_deref())) {
            return Ok(Processed::Own);
        }
        let (lead_id, execution_id, agent_id) = (lead.id, lead.execution_id, lead.agent_id);
        // Read once: a message already kept on the lead is not read again.
        let reading = match mail.class {
            MailClass::HumanReply if !lead.has_inbound(&message_key) => Some(self.intent_of(mail).await),
            _ => None,
        };
        let now = self.ports.clock.now();
        // When the answer came and what it meant, for the company stop (read again on a
        // duplicate, from what the lead kept of it).
        let answered = match lead.inbound.iter().find(|r| r.message_key == message_key) {
            Some(kept) => (kept.received_at, kept.intent),
            None => (now, reading.as_ref().map(|r| r.intent)),
        };
        let record = InboundRecord {
            class: mail.class.name().into(),
            message_key,
            from: mail.from.as_deref().map(kept_sender),
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
            folder: source.to_string(),
            received_at: now,
            intent: reading.as_ref().map(|r| r.intent),
            usage: reading.as_ref().and_then(|r| r.usage),
            referral: reading.and_then(|r| r.referral),
        };
        let effect = effect_of(&mail.class);
        let processed = deciding(move || {
            let record = record.clone();
            async move {
                let Some(lead) = self.ports.load_lead(lead_id).await? else { return Ok(Processed::Unmatched) };
                if lead.has_inbound(&record.message_key) {
                    return Ok(Processed::Duplicate);
                }
                if lead.state.kind() == LeadStateKind::Sending {
                    return Ok(Processed::Deferred);
                }
                match lead.advanced(LeadEvent::Inbound { record: Some(record), effect }, self.ports.clock.now()) {
                    Ok(transition) => self.ports.commit(&transition).await?,
                    Err(_) => return Ok(Processed::Duplicate),
                }
                Ok(Processed::Matched)
            }
        })
        .await?;
        // Done again for a duplicate too: a stop that failed after the reply was recorded is
        // finished by the reply's next reading.
        // A note filed as other ("please disregard", "received") stops no one.
        if let Some(agent) = &agent
            && matches!(processed, Processed::Matched | Processed::Duplicate)
            && mail.class == MailClass::HumanReply
            && answered.1 != Some(ReplyIntent::Other)
        {
            self.stop_company(agent, &lead, mail.from.as_deref().unwrap_or(lead.contact.email.as_str()), answered.0).await?;
        }
        let hurts_reputation = matches!(effect, InboundEffect::Ends(SequenceEnd::HardBounce | SequenceEnd::Complaint));
        // Checked again for a duplicate too: a check that failed after the event was recorded
        // is retried with the event's redelivery.
        if matches!(processed, Processed::Matched | Processed::Duplicate) && hurts_reputation {
            pause_if_unhealthy(&self.ports, execution_id, agent_id).await?;
            if let Some(mailbox) = lead.thread_mailbox() {
                pause_mailbox_if_unhealthy(&self.ports, mailbox, agent_id).await?;
            }
        }
        Ok(processed)
    }

    /// Someone at `lead`'s company answered (`by`): with the agent's `replies.stop_company`, the
    /// sequences of the company's other leads in the agent's running and paused executions end,
    /// each with the reason. Companies are told by mail domain; free mail is no company.
    async fn stop_company(&self, agent: &Agent, lead: &Lead, by: &str, answered_at: Timestamp) -> Result<(), RetryableStepError> {
        let Some(domain) = lead.contact.company_mail_domain() else { return Ok(()) };
        if !agent.replies.stop_company {
            return Ok(());
        }
        let mut executions = PageRequest::first(100);
        loop {
            let page = self.ports.store.list_executions(Some(agent.id), &executions).await?;
            for execution in page.items.iter().filter(|e| matches!(e.state, ExecutionState::Running | ExecutionState::Paused)) {
                self.stop_company_in(execution.id, lead, &domain, by, answered_at).await?;
            }
            match page.next_cursor {
                Some(cursor) => executions = PageRequest { cursor: Some(cursor), ..executions },
                None => return Ok(()),
            }
        }
    }

    async fn stop_company_in(
        &self,
        execution_id: ExecutionId,
        lead: &Lead,
        domain: &str,
        by: &str,
        answered_at: Timestamp,
    ) -> Result<(), RetryableStepError> {
        // Only the leads whose sequence can still be stopped are read (the leads of an
        // execution are kept by state), not the finished ones.
        let stoppable = LeadStateKind::ALL
            .into_iter()
            .filter(|state| !state.is_terminal() && !matches!(state, LeadStateKind::Sending | LeadStateKind::Parked));
        for state in stoppable {
            let query = LeadQuery { execution_id: Some(execution_id), state: Some(state), ..Default::default() };
            self.stop_colleagues_among(&query, lead, domain, by, answered_at).await?;
        }
        Ok(())
    }

    async fn stop_colleagues_among(
        &self,
        query: &LeadQuery,
        lead: &Lead,
        domain: &str,
        by: &str,
        answered_at: Timestamp,
    ) -> Result<(), RetryableStepError> {
        let mut page_request = PageRequest::first(100);
        loop {
            let page = self.ports.store.list_leads(query, &page_request).await?;
            let colleagues = page.items.iter().filter(|other| {
                // A lead started after the answer (the colleague it referred us to) is not stopped
                // by it, even when the answer is read again.
                other.id != lead.id && other.created_at <= answered_at && other.contact.company_mail_domain().as_deref() == Some(domain)
            });
            for colleague in colleagues {
                self.stop_colleague(colleague.id, by).await?;
            }
            match page.next_cursor {
                Some(cursor) => page_request = PageRequest { cursor: Some(cursor), ..page_request },
                None => return Ok(()),
            }
        }
    }

    /// Ends one colleague's sequence, reading the lead again when a worker moved it meanwhile.
    async fn stop_colleague(&self, colleague_id: LeadId, by: &str) -> Result<(), RetryableStepError> {
        deciding(|| async move {
            let Some(colleague) = self.ports.load_lead(colleague_id).await? else { return Ok(()) };
            let event = LeadEvent::ColleagueReplied { by: by.to_string() };
            // Finished, or sending right now: nothing to stop.
            let Ok(transition) = colleague.advanced(event, self.ports.clock.now()) else { return Ok(()) };
            match self.ports.commit(&transition).await {
                Ok(()) | Err(Committed::NotEnqueued(_)) => Ok(()),
                Err(refused) => Err(refused.into()),
            }
        })
        .await
    }

    /// The lead's agent, unless it was deleted meanwhile.
    async fn agent_of(&self, lead: &Lead) -> Result<Option<Agent>, RetryableStepError> {
        match self.ports.store.get_agent(lead.agent_id).await {
            Ok(agent) => Ok(Some(agent)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// By the Message-IDs it refers to first, then by the address it is about among the leads we
    /// emailed, preferring one whose sequence is still running.
    async fn match_lead(&self, mail: &InboundMail, matching: Matching) -> Result<Option<Lead>, RetryableStepError> {
        for id in &mail.referenced_ids {
            if let Some(lead) = self.ports.store.find_lead_by_message_id(id).await? {
                return Ok(Some(lead));
            }
        }
        if matching == Matching::ByIdsOnly {
            return Ok(None);
        }
        let address = mail.class.subject_address().map(str::to_string).or_else(|| mail.from.clone());
        let Some(address) = address.and_then(|a| EmailAddress::parse(&a).ok()) else { return Ok(None) };
        let leads =
            self.ports.store.list_leads(&LeadQuery { email: Some(address), ..Default::default() }, &PageRequest::first(100)).await?;
        let contacted: Vec<Lead> = leads.items.into_iter().filter(|lead| !lead.sent_messages.is_empty()).collect();
        let running = contacted.iter().rev().find(|lead| !lead.state.kind().is_terminal()).cloned();
        Ok(running.or_else(|| contacted.into_iter().next_back()))
    }
}
