//! Checks a draft must pass before it can be sent. The failures AI outreach is known for are
//! guarded against here, whatever wrote the draft: greeting the wrong person, not naming their
//! company as the lead record does, stating a "fact" research never found, leaving a
//! placeholder in, and writing like spam.

use super::{EmailDraft, LeadContact, ResearchReport};

pub const MAX_SUBJECT_CHARS: usize = 90;
/// Cold emails that get answers are short; this is generous.
pub const MAX_BODY_CHARS: usize = 1_500;
pub const MAX_LINKS: usize = 1;

/// Phrases spam filters and readers both punish.
const SPAM_PHRASES: &[&str] = &[
    "act now",
    "100% free",
    "risk-free",
    "risk free",
    "guaranteed",
    "click here",
    "limited time",
    "no obligation",
    "winner",
    "buy now",
    "earn money",
    "this isn't spam",
    "this is not spam",
    "dear friend",
    "once in a lifetime",
    "urgent response",
    "double your",
    "cash bonus",
    "$$$",
];

/// Link shorteners hide where a link goes; mailbox providers distrust them.
const SHORTENERS: &[&str] = &["bit.ly", "tinyurl.com", "t.co/", "goo.gl", "ow.ly", "is.gd", "buff.ly"];

/// Words that may follow a greeting without being a name.
const NEUTRAL_GREETINGS: &[&str] = &["there", "team", "all", "everyone", "folks"];

/// One reason a draft was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardViolation(pub String);

impl std::fmt::Display for GuardViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn normalise(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() || c.is_whitespace() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The name a greeting line addresses, if the body opens with one ("Hi Ada," "Dear Dr. Lee").
fn greeted_name(body: &str) -> Option<String> {
    let first_line = body.lines().map(str::trim).find(|l| !l.is_empty())?;
    let lower = first_line.to_lowercase();
    let rest = ["hi ", "hello ", "hey ", "dear ", "good morning ", "good afternoon "]
        .iter()
        .find_map(|g| lower.strip_prefix(g).map(|_| &first_line[g.len()..]))?;
    let name = rest.split([',', '!', '\n', '—', '-']).next()?.trim();
    let name = ["dr. ", "mr. ", "ms. ", "mrs. "]
        .iter()
        .fold(name.to_string(), |n, title| if n.to_lowercase().starts_with(title) { n[title.len()..].to_string() } else { n });
    (!name.is_empty()).then_some(name)
}

/// Every problem with `draft` for `contact`, given what research found; empty when it may be sent.
pub fn check(draft: &EmailDraft, contact: &LeadContact, research: Option<&ResearchReport>, is_follow_up: bool) -> Vec<GuardViolation> {
    let mut problems = Vec::new();
    let mut problem = |text: String| problems.push(GuardViolation(text));
    let subject = draft.subject.trim();
    let body = draft.body.trim();

    if subject.is_empty() && !is_follow_up {
        problem("the subject is empty".into());
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        problem(format!("the subject is longer than {MAX_SUBJECT_CHARS} characters"));
    }
    if body.is_empty() {
        problem("the body is empty".into());
    }
    if body.chars().count() > MAX_BODY_CHARS {
        problem(format!("the body is longer than {MAX_BODY_CHARS} characters"));
    }

    if let Some(name) = greeted_name(body) {
        let greets = normalise(&name);
        let first = normalise(&contact.first_name);
        let full = normalise(&contact.full_name());
        if !NEUTRAL_GREETINGS.contains(&greets.as_str()) && greets != first && greets != full {
            problem(format!("the greeting addresses '{name}', but the lead's first name is '{}'", contact.first_name));
        }
    }

    let text = format!("{subject}\n{body}");
    let lower = text.to_lowercase();
    // A first email is about the lead's company, named as the lead record names it.
    if !is_follow_up && !normalise(&text).contains(&normalise(&contact.company)) {
        problem(format!("the email never names the lead's company '{}'", contact.company));
    }
    if text.contains("{{") || text.contains("}}") {
        problem("a template placeholder was left unfilled".into());
    }
    for placeholder in ["[first name]", "[name]", "[company]", "[company name]", "[your name]", "<first name>", "<company>"] {
        if lower.contains(placeholder) {
            problem(format!("the placeholder '{placeholder}' was left in"));
        }
    }
    for phrase in SPAM_PHRASES {
        if lower.contains(phrase) {
            problem(format!("the phrase '{phrase}' reads as spam"));
        }
    }
    let links = lower.matches("http://").count() + lower.matches("https://").count() + lower.matches("www.").count();
    if links > MAX_LINKS {
        problem(format!("{links} links; at most {MAX_LINKS} keeps a cold email out of spam folders"));
    }
    for shortener in SHORTENERS {
        if lower.contains(shortener) {
            problem(format!("the link shortener '{shortener}' hides where a link goes"));
        }
    }
    if text.chars().filter(|c| c.is_alphabetic()).count() > 20 {
        let letters: Vec<char> = subject.chars().filter(|c| c.is_alphabetic()).collect();
        if letters.len() > 10 && letters.iter().all(|c| c.is_uppercase()) {
            problem("the subject is written in capitals".into());
        }
    }

    // Every fact the draft says it used must be something research actually found.
    let known: Vec<String> = research
        .map(|r| r.facts.iter().map(|f| normalise(&f.text)).chain(r.summary.iter().map(|s| normalise(s))).collect())
        .unwrap_or_default();
    for fact in &draft.facts_used {
        let fact_text = normalise(fact);
        if !fact_text.is_empty() && !known.iter().any(|k| k.contains(&fact_text) || (!k.is_empty() && fact_text.contains(k.as_str()))) {
            problem(format!("the fact \"{fact}\" is not in the research"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EmailAddress, LeadId, ResearchFact};

    fn contact() -> LeadContact {
        LeadContact {
            email: EmailAddress::parse("ada@initech.example").unwrap(),
            first_name: "Ada".into(),
            last_name: Some("Lovelace".into()),
            company: "Initech".into(),
            title: None,
            company_domain: None,
            time_zone: None,
        }
    }

    fn draft(subject: &str, body: &str, facts: &[&str]) -> EmailDraft {
        EmailDraft {
            lead_id: LeadId::generate(),
            step: 0,
            subject: subject.into(),
            body: body.into(),
            facts_used: facts.iter().map(|f| f.to_string()).collect(),
            drafted_by: "test".into(),
            created_at: chrono::Utc::now(),
        }
    }

    fn research() -> ResearchReport {
        ResearchReport {
            company_domain: "initech.example".into(),
            summary: Some("Payroll software for 4,000 mid-size firms".into()),
            facts: vec![ResearchFact { text: "Initech opened an office in Denver".into(), source_url: "https://initech.example/".into() }],
            note: None,
            gathered_at: chrono::Utc::now(),
        }
    }

    fn violations(d: &EmailDraft) -> Vec<String> {
        check(d, &contact(), Some(&research()), false).into_iter().map(|v| v.0).collect()
    }

    #[test]
    fn a_short_personal_draft_built_on_research_passes() {
        let d = draft(
            "Initech's Denver office",
            "Hi Ada,\n\nCongrats on the new office in Denver. Worth a chat?\n\nDana",
            &["Initech opened an office in Denver"],
        );
        assert_eq!(violations(&d), Vec::<String>::new());
        let neutral = draft("A question for Initech", "Hello there,\n\nA short note.", &[]);
        assert!(violations(&neutral).is_empty());
        let full_name = draft("A question", "Dear Ada Lovelace,\n\nA short note about INITECH.", &[]);
        assert!(violations(&full_name).is_empty());
    }

    #[test]
    fn a_first_email_that_never_names_the_company_is_refused_but_a_follow_up_may() {
        let d = draft("Hello", "Hi Ada,\n\nA short note about Initrode.", &[]);
        assert_eq!(violations(&d), ["the email never names the lead's company 'Initech'"]);
        assert!(check(&d, &contact(), None, true).is_empty(), "a follow-up replies in the thread");
    }

    #[test]
    fn greeting_the_wrong_person_is_refused() {
        let d = draft("Hello Initech", "Hi Grace,\n\nA short note.", &[]);
        assert_eq!(violations(&d), ["the greeting addresses 'Grace', but the lead's first name is 'Ada'"]);
    }

    #[test]
    fn a_fact_research_never_found_is_refused() {
        let d = draft("Hello Initech", "Hi Ada,\n\nCongrats on the IPO.", &["Initech went public last month"]);
        assert_eq!(violations(&d), ["the fact \"Initech went public last month\" is not in the research"]);
        let none = check(&d, &contact(), None, false);
        assert_eq!(none.len(), 1, "no research means no fact can be used");
    }

    #[test]
    fn placeholders_spam_phrases_links_and_length_are_refused() {
        let d = draft(
            "ACT NOW FOR A GUARANTEED WIN",
            "Hi [First Name],\n\nClick here: https://bit.ly/x and https://www.example.com {{company}}",
            &[],
        );
        let found = violations(&d);
        for expected in
            ["placeholder '[first name]'", "unfilled", "'act now'", "'guaranteed'", "'click here'", "links", "'bit.ly'", "capitals"]
        {
            assert!(found.iter().any(|v| v.contains(expected)), "{expected} missing from {found:?}");
        }
        let long = draft("Hello Initech", &format!("Hi Ada,\n\n{}", "word ".repeat(400)), &[]);
        assert!(violations(&long).iter().any(|v| v.contains("longer than")));
    }
}
