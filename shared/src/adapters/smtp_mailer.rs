//! Sending from the team's own mailboxes over SMTP submission (lettre over rustls), with the
//! exactly-once contract of every mailer: the Message-ID is ours, and the server's answer is
//! classified by what it proves. Everything refused before the message data was handed over
//! proves nothing left (retry later, or the recipient or the settings are at fault); once the
//! data is sent, only a 250 proves the email was accepted, and anything else (a 4xx/5xx, a
//! timeout, a lost connection) leaves the outcome unknown, so the lead is parked, never re-sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use secrecy::ExposeSecret;

use super::mailbox_settings::{MailboxSettings, SmtpSecurity, SmtpSettings};
use super::oauth2::{MailboxCredentials, TokenError};
use super::tls_roots::trusted_roots;
use crate::domain::outreach_email::OutreachEmail;
use crate::ports::{MailError, Mailer, SendReceipt};

/// How long a submission may take. Everything before the message data (connecting, TLS, the
/// token, signing in, MAIL FROM, RCPT TO, DATA) shares one budget, after which nothing has left
/// and the lead simply tries again; the data and the server's answer to it have their own. Both
/// together stay well inside the send function's 30 s, leaving time to record the outcome.
#[derive(Clone, Copy, Debug)]
pub struct SmtpLimits {
    pub before_data: Duration,
    pub command: Duration,
    pub data: Duration,
}

impl Default for SmtpLimits {
    fn default() -> Self {
        Self { before_data: Duration::from_secs(10), command: Duration::from_secs(5), data: Duration::from_secs(8) }
    }
}

/// Why a connection could not be made ready to send.
enum NotReady {
    /// The server refused the sign-in itself (as opposed to the connection failing).
    SignInRefused(String),
    Other(MailError),
}

impl From<MailError> for NotReady {
    fn from(error: MailError) -> Self {
        Self::Other(error)
    }
}

impl From<NotReady> for MailError {
    /// A refused sign-in is a setting to fix.
    fn from(not_ready: NotReady) -> Self {
        match not_ready {
            NotReady::SignInRefused(why) => MailError::Configuration(why),
            NotReady::Other(error) => error,
        }
    }
}

/// One mailbox's SMTP submission.
pub struct SmtpMailer {
    label: String,
    smtp: SmtpSettings,
    username: String,
    credentials: MailboxCredentials,
    tls: Option<TlsParameters>,
    hello: ClientId,
    limits: SmtpLimits,
}

/// Words a server uses when the *sender's* daily quota is spent (Gmail's 5.4.5 "Daily user
/// sending limit exceeded", Microsoft's "SubmissionQuotaExceeded"). A recipient's full mailbox
/// ("452 4.2.2 over quota", "552 5.2.2") is the recipient's problem, not a spent quota.
fn speaks_of_a_sending_limit(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    let recipients_mailbox = text.contains("4.2.2") || text.contains("5.2.2") || text.contains("mailbox full");
    !recipients_mailbox
        && (text.contains("5.4.5") || text.contains("sending limit") || text.contains("sending quota") || text.contains("submissionquota"))
}

/// Whether a connection failed because the server's certificate did not verify (an unknown CA,
/// a name mismatch, an expired certificate): a setting to fix, not a moment to wait out.
fn is_certificate_problem(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        let rustls_error = error
            .downcast_ref::<tokio_rustls::rustls::Error>()
            .or_else(|| error.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|e| e.downcast_ref()));
        if matches!(rustls_error, Some(tokio_rustls::rustls::Error::InvalidCertificate(_))) {
            return true;
        }
        next = error.source();
    }
    false
}

impl SmtpMailer {
    pub fn new(settings: &MailboxSettings, limits: SmtpLimits) -> anyhow::Result<Self> {
        let smtp = settings.smtp.clone().with_context(|| format!("mailbox '{}' has no smtp settings", settings.label()))?;
        let tls = match smtp.security {
            SmtpSecurity::Plain => None,
            SmtpSecurity::Starttls | SmtpSecurity::Tls => {
                let mut builder = TlsParameters::builder(smtp.host.clone()).certificate_store(CertificateStore::None);
                for root in trusted_roots(settings.ca_pem.as_deref(), &format!("mailbox '{}'", settings.label()))? {
                    // A system certificate lettre cannot read is skipped, as browsers do.
                    if let Ok(cert) = Certificate::from_der(root.to_vec()) {
                        builder = builder.add_root_certificate(cert);
                    }
                }
                Some(builder.build_rustls().context("TLS set-up for SMTP")?)
            }
        };
        Ok(Self {
            label: settings.label().to_string(),
            username: smtp.username.clone().unwrap_or_else(|| settings.username.clone()),
            smtp,
            credentials: MailboxCredentials::for_mailbox(settings)?,
            tls,
            // The EHLO name is the sending domain, as a mail client's would be.
            hello: ClientId::Domain(settings.sending_address().map_or_else(|| "localhost".into(), |a| a.domain().to_string())),
            limits,
        })
    }

    /// Connects, secures and signs in. A refused XOAUTH2 token is dropped and the sign-in tried
    /// once more with a fresh one (a token revoked before it expired); a second refusal is a
    /// setting to fix.
    async fn ready(&self) -> Result<AsyncSmtpConnection, MailError> {
        let first = self.connect().await;
        let token_refused = matches!(first, Err(NotReady::SignInRefused(_))) && matches!(self.credentials, MailboxCredentials::OAuth2(_));
        let ready = if token_refused { self.connect().await } else { first };
        ready.map_err(MailError::from)
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, NotReady> {
        let (host, port) = (self.smtp.host.as_str(), self.smtp.port());
        let implicit = if self.smtp.security == SmtpSecurity::Tls { self.tls.clone() } else { None };
        let connecting = AsyncSmtpConnection::connect_tokio1((host, port), Some(self.limits.command), &self.hello, implicit, None);
        let mut connection = match tokio::time::timeout(self.limits.command, connecting).await {
            Err(_) => return Err(MailError::Retryable(format!("connecting to {host}:{port} timed out")).into()),
            Ok(Err(error)) if error.is_tls() || is_certificate_problem(&error) => {
                return Err(MailError::Configuration(format!("TLS with {host}:{port} failed: {error}")).into());
            }
            Ok(Err(error)) => return Err(MailError::Retryable(format!("connecting to {host}:{port}: {error}")).into()),
            Ok(Ok(connection)) => connection,
        };
        if self.smtp.security == SmtpSecurity::Starttls {
            if !connection.can_starttls() {
                connection.abort().await;
                let why = format!("{host}:{port} does not offer STARTTLS; the mailbox's password is never sent in plain text");
                return Err(MailError::Configuration(why).into());
            }
            let tls = self.tls.clone().expect("STARTTLS has TLS parameters");
            match tokio::time::timeout(self.limits.command, connection.starttls(tls, &self.hello)).await {
                Err(_) => return Err(MailError::Retryable(format!("STARTTLS with {host} timed out")).into()),
                Ok(Err(error)) if error.is_tls() || is_certificate_problem(&error) => {
                    return Err(MailError::Configuration(format!("STARTTLS with {host} failed: {error}")).into());
                }
                Ok(Err(error)) => return Err(MailError::Retryable(format!("STARTTLS with {host}: {error}")).into()),
                Ok(Ok(())) => {}
            }
        }
        if let Err(error) = self.sign_in(&mut connection).await {
            connection.abort().await;
            return Err(error);
        }
        Ok(connection)
    }

    async fn sign_in(&self, connection: &mut AsyncSmtpConnection) -> Result<(), NotReady> {
        let (credentials, mechanisms) = match &self.credentials {
            MailboxCredentials::Password(password) => {
                (Credentials::new(self.username.clone(), password.expose_secret().to_string()), vec![Mechanism::Plain, Mechanism::Login])
            }
            MailboxCredentials::OAuth2(tokens) => {
                let token = tokens.access_token().await.map_err(|error| match error {
                    TokenError::Refused(_) => MailError::Configuration(error.to_string()),
                    TokenError::Unavailable(_) => MailError::Retryable(error.to_string()),
                })?;
                (Credentials::new(self.username.clone(), token.expose_secret().to_string()), vec![Mechanism::Xoauth2])
            }
        };
        let signing_in = tokio::time::timeout(self.limits.command, connection.auth(&mechanisms, &credentials)).await;
        let error = match signing_in {
            Err(_) => return Err(MailError::Retryable(format!("signing in to {} timed out", self.smtp.host)).into()),
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) => error,
        };
        let refused = format!("{} refused the sign-in of mailbox '{}': {error}", self.smtp.host, self.label);
        if let MailboxCredentials::OAuth2(tokens) = &self.credentials {
            // A token revoked before it expired: the next sign-in fetches a new one. A refused
            // XOAUTH2 token comes back as a challenge lettre does not expect (a client error).
            tokens.forget().await;
            if error.is_permanent() || error.is_client() {
                return Err(NotReady::SignInRefused(refused));
            }
        }
        if error.is_permanent() {
            // 535: the credentials are wrong. Only a person can fix that.
            Err(NotReady::SignInRefused(refused))
        } else if error.is_client() {
            // No mechanism both sides know (the server offers no AUTH over this connection).
            Err(MailError::Configuration(refused).into())
        } else {
            // A 4xx, or the connection failing mid-way: nothing is known about the credentials.
            Err(MailError::Retryable(format!("{} could not take the sign-in for now: {error}", self.smtp.host)).into())
        }
    }

    /// MAIL FROM, RCPT TO and DATA: a refusal of any of them proves nothing was sent.
    async fn open_message(&self, connection: &mut AsyncSmtpConnection, from: &Address, to: &Address) -> Result<(), MailError> {
        let limit = self.limits.command;
        match tokio::time::timeout(limit, connection.command(Mail::new(Some(from.clone()), vec![]))).await {
            Err(_) => return Err(MailError::Retryable("MAIL FROM timed out".into())),
            Ok(Err(error)) if speaks_of_a_sending_limit(&error.to_string()) => return Err(MailError::DailyLimit(error.to_string())),
            Ok(Err(error)) if error.is_permanent() => {
                return Err(MailError::Configuration(format!("the server refused the sender {from}: {error}")));
            }
            Ok(Err(error)) => return Err(MailError::Retryable(format!("MAIL FROM: {error}"))),
            Ok(Ok(_)) => {}
        }
        match tokio::time::timeout(limit, connection.command(Rcpt::new(to.clone(), vec![]))).await {
            Err(_) => return Err(MailError::Retryable("RCPT TO timed out".into())),
            Ok(Err(error)) if speaks_of_a_sending_limit(&error.to_string()) => return Err(MailError::DailyLimit(error.to_string())),
            Ok(Err(error)) if error.is_permanent() => return Err(MailError::Rejected(format!("the server refused {to}: {error}"))),
            // A full mailbox, greylisting: the recipient's server asks for later.
            Ok(Err(error)) => return Err(MailError::Retryable(format!("RCPT TO: {error}"))),
            Ok(Ok(_)) => {}
        }
        match tokio::time::timeout(limit, connection.command(Data)).await {
            Err(_) => Err(MailError::Retryable("DATA timed out before the message was sent".into())),
            Ok(Err(error)) if error.is_permanent() => Err(MailError::Rejected(format!("the server refused the message: {error}"))),
            Ok(Err(error)) => Err(MailError::Retryable(format!("DATA: {error}"))),
            Ok(Ok(_)) => Ok(()),
        }
    }
}

fn address(raw: &str, role: &str) -> Result<Address, MailError> {
    raw.parse::<Address>().map_err(|e| MailError::Rejected(format!("the {role} address '{raw}' cannot be used in SMTP: {e}")))
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutreachEmail) -> Result<SendReceipt, MailError> {
        let (from, to) = (address(&email.from, "sender")?, address(&email.to, "recipient")?);
        let before_data = async {
            let mut connection = self.ready().await?;
            match self.open_message(&mut connection, &from, &to).await {
                Ok(()) => Ok(connection),
                Err(error) => {
                    connection.abort().await;
                    Err(error)
                }
            }
        };
        // Nothing has left until the data is sent: running out of time here is a "later".
        let mut connection = match tokio::time::timeout(self.limits.before_data, before_data).await {
            Err(_) => {
                return Err(MailError::Retryable(format!(
                    "{} took longer than {:?} before the message data",
                    self.smtp.host, self.limits.before_data
                )));
            }
            Ok(result) => result?,
        };
        // From here on the server has the message: only its 250 proves it was accepted.
        let accepted = match tokio::time::timeout(self.limits.data, connection.message(&email.raw)).await {
            Err(_) => Err(MailError::Ambiguous(format!(
                "no answer from {} within {:?} after the message was sent",
                self.smtp.host, self.limits.data
            ))),
            Ok(Err(error)) => {
                Err(MailError::Ambiguous(format!("{} did not accept the message after it was sent: {error}", self.smtp.host)))
            }
            Ok(Ok(response)) => Ok(response),
        };
        let response = match accepted {
            Ok(response) => response,
            Err(error) => {
                connection.abort().await;
                return Err(error);
            }
        };
        // The email is accepted; a failed goodbye changes nothing.
        let _ = tokio::time::timeout(self.limits.command, connection.quit()).await;
        let answer: Vec<&str> = response.message().collect();
        Ok(SendReceipt {
            provider_message_id: format!("smtp:{}:{}", self.smtp.host, answer.join(" ").chars().take(200).collect::<String>()),
            delivered_message_id: None,
        })
    }
}

/// Sends each email through the mailbox its From address names, and every other email through
/// the deployment's default mailer (SES deployed, the outbox locally).
/// A mailbox whose SMTP set-up failed (an unreadable `ca_pem`, say) refuses every email as a
/// configuration fault: its emails must never leave through the default mailer instead, and the
/// other mailboxes and functions go on.
pub struct MailboxMailers {
    by_address: HashMap<String, Result<Arc<SmtpMailer>, String>>,
    default: Arc<dyn Mailer>,
}

impl MailboxMailers {
    pub fn new(mailboxes: &[MailboxSettings], default: Arc<dyn Mailer>, limits: SmtpLimits) -> Self {
        let mut by_address = HashMap::new();
        for settings in mailboxes.iter().filter(|m| m.smtp.is_some()) {
            let Some(address) = settings.sending_address() else { continue };
            let mailer = SmtpMailer::new(settings, limits).map(Arc::new).map_err(|error| {
                let why = format!("mailbox '{}' cannot send: {error:#}", settings.label());
                tracing::error!(%why, "a sending mailbox is misconfigured");
                why
            });
            by_address.insert(address.dedupe_key(), mailer);
        }
        Self { by_address, default }
    }
}

#[async_trait]
impl Mailer for MailboxMailers {
    async fn send(&self, email: &OutreachEmail) -> Result<SendReceipt, MailError> {
        match self.by_address.get(&email.from.to_ascii_lowercase()) {
            Some(Ok(mailbox)) => mailbox.send(email).await,
            Some(Err(why)) => Err(MailError::Configuration(why.clone())),
            None => self.default.send(email).await,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quota_answers_are_told_from_other_refusals() {
        assert!(super::speaks_of_a_sending_limit("550 5.4.5 Daily user sending limit exceeded"));
        assert!(super::speaks_of_a_sending_limit("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"));
        assert!(!super::speaks_of_a_sending_limit("550 5.1.1 The email account that you tried to reach does not exist"));
        assert!(!super::speaks_of_a_sending_limit("553 5.7.1 Sender address rejected: not owned by user"));
        assert!(!super::speaks_of_a_sending_limit("452 4.2.2 The email account that you tried to reach is over quota"));
        assert!(!super::speaks_of_a_sending_limit("552 5.2.2 Mailbox full"));
        assert!(!super::speaks_of_a_sending_limit("421 4.7.0 Try again later, closing connection (rate limit)"));
    }
}
