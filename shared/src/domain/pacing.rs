//! How fast, when and from which mailbox an agent may send: send windows in the lead's time
//! zone, daily caps, a minimum gap between one mailbox's sends, and the slots a send claim takes
//! against them. Mailbox providers throttle and block senders that burst; a lead that may not be
//! sent yet waits with the time it becomes sendable instead of failing.

use std::fmt;

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::validation::{FieldIssue, ValidationErrors};
use super::{AgentId, EmailAddress, Timestamp};

/// An IANA time zone (`Europe/Berlin`), kept by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeZoneName(pub Tz);

impl Default for TimeZoneName {
    fn default() -> Self {
        Self(Tz::UTC)
    }
}

impl TimeZoneName {
    pub fn parse(raw: &str) -> Option<Self> {
        raw.trim().parse::<Tz>().ok().map(Self)
    }

    /// The calendar day `at` falls on in this zone: a daily cap counts per local day.
    pub fn day_of(self, at: Timestamp) -> NaiveDate {
        at.with_timezone(&self.0).date_naive()
    }

    /// The first instant of the day after `at`'s local day.
    pub fn next_midnight(self, at: Timestamp) -> Timestamp {
        let tomorrow = self.day_of(at) + Duration::days(1);
        self.instant(tomorrow, NaiveTime::MIN)
    }

    /// The instant a local date and time denote; in a daylight-saving gap, the first valid
    /// instant after it.
    fn instant(self, day: NaiveDate, time: NaiveTime) -> Timestamp {
        let local = day.and_time(time);
        (0..4)
            .find_map(|hours| self.0.from_local_datetime(&(local + Duration::hours(hours))).earliest())
            .map_or_else(|| local.and_utc(), |t| t.to_utc())
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).ok_or_else(|| serde::de::Error::custom(format!("'{raw}' is not an IANA time zone such as Europe/Berlin")))
    }
}

/// The days and local hours in which emails may go out, for example Monday to Friday from
/// 09:00 to 17:00 in the lead's time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendWindow {
    #[serde(default = "working_days", with = "weekdays")]
    pub days: Vec<Weekday>,
    /// Local time the window opens, `HH:MM`.
    #[serde(with = "clock_time")]
    pub start: NaiveTime,
    /// Local time the window closes, `HH:MM`; after `start`.
    #[serde(with = "clock_time")]
    pub end: NaiveTime,
}

fn working_days() -> Vec<Weekday> {
    vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri]
}

impl SendWindow {
    /// `None` when `at` is inside the window in `zone`; otherwise when it next opens.
    pub fn next_opening(&self, zone: TimeZoneName, at: Timestamp) -> Option<Timestamp> {
        let local = at.with_timezone(&zone.0);
        let (day, time) = (local.date_naive(), local.time());
        if self.days.contains(&day.weekday()) && time >= self.start && time < self.end {
            return None;
        }
        (0..8)
            .map(|ahead| day + Duration::days(ahead))
            .filter(|d| self.days.contains(&d.weekday()))
            .map(|d| zone.instant(d, self.start))
            .find(|opening| *opening > at)
    }

    fn validate(&self, field: &str, errors: &mut ValidationErrors) {
        if self.days.is_empty() {
            errors.push(FieldIssue::new(format!("{field}.days"), "needs at least one day"));
        }
        if self.end <= self.start {
            errors.push(FieldIssue::new(format!("{field}.end"), "must be later than start"));
        }
    }

    pub fn describe(&self) -> String {
        let days: Vec<String> = self.days.iter().map(|d| d.to_string()).collect();
        format!("{} {}–{}", days.join(","), self.start.format("%H:%M"), self.end.format("%H:%M"))
    }
}

/// How an agent paces its sending.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendingPolicy {
    /// The addresses of the configured mailboxes this agent sends from. Empty: the deployment's
    /// default mailer (Amazon SES deployed, the local outbox) as `sender.email`.
    #[serde(default)]
    pub mailboxes: Vec<EmailAddress>,
    /// When emails may go out, in the lead's local time. None: at any time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<SendWindow>,
    /// The time zone of leads without one of their own, and of the agent's daily cap.
    #[serde(default)]
    pub time_zone: TimeZoneName,
    /// Emails this agent sends per day at most, across its executions and mailboxes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_cap: Option<u32>,
}

/// The largest daily cap accepted: more than any mailbox provider allows one sender.
pub const MAX_DAILY_CAP: u32 = 10_000;

impl SendingPolicy {
    pub fn validate(&self, errors: &mut ValidationErrors) {
        if let Some(window) = &self.window {
            window.validate("sending.window", errors);
        }
        if let Some(cap) = self.daily_cap
            && !(1..=MAX_DAILY_CAP).contains(&cap)
        {
            errors.push(FieldIssue::new("sending.daily_cap", format!("must be between 1 and {MAX_DAILY_CAP}")));
        }
        let mut seen = std::collections::HashSet::new();
        for (index, mailbox) in self.mailboxes.iter().enumerate() {
            if !seen.insert(mailbox.dedupe_key()) {
                errors.push(FieldIssue::new(format!("sending.mailboxes[{index}]"), "is listed twice"));
            }
        }
    }

    /// The zone a lead's send window is read in: the lead's own when it names a valid one.
    pub fn zone_for(&self, lead_zone: Option<&str>) -> TimeZoneName {
        lead_zone.and_then(TimeZoneName::parse).unwrap_or(self.time_zone)
    }
}

/// The pace one mailbox keeps, whichever agents send from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxPace {
    pub address: EmailAddress,
    pub display_name: Option<String>,
    pub daily_cap: u32,
    pub min_gap: Duration,
    /// Up to this much is added to each gap at random, so sends do not tick like a machine.
    pub gap_jitter: Duration,
    /// The zone the mailbox's day (and so its cap) is counted in.
    pub time_zone: TimeZoneName,
}

/// What one meter (a mailbox, an agent) has used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeterUsage {
    /// Sends counted on the day asked for.
    pub sent: u32,
    /// The mailbox's gap: no send before this.
    pub next_send_at: Option<Timestamp>,
    pub last_sent_at: Option<Timestamp>,
}

/// A mailbox's record since it was last resumed, which its automatic pause judges, and the pause
/// itself. A mailbox is shared by agents; a bad list of one agent hurts every agent sending from it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MailboxStanding {
    pub sent: u64,
    pub hard_bounced: u64,
    pub complained: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<MailboxPause>,
    /// The last answer of its provider that was not an acceptance (kept across resumes).
    #[serde(skip)]
    pub last_error: Option<MailboxError>,
}

/// A provider's answer that was not an acceptance, and when it came.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxError {
    pub error: String,
    pub at: Timestamp,
}

/// Why a mailbox stopped sending by itself; only an explicit resume lifts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxPause {
    pub reason: String,
    pub at: Timestamp,
}

/// The meter a mailbox's sends are counted on.
pub fn mailbox_meter(address: &EmailAddress) -> String {
    format!("mailbox:{}", address.dedupe_key())
}

/// The meter an agent's sends are counted on.
pub fn agent_meter(agent_id: AgentId) -> String {
    format!("agent:{agent_id}")
}

/// A slot a send claim takes on a meter, in the same atomic write as the claim: refused (the
/// claim with it) when the day's count has reached `cap` or the meter's gap has not passed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendingSlot {
    pub meter: String,
    pub day: NaiveDate,
    pub cap: u32,
    /// The meter's gap: the slot is taken only if no earlier send set a later time, and this
    /// send sets the next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<SlotGap>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotGap {
    pub now: Timestamp,
    pub next_send_at: Timestamp,
}

/// Which slot a claim holds, to give it back if the claim is released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRef {
    pub meter: String,
    pub day: NaiveDate,
}

impl SendingSlot {
    pub fn reference(&self) -> SlotRef {
        SlotRef { meter: self.meter.clone(), day: self.day }
    }
}

mod weekdays {
    use chrono::Weekday;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(days: &[Weekday], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(days.iter().map(|d| d.to_string().to_ascii_lowercase()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Weekday>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .into_iter()
            .map(|raw| raw.parse::<Weekday>().map_err(|_| serde::de::Error::custom(format!("'{raw}' is not a weekday such as mon"))))
            .collect()
    }
}

mod clock_time {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &NaiveTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&time.format("%H:%M").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveTime, D::Error> {
        let raw = String::deserialize(deserializer)?;
        if raw == "24:00" {
            return Ok(NaiveTime::from_hms_opt(23, 59, 59).expect("a valid time"));
        }
        NaiveTime::parse_from_str(&raw, "%H:%M").map_err(|_| serde::de::Error::custom(format!("'{raw}' is not a time of day as HH:MM")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> Timestamp {
        raw.parse().unwrap()
    }

    fn office_hours() -> SendWindow {
        serde_json::from_value(serde_json::json!({"start": "09:00", "end": "17:00"})).unwrap()
    }

    #[test]
    fn a_window_is_read_in_the_zone_it_is_given() {
        let berlin = TimeZoneName::parse("Europe/Berlin").unwrap();
        let window = office_hours();
        // Monday 30 November 2026, 10:00 in Berlin (09:00 UTC): open.
        assert_eq!(window.next_opening(berlin, at("2026-11-30T09:00:00Z")), None);
        // 17:30 in Berlin: closed until Tuesday 09:00 Berlin, 08:00 UTC.
        assert_eq!(window.next_opening(berlin, at("2026-11-30T16:30:00Z")), Some(at("2026-12-01T08:00:00Z")));
        // Friday evening waits for Monday.
        assert_eq!(window.next_opening(berlin, at("2026-12-04T18:00:00Z")), Some(at("2026-12-07T08:00:00Z")));
        // Early on a working day waits for that day's opening.
        let new_york = TimeZoneName::parse("America/New_York").unwrap();
        assert_eq!(window.next_opening(new_york, at("2026-11-30T12:00:00Z")), Some(at("2026-11-30T14:00:00Z")));
    }

    #[test]
    fn a_daylight_saving_change_moves_the_opening_with_the_clock() {
        let berlin = TimeZoneName::parse("Europe/Berlin").unwrap();
        // Clocks go forward on Sunday 28 March 2027: Monday's opening is 07:00 UTC, Friday's 08:00.
        let window = office_hours();
        assert_eq!(window.next_opening(berlin, at("2027-03-26T17:00:00Z")), Some(at("2027-03-29T07:00:00Z")));
    }

    #[test]
    fn a_day_is_counted_in_the_meters_zone() {
        let tokyo = TimeZoneName::parse("Asia/Tokyo").unwrap();
        assert_eq!(tokyo.day_of(at("2026-11-30T16:00:00Z")), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(tokyo.next_midnight(at("2026-11-30T14:00:00Z")), at("2026-11-30T15:00:00Z"));
    }

    #[test]
    fn bad_settings_are_named() {
        let policy: Result<SendingPolicy, _> = serde_json::from_value(serde_json::json!({"time_zone": "Mars/Olympus"}));
        assert!(policy.unwrap_err().to_string().contains("Mars/Olympus"));
        let policy: SendingPolicy = serde_json::from_value(serde_json::json!({
            "window": {"days": [], "start": "17:00", "end": "09:00"}, "daily_cap": 0
        }))
        .unwrap();
        let mut errors = ValidationErrors::default();
        policy.validate(&mut errors);
        let fields: Vec<String> = errors.0.into_iter().map(|i| i.field).collect();
        assert_eq!(fields, vec!["sending.window.days", "sending.window.end", "sending.daily_cap"]);
    }

    #[test]
    fn a_lead_without_a_valid_zone_takes_the_agents() {
        let policy = SendingPolicy { time_zone: TimeZoneName::parse("Europe/Paris").unwrap(), ..Default::default() };
        assert_eq!(policy.zone_for(Some("America/Chicago")).to_string(), "America/Chicago");
        assert_eq!(policy.zone_for(Some("somewhere")).to_string(), "Europe/Paris");
        assert_eq!(policy.zone_for(None).to_string(), "Europe/Paris");
    }
}
