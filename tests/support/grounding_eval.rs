//! The grounding evaluation: labelled drafts, each with the research, lead and brief it was
//! written from (`tests/corpus/grounding`), run through the draft guards, offline and with the
//! verifier against a scripted model; and labelled web sentences run through research's
//! instruction and tagline filter. Prints recall (invented drafts refused) and the
//! false-refusal rate, per kind of claim.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sales_agent::adapters::llm_drafter::{LlmDrafter, LlmSettings};
use sales_agent::domain::draft_guard::{DraftContext, check};
use sales_agent::domain::research_text::{Passage, classify, sort_passages};
use sales_agent::domain::{Agent, AgentId, AgentSpec, EmailDraft, ExecutionId, Lead, LeadContact, LeadId, ResearchFact, ResearchReport};
use sales_agent::ports::{Drafter, SystemClock, VerifyRequest};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/grounding")
}

/// The labelled sets: the one the guard was developed against, one written apart from it (whose
/// misses led to general fixes once), and a second written apart and never used to change it.
pub const SETS: &[(&str, &str)] = &[("development", ""), ("held out", "heldout"), ("held out, second", "heldout-2")];

fn set_dir(set: &str) -> PathBuf {
    corpus_dir().join(set)
}

#[derive(Deserialize)]
struct Scenario {
    id: String,
    agent: Value,
    lead: LeadContact,
    research: ScenarioResearch,
}

#[derive(Deserialize)]
struct ScenarioResearch {
    #[serde(default)]
    facts: Vec<ResearchFact>,
    #[serde(default)]
    taglines: Vec<ResearchFact>,
}

#[derive(Clone, Deserialize)]
pub struct VerifierClaim {
    pub claim: String,
    pub about: String,
    pub source: String,
}

#[derive(Clone, Deserialize)]
pub struct Case {
    pub id: String,
    scenario: String,
    pub step: u32,
    pub subject: String,
    pub body: String,
    pub label: String,
    pub kind: String,
    #[serde(default)]
    pub invented: Option<String>,
    #[serde(default)]
    pub verifier_claims: Vec<VerifierClaim>,
}

impl Case {
    pub fn should_refuse(&self) -> bool {
        self.label == "refuse"
    }
}

/// A scenario as the product holds it: an agent, a lead, and research sorted by the same
/// filter web research applies (instructions dropped, taglines apart).
pub struct Fixture {
    pub agent: Agent,
    pub lead: Lead,
    pub research: Option<ResearchReport>,
}

fn fixture(scenario: &Scenario) -> Fixture {
    let mut spec = scenario.agent.clone();
    spec["name"] = json!(scenario.id);
    spec["sequence"] = json!([{"subject": "{{company}}", "body": "{{first_name}}"}, {"wait_days": 3, "body": "{{first_name}}"}]);
    let spec: AgentSpec = serde_json::from_value(spec).unwrap_or_else(|e| panic!("scenario {}: {e}", scenario.id));
    if let Err(e) = spec.validate() {
        panic!("scenario {}: {e:?}", scenario.id);
    }
    let agent = spec.into_agent(AgentId::generate(), chrono::Utc::now());
    let lead = Lead::new(ExecutionId::generate(), 0, agent.id, scenario.lead.clone(), chrono::Utc::now());
    let passages = scenario.research.facts.iter().chain(&scenario.research.taglines).cloned().collect();
    let (facts, mut taglines, _) = sort_passages(passages);
    taglines.dedup();
    let research = (!facts.is_empty() || !taglines.is_empty()).then(|| ResearchReport {
        company_domain: scenario.lead.research_domain().unwrap_or_default(),
        summary: None,
        facts,
        taglines,
        note: None,
        gathered_at: chrono::Utc::now(),
    });
    Fixture { agent, lead, research }
}

pub fn load(set: &str) -> (BTreeMap<String, Fixture>, Vec<Case>) {
    let read = |name: &str| std::fs::read_to_string(set_dir(set).join(name)).unwrap_or_else(|e| panic!("{set}/{name}: {e}"));
    let scenarios: Vec<Scenario> = serde_json::from_str(&read("scenarios.json")).expect("scenarios.json");
    let cases: Vec<Case> = serde_json::from_str(&read("drafts.json")).expect("drafts.json");
    let fixtures = scenarios.iter().map(|s| (s.id.clone(), fixture(s))).collect();
    (fixtures, cases)
}

fn draft_of(case: &Case, lead: LeadId) -> EmailDraft {
    EmailDraft {
        lead_id: lead,
        step: case.step,
        subject: case.subject.clone(),
        body: case.body.clone(),
        facts_used: Vec::new(),
        drafted_by: "evaluation".into(),
        created_at: chrono::Utc::now(),
    }
}

/// The guard's reasons for refusing one case; empty when it would be sent.
pub fn offline_reasons(fixture: &Fixture, case: &Case) -> Vec<String> {
    let context = DraftContext {
        agent: &fixture.agent,
        contact: &fixture.lead.contact,
        research: fixture.research.as_ref(),
        is_follow_up: case.step > 0,
    };
    check(&draft_of(case, fixture.lead.id), &context, &[]).into_iter().map(|v| v.reason).collect()
}

/// One case's outcome.
pub struct Outcome {
    pub case: Case,
    pub reasons: Vec<String>,
}

impl Outcome {
    pub fn refused(&self) -> bool {
        !self.reasons.is_empty()
    }

    pub fn correct(&self) -> bool {
        self.refused() == self.case.should_refuse()
    }
}

#[derive(Default)]
pub struct Figures {
    pub invented: u32,
    pub refused_invented: u32,
    pub clean: u32,
    pub refused_clean: u32,
}

impl Figures {
    pub fn recall(&self) -> f64 {
        f64::from(self.refused_invented) / f64::from(self.invented.max(1))
    }

    pub fn false_refusal_rate(&self) -> f64 {
        f64::from(self.refused_clean) / f64::from(self.clean.max(1))
    }
}

pub fn figures(outcomes: &[Outcome]) -> Figures {
    let mut figures = Figures::default();
    for outcome in outcomes {
        if outcome.case.should_refuse() {
            figures.invented += 1;
            figures.refused_invented += u32::from(outcome.refused());
        } else {
            figures.clean += 1;
            figures.refused_clean += u32::from(outcome.refused());
        }
    }
    figures
}

pub fn evaluate_offline(set: &str) -> Vec<Outcome> {
    let (fixtures, cases) = load(set);
    cases
        .into_iter()
        .map(|case| {
            let fixture = &fixtures[&case.scenario];
            Outcome { reasons: offline_reasons(fixture, &case), case }
        })
        .collect()
}

/// A model that answers the verifier as each case's labels say a careful model would.
pub struct ScriptedVerifier {
    pub server: wiremock::MockServer,
}

struct ScriptedAnswers(Vec<Case>);

impl wiremock::Respond for ScriptedAnswers {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let user = body["messages"][1]["content"].as_str().unwrap_or_default();
        let input: Value = serde_json::from_str(user).unwrap_or_default();
        let email = &input["EMAIL"];
        let case = self.0.iter().find(|c| email["body"] == c.body.trim() && email["subject"] == c.subject.trim());
        let claims: Vec<Value> = case
            .map(|c| {
                c.verifier_claims.iter().map(|v| json!({"claim": v.claim, "about": v.about, "source": v.source, "evidence": ""})).collect()
            })
            .unwrap_or_default();
        let content = json!({"claims": claims}).to_string();
        wiremock::ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-eval", "object": "chat.completion", "created": 0, "model": "scripted",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020}
        }))
    }
}

/// The guards, then (for drafts they pass) the verifier against the scripted model.
pub async fn evaluate_with_verifier(set: &str) -> Vec<Outcome> {
    let (fixtures, cases) = load(set);
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/chat/completions"))
        .respond_with(ScriptedAnswers(cases.clone()))
        .mount(&server)
        .await;
    let settings = LlmSettings {
        base_url: format!("{}/v1", server.uri()),
        api_key: secrecy::SecretString::from("test-key"),
        model: "scripted".into(),
        temperature: 0.0,
        timeout: std::time::Duration::from_secs(10),
        max_attempts: 1,
    };
    let verifier = LlmDrafter::new(settings, std::sync::Arc::new(SystemClock)).expect("verifier");
    let mut outcomes = Vec::new();
    for case in cases {
        let fixture = &fixtures[&case.scenario];
        let mut reasons = offline_reasons(fixture, &case);
        if reasons.is_empty() {
            let request = VerifyRequest {
                agent: &fixture.agent,
                lead: &fixture.lead,
                research: fixture.research.as_ref(),
                subject: case.subject.trim(),
                body: case.body.trim(),
            };
            let verification = verifier.verify(request).await.expect("the scripted model answers").expect("a model verifies");
            reasons.extend(verification.unsupported.into_iter().map(|c| c.why));
        }
        outcomes.push(Outcome { case, reasons });
    }
    outcomes
}

/// Recall and false refusals overall and per kind, and every case read wrong.
pub fn table(title: &str, outcomes: &[Outcome]) -> String {
    let mut out = format!("{title}\n{:<28} {:>6} {:>8}\n", "kind", "cases", "correct");
    let mut kinds: BTreeMap<(String, String), (u32, u32)> = BTreeMap::new();
    for o in outcomes {
        let entry = kinds.entry((o.case.label.clone(), o.case.kind.clone())).or_default();
        entry.0 += 1;
        entry.1 += u32::from(o.correct());
    }
    for ((label, kind), (total, correct)) in &kinds {
        out += &format!("{:<28} {:>6} {:>8}\n", format!("{label}/{kind}"), total, correct);
    }
    let f = figures(outcomes);
    out += &format!(
        "recall {:.1}% ({} of {} invented drafts refused); false refusals {:.1}% ({} of {} clean drafts)\n",
        100.0 * f.recall(),
        f.refused_invented,
        f.invented,
        100.0 * f.false_refusal_rate(),
        f.refused_clean,
        f.clean
    );
    for o in outcomes.iter().filter(|o| !o.correct()) {
        let what =
            if o.refused() { format!("refused: {}", o.reasons.join("; ")) } else { format!("sent, but invents {:?}", o.case.invented) };
        out += &format!("  {} ({}): {what}\n", o.case.id, o.case.kind);
    }
    out
}

#[derive(Deserialize)]
pub struct LabelledSentence {
    pub text: String,
    pub label: String,
}

/// Each labelled web sentence with what research's filter reads it as.
pub fn evaluate_sentences(set: &str) -> Vec<(LabelledSentence, Passage)> {
    let text = std::fs::read_to_string(set_dir(set).join("research_sentences.json")).expect("research_sentences.json");
    let sentences: Vec<LabelledSentence> = serde_json::from_str(&text).expect("research_sentences.json");
    sentences
        .into_iter()
        .map(|s| {
            let read = classify(&s.text);
            (s, read)
        })
        .collect()
}

pub fn label_of(passage: Passage) -> &'static str {
    match passage {
        Passage::Fact => "fact",
        Passage::Instruction => "instruction",
        Passage::Tagline => "tagline",
    }
}

pub fn sentence_table(results: &[(LabelledSentence, Passage)]) -> String {
    let mut out = String::from("research sentences: label -> read as\n");
    let mut counts: BTreeMap<(String, &str), u32> = BTreeMap::new();
    for (s, read) in results {
        *counts.entry((s.label.clone(), label_of(*read))).or_default() += 1;
    }
    for ((label, read), n) in &counts {
        out += &format!("  {label:<12} -> {read:<12} {n}\n");
    }
    for (s, read) in results.iter().filter(|(s, r)| s.label != label_of(*r)) {
        out += &format!("  misread as {}: [{}] {}\n", label_of(*read), s.label, s.text);
    }
    out
}
