use async_trait::async_trait;

/// One message read from the team's mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMessage {
    /// Which mailbox (and folder) it came from.
    pub mailbox: String,
    /// The mailbox's own key for the message (IMAP UID, file name).
    pub key: String,
    /// The full RFC 5322 message.
    pub raw: Vec<u8>,
}

/// The mailbox replies arrive in. Reading must not change what the team sees in its mail client.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Up to `limit` messages not yet acknowledged, oldest first.
    async fn fetch_new(&self, limit: usize) -> anyhow::Result<Vec<InboundMessage>>;
    /// Marks messages as processed so the next fetch starts after them.
    async fn acknowledge(&self, messages: &[InboundMessage]) -> anyhow::Result<()>;
}
