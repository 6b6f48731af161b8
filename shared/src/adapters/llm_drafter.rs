//! Drafting with an LLM through any OpenAI-compatible chat completions API (OpenAI, Azure,
//! Ollama, vLLM): the agent's brief, the sequence step, the lead record and the research facts
//! go in; a structured answer (subject, body, the facts used) comes out, to be checked by the
//! draft guards. Transient failures (429, 5xx, timeouts, unreadable answers) are retried here
//! with exponential backoff and jitter; what is left after the last try goes back to the queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::EmailDraft;
use crate::ports::{Clock, DraftError, DraftOutcome, DraftRequest, Drafter, TokenUsage};

#[derive(Clone, Debug)]
pub struct LlmSettings {
    /// For example `https://api.openai.com/v1`, or `http://localhost:11434/v1` for Ollama.
    pub base_url: String,
    pub api_key: SecretString,
    pub model: String,
    pub temperature: f32,
    /// One request, from connect to the last byte.
    pub timeout: Duration,
    /// Requests per draft before the failure is handed back to the queue.
    pub max_attempts: u32,
}

pub struct LlmDrafter {
    client: Client<OpenAIConfig>,
    settings: LlmSettings,
    clock: Arc<dyn Clock>,
}

/// What the model must answer with.
#[derive(Debug, Deserialize)]
struct ModelDraft {
    subject: String,
    body: String,
    #[serde(default)]
    facts_used: Vec<String>,
}

fn answer_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "subject": {"type": "string", "description": "The subject line; empty for a follow-up, which replies in the thread."},
            "body": {"type": "string", "description": "The plain-text body, greeting to sign-off, without the footer."},
            "facts_used": {"type": "array", "items": {"type": "string"}, "description": "Each research fact the body relies on, copied verbatim."}
        },
        "required": ["subject", "body", "facts_used"],
        "additionalProperties": false
    })
}

const SYSTEM_PROMPT: &str = "You write one cold email for a B2B sales team, as a thoughtful sales development representative would \
after ten minutes of research. Rules: greet the lead by the first name given, exactly; name the company exactly as given; \
state no fact about the lead or their company that is not in RESEARCH, and copy every fact you use verbatim into facts_used; \
if RESEARCH is empty, write without company facts rather than inventing any; no placeholders, no links, no spammy phrases; \
at most 120 words; one clear call to action; plain text; sign with the sender's name. Answer with the JSON object only.";

/// The prompt's user message: everything the model may draw on, and nothing else.
pub fn user_prompt(request: &DraftRequest<'_>) -> String {
    let agent = request.agent;
    let lead = &request.lead.contact;
    let step = agent.step(request.step);
    let research: Vec<Value> =
        request.research.map(|r| r.facts.iter().map(|f| json!({"fact": f.text, "source": f.source_url})).collect()).unwrap_or_default();
    let brief = json!({
        "SENDER": {"name": agent.sender.name, "company": agent.sender.company},
        "OFFER": {"product": agent.pitch.product, "value_proposition": agent.pitch.value_proposition,
                  "target_audience": agent.pitch.target_audience, "tone": agent.pitch.tone, "call_to_action": agent.pitch.call_to_action},
        "STEP": {"number": request.step + 1, "is_follow_up": request.step > 0,
                 "outline": step.map(|s| s.body.clone()), "instructions": step.and_then(|s| s.prompt.clone()),
                 "earlier_subjects": request.previous_subjects},
        "LEAD": {"first_name": lead.first_name, "last_name": lead.last_name, "title": lead.title, "company": lead.company},
        "RESEARCH": research,
        "RESEARCH_SUMMARY": request.research.and_then(|r| r.summary.clone()),
        "PREVIOUS_ATTEMPT_REFUSED_BECAUSE": request.feedback,
    });
    serde_json::to_string_pretty(&brief).unwrap_or_default()
}

/// Why one request failed, and whether another may succeed.
enum Attempt {
    Retry(String),
    Stop(String),
    /// The key was refused, the account has no access, or the model does not exist: every
    /// draft would fail the same way until the setting is fixed.
    Misconfigured(String),
}

fn classify(error: OpenAIError) -> Attempt {
    match error {
        OpenAIError::ApiError(api) => {
            let status = api.status_code.as_u16();
            let message = format!("{status} {}", api.api_error.message);
            match status {
                429 | 408 | 500.. => Attempt::Retry(message),
                401 | 403 | 404 => Attempt::Misconfigured(message),
                _ => Attempt::Stop(message),
            }
        }
        OpenAIError::Reqwest(e) if e.is_timeout() => Attempt::Retry("the model did not answer in time".into()),
        OpenAIError::Reqwest(e) => Attempt::Retry(format!("could not reach the model: {e}")),
        OpenAIError::JSONDeserialize(e, _) => Attempt::Retry(format!("the answer was not readable: {e}")),
        other => Attempt::Stop(other.to_string()),
    }
}

/// A pause that doubles per attempt, with jitter so that many workers do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let base = 500u64.saturating_mul(1 << attempt.min(4));
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base)) as u64;
    Duration::from_millis(base / 2 + jitter).min(Duration::from_secs(10))
}

impl LlmDrafter {
    pub fn new(settings: LlmSettings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(settings.timeout).connect_timeout(Duration::from_secs(5)).build()?;
        let config =
            OpenAIConfig::new().with_api_base(settings.base_url.trim_end_matches('/')).with_api_key(settings.api_key.expose_secret());
        // The plain transport: retries, backoff and jitter are decided here, per draft.
        let client = Client::with_config(config).with_http_client(http.clone()).with_http_service(ReqwestService::new(http));
        Ok(Self { client, settings, clock })
    }

    fn request_body(&self, user: &str) -> Value {
        json!({
            "model": self.settings.model,
            "temperature": self.settings.temperature,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "outreach_email", "strict": true, "schema": answer_schema()}}
        })
    }

    /// The draft in an answer, or why the answer is unusable.
    fn read_answer(answer: &Value) -> Result<(ModelDraft, String), String> {
        let message = &answer["choices"][0]["message"];
        if let Some(refusal) = message["refusal"].as_str().filter(|r| !r.is_empty()) {
            return Err(format!("the model refused: {refusal}"));
        }
        let content = message["content"].as_str().ok_or("the answer has no message content")?;
        let draft = serde_json::from_str::<ModelDraft>(content).map_err(|e| format!("the answer is not the expected JSON: {e}"))?;
        Ok((draft, content.to_string()))
    }
}

#[async_trait]
impl Drafter for LlmDrafter {
    async fn draft(&self, request: DraftRequest<'_>) -> Result<DraftOutcome, DraftError> {
        let user = user_prompt(&request);
        let body = self.request_body(&user);
        let mut last_problem = String::new();
        for attempt in 0..self.settings.max_attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt - 1)).await;
            }
            let started = Instant::now();
            let answer: Value = match self.client.chat().create_byot(body.clone()).await {
                Ok(answer) => answer,
                Err(error) => match classify(error) {
                    Attempt::Retry(why) => {
                        tracing::warn!(attempt = attempt + 1, %why, "the model call will be retried");
                        last_problem = why;
                        continue;
                    }
                    Attempt::Stop(why) => return Err(DraftError::Rejected(format!("the model refused the request: {why}"))),
                    Attempt::Misconfigured(why) => return Err(DraftError::Configuration(why)),
                },
            };
            let latency_ms = started.elapsed().as_millis() as u64;
            let (draft, content) = match Self::read_answer(&answer) {
                Ok(read) => read,
                Err(why) => {
                    last_problem = why;
                    continue;
                }
            };
            let usage = TokenUsage {
                prompt_tokens: answer["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
                completion_tokens: answer["usage"]["completion_tokens"].as_u64().unwrap_or(0),
            };
            // The prompt holds the brief, the lead and the research: no key or credential.
            let transcript = json!({
                "model": self.settings.model,
                "attempt": attempt + 1,
                "latency_ms": latency_ms,
                "prompt": {"system": SYSTEM_PROMPT, "user": user},
                "response": content,
            });
            return Ok(DraftOutcome {
                draft: EmailDraft {
                    lead_id: request.lead.id,
                    step: request.step,
                    subject: draft.subject.trim().to_string(),
                    body: draft.body.trim().to_string(),
                    facts_used: draft.facts_used,
                    drafted_by: format!("llm:{}", self.settings.model),
                    created_at: self.clock.now(),
                },
                usage: Some(usage),
                transcript: Some(transcript),
            });
        }
        Err(DraftError::Retryable(format!("no usable answer after {} attempts: {last_problem}", self.settings.max_attempts.max(1))))
    }
}
