//! Starting an execution. The execution is written first (`created`), then its leads, then it is
//! marked `running` and the leads' research is enqueued. Workers leave the leads of a `created`
//! execution alone, so a start that stopped half-way has released nothing: its retry with the
//! same Idempotency-Key (which must carry the same request) writes the same leads again, by
//! their derived ids, and finishes it. A start that is never retried is failed by the sweep.

use super::{Committed, StepPorts};
use crate::domain::{Agent, AgentId, Execution, ExecutionCommand, ExecutionState, Lead, LeadContact, LeadId, LeadSourceKind};
use crate::ports::{FanOutMessage, QueueError, StepMessage, StepQueue, StoreError};

/// Executions up to this size get one research message per lead straight away.
const DIRECT_ENQUEUE_LIMIT: usize = 1_000;
/// Larger ones get one fan-out message per this many leads, expanded by the research worker.
const FAN_OUT_CHUNK: usize = 500;

/// What a start asks for.
pub struct StartRequest {
    pub agent: Agent,
    pub source: LeadSourceKind,
    pub contacts: Vec<LeadContact>,
    pub idempotency_key: Option<String>,
    /// A digest of the request, so a key reused with another request is refused.
    pub fingerprint: String,
}

#[derive(Debug)]
pub enum StartOutcome {
    Started(Execution),
    /// An earlier request with the same key started (or now finished starting) this execution.
    Replayed(Execution),
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the start with this Idempotency-Key did not finish in time and was failed: {0}; start again with a new key")]
    Failed(String),
    #[error("the Idempotency-Key was used for a different request (another body or path); use a new key for a new execution")]
    KeyReused,
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for StartError {
    fn from(error: StoreError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

pub struct StartExecution<'a> {
    pub ports: &'a StepPorts,
}

impl StartExecution<'_> {
    /// The execution an earlier request with this key started, when nothing is left to do for
    /// it: the caller can answer at once, without importing (or buying) the leads again. An
    /// unfinished start returns `None`: call `start` with the leads to finish it.
    pub async fn replayable(&self, agent_id: AgentId, key: &str, fingerprint: &str) -> Result<Option<Execution>, StartError> {
        let Some(existing) = self.ports.store.find_execution_by_idempotency_key(agent_id, key).await? else { return Ok(None) };
        if existing.request_fingerprint.as_deref() != Some(fingerprint) {
            return Err(StartError::KeyReused);
        }
        if existing.state == ExecutionState::Failed && !existing.leads_enqueued {
            return Err(StartError::Failed(existing.failure_reason.unwrap_or_default()));
        }
        let unfinished =
            existing.state == ExecutionState::Created || (existing.state == ExecutionState::Running && !existing.leads_enqueued);
        Ok((!unfinished).then_some(existing))
    }

    pub async fn start(&self, request: StartRequest) -> Result<StartOutcome, StartError> {
        let store = self.ports.store.as_ref();
        if let Some(key) = &request.idempotency_key
            && let Some(existing) = store.find_execution_by_idempotency_key(request.agent.id, key).await?
        {
            return self.replay(existing, &request).await;
        }
        let mut execution = Execution::new(
            request.agent.id,
            request.source,
            request.contacts.len() as u64,
            request.idempotency_key.clone(),
            self.ports.clock.now(),
        );
        execution.request_fingerprint = Some(request.fingerprint.clone());
        match store.create_execution(&execution).await {
            Ok(()) => {}
            // Two requests with one key raced; the other one created the execution.
            Err(StoreError::Conflict) if request.idempotency_key.is_some() => {
                let key = request.idempotency_key.as_deref().unwrap_or_default();
                let existing = store.find_execution_by_idempotency_key(request.agent.id, key).await?;
                let existing = existing.ok_or_else(|| StartError::Unavailable("the execution could not be created; retry".into()))?;
                return self.replay(existing, &request).await;
            }
            Err(e) => return Err(e.into()),
        }
        self.finish(execution, &request.contacts).await.map(StartOutcome::Started)
    }

    async fn replay(&self, existing: Execution, request: &StartRequest) -> Result<StartOutcome, StartError> {
        if existing.request_fingerprint.as_deref() != Some(request.fingerprint.as_str()) {
            return Err(StartError::KeyReused);
        }
        let finished = match existing.state {
            ExecutionState::Failed if !existing.leads_enqueued => {
                return Err(StartError::Failed(existing.failure_reason.unwrap_or_default()));
            }
            ExecutionState::Created => self.finish(existing, &request.contacts).await?,
            ExecutionState::Running if !existing.leads_enqueued => self.enqueue_leads(existing).await?,
            _ => existing,
        };
        Ok(StartOutcome::Replayed(finished))
    }

    /// Writes the leads, releases them to the workers and enqueues their research.
    async fn finish(&self, execution: Execution, contacts: &[LeadContact]) -> Result<Execution, StartError> {
        let leads = leads_of(&execution, contacts);
        self.ports.store.write_leads(&execution, &leads).await?;
        let running = match execution.commanded(ExecutionCommand::Start, self.ports.clock.now()) {
            Ok(start) => match self.ports.commit(&start).await {
                Ok(()) => start.next_execution().cloned().unwrap_or(execution),
                Err(Committed::Refused(StoreError::Conflict)) => self.ports.store.get_execution(execution.id).await?,
                Err(Committed::Refused(e)) => return Err(e.into()),
                Err(Committed::NotEnqueued(why)) => return Err(StartError::Unavailable(why)),
            },
            // Started meanwhile by a concurrent retry, or failed by the sweep: what is stored says.
            Err(_) => self.ports.store.get_execution(execution.id).await?,
        };
        if running.state == ExecutionState::Failed {
            return Err(StartError::Failed(running.failure_reason.unwrap_or_default()));
        }
        if running.state != ExecutionState::Running || running.leads_enqueued {
            return Ok(running);
        }
        self.enqueue_leads(running).await
    }

    async fn enqueue_leads(&self, execution: Execution) -> Result<Execution, StartError> {
        let leads: Vec<LeadId> = (0..execution.lead_count as usize).map(|row| LeadId::for_row(execution.id, row)).collect();
        self.enqueue_research(&execution, &leads).await.map_err(|e| {
            StartError::Unavailable(format!(
                "the execution started but its leads could not all be enqueued ({e}); retry with the same Idempotency-Key, or the \
                 scheduled sweep enqueues them"
            ))
        })?;
        let enqueued = execution.leads_enqueued(self.ports.clock.now());
        match self.ports.store.commit(&enqueued).await {
            Ok(()) => Ok(enqueued.next_execution().cloned().unwrap_or(execution)),
            // A concurrent retry or a control command changed it; the leads are enqueued anyway.
            Err(StoreError::Conflict) => Ok(self.ports.store.get_execution(execution.id).await?),
            Err(e) => Err(e.into()),
        }
    }

    /// One research message per lead; for a large start, fan-out messages instead, so the
    /// request stays short whatever the number of leads.
    async fn enqueue_research(&self, execution: &Execution, leads: &[LeadId]) -> Result<(), QueueError> {
        let queue = &self.ports.queue;
        if leads.len() <= DIRECT_ENQUEUE_LIMIT {
            let messages: Vec<StepMessage> =
                leads.iter().map(|&lead_id| StepMessage { execution_id: execution.id, lead_id, step: 0 }).collect();
            return queue.enqueue(StepQueue::Research, &messages).await;
        }
        let fan_outs: Vec<FanOutMessage> = leads
            .chunks(FAN_OUT_CHUNK)
            .map(|chunk| FanOutMessage { execution_id: execution.id, step: 0, fan_out: chunk.to_vec() })
            .collect();
        queue.enqueue_fan_out(StepQueue::Research, &fan_outs).await
    }
}

/// The execution's leads, the same every time they are built from the same request.
fn leads_of(execution: &Execution, contacts: &[LeadContact]) -> Vec<Lead> {
    contacts
        .iter()
        .enumerate()
        .map(|(row, contact)| Lead::new(execution.id, row, execution.agent_id, contact.clone(), execution.created_at))
        .collect()
}
