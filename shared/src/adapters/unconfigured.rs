//! Stand-ins for optional features that are switched off. They answer with a clear error that
//! names what to configure, so a request for a missing feature is a 4xx, never a crash.

use async_trait::async_trait;

use crate::domain::LeadContact;
use crate::ports::{LeadSource, LeadSourceError, LeadSourceSpec};

pub struct NoLeadSources;

#[async_trait]
impl LeadSource for NoLeadSources {
    async fn find_leads(&self, spec: &LeadSourceSpec) -> Result<Vec<LeadContact>, LeadSourceError> {
        Err(LeadSourceError::NotConfigured(spec.provider()))
    }
}
