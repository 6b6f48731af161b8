//! Executions: start one with leads (JSON, CSV or a lead-source search), follow it, and
//! control it.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::agents;
use super::extract::{Body, Params, parse_json, path_id};
use super::lead_import::{self, DuplicateRow, ImportedLeads, LeadInput};
use super::problem::Problem;
use crate::domain::{Execution, ExecutionId, ExecutionLogEntry, FieldIssue, Lead, LeadSourceKind, LeadStateKind};
use crate::ports::store::LeadQuery;
use crate::ports::{FanOutMessage, LeadSourceError, LeadSourceSpec, Page, SourcedLeads, StepMessage, StepQueue, StoreError};
use crate::steps::control::ControlError;

/// An execution with how many of its leads are in each state.
#[derive(Debug, Serialize)]
pub struct ExecutionView {
    #[serde(flatten)]
    pub execution: Execution,
    pub lead_counts: BTreeMap<&'static str, u64>,
    pub response_rate: f64,
}

async fn view(app: &AppState, execution: Execution) -> Result<ExecutionView, Problem> {
    let counts = app.services.store.lead_counts(execution.id).await?;
    let lead_counts =
        LeadStateKind::ALL.into_iter().map(|k| (k.as_str(), counts.get(&k).copied().unwrap_or(0))).filter(|(_, n)| *n > 0).collect();
    let response_rate = execution.counters.response_rate();
    Ok(ExecutionView { execution, lead_counts, response_rate })
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

pub async fn start(
    State(app): State<AppState>,
    Path(agent_id): Path<String>,
    params: Params,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, HeaderMap, Json<StartResponse>), Problem> {
    let agent = agents::load(&app, &agent_id).await?;
    let key = idempotency_key(&headers)?;
    if let Some(key) = &key
        && let Some(existing) = app.services.store.find_execution_by_idempotency_key(agent.id, key).await?
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

    let now = app.services.clock.now();
    let execution = Execution::new(agent.id, source, imported.contacts.len() as u64, key.clone(), now);
    let leads: Vec<Lead> = imported.contacts.into_iter().map(|contact| Lead::new(execution.id, agent.id, contact, now)).collect();
    match app.services.store.create_execution(&execution, &leads).await {
        Ok(()) => {}
        // Two requests with one idempotency key raced; the other one won.
        Err(StoreError::Conflict) if key.is_some() => {
            if let Some(existing) =
                app.services.store.find_execution_by_idempotency_key(agent.id, key.as_deref().unwrap_or_default()).await?
            {
                return replay(&app, existing).await;
            }
            return Err(Problem::conflict("the execution could not be created; retry"));
        }
        Err(e) => return Err(e.into()),
    }
    if let Err(error) = enqueue_research(&app, &execution, &leads).await {
        tracing::error!(%error, execution_id = %execution.id, "enqueueing the leads failed; the execution is marked failed");
        if let Ok(failed) = execution.commanded(crate::domain::execution::ExecutionCommand::Fail, app.services.clock.now()) {
            let failed = Execution { failure_reason: Some(format!("the leads could not be enqueued: {error}")), ..failed };
            let _ = app.services.store.update_execution(&failed).await;
        }
        return Err(Problem::unavailable("the leads could not be enqueued; the execution was marked failed, start it again"));
    }
    let started = app.control.start(execution.id).await.map_err(control_problem)?;
    let mut response_headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/executions/{}", started.id)) {
        response_headers.insert(header::LOCATION, location);
    }
    let response = StartResponse {
        accepted: leads.len(),
        execution: view(&app, started).await?,
        duplicates: imported.duplicates,
        rejected: imported.rejected,
        ignored_columns: imported.ignored_columns,
        replayed: false,
        lead_source: imported.sourced,
    };
    Ok((StatusCode::CREATED, response_headers, Json(response)))
}

/// Executions up to this size get one research message per lead straight away.
const DIRECT_ENQUEUE_LIMIT: usize = 1_000;
/// Larger ones get one fan-out message per this many leads, expanded by the research worker.
const FAN_OUT_CHUNK: usize = 500;

/// One research message per lead; for a large start the API sends fan-out messages instead, so
/// the request stays short whatever the number of leads.
async fn enqueue_research(app: &AppState, execution: &Execution, leads: &[Lead]) -> Result<(), crate::ports::QueueError> {
    let queue = &app.services.queue;
    if leads.len() <= DIRECT_ENQUEUE_LIMIT {
        let messages: Vec<StepMessage> =
            leads.iter().map(|lead| StepMessage { execution_id: execution.id, lead_id: lead.id, step: 0 }).collect();
        return queue.enqueue(StepQueue::Research, &messages).await;
    }
    let fan_outs: Vec<FanOutMessage> = leads
        .chunks(FAN_OUT_CHUNK)
        .map(|chunk| FanOutMessage { execution_id: execution.id, step: 0, fan_out: chunk.iter().map(|lead| lead.id).collect() })
        .collect();
    queue.enqueue_fan_out(StepQueue::Research, &fan_outs).await
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
pub struct ResumeResponse {
    #[serde(flatten)]
    execution: ExecutionView,
    requeued_leads: u64,
}

pub async fn resume(State(app): State<AppState>, Path(execution_id): Path<String>) -> Result<Json<ResumeResponse>, Problem> {
    let execution = load(&app, &execution_id).await?;
    let (resumed, requeued_leads) = app.control.resume(execution.id).await.map_err(control_problem)?;
    Ok(Json(ResumeResponse { execution: view(&app, resumed).await?, requeued_leads }))
}

pub async fn cancel(State(app): State<AppState>, Path(execution_id): Path<String>) -> Result<Json<ExecutionView>, Problem> {
    let execution = load(&app, &execution_id).await?;
    let cancelled = app.control.cancel(execution.id).await.map_err(control_problem)?;
    Ok(Json(view(&app, cancelled).await?))
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
