//! Faults for tests.

use std::sync::Arc;

use async_trait::async_trait;
use sales_agent::domain::outreach_email::OutreachEmail;
use sales_agent::ports::{MailError, Mailer, SendReceipt};
use tokio::sync::Notify;

/// Hands the email to the real mailer, then never returns: the process dies right after the
/// provider accepted the email and before the lead's state is written.
pub struct DiesAfterSending {
    pub mailer: Arc<dyn Mailer>,
    pub sent: Arc<Notify>,
}

#[async_trait]
impl Mailer for DiesAfterSending {
    async fn send(&self, email: &OutreachEmail) -> Result<SendReceipt, MailError> {
        self.mailer.send(email).await?;
        self.sent.notify_one();
        std::future::pending().await
    }
}
