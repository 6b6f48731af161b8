//! The intent of human replies, measured on two labelled sets in `tests/corpus/replies`: `dev`,
//! the set the offline rules were written against, and `held-out`, written apart from them and
//! never used to change them. On dev the rules must file at least 85 % of the replies as a sales
//! rep would and at least 60 % of each intent; on held-out, what real users' replies look like
//! to them, at least 65 %. Referred addresses must be captured from most referrals of both.
//! `cargo run -p sales-agent-tests --bin intent-eval` prints the same figures.

use sales_agent::inbound::intent::by_rules;
use sales_agent_tests::intent_eval::{Outcome, evaluate, per_intent, report};

const MIN_DEV_ACCURACY: f64 = 0.85;
const MIN_DEV_PER_INTENT: f64 = 0.60;
const MIN_HELD_OUT_ACCURACY: f64 = 0.65;
const MIN_REFERRALS_CAPTURED: f64 = 0.50;

fn accuracy(outcomes: &[Outcome]) -> f64 {
    outcomes.iter().filter(|o| o.got.intent == o.expected).count() as f64 / outcomes.len() as f64
}

fn referrals_captured(outcomes: &[Outcome]) -> f64 {
    let referrals: Vec<bool> = outcomes.iter().filter_map(|o| o.referral_address_found).collect();
    referrals.iter().filter(|found| **found).count() as f64 / referrals.len().max(1) as f64
}

#[test]
fn the_offline_rules_file_replies_as_a_sales_rep_would() {
    let dev = evaluate("intents.json", |text| by_rules(text, None));
    let held_out = evaluate("intents-heldout.json", |text| by_rules(text, None));
    println!("{}", report("dev set: reply intents, offline rules", &dev));
    println!("{}", report("held-out set: reply intents, offline rules", &held_out));
    for (name, set) in [("dev", &dev), ("held-out", &held_out)] {
        assert!(set.len() >= 40, "the {name} set needs at least 40 replies, has {}", set.len());
        for (intent, (_, total)) in per_intent(set) {
            assert!(total >= 5, "{name}: {intent} needs at least 5 labelled replies, has {total}");
        }
        let captured = referrals_captured(set);
        assert!(captured >= MIN_REFERRALS_CAPTURED, "{name}: referred addresses captured {:.1}%", 100.0 * captured);
    }
    for (intent, (right, total)) in per_intent(&dev) {
        let accuracy = right as f64 / total as f64;
        assert!(accuracy >= MIN_DEV_PER_INTENT, "dev {intent}: {:.1}% is below {:.0}%", 100.0 * accuracy, 100.0 * MIN_DEV_PER_INTENT);
    }
    assert!(accuracy(&dev) >= MIN_DEV_ACCURACY, "dev accuracy {:.1}%", 100.0 * accuracy(&dev));
    assert!(accuracy(&held_out) >= MIN_HELD_OUT_ACCURACY, "held-out accuracy {:.1}%", 100.0 * accuracy(&held_out));
}
