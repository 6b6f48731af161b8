//! Send, exactly once. SQS delivers at least once and mail providers have no idempotency key,
//! so the lead is claimed before the email leaves:
//! 1. `drafted/approved → sending` with a fresh claim id, in the same write as the agent's
//!    contact marker for the address (refused when another lead of the agent holds it);
//! 2. the email goes out with a Message-ID derived from (lead, step);
//! 3. what the mailer answered is written, retried until it lands: `sent` with the provider's
//!    id; the claim given back only when the answer proves nothing left; `failed` when the
//!    provider refused for good; `parked` for a person when the answer proves nothing either way.
//!
//! A delivery that finds the lead `sending` under a claim younger than `SEND_CLAIM_TIMEOUT`
//! leaves it to the live worker and retries later; an older claim means the worker died
//! mid-send, and the lead is parked: it is never sent again on a guess.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Duration as Span;

use super::admission::{Admission, admit, skip_if_suppressed};
use super::control::pause_for_configuration;
use super::draft::fail;
use super::pacing::{Chance, SendPlan, SendingMailboxes, plan_send};
use super::reply_freshness::FreshnessRule;
use super::{Committed, Interrupted, RetryableStepError, StepOutcome, StepPorts, StepResult, deciding};
use crate::domain::outreach_email::{self, OutreachEmail, UnsubscribeLinks};
use crate::domain::pacing::{MailboxError, mailbox_meter};
use crate::domain::transition::{SEND_CLAIM_TIMEOUT, send_retry_delay};
use crate::domain::unsubscribe::UnsubscribeSigner;
use crate::domain::{
    Agent, Lead, LeadEvent, LeadId, LeadState, MarkerChange, SendClaim, SendingSlot, SentMessage, SkipReason, Timestamp, Transition,
};
pub use crate::ports::{FixedUnsubscribeKey, UnsubscribeKeys};
use crate::ports::{MailError, Mailer, SendReceipt, StepMessage, StoreError};

/// How long the outcome of a send is retried against an unavailable store before the claim is
/// left for the sweep (which parks it): inside the send function's 30 s timeout.
const SETTLE_DEADLINE: Duration = Duration::from_secs(20);

/// How unsubscribe links in outgoing emails are built.
#[derive(Clone)]
pub struct UnsubscribeSettings {
    pub keys: Arc<dyn UnsubscribeKeys>,
    /// The public base URL of the API, for example `https://abc.execute-api.eu-west-1.amazonaws.com`.
    pub public_base_url: String,
}

impl UnsubscribeSettings {
    pub fn links_for(&self, signer: &UnsubscribeSigner, agent: &Agent, lead: &Lead) -> UnsubscribeLinks {
        UnsubscribeLinks {
            https_url: format!("{}/unsubscribe/{}", self.public_base_url.trim_end_matches('/'), signer.token_for(lead.id)),
            mailto: format!("mailto:{}?subject=unsubscribe", agent.sender.reply_to.as_ref().unwrap_or(&agent.sender.email)),
        }
    }
}

pub struct SendStep {
    pub(crate) ports: StepPorts,
    mailer: Arc<dyn Mailer>,
    unsubscribe: UnsubscribeSettings,
    mailboxes: Arc<SendingMailboxes>,
    /// A follow-up leaves only after the agent's mailboxes were read recently.
    freshness: FreshnessRule,
}

/// What the mailer's answer means for the claim.
enum Settlement {
    Confirm(SendReceipt),
    /// Nothing left; the lead waits until `retry_at` and tries again.
    Release {
        why: String,
        retry_at: Timestamp,
        counted: bool,
    },
    /// Nothing left and nothing can until a setting is fixed: the claim is given back, the lead
    /// held and the execution paused.
    Hold(String),
    Refuse(String),
    Park(String),
}

impl SendStep {
    pub fn new(
        ports: StepPorts,
        mailer: Arc<dyn Mailer>,
        unsubscribe: UnsubscribeSettings,
        mailboxes: Arc<SendingMailboxes>,
        freshness: FreshnessRule,
    ) -> Self {
        Self { ports, mailer, unsubscribe, mailboxes, freshness }
    }

    pub async fn handle(&self, message: &StepMessage) -> StepResult {
        deciding(move || self.attempt(message)).await
    }

    async fn attempt(&self, message: &StepMessage) -> Result<StepOutcome, Interrupted> {
        let ports = &self.ports;
        let now = ports.clock.now();
        let Some(lead) = ports.load_lead(message.lead_id).await? else {
            return Ok(StepOutcome::Ignored("no such lead".into()));
        };
        if lead.has_sent_step(message.step) {
            return Ok(StepOutcome::AlreadyDone);
        }
        if lead.step != message.step {
            return Ok(StepOutcome::Ignored(format!("lead is on step {}, message is for step {}", lead.step, message.step)));
        }
        match &lead.state {
            LeadState::Drafted | LeadState::Approved if !lead.on_hold => {}
            LeadState::Sending { claim } if now - claim.claimed_at < SEND_CLAIM_TIMEOUT => {
                let age = (now - claim.claimed_at).num_seconds();
                return Err(Interrupted::Retry(format!(
                    "a send of step {} is in flight (claimed {age} s ago); this delivery waits",
                    lead.step
                )));
            }
            LeadState::Sending { .. } => {
                let why = "the send of this step was interrupted before its outcome was recorded; the email may or may not have left";
                return park_interrupted(ports, &lead, why).await;
            }
            other => return Ok(StepOutcome::Ignored(format!("lead is {}", other.kind()))),
        }
        let execution = match admit(ports, &lead).await? {
            Admission::Proceed(execution) => execution,
            Admission::Stop(outcome) => return Ok(outcome),
        };
        if skip_if_suppressed(ports, &lead).await? {
            return Ok(StepOutcome::Skipped);
        }
        let Some(signer) = self.unsubscribe.keys.signer().await else {
            let reason = "no unsubscribe signing key can be loaded, and every email must carry a working unsubscribe link";
            return pause_for_configuration(ports, &lead, &execution, reason, LeadEvent::Hold).await;
        };
        let agent = ports.store.get_agent(lead.agent_id).await?;
        // Checked here too, not only when the sweep finds the follow-up due: a follow-up also
        // reaches this step on a resume, an approval or a re-drive.
        if lead.step > 0
            && let Some(why) = self.freshness.check(ports.store.as_ref()).await?.why_waiting(&agent, now)
        {
            return defer(ports, &lead, now + self.freshness.recheck_after(), format!("the follow-up waits: {why}")).await;
        }
        let Some(draft) = ports.store.get_draft(lead.id, lead.step).await? else {
            return fail(ports, &lead, format!("no draft is stored for step {}", lead.step)).await;
        };
        let chance = Chance { jitter: rand_unit(), spread: rand_unit() };
        let (mailbox, slots) = match plan_send(ports.store.as_ref(), &self.mailboxes, &agent, &lead, now, chance).await? {
            SendPlan::Send { mailbox, slots } => (mailbox, slots),
            SendPlan::Wait { until, why } => return defer(ports, &lead, until, why).await,
            SendPlan::Misconfigured(why) => return pause_for_configuration(ports, &lead, &execution, &why, LeadEvent::Hold).await,
        };
        let links = self.unsubscribe.links_for(&signer, &agent, &lead);
        let email = match outreach_email::compose(&agent, &lead, &draft, &links, mailbox.as_ref(), now) {
            Ok(email) => email,
            Err(e) => return fail(ports, &lead, format!("the email could not be composed: {e}")).await,
        };

        let claim = SendClaim {
            claim_id: uuid::Uuid::new_v4().to_string(),
            claimed_at: now,
            mailbox: mailbox.as_ref().map(|m| m.address.clone()),
            slots: slots.iter().map(SendingSlot::reference).collect(),
        };
        let claim_id = claim.claim_id.clone();
        let Ok(claiming) = lead.advanced(LeadEvent::SendClaimed(claim), now) else {
            return Ok(StepOutcome::Ignored("lead changed before the claim".into()));
        };
        // The slots are taken in the claim's own write: no room means `Conflict`, and the
        // decision is made again on what the store now holds.
        let claiming = claiming.and(Transition::markers(slots.into_iter().map(MarkerChange::TakeSlot).collect()));
        match ports.commit(&claiming).await {
            Ok(()) => {}
            Err(Committed::Refused(StoreError::ContactHeld)) => return skip_already_contacted(ports, &lead).await,
            // A claim that landed although its answer was lost (the store's retry then met it, or
            // every retry failed): the claim id is this attempt's own, so the send is ours to make.
            Err(Committed::Refused(_)) if self.holds_claim(lead.id, &claim_id).await? => {}
            Err(other) => return Err(other.into()),
        }

        let settlement = match self.mailer.send(&email).await {
            Ok(receipt) => Settlement::Confirm(receipt),
            Err(MailError::Retryable(why)) => {
                Settlement::Release { why, retry_at: now + send_retry_delay(lead.send_retries), counted: true }
            }
            Err(error @ MailError::Paced(wait)) => {
                let retry_at = now + Span::from_std(wait).unwrap_or(Span::minutes(1)).max(Span::minutes(1));
                Settlement::Release { why: error.to_string(), retry_at, counted: false }
            }
            Err(MailError::DailyLimit(why)) => {
                // A mailbox's provider counts its day in the mailbox's zone; SES's quota is a
                // rolling 24 hours, so an hour later some of it is back.
                let retry_at = mailbox.as_ref().map_or(now + Span::hours(1), |m| m.time_zone.next_midnight(now));
                Settlement::Release { why, retry_at, counted: false }
            }
            Err(MailError::Rejected(why)) => Settlement::Refuse(why),
            Err(MailError::Ambiguous(why)) => Settlement::Park(format!("the mailer's answer was ambiguous: {why}")),
            Err(MailError::Configuration(why)) => Settlement::Hold(why),
        };
        self.settle(&agent, &email, lead.id, &claim_id, settlement).await.map_err(|e| Interrupted::Retry(e.0))
    }

    /// Whether the lead is `sending` under this claim.
    async fn holds_claim(&self, lead_id: LeadId, claim_id: &str) -> Result<bool, Interrupted> {
        let lead = self.ports.store.get_lead(lead_id).await?;
        Ok(matches!(&lead.state, LeadState::Sending { claim } if claim.claim_id == claim_id))
    }

    /// Writes what the mailer's answer means, however long the store takes to accept it (within
    /// the function's time), re-reading the lead after a conflict. Never re-runs the send.
    async fn settle(
        &self,
        agent: &Agent,
        email: &OutreachEmail,
        lead_id: LeadId,
        claim_id: &str,
        settlement: Settlement,
    ) -> Result<StepOutcome, RetryableStepError> {
        let ports = &self.ports;
        let deadline = Instant::now() + SETTLE_DEADLINE;
        let mut pause = Duration::from_millis(100);
        loop {
            let attempt = async {
                let lead = ports.store.get_lead(lead_id).await.map_err(Committed::Refused)?;
                if lead.state.claim().is_none_or(|c| c.claim_id != claim_id) || lead.has_sent_step(email.step) {
                    // Settled already (a landed write whose answer was lost), or by a person.
                    return Ok(false);
                }
                let now = ports.clock.now();
                // Settled another way meanwhile (a person resolved the parked lead): nothing to write.
                let Ok(mut transition) = lead.advanced(settlement.event(agent, &lead, email, claim_id, now), now) else { return Ok(false) };
                if let Settlement::Hold(why) = &settlement {
                    // Every lead would meet this fault: the execution pauses in the same write.
                    let execution = ports.store.get_execution(lead.execution_id).await.map_err(Committed::Refused)?;
                    if let Ok(pause) = execution.paused_because(&format!("the mailer cannot send as configured: {why}"), now) {
                        tracing::error!(execution_id = %execution.id, %why, "a configuration fault pauses the execution");
                        transition = transition.and(pause);
                    }
                }
                // A mailbox's health shows the last answer that was not an acceptance.
                if let (Some(why), Some(mailbox)) = (settlement.failure(), lead.state.claim().and_then(|c| c.mailbox.as_ref())) {
                    let error = MailboxError { error: why.chars().take(500).collect(), at: now };
                    transition =
                        transition.and(Transition::markers(vec![MarkerChange::NoteMailboxError { meter: mailbox_meter(mailbox), error }]));
                }
                ports.commit(&transition).await?;
                Ok(true)
            };
            let error = match attempt.await {
                Ok(true) => return settlement.outcome(),
                Ok(false) => return Ok(StepOutcome::AlreadyDone),
                // Written; only the message after it is missing, which the sweep re-drives.
                Err(Committed::NotEnqueued(why)) => {
                    tracing::warn!(%lead_id, %why, "the outcome of the send is recorded");
                    return settlement.outcome();
                }
                Err(Committed::Refused(StoreError::Conflict)) if Instant::now() < deadline => continue,
                Err(Committed::Refused(error)) => error.to_string(),
            };
            if Instant::now() >= deadline {
                tracing::error!(%lead_id, %error, "the outcome of a send could not be recorded; the sweep will park the lead");
                return Err(RetryableStepError(format!("the outcome of the send could not be recorded: {error}")));
            }
            tracing::warn!(%lead_id, %error, "recording the outcome of a send failed; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

impl Settlement {
    fn event(&self, agent: &Agent, lead: &Lead, email: &OutreachEmail, claim_id: &str, now: Timestamp) -> LeadEvent {
        let claim_id = claim_id.to_string();
        match self {
            Self::Confirm(receipt) => confirmation(agent, lead, email, &claim_id, receipt, now),
            Self::Release { why, retry_at, counted } => {
                LeadEvent::SendReleased { claim_id, why: why.clone(), hold: false, retry_at: Some(*retry_at), counted: *counted }
            }
            Self::Hold(why) => LeadEvent::SendReleased { claim_id, why: why.clone(), hold: true, retry_at: None, counted: false },
            Self::Refuse(why) => LeadEvent::SendRefused { claim_id, why: why.clone() },
            Self::Park(why) => LeadEvent::Park(why.clone()),
        }
    }

    /// What the provider answered, unless it accepted the email.
    fn failure(&self) -> Option<&str> {
        match self {
            Self::Confirm(_) => None,
            Self::Release { why, .. } | Self::Hold(why) | Self::Refuse(why) | Self::Park(why) => Some(why),
        }
    }

    /// What the step reports once the settlement is written.
    fn outcome(&self) -> StepResult {
        match self {
            Self::Confirm(_) => Ok(StepOutcome::Advanced),
            Self::Release { .. } => Ok(StepOutcome::Waiting),
            Self::Hold(_) => Ok(StepOutcome::Held),
            Self::Refuse(_) => Ok(StepOutcome::Failed),
            Self::Park(_) => Ok(StepOutcome::Parked),
        }
    }
}

/// The event that records an email the mailer accepted.
fn confirmation(agent: &Agent, lead: &Lead, email: &OutreachEmail, claim_id: &str, receipt: &SendReceipt, now: Timestamp) -> LeadEvent {
    let sent = SentMessage {
        step: email.step,
        message_id: receipt.delivered_message_id.clone().unwrap_or_else(|| email.message_id.clone()),
        provider_message_id: receipt.provider_message_id.clone(),
        subject: email.subject.clone(),
        sent_at: now,
        mailbox: lead.state.claim().and_then(|c| c.mailbox.clone()),
    };
    LeadEvent::SendConfirmed { claim_id: claim_id.into(), sent, next_step_due_at: next_step_due(agent, lead.step, now) }
}

/// When the step after `step` is due, if the agent's sequence has one.
pub(crate) fn next_step_due(agent: &Agent, step: u32, now: Timestamp) -> Option<Timestamp> {
    agent.has_step_after(step).then(|| now + Span::days(i64::from(agent.step(step + 1).map_or(1, |s| s.wait_days))))
}

/// The lead may not be sent before `until`: it waits in the store, not in a queue.
async fn defer(ports: &StepPorts, lead: &Lead, until: Timestamp, why: String) -> Result<StepOutcome, Interrupted> {
    let Ok(waiting) = lead.advanced(LeadEvent::SendDeferred { until, why }, ports.clock.now()) else {
        return Ok(StepOutcome::Ignored(format!("lead is {}", lead.state.kind())));
    };
    ports.commit(&waiting).await?;
    Ok(StepOutcome::Waiting)
}

/// A number in `0..1` for the jitter of a mailbox's gap.
fn rand_unit() -> f64 {
    (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0
}

async fn park_interrupted(ports: &StepPorts, lead: &Lead, why: &str) -> Result<StepOutcome, Interrupted> {
    match lead.advanced(LeadEvent::Park(why.to_string()), ports.clock.now()) {
        Ok(parked) => {
            ports.commit(&parked).await?;
            Ok(StepOutcome::Parked)
        }
        Err(_) => Ok(StepOutcome::Ignored(format!("lead is {}", lead.state.kind()))),
    }
}

async fn skip_already_contacted(ports: &StepPorts, lead: &Lead) -> Result<StepOutcome, Interrupted> {
    let holder = ports.store.contact_holder(lead.agent_id, &lead.contact.email).await?;
    let Ok(skip) = lead.advanced(LeadEvent::Skip(SkipReason::AlreadyContacted), ports.clock.now()) else {
        return Ok(StepOutcome::Ignored(format!("lead is {}", lead.state.kind())));
    };
    let holder = holder.map_or_else(|| "another lead".to_string(), |id| format!("lead {id}"));
    ports.commit(&skip.with_log_message(format!("{} was already emailed by this agent ({holder})", lead.contact.email))).await?;
    Ok(StepOutcome::Skipped)
}
