//! Issuing and revoking API keys. The token is shown once, when it is issued.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::JsonBody;
use super::problem::Problem;
use crate::domain::api_key::ApiKey;
use crate::domain::{Timestamp, ValidationErrors};
use crate::ports::StoreError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
}

/// A key as listed: never its hash, never its secret.
#[derive(Serialize)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

impl From<ApiKey> for KeyView {
    fn from(key: ApiKey) -> Self {
        Self { id: key.id, name: key.name, created_at: key.created_at, revoked_at: key.revoked_at }
    }
}

#[derive(Serialize)]
pub struct IssuedView {
    #[serde(flatten)]
    pub key: KeyView,
    /// Shown once; store it now.
    pub token: String,
}

/// Issues a key named `name` and stores it; shared by the API and the command line.
pub async fn issue(store: &dyn crate::ports::Store, name: &str, now: Timestamp) -> Result<IssuedView, Problem> {
    let mut errors = ValidationErrors::default();
    errors.require("name", name, 100);
    if !errors.is_empty() {
        return Err(Problem::invalid(errors.0));
    }
    let issued = ApiKey::issue(name, now);
    store.create_api_key(&issued.key).await?;
    Ok(IssuedView { key: issued.key.into(), token: issued.token })
}

pub async fn create(State(app): State<AppState>, JsonBody(new): JsonBody<NewKey>) -> Result<(StatusCode, Json<IssuedView>), Problem> {
    let issued = issue(app.services.store.as_ref(), &new.name, app.services.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

pub async fn list(State(app): State<AppState>) -> Result<Json<Vec<KeyView>>, Problem> {
    Ok(Json(app.services.store.list_api_keys().await?.into_iter().map(KeyView::from).collect()))
}

pub async fn revoke(State(app): State<AppState>, Path(key_id): Path<String>) -> Result<Json<KeyView>, Problem> {
    match app.services.store.revoke_api_key(&key_id, app.services.clock.now()).await {
        Ok(key) => Ok(Json(key.into())),
        Err(StoreError::NotFound) => Err(Problem::not_found(format!("no API key with id '{key_id}'"))),
        Err(e) => Err(e.into()),
    }
}
