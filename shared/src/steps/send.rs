//! Send, exactly once. SQS delivers at least once and mail providers have no idempotency key,
//! so the lead is claimed before the email leaves and the claim never expires:
//! 1. `drafted/approved → sending` with a fresh claim id (conditional write);
//! 2. the email goes out with a Message-ID derived from (lead, step);
//! 3. `sending → sent`, recording the provider's id (conditional write).
//!
//! A delivery that finds the lead still `sending` cannot know whether step 2 happened, so it
//! parks the lead for a person instead of risking a second email to a prospect.

use std::sync::Arc;

use chrono::Duration;
use serde_json::json;

use super::journal::{self, lead_entry};
use super::{Admission, RetryableStepError, StepOutcome, StepPorts, StepResult, admit, fail_lead, load_lead, progress, skip_if_suppressed};
use crate::domain::outreach_email::{self, UnsubscribeLinks};
use crate::domain::unsubscribe::UnsubscribeSigner;
use crate::domain::{Agent, ExecutionCounters, Lead, LeadEvent, LeadStateKind, LogLevel, SendClaim, SentMessage};
use crate::ports::{MailError, Mailer, StepMessage, StoreError};

/// How unsubscribe links in outgoing emails are built.
#[derive(Clone, Debug)]
pub struct UnsubscribeSettings {
    pub signer: UnsubscribeSigner,
    /// The public base URL of the API, for example `https://abc.execute-api.eu-west-1.amazonaws.com`.
    pub public_base_url: String,
}

impl UnsubscribeSettings {
    pub fn links_for(&self, agent: &Agent, lead: &Lead) -> UnsubscribeLinks {
        UnsubscribeLinks {
            https_url: format!("{}/unsubscribe/{}", self.public_base_url.trim_end_matches('/'), self.signer.token_for(lead.id)),
            mailto: format!("mailto:{}?subject=unsubscribe", agent.sender.reply_to.as_ref().unwrap_or(&agent.sender.email)),
        }
    }
}

pub struct SendStep {
    pub(crate) ports: StepPorts,
    mailer: Arc<dyn Mailer>,
    /// Without it nothing is sent: every email must carry a working unsubscribe link.
    unsubscribe: Option<UnsubscribeSettings>,
}

impl SendStep {
    pub fn new(ports: StepPorts, mailer: Arc<dyn Mailer>, unsubscribe: Option<UnsubscribeSettings>) -> Self {
        Self { ports, mailer, unsubscribe }
    }

    pub async fn handle(&self, message: &StepMessage) -> StepResult {
        let store = self.ports.store.as_ref();
        let clock = self.ports.clock.as_ref();
        let Some(lead) = load_lead(store, message.lead_id).await? else {
            return Ok(StepOutcome::Ignored("no such lead".into()));
        };
        if lead.has_sent_step(message.step) {
            return Ok(StepOutcome::AlreadyDone);
        }
        if lead.step != message.step {
            return Ok(StepOutcome::Ignored(format!("lead is on step {}, message is for step {}", lead.step, message.step)));
        }
        match lead.state.kind() {
            LeadStateKind::Drafted | LeadStateKind::Approved => {}
            LeadStateKind::Sending => {
                return self.park(&lead, "a send of this step was interrupted; the email may or may not have left").await;
            }
            other => return Ok(StepOutcome::Ignored(format!("lead is {other}"))),
        }
        if let Admission::Stop(outcome) = admit(store, clock, &lead).await? {
            return Ok(outcome);
        }
        if skip_if_suppressed(store, clock, &lead).await? {
            return Ok(StepOutcome::Skipped);
        }
        let Some(unsubscribe) = &self.unsubscribe else {
            // A configuration problem: the message waits for the fix (and the redrive) rather
            // than failing the lead.
            return Err(RetryableStepError("sending is switched off: no unsubscribe signing key is configured".into()));
        };
        let agent = store.get_agent(lead.agent_id).await?;
        let Some(draft) = store.get_draft(lead.id, lead.step).await? else {
            return fail_lead(store, clock, &lead, format!("no draft is stored for step {}", lead.step)).await;
        };

        let claim = SendClaim { claim_id: uuid::Uuid::new_v4().to_string(), claimed_at: clock.now() };
        let claim_id = claim.claim_id.clone();
        let Ok(claimed) = lead.advanced(LeadEvent::SendClaimed(claim), clock.now()) else {
            return Ok(StepOutcome::Ignored("lead changed before the claim".into()));
        };
        let claimed = match store.update_lead(&claimed).await {
            Ok(stored) => stored,
            // Another delivery claimed it first and owns the send.
            Err(StoreError::Conflict) => return Ok(StepOutcome::AlreadyDone),
            Err(e) => return Err(e.into()),
        };

        let email = match outreach_email::compose(&agent, &claimed, &draft, &unsubscribe.links_for(&agent, &claimed), clock.now()) {
            Ok(email) => email,
            Err(e) => return fail_lead(store, clock, &claimed, format!("the email could not be composed: {e}")).await,
        };
        match self.mailer.send(&email).await {
            Ok(receipt) => {
                let more_steps = agent.has_step_after(claimed.step);
                let delivered_id = receipt.delivered_message_id.clone().unwrap_or_else(|| email.message_id.clone());
                let mut sent = claimed
                    .advanced(LeadEvent::SendConfirmed { claim_id, more_steps }, clock.now())
                    .map_err(|e| RetryableStepError(e.to_string()))?;
                sent.sent_messages.push(SentMessage {
                    step: claimed.step,
                    message_id: delivered_id.clone(),
                    provider_message_id: receipt.provider_message_id.clone(),
                    subject: email.subject.clone(),
                    sent_at: clock.now(),
                });
                if more_steps {
                    let wait = agent.step(claimed.step + 1).map_or(1, |s| s.wait_days);
                    sent.next_step_due_at = Some(clock.now() + Duration::days(i64::from(wait)));
                }
                // If this write fails the claim stays, and the redelivery parks the lead: the
                // email has left, so it must not leave again.
                store.update_lead(&sent).await?;
                store.add_to_counters(lead.execution_id, &ExecutionCounters::sent(1)).await?;
                journal::record(
                    store,
                    lead_entry(&lead, LogLevel::Info, "lead.sent", format!("step {} sent to {}: \"{}\"", claimed.step, email.to, email.subject), clock.now())
                        .with_data(json!({"step": claimed.step, "message_id": delivered_id, "provider_message_id": receipt.provider_message_id, "next_step_due_at": sent.next_step_due_at})),
                )
                .await;
                if !more_steps {
                    progress::complete_if_finished(store, clock, lead.execution_id).await?;
                }
                Ok(StepOutcome::Advanced)
            }
            Err(MailError::Retryable(why)) => {
                self.release(&claimed, &claim_id).await?;
                Err(RetryableStepError(format!("mailer: {why}")))
            }
            Err(MailError::Rejected(why)) => fail_lead(store, clock, &claimed, format!("the mailer rejected the email: {why}")).await,
            Err(MailError::Ambiguous(why)) => self.park(&claimed, &format!("the mailer's answer was ambiguous: {why}")).await,
        }
    }

    /// Gives the claim back after a refusal that guarantees nothing was sent.
    async fn release(&self, claimed: &Lead, claim_id: &str) -> Result<(), RetryableStepError> {
        let released = claimed
            .advanced(LeadEvent::SendReleased { claim_id: claim_id.to_string() }, self.ports.clock.now())
            .map_err(|e| RetryableStepError(e.to_string()))?;
        self.ports.store.update_lead(&released).await?;
        Ok(())
    }

    async fn park(&self, lead: &Lead, why: &str) -> StepResult {
        let store = self.ports.store.as_ref();
        let clock = self.ports.clock.as_ref();
        let Ok(parked) = lead.advanced(LeadEvent::Park(why.to_string()), clock.now()) else {
            return Ok(StepOutcome::Ignored(format!("lead is {}", lead.state.kind())));
        };
        match store.update_lead(&parked).await {
            Ok(_) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
        journal::record(
            store,
            lead_entry(
                lead,
                LogLevel::Error,
                "lead.parked",
                format!("step {} parked for review: {why}; it will not be sent again automatically", lead.step),
                clock.now(),
            ),
        )
        .await;
        Ok(StepOutcome::Parked)
    }
}
