//! Executions: start one with leads (JSON, CSV or a lead-source search), follow it, and
//! control it.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AppState;
use super::agents;
use super::extract::{Body, Params, parse_json, path_id};
use super::lead_import::{self, DuplicateRow, ImportedLeads, LeadInput};
use super::problem::Problem;
use crate::app::control::{ControlError, Sweeping};
use crate::app::start::{StartError, StartExecution, StartOutcome};
use crate::domain::{
    EmailAddress, Execution, ExecutionCounters, ExecutionId, ExecutionLogEntry, FieldIssue, Lead, LeadContact, LeadSourceKind,
    LeadStateKind,
};
use crate::ports::store::LeadQuery;
use crate::ports::{LeadSourceError, LeadSourceSpec, Page, SourcedLeads, StoreError};

/// An execution with its counters, how many of its leads are in each state, and what needs a
/// person's attention.
#[derive(Debug, Serialize)]
pub struct ExecutionView {
    #[serde(flatten)]
    pub execution: Execution,
    pub counters: ExecutionCounters,
    pub lead_counts: BTreeMap<&'static str, u64>,
    pub response_rate: f64,
    /// What keeps the execution from finishing on its own, in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs_attention: Vec<String>,
}

pub(crate) async fn view(app: &AppState, execution: Execution) -> Result<ExecutionView, Problem> {
    let progress = app.services.store.execution_progress(execution.id).await?;
    let lead_counts = LeadStateKind::ALL.into_iter().map(|k| (k.as_str(), progress.count(k))).filter(|(_, n)| *n > 0).collect();
    let mut needs_attention = Vec::new();
    if let Some(reason) = &execution.pause_reason {
        needs_attention.push(format!("paused by itself: {reason}; fix it, then POST /api/v1/executions/{}/resume", execution.id));
    }
    if let Some(reason) = &execution.follow_ups_waiting {
        needs_attention.push(format!("due follow-ups wait: {reason}; fix the mailbox settings or password (GET /api/v1/mailboxes)"));
    }
    match progress.count(LeadStateKind::Parked) {
        0 => {}
        parked => needs_attention.push(format!(
            "{parked} lead(s) parked: a send's outcome is unknown; check the provider, then POST /api/v1/leads/{{id}}/resolve \
             (GET /api/v1/executions/{}/leads?state=parked lists them)",
            execution.id
        )),
    }
    if let awaiting @ 1.. = progress.count(LeadStateKind::AwaitingApproval) {
        needs_attention.push(format!("{awaiting} draft(s) await approval"));
    }
    Ok(ExecutionView {
        response_rate: progress.counters.response_rate(),
        counters: progress.counters,
        execution,
        lead_counts,
        needs_attention,
    })
}

pub(crate) async fn load(app: &AppState, raw_id: &str) -> Result<Execution, Problem> {
    let id: ExecutionId = path_id(raw_id, "execution")?;
    app.services.store.get_execution(id).await.map_err(|e| match e {
        StoreError::NotFound => Problem::not_found(format!("no execution with id '{raw_id}'")),
        other => other.into(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    #[serde(default)]
    leads: Option<Vec<LeadInput>>,
    #[serde(default)]
    lead_source: Option<LeadSourceSpec>,
    /// Import the valid rows and report the invalid ones instead of refusing the whole request.
    #[serde(default)]
    skip_invalid: bool,
}

#[derive(Debug, Serialize)]
pub struct StartResponse {
    pub execution: ExecutionView,
    pub accepted: usize,
    /// Rows not imported because their address appeared earlier in the same import.
    pub duplicates: Vec<DuplicateRow>,
    /// Rows not imported because they were invalid (only with `skip_invalid`).
    pub rejected: Vec<FieldIssue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_columns: Vec<String>,
    /// True when an earlier request with the same Idempotency-Key already started this execution.
    pub replayed: bool,
    /// What a lead-source search found and what its enrichment cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_source: Option<SourcedLeads>,
}

fn is_csv(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.to_ascii_lowercase().starts_with("text/csv"))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    match value.to_str().map(str::trim) {
        Ok(key) if !key.is_empty() && key.len() <= 200 => Ok(Some(key.to_string())),
        _ => Err(Problem::invalid_field("Idempotency-Key", "must be 1 to 200 visible ASCII characters")),
    }
}

/// Reads the leads of a start request in whichever form they came.
async fn import(
    app: &AppState,
    headers: &HeaderMap,
    params: &Params,
    body: &[u8],
) -> Result<(ImportedLeads, LeadSourceKind, bool), Problem> {
    let max = app.services.limits.max_leads_per_execution;
    if is_csv(headers) {
        let imported = lead_import::from_csv(body, max).map_err(|e| match e {
            lead_import::CsvError::Unreadable { line, ref message } => {
                Problem::invalid(vec![FieldIssue::at_line(line, format!("line {line}"), message.clone())])
            }
            lead_import::CsvError::TooManyRows(_) => Problem::too_large(e.to_string()),
            other => Problem::invalid_field("csv", other.to_string()),
        })?;
        return Ok((imported, LeadSourceKind::Csv, params.flag("skip_invalid")?));
    }
    if let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
        && !content_type.to_ascii_lowercase().starts_with("application/json")
    {
        return Err(Problem::unsupported_media_type(format!("send application/json or text/csv, not {content_type}")));
    }
    let request: StartRequest = parse_json(body)?;
    match (request.leads, request.lead_source) {
        (Some(leads), None) => {
            if leads.len() > max {
                return Err(Problem::too_large(format!("an execution takes at most {max} leads; this request has {}", leads.len())));
            }
            Ok((lead_import::from_json(leads), LeadSourceKind::Json, request.skip_invalid))
        }
        (None, Some(spec)) => {
            let sourced = app.services.lead_sources.find_leads(&spec).await.map_err(|e| match e {
                LeadSourceError::NotConfigured(_) => Problem::invalid_field("lead_source.provider", e.to_string()),
                LeadSourceError::Rejected(why) => Problem::invalid_field("lead_source", why),
                LeadSourceError::Unavailable(why) => Problem::unavailable(format!("the lead source is unavailable: {why}")),
            })?;
            let mut imported = lead_import::from_contacts(sourced.contacts.iter().take(max).cloned());
            imported.sourced = Some(SourcedLeads { contacts: Vec::new(), ..sourced });
            Ok((imported, LeadSourceKind::Apollo, true))
        }
        (Some(_), Some(_)) => Err(Problem::invalid_field("leads", "send either leads or lead_source, not both")),
        (None, None) => Err(Problem::invalid_field("leads", "is required (or lead_source, or a text/csv body)")),
    }
}

/// A digest of everything that defines a start request: an Idempotency-Key is bound to it.
fn fingerprint(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(uri.path().as_bytes());
    digest.update([0]);
    digest.update(uri.query().unwrap_or_default().as_bytes());
    digest.update([0]);
    digest.update(headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or_default());
    digest.update([0]);
    digest.update(body);
    format!("{:x}", digest.finalize())
}

fn start_problem(error: StartError) -> Problem {
    match error {
        StartError::KeyReused => Problem::invalid_field("Idempotency-Key", error.to_string()),
        StartError::Failed(_) => Problem::conflict(error.to_string()),
        StartError::Unavailable(why) => Problem::unavailable(why),
    }
}

pub async fn start(
    State(app): State<AppState>,
    Path(agent_id): Path<String>,
    params: Params,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, HeaderMap, Json<StartResponse>), Problem> {
    let agent = agents::load(&app, &agent_id).await?;
    let key = idempotency_key(&headers)?;
    let fingerprint = fingerprint(&uri, &headers, &body);
    let starter = StartExecution { ports: &app.ports };
    if let Some(key) = &key
        && let Some(existing) = starter.replayable(agent.id, key, &fingerprint).await.map_err(start_problem)?
    {
        return replay(&app, existing).await;
    }
    let (imported, source, skip_invalid) = import(&app, &headers, &params, &body).await?;
    if !imported.rejected.is_empty() && !skip_invalid {
        return Err(Problem::invalid(imported.rejected));
    }
    if imported.contacts.is_empty() {
        return Err(Problem::invalid(if imported.rejected.is_empty() {
            vec![FieldIssue::new("leads", "contains no lead")]
        } else {
            imported.rejected
        }));
    }
    let accepted = imported.contacts.len();
    let request = crate::app::start::StartRequest { agent, source, contacts: imported.contacts, idempotency_key: key, fingerprint };
    let started = match starter.start(request).await.map_err(start_problem)? {
        StartOutcome::Started(execution) => execution,
        StartOutcome::Replayed(execution) => return replay(&app, execution).await,
    };
    let mut response_headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/executions/{}", started.id)) {
        response_headers.insert(header::LOCATION, location);
    }
    let response = StartResponse {
        accepted,
        execution: view(&app, started).await?,
        duplicates: imported.duplicates,
        rejected: imported.rejected,
        ignored_columns: imported.ignored_columns,
        replayed: false,
        lead_source: imported.sourced,
    };
    Ok((StatusCode::CREATED, response_headers, Json(response)))
}

/// `POST /api/v1/leads/{id}/referral`: the colleague a lead's reply named becomes a lead of
/// the same agent, in an execution of its own (researched, drafted and sent like any other).
/// The address is the one the reply gave unless the body names another (`email`, and
/// optionally `first_name`, `last_name`, `title`). Asking twice starts it once.
pub async fn start_referral(
    State(app): State<AppState>,
    Path(lead_id): Path<String>,
    Body(body): Body,
) -> Result<(StatusCode, HeaderMap, Json<StartResponse>), Problem> {
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ReferredContact {
        email: Option<String>,
        first_name: Option<String>,
        last_name: Option<String>,
        title: Option<String>,
    }
    let given: ReferredContact = if body.iter().all(u8::is_ascii_whitespace) { ReferredContact::default() } else { parse_json(&body)? };
    let lead = super::leads::load(&app, &lead_id).await?;
    let referral = lead.inbound.iter().rev().find_map(|record| record.referral.clone());
    let Some(email) = given.email.clone().or_else(|| referral.as_ref().and_then(|r| r.email.clone())) else {
        return Err(Problem::invalid_field("email", "the lead's replies name no colleague's address; give one"));
    };
    let email = EmailAddress::parse(&email).map_err(|e| Problem::invalid_field("email", e.0))?;
    if email.dedupe_key() == lead.contact.email.dedupe_key() {
        return Err(Problem::invalid_field("email", "is the lead's own address"));
    }
    let referred_name = referral.and_then(|r| r.name).unwrap_or_default();
    let mut name = referred_name.split_whitespace();
    let (first, rest) = (name.next().map(str::to_string), name.collect::<Vec<_>>().join(" "));
    let contact = LeadContact {
        email,
        first_name: given.first_name.or(first).unwrap_or_default(),
        last_name: given.last_name.or(Some(rest).filter(|r| !r.is_empty())),
        company: lead.contact.company.clone(),
        title: given.title,
        company_domain: lead.contact.company_domain.clone(),
        time_zone: lead.contact.time_zone.clone(),
    };
    let agent = agents::load(&app, &lead.agent_id.to_string()).await?;
    let key = format!("referral-{}", lead.id);
    let fingerprint = format!("referral:{}:{}", lead.id, contact.email.dedupe_key());
    let starter = StartExecution { ports: &app.ports };
    // The start itself replays an execution its key already started.
    let request = crate::app::start::StartRequest {
        agent,
        source: LeadSourceKind::Referral,
        contacts: vec![contact],
        idempotency_key: Some(key),
        fingerprint,
    };
    let started = match starter.start(request).await.map_err(start_problem)? {
        StartOutcome::Started(execution) => execution,
        StartOutcome::Replayed(execution) => return replay(&app, execution).await,
    };
    tracing::info!(lead_id = %lead.id, execution_id = %started.id, "a referred colleague was added as a lead");
    let response = StartResponse {
        accepted: 1,
        execution: view(&app, started).await?,
        duplicates: vec![],
        rejected: vec![],
        ignored_columns: vec![],
        replayed: false,
        lead_source: None,
    };
    Ok((StatusCode::CREATED, HeaderMap::new(), Json(response)))
}

async fn replay(app: &AppState, existing: Execution) -> Result<(StatusCode, HeaderMap, Json<StartResponse>), Problem> {
    let accepted = existing.lead_count as usize;
    let response = StartResponse {
        execution: view(app, existing).await?,
        accepted,
        duplicates: vec![],
        rejected: vec![],
        ignored_columns: vec![],
        replayed: true,
        lead_source: None,
    };
    Ok((StatusCode::OK, HeaderMap::new(), Json(response)))
}

fn control_problem(error: ControlError) -> Problem {
    match error {
        ControlError::NotFound => Problem::not_found("no execution with this id"),
        ControlError::Invalid(e) => Problem::conflict(e.to_string()),
        ControlError::Unavailable(why) => Problem::unavailable(why),
    }
}

async fn list_page(app: &AppState, agent: Option<crate::domain::AgentId>, params: &Params) -> Result<Json<Page<ExecutionView>>, Problem> {
    let page = app.services.store.list_executions(agent, &params.page()?).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for execution in page.items {
        items.push(view(app, execution).await?);
    }
    Ok(Json(Page { items, next_cursor: page.next_cursor }))
}

/// All executions, newest first; `?agent_id=` narrows to one agent.
pub async fn list(State(app): State<AppState>, params: Params) -> Result<Json<Page<ExecutionView>>, Problem> {
    let agent = match params.get("agent_id") {
        Some(raw) => Some(agents::load(&app, raw).await?.id),
        None => None,
    };
    list_page(&app, agent, &params).await
}

pub async fn list_for_agent(
    State(app): State<AppState>,
    Path(agent_id): Path<String>,
    params: Params,
) -> Result<Json<Page<ExecutionView>>, Problem> {
    let agent = agents::load(&app, &agent_id).await?;
    list_page(&app, Some(agent.id), &params).await
}

pub async fn get(State(app): State<AppState>, Path(execution_id): Path<String>) -> Result<Json<ExecutionView>, Problem> {
    let execution = load(&app, &execution_id).await?;
    Ok(Json(view(&app, execution).await?))
}

pub async fn pause(State(app): State<AppState>, Path(execution_id): Path<String>) -> Result<Json<ExecutionView>, Problem> {
    let execution = load(&app, &execution_id).await?;
    let paused = app.control.pause(execution.id).await.map_err(control_problem)?;
    Ok(Json(view(&app, paused).await?))
}

#[derive(Serialize)]
pub struct ControlResponse {
    #[serde(flatten)]
    execution: ExecutionView,
    /// Held leads enqueued again by this request (resume).
    #[serde(skip_serializing_if = "Option::is_none")]
    requeued_leads: Option<u64>,
    /// Leads skipped by this request (cancel).
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped_leads: Option<u64>,
    /// Whether the rest of the leads are being handled in the background.
    continues_in_background: bool,
}

impl ControlResponse {
    async fn of(app: &AppState, execution: Execution, sweeping: Sweeping, resumed: bool) -> Result<Self, Problem> {
        let (requeued_leads, skipped_leads) = if resumed { (Some(sweeping.leads), None) } else { (None, Some(sweeping.leads)) };
        let execution = view(app, execution).await?;
        Ok(Self { execution, requeued_leads, skipped_leads, continues_in_background: sweeping.continues_in_background })
    }
}

pub async fn resume(State(app): State<AppState>, Path(execution_id): Path<String>) -> Result<Json<ControlResponse>, Problem> {
    let execution = load(&app, &execution_id).await?;
    let (resumed, requeued) = app.control.resume(execution.id).await.map_err(control_problem)?;
    Ok(Json(ControlResponse::of(&app, resumed, requeued, true).await?))
}

pub async fn cancel(State(app): State<AppState>, Path(execution_id): Path<String>) -> Result<Json<ControlResponse>, Problem> {
    let execution = load(&app, &execution_id).await?;
    let (cancelled, skipped) = app.control.cancel(execution.id).await.map_err(control_problem)?;
    Ok(Json(ControlResponse::of(&app, cancelled, skipped, false).await?))
}

pub async fn logs(
    State(app): State<AppState>,
    Path(execution_id): Path<String>,
    params: Params,
) -> Result<Json<Page<ExecutionLogEntry>>, Problem> {
    let execution = load(&app, &execution_id).await?;
    Ok(Json(app.services.store.list_logs(execution.id, &params.page()?).await?))
}

pub(crate) fn state_filter(params: &Params) -> Result<Option<LeadStateKind>, Problem> {
    params
        .get("state")
        .map(|raw| {
            LeadStateKind::parse(raw).ok_or_else(|| {
                let known: Vec<&str> = LeadStateKind::ALL.iter().map(|k| k.as_str()).collect();
                Problem::invalid_field("state", format!("'{raw}' is not a lead state; use one of {}", known.join(", ")))
            })
        })
        .transpose()
}

pub async fn leads(State(app): State<AppState>, Path(execution_id): Path<String>, params: Params) -> Result<Json<Page<Lead>>, Problem> {
    let execution = load(&app, &execution_id).await?;
    let query = LeadQuery { execution_id: Some(execution.id), state: state_filter(&params)?, ..Default::default() };
    Ok(Json(app.services.store.list_leads(&query, &params.page()?).await?))
}
