//! Implementations of the ports.

pub mod apollo;
pub mod aws;
pub mod cursor;
pub mod embedded;
pub mod imap_inbox;
pub mod llm_drafter;
pub mod local_inbox;
pub mod outbox;
pub mod search;
pub mod site_research;
pub mod template_drafter;
pub mod unconfigured;
