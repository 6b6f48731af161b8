//! A mailbox on disk in Maildir layout: messages arrive in `new/` and move to `cur/` once
//! processed. It lets a local campaign receive replies (drop an `.eml` into `new/`) without a
//! mail server. Progress is the files' place, so the store's cursor is only informational here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::NaiveDate;

use crate::domain::MailboxCursor;
use crate::ports::{FolderBatch, FolderRead, InboundMessage, Inbox, ReadBounds};
use tokio::io::AsyncReadExt;

pub const MAILDIR_FOLDER: &str = "local/INBOX";

pub struct MaildirInbox {
    root: PathBuf,
    /// The file names of the last batch, by their position (the batch's UIDs).
    last_batch: Mutex<Vec<String>>,
}

impl MaildirInbox {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), last_batch: Mutex::new(Vec::new()) }
    }

    pub fn new_dir(&self) -> PathBuf {
        self.root.join("new")
    }

    async fn read_batch(&self, bounds: ReadBounds) -> anyhow::Result<FolderBatch> {
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
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FolderBatch::default()),
            Err(e) => return Err(e.into()),
        }
        names.sort();
        let mut batch = FolderBatch { more_waiting: names.len() > bounds.max_messages, ..FolderBatch::default() };
        names.truncate(bounds.max_messages);
        for (index, name) in names.iter().enumerate() {
            let file = tokio::fs::File::open(dir.join(name)).await?;
            let size = file.metadata().await?.len();
            let take = size.min(bounds.max_message_bytes as u64);
            if !batch.messages.is_empty() && batch.bytes + take > bounds.max_batch_bytes as u64 {
                batch.more_waiting = true;
                break;
            }
            let mut raw = Vec::with_capacity(take as usize);
            file.take(take).read_to_end(&mut raw).await?;
            batch.bytes += raw.len() as u64;
            batch.cut_short += u32::from(size > take);
            batch.messages.push(InboundMessage { folder: MAILDIR_FOLDER.into(), uid: index as u32 + 1, raw });
        }
        names.truncate(batch.messages.len());
        *self.last_batch.lock().unwrap_or_else(|e| e.into_inner()) = names;
        Ok(batch)
    }
}

#[async_trait]
impl Inbox for MaildirInbox {
    fn folders(&self) -> Vec<String> {
        vec![MAILDIR_FOLDER.into()]
    }

    fn own_addresses(&self) -> Vec<String> {
        Vec::new()
    }

    async fn read_new(&self, _cursors: &HashMap<String, MailboxCursor>, _since: NaiveDate, bounds: ReadBounds) -> Vec<FolderRead> {
        vec![FolderRead { folder: MAILDIR_FOLDER.into(), result: self.read_batch(bounds).await }]
    }

    async fn acknowledge(&self, _folder: &str, up_to_uid: u32) -> anyhow::Result<()> {
        let names: Vec<String> =
            self.last_batch.lock().unwrap_or_else(|e| e.into_inner()).iter().take(up_to_uid as usize).cloned().collect();
        let cur = self.root.join("cur");
        tokio::fs::create_dir_all(&cur).await?;
        for name in names {
            tokio::fs::rename(self.new_dir().join(&name), cur.join(&name)).await?;
        }
        Ok(())
    }
}
