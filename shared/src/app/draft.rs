//! Draft: write the email for the lead's current step, then hand it to sending (or to a
//! reviewer when the agent requires approval).

use std::sync::Arc;

use serde_json::json;

use super::admission::{Admission, admit};
use super::control::pause_for_configuration;
use super::journal::{self, lead_entry};
use super::{Interrupted, StepOutcome, StepPorts, StepResult, deciding};
use crate::domain::draft_guard::{self, DraftContext, GuardViolation};
use crate::domain::{EmailDraft, Lead, LeadEvent, LeadStateKind, LogLevel, StepQueue};
use crate::ports::{DraftError, DraftOutcome, DraftRequest, Drafter, StepMessage, TokenUsage, Verification, VerifyRequest};

/// Drafts of one step the guards may refuse before the lead fails.
const MAX_DRAFT_ATTEMPTS: u32 = 3;

pub struct DraftStep {
    pub(crate) ports: StepPorts,
    drafter: Arc<dyn Drafter>,
}

/// Fails the lead with `why`.
pub(crate) async fn fail(ports: &StepPorts, lead: &Lead, why: String) -> Result<StepOutcome, Interrupted> {
    match lead.advanced(LeadEvent::Fail(why), ports.clock.now()) {
        Ok(failed) => {
            ports.commit(&failed).await?;
            Ok(StepOutcome::Failed)
        }
        Err(e) => Ok(StepOutcome::Ignored(e.to_string())),
    }
}

impl DraftStep {
    pub fn new(ports: StepPorts, drafter: Arc<dyn Drafter>) -> Self {
        Self { ports, drafter }
    }

    pub async fn handle(&self, message: &StepMessage) -> StepResult {
        deciding(move || self.attempt(message)).await
    }

    async fn attempt(&self, message: &StepMessage) -> Result<StepOutcome, Interrupted> {
        let ports = &self.ports;
        let Some(lead) = ports.load_lead(message.lead_id).await? else {
            return Ok(StepOutcome::Ignored("no such lead".into()));
        };
        if lead.step != message.step {
            return Ok(StepOutcome::Ignored(format!("lead is on step {}, message is for step {}", lead.step, message.step)));
        }
        match lead.state.kind() {
            LeadStateKind::Researched | LeadStateKind::FollowUpDue => {}
            // Drafted before, but the send message may never have been enqueued.
            LeadStateKind::Drafted if !lead.on_hold => {
                let next = StepMessage { execution_id: lead.execution_id, lead_id: lead.id, step: lead.step };
                ports.queue.enqueue(StepQueue::Send, &[next]).await.map_err(|e| Interrupted::Retry(e.to_string()))?;
                return Ok(StepOutcome::AlreadyDone);
            }
            other => return Ok(StepOutcome::Ignored(format!("lead is {other}"))),
        }
        let execution = match admit(ports, &lead).await? {
            Admission::Proceed(execution) => execution,
            Admission::Stop(outcome) => return Ok(outcome),
        };
        let VerifiedDraft { outcome, verification, spent } = match self.acceptable_draft(&lead).await? {
            Ok(verified) => verified,
            Err(Refusal::Fail(why)) => return fail(ports, &lead, why).await,
            Err(Refusal::Configuration(why)) => {
                let reason = format!("the model is not usable as configured: {why}");
                return pause_for_configuration(ports, &lead, &execution, &reason, LeadEvent::Hold).await;
            }
        };
        ports.store.put_draft(&outcome.draft).await?;
        let agent_requires_approval = ports.store.get_agent(lead.agent_id).await?.require_approval;
        let event = LeadEvent::DraftReady {
            needs_approval: agent_requires_approval,
            subject: outcome.draft.subject.clone(),
            drafted_by: outcome.draft.drafted_by.clone(),
            usage: spent,
        };
        let Ok(drafted) = lead.advanced(event, ports.clock.now()) else {
            return Ok(StepOutcome::Ignored("lead changed while drafting".into()));
        };
        let details = json!({"step": lead.step, "facts_used": outcome.draft.facts_used, "usage": outcome.usage, "transcript": outcome.transcript,
                             "verification": verification.as_ref().map(|v| &v.transcript)});
        ports.commit(&drafted.with_log_data(details)).await?;
        Ok(StepOutcome::Advanced)
    }

    /// A draft that passes the guards, asking again with the reasons as feedback; or why the
    /// lead cannot have one.
    async fn acceptable_draft(&self, lead: &Lead) -> Result<Result<VerifiedDraft, Refusal>, Interrupted> {
        let store = self.ports.store.as_ref();
        let agent = store.get_agent(lead.agent_id).await?;
        let research = match &lead.research_key {
            Some(key) => store.get_research(key).await?,
            None => None,
        };
        let mut feedback: Vec<String> = Vec::new();
        let mut previous: Option<EmailDraft> = None;
        let mut spent: Option<TokenUsage> = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = DraftRequest {
                agent: &agent,
                lead,
                step: lead.step,
                research: research.as_ref(),
                previous_subjects: lead.sent_messages.iter().map(|m| m.subject.clone()).collect(),
                feedback: feedback.clone(),
            };
            let outcome = match self.drafter.draft(request).await {
                Ok(outcome) => outcome,
                Err(DraftError::Retryable(why)) => return Err(Interrupted::Retry(format!("drafting: {why}"))),
                Err(DraftError::Rejected(why)) => return Ok(Err(Refusal::Fail(format!("no draft for step {}: {why}", lead.step)))),
                Err(DraftError::Configuration(why)) => return Ok(Err(Refusal::Configuration(why))),
            };
            spent = total_usage(spent, outcome.usage);
            let context = DraftContext { agent: &agent, contact: &lead.contact, research: research.as_ref(), is_follow_up: lead.step > 0 };
            let mut violations = draft_guard::check(&outcome.draft, &context, &[]);
            let mut verification = None;
            if violations.is_empty() {
                // The guards passed: a model, when there is one, reads the claims again.
                let request = VerifyRequest {
                    agent: &agent,
                    lead,
                    research: research.as_ref(),
                    subject: &outcome.draft.subject,
                    body: &outcome.draft.body,
                };
                match self.drafter.verify(request).await {
                    Ok(found) => verification = found,
                    Err(DraftError::Retryable(why)) => return Err(Interrupted::Retry(format!("verifying the draft: {why}"))),
                    Err(DraftError::Rejected(why)) => {
                        return Ok(Err(Refusal::Fail(format!("the draft of step {} could not be verified: {why}", lead.step))));
                    }
                    Err(DraftError::Configuration(why)) => return Ok(Err(Refusal::Configuration(why))),
                }
                spent = total_usage(spent, verification.as_ref().map(|v| v.usage));
                if let Some(verification) = &verification {
                    violations.extend(
                        verification.unsupported.iter().map(|c| GuardViolation { claim: Some(c.claim.clone()), reason: c.why.clone() }),
                    );
                }
            }
            if violations.is_empty() {
                return Ok(Ok(VerifiedDraft { outcome, verification, spent }));
            }
            let reasons: Vec<String> = violations.iter().map(ToString::to_string).collect();
            let refused = format!("draft of step {} refused: {}", lead.step, reasons.join("; "));
            let details = json!({"attempt": attempt, "subject": outcome.draft.subject, "body": outcome.draft.body, "violations": reasons,
                                 "verification": verification.as_ref().map(|v| &v.transcript)});
            journal::record(
                store,
                lead_entry(lead, LogLevel::Warn, "lead.draft_refused", refused, self.ports.clock.now()).with_data(details),
            )
            .await;
            // A drafter that writes the same draft again (a template) cannot do better.
            let repeated = previous.as_ref().is_some_and(|p| p.subject == outcome.draft.subject && p.body == outcome.draft.body);
            if attempt >= MAX_DRAFT_ATTEMPTS || repeated {
                let why = format!("draft of step {} refused after {attempt} attempts: {}", lead.step, reasons.join("; "));
                return Ok(Err(Refusal::Fail(why)));
            }
            feedback = reasons;
            previous = Some(outcome.draft);
        }
    }
}

/// A draft that passed the guards, with the verifier's reading when a model gave one.
struct VerifiedDraft {
    outcome: DraftOutcome,
    verification: Option<Verification>,
    /// Every model call's tokens for this draft, refused attempts and their checks included.
    spent: Option<TokenUsage>,
}

/// Why a lead gets no draft.
enum Refusal {
    /// This lead cannot have one: it fails with the reason.
    Fail(String),
    /// No lead can, until a setting is fixed: the execution pauses.
    Configuration(String),
}

/// What drafting a lead cost, the verifier's call included.
fn total_usage(draft: Option<TokenUsage>, verification: Option<TokenUsage>) -> Option<TokenUsage> {
    match (draft, verification) {
        (None, None) => None,
        (a, b) => {
            let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
            Some(TokenUsage {
                prompt_tokens: a.prompt_tokens + b.prompt_tokens,
                completion_tokens: a.completion_tokens + b.completion_tokens,
            })
        }
    }
}
