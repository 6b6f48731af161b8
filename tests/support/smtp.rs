//! The submission server `.ci/test` starts (see `.ci/smtp-server.py`): STARTTLS and AUTH on
//! loopback, every accepted message kept as a JSON file. Each test sends to recipients of its
//! own domain and reads back only those.

use std::path::PathBuf;

use serde_json::{Value, json};

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests through `bash .ci/test`, which starts the SMTP server"))
}

/// One message as the server accepted it.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Who signed in: the username, or `user (oauth2 token)` for XOAUTH2.
    pub auth_user: String,
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub data: String,
}

impl Accepted {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::header(&self.data, name)
    }
}

pub struct TestSmtp {
    pub port: u16,
    pub ca_pem: String,
    pub password: String,
    spool: PathBuf,
}

impl TestSmtp {
    pub fn from_env() -> Self {
        Self {
            port: required("SALES_AGENT_TEST_SMTP_PORT").parse().expect("a port"),
            ca_pem: std::fs::read_to_string(required("SALES_AGENT_TEST_SMTP_CA")).expect("the test CA"),
            password: required("SALES_AGENT_TEST_SMTP_PASSWORD"),
            spool: PathBuf::from(required("SALES_AGENT_TEST_SMTP_SPOOL")),
        }
    }

    /// Mailbox settings for `address`, sending through the test server with STARTTLS and
    /// reading replies from the Dovecot user `imap_user`; `auth` is merged over the password.
    pub fn mailbox(&self, address: &str, imap: &crate::imap::TestMailbox, extra: Value) -> Value {
        let mut mailbox = json!({
            "name": address, "host": "127.0.0.1", "port": imap.tls_port, "username": imap.user,
            "password": self.password, "ca_pem": self.ca_pem, "address": address,
            "smtp": {"host": "localhost", "port": self.port, "security": "starttls", "username": address},
            "min_gap_seconds": 0, "gap_jitter_seconds": 0,
        });
        for (key, value) in extra.as_object().expect("an object").clone() {
            if value.is_null() {
                mailbox.as_object_mut().unwrap().remove(&key);
            } else {
                mailbox[key] = value;
            }
        }
        mailbox
    }

    /// Every message accepted for a recipient at `domain`, in the order accepted.
    pub fn accepted_for(&self, domain: &str) -> Vec<Accepted> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.spool)
            .map(|entries| {
                entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter_map(|path| serde_json::from_str::<Value>(&std::fs::read_to_string(path).ok()?).ok())
            .filter(|record| {
                record["rcpt_tos"].as_array().into_iter().flatten().any(|r| r.as_str().is_some_and(|r| r.ends_with(&format!("@{domain}"))))
            })
            .map(|record| Accepted {
                auth_user: record["auth_user"].as_str().unwrap_or_default().to_string(),
                mail_from: record["mail_from"].as_str().unwrap_or_default().to_string(),
                rcpt_tos: record["rcpt_tos"].as_array().into_iter().flatten().filter_map(|r| r.as_str().map(String::from)).collect(),
                data: record["data"].as_str().unwrap_or_default().to_string(),
            })
            .collect()
    }
}
