use std::collections::HashMap;

use async_trait::async_trait;
use chrono::NaiveDate;

use crate::domain::MailboxCursor;

/// One message read from the team's mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMessage {
    /// `account/folder` it was read from.
    pub folder: String,
    /// Its IMAP UID in that folder (for a local Maildir, its position in the batch).
    pub uid: u32,
    /// The full RFC 5322 message.
    pub raw: Vec<u8>,
}

/// New messages of one folder, in UID order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderBatch {
    pub uid_validity: u32,
    pub messages: Vec<InboundMessage>,
}

/// What reading one folder gave: its batch, or why it could not be read this time.
#[derive(Debug)]
pub struct FolderRead {
    pub folder: String,
    pub result: anyhow::Result<FolderBatch>,
}

/// The mailboxes replies arrive in. Reading must not change what the team sees in its mail
/// client: nothing is marked read, moved or deleted on the server.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// The folders read, as `account/folder`.
    fn folders(&self) -> Vec<String>;
    /// The watched mailboxes' own addresses: mail from them is ours, never a lead's reply.
    fn own_addresses(&self) -> Vec<String>;
    /// Up to `limit` messages of each folder that come after its cursor. A folder without a
    /// cursor, or whose UIDVALIDITY changed, is read from `since` on.
    async fn read_new(&self, cursors: &HashMap<String, MailboxCursor>, since: NaiveDate, limit: usize) -> Vec<FolderRead>;
    /// The messages of `folder` up to `uid` were acted on. IMAP keeps that in the cursor alone;
    /// a local Maildir moves the files from `new/` to `cur/`.
    async fn acknowledge(&self, _folder: &str, _up_to_uid: u32) -> anyhow::Result<()> {
        Ok(())
    }
}
