//! The one JSON secret that holds API keys, mailbox credentials and the unsubscribe signing key.
//! It is read once per cold start. A key that is missing switches its feature off with a clear
//! log line; it never stops the function. The unsubscribe signing key is read again while it is
//! missing, so a secret fixed after deployment takes effect without a cold start.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use secrecy::SecretString;
use serde::Deserialize;

use crate::adapters::imap_inbox::MailboxSettings;
use crate::domain::unsubscribe::UnsubscribeSigner;
use crate::ports::UnsubscribeKeys;

/// The secret's JSON document (see README: "The secret").
#[derive(Clone, Default, Deserialize)]
pub struct AgentSecrets {
    #[serde(default)]
    pub openai_api_key: Option<SecretString>,
    #[serde(default)]
    pub apollo_api_key: Option<SecretString>,
    #[serde(default)]
    pub search_api_key: Option<SecretString>,
    #[serde(default)]
    pub unsubscribe_signing_key: Option<SecretString>,
    /// IMAP mailboxes the reply poller reads; see `MailboxSettings` for the fields.
    #[serde(default)]
    pub mailboxes: Vec<MailboxSettings>,
}

impl std::fmt::Debug for AgentSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSecrets").field("features", &self.features()).finish()
    }
}

fn present(key: &Option<SecretString>) -> bool {
    use secrecy::ExposeSecret;
    key.as_ref().is_some_and(|k| !k.expose_secret().trim().is_empty())
}

impl AgentSecrets {
    /// Reads and parses the secret. Errors name the secret, never its content.
    pub async fn load(client: &Client, secret_id: &str) -> anyhow::Result<Self> {
        let output =
            client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| {
                anyhow::anyhow!("reading the secret {secret_id}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e))
            })?;
        let text = output.secret_string.ok_or_else(|| anyhow::anyhow!("the secret {secret_id} has no string value"))?;
        let secrets: AgentSecrets = serde_json::from_str(&text).map_err(|e| {
            // serde's message may quote part of the document; only its position is safe to log.
            anyhow::anyhow!("the secret {secret_id} is not the expected JSON (line {}, column {})", e.line(), e.column())
        })?;
        secrets.log_features();
        Ok(secrets)
    }

    /// Which optional features these secrets switch on.
    pub fn features(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("llm drafting (openai_api_key)", present(&self.openai_api_key)),
            ("apollo lead search (apollo_api_key)", present(&self.apollo_api_key)),
            ("web search (search_api_key)", present(&self.search_api_key)),
            ("unsubscribe links (unsubscribe_signing_key)", present(&self.unsubscribe_signing_key)),
            ("reply reading (mailboxes)", !self.mailboxes.is_empty()),
        ]
    }

    fn log_features(&self) {
        for (feature, on) in self.features() {
            if on {
                tracing::info!(feature, "switched on");
            } else {
                tracing::warn!(feature, "switched off: the secret has no value for it");
            }
        }
    }

    pub fn unsubscribe_key(&self) -> Option<SecretString> {
        self.unsubscribe_signing_key.clone().filter(|_| present(&self.unsubscribe_signing_key))
    }
}

/// How often a missing signing key is looked for again.
const SIGNING_KEY_RETRY: Duration = Duration::from_secs(30);

/// The unsubscribe signing key from the secret: kept once read, looked for again (at most every
/// `SIGNING_KEY_RETRY`) while it is missing or the secret cannot be read.
pub struct SecretUnsubscribeKeys {
    client: Client,
    secret_id: Option<String>,
    retry_after: Duration,
    state: Mutex<KeyState>,
}

struct KeyState {
    signer: Option<UnsubscribeSigner>,
    last_attempt: Option<Instant>,
}

impl SecretUnsubscribeKeys {
    /// `loaded` is what the cold start read, if anything.
    pub fn new(client: Client, secret_id: Option<String>, loaded: Option<SecretString>) -> Self {
        let signer = loaded.map(UnsubscribeSigner::new);
        let last_attempt = Some(Instant::now());
        Self { client, secret_id, retry_after: SIGNING_KEY_RETRY, state: Mutex::new(KeyState { signer, last_attempt }) }
    }

    /// Looks for a missing key again after `retry_after` instead of the default 30 s.
    pub fn retrying_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }
}

#[async_trait]
impl UnsubscribeKeys for SecretUnsubscribeKeys {
    async fn signer(&self) -> Option<UnsubscribeSigner> {
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.signer.is_some() {
                return state.signer.clone();
            }
            if state.last_attempt.is_some_and(|at| at.elapsed() < self.retry_after) {
                return None;
            }
            state.last_attempt = Some(Instant::now());
        }
        let secret_id = self.secret_id.as_deref()?;
        let key = match AgentSecrets::load(&self.client, secret_id).await {
            Ok(secrets) => secrets.unsubscribe_key(),
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "the unsubscribe signing key could not be read");
                None
            }
        };
        let signer = key.map(UnsubscribeSigner::new);
        self.state.lock().unwrap_or_else(|p| p.into_inner()).signer.clone_from(&signer);
        signer
    }
}
