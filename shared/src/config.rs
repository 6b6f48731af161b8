//! Settings, read once at start-up from the environment over sensible defaults. Secrets are
//! held as `SecretString` and never printed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// How research reaches the web.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResearchMode {
    /// Fetch the company's site; degrade to the lead record when it cannot be reached.
    Web,
    /// Draft from the lead record only.
    Off,
}

/// Where state, queues and mail live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file, a local outbox: the local mode.
    Embedded,
    /// DynamoDB, SQS, SES and Secrets Manager: the deployed stack.
    Aws,
}

/// The AWS resources the deployed functions use, named by template.yaml's environment.
#[derive(Clone, Debug)]
pub struct AwsResources {
    pub table: Option<String>,
    pub research_queue_url: Option<String>,
    pub draft_queue_url: Option<String>,
    pub send_queue_url: Option<String>,
    pub secret_id: Option<String>,
    pub ses_configuration_set: Option<String>,
    /// How many send functions run at once; they share the SES account's maximum send rate.
    pub send_concurrency: u32,
    /// The SES account's maximum send rate per second, when not read from SES itself.
    pub ses_max_send_rate: Option<f64>,
}

impl Default for AwsResources {
    fn default() -> Self {
        Self {
            table: None,
            research_queue_url: None,
            draft_queue_url: None,
            send_queue_url: None,
            secret_id: None,
            ses_configuration_set: None,
            send_concurrency: 2,
            ses_max_send_rate: None,
        }
    }
}

/// How recipients' and senders' domains are looked up in DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsChecks {
    /// No lookups: every domain is taken to accept mail (nothing real is sent).
    Off,
    /// The system's resolver.
    System,
    /// These name servers only.
    Servers(Vec<SocketAddr>),
}

/// `SALES_AGENT_DNS`: `off`, `system`, or name servers as `ip:port,…`; `None` when unset (then
/// the checks are on whenever real email is sent: deployed, or with a sending mailbox).
pub fn dns_checks_from(raw: Option<&str>) -> Result<Option<DnsChecks>, ConfigError> {
    let error = |why: String| ConfigError { name: "SALES_AGENT_DNS", why };
    Ok(match raw {
        None => None,
        Some("off") => Some(DnsChecks::Off),
        Some("system") => Some(DnsChecks::System),
        Some(list) => Some(DnsChecks::Servers(
            list.split(',')
                .map(|s| s.trim().parse::<SocketAddr>().map_err(|_| error(format!("'{s}' is not off, system or an ip:port list"))))
                .collect::<Result<_, _>>()?,
        )),
    })
}

/// Which web search research uses besides the company's own site.
#[derive(Clone, Debug)]
pub enum SearchMode {
    Off,
    /// DuckDuckGo's HTML results; no key needed.
    DuckDuckGo {
        base_url: String,
    },
    /// Google results through serper.dev.
    Serper {
        base_url: String,
        api_key: SecretString,
    },
}

/// The search mode from `SALES_AGENT_SEARCH` (auto, serper, duckduckgo, off) and a Serper key.
pub fn search_from_env(serper_key: Option<SecretString>) -> Result<SearchMode, ConfigError> {
    let serper_url = var("SALES_AGENT_SERPER_URL").unwrap_or_else(|| "https://google.serper.dev".into());
    let duckduckgo =
        SearchMode::DuckDuckGo { base_url: var("SALES_AGENT_DUCKDUCKGO_URL").unwrap_or_else(|| "https://html.duckduckgo.com".into()) };
    Ok(match (var("SALES_AGENT_SEARCH").as_deref(), serper_key) {
        (Some("off"), _) => SearchMode::Off,
        (Some("duckduckgo"), _) => duckduckgo,
        (None | Some("auto") | Some("serper"), Some(api_key)) => SearchMode::Serper { base_url: serper_url, api_key },
        (Some("serper"), None) => return Err(ConfigError { name: "SALES_AGENT_SEARCH", why: "'serper' needs SERPER_API_KEY".into() }),
        (None | Some("auto"), None) => duckduckgo,
        (Some(other), _) => {
            return Err(ConfigError { name: "SALES_AGENT_SEARCH", why: format!("'{other}' is not auto, serper, duckduckgo or off") });
        }
    })
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// Web search used by research besides the company's site.
    pub search: SearchMode,
    pub backend: Backend,
    /// An OpenAI-compatible model to draft with; without one the agent's templates are used.
    pub llm: Option<crate::adapters::llm_drafter::LlmSettings>,
    /// Apollo people search for lead-source starts; without it such starts are refused.
    pub apollo: Option<crate::adapters::apollo::ApolloSettings>,
    /// Whether API routes require `Authorization: Bearer <key>`.
    pub auth_required: bool,
    pub aws: AwsResources,
    /// Where the embedded database, the outbox and the local inbox live.
    pub data_dir: PathBuf,
    /// The address the local server listens on.
    pub bind: SocketAddr,
    /// The public base URL of the API, used in unsubscribe links.
    pub public_base_url: String,
    /// The key that signs unsubscribe tokens. Locally a random key is created in the data
    /// folder when none is configured.
    pub unsubscribe_secret: Option<SecretString>,
    pub research: ResearchMode,
    /// `{domain}` is replaced by the company domain.
    pub research_url_pattern: String,
    pub research_timeout: Duration,
    /// Addresses research may read although they are not public, as exact `ip:port` pairs (an
    /// intranet site, the local demo's sample sites). Everything else must be public.
    pub research_exceptions: Vec<SocketAddr>,
    /// How often the local scheduler polls the inbox and enqueues due follow-ups.
    pub scheduler_interval: Duration,
    /// Largest request body the API accepts.
    pub max_body_bytes: usize,
    /// Most leads one execution may start with.
    pub max_leads_per_execution: usize,
    /// The step queues' redrive `maxReceiveCount`: the attempt after which a lead is failed.
    pub max_receive_count: u32,
    /// IMAP mailboxes the reply poller reads (`SALES_AGENT_MAILBOXES`, or the secret's
    /// `mailboxes` when deployed). Without any, the embedded backend reads a local Maildir.
    pub mailboxes: Vec<crate::adapters::imap_inbox::MailboxSettings>,
    /// How much one run reads of the mailboxes (`SALES_AGENT_REPLY_BATCH` messages per folder,
    /// `SALES_AGENT_REPLY_MESSAGE_BYTES` of each, `SALES_AGENT_REPLY_BATCH_BYTES` per mailbox),
    /// so one run fits the function's memory and time.
    pub reply_bounds: crate::ports::ReadBounds,
    /// How old the last complete read of an agent's mailboxes may be before its due follow-ups
    /// wait (`SALES_AGENT_REPLY_FRESHNESS_SECS`; default two polls): a lead's answer may be
    /// sitting unread. Zero switches the rule off: follow-ups never wait for a read.
    pub reply_freshness: Duration,
    /// How far back a folder read for the first time (or after its UIDVALIDITY changed) is searched.
    pub reply_lookback_days: u32,
    /// Mail-domain checks in DNS; `None`: on whenever real email is sent.
    pub dns: Option<DnsChecks>,
}

impl Settings {
    /// The DNS checks in force: as configured, else on when email really leaves (deployed, or
    /// through a sending mailbox) and off for the local outbox.
    pub fn dns_checks(&self) -> DnsChecks {
        match &self.dns {
            Some(checks) => checks.clone(),
            None if self.backend == Backend::Aws || self.mailboxes.iter().any(|m| m.smtp.is_some()) => DnsChecks::System,
            None => DnsChecks::Off,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{name} is invalid: {why}")]
pub struct ConfigError {
    pub name: &'static str,
    pub why: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError { name, why: format!("'{raw}': {e}") }),
        None => Ok(default),
    }
}

/// The model settings, when a key (or an explicit base URL, for servers without keys such as
/// Ollama) says an LLM is to be used. The deployed functions pass the key from the secret.
pub fn llm_from_env(api_key: Option<SecretString>) -> Result<Option<crate::adapters::llm_drafter::LlmSettings>, ConfigError> {
    let base_url = var("SALES_AGENT_LLM_BASE_URL");
    if api_key.is_none() && base_url.is_none() {
        return Ok(None);
    }
    Ok(Some(crate::adapters::llm_drafter::LlmSettings {
        base_url: base_url.unwrap_or_else(|| "https://api.openai.com/v1".into()),
        api_key: api_key.unwrap_or_else(|| SecretString::from("none")),
        model: var("SALES_AGENT_LLM_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
        temperature: parsed("SALES_AGENT_LLM_TEMPERATURE", 0.4)?,
        timeout: Duration::from_secs(parsed("SALES_AGENT_LLM_TIMEOUT_SECS", 30)?),
        max_attempts: parsed("SALES_AGENT_LLM_ATTEMPTS", 3)?,
    }))
}

/// Apollo settings when there is a key (from the environment locally, the secret deployed).
pub fn apollo_from_env(api_key: Option<SecretString>) -> Option<crate::adapters::apollo::ApolloSettings> {
    Some(crate::adapters::apollo::ApolloSettings {
        base_url: var("SALES_AGENT_APOLLO_BASE_URL").unwrap_or_else(|| "https://api.apollo.io/api/v1".into()),
        api_key: api_key?,
        timeout: Duration::from_secs(20),
    })
}

/// Whether `/api/v1` asks for an API key. Deployed APIs are on the internet; the local server
/// listens on loopback by default, and asks for keys as soon as it listens anywhere else (where
/// turning them off is refused: anyone who reaches it could drive campaigns).
pub fn auth_required(setting: Option<&str>, backend: Backend, bind: SocketAddr) -> Result<bool, ConfigError> {
    let exposed = backend == Backend::Embedded && !bind.ip().is_loopback();
    match setting {
        Some("required") => Ok(true),
        Some("off") if exposed => Err(ConfigError {
            name: "SALES_AGENT_AUTH",
            why: format!("'off' is refused while SALES_AGENT_BIND ({bind}) is not a loopback address; use API keys"),
        }),
        Some("off") => Ok(false),
        None => Ok(backend == Backend::Aws || exposed),
        Some(other) => Err(ConfigError { name: "SALES_AGENT_AUTH", why: format!("'{other}' is neither 'required' nor 'off'") }),
    }
}

/// The mailboxes from `SALES_AGENT_MAILBOXES` (a JSON list) or the file
/// `SALES_AGENT_MAILBOXES_FILE` names, which keeps passwords out of the shell's history.
fn mailboxes_from_env() -> Result<Vec<crate::adapters::imap_inbox::MailboxSettings>, ConfigError> {
    let (name, json) = match (var("SALES_AGENT_MAILBOXES"), var("SALES_AGENT_MAILBOXES_FILE")) {
        (Some(json), None) => ("SALES_AGENT_MAILBOXES", json),
        (None, Some(path)) => {
            let json = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError { name: "SALES_AGENT_MAILBOXES_FILE", why: format!("'{path}' cannot be read: {e}") })?;
            ("SALES_AGENT_MAILBOXES_FILE", json)
        }
        (None, None) => return Ok(Vec::new()),
        (Some(_), Some(_)) => {
            return Err(ConfigError { name: "SALES_AGENT_MAILBOXES", why: "set it or SALES_AGENT_MAILBOXES_FILE, not both".into() });
        }
    };
    crate::adapters::imap_inbox::parse_mailboxes(&json).map_err(|why| ConfigError { name, why })
}

/// Next to the user locally; in Lambda only /tmp is writable.
fn default_data_dir() -> PathBuf {
    if crate::telemetry::running_in_lambda() { PathBuf::from("/tmp/sales-agent-data") } else { PathBuf::from("sales-agent-data") }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let bind: SocketAddr = parsed("SALES_AGENT_BIND", SocketAddr::from(([127, 0, 0, 1], 3000)))?;
        let scheduler_interval_secs: u64 = parsed("SALES_AGENT_SCHEDULER_INTERVAL_SECS", 60)?;
        let aws = AwsResources {
            table: var("SALES_AGENT_TABLE"),
            research_queue_url: var("SALES_AGENT_RESEARCH_QUEUE_URL"),
            draft_queue_url: var("SALES_AGENT_DRAFT_QUEUE_URL"),
            send_queue_url: var("SALES_AGENT_SEND_QUEUE_URL"),
            secret_id: var("SALES_AGENT_SECRET_ARN"),
            ses_configuration_set: var("SALES_AGENT_SES_CONFIGURATION_SET"),
            send_concurrency: parsed("SALES_AGENT_SEND_CONCURRENCY", 2)?,
            ses_max_send_rate: var("SALES_AGENT_SES_MAX_SEND_RATE")
                .map(|raw| {
                    raw.parse().map_err(|_| ConfigError { name: "SALES_AGENT_SES_MAX_SEND_RATE", why: format!("'{raw}' is not a number") })
                })
                .transpose()?,
        };
        // A table name means a deployed stack unless the backend is named explicitly.
        let backend = match var("SALES_AGENT_BACKEND").as_deref() {
            Some("embedded") => Backend::Embedded,
            Some("aws") => Backend::Aws,
            None if aws.table.is_some() => Backend::Aws,
            None => Backend::Embedded,
            Some(other) => {
                return Err(ConfigError { name: "SALES_AGENT_BACKEND", why: format!("'{other}' is neither 'embedded' nor 'aws'") });
            }
        };
        let auth_required = auth_required(var("SALES_AGENT_AUTH").as_deref(), backend, bind)?;
        let research = match var("SALES_AGENT_RESEARCH").as_deref() {
            None | Some("web") => ResearchMode::Web,
            Some("off") => ResearchMode::Off,
            Some(other) => return Err(ConfigError { name: "SALES_AGENT_RESEARCH", why: format!("'{other}' is neither 'web' nor 'off'") }),
        };
        Ok(Self {
            search: search_from_env(var("SERPER_API_KEY").map(SecretString::from))?,
            backend,
            llm: llm_from_env(var("SALES_AGENT_LLM_API_KEY").or_else(|| var("OPENAI_API_KEY")).map(SecretString::from))?,
            apollo: apollo_from_env(var("APOLLO_API_KEY").map(SecretString::from)),
            auth_required,
            aws,
            data_dir: var("SALES_AGENT_DATA_DIR").map(PathBuf::from).unwrap_or_else(default_data_dir),
            public_base_url: var("SALES_AGENT_PUBLIC_URL").unwrap_or_else(|| format!("http://{bind}")),
            bind,
            unsubscribe_secret: var("SALES_AGENT_UNSUBSCRIBE_SECRET").map(SecretString::from),
            research,
            research_url_pattern: var("SALES_AGENT_RESEARCH_URL").unwrap_or_else(|| "https://{domain}/".into()),
            research_timeout: Duration::from_secs(parsed("SALES_AGENT_RESEARCH_TIMEOUT_SECS", 8)?),
            research_exceptions: match var("SALES_AGENT_RESEARCH_ALLOW") {
                None => Vec::new(),
                Some(list) => list.split(',').map(|s| s.trim().parse::<SocketAddr>()).collect::<Result<_, _>>().map_err(|_| {
                    ConfigError { name: "SALES_AGENT_RESEARCH_ALLOW", why: format!("'{list}' is not a list of ip:port pairs") }
                })?,
            },
            scheduler_interval: Duration::from_secs(scheduler_interval_secs),
            max_body_bytes: parsed("SALES_AGENT_MAX_BODY_BYTES", 6 * 1024 * 1024)?,
            max_leads_per_execution: parsed("SALES_AGENT_MAX_LEADS", 10_000)?,
            max_receive_count: parsed("SALES_AGENT_MAX_RECEIVE_COUNT", 5)?,
            mailboxes: mailboxes_from_env()?,
            reply_bounds: crate::ports::ReadBounds {
                max_messages: parsed("SALES_AGENT_REPLY_BATCH", 200)?,
                max_message_bytes: parsed("SALES_AGENT_REPLY_MESSAGE_BYTES", crate::ports::ReadBounds::default().max_message_bytes)?,
                max_batch_bytes: parsed("SALES_AGENT_REPLY_BATCH_BYTES", crate::ports::ReadBounds::default().max_batch_bytes)?,
            },
            reply_freshness: Duration::from_secs(parsed("SALES_AGENT_REPLY_FRESHNESS_SECS", 2 * scheduler_interval_secs)?),
            reply_lookback_days: parsed("SALES_AGENT_REPLY_LOOKBACK_DAYS", 30)?,
            dns: dns_checks_from(var("SALES_AGENT_DNS").as_deref())?,
        })
    }

    /// Defaults for a data folder, as a test or the demo would use them.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            search: SearchMode::Off,
            backend: Backend::Embedded,
            llm: None,
            apollo: None,
            auth_required: false,
            aws: AwsResources::default(),
            data_dir: data_dir.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 3000)),
            public_base_url: "http://127.0.0.1:3000".into(),
            unsubscribe_secret: None,
            research: ResearchMode::Off,
            research_url_pattern: "https://{domain}/".into(),
            research_timeout: Duration::from_secs(8),
            research_exceptions: Vec::new(),
            scheduler_interval: Duration::from_secs(60),
            max_body_bytes: 6 * 1024 * 1024,
            max_leads_per_execution: 10_000,
            max_receive_count: 5,
            mailboxes: Vec::new(),
            reply_bounds: crate::ports::ReadBounds::default(),
            reply_freshness: Duration::from_secs(120),
            reply_lookback_days: 30,
            // Tests never ask a resolver beyond this machine; they name their own servers.
            dns: Some(DnsChecks::Off),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_server_on_another_address_than_loopback_requires_api_keys() {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 3000));
        let everywhere = SocketAddr::from(([0, 0, 0, 0], 3000));
        assert!(!auth_required(None, Backend::Embedded, loopback).unwrap());
        assert!(auth_required(None, Backend::Embedded, everywhere).unwrap(), "keys are required by default");
        let refused = auth_required(Some("off"), Backend::Embedded, everywhere).unwrap_err();
        assert_eq!(refused.name, "SALES_AGENT_AUTH");
        assert!(auth_required(None, Backend::Aws, loopback).unwrap());
        assert!(!auth_required(Some("off"), Backend::Embedded, loopback).unwrap());
    }
}
