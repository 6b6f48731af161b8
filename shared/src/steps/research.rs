//! Research: learn about the lead's company once per domain, then hand the lead to drafting.

use std::sync::Arc;

use serde_json::json;

use super::journal::{self, lead_entry};
use super::{Admission, RetryableStepError, StepOutcome, StepPorts, StepResult, admit, load_lead, skip, skip_if_suppressed};
use crate::domain::{Lead, LeadEvent, LeadStateKind, LogLevel, ResearchReport, SkipReason};
use crate::ports::store::LeadQuery;
use crate::ports::{PageRequest, StepMessage, StepQueue, StoreError, WebResearch};

pub struct ResearchStep {
    pub(crate) ports: StepPorts,
    research: Arc<dyn WebResearch>,
}

impl ResearchStep {
    pub fn new(ports: StepPorts, research: Arc<dyn WebResearch>) -> Self {
        Self { ports, research }
    }

    pub async fn handle(&self, message: &StepMessage) -> StepResult {
        let store = self.ports.store.as_ref();
        let clock = self.ports.clock.as_ref();
        let Some(lead) = load_lead(store, message.lead_id).await? else {
            return Ok(StepOutcome::Ignored("no such lead".into()));
        };
        match lead.state.kind() {
            LeadStateKind::Queued => {}
            // Research finished but the draft message may never have been enqueued.
            LeadStateKind::Researched => {
                self.enqueue_draft(&lead).await?;
                return Ok(StepOutcome::AlreadyDone);
            }
            other => return Ok(StepOutcome::Ignored(format!("lead is {other}"))),
        }
        if let Admission::Stop(outcome) = admit(store, clock, &lead).await? {
            return Ok(outcome);
        }
        if skip_if_suppressed(store, clock, &lead).await? {
            return Ok(StepOutcome::Skipped);
        }
        if let Some(earlier) = self.earlier_contact(&lead).await? {
            skip(store, clock, &lead, SkipReason::AlreadyContacted).await?;
            let why = format!("{} was already emailed by this agent (execution {})", lead.contact.email, earlier.execution_id);
            journal::record(store, lead_entry(&lead, LogLevel::Info, "lead.skipped", why, clock.now())).await;
            return Ok(StepOutcome::Skipped);
        }

        let report = self.report_for(&lead).await?;
        let mut researched = match lead.advanced(LeadEvent::ResearchCompleted, clock.now()) {
            Ok(next) => next,
            Err(e) => return Ok(StepOutcome::Ignored(e.to_string())),
        };
        researched.research_key = report.as_ref().map(|r| r.company_domain.clone());
        match store.update_lead(&researched).await {
            Ok(_) => {}
            Err(StoreError::Conflict) => return Ok(StepOutcome::AlreadyDone),
            Err(e) => return Err(e.into()),
        }
        let facts = report.as_ref().map_or(0, |r| r.facts.len());
        let note = report.as_ref().and_then(|r| r.note.clone());
        journal::record(
            store,
            lead_entry(
                &lead,
                LogLevel::Info,
                "lead.researched",
                format!("research found {facts} facts about {}", lead.contact.company),
                clock.now(),
            )
            .with_data(json!({"company_domain": researched.research_key, "facts": facts, "note": note})),
        )
        .await;
        self.enqueue_draft(&researched).await?;
        Ok(StepOutcome::Advanced)
    }

    /// Another lead of the same agent at this address that was already emailed, if any: a
    /// prospect hears from an agent's sequence once, however many lists they appear on.
    async fn earlier_contact(&self, lead: &Lead) -> Result<Option<Lead>, RetryableStepError> {
        let query = LeadQuery { email: Some(lead.contact.email.clone()), agent_id: Some(lead.agent_id), ..Default::default() };
        let others = self.ports.store.list_leads(&query, &PageRequest::first(PageRequest::MAX_LIMIT)).await?;
        Ok(others
            .items
            .into_iter()
            .find(|other| other.id != lead.id && (!other.sent_messages.is_empty() || other.state.kind() == LeadStateKind::Sending)))
    }

    /// The company's report, researched once per domain and reused for every lead there.
    async fn report_for(&self, lead: &Lead) -> Result<Option<ResearchReport>, RetryableStepError> {
        let Some(domain) = lead.contact.research_domain() else { return Ok(None) };
        if let Some(report) = self.ports.store.get_research(&domain).await? {
            return Ok(Some(report));
        }
        let report = self.research.research_company(&lead.contact.company, &domain).await;
        // An empty report usually means the site was unreachable for now; keeping it would
        // deny every later lead at that company a second try.
        if !report.facts.is_empty() {
            self.ports.store.put_research(&report).await?;
        }
        Ok(Some(report))
    }

    async fn enqueue_draft(&self, lead: &Lead) -> Result<(), RetryableStepError> {
        let next = StepMessage { execution_id: lead.execution_id, lead_id: lead.id, step: lead.step };
        self.ports.queue.enqueue(StepQueue::Draft, &[next]).await.map_err(|e| RetryableStepError(e.to_string()))
    }
}
