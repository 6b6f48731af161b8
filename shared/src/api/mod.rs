//! The REST surface under `/api/v1`, one axum router that serves both Lambda (through
//! `lambda_http`) and the local server.

mod agents;
pub mod api_keys;
mod auth;
mod executions;
pub mod extract;
mod host_guard;
pub mod lead_import;
mod leads;
pub mod problem;
mod stats;
mod suppressions;
mod unsubscribe;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use serde_json::json;

use crate::app::{ExecutionControl, StepPorts};
use crate::ports::{Clock, LeadSource, Queue, Store, UnsubscribeKeys};
use problem::Problem;

/// What the API needs, built once at start-up.
pub struct ApiServices {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    pub lead_sources: Arc<dyn LeadSource>,
    /// Verifies unsubscribe tokens; while it has no key the unsubscribe endpoint answers 503.
    pub unsubscribe: Arc<dyn UnsubscribeKeys>,
    /// The mailboxes that send, for their health.
    pub sending_mailboxes: Arc<crate::app::SendingMailboxes>,
    /// What each sending domain publishes (SPF, DMARC), for the mailboxes' health.
    pub mail_domains: Arc<dyn crate::ports::MailDomains>,
    pub limits: ApiLimits,
    /// Whether `/api/v1` requires `Authorization: Bearer <key>`.
    pub auth_required: bool,
    /// Refuse requests whose `Host` is not a loopback name: a local server without API keys must
    /// not answer a web page that rebound its own domain to 127.0.0.1.
    pub loopback_hosts_only: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct ApiLimits {
    pub max_body_bytes: usize,
    pub max_leads_per_execution: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self { max_body_bytes: 6 * 1024 * 1024, max_leads_per_execution: 10_000 }
    }
}

#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub services: ApiServices,
    /// The ports the use cases run on.
    pub ports: StepPorts,
    pub control: ExecutionControl,
}

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    pub fn new(services: ApiServices) -> Self {
        let ports = StepPorts { store: services.store.clone(), queue: services.queue.clone(), clock: services.clock.clone() };
        Self(Arc::new(AppInner { control: ExecutionControl::new(ports.clone()), ports, services }))
    }
}

pub fn router(services: ApiServices) -> Router {
    let body_limit = services.limits.max_body_bytes;
    let state = AppState::new(services);
    let api = Router::new()
        .route("/agents", get(agents::list).post(agents::create))
        .route("/agents/{agent_id}", get(agents::get).put(agents::replace).delete(agents::delete))
        .route("/agents/{agent_id}/executions", get(executions::list_for_agent).post(executions::start))
        .route("/executions", get(executions::list))
        .route("/executions/{execution_id}", get(executions::get))
        .route("/executions/{execution_id}/pause", post(executions::pause))
        .route("/executions/{execution_id}/resume", post(executions::resume))
        .route("/executions/{execution_id}/cancel", post(executions::cancel))
        .route("/executions/{execution_id}/logs", get(executions::logs))
        .route("/executions/{execution_id}/leads", get(executions::leads))
        .route("/leads", get(leads::list))
        .route("/leads/{lead_id}", get(leads::get))
        .route("/leads/{lead_id}/approve", post(leads::approve))
        .route("/leads/{lead_id}/reject", post(leads::reject))
        .route("/leads/{lead_id}/resolve", post(leads::resolve))
        .route("/leads/{lead_id}/referral", post(executions::start_referral))
        .route("/stats/overview", get(stats::overview))
        .route("/mailboxes", get(stats::mailboxes))
        .route("/mailboxes/{address}/resume", post(stats::resume_mailbox))
        .route("/suppressions", get(suppressions::list).post(suppressions::add))
        .route("/suppressions/{entry}", axum::routing::delete(suppressions::remove))
        .route("/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/api-keys/{key_id}", axum::routing::delete(api_keys::revoke))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_api_key));
    Router::new()
        .route("/health", get(health))
        .route("/unsubscribe/{token}", get(unsubscribe::confirm_page).post(unsubscribe::one_click))
        .nest("/api/v1", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), host_guard::loopback_hosts_only))
        .with_state(state)
}

/// Healthy only when the store can be written: a monitor must not be told "ok" while every
/// transition would fail.
async fn health(axum::extract::State(app): axum::extract::State<AppState>) -> Result<axum::Json<serde_json::Value>, Problem> {
    match app.services.store.probe(app.services.clock.now()).await {
        Ok(()) => Ok(axum::Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))),
        Err(error) => {
            tracing::error!(%error, "the health probe could not write to the store");
            Err(Problem::unavailable("the store cannot be written"))
        }
    }
}

async fn not_found(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("no route for {}", uri.path()))
}

async fn method_not_allowed() -> Problem {
    Problem::method_not_allowed()
}
