//! What a person decides about one lead: approve or reject a draft, resolve a parked send, and
//! the prospect's own one-click unsubscribe.

use serde_json::json;

use super::send::next_step_due;
use super::{Committed, StepPorts};
use crate::domain::draft_guard::{self, DraftContext};
use crate::domain::outreach_email::{message_id_for, subject_for_step};
use crate::domain::{
    EmailDraft, FieldIssue, InboundEffect, Lead, LeadEvent, LeadId, LeadState, LeadStateKind, MarkerChange, Resolution, SentMessage,
    SequenceEnd, SkipReason, Suppression, Transition,
};
use crate::ports::{StepMessage, StepQueue, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no lead with this id")]
    NotFound,
    /// The lead is not in a state the decision applies to.
    #[error("{0}")]
    WrongState(String),
    #[error("{0}")]
    Unavailable(String),
    /// The edited draft fails the guards: each problem with the field it is in.
    #[error("the edited draft was refused")]
    Refused(Vec<FieldIssue>),
}

impl From<StoreError> for ReviewError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// A reviewer's edits to a draft before approving it.
#[derive(Clone, Debug, Default)]
pub struct DraftEdits {
    pub subject: Option<String>,
    pub body: Option<String>,
    /// Claims the guards refuse that the reviewer vouches for, as the refusal quoted them.
    pub accepted_claims: Vec<String>,
}

impl DraftEdits {
    /// The edits with empty fields dropped: an empty subject or body changes nothing.
    fn filled(self) -> Self {
        let filled = |text: Option<String>| text.filter(|t| !t.trim().is_empty());
        Self { subject: filled(self.subject), body: filled(self.body), accepted_claims: self.accepted_claims }
    }

    fn change_anything(&self) -> bool {
        self.subject.is_some() || self.body.is_some()
    }
}

/// How a person resolves a parked send.
#[derive(Clone, Debug)]
pub enum ParkedDecision {
    /// The email left (seen in the provider's console or the recipient's mailbox).
    Sent { provider_message_id: Option<String>, message_id: Option<String> },
    /// The email did not leave: send it again.
    SendAgain,
}

pub struct Review<'a> {
    pub ports: &'a StepPorts,
}

impl Review<'_> {
    /// Reads the lead, builds the transition and commits it, reading again after a conflict.
    /// Says whether it wrote anything: `None` from `decision` means the lead already is where the
    /// decision would take it (a retried request, or one whose answer was lost).
    async fn decide<F>(&self, lead_id: LeadId, decision: F) -> Result<(Lead, bool), ReviewError>
    where
        F: Fn(&Lead) -> Result<Option<Transition>, ReviewError>,
    {
        for _ in 0..5 {
            let lead = self.ports.store.get_lead(lead_id).await?;
            let Some(transition) = decision(&lead)? else { return Ok((lead, false)) };
            match self.ports.commit(&transition).await {
                // Recorded; the sweep enqueues what the commit could not.
                Ok(()) | Err(Committed::NotEnqueued(_)) => return Ok((transition.next_lead().cloned().unwrap_or(lead), true)),
                Err(Committed::Refused(StoreError::Conflict)) => continue,
                Err(Committed::Refused(e)) => return Err(e.into()),
            }
        }
        Err(ReviewError::Unavailable("the lead kept changing; try again".into()))
    }

    /// Approves the current draft, optionally edited, and sends it on its way. An edited draft
    /// passes the same guards a drafted one does, less the claims the reviewer accepts by name;
    /// the edit and the acceptance are logged with `reviewer` in the approval's own entry.
    /// Approving an approved lead without edits enqueues its send again, so a retried plain
    /// approval is safe; an edit can only be made while the draft awaits approval (409 after).
    pub async fn approve(&self, lead_id: LeadId, edits: DraftEdits, reviewer: &str) -> Result<Lead, ReviewError> {
        let edits = edits.filled();
        let lead = self.ports.store.get_lead(lead_id).await?;
        if lead.state.kind() != LeadStateKind::Approved || edits.change_anything() {
            // An edit to a draft already approved would never be the one sent.
            awaiting_approval(&lead)?;
        }
        let mut audit = None;
        let mut original = None;
        if edits.change_anything() {
            let draft = self.ports.store.get_draft(lead.id, lead.step).await?;
            let draft = draft.ok_or_else(|| ReviewError::WrongState("the lead has no draft to approve".into()))?;
            let accepted = edits.accepted_claims.clone();
            original = Some(draft.clone());
            let draft = edited(draft, edits);
            self.guard(&lead, &draft, &accepted).await?;
            self.ports.store.put_draft(&draft).await?;
            let message = match accepted.as_slice() {
                [] => format!("the draft of step {} was edited and approved by {reviewer}", lead.step),
                claims => {
                    format!("the draft of step {} was edited and approved by {reviewer}, who accepted: {}", lead.step, claims.join("; "))
                }
            };
            let details = json!({"reviewer": reviewer, "accepted_claims": accepted, "subject": draft.subject, "body": draft.body});
            audit = Some((message, details));
        }
        let now = self.ports.clock.now();
        let decided = self
            .decide(lead_id, |lead| match lead.state.kind() {
                LeadStateKind::Approved => Ok(None),
                _ => {
                    awaiting_approval(lead)?;
                    // The edit and the acceptance are recorded with the approval, in one write.
                    let approval = lead.advanced(LeadEvent::DraftApproved, now).ok();
                    Ok(match (&audit, approval) {
                        (Some((message, details)), Some(t)) => Some(t.with_log_message(message.clone()).with_log_data(details.clone())),
                        (_, approval) => approval,
                    })
                }
            })
            .await;
        let (lead, approved_now) = match decided {
            Ok((lead, approved_now)) if approved_now || original.is_none() => (lead, approved_now),
            // Another decision came first, or none could be written: the edit is not the email
            // that will be sent, so the draft is put back and the reviewer told.
            outcome => {
                if let Some(original) = &original {
                    self.ports.store.put_draft(original).await?;
                }
                return Err(match outcome {
                    Ok((lead, _)) => {
                        ReviewError::WrongState(format!("the lead was decided by someone else first; it is {}", lead.state.kind()))
                    }
                    Err(error) => error,
                });
            }
        };
        if !approved_now && lead.state.kind() == LeadStateKind::Approved && !lead.on_hold {
            let next = StepMessage { execution_id: lead.execution_id, lead_id: lead.id, step: lead.step };
            self.ports.queue.enqueue(StepQueue::Send, &[next]).await.map_err(|e| ReviewError::Unavailable(e.to_string()))?;
        }
        Ok(lead)
    }

    pub async fn reject(&self, lead_id: LeadId) -> Result<Lead, ReviewError> {
        let now = self.ports.clock.now();
        let rejected = |lead: &Lead| matches!(lead.state, LeadState::Skipped { reason: SkipReason::RejectedByReviewer });
        let (lead, _) = self
            .decide(lead_id, |lead| {
                if rejected(lead) {
                    return Ok(None);
                }
                awaiting_approval(lead)?;
                Ok(lead.advanced(LeadEvent::DraftRejected, now).ok())
            })
            .await?;
        Ok(lead)
    }

    /// A person's decision about a parked send: it left (recorded as sent, counted, indexed for
    /// replies, the next step scheduled), or it did not (sent again, explicitly).
    pub async fn resolve(&self, lead_id: LeadId, decision: ParkedDecision) -> Result<Lead, ReviewError> {
        let lead = self.ports.store.get_lead(lead_id).await?;
        parked(&lead)?;
        let agent = self.ports.store.get_agent(lead.agent_id).await?;
        let draft = self.ports.store.get_draft(lead.id, lead.step).await?;
        let now = self.ports.clock.now();
        self.decide(lead_id, |lead| {
            parked(lead)?;
            let resolution = match &decision {
                ParkedDecision::SendAgain => Resolution::SendAgain,
                ParkedDecision::Sent { provider_message_id, message_id } => {
                    // The email went out from the claim's mailbox, whose domain its Message-ID has.
                    let mailbox = lead.state.claim().and_then(|c| c.mailbox.clone());
                    let domain = mailbox.as_ref().unwrap_or(&agent.sender.email).domain().to_string();
                    Resolution::Sent {
                        sent: SentMessage {
                            step: lead.step,
                            message_id: message_id.clone().unwrap_or_else(|| message_id_for(lead.id, lead.step, &domain)),
                            provider_message_id: provider_message_id.clone().unwrap_or_else(|| "confirmed-by-a-person".into()),
                            subject: draft.as_ref().map(|d| subject_for_step(lead, d)).unwrap_or_default(),
                            sent_at: lead.state.claim().map_or(now, |c| c.claimed_at),
                            mailbox,
                        },
                        next_step_due_at: next_step_due(&agent, lead.step, now),
                    }
                }
            };
            lead.advanced(LeadEvent::Resolved(resolution), now).map(Some).map_err(|e| ReviewError::WrongState(e.to_string()))
        })
        .await
        .map(|(lead, _)| lead)
    }

    /// The prospect's one-click unsubscribe: the sequence ends and the address is suppressed.
    /// While a send is in flight the lead cannot change, but the address is suppressed at once,
    /// so nothing further goes out.
    pub async fn unsubscribe(&self, lead_id: LeadId) -> Result<Lead, ReviewError> {
        let now = self.ports.clock.now();
        self.decide(lead_id, |lead| {
            let event = LeadEvent::Inbound { record: None, effect: InboundEffect::Ends(SequenceEnd::Unsubscribed) };
            Ok(Some(match lead.advanced(event, now) {
                Ok(transition) => transition,
                Err(_) => Transition::markers(vec![MarkerChange::Suppress(Suppression {
                    entry: lead.contact.email.dedupe_key(),
                    reason: "unsubscribed".into(),
                    source: Some("unsubscribe link".into()),
                    created_at: now,
                })]),
            }))
        })
        .await
        .map(|(lead, _)| lead)
    }
}

impl Review<'_> {
    /// The guards a drafted email passes, applied to a reviewer's version of it.
    async fn guard(&self, lead: &Lead, draft: &EmailDraft, accepted: &[String]) -> Result<(), ReviewError> {
        let agent = self.ports.store.get_agent(lead.agent_id).await?;
        let research = match &lead.research_key {
            Some(key) => self.ports.store.get_research(key).await?,
            None => None,
        };
        let context = DraftContext { agent: &agent, contact: &lead.contact, research: research.as_ref(), is_follow_up: lead.step > 0 };
        let violations = draft_guard::check(draft, &context, accepted);
        if violations.is_empty() {
            return Ok(());
        }
        let issues = violations
            .into_iter()
            .map(|v| {
                let in_subject = match &v.claim {
                    Some(claim) => draft.subject.contains(claim.as_str()) && !draft.body.contains(claim.as_str()),
                    None => v.reason.starts_with("the subject"),
                };
                FieldIssue::new(if in_subject { "subject" } else { "body" }, v.reason)
            })
            .collect();
        Err(ReviewError::Refused(issues))
    }
}

fn awaiting_approval(lead: &Lead) -> Result<(), ReviewError> {
    match lead.state.kind() {
        LeadStateKind::AwaitingApproval => Ok(()),
        other => Err(ReviewError::WrongState(format!("the lead is {other}, not awaiting approval"))),
    }
}

fn parked(lead: &Lead) -> Result<(), ReviewError> {
    match lead.state.kind() {
        LeadStateKind::Parked => Ok(()),
        other => Err(ReviewError::WrongState(format!("the lead is {other}, not parked"))),
    }
}

fn edited(mut draft: EmailDraft, edits: DraftEdits) -> EmailDraft {
    if let Some(subject) = edits.subject {
        draft.subject = subject;
    }
    if let Some(text) = edits.body {
        draft.body = text;
    }
    draft.drafted_by = format!("{} (edited by reviewer)", draft.drafted_by.trim_end_matches(" (edited by reviewer)"));
    draft
}
