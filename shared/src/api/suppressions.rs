//! The suppression list through the API: list it, add an address or a whole domain (which
//! covers its subdomains), and take an entry off. Every entry says why and what added it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::extract::{JsonBody, Params};
use super::problem::Problem;
use crate::domain::suppression::MANUAL_REASONS;
use crate::domain::{MarkerChange, Suppression, Transition};
use crate::ports::Page;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSuppression {
    /// An address (`ada@initech.example`) or a domain (`initech.example`).
    entry: String,
    #[serde(default)]
    reason: Option<String>,
}

pub async fn list(State(app): State<AppState>, params: Params) -> Result<Json<Page<Suppression>>, Problem> {
    Ok(Json(app.services.store.list_suppressions(&params.page()?).await?))
}

/// Adds an entry; an entry that exists already keeps its first reason and is answered as it is.
pub async fn add(
    State(app): State<AppState>,
    JsonBody(request): JsonBody<NewSuppression>,
) -> Result<(StatusCode, Json<Suppression>), Problem> {
    let entry = Suppression::entry_from(&request.entry).map_err(|issue| Problem::invalid(vec![issue]))?;
    let reason = request.reason.unwrap_or_else(|| "manual".into());
    if !MANUAL_REASONS.contains(&reason.as_str()) {
        return Err(Problem::invalid_field("reason", format!("'{reason}' is not one of {}", MANUAL_REASONS.join(", "))));
    }
    let store = &app.services.store;
    if let Some(existing) = store.suppression_entry(&entry).await? {
        return Ok((StatusCode::OK, Json(existing)));
    }
    let suppression = Suppression { entry, reason, source: Some("api".into()), created_at: app.services.clock.now() };
    store.commit(&Transition::markers(vec![MarkerChange::Suppress(suppression.clone())])).await?;
    Ok((StatusCode::CREATED, Json(suppression)))
}

/// Takes an entry off the list: the address (or the domain's addresses) may be emailed again.
pub async fn remove(State(app): State<AppState>, Path(entry): Path<String>) -> Result<StatusCode, Problem> {
    let entry = Suppression::entry_from(&entry).map_err(|issue| Problem::invalid(vec![issue]))?;
    let store = &app.services.store;
    if store.suppression_entry(&entry).await?.is_none() {
        return Err(Problem::not_found(format!("'{entry}' is not on the suppression list")));
    }
    store.commit(&Transition::markers(vec![MarkerChange::Unsuppress(entry)])).await?;
    Ok(StatusCode::NO_CONTENT)
}
