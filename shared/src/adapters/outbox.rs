//! A mailer that writes each email as an RFC 5322 `.eml` file into a local outbox folder.
//! The file is named after the Message-ID, so writing the same email twice yields one file.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::domain::outreach_email::OutreachEmail;
use crate::ports::{MailError, Mailer, SendReceipt};

#[derive(Clone, Debug)]
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn file_name_for(message_id: &str) -> String {
        let safe: String = message_id.chars().map(|c| if c.is_ascii_alphanumeric() || "-._@".contains(c) { c } else { '_' }).collect();
        format!("{safe}.eml")
    }

    /// The `.eml` files in the outbox, sorted by name.
    pub fn emails(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        files.sort();
        Ok(files)
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &OutreachEmail) -> Result<SendReceipt, MailError> {
        let name = Self::file_name_for(&email.message_id);
        let path = self.dir.join(&name);
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| MailError::Retryable(format!("cannot create the outbox {}: {e}", self.dir.display())))?;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(SendReceipt { provider_message_id: name, delivered_message_id: None });
        }
        // Write beside the target and rename, so a crash never leaves half an email behind.
        let partial = self.dir.join(format!(".{name}.partial"));
        tokio::fs::write(&partial, &email.raw)
            .await
            .map_err(|e| MailError::Retryable(format!("cannot write {}: {e}", partial.display())))?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| MailError::Ambiguous(format!("cannot move the email into the outbox: {e}")))?;
        Ok(SendReceipt { provider_message_id: name, delivered_message_id: None })
    }
}
