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

/// Runs the send step for `message` with a worker that dies right after the provider accepted
/// the email: the lead is left claimed in `sending`, as after a crash.
pub async fn send_then_die(runtime: &sales_agent::local::EmbeddedRuntime, message: &sales_agent::domain::StepMessage) {
    let sent = Arc::new(Notify::new());
    let mut crashing = runtime.clone();
    crashing.mailer = Arc::new(DiesAfterSending { mailer: runtime.mailer.clone(), sent: sent.clone() });
    let doomed = crashing.send_step();
    let message = message.clone();
    let delivery = tokio::spawn(async move { doomed.handle(&message).await });
    sent.notified().await;
    delivery.abort();
}
