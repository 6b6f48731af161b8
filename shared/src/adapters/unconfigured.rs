//! Stand-ins for optional features that are switched off. They answer with a clear error that
//! names what to configure, so a request for a missing feature is a 4xx, never a crash.

use async_trait::async_trait;

use crate::ports::{LeadSource, LeadSourceError, LeadSourceSpec, SourcedLeads};

pub struct NoLeadSources;

#[async_trait]
impl LeadSource for NoLeadSources {
    async fn find_leads(&self, spec: &LeadSourceSpec) -> Result<SourcedLeads, LeadSourceError> {
        Err(LeadSourceError::NotConfigured(spec.provider()))
    }
}

/// A queue whose URL is not configured: every enqueue says which setting is missing. Lets
/// operator commands (API keys) run with only the table configured.
pub struct UnconfiguredQueue {
    pub missing: String,
}

#[async_trait]
impl crate::ports::Queue for UnconfiguredQueue {
    async fn send(&self, _queue: crate::ports::StepQueue, _bodies: Vec<String>) -> Result<(), crate::ports::QueueError> {
        Err(crate::ports::QueueError::Unavailable(format!("{} is not set", self.missing)))
    }

    async fn backlog(&self, _queue: crate::ports::StepQueue) -> Result<u64, crate::ports::QueueError> {
        Err(crate::ports::QueueError::Unavailable(format!("{} is not set", self.missing)))
    }
}
