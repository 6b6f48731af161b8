//! A mailbox on disk in Maildir layout: messages arrive in `new/` and move to `cur/` once
//! processed. It lets a local campaign receive replies (drop an `.eml` into `new/`) without a
//! mail server.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::ports::{InboundMessage, Inbox};

pub struct MaildirInbox {
    root: PathBuf,
}

impl MaildirInbox {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn new_dir(&self) -> PathBuf {
        self.root.join("new")
    }
}

#[async_trait]
impl Inbox for MaildirInbox {
    async fn fetch_new(&self, limit: usize) -> anyhow::Result<Vec<InboundMessage>> {
        let dir = self.new_dir();
        let mut names = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry?;
                    if entry.file_type()?.is_file() {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
        names.sort();
        names.truncate(limit);
        let mut messages = Vec::with_capacity(names.len());
        for name in names {
            let raw = tokio::fs::read(dir.join(&name)).await?;
            messages.push(InboundMessage { mailbox: self.root.display().to_string(), key: name, raw });
        }
        Ok(messages)
    }

    async fn acknowledge(&self, messages: &[InboundMessage]) -> anyhow::Result<()> {
        let cur = self.root.join("cur");
        tokio::fs::create_dir_all(&cur).await?;
        for message in messages {
            tokio::fs::rename(self.new_dir().join(&message.key), cur.join(&message.key)).await?;
        }
        Ok(())
    }
}
