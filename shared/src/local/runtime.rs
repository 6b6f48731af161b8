//! The embedded default: every port over one data folder.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use secrecy::SecretString;

use crate::adapters::embedded::{EmbeddedDb, EmbeddedQueue, EmbeddedStore, QueueSettings};
use crate::adapters::local_inbox::MaildirInbox;
use crate::adapters::outbox::OutboxMailer;
use crate::app::{ReplyReading, StepWorker};
use crate::config::Settings;
use crate::domain::unsubscribe::UnsubscribeSigner;
use crate::ports::{Clock, FixedUnsubscribeKey, Store, SystemClock};
use crate::runtime::{Runtime, drafter_for, inbox_for, lead_sources_for, mail_domains_for, mailer_for, research_for};

/// The runtime of the local mode. It keeps the embedded queue's concrete type, which the local
/// runner receives from, and otherwise is a `Runtime` (it dereferences to one).
#[derive(Clone)]
pub struct EmbeddedRuntime {
    pub runtime: Runtime,
    pub queue: Arc<EmbeddedQueue>,
}

impl std::ops::Deref for EmbeddedRuntime {
    type Target = Runtime;
    fn deref(&self) -> &Runtime {
        &self.runtime
    }
}

impl std::ops::DerefMut for EmbeddedRuntime {
    fn deref_mut(&mut self) -> &mut Runtime {
        &mut self.runtime
    }
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
        let queue_settings = QueueSettings { max_receive_count: settings.max_receive_count, ..QueueSettings::default() };
        let queue = Arc::new(EmbeddedQueue::new(db.clone(), queue_settings));
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::new(db));
        let signer = UnsubscribeSigner::new(unsubscribe_secret(&settings)?);
        let runtime = Runtime {
            research: research_for(&settings, clock.clone())?,
            drafter: drafter_for(&settings, clock.clone())?,
            mailer: mailer_for(&settings, Arc::new(OutboxMailer::new(Self::outbox_dir(&settings))))?,
            // The team's IMAP mailboxes when configured, else a Maildir folder beside the data.
            inbox: ReplyReading::On(
                inbox_for(&settings.mailboxes)?.unwrap_or_else(|| Arc::new(MaildirInbox::new(Self::inbox_dir(&settings)))),
            ),
            lead_sources: lead_sources_for(&settings)?,
            unsubscribe_keys: Arc::new(FixedUnsubscribeKey(Some(signer))),
            mail_domains: mail_domains_for(&settings)?,
            queue: queue.clone(),
            store,
            clock,
            settings,
        };
        Ok(Self { runtime, queue })
    }

    pub fn workers(&self) -> Vec<Arc<dyn StepWorker>> {
        vec![Arc::new(self.research_step()), Arc::new(self.draft_step()), Arc::new(self.send_step())]
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
