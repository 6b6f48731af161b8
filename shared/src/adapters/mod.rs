//! Implementations of the ports.

pub mod apollo;
pub mod aws;
pub mod cursor;
pub mod dns;
pub mod embedded;
pub mod imap_inbox;
pub mod llm_drafter;
pub mod local_inbox;
pub mod mailbox_settings;
pub mod oauth2;
pub mod outbox;
pub mod safe_fetch;
pub mod search;
pub mod site_research;
pub mod smtp_mailer;
pub mod template_drafter;
pub mod tls_roots;
pub mod unconfigured;
