//! RFC 8058 one-click unsubscribe. Mail clients POST `List-Unsubscribe=One-Click` to the link;
//! a person who opens it in a browser gets a page with a button, because link scanners fetch
//! URLs with GET and must not unsubscribe anyone. While the signing key cannot be loaded the
//! answer is 503 (try again), never 404: a valid link must not be reported as invalid.

use axum::extract::{Path, State};
use axum::response::Html;

use super::AppState;
use super::problem::Problem;
use crate::app::review::{Review, ReviewError};
use crate::domain::LeadId;

async fn lead_of(app: &AppState, token: &str) -> Result<LeadId, Problem> {
    let signer = app
        .services
        .unsubscribe
        .signer()
        .await
        .ok_or_else(|| Problem::unavailable("unsubscribing is briefly unavailable; please try again in a minute"))?;
    signer.verify(token).ok_or_else(|| Problem::not_found("this unsubscribe link is not valid"))
}

pub async fn confirm_page(State(app): State<AppState>, Path(token): Path<String>) -> Result<Html<String>, Problem> {
    lead_of(&app, &token).await?;
    Ok(Html(format!(
        "<!doctype html><meta charset=utf-8><title>Unsubscribe</title>\
         <form method=post action=\"/unsubscribe/{token}\"><input type=hidden name=List-Unsubscribe value=One-Click>\
         <p>Stop receiving these emails?</p><button type=submit>Unsubscribe</button></form>"
    )))
}

pub async fn one_click(State(app): State<AppState>, Path(token): Path<String>) -> Result<&'static str, Problem> {
    let lead_id = lead_of(&app, &token).await?;
    let review = Review { ports: &app.ports };
    match review.unsubscribe(lead_id).await {
        Ok(_) => Ok("You are unsubscribed and will not receive further emails.\n"),
        Err(ReviewError::NotFound) => Err(Problem::not_found("this unsubscribe link is not valid")),
        Err(ReviewError::WrongState(why) | ReviewError::Unavailable(why)) => Err(Problem::unavailable(why)),
        Err(refused @ ReviewError::Refused(_)) => Err(Problem::unavailable(refused.to_string())),
    }
}
