//! Bearer API keys on every `/api/v1` route (health and unsubscribe stay open: monitors and
//! mail clients call them without a key).

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::problem::Problem;
use crate::domain::api_key::parse_token;

/// Who made a request: the id of the API key it carried, when keys are required. Decisions a
/// person makes (approving an edited draft, accepting a claim) are logged with it.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub key_id: Option<String>,
}

impl Caller {
    /// How the log names the caller.
    pub fn describe(&self) -> String {
        match &self.key_id {
            Some(id) => format!("API key {id}"),
            None => "a caller without a key (authentication is off)".into(),
        }
    }
}

pub async fn require_api_key(State(app): State<AppState>, mut request: Request, next: Next) -> Result<Response, Problem> {
    if !app.services.auth_required {
        request.extensions_mut().insert(Caller::default());
        return Ok(next.run(request).await);
    }
    let presented =
        request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let Some(presented) = presented else {
        return Err(Problem::unauthorized("send the API key as 'Authorization: Bearer <key>'"));
    };
    let Some((id, secret)) = parse_token(presented) else {
        return Err(Problem::unauthorized("the API key is malformed"));
    };
    match app.services.store.get_api_key(id).await? {
        Some(key) if key.accepts(secret) => {
            let caller = Caller { key_id: Some(id.to_string()) };
            request.extensions_mut().insert(caller);
            Ok(next.run(request).await)
        }
        _ => Err(Problem::unauthorized("the API key is not valid or was revoked")),
    }
}
