//! Where the reply poller stands in each watched mailbox folder.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// The poller's position in one folder. IMAP UIDs only mean something together with the
/// folder's UIDVALIDITY: when the server changes it, every UID is new and reading restarts from
/// a date instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxCursor {
    /// `account/folder`, for example `sales@northwind.example/INBOX`.
    pub folder: String,
    pub uid_validity: u32,
    /// The highest UID read and acted on.
    pub last_uid: u32,
    pub last_polled_at: Timestamp,
    /// Why the last poll of this folder failed, until one succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Messages read from this folder since the cursor was created.
    #[serde(default)]
    pub messages_read: u64,
}
