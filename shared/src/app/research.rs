//! Research: learn about the lead's company once per domain, then hand the lead to drafting.

use std::sync::Arc;

use super::admission::{Admission, admit, skip_if_suppressed};
use super::{Interrupted, StepOutcome, StepPorts, StepResult, deciding};
use crate::domain::{Lead, LeadEvent, LeadStateKind, ResearchReport, SkipReason, StepQueue};
use crate::ports::{DomainVerdict, MailDomains, StepMessage, WebResearch};

pub struct ResearchStep {
    pub(crate) ports: StepPorts,
    research: Arc<dyn WebResearch>,
    mail_domains: Arc<dyn MailDomains>,
}

impl ResearchStep {
    pub fn new(ports: StepPorts, research: Arc<dyn WebResearch>, mail_domains: Arc<dyn MailDomains>) -> Self {
        Self { ports, research, mail_domains }
    }

    pub async fn handle(&self, message: &StepMessage) -> StepResult {
        deciding(move || self.attempt(message)).await
    }

    async fn attempt(&self, message: &StepMessage) -> Result<StepOutcome, Interrupted> {
        let ports = &self.ports;
        let Some(lead) = ports.load_lead(message.lead_id).await? else {
            return Ok(StepOutcome::Ignored("no such lead".into()));
        };
        match lead.state.kind() {
            LeadStateKind::Queued => {}
            // Research finished but the draft message may never have been enqueued.
            LeadStateKind::Researched if !lead.on_hold => {
                let next = StepMessage { execution_id: lead.execution_id, lead_id: lead.id, step: lead.step };
                ports.queue.enqueue(StepQueue::Draft, &[next]).await.map_err(|e| Interrupted::Retry(e.to_string()))?;
                return Ok(StepOutcome::AlreadyDone);
            }
            other => return Ok(StepOutcome::Ignored(format!("lead is {other}"))),
        }
        if let Admission::Stop(outcome) = admit(ports, &lead).await? {
            return Ok(outcome);
        }
        if skip_if_suppressed(ports, &lead).await? {
            return Ok(StepOutcome::Skipped);
        }
        // A prospect hears from an agent once, however many lists they appear on. The send
        // claim enforces it; skipping here saves the research and the draft.
        if let Some(holder) = ports.store.contact_holder(lead.agent_id, &lead.contact.email).await?.filter(|h| *h != lead.id) {
            if let Ok(skip) = lead.advanced(LeadEvent::Skip(SkipReason::AlreadyContacted), ports.clock.now()) {
                let why = format!("{} was already emailed by this agent (lead {holder})", lead.contact.email);
                ports.commit(&skip.with_log_message(why)).await?;
            }
            return Ok(StepOutcome::Skipped);
        }
        if let Some(why) = self.undeliverable(&lead).await {
            if let Ok(skip) = lead.advanced(LeadEvent::Skip(SkipReason::Undeliverable), ports.clock.now()) {
                ports.commit(&skip.with_log_message(format!("{} is not emailed: {why}", lead.contact.email))).await?;
            }
            return Ok(StepOutcome::Skipped);
        }

        let report = self.report_for(&lead).await?;
        let event = LeadEvent::ResearchCompleted {
            research_key: report.as_ref().map(|r| r.company_domain.clone()),
            facts: report.as_ref().map_or(0, |r| r.facts.len()),
            note: report.as_ref().and_then(|r| r.note.clone()),
        };
        match lead.advanced(event, ports.clock.now()) {
            Ok(researched) => ports.commit(&researched).await?,
            Err(e) => return Ok(StepOutcome::Ignored(e.to_string())),
        }
        Ok(StepOutcome::Advanced)
    }

    /// Why the lead's address cannot receive mail, if its domain says so. A lookup that fails
    /// (a timeout, SERVFAIL) proves nothing: the lead goes on, and the provider's answer decides.
    async fn undeliverable(&self, lead: &Lead) -> Option<String> {
        match self.mail_domains.verdict(lead.contact.email.domain()).await {
            Ok(DomainVerdict::Undeliverable(why)) => Some(why),
            Ok(DomainVerdict::Accepts) => None,
            Err(why) => {
                tracing::warn!(lead_id = %lead.id, %why, "the recipient's domain could not be checked; the lead goes on");
                None
            }
        }
    }

    /// The company's report, researched once per domain and reused for every lead there.
    async fn report_for(&self, lead: &Lead) -> Result<Option<ResearchReport>, Interrupted> {
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
}
