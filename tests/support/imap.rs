//! The Dovecot server `.ci/test` starts (see `.ci/dovecot`): one IMAP user per test, and
//! delivery into a user's Maildir the way a mail server delivers (write to `tmp/`, move to `new/`).

use std::path::PathBuf;

use sales_agent::adapters::imap_inbox::{ImapSecurity, MailboxSettings};

pub struct TestMailbox {
    pub user: String,
    pub maildir: PathBuf,
    pub plain_port: u16,
    pub tls_port: u16,
    pub ca_pem: String,
    pub password: String,
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests through `bash .ci/test`, which starts Dovecot"))
}

impl TestMailbox {
    /// The Dovecot user `user01` … `user32`; each test takes its own.
    pub fn user(number: u32) -> Self {
        let user = format!("user{number:02}");
        let maildir = PathBuf::from(required("SALES_AGENT_TEST_IMAP_MAIL")).join(&user);
        // A user's mail and Dovecot's indexes from an earlier run are cleared, so every run
        // starts with an empty mailbox whose UIDs start at 1.
        let _ = std::fs::remove_dir_all(&maildir);
        // Dovecot's mail processes run as the mail root's owner and must be able to write here.
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(maildir.parent().expect("a mail root")).expect("the mail root"));
        let group = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(maildir.parent().expect("a mail root")).expect("the mail root"));
        for dir in [maildir.clone(), maildir.join("new"), maildir.join("cur"), maildir.join("tmp")] {
            std::fs::create_dir_all(&dir).expect("the user's Maildir");
            std::os::unix::fs::chown(&dir, Some(owner), Some(group)).expect("handing the Maildir to the mail user");
        }
        Self {
            user,
            maildir,
            plain_port: required("SALES_AGENT_TEST_IMAP_PORT").parse().expect("a port"),
            tls_port: required("SALES_AGENT_TEST_IMAPS_PORT").parse().expect("a port"),
            ca_pem: std::fs::read_to_string(required("SALES_AGENT_TEST_IMAP_CA")).expect("the test CA"),
            password: required("SALES_AGENT_TEST_IMAP_PASSWORD"),
        }
    }

    /// Settings for reading this mailbox over TLS, trusting the test CA.
    pub fn over_tls(&self) -> MailboxSettings {
        let settings = serde_json::json!([{
            "name": self.user, "host": "127.0.0.1", "port": self.tls_port, "username": self.user, "password": self.password,
            "security": "tls", "address": "dana@northwind.example", "ca_pem": self.ca_pem,
        }]);
        sales_agent::adapters::imap_inbox::parse_mailboxes(&settings.to_string()).expect("valid settings").remove(0)
    }

    /// Settings for reading this mailbox in plain text on loopback.
    pub fn plain(&self) -> MailboxSettings {
        MailboxSettings { port: Some(self.plain_port), security: ImapSecurity::Plain, ca_pem: None, ..self.over_tls() }
    }

    /// Delivers `raw` into the INBOX as a mail server would.
    pub fn deliver(&self, raw: &str) {
        let name = format!("{}.{}.sales-agent-test", chrono::Utc::now().timestamp_micros(), uuid::Uuid::new_v4().simple());
        let tmp = self.maildir.join("tmp").join(&name);
        std::fs::write(&tmp, raw).expect("writing into tmp/");
        std::fs::rename(&tmp, self.maildir.join("new").join(&name)).expect("moving into new/");
    }

    /// How many messages of the INBOX carry the \Seen flag, asked over IMAP.
    pub async fn seen_count(&self) -> usize {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.plain_port)).await.expect("connecting");
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.expect("greeting").expect("greeting");
        let mut session = client.login(&self.user, &self.password).await.map_err(|(e, _)| e).expect("login");
        session.examine("INBOX").await.expect("examine");
        let fetches: Vec<_> = futures::TryStreamExt::try_collect(session.fetch("1:*", "FLAGS").await.expect("fetch")).await.expect("flags");
        let seen = fetches.iter().filter(|f| f.flags().any(|flag| flag == async_imap::types::Flag::Seen)).count();
        session.logout().await.expect("logout");
        seen
    }
}
