//! The scheduled run: read replies first (so a lead who answered gets no follow-up), then
//! enqueue the follow-ups that are due.

use serde::Serialize;

use super::RetryableStepError;
use super::follow_ups::{FollowUpReport, FollowUpScheduler};
use super::replies::{ReplyProcessor, ReplyReport};

pub struct ScheduledTasks {
    pub replies: Option<ReplyProcessor>,
    pub follow_ups: FollowUpScheduler,
    /// Messages read per run at most, so one run fits the function's time limit.
    pub reply_batch: usize,
    pub follow_up_batch: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScheduledReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replies: Option<ReplyReport>,
    pub follow_ups: FollowUpReport,
}

impl ScheduledTasks {
    pub async fn run(&self) -> Result<ScheduledReport, RetryableStepError> {
        let replies = match &self.replies {
            Some(processor) => Some(processor.poll(self.reply_batch).await?),
            None => None,
        };
        let follow_ups = self.follow_ups.enqueue_due(self.follow_up_batch).await?;
        Ok(ScheduledReport { replies, follow_ups })
    }
}
