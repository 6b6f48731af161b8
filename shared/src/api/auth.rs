//! Bearer API keys on every `/api/v1` route (health and unsubscribe stay open: monitors and
//! mail clients call them without a key).

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::problem::Problem;
use crate::domain::api_key::parse_token;

pub async fn require_api_key(State(app): State<AppState>, request: Request, next: Next) -> Result<Response, Problem> {
    if !app.services.auth_required {
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
        Some(key) if key.accepts(secret) => Ok(next.run(request).await),
        _ => Err(Problem::unauthorized("the API key is not valid or was revoked")),
    }
}
