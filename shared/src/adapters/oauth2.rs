//! Access tokens for XOAUTH2 (Google Workspace, Microsoft 365): obtained from the mailbox's
//! refresh token and the app's client credentials, cached, and refreshed a few minutes before
//! they expire, so a warm function signs in without a round trip to the token endpoint.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::mailbox_settings::{MailboxSettings, OAuth2Settings};

/// A token is refreshed when less than this is left of its life.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The endpoint refused the refresh token or the client (revoked, expired, wrong secret):
    /// a person must fix the settings.
    #[error("the token endpoint refused the mailbox's credentials: {0}")]
    Refused(String),
    /// The endpoint could not be reached or answered with a server error: try later.
    #[error("no access token could be obtained for now: {0}")]
    Unavailable(String),
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenRefusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

struct Cached {
    token: SecretString,
    refresh_after: Instant,
}

pub struct OAuth2Tokens {
    settings: OAuth2Settings,
    http: reqwest::Client,
    cached: Mutex<Option<Cached>>,
}

impl OAuth2Tokens {
    pub fn new(settings: OAuth2Settings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Self { settings, http, cached: Mutex::new(None) })
    }

    /// A valid access token, from the cache while it has more than a few minutes left.
    pub async fn access_token(&self) -> Result<SecretString, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(entry) = cached.as_ref().filter(|c| Instant::now() < c.refresh_after) {
            return Ok(entry.token.clone());
        }
        let answer = self.refresh().await?;
        let life = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let refresh_after = Instant::now() + life.saturating_sub(REFRESH_MARGIN);
        *cached = Some(Cached { token: answer.access_token.clone(), refresh_after });
        Ok(answer.access_token)
    }

    /// Forgets the cached token, after a server refused it (revoked before it expired).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn refresh(&self) -> Result<TokenAnswer, TokenError> {
        let settings = &self.settings;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", settings.refresh_token.expose_secret().to_string()),
            ("client_id", settings.client_id.clone()),
        ];
        if let Some(secret) = &settings.client_secret {
            form.push(("client_secret", secret.expose_secret().to_string()));
        }
        if let Some(scope) = settings.scope() {
            form.push(("scope", scope));
        }
        let response = self
            .http
            .post(settings.token_url())
            .form(&form)
            .send()
            .await
            .map_err(|e| TokenError::Unavailable(format!("the token endpoint could not be reached: {e}")))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| TokenError::Unavailable(format!("the token answer was cut off: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|_| TokenError::Unavailable("the token answer is not a token".into()));
        }
        // The refusal's own words name the problem (invalid_grant: the refresh token is revoked
        // or expired); they never contain a secret.
        let refusal: Option<TokenRefusal> = serde_json::from_slice(&body).ok();
        let why = refusal.map_or_else(
            || format!("HTTP {status}"),
            |r| format!("HTTP {status} {}{}", r.error, r.error_description.map(|d| format!(": {d}")).unwrap_or_default()),
        );
        if status.is_server_error() || status.as_u16() == 429 { Err(TokenError::Unavailable(why)) } else { Err(TokenError::Refused(why)) }
    }
}

/// How a mailbox signs in to IMAP and SMTP.
#[derive(Clone)]
pub enum MailboxCredentials {
    Password(SecretString),
    OAuth2(std::sync::Arc<OAuth2Tokens>),
}

impl MailboxCredentials {
    pub fn for_mailbox(settings: &MailboxSettings) -> anyhow::Result<Self> {
        match (&settings.password, &settings.oauth2) {
            (_, Some(oauth2)) => Ok(Self::OAuth2(std::sync::Arc::new(OAuth2Tokens::new(oauth2.clone())?))),
            (Some(password), None) => Ok(Self::Password(password.clone())),
            (None, None) => anyhow::bail!("mailbox '{}' has neither a password nor oauth2", settings.label()),
        }
    }
}

/// The XOAUTH2 initial response (before base64): `user=…^Aauth=Bearer …^A^A`.
pub fn xoauth2_response(user: &str, token: &SecretString) -> String {
    format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose_secret())
}
