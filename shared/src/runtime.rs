//! Every component of a running system, built once at start-up from the settings: the
//! embedded adapters locally, the AWS adapters when deployed. Lambda functions, the local server
//! and the tests all wire from here.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;

use crate::adapters::apollo::ApolloLeadSource;
use crate::adapters::aws::{
    self, AgentSecrets, DynamoStore, QueueUrls, SecretReloadingDrafter, SecretUnsubscribeKeys, SesMailer, SqsQueue,
};
use crate::adapters::dns::DnsMailDomains;
use crate::adapters::imap_inbox::{ImapInbox, ImapLimits, MailboxSettings};
use crate::adapters::llm_drafter::LlmDrafter;
use crate::adapters::search::{DuckDuckGo, Serper};
use crate::adapters::site_research::{NetworkAccess, NoResearch, SiteResearch, SiteResearchLimits};
use crate::adapters::smtp_mailer::{MailboxMailers, SmtpLimits};
use crate::adapters::template_drafter::TemplateDrafter;
use crate::adapters::unconfigured::{NoLeadSources, UnconfiguredQueue};
use crate::api::{self, ApiLimits, ApiServices};
use crate::app::{
    DraftStep, FeedbackConsumer, FreshnessRule, ReplyProcessor, ReplyReading, ResearchStep, ScheduledTasks, SendStep, SendingMailboxes,
    StepPorts, Sweep, UnsubscribeSettings,
};
use crate::config::{Backend, DnsChecks, ResearchMode, SearchMode, Settings};
use crate::local::EmbeddedRuntime;
use crate::ports::{
    Clock, Drafter, Inbox, LeadSource, MailDomains, Mailer, Queue, SearchProvider, Store, SystemClock, UncheckedDomains, UnsubscribeKeys,
    WebResearch,
};

/// The ports of one running system. Fields are public so a test can swap one adapter (a failing
/// mailer, say) and keep the rest real.
#[derive(Clone)]
pub struct Runtime {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    pub research: Arc<dyn WebResearch>,
    pub drafter: Arc<dyn Drafter>,
    pub mailer: Arc<dyn Mailer>,
    pub inbox: ReplyReading,
    pub lead_sources: Arc<dyn LeadSource>,
    /// Signs unsubscribe links; while it has no key nothing is sent, since every email must
    /// carry one.
    pub unsubscribe_keys: Arc<dyn UnsubscribeKeys>,
    /// Whether recipients' domains take mail; what sending domains publish.
    pub mail_domains: Arc<dyn MailDomains>,
}

/// The DNS checks the settings ask for.
pub fn mail_domains_for(settings: &Settings) -> anyhow::Result<Arc<dyn MailDomains>> {
    Ok(match settings.dns_checks() {
        DnsChecks::Off => Arc::new(UncheckedDomains),
        DnsChecks::System => Arc::new(DnsMailDomains::system().context("the system's DNS resolver")?),
        DnsChecks::Servers(servers) => Arc::new(DnsMailDomains::servers(&servers)),
    })
}

/// The LLM drafter when a model is configured, else the agent's templates.
pub fn drafter_for(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<dyn Drafter>> {
    Ok(match &settings.llm {
        Some(llm) => {
            tracing::info!(model = %llm.model, base_url = %llm.base_url, "drafting with an LLM");
            Arc::new(LlmDrafter::new(llm.clone(), clock)?)
        }
        None => Arc::new(TemplateDrafter::new(clock)),
    })
}

/// Apollo when it is configured; otherwise lead-source starts are refused with a clear 4xx.
pub fn lead_sources_for(settings: &Settings) -> anyhow::Result<Arc<dyn LeadSource>> {
    Ok(match &settings.apollo {
        Some(apollo) => Arc::new(ApolloLeadSource::new(apollo.clone())?),
        None => Arc::new(NoLeadSources),
    })
}

/// The IMAP poller over the configured mailboxes, if there are any.
pub fn inbox_for(mailboxes: &[MailboxSettings]) -> anyhow::Result<Option<Arc<dyn Inbox>>> {
    if mailboxes.is_empty() {
        return Ok(None);
    }
    Ok(Some(Arc::new(ImapInbox::new(mailboxes.to_vec(), ImapLimits::default()).context("the mailboxes")?)))
}

/// The team's SMTP mailboxes in front of the deployment's default mailer: an email whose From is
/// a configured sending mailbox leaves through it.
pub fn mailer_for(settings: &Settings, default: Arc<dyn Mailer>) -> anyhow::Result<Arc<dyn Mailer>> {
    if !settings.mailboxes.iter().any(|m| m.smtp.is_some()) {
        return Ok(default);
    }
    Ok(Arc::new(MailboxMailers::new(&settings.mailboxes, default, SmtpLimits::default())))
}

/// The research adapter the settings ask for.
pub fn research_for(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<dyn WebResearch>> {
    Ok(match settings.research {
        ResearchMode::Off => Arc::new(NoResearch { clock }),
        ResearchMode::Web => {
            let name_servers = match settings.dns_checks() {
                DnsChecks::Servers(servers) => Some(servers),
                DnsChecks::Off | DnsChecks::System => None,
            };
            let access = NetworkAccess { exceptions: settings.research_exceptions.clone(), name_servers };
            let site = SiteResearch::new(
                settings.research_url_pattern.clone(),
                SiteResearchLimits { timeout: settings.research_timeout, ..Default::default() },
                access,
                clock,
            )?;
            // The search provider is a service the deployment configures, not a page a lead
            // points at: it has its own client.
            let http = reqwest::Client::builder().timeout(settings.research_timeout).build()?;
            let search: Option<Arc<dyn SearchProvider>> = match &settings.search {
                SearchMode::Off => None,
                SearchMode::DuckDuckGo { base_url } => Some(Arc::new(DuckDuckGo { http, base_url: base_url.clone() })),
                SearchMode::Serper { base_url, api_key } => {
                    Some(Arc::new(Serper { http, base_url: base_url.clone(), api_key: api_key.clone() }))
                }
            };
            Arc::new(site.with_search(search))
        }
    })
}

impl Runtime {
    /// Builds the runtime for the configured backend.
    pub async fn connect(settings: Settings) -> anyhow::Result<Self> {
        match settings.backend {
            Backend::Embedded => Ok(EmbeddedRuntime::open(settings)?.runtime),
            Backend::Aws => {
                let config = aws::load_config().await;
                Self::on_aws(settings, &config).await
            }
        }
    }

    /// The deployed system: DynamoDB, SQS, SES, and the secret read once.
    pub async fn on_aws(settings: Settings, config: &aws_config::SdkConfig) -> anyhow::Result<Self> {
        let resources = settings.aws.clone();
        let table = resources.table.clone().context("SALES_AGENT_TABLE is required for the aws backend")?;
        let queue: Arc<dyn Queue> = match (&resources.research_queue_url, &resources.draft_queue_url, &resources.send_queue_url) {
            (Some(research), Some(draft), Some(send)) => Arc::new(SqsQueue::new(
                aws_sdk_sqs::Client::new(config),
                QueueUrls { research: research.clone(), draft: draft.clone(), send: send.clone() },
            )),
            _ => {
                let missing = "SALES_AGENT_RESEARCH_QUEUE_URL, SALES_AGENT_DRAFT_QUEUE_URL or SALES_AGENT_SEND_QUEUE_URL".to_string();
                tracing::warn!("{missing} is not set: nothing can be enqueued");
                Arc::new(UnconfiguredQueue { missing })
            }
        };
        let secrets_client = aws_sdk_secretsmanager::Client::new(config);
        let mut secrets_error = None;
        let secrets = match &resources.secret_id {
            Some(secret_id) => AgentSecrets::load(&secrets_client, secret_id).await.unwrap_or_else(|error| {
                tracing::error!(error = %format!("{error:#}"), "the secret could not be read; every feature that needs a key is off");
                secrets_error = Some(format!("{error:#}"));
                AgentSecrets::default()
            }),
            None => {
                tracing::warn!("SALES_AGENT_SECRET_ARN is not set; every feature that needs a key is off");
                AgentSecrets::default()
            }
        };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut settings = settings;
        // The key comes from the secret; model, base URL and limits from the environment.
        if let (crate::config::SearchMode::DuckDuckGo { .. }, Some(key)) = (&settings.search, &secrets.search_api_key) {
            settings.search = crate::config::search_from_env(Some(key.clone()))?;
        }
        if settings.mailboxes.is_empty() {
            settings.mailboxes = secrets.mailboxes.clone();
        }
        if settings.apollo.is_none() {
            settings.apollo = crate::config::apollo_from_env(
                secrets.apollo_api_key.clone().filter(|k| !secrecy::ExposeSecret::expose_secret(k).trim().is_empty()),
            );
        }
        let key_from_secret = settings.llm.is_none();
        if key_from_secret {
            settings.llm = crate::config::llm_from_env(
                secrets.openai_api_key.clone().filter(|k| !secrecy::ExposeSecret::expose_secret(k).trim().is_empty()),
            )?;
        }
        // A key from the secret is read again after the model refuses it, so a fixed key works on
        // resume without a cold start.
        let drafter: Arc<dyn Drafter> = match (key_from_secret, &settings.llm, &resources.secret_id) {
            (true, Some(llm), Some(secret_id)) => {
                Arc::new(SecretReloadingDrafter::new(secrets_client.clone(), secret_id.clone(), llm.clone(), clock.clone())?)
            }
            _ => drafter_for(&settings, clock.clone())?,
        };
        Ok(Self {
            store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(config), table)),
            queue,
            mailer: mailer_for(
                &settings,
                Arc::new(SesMailer::new(
                    config,
                    resources.ses_configuration_set.clone(),
                    resources.send_concurrency,
                    resources.ses_max_send_rate,
                )),
            )?,
            research: research_for(&settings, clock.clone())?,
            drafter,
            // A mailbox the secret describes badly stops reply reading (and with it follow-ups),
            // not the API; every scheduled run reports it.
            inbox: match (&secrets_error, inbox_for(&settings.mailboxes)) {
                (Some(why), Ok(None)) => ReplyReading::Broken(format!("the secret could not be read: {why}")),
                (_, Ok(Some(inbox))) => ReplyReading::On(inbox),
                (None, Ok(None)) => ReplyReading::Off,
                (_, Err(error)) => {
                    tracing::error!(error = %format!("{error:#}"), "replies are not read");
                    ReplyReading::Broken(format!("{error:#}"))
                }
            },
            lead_sources: lead_sources_for(&settings)?,
            unsubscribe_keys: Arc::new(SecretUnsubscribeKeys::new(secrets_client, resources.secret_id.clone(), secrets.unsubscribe_key())),
            mail_domains: mail_domains_for(&settings)?,
            clock,
            settings,
        })
    }

    pub fn step_ports(&self) -> StepPorts {
        StepPorts { store: self.store.clone(), queue: self.queue.clone(), clock: self.clock.clone() }
    }

    /// The REST router as API Gateway serves it (and as tests call it in-process).
    pub fn router(&self) -> Router {
        self.router_guarding_hosts(false)
    }

    /// The REST router as the local server serves it: without API keys it answers only
    /// requests addressed to a loopback name (DNS rebinding).
    pub fn local_server_router(&self) -> Router {
        self.router_guarding_hosts(!self.settings.auth_required)
    }

    fn router_guarding_hosts(&self, loopback_hosts_only: bool) -> Router {
        api::router(ApiServices {
            store: self.store.clone(),
            queue: self.queue.clone(),
            clock: self.clock.clone(),
            lead_sources: self.lead_sources.clone(),
            unsubscribe: self.unsubscribe_keys.clone(),
            sending_mailboxes: Arc::new(self.sending_mailboxes()),
            mail_domains: self.mail_domains.clone(),
            limits: ApiLimits {
                max_body_bytes: self.settings.max_body_bytes,
                max_leads_per_execution: self.settings.max_leads_per_execution,
            },
            auth_required: self.settings.auth_required,
            loopback_hosts_only,
        })
    }

    pub fn research_step(&self) -> ResearchStep {
        ResearchStep::new(self.step_ports(), self.research.clone(), self.mail_domains.clone())
    }

    pub fn draft_step(&self) -> DraftStep {
        DraftStep::new(self.step_ports(), self.drafter.clone())
    }

    pub fn send_step(&self) -> SendStep {
        let unsubscribe =
            UnsubscribeSettings { keys: self.unsubscribe_keys.clone(), public_base_url: self.settings.public_base_url.clone() };
        SendStep::new(self.step_ports(), self.mailer.clone(), unsubscribe, Arc::new(self.sending_mailboxes()), self.freshness_rule())
    }

    /// What must hold before a follow-up leaves: the agent's mailboxes were read recently.
    pub fn freshness_rule(&self) -> FreshnessRule {
        FreshnessRule {
            reading: if self.settings.reply_freshness.is_zero() { ReplyReading::Off } else { self.inbox.clone() },
            max_age: chrono::Duration::from_std(self.settings.reply_freshness).unwrap_or(chrono::Duration::MAX),
        }
    }

    /// The configured mailboxes that send, with their pace.
    pub fn sending_mailboxes(&self) -> SendingMailboxes {
        SendingMailboxes::new(self.settings.mailboxes.iter().filter_map(|m| m.pace()))
    }

    pub fn feedback_consumer(&self) -> FeedbackConsumer {
        FeedbackConsumer::new(self.step_ports())
    }

    pub fn scheduled_tasks(&self) -> ScheduledTasks {
        ScheduledTasks {
            replies: match &self.inbox {
                ReplyReading::On(inbox) => {
                    Ok(Some(ReplyProcessor::new(self.step_ports(), inbox.clone(), self.drafter.clone(), self.settings.reply_lookback_days)))
                }
                ReplyReading::Off => Ok(None),
                ReplyReading::Broken(why) => Err(why.clone()),
            },
            sweep: Sweep::new(self.step_ports(), self.freshness_rule()),
            reply_bounds: self.settings.reply_bounds,
            sweep_batch: 500,
        }
    }
}
