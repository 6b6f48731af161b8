use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::AppState;
use super::extract::{JsonBody, Params, path_id};
use super::problem::Problem;
use crate::domain::{Agent, AgentId, AgentSpec, ExecutionState};
use crate::ports::{Page, StoreError};

pub async fn create(
    State(app): State<AppState>,
    JsonBody(spec): JsonBody<AgentSpec>,
) -> Result<(StatusCode, HeaderMap, Json<Agent>), Problem> {
    spec.validate()?;
    let agent = spec.into_agent(AgentId::generate(), app.services.clock.now());
    app.services.store.create_agent(&agent).await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/agents/{}", agent.id)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(agent)))
}

pub async fn list(State(app): State<AppState>, params: Params) -> Result<Json<Page<Agent>>, Problem> {
    Ok(Json(app.services.store.list_agents(&params.page()?).await?))
}

pub(crate) async fn load(app: &AppState, raw_id: &str) -> Result<Agent, Problem> {
    let id: AgentId = path_id(raw_id, "agent")?;
    app.services.store.get_agent(id).await.map_err(|e| match e {
        StoreError::NotFound => Problem::not_found(format!("no agent with id '{raw_id}'")),
        other => other.into(),
    })
}

pub async fn get(State(app): State<AppState>, Path(agent_id): Path<String>) -> Result<Json<Agent>, Problem> {
    Ok(Json(load(&app, &agent_id).await?))
}

/// Replaces the agent's description. Running executions pick up the new sequence for the
/// steps they have not drafted yet.
pub async fn replace(
    State(app): State<AppState>,
    Path(agent_id): Path<String>,
    JsonBody(spec): JsonBody<AgentSpec>,
) -> Result<Json<Agent>, Problem> {
    spec.validate()?;
    let current = load(&app, &agent_id).await?;
    let updated = current.replaced_by(spec, app.services.clock.now());
    Ok(Json(app.services.store.update_agent(&updated).await?))
}

pub async fn delete(State(app): State<AppState>, Path(agent_id): Path<String>) -> Result<StatusCode, Problem> {
    let agent = load(&app, &agent_id).await?;
    let unfinished = [ExecutionState::Created, ExecutionState::Running, ExecutionState::Paused];
    if app.services.store.has_executions_in(agent.id, &unfinished).await? {
        return Err(Problem::conflict("the agent has executions that have not finished; cancel them first"));
    }
    app.services.store.delete_agent(agent.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
