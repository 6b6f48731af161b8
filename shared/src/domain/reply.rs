//! What a message from the lead's side does to the lead: a reply, a hard bounce, a complaint or
//! an unsubscribe request ends the sequence (the last three also suppress the address); a soft
//! bounce or an auto-reply is noted, and an out-of-office moves the next follow-up past the
//! absence.

use chrono::{Days, Duration, NaiveDate};

use super::{ExecutionCounters, LeadState, LeadStateKind, Timestamp};

/// When an out-of-office names no date, the next follow-up waits at least this long after it.
pub const UNDATED_ABSENCE: Duration = Duration::days(7);

/// Why a lead's sequence ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceEnd {
    Replied,
    HardBounce,
    Complaint,
    Unsubscribed,
}

impl SequenceEnd {
    /// The state the lead ends in, unless it already ended in a way this does not override: a
    /// reply does not undo a bounce or an unsubscribe, a bounce does not undo an unsubscribe.
    pub(crate) fn ended_state(self, from: LeadStateKind) -> Option<LeadState> {
        use LeadStateKind as K;
        match self {
            Self::Replied if !matches!(from, K::Replied | K::Bounced | K::Unsubscribed) => Some(LeadState::Replied),
            Self::HardBounce if !matches!(from, K::Bounced | K::Unsubscribed) => Some(LeadState::Bounced),
            Self::Complaint | Self::Unsubscribed if from != K::Unsubscribed => Some(LeadState::Unsubscribed),
            _ => None,
        }
    }

    /// Why the address goes on the suppression list, when it does.
    pub fn suppression_reason(self) -> Option<&'static str> {
        match self {
            Self::Replied => None,
            Self::HardBounce => Some("hard_bounce"),
            Self::Complaint => Some("complaint"),
            Self::Unsubscribed => Some("unsubscribed"),
        }
    }

    pub fn counters(self) -> ExecutionCounters {
        match self {
            Self::Replied => ExecutionCounters { replied: 1, ..Default::default() },
            Self::HardBounce => ExecutionCounters { bounced: 1, ..Default::default() },
            Self::Complaint => ExecutionCounters { complained: 1, unsubscribed: 1, ..Default::default() },
            Self::Unsubscribed => ExecutionCounters { unsubscribed: 1, ..Default::default() },
        }
    }
}

/// What one inbound message does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundEffect {
    Ends(SequenceEnd),
    /// Kept and counted; the sequence goes on.
    SoftBounce,
    /// Kept and counted; the next follow-up waits until after the absence.
    AutoReply {
        absent_until: Option<NaiveDate>,
    },
    /// Kept; nothing else changes (a delivery report, bulk mail).
    Noted,
}

impl InboundEffect {
    pub fn counters(self) -> ExecutionCounters {
        match self {
            Self::Ends(end) => end.counters(),
            Self::SoftBounce => ExecutionCounters { soft_bounced: 1, ..Default::default() },
            Self::AutoReply { .. } => ExecutionCounters { auto_replied: 1, ..Default::default() },
            Self::Noted => ExecutionCounters::default(),
        }
    }
}

/// The next follow-up after an out-of-office: not before the day after the absence (at the
/// time of day it was due), or `UNDATED_ABSENCE` after the auto-reply when it names no date.
pub fn due_after_absence(due: Timestamp, absent_until: Option<NaiveDate>, received_at: Timestamp) -> Timestamp {
    let back = match absent_until.and_then(|d| d.checked_add_days(Days::new(1))) {
        Some(day) => day.and_time(due.time()).and_utc(),
        None => received_at + UNDATED_ABSENCE,
    };
    due.max(back)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(raw).unwrap().to_utc()
    }

    #[test]
    fn an_absence_moves_the_follow_up_to_the_day_after_it_at_the_same_hour() {
        let due = at("2026-11-27T14:00:00Z");
        let received = at("2026-11-24T10:00:00Z");
        assert_eq!(due_after_absence(due, NaiveDate::from_ymd_opt(2026, 12, 4), received), at("2026-12-05T14:00:00Z"));
        assert_eq!(due_after_absence(due, NaiveDate::from_ymd_opt(2026, 11, 25), received), due, "never earlier");
        assert_eq!(due_after_absence(due, None, received), at("2026-12-01T10:00:00Z"));
    }
}
