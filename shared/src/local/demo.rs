//! `sales-agent demo`: a whole campaign over the sample leads shipped in `shared/samples`, run
//! through the real REST router, workers and scheduler, offline. Research reads sample company
//! sites served on loopback; emails land as `.eml` files in the outbox; one lead's reply is
//! dropped into the local inbox and matched. Running it again sends nothing twice.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use super::EmbeddedRuntime;
use crate::adapters::outbox::OutboxMailer;
use crate::config::{ResearchMode, Settings};
use crate::domain::{LeadStateKind, MarkerChange, Suppression, Transition};
use crate::ports::Clock;

pub const SAMPLE_AGENT: &str = include_str!("../../samples/agent.json");
pub const SAMPLE_LEADS: &str = include_str!("../../samples/leads.csv");
const SAMPLE_SITES: &[(&str, &str)] = &[
    ("lumenfreight.example", include_str!("../../samples/sites/lumenfreight.example.html")),
    ("northpeak.example", include_str!("../../samples/sites/northpeak.example.html")),
    ("tidewaterhealth.example", include_str!("../../samples/sites/tidewaterhealth.example.html")),
    ("brightline.example", include_str!("../../samples/sites/brightline.example.html")),
];
/// Starting the demo campaign is idempotent: a second run finds this key and starts nothing.
const DEMO_IDEMPOTENCY_KEY: &str = "demo-campaign-1";
/// The sample lead who answers the first email.
const REPLYING_LEAD: &str = "maya.chen@lumenfreight.example";
/// A former customer who asked not to be contacted again: the whole domain is suppressed.
const SUPPRESSED_DOMAIN: &str = "oldcustomer.example";

#[derive(Debug, Clone)]
pub struct DemoLead {
    pub email: String,
    pub state: LeadStateKind,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub execution_id: String,
    pub execution_state: String,
    pub started_now: bool,
    pub leads: Vec<DemoLead>,
    pub counts: BTreeMap<String, u64>,
    pub rejected_rows: Vec<String>,
    pub duplicate_rows: Vec<String>,
    pub emails_written_now: usize,
    pub outbox: PathBuf,
    pub outbox_total: usize,
}

/// Serves the sample company sites on a loopback port, so research runs for real offline.
async fn serve_sample_sites() -> anyhow::Result<(String, std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::extract::Path;
    use axum::response::{Html, IntoResponse};
    let app = Router::new().route(
        "/{domain}/",
        axum::routing::get(|Path(domain): Path<String>| async move {
            match SAMPLE_SITES.iter().find(|(d, _)| *d == domain) {
                Some((_, html)) => Html(*html).into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    let pattern = format!("http://{address}/{{domain}}/");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((pattern, address, task))
}

/// Calls the router in-process, exactly as an HTTP client would.
async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    content_type: &str,
    body: String,
    headers: &[(&str, &str)],
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = Request::builder().method(method).uri(uri).header("content-type", content_type);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router.clone().oneshot(request.body(Body::from(body))?).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).with_context(|| format!("{uri} answered with non-JSON"))?
    };
    Ok((status, json))
}

async fn get(router: &Router, uri: &str) -> anyhow::Result<Value> {
    let (status, json) = call(router, Method::GET, uri, "application/json", String::new(), &[]).await?;
    if !status.is_success() {
        bail!("GET {uri} answered {status}: {json}");
    }
    Ok(json)
}

async fn find_or_create_agent(router: &Router) -> anyhow::Result<String> {
    let name = serde_json::from_str::<Value>(SAMPLE_AGENT)?["name"].clone();
    let agents = get(router, "/api/v1/agents?limit=500").await?;
    if let Some(agent) = agents["items"].as_array().into_iter().flatten().find(|a| a["name"] == name) {
        return Ok(agent["id"].as_str().unwrap_or_default().to_string());
    }
    let (status, agent) = call(router, Method::POST, "/api/v1/agents", "application/json", SAMPLE_AGENT.into(), &[]).await?;
    if status != StatusCode::CREATED {
        bail!("creating the sample agent failed ({status}): {agent}");
    }
    Ok(agent["id"].as_str().unwrap_or_default().to_string())
}

/// Writes the sample lead's reply into the local inbox, answering the email they were sent.
fn deliver_sample_reply(inbox_dir: &std::path::Path, lead: &Value, clock: &dyn Clock) -> anyhow::Result<bool> {
    let Some(message_id) = lead["sent_messages"][0]["message_id"].as_str() else { return Ok(false) };
    let name = format!("{}.reply.eml", lead["id"].as_str().unwrap_or("lead"));
    if inbox_dir.join("new").join(&name).exists() || inbox_dir.join("cur").join(&name).exists() {
        return Ok(false);
    }
    let subject = lead["sent_messages"][0]["subject"].as_str().unwrap_or_default();
    let reply = format!(
        "From: Maya Chen <{REPLYING_LEAD}>\r\nTo: dana@northwind-analytics.example\r\nSubject: Re: {subject}\r\n\
         Date: {}\r\nMessage-ID: <reply-{}@lumenfreight.example>\r\nIn-Reply-To: <{message_id}>\r\nReferences: <{message_id}>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nHi Dana,\r\n\r\nGood timing, our forecast is a spreadsheet. Thursday at 10 works.\r\n\r\n\
         Maya\r\n\r\nOn Monday, Dana Reyes wrote:\r\n> Hi Maya,\r\n",
        clock.now().to_rfc2822(),
        lead["id"].as_str().unwrap_or_default()
    );
    std::fs::create_dir_all(inbox_dir.join("new"))?;
    std::fs::write(inbox_dir.join("new").join(name), reply)?;
    Ok(true)
}

/// Runs the demo campaign in `settings.data_dir` and reports where every lead ended.
pub async fn run(mut settings: Settings) -> anyhow::Result<DemoSummary> {
    let (pattern, sites_address, sites) = serve_sample_sites().await?;
    settings.research = ResearchMode::Web;
    // The demo stays offline: research reads only the sample sites on loopback.
    settings.search = crate::config::SearchMode::Off;
    settings.research_url_pattern = pattern;
    // Research reads public addresses only; the sample sites are the one exception.
    settings.research_exceptions = vec![sites_address];
    settings.research_timeout = Duration::from_secs(5);
    let runtime = EmbeddedRuntime::open(settings)?;
    runtime.queue.recover_in_flight().await?;
    let runner = runtime.runner();
    let router = runtime.router();
    let outbox = OutboxMailer::new(EmbeddedRuntime::outbox_dir(&runtime.settings));
    let emails_before = outbox.emails()?.len();

    let agent_id = find_or_create_agent(&router).await?;
    let suppression = Suppression {
        entry: SUPPRESSED_DOMAIN.into(),
        reason: "manual".into(),
        source: Some("demo".into()),
        created_at: runtime.clock.now(),
    };
    runtime.store.commit(&Transition::markers(vec![MarkerChange::Suppress(suppression)])).await?;
    let (status, started) = call(
        &router,
        Method::POST,
        &format!("/api/v1/agents/{agent_id}/executions?skip_invalid=true"),
        "text/csv",
        SAMPLE_LEADS.into(),
        &[("idempotency-key", DEMO_IDEMPOTENCY_KEY)],
    )
    .await?;
    if !status.is_success() {
        bail!("starting the demo campaign failed ({status}): {started}");
    }
    let execution_id = started["execution"]["id"].as_str().unwrap_or_default().to_string();
    let rows = |key: &str, render: fn(&Value) -> String| started[key].as_array().into_iter().flatten().map(render).collect::<Vec<_>>();

    runner.drain().await;
    let leads_uri = format!("/api/v1/executions/{execution_id}/leads?limit=500");
    let leads = get(&router, &leads_uri).await?;
    let inbox_dir = EmbeddedRuntime::inbox_dir(&runtime.settings);
    if let Some(lead) =
        leads["items"].as_array().into_iter().flatten().find(|l| l["contact"]["email"] == REPLYING_LEAD && l["state"] == "sent")
    {
        deliver_sample_reply(&inbox_dir, lead, runtime.clock.as_ref())?;
    }
    runner.run_scheduled().await;
    runner.drain().await;
    sites.abort();

    let execution = get(&router, &format!("/api/v1/executions/{execution_id}")).await?;
    let leads = get(&router, &leads_uri).await?;
    let summary_leads = leads["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|lead| {
            let state = LeadStateKind::parse(lead["state"].as_str().unwrap_or_default()).unwrap_or(LeadStateKind::Failed);
            let detail = match state {
                LeadStateKind::Sent => {
                    format!("step {} sent; next email due {}", lead["step"], lead["next_step_due_at"].as_str().unwrap_or("-"))
                }
                LeadStateKind::Replied => format!(
                    "replied: \"{}\"",
                    lead["inbound"][0]["text"].as_str().unwrap_or_default().lines().take(3).collect::<Vec<_>>().join(" ").trim()
                ),
                _ => lead["reason"].as_str().map(|r| r.replace('_', " ")).unwrap_or_default(),
            };
            DemoLead { email: lead["contact"]["email"].as_str().unwrap_or_default().to_string(), state, detail }
        })
        .collect();
    let emails = outbox.emails()?;
    Ok(DemoSummary {
        execution_id,
        execution_state: execution["state"].as_str().unwrap_or_default().to_string(),
        started_now: !started["replayed"].as_bool().unwrap_or(false),
        leads: summary_leads,
        counts: serde_json::from_value(execution["lead_counts"].clone()).unwrap_or_default(),
        rejected_rows: rows("rejected", |r| {
            format!("{}: {}", r["field"].as_str().unwrap_or_default(), r["message"].as_str().unwrap_or_default())
        }),
        duplicate_rows: rows("duplicates", |r| {
            format!("{}: {} appears earlier", r["row"].as_str().unwrap_or_default(), r["email"].as_str().unwrap_or_default())
        }),
        emails_written_now: emails.len().saturating_sub(emails_before),
        outbox: outbox.dir().to_path_buf(),
        outbox_total: emails.len(),
    })
}

impl DemoSummary {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Demo campaign {} is {}.", self.execution_id, self.execution_state);
        if !self.started_now {
            let _ = writeln!(out, "It was started by an earlier run; nothing was sent twice.");
        }
        for row in self.rejected_rows.iter().chain(&self.duplicate_rows) {
            let _ = writeln!(out, "  not imported: {row}");
        }
        let _ = writeln!(out, "\nLeads:");
        for lead in &self.leads {
            let _ = writeln!(out, "  {:<36} {:<13} {}", lead.email, lead.state.as_str(), lead.detail);
        }
        let counts: Vec<String> = self.counts.iter().map(|(state, n)| format!("{state} {n}")).collect();
        let _ = writeln!(out, "\nLeads per state: {}", counts.join(", "));
        let _ = writeln!(
            out,
            "Emails written in this run: {} ({} in the outbox in all) to {}",
            self.emails_written_now,
            self.outbox_total,
            self.outbox.display()
        );
        let _ = writeln!(out, "\nRun `cargo run --bin sales-agent -- serve` to drive campaigns through the REST API.");
        out
    }
}
