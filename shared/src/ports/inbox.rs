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
    /// Bytes fetched for the batch.
    pub bytes: u64,
    /// Messages larger than [`ReadBounds::max_message_bytes`], of which only the start (the
    /// headers and the text a person wrote) was fetched.
    pub cut_short: u32,
    /// The batch stopped at a bound (count, bytes or time) with newer messages left for the
    /// next run.
    pub more_waiting: bool,
}

/// How much one run reads, so that a busy mailbox read for the first time fits the function's
/// memory and time: at most `max_messages` per folder, the first `max_message_bytes` of each
/// (a reply's headers and text come first; attachments, which nothing reads, last), and at most
/// `max_batch_bytes` per mailbox account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadBounds {
    pub max_messages: usize,
    pub max_message_bytes: usize,
    pub max_batch_bytes: usize,
}

impl Default for ReadBounds {
    fn default() -> Self {
        Self { max_messages: 200, max_message_bytes: 256 * 1024, max_batch_bytes: 16 * 1024 * 1024 }
    }
}

/// What reading one folder gave: its batch, or why it could not be read this time.
#[derive(Debug)]
pub struct FolderRead {
    pub folder: String,
    pub result: anyhow::Result<FolderBatch>,
}

/// A folder the poller reads, with the addresses of the mailbox it belongs to: an agent's
/// replies arrive in the folders of the mailbox its emails come from (or reply to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedFolder {
    pub folder: String,
    /// Lowercased; empty when the mailbox names none (a local Maildir).
    pub addresses: Vec<String>,
}

/// The mailboxes replies arrive in. Reading must not change what the team sees in its mail
/// client: nothing is marked read, moved or deleted on the server.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// The folders read, as `account/folder`.
    fn folders(&self) -> Vec<String>;
    /// The watched mailboxes' own addresses: mail from them is ours, never a lead's reply.
    fn own_addresses(&self) -> Vec<String>;
    /// Every folder read, with its mailbox's addresses.
    fn watched_folders(&self) -> Vec<WatchedFolder> {
        self.folders().into_iter().map(|folder| WatchedFolder { folder, addresses: self.own_addresses() }).collect()
    }
    /// The messages of each folder that come after its cursor, within `bounds`. A folder
    /// without a cursor, or whose UIDVALIDITY changed, is read from `since` on.
    async fn read_new(&self, cursors: &HashMap<String, MailboxCursor>, since: NaiveDate, bounds: ReadBounds) -> Vec<FolderRead>;
    /// The messages of `folder` up to `uid` were acted on. IMAP keeps that in the cursor alone;
    /// a local Maildir moves the files from `new/` to `cur/`.
    async fn acknowledge(&self, _folder: &str, _up_to_uid: u32) -> anyhow::Result<()> {
        Ok(())
    }
}
