//! The narrow interfaces the step handlers and the REST router talk through. Adapters in
//! `crate::adapters` implement them for the embedded default and for AWS.

pub mod clock;
pub mod drafter;
pub mod inbox;
pub mod lead_source;
pub mod mail_domains;
pub mod mailer;
pub mod queue;
pub mod research;
pub mod search;
pub mod signing;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use drafter::{DraftError, DraftOutcome, DraftRequest, Drafter, TokenUsage, Verification, VerifyRequest};
pub use inbox::{FolderBatch, FolderRead, InboundMessage, Inbox, ReadBounds, WatchedFolder};
pub use lead_source::{LeadSource, LeadSourceError, LeadSourceSpec, SourcedLeads};
pub use mail_domains::{DomainVerdict, MailDomains, SendingDomainRecords, UncheckedDomains};
pub use mailer::{MailError, Mailer, SendReceipt};
pub use queue::{ControlMessage, ControlWork, FanOutMessage, Queue, QueueError, QueueMessage, StepMessage, StepQueue};
pub use research::WebResearch;
pub use search::{SearchError, SearchHit, SearchProvider};
pub use signing::{FixedUnsubscribeKey, UnsubscribeKeys};
pub use store::{ExecutionProgress, LeadQuery, Ledger, MailboxCursorStore, Page, PageRequest, Store, StoreError};
