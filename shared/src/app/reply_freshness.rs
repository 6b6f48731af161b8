//! No follow-up without a fresh read: a lead who answered must never get the next step because
//! their answer sat unread behind a revoked password or a broken setting. Before the sweep sends
//! an agent's due follow-ups, the folders its replies arrive in must have been read to the end
//! within `max_age`; otherwise the follow-ups wait, and the execution says why.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Duration;

use crate::domain::{Agent, MailboxCursor, Timestamp};
use crate::ports::{Inbox, Store, StoreError, WatchedFolder};

/// Whether and how replies are read.
#[derive(Clone)]
pub enum ReplyReading {
    /// No mailbox is configured: nothing to wait for.
    Off,
    On(Arc<dyn Inbox>),
    /// The mailboxes are configured but their settings could not be loaded: every run reports
    /// it, and follow-ups wait.
    Broken(String),
}

impl ReplyReading {
    pub fn inbox(&self) -> Option<&Arc<dyn Inbox>> {
        match self {
            Self::On(inbox) => Some(inbox),
            _ => None,
        }
    }
}

/// What the sweep checks before a follow-up leaves.
#[derive(Clone)]
pub struct FreshnessRule {
    pub reading: ReplyReading,
    /// How old the last complete read of a folder may be.
    pub max_age: Duration,
}

/// The rule against the folders' cursors as they were at the start of a sweep.
pub(crate) struct FreshnessCheck {
    rule: FreshnessRule,
    watched: Vec<WatchedFolder>,
    cursors: HashMap<String, MailboxCursor>,
}

impl FreshnessRule {
    pub(crate) async fn check(&self, store: &dyn Store) -> Result<FreshnessCheck, StoreError> {
        let cursors = match self.reading {
            ReplyReading::On(_) => store.list_mailbox_cursors().await?.into_iter().map(|c| (c.folder.clone(), c)).collect(),
            _ => HashMap::new(),
        };
        let watched = self.reading.inbox().map(|inbox| inbox.watched_folders()).unwrap_or_default();
        Ok(FreshnessCheck { rule: self.clone(), watched, cursors })
    }

    /// How long a waiting follow-up waits before it is looked at again.
    pub(crate) fn recheck_after(&self) -> Duration {
        (self.max_age / 2).clamp(Duration::minutes(1), Duration::minutes(5))
    }
}

impl FreshnessCheck {
    /// Why `agent`'s follow-ups must wait at `now`, or `None` when its mailboxes were read
    /// recently enough.
    pub(crate) fn why_waiting(&self, agent: &Agent, now: Timestamp) -> Option<String> {
        match &self.rule.reading {
            ReplyReading::Off => None,
            ReplyReading::Broken(why) => Some(format!("replies cannot be read: {why}")),
            ReplyReading::On(_) => {
                let stale: Vec<String> = self
                    .folders_of(agent)
                    .filter(|folder| !self.read_recently(&folder.folder, now))
                    .map(|folder| self.describe(&folder.folder))
                    .collect();
                (!stale.is_empty()).then(|| {
                    format!(
                        "its mailboxes were not read in the last {} minutes, so an answer may be waiting unread: {}",
                        self.rule.max_age.num_minutes().max(1),
                        stale.join("; ")
                    )
                })
            }
        }
    }

    /// The folders `agent`'s replies arrive in: those of the mailboxes it sends from or replies
    /// to, or every folder when no watched mailbox is its own.
    fn folders_of<'a>(&'a self, agent: &Agent) -> impl Iterator<Item = &'a WatchedFolder> {
        let ours: Vec<String> = std::iter::once(&agent.sender.email)
            .chain(agent.sender.reply_to.as_ref())
            .chain(&agent.sending.mailboxes)
            .map(|address| address.as_str().to_ascii_lowercase())
            .collect();
        let own_mailbox = self.watched.iter().any(|w| w.addresses.iter().any(|a| ours.contains(a)));
        self.watched.iter().filter(move |w| !own_mailbox || w.addresses.iter().any(|a| ours.contains(a)))
    }

    fn read_recently(&self, folder: &str, now: Timestamp) -> bool {
        let read_at = self.cursors.get(folder).and_then(|c| c.last_read_at);
        read_at.is_some_and(|at| now - at <= self.rule.max_age)
    }

    fn describe(&self, folder: &str) -> String {
        match self.cursors.get(folder) {
            None => format!("{folder} has never been read"),
            Some(cursor) => {
                let last = cursor.last_read_at.map_or("never".to_string(), |at| at.to_rfc3339());
                match &cursor.last_error {
                    Some(error) => format!("{folder} (last read {last}; {error})"),
                    None => format!("{folder} (last read {last})"),
                }
            }
        }
    }
}
