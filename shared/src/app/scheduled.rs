//! The scheduled run: read replies first (so a lead who answered gets no follow-up), then sweep
//! the leads whose attention time has come (due follow-ups, lost or stuck leads).

use serde::Serialize;

use super::RetryableStepError;
use super::replies::{ReplyProcessor, ReplyReport};
use super::sweep::{Sweep, SweepReport};

pub struct ScheduledTasks {
    /// `Err`: the mailboxes are configured but could not be set up; every run says so.
    pub replies: Result<Option<ReplyProcessor>, String>,
    pub sweep: Sweep,
    /// How much one run reads of the mailboxes, so it fits the function's memory and time.
    pub reply_bounds: crate::ports::ReadBounds,
    pub sweep_batch: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScheduledReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replies: Option<ReplyReport>,
    pub sweep: SweepReport,
}

impl ScheduledTasks {
    /// Runs both tasks; a failure of one never keeps the other from running. The run fails
    /// (so it shows as failed) when either did.
    pub async fn run(&self) -> Result<ScheduledReport, RetryableStepError> {
        let replies = match &self.replies {
            Ok(Some(processor)) => Some(processor.poll(self.reply_bounds).await),
            Ok(None) => None,
            Err(why) => Some(Err(RetryableStepError(format!("the mailboxes could not be set up: {why}")))),
        };
        let sweep = self.sweep.run(self.sweep_batch).await;
        match (replies.transpose(), sweep) {
            (Ok(replies), Ok(sweep)) => Ok(ScheduledReport { replies, sweep }),
            (Err(replies), Ok(_)) => Err(RetryableStepError(format!("reading replies: {replies}"))),
            (Ok(_), Err(sweep)) => Err(RetryableStepError(format!("the sweep: {sweep}"))),
            (Err(replies), Err(sweep)) => Err(RetryableStepError(format!("reading replies: {replies}; the sweep: {sweep}"))),
        }
    }
}
