//! Leads across executions, and the approval of drafts that wait for a reviewer.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::executions::state_filter;
use super::extract::{Body, Params, parse_json, path_id};
use super::problem::Problem;
use crate::domain::{EmailAddress, EmailDraft, Lead, LeadEvent, LeadId, LeadStateKind, ResearchReport};
use crate::ports::store::LeadQuery;
use crate::ports::{Page, StepMessage, StepQueue, StoreError};

/// A lead with the draft of its current step and what research found about its company.
#[derive(Serialize)]
pub struct LeadView {
    #[serde(flatten)]
    lead: Lead,
    #[serde(skip_serializing_if = "Option::is_none")]
    draft: Option<EmailDraft>,
    #[serde(skip_serializing_if = "Option::is_none")]
    research: Option<ResearchReport>,
}

async fn load(app: &AppState, raw_id: &str) -> Result<Lead, Problem> {
    let id: LeadId = path_id(raw_id, "lead")?;
    app.services.store.get_lead(id).await.map_err(|e| match e {
        StoreError::NotFound => Problem::not_found(format!("no lead with id '{raw_id}'")),
        other => other.into(),
    })
}

/// Leads by `execution_id`, `email` or `state`, optionally narrowed by `agent_id`.
pub async fn list(State(app): State<AppState>, params: Params) -> Result<Json<Page<Lead>>, Problem> {
    let email = params.get("email").map(|raw| EmailAddress::parse(raw).map_err(|e| Problem::invalid_field("email", e.0))).transpose()?;
    let agent_id =
        params.get("agent_id").map(|raw| raw.parse().map_err(|_| Problem::invalid_field("agent_id", "is not an agent id"))).transpose()?;
    let execution_id = params
        .get("execution_id")
        .map(|raw| raw.parse().map_err(|_| Problem::invalid_field("execution_id", "is not an execution id")))
        .transpose()?;
    let query = LeadQuery { execution_id, agent_id, state: state_filter(&params)?, email };
    // Every list is served by an index; "all leads of everything" has none.
    if query.execution_id.is_none() && query.email.is_none() && query.state.is_none() {
        return Err(Problem::invalid_field("state", "name an execution_id, an email or a state to list leads by"));
    }
    Ok(Json(app.services.store.list_leads(&query, &params.page()?).await?))
}

pub async fn get(State(app): State<AppState>, Path(lead_id): Path<String>) -> Result<Json<LeadView>, Problem> {
    let lead = load(&app, &lead_id).await?;
    let draft = app.services.store.get_draft(lead.id, lead.step).await?;
    let research = match &lead.research_key {
        Some(key) => app.services.store.get_research(key).await?,
        None => None,
    };
    Ok(Json(LeadView { lead, draft, research }))
}

/// A reviewer's edits to a draft before approving it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Approval {
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

fn awaiting_approval(lead: &Lead) -> Result<(), Problem> {
    if lead.state.kind() == LeadStateKind::AwaitingApproval {
        Ok(())
    } else {
        Err(Problem::conflict(format!("the lead is {}, not awaiting approval", lead.state.kind())))
    }
}

/// Approves the current draft, optionally edited, and sends it on its way.
pub async fn approve(State(app): State<AppState>, Path(lead_id): Path<String>, Body(body): Body) -> Result<Json<Lead>, Problem> {
    let lead = load(&app, &lead_id).await?;
    awaiting_approval(&lead)?;
    let approval: Approval = if body.iter().all(u8::is_ascii_whitespace) { Approval::default() } else { parse_json(&body)? };
    let store = &app.services.store;
    if approval.subject.is_some() || approval.body.is_some() {
        let mut draft = store.get_draft(lead.id, lead.step).await?.ok_or_else(|| Problem::conflict("the lead has no draft to approve"))?;
        if let Some(subject) = approval.subject.filter(|s| !s.trim().is_empty()) {
            draft.subject = subject;
        }
        if let Some(text) = approval.body.filter(|s| !s.trim().is_empty()) {
            draft.body = text;
        }
        draft.drafted_by = format!("{} (edited by reviewer)", draft.drafted_by.trim_end_matches(" (edited by reviewer)"));
        store.put_draft(&draft).await?;
    }
    let approved = lead.advanced(LeadEvent::DraftApproved, app.services.clock.now()).map_err(|e| Problem::conflict(e.to_string()))?;
    let stored = store.update_lead(&approved).await?;
    let message = StepMessage { execution_id: stored.execution_id, lead_id: stored.id, step: stored.step };
    app.services.queue.enqueue(StepQueue::Send, &[message]).await.map_err(|e| Problem::unavailable(e.to_string()))?;
    Ok(Json(stored))
}

pub async fn reject(State(app): State<AppState>, Path(lead_id): Path<String>) -> Result<Json<Lead>, Problem> {
    let lead = load(&app, &lead_id).await?;
    awaiting_approval(&lead)?;
    let rejected = lead.advanced(LeadEvent::DraftRejected, app.services.clock.now()).map_err(|e| Problem::conflict(e.to_string()))?;
    let stored = app.services.store.update_lead(&rejected).await?;
    crate::steps::progress::complete_if_finished(app.services.store.as_ref(), app.services.clock.as_ref(), stored.execution_id)
        .await
        .map_err(|e| Problem::unavailable(e.0))?;
    Ok(Json(stored))
}
