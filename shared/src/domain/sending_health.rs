//! When an execution stops sending by itself. Mailbox providers filter senders whose bounces
//! or complaints rise (Gmail asks for spam complaints under 0.3 %), and sending tools pause a
//! campaign at 5 % hard bounces or 0.1 % complaints: one more email to a bad list costs the
//! sending domain more than a pause costs the campaign.

use serde::{Deserialize, Serialize};

use super::ExecutionCounters;
use super::validation::{FieldIssue, ValidationErrors};

/// An agent's limits; each execution pauses when its own rates reach them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoPause {
    /// Hard bounces per email sent at which the execution pauses.
    #[serde(default = "AutoPause::default_bounce_rate")]
    pub max_hard_bounce_rate: f64,
    /// Spam complaints per email sent at which the execution pauses.
    #[serde(default = "AutoPause::default_complaint_rate")]
    pub max_complaint_rate: f64,
    /// Emails sent before the rates are judged: a first bounce of a small batch says little.
    #[serde(default = "AutoPause::default_min_sends")]
    pub min_sends: u64,
}

impl Default for AutoPause {
    fn default() -> Self {
        Self {
            max_hard_bounce_rate: Self::default_bounce_rate(),
            max_complaint_rate: Self::default_complaint_rate(),
            min_sends: Self::default_min_sends(),
        }
    }
}

fn percent(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0)
}

impl AutoPause {
    fn default_bounce_rate() -> f64 {
        0.05
    }

    fn default_complaint_rate() -> f64 {
        0.001
    }

    fn default_min_sends() -> u64 {
        20
    }

    pub fn validate(&self, errors: &mut ValidationErrors) {
        for (field, rate) in
            [("auto_pause.max_hard_bounce_rate", self.max_hard_bounce_rate), ("auto_pause.max_complaint_rate", self.max_complaint_rate)]
        {
            if !(rate > 0.0 && rate <= 1.0) {
                errors.push(FieldIssue::new(field, "must be a share above 0 and at most 1 (0.05 is 5 %)"));
            }
        }
        if self.min_sends == 0 {
            errors.push(FieldIssue::new("auto_pause.min_sends", "must be at least 1"));
        }
    }

    /// Why an execution with these counters must pause, if it must.
    pub fn breach(&self, counters: &ExecutionCounters) -> Option<String> {
        if counters.sent < self.min_sends || counters.sent == 0 {
            return None;
        }
        let sent = counters.sent as f64;
        let (bounces, complaints) = (counters.bounced as f64 / sent, counters.complained as f64 / sent);
        if complaints >= self.max_complaint_rate {
            return Some(format!(
                "spam complaints reached {} of {} emails sent (the limit is {})",
                percent(complaints),
                counters.sent,
                percent(self.max_complaint_rate)
            ));
        }
        (bounces >= self.max_hard_bounce_rate).then(|| {
            format!(
                "hard bounces reached {} of {} emails sent (the limit is {})",
                percent(bounces),
                counters.sent,
                percent(self.max_hard_bounce_rate)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(sent: u64, bounced: u64, complained: u64) -> ExecutionCounters {
        ExecutionCounters { sent, bounced, complained, ..Default::default() }
    }

    #[test]
    fn the_rates_are_judged_only_after_the_minimum_sample() {
        let limits = AutoPause::default();
        assert_eq!(limits.breach(&counters(19, 5, 0)), None, "19 sends is too few to judge");
        assert_eq!(limits.breach(&counters(100, 4, 0)), None);
        let bounced = limits.breach(&counters(100, 5, 0)).unwrap();
        assert_eq!(bounced, "hard bounces reached 5.0 % of 100 emails sent (the limit is 5.0 %)");
        assert!(limits.breach(&counters(1_000, 0, 1)).unwrap().starts_with("spam complaints reached 0.1 %"));
        assert_eq!(limits.breach(&counters(1_001, 0, 1)), None);
    }

    #[test]
    fn limits_outside_zero_to_one_name_their_field() {
        let mut errors = ValidationErrors::default();
        AutoPause { max_hard_bounce_rate: 5.0, max_complaint_rate: 0.0, min_sends: 0 }.validate(&mut errors);
        let fields: Vec<String> = errors.0.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["auto_pause.max_hard_bounce_rate", "auto_pause.max_complaint_rate", "auto_pause.min_sends"]);
    }
}
