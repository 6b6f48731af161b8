//! The scheduled run: read replies first (so a lead who answered gets no follow-up), then sweep
//! the leads whose attention time has come (due follow-ups, lost or stuck leads).

use serde::Serialize;

use super::RetryableStepError;
use super::replies::{ReplyProcessor, ReplyReport};
use super::sweep::{Sweep, SweepReport};

pub struct ScheduledTasks {
    pub replies: Option<ReplyProcessor>,
    pub sweep: Sweep,
    /// Messages read per run at most, so one run fits the function's time limit.
    pub reply_batch: usize,
    pub sweep_batch: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScheduledReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replies: Option<ReplyReport>,
    pub sweep: SweepReport,
}

impl ScheduledTasks {
    pub async fn run(&self) -> Result<ScheduledReport, RetryableStepError> {
        let replies = match &self.replies {
            Some(processor) => Some(processor.poll(self.reply_batch).await?),
            None => None,
        };
        let sweep = self.sweep.run(self.sweep_batch).await?;
        Ok(ScheduledReport { replies, sweep })
    }
}
