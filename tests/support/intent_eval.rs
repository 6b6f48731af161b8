//! The reply intent evaluation (`tests/corpus/replies/intents.json`): realistic replies to cold
//! emails, each labelled with the intent a sales rep would file it under (and, for a referral,
//! the colleague it names). Shared by the test and `cargo run -p sales-agent-tests --bin intent-eval`.

use std::collections::BTreeMap;

use sales_agent::inbound::intent::{IntentReading, ReplyIntent};
use sales_agent::inbound::reply_text::new_text;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct LabelledReply {
    pub id: String,
    #[serde(default)]
    pub subject: String,
    pub body: String,
    pub intent: String,
    #[serde(default)]
    pub referral: Option<LabelledReferral>,
}

#[derive(Debug, Deserialize)]
pub struct LabelledReferral {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// The sets: two the rules were written and corrected against (the second was held out for one
/// round, then used), and one written apart from them and never used to change them.
pub const SETS: [(&str, &str); 3] = [("dev", "intents.json"), ("dev-2", "intents-dev-2.json"), ("held-out", "intents-heldout.json")];

pub fn replies(file: &str) -> Vec<LabelledReply> {
    let path = format!("{}/corpus/replies/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the labelled replies")).expect("valid labelled replies")
}

/// One reply as the classifier read it.
pub struct Outcome {
    pub id: String,
    pub expected: ReplyIntent,
    pub got: IntentReading,
    /// For a referral with a labelled address: whether that address was captured.
    pub referral_address_found: Option<bool>,
}

/// Reads every labelled reply with `classify` (given the reply's new text), as the poller does.
pub fn evaluate(file: &str, classify: impl Fn(&str) -> IntentReading) -> Vec<Outcome> {
    replies(file)
        .into_iter()
        .map(|reply| {
            let expected = ReplyIntent::parse(&reply.intent).unwrap_or_else(|| panic!("{}: unknown intent {}", reply.id, reply.intent));
            let got = classify(&new_text(&reply.body));
            let labelled_email = reply.referral.as_ref().and_then(|r| r.email.clone());
            let referral_address_found = labelled_email.map(|email| {
                got.referral.as_ref().and_then(|r| r.email.as_deref()).is_some_and(|found| found.eq_ignore_ascii_case(&email))
            });
            Outcome { id: reply.id, expected, got, referral_address_found }
        })
        .collect()
}

/// Accuracy per labelled intent: (right, total).
pub fn per_intent(outcomes: &[Outcome]) -> BTreeMap<&'static str, (usize, usize)> {
    let mut table = BTreeMap::new();
    for outcome in outcomes {
        let entry = table.entry(outcome.expected.as_str()).or_insert((0, 0));
        entry.1 += 1;
        entry.0 += usize::from(outcome.got.intent == outcome.expected);
    }
    table
}

pub fn report(title: &str, outcomes: &[Outcome]) -> String {
    let mut out = format!("{title}\n{:<16} {:>5} {:>6} {:>9}\n", "intent", "right", "of", "accuracy");
    for (intent, (right, total)) in per_intent(outcomes) {
        out.push_str(&format!("{intent:<16} {right:>5} {total:>6} {:>8.1}%\n", 100.0 * right as f64 / total as f64));
    }
    let right = outcomes.iter().filter(|o| o.got.intent == o.expected).count();
    out.push_str(&format!("{:<16} {right:>5} {:>6} {:>8.1}%\n", "all", outcomes.len(), 100.0 * right as f64 / outcomes.len() as f64));
    let referrals: Vec<bool> = outcomes.iter().filter_map(|o| o.referral_address_found).collect();
    out.push_str(&format!("referred addresses captured: {} of {}\n", referrals.iter().filter(|found| **found).count(), referrals.len()));
    for miss in outcomes.iter().filter(|o| o.got.intent != o.expected) {
        out.push_str(&format!("  miss {}: labelled {}, read {}\n", miss.id, miss.expected.as_str(), miss.got.intent.as_str()));
    }
    out
}
