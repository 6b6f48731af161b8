//! Prints the grounding evaluation: recall and false refusals of the draft guards offline and
//! with the verifier against a scripted model, and the research filter's reading of labelled
//! web sentences. `cargo run -p sales-agent-tests --bin grounding-eval`

use sales_agent_tests::grounding_eval::{SETS, evaluate_offline, evaluate_sentences, evaluate_with_verifier, sentence_table, table};

#[tokio::main]
async fn main() {
    for (name, set) in SETS {
        println!("== {name} set ==");
        println!("{}", table("draft guards, offline (no model)", &evaluate_offline(set)));
        println!("{}", table("draft guards, then the verifier (scripted model)", &evaluate_with_verifier(set).await));
        println!("{}", sentence_table(&evaluate_sentences(set)));
    }
}
