//! The team's mailboxes over IMAP (async-imap). Folders are opened with EXAMINE and messages
//! fetched with `BODY.PEEK[]`, so the team's mail client sees nothing change: no message is
//! marked read, moved or deleted. TLS goes through rustls; plain text is allowed only to a
//! server on this machine's loopback interface, and only when configured explicitly.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_imap::types::NameAttribute;
use async_trait::async_trait;
use chrono::NaiveDate;
use futures::TryStreamExt;
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::oauth2::{MailboxCredentials, TokenError, xoauth2_response};
use super::tls_roots::trusted_roots;
use crate::domain::MailboxCursor;
use crate::ports::{FolderBatch, FolderRead, InboundMessage, Inbox, ReadBounds, WatchedFolder};

pub use super::mailbox_settings::{ImapSecurity, MailboxSettings, parse_mailboxes};

/// How long one attempt at one mailbox may take, and how often it is tried.
#[derive(Clone, Copy, Debug)]
pub struct ImapLimits {
    pub connect_timeout: Duration,
    pub session_timeout: Duration,
    pub attempts: u32,
    pub retry_delay: Duration,
    /// How long a session keeps fetching further messages; what is fetched by then is the
    /// batch, and the rest waits for the next run. Well inside `session_timeout`, so a slow
    /// server shortens a batch instead of failing it.
    pub fetch_budget: Duration,
}

impl Default for ImapLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(60),
            attempts: 3,
            retry_delay: Duration::from_millis(500),
            fetch_budget: Duration::from_secs(30),
        }
    }
}

/// Messages fetched per command: the session looks at its time and byte budget between them.
const FETCH_CHUNK: usize = 25;

/// What one session may still fetch.
struct Budget {
    bounds: ReadBounds,
    bytes_left: usize,
    until: tokio::time::Instant,
}

impl Budget {
    fn spent(&self) -> bool {
        self.bytes_left == 0 || tokio::time::Instant::now() >= self.until
    }
}

/// The server refused the credentials: trying again at once would only be refused again.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct LoginRefused(String);

struct Account {
    settings: MailboxSettings,
    credentials: MailboxCredentials,
    tls: Option<TlsConnector>,
}

pub struct ImapInbox {
    accounts: Vec<Account>,
    limits: ImapLimits,
}

fn tls_connector(settings: &MailboxSettings) -> anyhow::Result<TlsConnector> {
    let mut roots = RootCertStore::empty();
    // A certificate rustls cannot use is skipped, as browsers do.
    roots.add_parsable_certificates(trusted_roots(settings.ca_pem.as_deref(), &format!("mailbox '{}'", settings.label()))?);
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
                let credentials = MailboxCredentials::for_mailbox(&settings)?;
                Ok(Account { settings, credentials, tls })
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
        bounds: ReadBounds,
    ) -> Vec<FolderRead> {
        let mut last_error = anyhow!("not tried");
        for attempt in 0..self.limits.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.limits.retry_delay * 2u32.pow(attempt - 1)).await;
            }
            let session = tokio::time::timeout(self.limits.session_timeout, self.read_account_once(account, cursors, since, bounds));
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
        bounds: ReadBounds,
    ) -> anyhow::Result<Vec<FolderRead>> {
        let settings = &account.settings;
        let budget = Budget { bounds, bytes_left: bounds.max_batch_bytes, until: tokio::time::Instant::now() + self.limits.fetch_budget };
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
                read_session(async_imap::Client::new(stream), account, cursors, since, budget).await
            }
            None => read_session(async_imap::Client::new(tcp), account, cursors, since, budget).await,
        }
    }
}

async fn read_session<T>(
    mut client: async_imap::Client<T>,
    account: &Account,
    cursors: &HashMap<String, MailboxCursor>,
    since: NaiveDate,
    mut budget: Budget,
) -> anyhow::Result<Vec<FolderRead>>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    client.read_response().await.context("reading the greeting")?.context("the server closed the connection before greeting")?;
    let settings = &account.settings;
    let refused = |error: async_imap::error::Error| anyhow!(LoginRefused(format!("login as {} failed: {error}", settings.username)));
    let mut session = match &account.credentials {
        MailboxCredentials::Password(password) => {
            client.login(&settings.username, password.expose_secret()).await.map_err(|(error, _)| refused(error))?
        }
        MailboxCredentials::OAuth2(tokens) => {
            let token = tokens.access_token().await.map_err(|e| match e {
                TokenError::Refused(_) => anyhow!(LoginRefused(e.to_string())),
                TokenError::Unavailable(_) => anyhow!(e),
            })?;
            let answer = xoauth2_response(&settings.username, &token);
            match client.authenticate("XOAUTH2", XOAuth2(Some(answer))).await {
                Ok(session) => session,
                Err((error, _)) => {
                    // A token revoked before it expired: the next run fetches a new one.
                    tokens.forget().await;
                    return Err(refused(error));
                }
            }
        }
    };
    let own_mail = own_mail_folders(&mut session).await?;
    let mut reads = Vec::new();
    for folder in &settings.folders {
        let key = settings.folder_key(folder);
        if own_mail.contains(&folder.to_ascii_lowercase()) {
            reads
                .push(FolderRead { folder: key, result: Err(anyhow!("'{folder}' is the team's Sent or Drafts folder and is never read")) });
            continue;
        }
        let result = match read_folder(&mut session, folder, &key, cursors.get(&key), since, &mut budget).await {
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

/// Answers the XOAUTH2 challenge once; a second challenge (the server's error report) gets an
/// empty answer, after which the server refuses.
struct XOAuth2(Option<String>);

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        self.0.take().unwrap_or_default()
    }
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

/// The folder's next messages within the session's budget: their sizes first, then each one's
/// first `max_message_bytes` (a partial fetch) in chunks, stopping once the bytes or the time
/// are spent. Messages are fetched in UID order, so what was fetched is always a prefix.
async fn read_folder<T>(
    session: &mut async_imap::Session<T>,
    folder: &str,
    key: &str,
    cursor: Option<&MailboxCursor>,
    since: NaiveDate,
    budget: &mut Budget,
) -> async_imap::error::Result<FolderBatch>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    // EXAMINE opens the folder read-only: not even the \Recent flags change.
    let mailbox = session.examine(folder).await?;
    let uid_validity = mailbox.uid_validity.unwrap_or(0);
    let mut batch = FolderBatch { uid_validity, ..FolderBatch::default() };
    let after = cursor.filter(|c| c.uid_validity == uid_validity).map(|c| c.last_uid);
    let query = match after {
        Some(last_uid) => format!("UID {}:*", last_uid + 1),
        None => format!("SINCE {}", since.format("%d-%b-%Y")),
    };
    let mut uids: Vec<u32> = session.uid_search(&query).await?.into_iter().filter(|uid| *uid > after.unwrap_or(0)).collect();
    uids.sort_unstable();
    batch.more_waiting = uids.len() > budget.bounds.max_messages;
    uids.truncate(budget.bounds.max_messages);
    if uids.is_empty() || budget.spent() {
        batch.more_waiting |= !uids.is_empty();
        return Ok(batch);
    }
    let sizes = message_sizes(session, &uids).await?;
    let cap = budget.bounds.max_message_bytes;
    // The messages whose fetched part fits what is left of the bytes; the first always does, so
    // a run always moves on.
    let mut planned = Vec::new();
    for uid in uids {
        let take = sizes.get(&uid).map_or(cap, |size| (*size as usize).min(cap));
        if !planned.is_empty() && take > budget.bytes_left {
            batch.more_waiting = true;
            break;
        }
        budget.bytes_left = budget.bytes_left.saturating_sub(take);
        planned.push(uid);
    }
    for chunk in planned.chunks(FETCH_CHUNK) {
        if !batch.messages.is_empty() && tokio::time::Instant::now() >= budget.until {
            batch.more_waiting = true;
            break;
        }
        let fetches: Vec<_> = session.uid_fetch(uid_set(chunk), format!("(UID BODY.PEEK[]<0.{cap}>)")).await?.try_collect().await?;
        let mut messages: Vec<InboundMessage> = fetches
            .iter()
            .filter_map(|fetch| Some(InboundMessage { folder: key.to_string(), uid: fetch.uid?, raw: fetch.body()?.to_vec() }))
            .collect();
        messages.sort_by_key(|m| m.uid);
        messages.dedup_by_key(|m| m.uid);
        for message in &messages {
            batch.bytes += message.raw.len() as u64;
            batch.cut_short += u32::from(sizes.get(&message.uid).is_some_and(|size| *size as usize > cap));
        }
        batch.messages.extend(messages);
    }
    Ok(batch)
}

/// UIDs as an IMAP sequence set ("4,7,9").
fn uid_set(uids: &[u32]) -> String {
    uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// Each message's size (RFC822.SIZE), fetched before any body.
async fn message_sizes<T>(session: &mut async_imap::Session<T>, uids: &[u32]) -> async_imap::error::Result<HashMap<u32, u32>>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let mut sizes = HashMap::new();
    for chunk in uids.chunks(500) {
        let fetches: Vec<_> = session.uid_fetch(uid_set(chunk), "(UID RFC822.SIZE)").await?.try_collect().await?;
        sizes.extend(fetches.iter().filter_map(|fetch| Some((fetch.uid?, fetch.size?))));
    }
    Ok(sizes)
}

/// A mailbox's own addresses: its configured address and a login name that is one.
fn account_addresses(settings: &MailboxSettings) -> Vec<String> {
    settings
        .address
        .iter()
        .chain(std::iter::once(&settings.username))
        .filter(|address| address.contains('@'))
        .map(|address| address.to_ascii_lowercase())
        .collect()
}

#[async_trait]
impl Inbox for ImapInbox {
    fn folders(&self) -> Vec<String> {
        self.accounts.iter().flat_map(|a| a.settings.folders.iter().map(|f| a.settings.folder_key(f))).collect()
    }

    fn own_addresses(&self) -> Vec<String> {
        self.accounts.iter().flat_map(|a| account_addresses(&a.settings)).collect()
    }

    fn watched_folders(&self) -> Vec<WatchedFolder> {
        self.accounts
            .iter()
            .flat_map(|a| {
                let addresses = account_addresses(&a.settings);
                a.settings.folders.iter().map(move |f| WatchedFolder { folder: a.settings.folder_key(f), addresses: addresses.clone() })
            })
            .collect()
    }

    async fn read_new(&self, cursors: &HashMap<String, MailboxCursor>, since: NaiveDate, bounds: ReadBounds) -> Vec<FolderRead> {
        let reads = futures::future::join_all(self.accounts.iter().map(|account| self.read_account(account, cursors, since, bounds))).await;
        reads.into_iter().flatten().collect()
    }
}
