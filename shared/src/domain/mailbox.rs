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
    /// When the folder was last read to the end of a batch with every message acted on: what
    /// tells the sweep a lead's answer cannot be waiting unread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_at: Option<Timestamp>,
    /// The message that failed on the last run; it is tried first again on the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing: Option<FailingMessage>,
    /// Messages skipped after failing on [`QUARANTINE_AFTER_FAILURES`] runs in a row, newest
    /// last (the last [`QUARANTINE_KEPT`]). They stay in the mailbox for a person to read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quarantined: Vec<QuarantinedMessage>,
}

/// Runs in a row a message may fail before it is skipped.
pub const QUARANTINE_AFTER_FAILURES: u32 = 3;
/// Quarantined messages a cursor keeps on show.
pub const QUARANTINE_KEPT: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailingMessage {
    pub uid: u32,
    /// Runs in a row it failed on.
    pub failures: u32,
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedMessage {
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default)]
    pub subject: String,
    pub error: String,
    pub quarantined_at: Timestamp,
}

impl MailboxCursor {
    /// Counts a failure of message `uid`. Returns the quarantined entry (for the caller to describe
    /// the message in) when this failure was its last chance; the caller then moves past it.
    pub fn message_failed(&mut self, uid: u32, error: &str, now: Timestamp) -> Option<&mut QuarantinedMessage> {
        // Kept in the store's cursor item: an error says what failed in a sentence or two.
        let error: String = error.chars().take(500).collect();
        let error = error.as_str();
        let failures = match &self.failing {
            Some(failing) if failing.uid == uid => failing.failures + 1,
            _ => 1,
        };
        if failures < QUARANTINE_AFTER_FAILURES {
            self.failing = Some(FailingMessage { uid, failures, error: error.to_string() });
            return None;
        }
        self.failing = None;
        self.quarantined.push(QuarantinedMessage {
            uid,
            message_id: None,
            from: None,
            subject: String::new(),
            error: format!("failed on {failures} runs in a row; last: {error}"),
            quarantined_at: now,
        });
        let excess = self.quarantined.len().saturating_sub(QUARANTINE_KEPT);
        self.quarantined.drain(..excess);
        self.last_uid = self.last_uid.max(uid);
        self.quarantined.last_mut()
    }

    /// Message `uid` went through: it is no longer failing.
    pub fn message_done(&mut self, uid: u32) {
        if self.failing.as_ref().is_some_and(|f| f.uid <= uid) {
            self.failing = None;
        }
        self.last_uid = self.last_uid.max(uid);
        self.messages_read += 1;
    }
}
