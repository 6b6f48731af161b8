//! SES's bounce, complaint and delivery events, which the configuration set publishes through SNS
//! to the feedback queue. Each is applied to its lead as the same notice read from a mailbox would
//! be: a hard bounce or a complaint ends the sequence, suppresses the address and may pause the
//! execution. SNS's id of the notification is kept on the lead, so a redelivery changes nothing.

use super::StepPorts;
use super::replies::{InboundActions, Matching, Processed};
use crate::inbound;

/// Where events read from the queue say they came from, on the lead and in the log.
const SOURCE: &str = "ses-events";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedbackOutcome {
    Applied,
    /// Applied before (a redelivery) or changes nothing.
    AlreadyApplied,
    /// About an email no lead sent (another system's mail through the same account).
    Unmatched,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// Not an SES event in an SNS envelope: left for the dead-letter queue, where a person sees it.
    #[error("not an SES event notification: {0}")]
    Unreadable(String),
    /// Try again later (the store is unavailable, the lead has a send in flight).
    #[error("{0}")]
    Retry(String),
}

pub struct FeedbackConsumer {
    actions: InboundActions,
}

impl FeedbackConsumer {
    pub fn new(ports: StepPorts) -> Self {
        // SES events are never a person's words: nothing to read for intent.
        Self { actions: InboundActions::new(ports, None) }
    }

    pub async fn handle(&self, body: &str) -> Result<FeedbackOutcome, FeedbackError> {
        let Some((mail, key)) = inbound::read_ses_event(body) else {
            return Err(FeedbackError::Unreadable(body.chars().take(200).collect()));
        };
        match self.actions.act(&mail, key, SOURCE, Matching::ByIdsOnly).await {
            Ok(Processed::Matched) => Ok(FeedbackOutcome::Applied),
            Ok(Processed::Duplicate | Processed::Own) => Ok(FeedbackOutcome::AlreadyApplied),
            Ok(Processed::Unmatched) => Ok(FeedbackOutcome::Unmatched),
            Ok(Processed::Deferred) => Err(FeedbackError::Retry("the lead has a send in flight; the event waits for it".into())),
            Err(error) => Err(FeedbackError::Retry(error.0)),
        }
    }
}
