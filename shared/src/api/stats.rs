//! Campaign statistics: what was sent, who replied, what bounced, overall and per agent.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::AppState;
use super::problem::Problem;
use crate::domain::{AgentId, ExecutionCounters, MarkerChange, Transition};
use crate::ports::PageRequest;

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub executions: u64,
    pub leads: u64,
    pub sent: u64,
    pub replied: u64,
    pub bounced: u64,
    pub unsubscribed: u64,
    pub failed: u64,
    pub soft_bounced: u64,
    pub complained: u64,
    pub auto_replied: u64,
    /// Replies by the intent of each lead's first answer.
    pub replies_by_intent: std::collections::BTreeMap<&'static str, u64>,
    /// Replies per email sent.
    pub response_rate: f64,
    /// Hard bounces per email sent.
    pub bounce_rate: f64,
    /// Spam complaints per email sent; mailbox providers filter senders above about 0.3%.
    pub complaint_rate: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Totals {
    fn add(&mut self, lead_count: u64, counters: &ExecutionCounters) {
        self.executions += 1;
        self.leads += lead_count;
        self.sent += counters.sent;
        self.replied += counters.replied;
        self.bounced += counters.bounced;
        self.unsubscribed += counters.unsubscribed;
        self.failed += counters.failed;
        self.soft_bounced += counters.soft_bounced;
        self.complained += counters.complained;
        self.auto_replied += counters.auto_replied;
        for (intent, count) in counters.replies_by_intent() {
            *self.replies_by_intent.entry(intent.as_str()).or_default() += count;
        }
        self.prompt_tokens += counters.prompt_tokens;
        self.completion_tokens += counters.completion_tokens;
    }

    fn finish(mut self) -> Self {
        if self.sent > 0 {
            self.response_rate = self.replied as f64 / self.sent as f64;
            self.bounce_rate = self.bounced as f64 / self.sent as f64;
            self.complaint_rate = self.complained as f64 / self.sent as f64;
        }
        self
    }
}

#[derive(Debug, Serialize)]
pub struct AgentTotals {
    pub agent_id: AgentId,
    pub name: Option<String>,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Serialize)]
pub struct Overview {
    #[serde(flatten)]
    pub totals: Totals,
    pub agents: Vec<AgentTotals>,
}

pub async fn overview(State(app): State<AppState>) -> Result<Json<Overview>, Problem> {
    let store = &app.services.store;
    let mut overall = Totals::default();
    let mut per_agent: BTreeMap<AgentId, Totals> = BTreeMap::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let executions = store.list_executions(None, &page).await?;
        for execution in &executions.items {
            let counters = store.execution_progress(execution.id).await?.counters;
            overall.add(execution.lead_count, &counters);
            per_agent.entry(execution.agent_id).or_default().add(execution.lead_count, &counters);
        }
        match executions.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => break,
        }
    }
    let mut agents = Vec::with_capacity(per_agent.len());
    for (agent_id, totals) in per_agent {
        let name = store.get_agent(agent_id).await.ok().map(|a| a.name);
        agents.push(AgentTotals { agent_id, name, totals: totals.finish() });
    }
    Ok(Json(Overview { totals: overall.finish(), agents }))
}

/// One sending mailbox's day so far.
#[derive(Debug, Serialize)]
pub struct SendingHealth {
    pub address: String,
    pub display_name: Option<String>,
    pub time_zone: String,
    /// The mailbox's local day the counts are for.
    pub day: chrono::NaiveDate,
    pub daily_cap: u32,
    pub sent_today: u32,
    pub room_left: u32,
    pub min_gap_seconds: i64,
    pub last_sent_at: Option<crate::domain::Timestamp>,
    /// No send before this (the gap after the last one).
    pub next_send_at: Option<crate::domain::Timestamp>,
    /// The sending domain's SPF and DMARC records and what is wrong with them, or why they could
    /// not be looked up.
    pub dns: serde_json::Value,
    /// Emails, hard bounces and complaints since the mailbox was last resumed, and its pause.
    pub since_resume: crate::domain::pacing::MailboxStanding,
    /// The last answer of its provider that was not an acceptance.
    pub last_error: Option<crate::domain::pacing::MailboxError>,
}

/// The reply poller's position and health in each mailbox folder it reads (`items`), and each
/// sending mailbox's day: sent today, room left, its last send (`sending`).
pub async fn mailboxes(State(app): State<AppState>) -> Result<Json<serde_json::Value>, Problem> {
    let store = &app.services.store;
    let cursors = store.list_mailbox_cursors().await?;
    let now = app.services.clock.now();
    let mut sending = Vec::new();
    for pace in app.services.sending_mailboxes.all() {
        sending.push(sending_health(&app, pace, now).await?);
    }
    sending.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(Json(serde_json::json!({ "items": cursors, "sending": sending })))
}

/// `POST /api/v1/mailboxes/{address}/resume`: lifts a mailbox's automatic pause and starts its
/// record again. Executions it paused are resumed on their own.
pub async fn resume_mailbox(State(app): State<AppState>, Path(address): Path<String>) -> Result<Json<SendingHealth>, Problem> {
    let address = crate::domain::EmailAddress::parse(&address).map_err(|e| Problem::invalid_field("address", e.to_string()))?;
    let Some(pace) = app.services.sending_mailboxes.get(&address) else {
        return Err(Problem::not_found(format!("{address} is not a configured sending mailbox")));
    };
    let meter = crate::domain::pacing::mailbox_meter(&pace.address);
    app.services.store.commit(&Transition::markers(vec![MarkerChange::ResumeMailbox { meter }])).await?;
    tracing::info!(mailbox = %pace.address, "a person resumed the mailbox");
    Ok(Json(sending_health(&app, pace, app.services.clock.now()).await?))
}

async fn sending_health(
    app: &AppState,
    pace: &crate::domain::MailboxPace,
    now: crate::domain::Timestamp,
) -> Result<SendingHealth, Problem> {
    let store = &app.services.store;
    let day = pace.time_zone.day_of(now);
    let meter = crate::domain::pacing::mailbox_meter(&pace.address);
    let usage = store.meter_usage(&meter, day).await?;
    let lookup = app.services.mail_domains.sending_records(pace.address.domain());
    let dns = match tokio::time::timeout(std::time::Duration::from_secs(4), lookup).await {
        Ok(Ok(records)) => serde_json::to_value(records).unwrap_or_default(),
        Ok(Err(why)) => serde_json::json!({"domain": pace.address.domain(), "error": why}),
        Err(_) => serde_json::json!({"domain": pace.address.domain(), "error": "the DNS lookup took longer than 4 s"}),
    };
    let since_resume = store.mailbox_standing(&meter).await?;
    Ok(SendingHealth {
        address: pace.address.to_string(),
        display_name: pace.display_name.clone(),
        time_zone: pace.time_zone.to_string(),
        day,
        daily_cap: pace.daily_cap,
        sent_today: usage.sent,
        room_left: pace.daily_cap.saturating_sub(usage.sent),
        min_gap_seconds: pace.min_gap.num_seconds(),
        last_sent_at: usage.last_sent_at,
        next_send_at: usage.next_send_at.filter(|at| *at > now),
        dns,
        last_error: since_resume.last_error.clone(),
        since_resume,
    })
}
