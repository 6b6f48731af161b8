//! The team's mailboxes as the secret (deployed) or `SALES_AGENT_MAILBOXES` /
//! `SALES_AGENT_MAILBOXES_FILE` (local) describe them: where the reply poller reads (IMAP), how
//! the mailbox sends (SMTP), how it signs in (a password or OAuth2), and the pace it keeps.
//! Credentials live only here, never in the table or the logs.

use std::net::IpAddr;

use chrono::Duration;
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::{EmailAddress, MailboxPace, TimeZoneName};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImapSecurity {
    /// Implicit TLS (port 993).
    #[default]
    Tls,
    /// No encryption: only for a server on loopback, such as a local test server or a bridge.
    Plain,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS before signing in (port 587); refused if the
    /// server does not offer it.
    #[default]
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
    /// No encryption: only for a server on loopback.
    Plain,
}

/// How the mailbox sends.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    /// 587 with STARTTLS, 465 with TLS, 25 without, unless given.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    /// The SMTP username when it is not the IMAP one.
    #[serde(default)]
    pub username: Option<String>,
}

impl SmtpSettings {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Plain => 25,
        })
    }
}

/// Whose token endpoint an OAuth2 mailbox uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuth2Provider {
    Google,
    Microsoft,
    /// Any other endpoint, given as `token_url`.
    Other,
}

/// Signing in with XOAUTH2: an access token obtained from a refresh token and the app's client
/// credentials, refreshed before it expires.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Settings {
    pub provider: OAuth2Provider,
    /// The token endpoint; Google's and Microsoft's are known.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Microsoft's directory (tenant) id; `organizations` when absent.
    #[serde(default)]
    pub tenant: Option<String>,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    pub refresh_token: SecretString,
    /// The scopes asked for; Microsoft needs them (its SMTP and IMAP scopes by default).
    #[serde(default)]
    pub scope: Option<String>,
}

impl OAuth2Settings {
    pub fn token_url(&self) -> String {
        match (&self.token_url, self.provider) {
            (Some(url), _) => url.clone(),
            (None, OAuth2Provider::Google) => "https://oauth2.googleapis.com/token".into(),
            (None, OAuth2Provider::Microsoft) => {
                format!("https://login.microsoftonline.com/{}/oauth2/v2.0/token", self.tenant.as_deref().unwrap_or("organizations"))
            }
            (None, OAuth2Provider::Other) => String::new(),
        }
    }

    pub fn scope(&self) -> Option<String> {
        self.scope.clone().or_else(|| {
            (self.provider == OAuth2Provider::Microsoft)
                .then(|| "https://outlook.office.com/SMTP.Send https://outlook.office.com/IMAP.AccessAsUser.All offline_access".to_string())
        })
    }
}

/// A mailbox sends at most this many emails a day unless told otherwise: a conservative figure
/// for a warmed-up Google Workspace or Microsoft 365 mailbox doing cold outreach.
const DEFAULT_DAILY_CAP: u32 = 50;
const DEFAULT_MIN_GAP_SECONDS: u32 = 120;
const DEFAULT_GAP_JITTER_SECONDS: u32 = 60;

/// One mailbox of the team.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSettings {
    /// A short name for logs and cursors; the username when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The IMAP server the reply poller reads.
    pub host: String,
    /// 993 with TLS, 143 without, unless given.
    #[serde(default)]
    pub port: Option<u16>,
    pub username: String,
    /// The password (an app password for Google); absent when `oauth2` signs in.
    #[serde(default)]
    pub password: Option<SecretString>,
    #[serde(default)]
    pub oauth2: Option<OAuth2Settings>,
    #[serde(default)]
    pub security: ImapSecurity,
    /// The folders to read; INBOX when absent. Sent and Drafts are refused.
    #[serde(default = "default_folders")]
    pub folders: Vec<String>,
    /// The address mail from this mailbox goes out as, when the username is not it.
    #[serde(default)]
    pub address: Option<String>,
    /// The name recipients see beside the address; the agent's sender name when absent.
    #[serde(default)]
    pub display_name: Option<String>,
    /// How the mailbox sends; a mailbox without it is only read.
    #[serde(default)]
    pub smtp: Option<SmtpSettings>,
    /// Emails the mailbox sends per day at most (counted in `time_zone`).
    #[serde(default = "default_daily_cap")]
    pub daily_cap: u32,
    /// Seconds between two sends of the mailbox at least…
    #[serde(default = "default_min_gap")]
    pub min_gap_seconds: u32,
    /// …plus up to this many at random.
    #[serde(default = "default_gap_jitter")]
    pub gap_jitter_seconds: u32,
    #[serde(default)]
    pub time_zone: TimeZoneName,
    /// Extra trusted CA certificates (PEM), for a server with a private certificate authority.
    #[serde(default)]
    pub ca_pem: Option<String>,
}

fn default_folders() -> Vec<String> {
    vec!["INBOX".into()]
}

fn default_daily_cap() -> u32 {
    DEFAULT_DAILY_CAP
}

fn default_min_gap() -> u32 {
    DEFAULT_MIN_GAP_SECONDS
}

fn default_gap_jitter() -> u32 {
    DEFAULT_GAP_JITTER_SECONDS
}

/// Folder names that hold the team's own mail. Servers that support RFC 6154 also flag them,
/// and flagged folders are refused whatever their name.
const OWN_MAIL_FOLDERS: &[&str] = &["sent", "sent items", "sent messages", "sent mail", "[gmail]/sent mail", "drafts", "[gmail]/drafts"];

pub(crate) fn is_loopback(host: &str) -> bool {
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

    /// The address the mailbox sends as.
    pub fn sending_address(&self) -> Option<EmailAddress> {
        EmailAddress::parse(self.address.as_deref().unwrap_or(&self.username)).ok()
    }

    /// The pace the mailbox keeps, when it sends.
    pub fn pace(&self) -> Option<MailboxPace> {
        self.smtp.as_ref()?;
        Some(MailboxPace {
            address: self.sending_address()?,
            display_name: self.display_name.clone(),
            daily_cap: self.daily_cap,
            min_gap: Duration::seconds(i64::from(self.min_gap_seconds)),
            gap_jitter: Duration::seconds(i64::from(self.gap_jitter_seconds)),
            time_zone: self.time_zone,
        })
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
        match (&self.password, &self.oauth2) {
            (None, None) => problems.push(format!("{} or {} is required", field("password"), field("oauth2"))),
            (Some(_), Some(_)) => problems.push(format!("{} and {} exclude each other", field("password"), field("oauth2"))),
            _ => {}
        }
        if let Some(oauth2) = &self.oauth2 {
            let url = oauth2.token_url();
            let host = url.strip_prefix("http://").map(|rest| rest.split(['/', ':']).next().unwrap_or_default());
            if url.is_empty() {
                problems.push(format!("{} is required for provider 'other'", field("oauth2.token_url")));
            } else if !url.starts_with("https://") && !host.is_some_and(is_loopback) {
                // The refresh token and the client secret travel in that request.
                problems.push(format!("{} must be https (plain http only to loopback)", field("oauth2.token_url")));
            }
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
        if let Some(smtp) = &self.smtp {
            if smtp.host.trim().is_empty() {
                problems.push(format!("{} is empty", field("smtp.host")));
            }
            if smtp.security == SmtpSecurity::Plain && !is_loopback(&smtp.host) {
                problems.push(format!(
                    "{}: plain text is only allowed to a loopback server, not to '{}'",
                    field("smtp.security"),
                    smtp.host
                ));
            }
            if self.sending_address().is_none() {
                problems.push(format!("{}: a sending mailbox needs an email address (or a username that is one)", field("address")));
            }
            if !(1..=crate::domain::pacing::MAX_DAILY_CAP).contains(&self.daily_cap) {
                problems.push(format!("{} must be between 1 and {}", field("daily_cap"), crate::domain::pacing::MAX_DAILY_CAP));
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
        let why = if why.contains("unknown field") || why.contains("missing field") || why.contains("IANA") {
            why
        } else {
            "has the wrong type".into()
        };
        format!("mailboxes{}: {why}", if path == "." { String::new() } else { format!(" at {path}") })
    })?;
    let problems: Vec<String> = mailboxes.iter().enumerate().flat_map(|(i, m)| m.problems(i)).collect();
    let mut addresses = std::collections::HashSet::new();
    let duplicates: Vec<String> = mailboxes
        .iter()
        .filter_map(|m| m.pace())
        .filter(|p| !addresses.insert(p.address.dedupe_key()))
        .map(|p| format!("mailbox {} is configured twice", p.address))
        .collect();
    let problems: Vec<String> = problems.into_iter().chain(duplicates).collect();
    if problems.is_empty() { Ok(mailboxes) } else { Err(problems.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_refused_beyond_loopback_and_own_folders_are_refused() {
        let json = r#"[{"host": "imap.example.com", "username": "sales@example.com", "password": "x", "security": "plain",
                       "folders": ["INBOX", "Sent Items"], "smtp": {"host": "smtp.example.com", "security": "plain"}}]"#;
        let error = parse_mailboxes(json).unwrap_err();
        assert!(error.contains("mailboxes[0].security"), "{error}");
        assert!(error.contains("mailboxes[0].folders: 'Sent Items'"), "{error}");
        assert!(error.contains("mailboxes[0].smtp.security"), "{error}");
        let ok = r#"[{"host": "127.0.0.1", "port": 1143, "username": "u", "password": "x", "security": "plain"}]"#;
        assert_eq!(parse_mailboxes(ok).unwrap()[0].folders, vec!["INBOX".to_string()]);
    }

    #[test]
    fn a_malformed_list_names_the_place_and_never_quotes_a_value() {
        let error = parse_mailboxes(r#"[{"host": "h", "username": "u", "password": 12345678}]"#).unwrap_err();
        assert!(error.contains("[0].password"), "{error}");
        assert!(!error.contains("12345678"), "{error}");
        let error = parse_mailboxes(r#"[{"host": "h", "username": "u"}]"#).unwrap_err();
        assert!(error.contains("mailboxes[0].password or mailboxes[0].oauth2 is required"), "{error}");
    }

    #[test]
    fn a_sending_mailbox_has_a_pace_with_defaults_and_oauth2_knows_the_providers() {
        let json = r#"[{"host": "outlook.office365.com", "username": "dana@northwind.example", "display_name": "Dana Reyes",
                        "oauth2": {"provider": "microsoft", "tenant": "contoso", "client_id": "app", "refresh_token": "r"},
                        "smtp": {"host": "smtp.office365.com"}, "time_zone": "Europe/Berlin"}]"#;
        let mailbox = parse_mailboxes(json).unwrap().remove(0);
        let pace = mailbox.pace().unwrap();
        assert_eq!((pace.address.as_str(), pace.daily_cap, pace.min_gap.num_seconds()), ("dana@northwind.example", 50, 120));
        assert_eq!(mailbox.smtp.as_ref().unwrap().port(), 587);
        let oauth2 = mailbox.oauth2.unwrap();
        assert_eq!(oauth2.token_url(), "https://login.microsoftonline.com/contoso/oauth2/v2.0/token");
        assert!(oauth2.scope().unwrap().contains("SMTP.Send"));
        let twice = format!("[{0}, {0}]", &json[1..json.len() - 1]);
        assert!(parse_mailboxes(&twice).unwrap_err().contains("configured twice"));
    }
}
