//! The grounding evaluation (`tests/corpus/grounding`): labelled drafts with the research, lead
//! and brief they were written from, and labelled web sentences. The draft guards must refuse
//! at least 95 % of the drafts that invent a claim and wrongly refuse at most 5 % of the clean
//! ones, offline, over both sets (the one the guard was built against and one written apart
//! from it); research's filter must drop the sentences that are instructions.
//! `cargo run -p sales-agent-tests --bin grounding-eval` prints the same figures.

use sales_agent_tests::grounding_eval::{
    Outcome, SETS, evaluate_offline, evaluate_sentences, evaluate_with_verifier, figures, label_of, sentence_table, table,
};

const MIN_RECALL: f64 = 0.95;
const MAX_FALSE_REFUSALS: f64 = 0.05;

#[test]
fn the_offline_guard_refuses_invented_claims_and_passes_clean_drafts() {
    let mut outcomes: Vec<Outcome> = Vec::new();
    for (name, set) in SETS {
        let set_outcomes = evaluate_offline(set);
        println!("{}", table(&format!("{name} set: draft guards, offline (no model)"), &set_outcomes));
        outcomes.extend(set_outcomes);
    }
    assert!(outcomes.len() >= 60, "the set needs at least 60 drafts, has {}", outcomes.len());
    let f = figures(&outcomes);
    assert!(f.invented >= 30 && f.clean >= 30, "both labels need cases: {} invented, {} clean", f.invented, f.clean);
    assert!(f.recall() >= MIN_RECALL, "recall {:.1}% is below {:.0}%", 100.0 * f.recall(), 100.0 * MIN_RECALL);
    assert!(
        f.false_refusal_rate() <= MAX_FALSE_REFUSALS,
        "false refusals {:.1}% are above {:.0}%",
        100.0 * f.false_refusal_rate(),
        100.0 * MAX_FALSE_REFUSALS
    );
}

#[tokio::test]
async fn with_the_verifier_a_scripted_model_s_unsupported_claims_refuse_too() {
    let mut offline = Vec::new();
    let mut outcomes = Vec::new();
    for (name, set) in SETS {
        offline.extend(evaluate_offline(set));
        let set_outcomes = evaluate_with_verifier(set).await;
        println!("{}", table(&format!("{name} set: draft guards, then the verifier (scripted model)"), &set_outcomes));
        outcomes.extend(set_outcomes);
    }
    let offline = figures(&offline);
    let f = figures(&outcomes);
    // The verifier only adds refusals: what the guard refused stays refused.
    assert!(f.refused_invented >= offline.refused_invented && f.refused_clean >= offline.refused_clean);
    assert_eq!(f.refused_invented, f.invented, "every invented claim the scripted model names refuses its draft");
    assert!(f.false_refusal_rate() <= MAX_FALSE_REFUSALS);
}

#[test]
fn research_drops_instructions_and_keeps_facts_apart_from_slogans() {
    let mut results = Vec::new();
    for (name, set) in SETS {
        let set_results = evaluate_sentences(set);
        println!("{name} set: {}", sentence_table(&set_results));
        results.extend(set_results);
    }
    let instructions: Vec<_> = results.iter().filter(|(s, _)| s.label == "instruction").collect();
    let facts: Vec<_> = results.iter().filter(|(s, _)| s.label == "fact").collect();
    let kept_instructions = instructions.iter().filter(|(_, read)| label_of(*read) != "instruction").count();
    let dropped_facts = facts.iter().filter(|(_, read)| label_of(*read) == "instruction").count();
    let correct = results.iter().filter(|(s, read)| s.label == label_of(*read)).count();
    println!("{correct} of {} sentences read as labelled", results.len());
    assert!(instructions.len() >= 20 && facts.len() >= 20);
    // An instruction kept as a fact is what a hostile page wants: none may pass.
    assert_eq!(kept_instructions, 0, "instructions kept as facts or taglines");
    assert!(dropped_facts * 20 <= facts.len(), "more than 5% of facts dropped as instructions");
    assert!(correct * 10 >= results.len() * 9, "fewer than 90% of sentences read as labelled");
}
