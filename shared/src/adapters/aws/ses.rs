//! Sending through Amazon SES (SendRawEmail) with a configuration set and tags naming the lead
//! and step, so events can be traced back.
//!
//! SES replaces our Message-ID with its own; the receipt names the one recipients see, so
//! replies match and follow-ups thread on it.
//!
//! SendRawEmail has no idempotency key, so the SDK's own retries are off for this client: a
//! retried request after a timeout could send the same email twice. What failed is reported
//! precisely instead (see `classify`), and the send step decides: give the claim back on
//! throttling, pause the execution on a configuration fault, park on ambiguity.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ses::Client;
use aws_sdk_ses::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ses::primitives::Blob;
use aws_sdk_ses::types::{MessageTag, RawMessage};
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;

use crate::domain::outreach_email::OutreachEmail;
use crate::ports::{MailError, Mailer, SendReceipt};

#[derive(Clone)]
pub struct SesMailer {
    client: Client,
    configuration_set: Option<String>,
    /// The domain of the Message-IDs SES gives the emails it sends from this region.
    message_id_domain: String,
    /// This process's share of the account's maximum send rate, read once from SES.
    pace: std::sync::Arc<OnceCell<Option<SendPace>>>,
    /// How many send functions run at once (the event source's maximum concurrency), which
    /// share the account's rate.
    concurrency: u32,
}

/// The longest a send waits for its turn inside the function; beyond it the lead waits in the
/// store instead, so the claim never outlives the function.
const LONGEST_TURN_WAIT: Duration = Duration::from_secs(3);

/// Turns at a fixed interval: this process's share of the account's maximum send rate.
#[derive(Debug)]
pub struct SendPace {
    interval: Duration,
    next: Mutex<Instant>,
}

impl SendPace {
    /// `max_per_second` shared by `concurrency` processes.
    pub fn new(max_per_second: f64, concurrency: u32) -> Option<Self> {
        (max_per_second > 0.0 && max_per_second.is_finite()).then(|| Self {
            interval: Duration::from_secs_f64(f64::from(concurrency.max(1)) / max_per_second),
            next: Mutex::new(Instant::now()),
        })
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Takes the next turn and waits for it, or says how long until one if that is longer than
    /// `longest`.
    pub async fn take_turn(&self, longest: Duration) -> Result<(), Duration> {
        let at = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            if at - now > longest {
                return Err(at - now);
            }
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
        Ok(())
    }
}

/// SES replaces the Message-ID of every email with `<MessageId@email.amazonses.com>` in
/// us-east-1 and `<MessageId@REGION.amazonses.com>` elsewhere.
pub fn ses_message_id_domain(region: &str) -> String {
    if region == "us-east-1" { "email.amazonses.com".into() } else { format!("{region}.amazonses.com") }
}

impl SesMailer {
    /// `config` should be the shared SDK configuration; retries are switched off here.
    /// `max_send_rate` overrides the account's rate SES reports.
    pub fn new(config: &aws_config::SdkConfig, configuration_set: Option<String>, concurrency: u32, max_send_rate: Option<f64>) -> Self {
        let ses_config =
            aws_sdk_ses::config::Builder::from(config).retry_config(aws_sdk_ses::config::retry::RetryConfig::disabled()).build();
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
        Self {
            client: Client::from_conf(ses_config),
            configuration_set,
            message_id_domain: ses_message_id_domain(&region),
            pace: std::sync::Arc::new(match max_send_rate {
                Some(rate) => OnceCell::new_with(Some(SendPace::new(rate, concurrency))),
                None => OnceCell::new(),
            }),
            concurrency,
        }
    }

    /// This process's pace, from the account's maximum send rate (read once it is answered, in at
    /// most two seconds a try). Without an answer this send goes unpaced, SES's throttling makes
    /// leads wait instead, and the next send asks again.
    pub async fn pace(&self) -> Option<&SendPace> {
        let read = self.pace.get_or_try_init(|| async {
            match tokio::time::timeout(Duration::from_secs(2), self.client.get_send_quota().send()).await {
                Ok(Ok(quota)) => Ok(SendPace::new(quota.max_send_rate, self.concurrency)),
                Ok(Err(error)) => {
                    tracing::warn!(error = %aws_sdk_ses::error::DisplayErrorContext(&error), "the SES send rate could not be read");
                    Err(())
                }
                Err(_) => {
                    tracing::warn!("the SES send rate could not be read in time");
                    Err(())
                }
            }
        });
        read.await.ok().and_then(Option::as_ref)
    }
}

/// Codes that refuse a send before anything left, until a setting is fixed: every email of the
/// execution would meet them, so it pauses instead of failing lead after lead.
const CONFIGURATION_CODES: &[&str] = &[
    "AccountSendingPausedException",
    "ConfigurationSetDoesNotExist",
    "ConfigurationSetSendingPausedException",
    "MailFromDomainNotVerifiedException",
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
];

/// Codes that refuse for now before anything left: a later attempt may succeed.
const THROTTLING_CODES: &[&str] = &["Throttling", "ThrottlingException", "TooManyRequestsException"];

/// What an SES answer proves. Only an answer that proves nothing left gives the claim back: a
/// throttling answer, a refusal before sending (validation, configuration), or a connection
/// that was never made. A 5xx, a timeout, a connection lost after the request was written or an
/// unreadable answer proves nothing: SES may have accepted the email, so the lead is parked.
///
/// `from` is the sender: an identity SES says is not verified is a configuration fault when it is
/// the sender's, and a refusal of this one email when it is the recipient's (the SES sandbox).
pub fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(error: SdkError<E>, from: &str) -> MailError {
    match &error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("ServiceError").to_string();
            let text = service.err().message().unwrap_or_default().to_string();
            let status = service.raw().status().as_u16();
            let message = format!("{code}: {text}");
            if status >= 500 {
                return MailError::Ambiguous(format!("SES answered {status} ({message}); it may have accepted the email"));
            }
            let lowered = text.to_ascii_lowercase();
            let unverified =
                code == "MessageRejected" && (lowered.contains("not verified") || lowered.contains("did not have authority to send"));
            if unverified && !names_sender(&lowered, from) {
                let why = "the recipient is not verified; an SES account in its sandbox sends only to verified addresses";
                return MailError::Rejected(format!("{message} ({why})"));
            }
            if lowered.contains("daily message quota") {
                return MailError::DailyLimit(message);
            }
            if CONFIGURATION_CODES.contains(&code.as_str()) || unverified {
                MailError::Configuration(message)
            } else if THROTTLING_CODES.contains(&code.as_str()) {
                MailError::Retryable(message)
            } else {
                MailError::Rejected(message)
            }
        }
        // The request never left this process.
        SdkError::ConstructionFailure(_) => MailError::Rejected(format!("the request could not be built: {error}")),
        SdkError::DispatchFailure(_) if never_connected(&error) => MailError::Retryable(format!("could not connect to SES: {error}")),
        // A timeout, a connection lost after the request was written, an unreadable answer.
        _ => MailError::Ambiguous(format!("{}", aws_sdk_ses::error::DisplayErrorContext(&error))),
    }
}

/// Whether an error text (lower-case) names the sender's address or domain.
fn names_sender(text: &str, from: &str) -> bool {
    let address = from.rsplit_once('<').map_or(from, |(_, address)| address.trim_end_matches('>')).trim().to_ascii_lowercase();
    let domain = address.rsplit_once('@').map_or("", |(_, domain)| domain);
    text.contains(&address) || (!domain.is_empty() && text.contains(domain))
}

/// Whether the connection itself could not be made (refused, unreachable, a failed handshake):
/// then the request was never written.
fn never_connected(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.downcast_ref::<hyper_util::client::legacy::Error>().is_some_and(|e| e.is_connect()) {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
                    | std::io::ErrorKind::AddrNotAvailable
            )
        {
            return true;
        }
        next = error.source();
    }
    false
}

/// SES tag values allow letters, digits, '_', '-' and '.' only.
fn tag(name: &str, value: &str) -> Option<MessageTag> {
    let value: String = value.chars().filter(|c| c.is_ascii_alphanumeric() || "_-.".contains(*c)).take(256).collect();
    MessageTag::builder().name(name).value(value).build().ok()
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &OutreachEmail) -> Result<SendReceipt, MailError> {
        if let Some(pace) = self.pace().await {
            pace.take_turn(LONGEST_TURN_WAIT).await.map_err(MailError::Paced)?;
        }
        let raw = RawMessage::builder().data(Blob::new(email.raw.clone())).build().map_err(|e| MailError::Rejected(e.to_string()))?;
        let output = self
            .client
            .send_raw_email()
            .raw_message(raw)
            .source(&email.from)
            .destinations(&email.to)
            .set_configuration_set_name(self.configuration_set.clone())
            .set_tags(Some(
                [tag("lead_id", &email.lead_id.to_string()), tag("step", &email.step.to_string())].into_iter().flatten().collect(),
            ))
            .send()
            .await
            .map_err(|e| classify(e, &email.from))?;
        let delivered_message_id = Some(format!("{}@{}", output.message_id, self.message_id_domain));
        Ok(SendReceipt { provider_message_id: output.message_id, delivered_message_id })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unverified_identity_is_the_senders_fault_only_when_it_is_the_sender() {
        let sandbox = "email address is not verified. the following identities failed the check in region us-east-1: ada@initech.example";
        assert!(!super::names_sender(sandbox, "Dana <dana@northwind.example>"));
        let sender = "email address is not verified. the following identities failed the check in region us-east-1: dana@northwind.example";
        assert!(super::names_sender(sender, "Dana <dana@northwind.example>"));
        assert!(super::names_sender("did not have authority to send from email rep@northwind.example", "rep@northwind.example"));
    }

    #[tokio::test(start_paused = true)]
    async fn turns_keep_the_accounts_rate_shared_by_the_concurrent_functions() {
        use std::time::Duration;
        // 14 emails a second shared by 2 functions: one turn every 1/7 s in each.
        let pace = super::SendPace::new(14.0, 2).unwrap();
        assert_eq!(pace.interval(), Duration::from_secs_f64(2.0 / 14.0));
        let start = tokio::time::Instant::now();
        for _ in 0..7 {
            pace.take_turn(Duration::from_secs(3)).await.unwrap();
        }
        // The timer rounds each sleep up to its millisecond.
        let elapsed = start.elapsed();
        assert!(elapsed >= pace.interval() * 6 && elapsed <= pace.interval() * 6 + Duration::from_millis(6), "{elapsed:?}");
        // 1 a second (a sandbox account) shared by 2: turns far off are refused, not waited for.
        let slow = super::SendPace::new(1.0, 2).unwrap();
        slow.take_turn(Duration::from_secs(3)).await.unwrap();
        slow.take_turn(Duration::from_secs(3)).await.unwrap();
        assert_eq!(slow.take_turn(Duration::from_secs(1)).await, Err(Duration::from_secs(2)));
        assert!(super::SendPace::new(0.0, 2).is_none());
    }

    #[test]
    fn message_ids_carry_the_sending_region() {
        assert_eq!(super::ses_message_id_domain("us-east-1"), "email.amazonses.com");
        assert_eq!(super::ses_message_id_domain("eu-west-1"), "eu-west-1.amazonses.com");
    }
}
