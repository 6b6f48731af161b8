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

use async_trait::async_trait;
use aws_sdk_ses::Client;
use aws_sdk_ses::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ses::primitives::Blob;
use aws_sdk_ses::types::{MessageTag, RawMessage};

use crate::domain::outreach_email::OutreachEmail;
use crate::ports::{MailError, Mailer, SendReceipt};

#[derive(Clone)]
pub struct SesMailer {
    client: Client,
    configuration_set: Option<String>,
    /// The domain of the Message-IDs SES gives the emails it sends from this region.
    message_id_domain: String,
}

/// SES replaces the Message-ID of every email with `<MessageId@email.amazonses.com>` in
/// us-east-1 and `<MessageId@REGION.amazonses.com>` elsewhere.
pub fn ses_message_id_domain(region: &str) -> String {
    if region == "us-east-1" { "email.amazonses.com".into() } else { format!("{region}.amazonses.com") }
}

impl SesMailer {
    /// `config` should be the shared SDK configuration; retries are switched off here.
    pub fn new(config: &aws_config::SdkConfig, configuration_set: Option<String>) -> Self {
        let ses_config =
            aws_sdk_ses::config::Builder::from(config).retry_config(aws_sdk_ses::config::retry::RetryConfig::disabled()).build();
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
        Self { client: Client::from_conf(ses_config), configuration_set, message_id_domain: ses_message_id_domain(&region) }
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

    #[test]
    fn message_ids_carry_the_sending_region() {
        assert_eq!(super::ses_message_id_domain("us-east-1"), "email.amazonses.com");
        assert_eq!(super::ses_message_id_domain("eu-west-1"), "eu-west-1.amazonses.com");
    }
}
