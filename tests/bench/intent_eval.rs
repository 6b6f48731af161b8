//! Prints the reply intent figures on the labelled sets (see `tests/reply_intents.rs`).

use sales_agent::inbound::intent::by_rules;
use sales_agent_tests::intent_eval::{SETS, evaluate, report};

fn main() {
    for (name, file) in SETS {
        println!("{}", report(&format!("{name} set: reply intents, offline rules"), &evaluate(file, |text| by_rules(text, None))));
    }
}
