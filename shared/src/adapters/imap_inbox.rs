//! The team's mailboxes over IMAP (async-imap). Folders are opened with EXAMINE and messages
//! fetched with `BODY.PEEK[]`, so the team's mail client sees nothing change: no message is
//! marked read, moved or deleted. TLS goes through rustls; plain text is allowed only to a
//! server on this machine's loopback interface, and only when configured explicitly.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_imap::types::NameAttribute;
use async_trait::async_trait;
use chrono::NaiveDate;
use futures::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::domain::MailboxCursor;
use crate::ports::{FolderBatch, FolderRead, InboundMessage, Inbox};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImapSecurity {
    /// Implicit TLS (port 993).
    #[default]
    Tls,
    /// No encryption: only for a server on loopback, such as a local test server or a bridge.
    Plain,
}

/// One mailbox to read, as the secret or `SALES_AGENT_MAILBOXES` describes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSettings {
    /// A short name for logs and cursors; the username when absent.
    #[serde(default)]
    pub name: Option<String>,
    pub host: String,
    /// 993 with TLS, 143 without, unless given.
    #[serde(default)]
    pub port: Option<u16>,
    pub username: String,
    pub password: SecretString,
    #[serde(default)]
    pub security: ImapSecurity,
    /// The folders to read; INBOX when absent. Sent and Drafts are refused.
    #[serde(default = "default_folders")]
    pub folders: Vec<String>,
    /// The address mail from this mailbox goes out as, when the username is not it.
    #[serde(default)]
    pub address: Option<String>,
    /// Extra trusted CA certificates (PEM), for a server with a private certificate authority.
    #[serde(default)]
    pub ca_pem: Option<String>,
}

fn default_folders() -> Vec<String> {
    vec!["INBOX".into()]
}

/// Folder names that hold the team's own mail. Servers that support RFC 6154 also flag them,
/// and flagged folders are refused whatever their name.
const OWN_MAIL_FOLDERS: &[&str] = &["sent", "sent items", "sent messages", "sent mail", "[gmail]/sent mail", "drafts", "[gmail]/drafts"];

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl MailboxSettings {
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.username)
    }

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            ImapSecurity::Tls => 993,
            ImapSecurity::Plain => 143,
        })
    }

    pub fn folder_key(&self, folder: &str) -> String {
        format!("{}/{folder}", self.label())
    }

    /// Every problem with this mailbox's settings, each naming its field.
    pub fn problems(&self, index: usize) -> Vec<String> {
        let field = |name: &str| format!("mailboxes[{index}].{name}");
        let mut problems = Vec::new();
        if self.host.trim().is_empty() {
            problems.push(format!("{} is empty", field("host")));
        }
        if self.username.trim().is_empty() {
            problems.push(format!("{} is empty", field("username")));
        }
        if self.security == ImapSecurity::Plain && !is_loopback(&self.host) {
            problems.push(format!("{}: plain text is only allowed to a loopback server, not to '{}'", field("security"), self.host));
        }
        if self.folders.is_empty() {
            problems.push(format!("{} is empty", field("folders")));
        }
        for folder in &self.folders {
            if OWN_MAIL_FOLDERS.contains(&folder.to_ascii_lowercase().as_str()) {
                problems.push(format!("{}: '{folder}' holds the team's own mail and is never read", field("folders")));
            }
        }
        problems
    }
}

/// Parses and checks a JSON list of mailboxes; the error names the field at fault.
pub fn parse_mailboxes(json: &str) -> Result<Vec<MailboxSettings>, String> {
    let deserializer = &mut serde_json::Deserializer::from_str(json);
    let mailboxes: Vec<MailboxSettings> = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        // The message may quote a value, which could be a password; name the place only.
        let path = e.path().to_string();
        let why = e.inner().to_string();
        let why = if why.contains("unknown field") || why.contains("missing field") { why } else { "has the wrong type".into() };
        format!("mailboxes{}: {why}", if path == "." { String::new() } else { format!(" at {path}") })
    })?;
    let problems: Vec<String> = mailboxes.iter().enumerate().flat_map(|(i, m)| m.problems(i)).collect();
    if problems.is_empty() { Ok(mailboxes) } else { Err(problems.join("; ")) }
}

/// How long one attempt at one mailbox may take, and how often it is tried.
#[derive(Clone, Copy, Debug)]
pub struct ImapLimits {
    pub connect_timeout: Duration,
    pub session_timeout: Duration,
    pub attempts: u32,
    pub retry_delay: Duration,
}

impl Default for ImapLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(60),
            attempts: 3,
            retry_delay: Duration::from_millis(500),
        }
    }
}

/// The server refused the credentials: trying again at once would only be refused again.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct LoginRefused(String);

struct Account {
    settings: MailboxSettings,
    tls: Option<TlsConnector>,
}

pub struct ImapInbox {
    accounts: Vec<Account>,
    limits: ImapLimits,
}

fn tls_connector(settings: &MailboxSettings) -> anyhow::Result<TlsConnector> {
    let mut roots = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        // A system without a CA bundle (a minimal container) still trusts the public CAs.
        roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    }
    if let Some(pem) = &settings.ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.with_context(|| format!("the ca_pem of mailbox '{}' is not PEM", settings.label()))?;
            roots.add(cert).with_context(|| format!("the ca_pem of mailbox '{}' is not a usable certificate", settings.label()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

impl ImapInbox {
    pub fn new(mailboxes: Vec<MailboxSettings>, limits: ImapLimits) -> anyhow::Result<Self> {
        let problems: Vec<String> = mailboxes.iter().enumerate().flat_map(|(i, m)| m.problems(i)).collect();
        anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
        let accounts = mailboxes
            .into_iter()
            .map(|settings| {
                let tls = match settings.security {
                    ImapSecurity::Tls => Some(tls_connector(&settings)?),
                    ImapSecurity::Plain => None,
                };
                Ok(Account { settings, tls })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { accounts, limits })
    }

    /// Reads one account, retrying the whole session on connection trouble. Reading changes
    /// nothing on the server, so a retry is always safe.
    async fn read_account(
        &self,
        account: &Account,
        cursors: &HashMap<String, MailboxCursor>,
        since: NaiveDate,
        limit: usize,
    ) -> Vec<FolderRead> {
        let mut last_error = anyhow!("not tried");
        for attempt in 0..self.limits.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.limits.retry_delay * 2u32.pow(attempt - 1)).await;
            }
            let session = tokio::time::timeout(self.limits.session_timeout, self.read_account_once(account, cursors, since, limit));
            match session.await {
                Ok(Ok(reads)) => return reads,
                Ok(Err(error)) => last_error = error,
                Err(_) => last_error = anyhow!("the session took longer than {:?}", self.limits.session_timeout),
            }
            tracing::warn!(mailbox = account.settings.label(), attempt = attempt + 1, error = %format!("{last_error:#}"), "IMAP session failed");
            if last_error.downcast_ref::<LoginRefused>().is_some() {
                break;
            }
        }
        let why = format!("{last_error:#}");
        account
            .settings
            .folders
            .iter()
            .map(|f| FolderRead { folder: account.settings.folder_key(f), result: Err(anyhow!(why.clone())) })
            .collect()
    }

    async fn read_account_once(
        &self,
        account: &Account,
        cursors: &HashMap<String, MailboxCursor>,
        since: NaiveDate,
        limit: usize,
    ) -> anyhow::Result<Vec<FolderRead>> {
        let settings = &account.settings;
        let address = (settings.host.as_str(), settings.port());
        let tcp = tokio::time::timeout(self.limits.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| anyhow!("connecting to {}:{} timed out", settings.host, settings.port()))?
            .with_context(|| format!("connecting to {}:{}", settings.host, settings.port()))?;
        match &account.tls {
            Some(connector) => {
                let name =
                    ServerName::try_from(settings.host.clone()).with_context(|| format!("'{}' is not a host name", settings.host))?;
                let stream = connector.connect(name, tcp).await.with_context(|| format!("TLS with {}", settings.host))?;
                read_session(async_imap::Client::new(stream), settings, cursors, since, limit).await
            }
            None => read_session(async_imap::Client::new(tcp), settings, cursors, since, limit).await,
        }
    }
}

async fn read_session<T>(
    mut client: async_imap::Client<T>,
    settings: &MailboxSettings,
    cursors: &HashMap<String, MailboxCursor>,
    since: NaiveDate,
    limit: usize,
) -> anyhow::Result<Vec<FolderRead>>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    client.read_response().await.context("reading the greeting")?.context("the server closed the connection before greeting")?;
    let mut session = client
        .login(&settings.username, settings.password.expose_secret())
        .await
        .map_err(|(error, _)| anyhow!(LoginRefused(format!("login as {} failed: {error}", settings.username))))?;
    let own_mail = own_mail_folders(&mut session).await?;
    let mut reads = Vec::new();
    for folder in &settings.folders {
        let key = settings.folder_key(folder);
        if own_mail.contains(&folder.to_ascii_lowercase()) {
            reads
                .push(FolderRead { folder: key, result: Err(anyhow!("'{folder}' is the team's Sent or Drafts folder and is never read")) });
            continue;
        }
        let result = match read_folder(&mut session, folder, &key, cursors.get(&key), since, limit).await {
            Ok(batch) => Ok(batch),
            // The server refused this folder (it does not exist, say): the others go on.
            Err(error @ (async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_))) => {
                Err(anyhow!("the server refused folder '{folder}': {error}"))
            }
            Err(error) => return Err(anyhow!(error).context(format!("reading folder '{folder}'"))),
        };
        reads.push(FolderRead { folder: key, result });
    }
    // The work is done; a failed goodbye changes nothing.
    let _ = session.logout().await;
    Ok(reads)
}

/// The folders the server flags as Sent or Drafts (RFC 6154), lowercased.
async fn own_mail_folders<T>(session: &mut async_imap::Session<T>) -> anyhow::Result<HashSet<String>>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let names: Vec<_> =
        session.list(Some(""), Some("*")).await.context("listing folders")?.try_collect().await.context("listing folders")?;
    Ok(names
        .iter()
        .filter(|name| name.attributes().iter().any(|a| matches!(a, NameAttribute::Sent | NameAttribute::Drafts)))
        .map(|name| name.name().to_ascii_lowercase())
        .collect())
}

async fn read_folder<T>(
    session: &mut async_imap::Session<T>,
    folder: &str,
    key: &str,
    cursor: Option<&MailboxCursor>,
    since: NaiveDate,
    limit: usize,
) -> async_imap::error::Result<FolderBatch>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    // EXAMINE opens the folder read-only: not even the \Recent flags change.
    let mailbox = session.examine(folder).await?;
    let uid_validity = mailbox.uid_validity.unwrap_or(0);
    let after = cursor.filter(|c| c.uid_validity == uid_validity).map(|c| c.last_uid);
    let query = match after {
        Some(last_uid) => format!("UID {}:*", last_uid + 1),
        None => format!("SINCE {}", since.format("%d-%b-%Y")),
    };
    let mut uids: Vec<u32> = session.uid_search(&query).await?.into_iter().filter(|uid| *uid > after.unwrap_or(0)).collect();
    uids.sort_unstable();
    uids.truncate(limit);
    if uids.is_empty() {
        return Ok(FolderBatch { uid_validity, messages: Vec::new() });
    }
    let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let fetches: Vec<_> = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?.try_collect().await?;
    let mut messages: Vec<InboundMessage> = fetches
        .iter()
        .filter_map(|fetch| Some(InboundMessage { folder: key.to_string(), uid: fetch.uid?, raw: fetch.body()?.to_vec() }))
        .collect();
    messages.sort_by_key(|m| m.uid);
    messages.dedup_by_key(|m| m.uid);
    Ok(FolderBatch { uid_validity, messages })
}

#[async_trait]
impl Inbox for ImapInbox {
    fn folders(&self) -> Vec<String> {
        self.accounts.iter().flat_map(|a| a.settings.folders.iter().map(|f| a.settings.folder_key(f))).collect()
    }

    fn own_addresses(&self) -> Vec<String> {
        self.accounts
            .iter()
            .flat_map(|a| a.settings.address.iter().chain(std::iter::once(&a.settings.username)))
            .filter(|address| address.contains('@'))
            .map(|address| address.to_ascii_lowercase())
            .collect()
    }

    async fn read_new(&self, cursors: &HashMap<String, MailboxCursor>, since: NaiveDate, limit: usize) -> Vec<FolderRead> {
        let reads = futures::future::join_all(self.accounts.iter().map(|account| self.read_account(account, cursors, since, limit))).await;
        reads.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_refused_beyond_loopback_and_own_folders_are_refused() {
        let json = r#"[{"host": "imap.example.com", "username": "sales@example.com", "password": "x", "security": "plain",
                       "folders": ["INBOX", "Sent Items"]}]"#;
        let error = parse_mailboxes(json).unwrap_err();
        assert!(error.contains("mailboxes[0].security"), "{error}");
        assert!(error.contains("mailboxes[0].folders: 'Sent Items'"), "{error}");
        let ok = r#"[{"host": "127.0.0.1", "port": 1143, "username": "u", "password": "x", "security": "plain"}]"#;
        assert_eq!(parse_mailboxes(ok).unwrap()[0].folders, vec!["INBOX".to_string()]);
    }

    #[test]
    fn a_malformed_list_names_the_place_and_never_quotes_a_value() {
        let error = parse_mailboxes(r#"[{"host": "h", "username": "u", "password": 12345678}]"#).unwrap_err();
        assert!(error.contains("[0].password"), "{error}");
        assert!(!error.contains("12345678"), "{error}");
        let error = parse_mailboxes(r#"[{"host": "h", "username": "u"}]"#).unwrap_err();
        assert!(error.contains("missing field `password`"), "{error}");
    }
}
