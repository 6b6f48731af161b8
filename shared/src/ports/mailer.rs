use async_trait::async_trait;

use crate::domain::outreach_email::OutreachEmail;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendReceipt {
    /// The provider's id for the message (SES MessageId, outbox file name, SMTP queue id).
    pub provider_message_id: String,
    /// The Message-ID the recipient sees, when the provider replaced ours (SES does). Replies
    /// and follow-ups refer to this one.
    pub delivered_message_id: Option<String>,
}

/// Whether a failed send may have left the building decides what happens to the lead, so the
/// error says exactly that.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Nothing was sent (throttled, connection refused before the data phase); retry later.
    #[error("the mailer refused for now: {0}")]
    Retryable(String),
    /// Nothing was sent: the sender's daily quota with the provider is spent. The lead waits
    /// for the sender's next day.
    #[error("the sender's daily sending limit is reached: {0}")]
    DailyLimit(String),
    /// Nothing was sent: the provider's maximum rate leaves no turn for this email within the
    /// send's time; it waits this long and goes again (not a refusal of the email).
    #[error("the provider's sending rate leaves no turn for now (next in {0:?})")]
    Paced(std::time::Duration),
    /// Nothing was sent and retrying will not help (recipient rejected, sender not verified).
    #[error("the mailer rejected the email: {0}")]
    Rejected(String),
    /// The email may or may not have been sent (a timeout after the data was handed over).
    #[error("the outcome of the send is unknown: {0}")]
    Ambiguous(String),
    /// Nothing was sent, and no email can be until a setting is fixed (a sender identity not
    /// verified, the account's sending paused, the daily quota spent): the execution pauses.
    #[error("the mailer cannot send as configured: {0}")]
    Configuration(String),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &OutreachEmail) -> Result<SendReceipt, MailError>;
}
