//! Prints the classifier's accuracy per family of the bounce corpus and every miss; with
//! `--list`, what each message was read as.

use sales_agent::inbound::{self, BounceReport, MailClass};
use sales_agent_tests::bounce_corpus::{corpus_dir, evaluate, table};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        let mut names: Vec<_> = std::fs::read_dir(corpus_dir()).expect("corpus").map(|e| e.expect("entry").file_name()).collect();
        names.sort();
        for name in names {
            let raw = std::fs::read(corpus_dir().join(&name)).expect("file");
            let Some(mail) = inbound::read(&raw) else { continue };
            let detail = match &mail.class {
                MailClass::Bounce(BounceReport { recipient, status, .. }) => format!("{recipient:?} {status:?}"),
                MailClass::Complaint { recipient, feedback_type } => format!("{recipient:?} {feedback_type:?}"),
                MailClass::AutoReply { absent_until } => format!("{absent_until:?}"),
                other => format!("{:?}", other.subject_address()),
            };
            println!("{:<28} {:<20} {detail}", name.to_string_lossy(), mail.class.name());
        }
        return;
    }
    let results = evaluate();
    print!("{}", table(&results));
    for r in results.values() {
        for (name, why) in &r.failures {
            println!("miss: {name}: {why}");
        }
    }
}
