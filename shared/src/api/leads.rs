//! Leads across executions, the approval of drafts that wait for a reviewer, and the
//! resolution of parked sends.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Caller;
use super::executions::state_filter;
use super::extract::{Body, Params, parse_json, path_id};
use super::problem::Problem;
use crate::app::review::{DraftEdits, ParkedDecision, Review, ReviewError};
use crate::domain::{EmailAddress, EmailDraft, Lead, LeadId, LeadStateKind, ReplyIntent, ResearchReport};
use crate::ports::store::LeadQuery;
use crate::ports::{Page, StoreError};

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

pub(crate) async fn load(app: &AppState, raw_id: &str) -> Result<Lead, Problem> {
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
    let intent = params
        .get("intent")
        .map(|raw| {
            ReplyIntent::parse(raw).ok_or_else(|| {
                let known: Vec<&str> = ReplyIntent::ALL.iter().map(|i| i.as_str()).collect();
                Problem::invalid_field("intent", format!("'{raw}' is not one of {}", known.join(", ")))
            })
        })
        .transpose()?;
    let mut query = LeadQuery { execution_id, agent_id, state: state_filter(&params)?, email, intent };
    // Every list is served by an index; "all leads of everything" has none. Leads with an
    // intent answered: without a narrower criterion, they are looked for among those that replied.
    if query.execution_id.is_none() && query.email.is_none() && query.state.is_none() {
        if query.intent.is_none() {
            return Err(Problem::invalid_field("state", "name an execution_id, an email, a state or an intent to list leads by"));
        }
        query.state = Some(LeadStateKind::Replied);
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
    /// Claims the guards refused that the reviewer knows to be true, exactly as the refusal
    /// named them. The acceptance is logged with the reviewer's key.
    #[serde(default)]
    accept_claims: Vec<String>,
}

/// Claims a reviewer may accept at once; more is a rewrite, not a review.
const MAX_ACCEPTED_CLAIMS: usize = 20;

fn review_problem(error: ReviewError) -> Problem {
    match error {
        ReviewError::NotFound => Problem::not_found("no lead with this id"),
        ReviewError::WrongState(why) => Problem::conflict(why),
        ReviewError::Unavailable(why) => Problem::unavailable(why),
        ReviewError::Refused(issues) => {
            let mut problem = Problem::invalid(issues);
            problem.detail =
                format!("{} A claim you know to be true may be accepted by naming it, as quoted, in accept_claims.", problem.detail);
            problem
        }
    }
}

/// Approves the current draft, optionally edited, and sends it on its way. Edits pass the same
/// guards a drafted email does.
pub async fn approve(
    State(app): State<AppState>,
    Path(lead_id): Path<String>,
    caller: Option<Extension<Caller>>,
    Body(body): Body,
) -> Result<Json<Lead>, Problem> {
    let lead = load(&app, &lead_id).await?;
    let approval: Approval = if body.iter().all(u8::is_ascii_whitespace) { Approval::default() } else { parse_json(&body)? };
    if approval.accept_claims.len() > MAX_ACCEPTED_CLAIMS || approval.accept_claims.iter().any(|c| c.trim().is_empty() || c.len() > 300) {
        return Err(Problem::invalid_field("accept_claims", format!("name at most {MAX_ACCEPTED_CLAIMS} claims of 1 to 300 characters")));
    }
    let edits = DraftEdits { subject: approval.subject, body: approval.body, accepted_claims: approval.accept_claims };
    let reviewer = caller.map(|Extension(c)| c).unwrap_or_default().describe();
    Ok(Json(Review { ports: &app.ports }.approve(lead.id, edits, &reviewer).await.map_err(review_problem)?))
}

pub async fn reject(State(app): State<AppState>, Path(lead_id): Path<String>) -> Result<Json<Lead>, Problem> {
    let lead = load(&app, &lead_id).await?;
    Ok(Json(Review { ports: &app.ports }.reject(lead.id).await.map_err(review_problem)?))
}

/// A person's decision about a parked send.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Resolve {
    /// `sent` (the email left) or `send_again` (it did not).
    resolution: String,
    /// With `sent`: the provider's id of the email, if known (the SES message id, say).
    #[serde(default)]
    provider_message_id: Option<String>,
    /// With `sent`: the Message-ID recipients saw, when it is not ours (SES's own, say).
    #[serde(default)]
    message_id: Option<String>,
}

/// Resolves a parked lead: `{"resolution": "sent"}` records the email as sent (it counts, its
/// replies match, its next step is scheduled); `{"resolution": "send_again"}` sends it again.
pub async fn resolve(State(app): State<AppState>, Path(lead_id): Path<String>, Body(body): Body) -> Result<Json<Lead>, Problem> {
    let lead = load(&app, &lead_id).await?;
    let request: Resolve = parse_json(&body)?;
    let clean = |value: Option<String>, field: &str| -> Result<Option<String>, Problem> {
        match value.map(|v| v.trim().trim_matches(['<', '>']).to_string()) {
            Some(v) if v.is_empty() || v.len() > 500 || v.chars().any(char::is_whitespace) => {
                Err(Problem::invalid_field(field, "must be 1 to 500 characters without spaces"))
            }
            other => Ok(other),
        }
    };
    let decision = match request.resolution.as_str() {
        "sent" => ParkedDecision::Sent {
            provider_message_id: clean(request.provider_message_id, "provider_message_id")?,
            message_id: clean(request.message_id, "message_id")?,
        },
        "send_again" if request.provider_message_id.is_none() && request.message_id.is_none() => ParkedDecision::SendAgain,
        "send_again" => return Err(Problem::invalid_field("provider_message_id", "only goes with the resolution 'sent'")),
        other => return Err(Problem::invalid_field("resolution", format!("'{other}' is neither 'sent' nor 'send_again'"))),
    };
    Ok(Json(Review { ports: &app.ports }.resolve(lead.id, decision).await.map_err(review_problem)?))
}
