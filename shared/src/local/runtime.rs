//! Builds every component of the embedded default from the settings, once.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use secrecy::SecretString;

use crate::adapters::embedded::{EmbeddedDb, EmbeddedQueue, EmbeddedStore, QueueSettings};
use crate::adapters::local_inbox::MaildirInbox;
use crate::adapters::outbox::OutboxMailer;
use crate::adapters::site_research::{NoResearch, SiteResearch, SiteResearchLimits};
use crate::adapters::template_drafter::TemplateDrafter;
use crate::adapters::unconfigured::NoLeadSources;
use crate::api::{self, ApiLimits, ApiServices};
use crate::config::{ResearchMode, Settings};
use crate::domain::unsubscribe::UnsubscribeSigner;
use crate::ports::{Clock, Drafter, Inbox, LeadSource, Mailer, Store, SystemClock, WebResearch};
use crate::steps::follow_ups::FollowUpScheduler;
use crate::steps::{DraftStep, ReplyProcessor, ResearchStep, ScheduledTasks, SendStep, StepPorts, StepWorker, UnsubscribeSettings};

/// Every port of the local mode. Fields are public so a test can swap one adapter (a failing
/// mailer, a store that crashes) and keep the rest real.
#[derive(Clone)]
pub struct EmbeddedRuntime {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub queue: Arc<EmbeddedQueue>,
    pub clock: Arc<dyn Clock>,
    pub research: Arc<dyn WebResearch>,
    pub drafter: Arc<dyn Drafter>,
    pub mailer: Arc<dyn Mailer>,
    pub inbox: Arc<dyn Inbox>,
    pub lead_sources: Arc<dyn LeadSource>,
    pub signer: UnsubscribeSigner,
}

impl EmbeddedRuntime {
    pub fn database_path(settings: &Settings) -> PathBuf {
        settings.data_dir.join("sales-agent.db")
    }

    pub fn outbox_dir(settings: &Settings) -> PathBuf {
        settings.data_dir.join("outbox")
    }

    pub fn inbox_dir(settings: &Settings) -> PathBuf {
        settings.data_dir.join("inbox")
    }

    pub fn open(settings: Settings) -> anyhow::Result<Self> {
        Self::open_with_clock(settings, Arc::new(SystemClock))
    }

    pub fn open_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let db_path = Self::database_path(&settings);
        let db = EmbeddedDb::open(&db_path).with_context(|| format!("opening the database {}", db_path.display()))?;
        let queue = Arc::new(EmbeddedQueue::new(db.clone(), QueueSettings::default()));
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::new(db));
        let research: Arc<dyn WebResearch> = match settings.research {
            ResearchMode::Off => Arc::new(NoResearch { clock: clock.clone() }),
            ResearchMode::Web => Arc::new(SiteResearch::new(
                settings.research_url_pattern.clone(),
                SiteResearchLimits { timeout: settings.research_timeout, ..Default::default() },
                clock.clone(),
            )?),
        };
        let signer = UnsubscribeSigner::new(unsubscribe_secret(&settings)?);
        Ok(Self {
            drafter: Arc::new(TemplateDrafter::new(clock.clone())),
            mailer: Arc::new(OutboxMailer::new(Self::outbox_dir(&settings))),
            inbox: Arc::new(MaildirInbox::new(Self::inbox_dir(&settings))),
            lead_sources: Arc::new(NoLeadSources),
            research,
            store,
            queue,
            clock,
            signer,
            settings,
        })
    }

    pub fn step_ports(&self) -> StepPorts {
        StepPorts { store: self.store.clone(), queue: self.queue.clone(), clock: self.clock.clone() }
    }

    pub fn router(&self) -> Router {
        api::router(ApiServices {
            store: self.store.clone(),
            queue: self.queue.clone(),
            clock: self.clock.clone(),
            lead_sources: self.lead_sources.clone(),
            unsubscribe: self.signer.clone(),
            limits: ApiLimits {
                max_body_bytes: self.settings.max_body_bytes,
                max_leads_per_execution: self.settings.max_leads_per_execution,
            },
        })
    }

    pub fn research_step(&self) -> ResearchStep {
        ResearchStep::new(self.step_ports(), self.research.clone())
    }

    pub fn draft_step(&self) -> DraftStep {
        DraftStep::new(self.step_ports(), self.drafter.clone())
    }

    pub fn send_step(&self) -> SendStep {
        let unsubscribe = UnsubscribeSettings { signer: self.signer.clone(), public_base_url: self.settings.public_base_url.clone() };
        SendStep::new(self.step_ports(), self.mailer.clone(), unsubscribe)
    }

    pub fn workers(&self) -> Vec<Arc<dyn StepWorker>> {
        vec![Arc::new(self.research_step()), Arc::new(self.draft_step()), Arc::new(self.send_step())]
    }

    pub fn scheduled_tasks(&self) -> ScheduledTasks {
        ScheduledTasks {
            replies: Some(ReplyProcessor::new(self.store.clone(), self.inbox.clone(), self.clock.clone())),
            follow_ups: FollowUpScheduler::new(self.step_ports()),
            reply_batch: 200,
            follow_up_batch: 500,
        }
    }
}

/// The configured key, or one kept in the data folder so that links stay valid across restarts.
fn unsubscribe_secret(settings: &Settings) -> anyhow::Result<SecretString> {
    if let Some(secret) = &settings.unsubscribe_secret {
        return Ok(secret.clone());
    }
    let path = settings.data_dir.join("unsubscribe.key");
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => Ok(SecretString::from(key.trim().to_string())),
        _ => {
            let key = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            std::fs::create_dir_all(&settings.data_dir)?;
            std::fs::write(&path, &key).with_context(|| format!("writing {}", path.display()))?;
            Ok(SecretString::from(key))
        }
    }
}
