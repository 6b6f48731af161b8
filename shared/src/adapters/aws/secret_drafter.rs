//! The LLM drafter of the deployed functions, whose key comes from the secret. A key the model
//! refuses pauses the execution (a configuration fault); once someone fixes the key in the
//! secret and resumes, the warm function must use the new key, not the one its cold start read.
//! So after a configuration fault the secret is read again (at most every `RELOAD_AFTER`) and
//! the drafter rebuilt from it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::AgentSecrets;
use crate::adapters::llm_drafter::{LlmDrafter, LlmSettings};
use crate::ports::{Clock, DraftError, DraftOutcome, DraftRequest, Drafter, Verification, VerifyRequest};

/// How long after a reload (or the fault) the secret is read again.
const RELOAD_AFTER: Duration = Duration::from_secs(10);

pub struct SecretReloadingDrafter {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    /// The model settings; only the key is taken from the secret again.
    llm: LlmSettings,
    clock: Arc<dyn Clock>,
    reload_after: Duration,
    state: Mutex<DrafterState>,
    /// Held while the secret is read again, so concurrent drafts wait for the new key instead of
    /// meeting the refused one again (and pausing the execution again).
    reloading: tokio::sync::Mutex<()>,
}

struct DrafterState {
    drafter: Arc<dyn Drafter>,
    /// Counts rebuilds, so a refusal met by an older drafter does not mark the new one stale.
    generation: u64,
    /// Set by a configuration fault: the next draft reads the secret again first.
    stale: bool,
    last_reload: Option<Instant>,
}

impl DrafterState {
    fn reload_due(&self, reload_after: Duration) -> bool {
        self.stale && self.last_reload.is_none_or(|at| at.elapsed() >= reload_after)
    }
}

impl SecretReloadingDrafter {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: String, llm: LlmSettings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let drafter: Arc<dyn Drafter> = Arc::new(LlmDrafter::new(llm.clone(), clock.clone())?);
        let state = Mutex::new(DrafterState { drafter, generation: 0, stale: false, last_reload: None });
        Ok(Self { client, secret_id, llm, clock, reload_after: RELOAD_AFTER, state, reloading: tokio::sync::Mutex::new(()) })
    }

    /// Reads the secret again after `reload_after` instead of the default 10 s.
    pub fn reloading_after(mut self, reload_after: Duration) -> Self {
        self.reload_after = reload_after;
        self
    }

    fn snapshot(&self) -> (Arc<dyn Drafter>, u64, bool) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (state.drafter.clone(), state.generation, state.reload_due(self.reload_after))
    }

    /// The drafter to use now (and its generation), rebuilt from the secret if a fault made it
    /// stale.
    async fn current(&self) -> (Arc<dyn Drafter>, u64) {
        let (drafter, generation, due) = self.snapshot();
        if !due {
            return (drafter, generation);
        }
        let _reloading = self.reloading.lock().await;
        let (drafter, generation, due) = self.snapshot();
        if !due {
            // Another draft reloaded it meanwhile.
            return (drafter, generation);
        }
        self.state.lock().unwrap_or_else(|p| p.into_inner()).last_reload = Some(Instant::now());
        let rebuilt = self.rebuild().await;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rebuilt) = rebuilt {
            state.drafter = rebuilt;
            state.generation += 1;
            state.stale = false;
        }
        (state.drafter.clone(), state.generation)
    }

    /// A refused key marks the drafter of `generation` stale: the next call reads the secret.
    fn note_refusal<T>(&self, result: &Result<T, DraftError>, generation: u64) {
        if matches!(result, Err(DraftError::Configuration(_))) {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.generation == generation {
                state.stale = true;
            }
        }
    }

    async fn rebuild(&self) -> Option<Arc<dyn Drafter>> {
        let secrets = match AgentSecrets::load(&self.client, &self.secret_id).await {
            Ok(secrets) => secrets,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "the secret could not be read again after a refused model key");
                return None;
            }
        };
        let key = secrets.openai_api_key.filter(|k| !k.expose_secret().trim().is_empty())?;
        let llm = LlmSettings { api_key: key, ..self.llm.clone() };
        match LlmDrafter::new(llm, self.clock.clone()) {
            Ok(drafter) => {
                tracing::info!("the drafter now uses the key the secret holds");
                Some(Arc::new(drafter))
            }
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "the drafter could not be rebuilt");
                None
            }
        }
    }
}

#[async_trait]
impl Drafter for SecretReloadingDrafter {
    async fn draft(&self, request: DraftRequest<'_>) -> Result<DraftOutcome, DraftError> {
        let (drafter, generation) = self.current().await;
        let outcome = drafter.draft(request).await;
        self.note_refusal(&outcome, generation);
        outcome
    }

    async fn verify(&self, request: VerifyRequest<'_>) -> Result<Option<Verification>, DraftError> {
        let (drafter, generation) = self.current().await;
        let verification = drafter.verify(request).await;
        self.note_refusal(&verification, generation);
        verification
    }

    async fn read_reply(&self, reply: &str) -> Result<Option<crate::domain::IntentReading>, DraftError> {
        let (drafter, generation) = self.current().await;
        let reading = drafter.read_reply(reply).await;
        self.note_refusal(&reading, generation);
        reading
    }
}
