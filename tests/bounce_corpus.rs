//! Every message of the real bounce corpus is read as what it is: delivery status notifications
//! as bounces with their failed recipient and status code, feedback reports as complaints,
//! RFC 3834 messages as auto-replies.

use sales_agent_tests::bounce_corpus::{Kind, evaluate, table};

#[test]
fn every_corpus_message_is_classified_with_its_recipient_and_status() {
    let results = evaluate();
    println!("{}", table(&results));
    let total: u32 = results.values().map(|r| r.total).sum();
    assert_eq!(total, 399, "every message of the corpus is read");
    for kind in [Kind::DeliveryStatus, Kind::Complaint, Kind::AutoReply] {
        assert!(results.values().any(|r| r.kind == Some(kind)), "no {kind:?} messages in the corpus");
    }
    let failures: Vec<String> = results.values().flat_map(|r| r.failures.iter().map(|(name, why)| format!("{name}: {why}"))).collect();
    assert!(failures.is_empty(), "{} of {total} misread:\n{}", failures.len(), failures.join("\n"));
}
