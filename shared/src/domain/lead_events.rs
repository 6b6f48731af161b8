//! The lead state machine: what each event does to a lead, as a complete `Transition` (the next
//! lead with every field the change implies, its counters, its log entry, its markers and the
//! message that moves it on). Nothing here performs I/O.

use serde_json::json;

use super::reply::{InboundEffect, SequenceEnd};
use super::transition::{
    ContactMarker, LeadChange, MAX_REDRIVES, MAX_SEND_RETRIES, MarkerChange, SEND_CLAIM_TIMEOUT, STEP_BUDGET, Transition,
};
use super::{
    Dispatch, ExecutionCounters, ExecutionLogEntry, InboundRecord, Lead, LeadState, LeadStateKind, LogLevel, SendClaim, SentMessage,
    SkipReason, StepMessage, StepQueue, Suppression, Timestamp, TokenUsage,
};

/// Something that happened to a lead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeadEvent {
    ResearchCompleted {
        /// The research report's key (the company domain), when there is a report.
        research_key: Option<String>,
        facts: usize,
        note: Option<String>,
    },
    DraftReady {
        needs_approval: bool,
        subject: String,
        drafted_by: String,
        usage: Option<TokenUsage>,
    },
    DraftApproved,
    DraftRejected,
    SendClaimed(SendClaim),
    /// The mailer accepted the email. `next_step_due_at` is when the next step is due, if one
    /// remains.
    SendConfirmed {
        claim_id: String,
        sent: SentMessage,
        next_step_due_at: Option<Timestamp>,
    },
    /// The mailer refused before anything left, so the claim (and its cap slots) is given
    /// back; with `hold`, the lead waits for its execution's resume (a configuration fault paused
    /// it); with `retry_at`, it waits until then (the provider asked to slow down).
    SendReleased {
        claim_id: String,
        why: String,
        hold: bool,
        retry_at: Option<Timestamp>,
        /// Whether the refusal counts towards `MAX_SEND_RETRIES` (a throttle does; a spent
        /// daily quota, which says when sending can resume, does not).
        counted: bool,
    },
    /// The lead may not be sent before `until` (outside its send window, no room in the
    /// mailboxes today): it waits, and the sweep enqueues it then.
    SendDeferred {
        until: Timestamp,
        why: String,
    },
    /// A waiting lead's time has come; with `hold`, its execution is paused.
    SendDue {
        hold: bool,
    },
    /// The mailer refused the email for good, before anything left.
    SendRefused {
        claim_id: String,
        why: String,
    },
    /// The send's outcome is unknown; a person decides.
    Park(String),
    /// The next step of a sent lead is due; with `hold`, its execution is paused.
    FollowUpDue {
        hold: bool,
    },
    /// The next step is due (or drafted and waiting to be sent) but must wait until `until`:
    /// the lead's mailboxes were not read recently enough to know the lead did not answer.
    FollowUpWaits {
        until: Timestamp,
    },
    /// Someone else at the lead's company answered (`by`, their address): the sequence stops.
    ColleagueReplied {
        by: String,
    },
    /// The lead's execution is paused: the lead waits where it is.
    Hold,
    /// The execution resumed: the lead's step is enqueued again.
    Unhold,
    /// Nothing moved the lead within its step's budget: the step is enqueued again.
    Redrive,
    /// The sweep looked and found the lead legitimately waiting (its queue is busy, its execution
    /// paused): it looks again later.
    Recheck,
    /// A message from the lead's side.
    Inbound {
        record: Option<InboundRecord>,
        effect: InboundEffect,
    },
    Skip(SkipReason),
    Fail(String),
    /// A person's decision about a parked lead.
    Resolved(Resolution),
}

/// What a person decided about a parked send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The email did leave (checked in the provider's console or the recipient's mailbox).
    Sent { sent: SentMessage, next_step_due_at: Option<Timestamp> },
    /// The email did not leave: send it again.
    SendAgain,
}

impl LeadEvent {
    fn name(&self) -> &'static str {
        match self {
            Self::ResearchCompleted { .. } => "research_completed",
            Self::DraftReady { .. } => "draft_ready",
            Self::DraftApproved => "draft_approved",
            Self::DraftRejected => "draft_rejected",
            Self::SendClaimed(_) => "send_claimed",
            Self::SendConfirmed { .. } => "send_confirmed",
            Self::SendReleased { .. } => "send_released",
            Self::SendDeferred { .. } => "send_deferred",
            Self::SendDue { .. } => "send_due",
            Self::SendRefused { .. } => "send_refused",
            Self::Park(_) => "park",
            Self::FollowUpDue { .. } => "follow_up_due",
            Self::FollowUpWaits { .. } => "follow_up_waits",
            Self::ColleagueReplied { .. } => "colleague_replied",
            Self::Hold => "hold",
            Self::Unhold => "unhold",
            Self::Redrive => "redrive",
            Self::Recheck => "recheck",
            Self::Inbound { .. } => "inbound",
            Self::Skip(_) => "skip",
            Self::Fail(_) => "fail",
            Self::Resolved(_) => "resolved",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a lead in state '{from}' cannot take the event {event}")]
pub struct InvalidTransition {
    pub from: LeadStateKind,
    pub event: &'static str,
}

/// What an event does besides moving the lead, collected while the next lead is built.
#[derive(Default)]
struct Effects {
    counters: ExecutionCounters,
    markers: Vec<MarkerChange>,
    dispatch: Option<StepQueue>,
    log: Option<(LogLevel, String, String, serde_json::Value)>,
}

impl Effects {
    fn log(&mut self, level: LogLevel, event: impl Into<String>, message: impl Into<String>) {
        self.log = Some((level, event.into(), message.into(), serde_json::Value::Null));
    }

    fn log_with(&mut self, level: LogLevel, event: impl Into<String>, message: impl Into<String>, data: serde_json::Value) {
        self.log = Some((level, event.into(), message.into(), data));
    }
}

impl Lead {
    /// The complete transition `event` implies, or why the event does not fit the lead's state.
    pub fn advanced(&self, event: LeadEvent, now: Timestamp) -> Result<Transition, InvalidTransition> {
        use LeadState as S;
        let from = self.state.kind();
        let invalid = InvalidTransition { from, event: event.name() };
        let mut next = self.clone();
        next.version = self.version + 1;
        next.updated_at = now;
        // A lead that moves is no longer waiting for a resume, unless the event holds it.
        next.on_hold = false;
        let mut effects = Effects::default();
        let waits_for_worker = StepQueue::advancing(from).is_some();
        match event {
            LeadEvent::ResearchCompleted { research_key, facts, note } if from == LeadStateKind::Queued => {
                next.state = S::Researched;
                effects.dispatch = Some(StepQueue::Draft);
                effects.log_with(
                    LogLevel::Info,
                    "lead.researched",
                    format!("research found {facts} facts about {}", self.contact.company),
                    json!({"company_domain": research_key, "facts": facts, "note": note}),
                );
                next.research_key = research_key;
            }
            LeadEvent::DraftReady { needs_approval, subject, drafted_by, usage }
                if matches!(from, LeadStateKind::Researched | LeadStateKind::FollowUpDue) =>
            {
                next.state = if needs_approval { S::AwaitingApproval } else { S::Drafted };
                if !needs_approval {
                    effects.dispatch = Some(StepQueue::Send);
                }
                if let Some(usage) = usage {
                    effects.counters.prompt_tokens = usage.prompt_tokens;
                    effects.counters.completion_tokens = usage.completion_tokens;
                }
                effects.log(LogLevel::Info, "lead.drafted", format!("step {} drafted by {drafted_by}: \"{subject}\"", self.step));
            }
            LeadEvent::DraftApproved if from == LeadStateKind::AwaitingApproval => {
                next.state = S::Approved;
                effects.dispatch = Some(StepQueue::Send);
                effects.log(LogLevel::Info, "lead.approved", format!("step {} approved by a reviewer", self.step));
            }
            LeadEvent::DraftRejected if from == LeadStateKind::AwaitingApproval => {
                next.state = S::Skipped { reason: SkipReason::RejectedByReviewer };
                effects.log(LogLevel::Info, "lead.skipped", format!("the draft of step {} was rejected by a reviewer", self.step));
            }
            LeadEvent::SendClaimed(claim) if matches!(from, LeadStateKind::Drafted | LeadStateKind::Approved) && !self.on_hold => {
                next.state = S::Sending { claim };
                next.contact_claimed = true;
                effects.markers.push(MarkerChange::ClaimContact(self.contact_marker()));
            }
            LeadEvent::SendConfirmed { claim_id, sent, next_step_due_at }
                if self.owns_claim(&claim_id) && !self.has_sent_step(sent.step) =>
            {
                self.record_send(&mut next, &mut effects, sent, next_step_due_at);
            }
            // A parked lead whose worker then learned that nothing left is given back too.
            LeadEvent::SendReleased { claim_id, why, hold, retry_at, counted } if self.owns_claim(&claim_id) => {
                next.send_retries = self.send_retries + u32::from(counted);
                let then = match retry_at {
                    _ if next.send_retries >= MAX_SEND_RETRIES => {
                        let reason = format!("the mailer refused step {} {MAX_SEND_RETRIES} times for now: {why}", self.step);
                        next.state = S::Failed { reason: reason.clone() };
                        effects.counters.failed = 1;
                        self.give_back_contact(&mut next, &mut effects);
                        "the lead failed".to_string()
                    }
                    Some(until) if !hold => {
                        next.state = S::Waiting { until, why: why.clone() };
                        format!("it waits until {}", until.format("%Y-%m-%d %H:%M UTC"))
                    }
                    _ => {
                        next.state = S::Drafted;
                        next.on_hold = hold;
                        if hold { "it waits for the execution to resume" } else { "it will be tried again" }.to_string()
                    }
                };
                self.give_back_slots(&mut effects);
                effects.log(LogLevel::Warn, "lead.send_released", format!("step {} was not sent: {why}; {then}", self.step));
            }
            LeadEvent::SendDeferred { until, why } if matches!(from, LeadStateKind::Drafted | LeadStateKind::Approved) && !self.on_hold => {
                effects.log_with(
                    LogLevel::Info,
                    "lead.waiting",
                    format!("step {} waits until {}: {why}", self.step, until.format("%Y-%m-%d %H:%M UTC")),
                    json!({"until": until, "why": why}),
                );
                next.state = S::Waiting { until, why };
            }
            LeadEvent::SendDue { hold } if from == LeadStateKind::Waiting => {
                next.state = S::Drafted;
                next.on_hold = hold;
                if !hold {
                    effects.dispatch = Some(StepQueue::Send);
                }
            }
            LeadEvent::SendRefused { claim_id, why } if self.owns_claim(&claim_id) => {
                let reason = format!("the mailer rejected the email: {why}");
                next.state = S::Failed { reason: reason.clone() };
                effects.counters.failed = 1;
                self.give_back_contact(&mut next, &mut effects);
                // Refused before anything left: the slot was not used.
                self.give_back_slots(&mut effects);
                effects.log(LogLevel::Error, "lead.failed", reason);
            }
            LeadEvent::Park(reason) if from == LeadStateKind::Sending => {
                next.state = S::Parked { reason: reason.clone(), claim: self.state.claim().cloned() };
                effects.log(
                    LogLevel::Error,
                    "lead.parked",
                    format!("step {} parked for review: {reason}; it will not be sent again automatically", self.step),
                );
            }
            LeadEvent::FollowUpDue { hold } if from == LeadStateKind::Sent => {
                next.state = S::FollowUpDue;
                next.step = self.step + 1;
                next.on_hold = hold;
                if !hold {
                    effects.dispatch = Some(StepQueue::Draft);
                }
                effects.log(LogLevel::Info, "lead.follow_up_due", format!("step {} is due", next.step));
            }
            // Logged on the execution, once, not on every lead at every run.
            LeadEvent::FollowUpWaits { until } if from == LeadStateKind::Sent && self.next_step_due_at.is_some_and(|due| due < until) => {
                next.next_step_due_at = Some(until);
            }
            // A follow-up drafted and waiting for its send window or a cap waits the same way.
            LeadEvent::FollowUpWaits { until } if self.step > 0 && matches!(&self.state, S::Waiting { until: old, .. } if *old < until) => {
                if let S::Waiting { why, .. } = &self.state {
                    next.state = S::Waiting { until, why: why.clone() };
                }
            }
            LeadEvent::Hold if waits_for_worker && !self.on_hold => {
                next.on_hold = true;
                effects.log(LogLevel::Info, "lead.held", format!("held in {from}: the execution is paused"));
            }
            LeadEvent::Unhold if waits_for_worker && self.on_hold => {
                next.on_hold = false;
                effects.dispatch = StepQueue::advancing(from);
            }
            LeadEvent::Redrive if waits_for_worker && !self.on_hold && self.redrives < MAX_REDRIVES => {
                next.redrives = self.redrives + 1;
                effects.dispatch = StepQueue::advancing(from);
                effects.log(
                    LogLevel::Warn,
                    "lead.redriven",
                    format!(
                        "nothing moved the lead out of {from} in time; its step was enqueued again ({} of {MAX_REDRIVES})",
                        next.redrives
                    ),
                );
            }
            LeadEvent::Recheck if waits_for_worker => next.on_hold = self.on_hold,
            LeadEvent::Inbound { record, effect } if from != LeadStateKind::Sending => {
                if record.as_ref().is_some_and(|r| self.has_inbound(&r.message_key)) {
                    return Err(invalid);
                }
                if !self.take_inbound(&mut next, &mut effects, record, effect, now) {
                    return Err(invalid);
                }
                // A note (an auto-reply, a soft bounce) leaves a held lead held.
                next.on_hold = self.on_hold && next.state == self.state;
            }
            LeadEvent::ColleagueReplied { by }
                if !from.is_terminal() && !matches!(from, LeadStateKind::Sending | LeadStateKind::Parked) =>
            {
                effects.log(LogLevel::Info, "lead.skipped", format!("stopped: {by}, at the same company, answered"));
                next.state = S::Skipped { reason: SkipReason::ColleagueReplied };
                self.give_back_contact(&mut next, &mut effects);
            }
            LeadEvent::Skip(reason) if !from.is_terminal() && !matches!(from, LeadStateKind::Sending | LeadStateKind::Parked) => {
                effects.log(LogLevel::Info, "lead.skipped", format!("skipped: {}", skip_reason_text(&reason)));
                next.state = S::Skipped { reason };
                self.give_back_contact(&mut next, &mut effects);
            }
            LeadEvent::Fail(reason) if !from.is_terminal() && !matches!(from, LeadStateKind::Sending | LeadStateKind::Parked) => {
                next.state = S::Failed { reason: reason.clone() };
                effects.counters.failed = 1;
                self.give_back_contact(&mut next, &mut effects);
                effects.log(LogLevel::Error, "lead.failed", reason);
            }
            LeadEvent::Resolved(Resolution::Sent { sent, next_step_due_at })
                if from == LeadStateKind::Parked && !self.has_sent_step(sent.step) =>
            {
                self.record_send(&mut next, &mut effects, sent, next_step_due_at);
                effects.log = effects
                    .log
                    .take()
                    .map(|(level, event, message, data)| (level, event, format!("{message} (a person confirmed it left)"), data));
            }
            LeadEvent::Resolved(Resolution::SendAgain) if from == LeadStateKind::Parked => {
                next.state = S::Drafted;
                effects.dispatch = Some(StepQueue::Send);
                effects.log(LogLevel::Warn, "lead.resolved", format!("a person asked for step {} to be sent again", self.step));
            }
            _ => return Err(invalid),
        }
        if next.state.kind() != from {
            next.redrives = 0;
        }
        if next.state.kind() != LeadStateKind::Sent {
            next.next_step_due_at = None;
        }
        next.attention_at = next.attention_time(now);
        let log = effects.log.map(|(level, event, message, data)| {
            ExecutionLogEntry::lead(level, self.execution_id, self.id, &event, message, now).with_data(data)
        });
        let dispatch = effects
            .dispatch
            .map(|queue| Dispatch { queue, message: StepMessage { execution_id: next.execution_id, lead_id: next.id, step: next.step } });
        Ok(Transition {
            lead: Some(LeadChange { from, next }),
            execution: None,
            counters: effects.counters,
            log: log.into_iter().collect(),
            markers: effects.markers,
            dispatch: dispatch.into_iter().collect(),
        })
    }

    /// When the sweep must look at this lead next, given its state. A held lead waits for its
    /// execution's resume; the sweep's look at running executions catches a lost one.
    fn attention_time(&self, now: Timestamp) -> Option<Timestamp> {
        match &self.state {
            LeadState::Sent => self.next_step_due_at,
            LeadState::Waiting { until, .. } => Some(*until),
            LeadState::Sending { claim } => Some(claim.claimed_at + SEND_CLAIM_TIMEOUT),
            state if StepQueue::advancing(state.kind()).is_some() && !self.on_hold => Some(now + STEP_BUDGET),
            _ => None,
        }
    }

    fn contact_marker(&self) -> ContactMarker {
        ContactMarker { agent_id: self.agent_id, address: self.contact.email.dedupe_key(), lead_id: self.id }
    }

    /// A lead that took the contact marker but never emailed anyone gives it back when it ends,
    /// so a later list may still reach the prospect.
    fn give_back_contact(&self, next: &mut Lead, effects: &mut Effects) {
        if self.contact_claimed && self.sent_messages.is_empty() {
            next.contact_claimed = false;
            effects.markers.push(MarkerChange::ReleaseContact(self.contact_marker()));
        }
    }

    /// A claim that sent nothing gives the cap slots it took back.
    fn give_back_slots(&self, effects: &mut Effects) {
        for slot in self.state.claim().map(|c| c.slots.clone()).unwrap_or_default() {
            effects.markers.push(MarkerChange::ReturnSlot(slot));
        }
    }

    fn owns_claim(&self, claim_id: &str) -> bool {
        self.state.claim().is_some_and(|claim| claim.claim_id == claim_id)
    }

    /// An email that left: recorded, counted, indexed for replies, and the next step scheduled.
    fn record_send(&self, next: &mut Lead, effects: &mut Effects, sent: SentMessage, next_step_due_at: Option<Timestamp>) {
        next.send_retries = 0;
        if let Some(mailbox) = &sent.mailbox {
            effects.markers.push(MarkerChange::CountMailbox {
                meter: super::pacing::mailbox_meter(mailbox),
                sent: 1,
                hard_bounced: 0,
                complained: 0,
            });
        }
        next.state = if next_step_due_at.is_some() { LeadState::Sent } else { LeadState::Completed };
        next.next_step_due_at = next_step_due_at;
        effects.counters.sent = 1;
        effects.markers.push(MarkerChange::IndexMessage { message_id: sent.message_id.clone(), lead_id: self.id });
        effects.log_with(
            LogLevel::Info,
            "lead.sent",
            format!("step {} sent to {}: \"{}\"", sent.step, self.contact.email, sent.subject),
            json!({"step": sent.step, "message_id": sent.message_id, "provider_message_id": sent.provider_message_id,
                   "next_step_due_at": next_step_due_at}),
        );
        next.sent_messages.push(sent);
    }

    /// Applies a message from the lead's side; `false` when it changes nothing.
    fn take_inbound(
        &self,
        next: &mut Lead,
        effects: &mut Effects,
        record: Option<InboundRecord>,
        effect: InboundEffect,
        now: Timestamp,
    ) -> bool {
        let class = record.as_ref().map_or("unsubscribe_request", |r| r.class.as_str()).to_string();
        let mut message = format!("{class} from {}", self.contact.email);
        let mut event = format!("lead.{class}");
        if let InboundEffect::Ends(end) = effect {
            if let Some(reason) = end.suppression_reason() {
                let source =
                    record.as_ref().map_or_else(|| "unsubscribe link".to_string(), |r| format!("{} read from {}", r.class, r.folder));
                let entry =
                    Suppression { entry: self.contact.email.dedupe_key(), reason: reason.into(), source: Some(source), created_at: now };
                effects.markers.push(MarkerChange::Suppress(entry));
            }
            let intent = record.as_ref().and_then(|r| r.intent);
            if intent.is_some() {
                next.reply_intent = intent;
            }
            if let Some(ended) = end.ended_state(self.state.kind()) {
                next.state = ended;
                effects.counters = end.counters();
                // The lead's first answer is what the statistics count it by.
                if let (SequenceEnd::Replied, Some(intent)) = (end, intent) {
                    effects.counters = effects.counters.plus(&super::ExecutionCounters::reply_with_intent(intent));
                }
                // The mailbox that sent the thread answers for it too.
                if let Some(mailbox) = self.thread_mailbox().filter(|_| matches!(end, SequenceEnd::HardBounce | SequenceEnd::Complaint)) {
                    let (hard_bounced, complained) = if end == SequenceEnd::HardBounce { (1, 0) } else { (0, 1) };
                    let meter = super::pacing::mailbox_meter(mailbox);
                    effects.markers.push(MarkerChange::CountMailbox { meter, sent: 0, hard_bounced, complained });
                }
                event = format!("lead.{}", next.state.kind());
                message = format!("{} → {}", self.contact.email, next.state.kind());
            }
        } else {
            effects.counters = effect.counters();
        }
        if let Some(usage) = record.as_ref().and_then(|r| r.usage) {
            effects.counters.prompt_tokens += usage.prompt_tokens;
            effects.counters.completion_tokens += usage.completion_tokens;
        }
        if let (InboundEffect::AutoReply { absent_until }, Some(due), LeadState::Sent) = (effect, self.next_step_due_at, &self.state) {
            let received = record.as_ref().map_or(now, |r| r.received_at);
            let moved = super::reply::due_after_absence(due, absent_until, received);
            if moved != due {
                next.next_step_due_at = Some(moved);
                message = format!("{message}: next email moved to {}", moved.format("%Y-%m-%d"));
            }
        }
        let changed = next.state != self.state || record.is_some();
        let data = record.as_ref().map_or(
            serde_json::Value::Null,
            |r| json!({"class": r.class, "subject": r.subject, "status": r.status, "absent_until": r.absent_until, "intent": r.intent}),
        );
        if let Some(record) = record {
            next.record_inbound(record);
        }
        effects.log_with(LogLevel::Info, event, message, data);
        changed
    }
}

fn skip_reason_text(reason: &SkipReason) -> &'static str {
    match reason {
        SkipReason::Suppressed => "the address is suppressed",
        SkipReason::Duplicate => "the address appears earlier in the execution",
        SkipReason::AlreadyContacted => "this agent already emailed the address",
        SkipReason::ExecutionCancelled => "the execution was cancelled",
        SkipReason::RejectedByReviewer => "a reviewer rejected the draft",
        SkipReason::ExecutionFailed => "the execution's start did not finish",
        SkipReason::Undeliverable => "the address's domain cannot receive mail",
        SkipReason::ColleagueReplied => "someone else at the company answered",
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::domain::reply::SequenceEnd;
    use crate::domain::transition::MarkerChange;
    use crate::domain::{AgentId, EmailAddress, ExecutionId, LeadContact};

    fn now() -> Timestamp {
        chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z").unwrap().to_utc()
    }

    fn lead() -> Lead {
        let contact = LeadContact {
            email: EmailAddress::parse("ada@initech.example").unwrap(),
            first_name: "Ada".into(),
            last_name: None,
            company: "Initech".into(),
            title: None,
            company_domain: None,
            time_zone: None,
        };
        Lead::new(ExecutionId::generate(), 0, AgentId::generate(), contact, now())
    }

    /// Applies `event` and returns the next lead.
    fn after(lead: &Lead, event: LeadEvent) -> Lead {
        lead.advanced(event, now()).unwrap().next_lead().unwrap().clone()
    }

    fn claim(id: &str) -> SendClaim {
        SendClaim { claim_id: id.into(), claimed_at: now(), mailbox: None, slots: Vec::new() }
    }

    fn sent(step: u32) -> SentMessage {
        SentMessage {
            step,
            message_id: format!("m{step}@x"),
            provider_message_id: "p".into(),
            subject: "Hi".into(),
            sent_at: now(),
            mailbox: None,
        }
    }

    fn drafted() -> Lead {
        let researched = after(&lead(), LeadEvent::ResearchCompleted { research_key: None, facts: 0, note: None });
        after(
            &researched,
            LeadEvent::DraftReady { needs_approval: false, subject: "Hi".into(), drafted_by: "template".into(), usage: None },
        )
    }

    #[test]
    fn a_lead_walks_the_happy_path_and_each_transition_says_what_follows() {
        let lead = lead();
        let research =
            lead.advanced(LeadEvent::ResearchCompleted { research_key: Some("initech.example".into()), facts: 2, note: None }, now());
        let research = research.unwrap();
        assert_eq!(research.dispatch[0].queue, StepQueue::Draft);
        assert_eq!(research.log[0].event, "lead.researched");
        let researched = research.next_lead().unwrap();
        assert_eq!((researched.version, researched.research_key.as_deref()), (1, Some("initech.example")));

        let usage = TokenUsage { prompt_tokens: 100, completion_tokens: 20 };
        let draft = researched.advanced(
            LeadEvent::DraftReady { needs_approval: false, subject: "Hi".into(), drafted_by: "llm".into(), usage: Some(usage) },
            now(),
        );
        let draft = draft.unwrap();
        assert_eq!((draft.counters.prompt_tokens, draft.dispatch[0].queue), (100, StepQueue::Send));

        let claim_transition = draft.next_lead().unwrap().advanced(LeadEvent::SendClaimed(claim("c1")), now()).unwrap();
        assert!(matches!(&claim_transition.markers[..], [MarkerChange::ClaimContact(m)] if m.address == "ada@initech.example"));
        let sending = claim_transition.next_lead().unwrap();
        assert_eq!(sending.attention_at, Some(now() + SEND_CLAIM_TIMEOUT), "an old claim is the sweep's business");

        let due = now() + Duration::days(3);
        let confirm =
            sending.advanced(LeadEvent::SendConfirmed { claim_id: "c1".into(), sent: sent(0), next_step_due_at: Some(due) }, now());
        let confirm = confirm.unwrap();
        assert_eq!(confirm.counters.sent, 1);
        assert!(matches!(&confirm.markers[..], [MarkerChange::IndexMessage { message_id, .. }] if message_id == "m0@x"));
        let sent_lead = confirm.next_lead().unwrap();
        assert_eq!((sent_lead.state.kind(), sent_lead.attention_at), (LeadStateKind::Sent, Some(due)));

        let due_lead = after(sent_lead, LeadEvent::FollowUpDue { hold: false });
        assert_eq!((due_lead.step, due_lead.next_step_due_at), (1, None));
    }

    #[test]
    fn a_claim_is_settled_only_by_its_owner_and_a_parked_send_can_still_be_confirmed() {
        let sending = after(&drafted(), LeadEvent::SendClaimed(claim("c1")));
        assert!(sending.advanced(LeadEvent::SendClaimed(claim("c2")), now()).is_err());
        let other = LeadEvent::SendConfirmed { claim_id: "c2".into(), sent: sent(0), next_step_due_at: None };
        assert!(sending.advanced(other, now()).is_err());
        let parked = after(&sending, LeadEvent::Park("timeout".into()));
        assert_eq!(parked.state.claim().map(|c| c.claim_id.as_str()), Some("c1"));
        assert_eq!(parked.attention_at, None, "a person decides");
        let late = after(&parked, LeadEvent::SendConfirmed { claim_id: "c1".into(), sent: sent(0), next_step_due_at: None });
        assert_eq!(late.state, LeadState::Completed, "the worker that did send records it");
        assert!(parked.advanced(LeadEvent::Fail("x".into()), now()).is_err(), "a parked lead is never failed blindly");
    }

    #[test]
    fn a_refused_first_email_gives_the_contact_marker_back_and_a_release_can_hold() {
        let sending = after(&drafted(), LeadEvent::SendClaimed(claim("c1")));
        let refused = sending.advanced(LeadEvent::SendRefused { claim_id: "c1".into(), why: "550".into() }, now()).unwrap();
        assert_eq!(refused.counters.failed, 1);
        assert!(matches!(&refused.markers[..], [MarkerChange::ReleaseContact(_)]));
        let held = after(
            &sending,
            LeadEvent::SendReleased { claim_id: "c1".into(), why: "quota".into(), hold: true, retry_at: None, counted: false },
        );
        assert!(held.on_hold && held.state == LeadState::Drafted);
        assert_eq!(held.attention_at, None, "a held lead waits for its execution's resume");
        let resumed = held.advanced(LeadEvent::Unhold, now()).unwrap();
        assert_eq!(resumed.dispatch[0].queue, StepQueue::Send);
        assert!(held.advanced(LeadEvent::SendClaimed(claim("c2")), now()).is_err(), "a held lead is not sent");
    }

    #[test]
    fn a_lead_that_may_not_be_sent_yet_waits_and_the_sweep_sends_it_then() {
        let until = now() + chrono::Duration::hours(3);
        let waiting = drafted().advanced(LeadEvent::SendDeferred { until, why: "outside the send window".into() }, now()).unwrap();
        assert!(waiting.dispatch.is_empty(), "nothing waits in a queue");
        let waiting = waiting.next_lead().unwrap().clone();
        assert_eq!(waiting.state.kind(), LeadStateKind::Waiting);
        assert_eq!(waiting.attention_at, Some(until), "the sweep looks when it becomes sendable");
        assert!(waiting.advanced(LeadEvent::SendClaimed(claim("c1")), now()).is_err(), "a waiting lead is not sent");
        let due = waiting.advanced(LeadEvent::SendDue { hold: false }, until).unwrap();
        assert_eq!(due.dispatch[0].queue, StepQueue::Send);
        let held = after(&waiting, LeadEvent::SendDue { hold: true });
        assert!(held.on_hold && held.state == LeadState::Drafted, "a paused execution's lead waits for the resume");
        assert!(waiting.advanced(LeadEvent::Skip(SkipReason::ExecutionCancelled), now()).is_ok(), "a cancel reaches it");
    }

    #[test]
    fn a_colleague_s_answer_stops_a_waiting_sequence_but_never_an_email_leaving_or_a_finished_lead() {
        let by = || LeadEvent::ColleagueReplied { by: "ada@initech.example".into() };
        let mut sent = drafted();
        sent.state = LeadState::Sent;
        let stopped = after(&sent, by());
        assert_eq!(stopped.state, LeadState::Skipped { reason: SkipReason::ColleagueReplied });
        let sending = after(&drafted(), LeadEvent::SendClaimed(claim("c1")));
        assert!(sending.advanced(by(), now()).is_err(), "an email leaving now is not stopped half-way");
        assert!(stopped.advanced(by(), now()).is_err(), "a finished lead is not stopped again");
    }

    #[test]
    fn a_follow_up_that_must_wait_for_a_fresh_read_moves_only_later_and_a_first_email_never_waits() {
        let later = now() + chrono::Duration::minutes(5);
        let mut sent = drafted();
        sent.state = LeadState::Sent;
        sent.next_step_due_at = Some(now());
        let waited = after(&sent, LeadEvent::FollowUpWaits { until: later });
        assert_eq!((waited.next_step_due_at, waited.attention_at), (Some(later), Some(later)), "the sweep looks again then");
        assert!(waited.advanced(LeadEvent::FollowUpWaits { until: now() }, now()).is_err(), "never earlier");

        let mut waiting = drafted();
        waiting.state = LeadState::Waiting { until: now(), why: "outside the send window".into() };
        assert!(waiting.advanced(LeadEvent::FollowUpWaits { until: later }, now()).is_err(), "a first email has no answer to wait for");
        waiting.step = 1;
        let held = after(&waiting, LeadEvent::FollowUpWaits { until: later });
        assert_eq!(held.state, LeadState::Waiting { until: later, why: "outside the send window".into() });
        assert_eq!(held.attention_at, Some(later));
    }

    #[test]
    fn a_refusal_for_now_gives_the_slots_back_and_waits_until_the_retries_run_out() {
        let slot = crate::domain::SlotRef { meter: "mailbox:dana@northwind.example".into(), day: now().date_naive() };
        let mut lead = drafted();
        for attempt in 0..MAX_SEND_RETRIES {
            let claim = SendClaim { slots: vec![slot.clone()], ..claim("c1") };
            let sending = after(&lead, LeadEvent::SendClaimed(claim));
            let retry_at = Some(now() + crate::domain::transition::send_retry_delay(attempt));
            let release = LeadEvent::SendReleased { claim_id: "c1".into(), why: "421 busy".into(), hold: false, retry_at, counted: true };
            let released = sending.advanced(release, now()).unwrap();
            assert!(released.markers.contains(&MarkerChange::ReturnSlot(slot.clone())), "the cap slot is given back");
            lead = released.next_lead().unwrap().clone();
            if attempt + 1 < MAX_SEND_RETRIES {
                assert_eq!(lead.state.kind(), LeadStateKind::Waiting, "attempt {attempt}");
                lead = after(&lead, LeadEvent::SendDue { hold: false });
            }
        }
        assert_eq!(lead.state.kind(), LeadStateKind::Failed, "a refusal that never ends fails the lead with the reason");
        let spent = SendClaim { ..claim("c2") };
        let sending = after(&drafted(), LeadEvent::SendClaimed(spent));
        let quota =
            LeadEvent::SendReleased { claim_id: "c2".into(), why: "quota".into(), hold: false, retry_at: Some(now()), counted: false };
        assert_eq!(after(&sending, quota).send_retries, 0, "a spent daily quota is no refusal of this email");
    }

    #[test]
    fn a_held_lead_that_moves_is_no_longer_held_unless_the_event_holds_it() {
        let held = after(&lead(), LeadEvent::Hold);
        assert!(held.on_hold);
        assert!(after(&held, LeadEvent::Recheck).on_hold, "looking again changes nothing");
        assert!(!after(&held, LeadEvent::ResearchCompleted { research_key: None, facts: 0, note: None }).on_hold);
        let note = LeadEvent::Inbound { record: None, effect: InboundEffect::Ends(SequenceEnd::Unsubscribed) };
        assert!(!after(&held, note).on_hold);
    }

    #[test]
    fn a_lead_that_claimed_but_never_sent_gives_the_contact_marker_back_when_it_ends() {
        let sending = after(&drafted(), LeadEvent::SendClaimed(claim("c1")));
        let released = after(
            &sending,
            LeadEvent::SendReleased { claim_id: "c1".into(), why: "throttled".into(), hold: false, retry_at: None, counted: false },
        );
        assert!(released.contact_claimed, "a released claim keeps the marker: the lead will try again");
        let failed = released.advanced(LeadEvent::Fail("gave up".into()), now()).unwrap();
        assert!(matches!(&failed.markers[..], [MarkerChange::ReleaseContact(_)]));
        assert!(!failed.next_lead().unwrap().contact_claimed);
        let never_claimed = drafted().advanced(LeadEvent::Skip(SkipReason::ExecutionCancelled), now()).unwrap();
        assert!(never_claimed.markers.is_empty(), "nothing to give back");
        let parked = after(&sending, LeadEvent::Park("unknown".into()));
        let late_refusal = parked.advanced(LeadEvent::SendRefused { claim_id: "c1".into(), why: "550".into() }, now()).unwrap();
        assert_eq!(late_refusal.next_lead().unwrap().state.kind(), LeadStateKind::Failed, "its worker learned nothing left");
    }

    #[test]
    fn redrives_are_counted_and_bounded() {
        let mut lead = lead();
        for n in 1..=MAX_REDRIVES {
            let redrive = lead.advanced(LeadEvent::Redrive, now()).unwrap();
            assert_eq!(redrive.dispatch[0].queue, StepQueue::Research);
            lead = redrive.next_lead().unwrap().clone();
            assert_eq!(lead.redrives, n);
        }
        assert!(lead.advanced(LeadEvent::Redrive, now()).is_err(), "then the sweep fails the lead instead");
        let researched = after(&lead, LeadEvent::ResearchCompleted { research_key: None, facts: 0, note: None });
        assert_eq!(researched.redrives, 0, "a lead that moves starts afresh");
    }

    #[test]
    fn replies_end_the_sequence_never_during_a_send_and_a_message_counts_once() {
        let sending = after(&drafted(), LeadEvent::SendClaimed(claim("c1")));
        let reply = LeadEvent::Inbound { record: None, effect: InboundEffect::Ends(SequenceEnd::Replied) };
        assert!(sending.advanced(reply.clone(), now()).is_err());
        let sent = after(&sending, LeadEvent::SendConfirmed { claim_id: "c1".into(), sent: sent(0), next_step_due_at: Some(now()) });
        let replied = sent.advanced(reply.clone(), now()).unwrap();
        assert_eq!((replied.counters.replied, replied.next_lead().unwrap().state.kind()), (1, LeadStateKind::Replied));
        assert!(replied.next_lead().unwrap().advanced(reply, now()).is_err(), "nothing changes the second time");
        let complaint = LeadEvent::Inbound { record: None, effect: InboundEffect::Ends(SequenceEnd::Complaint) };
        let unsubscribed = replied.next_lead().unwrap().advanced(complaint, now()).unwrap();
        assert!(matches!(&unsubscribed.markers[..], [MarkerChange::Suppress(s)] if s.reason == "complaint"));
        assert_eq!(unsubscribed.counters.complained, 1);
    }

    #[test]
    fn terminal_leads_cannot_be_skipped_or_failed() {
        let completed = LeadState::Completed;
        let mut lead = lead();
        lead.state = completed;
        assert!(lead.advanced(LeadEvent::Skip(SkipReason::ExecutionCancelled), now()).is_err());
        assert!(lead.advanced(LeadEvent::Fail("again".into()), now()).is_err());
    }
}
