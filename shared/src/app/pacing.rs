//! Whether a lead may be sent now, and from which mailbox: the lead's send window, the agent's
//! daily cap, and the pool's mailboxes with their caps and gaps. The answer is a plan the send
//! step commits with its claim; the slots it takes are checked again by the store in that same
//! write, so two workers can never both take a mailbox's last slot.

use std::collections::HashMap;

use chrono::Duration;

use crate::domain::pacing::{SlotGap, agent_meter, mailbox_meter};
use crate::domain::{Agent, EmailAddress, Lead, MailboxPace, SendingSlot, Timestamp};
use crate::ports::{Store, StoreError};

/// The mailboxes this deployment can send from, with the pace each keeps.
#[derive(Clone, Debug, Default)]
pub struct SendingMailboxes {
    by_address: HashMap<String, MailboxPace>,
}

impl SendingMailboxes {
    pub fn new(paces: impl IntoIterator<Item = MailboxPace>) -> Self {
        Self { by_address: paces.into_iter().map(|p| (p.address.dedupe_key(), p)).collect() }
    }

    pub fn get(&self, address: &EmailAddress) -> Option<&MailboxPace> {
        self.by_address.get(&address.dedupe_key())
    }

    pub fn all(&self) -> impl Iterator<Item = &MailboxPace> {
        self.by_address.values()
    }
}

/// What the pace allows for one lead right now.
#[derive(Debug)]
pub(crate) enum SendPlan {
    /// Send now, from this mailbox (none: the default mailer), taking these slots.
    Send { mailbox: Option<MailboxPace>, slots: Vec<SendingSlot> },
    /// Not before `until`.
    Wait { until: Timestamp, why: String },
    /// The agent sends from mailboxes none of which is configured: nothing can be sent until
    /// a setting is fixed.
    Misconfigured(String),
}

/// How one candidate mailbox stands today.
struct Standing {
    pace: MailboxPace,
    day: chrono::NaiveDate,
    room: u32,
    next_send_at: Option<Timestamp>,
    last_sent_at: Option<Timestamp>,
}

/// Random numbers in `0..1` for one decision.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chance {
    /// Spreads the mailbox's next gap.
    pub jitter: f64,
    /// Spreads the wake-up of a lead waiting for a gap (see `wait_for_room`).
    pub spread: f64,
}

/// Decides whether `lead` may be sent at `now`.
pub(crate) async fn plan_send(
    store: &dyn Store,
    mailboxes: &SendingMailboxes,
    agent: &Agent,
    lead: &Lead,
    now: Timestamp,
    chance: Chance,
) -> Result<SendPlan, StoreError> {
    let policy = &agent.sending;
    if let Some(window) = &policy.window {
        let zone = policy.zone_for(lead.contact.time_zone.as_deref());
        if let Some(opening) = window.next_opening(zone, now) {
            let why = format!("outside the send window ({} in {zone})", window.describe());
            return Ok(SendPlan::Wait { until: opening, why });
        }
    }
    let mut slots = Vec::new();
    if let Some(cap) = policy.daily_cap {
        let (meter, day) = (agent_meter(agent.id), policy.time_zone.day_of(now));
        if store.meter_usage(&meter, day).await?.sent >= cap {
            let why = format!("the agent has sent its {cap} emails for today ({})", policy.time_zone);
            return Ok(SendPlan::Wait { until: policy.time_zone.next_midnight(now), why });
        }
        slots.push(SendingSlot { meter, day, cap, gap: None });
    }
    // Follow-ups leave from the mailbox that started the thread, so the lead sees one sender.
    // An agent without a pool whose sender is itself a configured mailbox sends through it, and
    // keeps that mailbox's pace like every other agent sending from it.
    let candidates: Vec<&EmailAddress> = match lead.thread_mailbox() {
        Some(mailbox) => vec![mailbox],
        None if policy.mailboxes.is_empty() && mailboxes.get(&agent.sender.email).is_some() => vec![&agent.sender.email],
        None => policy.mailboxes.iter().collect(),
    };
    if candidates.is_empty() {
        return Ok(SendPlan::Send { mailbox: None, slots });
    }
    let mut standings = Vec::new();
    let mut paused = Vec::new();
    for address in &candidates {
        let Some(pace) = mailboxes.get(address) else { continue };
        if let Some(pause) = store.mailbox_standing(&mailbox_meter(&pace.address)).await?.paused {
            paused.push(pause.reason);
            continue;
        }
        let day = pace.time_zone.day_of(now);
        let usage = store.meter_usage(&mailbox_meter(&pace.address), day).await?;
        standings.push(Standing {
            pace: pace.clone(),
            day,
            room: pace.daily_cap.saturating_sub(usage.sent),
            next_send_at: usage.next_send_at,
            last_sent_at: usage.last_sent_at,
        });
    }
    if standings.is_empty() && !paused.is_empty() {
        return Ok(SendPlan::Misconfigured(format!(
            "every mailbox this lead may be sent from paused by itself ({}); resume it with POST /api/v1/mailboxes/{{address}}/resume",
            paused.join("; ")
        )));
    }
    if standings.is_empty() {
        let names: Vec<String> = candidates.iter().map(|a| a.to_string()).collect();
        return Ok(SendPlan::Misconfigured(format!(
            "no mailbox this lead may be sent from is configured ({}); add it to the mailbox settings",
            names.join(", ")
        )));
    }
    let ready = |s: &Standing| s.room > 0 && s.next_send_at.is_none_or(|at| at <= now);
    // The mailbox with most room today; among equals the one that sent least recently, and
    // among those one at random, so workers deciding at the same moment spread out.
    let rank = |s: &Standing| (s.room, std::cmp::Reverse(s.last_sent_at));
    let best = standings.iter().filter(|s| ready(s)).map(rank).max();
    let equals: Vec<&Standing> = standings.iter().filter(|s| ready(s) && Some(rank(s)) == best).collect();
    let chosen = (!equals.is_empty()).then(|| equals[((chance.spread * equals.len() as f64) as usize).min(equals.len() - 1)]);
    let Some(chosen) = chosen else {
        return Ok(wait_for_room(&standings, now, chance.spread));
    };
    let pace = &chosen.pace;
    let gap = pace.min_gap + Duration::milliseconds((pace.gap_jitter.num_milliseconds() as f64 * chance.jitter.clamp(0.0, 1.0)) as i64);
    slots.push(SendingSlot {
        meter: mailbox_meter(&pace.address),
        day: chosen.day,
        cap: pace.daily_cap,
        gap: Some(SlotGap { now, next_send_at: now + gap }),
    });
    Ok(SendPlan::Send { mailbox: Some(pace.clone()), slots })
}

/// The earliest time one of the candidates has room again, and why none has now.
///
/// Leads waiting for a mailbox's gap are spread over the time its remaining room takes to send
/// (`spread` of `room × gap` after the gap ends) rather than all woken when it ends: of many
/// leads waiting for one mailbox only one can take each gap, and waking them all at once would
/// cost a wake-up and a deferral per lead per send.
fn wait_for_room(standings: &[Standing], now: Timestamp, spread: f64) -> SendPlan {
    let free_at = |s: &Standing| if s.room == 0 { s.pace.time_zone.next_midnight(now) } else { s.next_send_at.unwrap_or(now) };
    let first = standings.iter().min_by_key(|s| free_at(s)).expect("at least one standing");
    if standings.iter().all(|s| s.room == 0) {
        let caps: Vec<String> = standings.iter().map(|s| format!("{} {}/day", s.pace.address, s.pace.daily_cap)).collect();
        let why = format!("every mailbox it may be sent from has reached its daily cap ({})", caps.join(", "));
        return SendPlan::Wait { until: free_at(first), why };
    }
    let rest_of_day = first.pace.min_gap * (first.room.saturating_sub(1) as i32);
    let until = free_at(first) + Duration::milliseconds((rest_of_day.num_milliseconds() as f64 * spread.clamp(0.0, 1.0)) as i64);
    let why = format!("{} keeps a gap of at least {} s between sends", first.pace.address, first.pace.min_gap.num_seconds());
    SendPlan::Wait { until, why }
}
