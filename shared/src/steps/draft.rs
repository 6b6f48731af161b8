//! Draft: write the email for the lead's current step, then hand it to sending (or to a
//! reviewer when the agent requires approval).

use std::sync::Arc;

use serde_json::json;

use super::journal::{self, lead_entry};
use super::{Admission, RetryableStepError, StepOutcome, StepPorts, StepResult, admit, fail_lead, load_lead};
use crate::domain::draft_guard;
use crate::domain::{EmailDraft, ExecutionCounters, Lead, LeadEvent, LeadStateKind, LogLevel};
use crate::ports::{DraftError, DraftRequest, Drafter, StepMessage, StepQueue, StoreError};

/// Drafts of one step the guards may refuse before the lead fails.
const MAX_DRAFT_ATTEMPTS: u32 = 3;

pub struct DraftStep {
    pub(crate) ports: StepPorts,
    drafter: Arc<dyn Drafter>,
}

impl DraftStep {
    pub fn new(ports: StepPorts, drafter: Arc<dyn Drafter>) -> Self {
        Self { ports, drafter }
    }

    pub async fn handle(&self, message: &StepMessage) -> StepResult {
        let store = self.ports.store.as_ref();
        let clock = self.ports.clock.as_ref();
        let Some(lead) = load_lead(store, message.lead_id).await? else {
            return Ok(StepOutcome::Ignored("no such lead".into()));
        };
        if lead.step != message.step {
            return Ok(StepOutcome::Ignored(format!("lead is on step {}, message is for step {}", lead.step, message.step)));
        }
        match lead.state.kind() {
            LeadStateKind::Researched | LeadStateKind::FollowUpDue => {}
            // Drafted before, but the send message may never have been enqueued.
            LeadStateKind::Drafted => {
                enqueue_send(&self.ports, &lead).await?;
                return Ok(StepOutcome::AlreadyDone);
            }
            other => return Ok(StepOutcome::Ignored(format!("lead is {other}"))),
        }
        if let Admission::Stop(outcome) = admit(store, clock, &lead).await? {
            return Ok(outcome);
        }
        let agent = store.get_agent(lead.agent_id).await?;
        let research = match &lead.research_key {
            Some(key) => store.get_research(key).await?,
            None => None,
        };
        let mut feedback: Vec<String> = Vec::new();
        let mut previous: Option<EmailDraft> = None;
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let request = DraftRequest {
                agent: &agent,
                lead: &lead,
                step: lead.step,
                research: research.as_ref(),
                previous_subjects: lead.sent_messages.iter().map(|m| m.subject.clone()).collect(),
                feedback: feedback.clone(),
            };
            let outcome = match self.drafter.draft(request).await {
                Ok(outcome) => outcome,
                Err(DraftError::Retryable(why)) => return Err(RetryableStepError(format!("drafting: {why}"))),
                Err(DraftError::Rejected(why)) => {
                    return fail_lead(store, clock, &lead, format!("no draft for step {}: {why}", lead.step)).await;
                }
            };
            let violations = draft_guard::check(&outcome.draft, &lead.contact, research.as_ref(), lead.step > 0);
            if violations.is_empty() {
                break outcome;
            }
            let reasons: Vec<String> = violations.iter().map(ToString::to_string).collect();
            journal::record(
                store,
                lead_entry(
                    &lead,
                    LogLevel::Warn,
                    "lead.draft_refused",
                    format!("draft of step {} refused: {}", lead.step, reasons.join("; ")),
                    clock.now(),
                )
                .with_data(
                    json!({"attempt": attempt, "subject": outcome.draft.subject, "body": outcome.draft.body, "violations": reasons}),
                ),
            )
            .await;
            // A drafter that writes the same draft again (a template) cannot do better.
            let repeated = previous.as_ref().is_some_and(|p| p.subject == outcome.draft.subject && p.body == outcome.draft.body);
            if attempt >= MAX_DRAFT_ATTEMPTS || repeated {
                let why = format!("draft of step {} refused after {attempt} attempts: {}", lead.step, reasons.join("; "));
                return fail_lead(store, clock, &lead, why).await;
            }
            feedback = reasons;
            previous = Some(outcome.draft);
        };
        store.put_draft(&outcome.draft).await?;
        if let Some(usage) = outcome.usage {
            let delta =
                ExecutionCounters { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, ..Default::default() };
            store.add_to_counters(lead.execution_id, &delta).await?;
        }
        let Ok(drafted) = lead.advanced(LeadEvent::DraftReady { needs_approval: agent.require_approval }, clock.now()) else {
            return Ok(StepOutcome::Ignored("lead changed while drafting".into()));
        };
        match store.update_lead(&drafted).await {
            Ok(_) => {}
            Err(StoreError::Conflict) => return Ok(StepOutcome::AlreadyDone),
            Err(e) => return Err(e.into()),
        }
        journal::record(
            store,
            lead_entry(&lead, LogLevel::Info, "lead.drafted", format!("step {} drafted by {}: \"{}\"", lead.step, outcome.draft.drafted_by, outcome.draft.subject), clock.now())
                .with_data(json!({"step": lead.step, "facts_used": outcome.draft.facts_used, "usage": outcome.usage, "transcript": outcome.transcript})),
        )
        .await;
        if drafted.state.kind() == LeadStateKind::Drafted {
            enqueue_send(&self.ports, &drafted).await?;
        }
        Ok(StepOutcome::Advanced)
    }
}

pub(crate) async fn enqueue_send(ports: &StepPorts, lead: &Lead) -> Result<(), RetryableStepError> {
    let next = StepMessage { execution_id: lead.execution_id, lead_id: lead.id, step: lead.step };
    ports.queue.enqueue(StepQueue::Send, &[next]).await.map_err(|e| RetryableStepError(e.to_string()))
}
