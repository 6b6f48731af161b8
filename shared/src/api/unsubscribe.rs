//! RFC 8058 one-click unsubscribe. Mail clients POST `List-Unsubscribe=One-Click` to the link;
//! a person who opens it in a browser gets a page with a button, because link scanners fetch
//! URLs with GET and must not unsubscribe anyone.

use axum::extract::{Path, State};
use axum::response::Html;

use super::AppState;
use super::problem::Problem;
use crate::steps::replies::{SequenceEnd, end_sequence};

pub async fn confirm_page(State(app): State<AppState>, Path(token): Path<String>) -> Result<Html<String>, Problem> {
    app.services
        .unsubscribe
        .as_ref()
        .and_then(|signer| signer.verify(&token))
        .ok_or_else(|| Problem::not_found("this unsubscribe link is not valid"))?;
    Ok(Html(format!(
        "<!doctype html><meta charset=utf-8><title>Unsubscribe</title>\
         <form method=post action=\"/unsubscribe/{token}\"><input type=hidden name=List-Unsubscribe value=One-Click>\
         <p>Stop receiving these emails?</p><button type=submit>Unsubscribe</button></form>"
    )))
}

pub async fn one_click(State(app): State<AppState>, Path(token): Path<String>) -> Result<&'static str, Problem> {
    let lead_id = app
        .services
        .unsubscribe
        .as_ref()
        .and_then(|signer| signer.verify(&token))
        .ok_or_else(|| Problem::not_found("this unsubscribe link is not valid"))?;
    let lead = app.services.store.get_lead(lead_id).await?;
    end_sequence(app.services.store.as_ref(), app.services.clock.as_ref(), &lead, SequenceEnd::Unsubscribed, None)
        .await
        .map_err(|e| Problem::unavailable(e.0))?;
    Ok("You are unsubscribed and will not receive further emails.\n")
}
