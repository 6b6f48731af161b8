//! What every worker step checks before it works on a lead, and what happens to a lead whose
//! message could not be handled after every retry.

use super::{Interrupted, RetryableStepError, StepOutcome, StepPorts, StepResult, deciding};
use crate::domain::transition::SEND_CLAIM_TIMEOUT;
use crate::domain::{Execution, ExecutionState, Lead, LeadEvent, LeadId, LeadState, LeadStateKind, SkipReason};

/// What the execution's state means for a lead a worker is about to advance.
pub(crate) enum Admission {
    Proceed(Execution),
    Stop(StepOutcome),
}

/// A paused execution holds the lead where it is; a finished one skips it; one whose start has
/// not finished makes the message wait.
pub(crate) async fn admit(ports: &StepPorts, lead: &Lead) -> Result<Admission, Interrupted> {
    let execution = ports.store.get_execution(lead.execution_id).await?;
    let now = ports.clock.now();
    match execution.state {
        ExecutionState::Running => Ok(Admission::Proceed(execution)),
        ExecutionState::Created => Err(Interrupted::Retry("the execution's start has not finished yet".into())),
        ExecutionState::Paused => {
            if !lead.on_hold
                && let Ok(hold) = lead.advanced(LeadEvent::Hold, now)
            {
                ports.commit(&hold).await?;
            }
            Ok(Admission::Stop(StepOutcome::Held))
        }
        finished => {
            let reason = if finished == ExecutionState::Failed { SkipReason::ExecutionFailed } else { SkipReason::ExecutionCancelled };
            if let Ok(skip) = lead.advanced(LeadEvent::Skip(reason), now) {
                ports.commit(&skip).await?;
            }
            Ok(Admission::Stop(StepOutcome::Skipped))
        }
    }
}

/// Skips the lead when its address or its domain is on the suppression list. A lookup that
/// fails is an error (the message is retried), never a silent "not suppressed".
pub(crate) async fn skip_if_suppressed(ports: &StepPorts, lead: &Lead) -> Result<bool, Interrupted> {
    let Some(entry) = ports.store.suppression_for(&lead.contact.email).await? else { return Ok(false) };
    let Ok(skip) = lead.advanced(LeadEvent::Skip(SkipReason::Suppressed), ports.clock.now()) else { return Ok(true) };
    let skip = skip.with_log_message(format!("{} is suppressed ({})", lead.contact.email, entry.reason));
    ports.commit(&skip).await?;
    Ok(true)
}

/// Fails the lead with `reason`, or parks it when its send may have left: it is never retried
/// blindly.
pub(crate) async fn abandon(ports: &StepPorts, lead_id: LeadId, reason: String) -> StepResult {
    let reason = reason.as_str();
    deciding(|| async move {
        let Some(lead) = ports.load_lead(lead_id).await? else { return Ok(StepOutcome::Ignored("no such lead".into())) };
        let (event, outcome) = match &lead.state {
            // A live worker may still own a young claim: the sweep parks it once it is old.
            LeadState::Sending { claim } if ports.clock.now() - claim.claimed_at < SEND_CLAIM_TIMEOUT => {
                return Ok(StepOutcome::Ignored("a send is in flight; the sweep parks it if its worker stopped".into()));
            }
            LeadState::Sending { .. } => (LeadEvent::Park(reason.to_string()), StepOutcome::Parked),
            _ => (LeadEvent::Fail(reason.to_string()), StepOutcome::Failed),
        };
        match lead.advanced(event, ports.clock.now()) {
            Ok(transition) => {
                ports.commit(&transition).await?;
                Ok(outcome)
            }
            Err(_) => Ok(StepOutcome::Ignored(format!("lead is {}", lead.state.kind()))),
        }
    })
    .await
}

/// Fails every lead of a fan-out message that is still waiting for research, once the message
/// itself could not be expanded after every retry.
pub(crate) async fn abandon_fan_out(ports: &StepPorts, leads: &[LeadId], reason: &str) -> Result<u64, RetryableStepError> {
    let mut failed = 0;
    for &lead_id in leads {
        let still_queued = ports.load_lead(lead_id).await?.is_some_and(|l| l.state.kind() == LeadStateKind::Queued);
        if still_queued && abandon(ports, lead_id, reason.to_string()).await? == StepOutcome::Failed {
            failed += 1;
        }
    }
    Ok(failed)
}
