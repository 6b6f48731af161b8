//! The drafter used when no LLM is configured: fills the sequence step's templates with the
//! lead record, the agent's pitch and the research facts.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::domain::EmailDraft;
use crate::domain::template::MessageTemplate;
use crate::ports::{Clock, DraftError, DraftOutcome, DraftRequest, Drafter};

pub struct TemplateDrafter {
    clock: std::sync::Arc<dyn Clock>,
}

impl TemplateDrafter {
    pub fn new(clock: std::sync::Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

/// The values a template can use for this lead.
pub fn template_values(request: &DraftRequest<'_>) -> BTreeMap<&'static str, String> {
    let contact = &request.lead.contact;
    let agent = request.agent;
    let mut values = BTreeMap::from([
        ("first_name", contact.first_name.clone()),
        ("last_name", contact.last_name.clone().unwrap_or_default()),
        ("full_name", contact.full_name()),
        ("company", contact.company.clone()),
        ("title", contact.title.clone().unwrap_or_default()),
        ("company_domain", contact.research_domain().unwrap_or_default()),
        ("sender_name", agent.sender.name.clone()),
        ("sender_company", agent.sender.company.clone()),
        ("product", agent.pitch.product.clone()),
        ("value_proposition", agent.pitch.value_proposition.clone()),
        ("call_to_action", agent.pitch.call_to_action.clone()),
    ]);
    if let Some(report) = request.research {
        if let Some(fact) = report.facts.first() {
            values.insert("research_fact", fact.text.clone());
        }
        if let Some(summary) = &report.summary {
            values.insert("research_summary", summary.clone());
        }
    }
    values
}

#[async_trait]
impl Drafter for TemplateDrafter {
    async fn draft(&self, request: DraftRequest<'_>) -> Result<DraftOutcome, DraftError> {
        let step = request
            .agent
            .step(request.step)
            .ok_or_else(|| DraftError::Rejected(format!("the agent has no sequence step {}", request.step)))?;
        let values = template_values(&request);
        let render =
            |source: &str| MessageTemplate::parse(source).map(|t| t.render(&values)).map_err(|e| DraftError::Rejected(e.to_string()));
        let subject = render(&step.subject)?;
        let body = render(&step.body)?;
        let missing: Vec<String> = subject.missing.iter().chain(&body.missing).cloned().collect();
        if !missing.is_empty() {
            // An email with a hole where a name should be is worse than no email.
            return Err(DraftError::Rejected(format!(
                "the template needs {} but this lead has no value for it; add a fallback such as {{{{{} | ...}}}}",
                missing.join(", "),
                missing[0]
            )));
        }
        let facts_used = ["research_fact", "research_summary"]
            .into_iter()
            .filter(|name| step.subject.contains(name) || step.body.contains(name))
            .filter_map(|name| values.get(name).cloned())
            .collect();
        Ok(DraftOutcome {
            draft: EmailDraft {
                lead_id: request.lead.id,
                step: request.step,
                subject: subject.text.trim().to_string(),
                body: body.text,
                facts_used,
                drafted_by: "template".into(),
                created_at: self.clock.now(),
            },
            usage: None,
            transcript: None,
        })
    }
}
