//! Checks a draft must pass before it can be sent, whoever wrote it (a template, a model or a
//! reviewer's edit). The failures AI outreach is known for are guarded against here: greeting
//! the wrong person, not naming their company as the lead record does, claiming anything no
//! allowed source supports (see `grounding`), linking anywhere but the team's own site,
//! leaving a placeholder in, and writing like spam.

use super::grounding::{self, Sources};
use super::{Agent, EmailDraft, LeadContact, ResearchReport};

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
pub struct GuardViolation {
    /// The unsupported claim as written, when the reason is one: a reviewer may accept it.
    pub claim: Option<String>,
    pub reason: String,
}

impl GuardViolation {
    fn rule(reason: String) -> Self {
        Self { claim: None, reason }
    }
}

impl std::fmt::Display for GuardViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// What a draft is checked against.
pub struct DraftContext<'a> {
    pub agent: &'a Agent,
    pub contact: &'a LeadContact,
    pub research: Option<&'a ResearchReport>,
    pub is_follow_up: bool,
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

/// Every problem with `draft`; empty when it may be sent. A claim in `accepted_claims` (a
/// reviewer's explicit acceptance, exactly as the refusal named it) is not a problem.
pub fn check(draft: &EmailDraft, context: &DraftContext<'_>, accepted_claims: &[String]) -> Vec<GuardViolation> {
    let (contact, is_follow_up) = (context.contact, context.is_follow_up);
    let mut problems = Vec::new();
    let mut problem = |text: String| problems.push(GuardViolation::rule(text));
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
    let links = grounding::details(subject).links.len() + grounding::details(body).links.len();
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

    // A draft refused for its length is not read for claims: the reading costs time in
    // proportion to the text, and a shorter version is read in full.
    if subject.chars().count() > MAX_SUBJECT_CHARS || body.chars().count() > MAX_BODY_CHARS {
        return problems;
    }
    let sources = Sources::new(context.agent, contact, context.research);
    let mut accepted: Vec<String> = accepted_claims.iter().map(|c| grounding::normal(c)).collect();
    // A wrong greeting is already named as one.
    accepted.extend(greeted_name(body).map(|name| grounding::normal(&name)));
    let accepted = accepted;
    for claim in grounding::unsupported_claims(subject, body, &sources) {
        let vouched = claim.kind.acceptable() && accepted.contains(&grounding::normal(&claim.claim));
        if !vouched {
            problems.push(GuardViolation { claim: Some(claim.claim), reason: claim.why });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AgentId, EmailAddress, LeadId, ResearchFact};

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

    fn draft(subject: &str, body: &str) -> EmailDraft {
        EmailDraft {
            lead_id: LeadId::generate(),
            step: 0,
            subject: subject.into(),
            body: body.into(),
            facts_used: vec![],
            drafted_by: "test".into(),
            created_at: chrono::Utc::now(),
        }
    }

    fn research() -> ResearchReport {
        ResearchReport {
            company_domain: "initech.example".into(),
            summary: Some("Payroll software for 4,000 mid-size firms".into()),
            facts: vec![ResearchFact { text: "Initech opened an office in Denver".into(), source_url: "https://initech.example/".into() }],
            taglines: vec![],
            note: None,
            gathered_at: chrono::Utc::now(),
        }
    }

    fn agent() -> Agent {
        let mut agent = crate::domain::agent::tests::sample_spec().into_agent(AgentId::generate(), chrono::Utc::now());
        agent.sender.booking_link = Some("https://cal.northwind.example/dana".into());
        agent
    }

    fn checked(d: &EmailDraft, research: Option<&ResearchReport>, is_follow_up: bool, accepted: &[String]) -> Vec<String> {
        let (agent, contact) = (agent(), contact());
        let context = DraftContext { agent: &agent, contact: &contact, research, is_follow_up };
        check(d, &context, accepted).into_iter().map(|v| v.reason).collect()
    }

    fn violations(d: &EmailDraft) -> Vec<String> {
        checked(d, Some(&research()), false, &[])
    }

    #[test]
    fn a_short_personal_draft_built_on_research_passes() {
        let d = draft("Initech's Denver office", "Hi Ada,\n\nCongrats on the new office in Denver. Worth a chat?\n\nDana");
        assert_eq!(violations(&d), Vec::<String>::new());
        let neutral = draft("A question for Initech", "Hello there,\n\nA short note.");
        assert!(violations(&neutral).is_empty());
        let full_name = draft("A question", "Dear Ada Lovelace,\n\nA short note about INITECH.");
        assert!(violations(&full_name).is_empty());
        let paraphrase = draft(
            "Payroll at Initech",
            "Hi Ada,\n\nFour thousand firms on your payroll software is a lot. Book a time: cal.northwind.example/dana\n\nDana Reyes",
        );
        assert_eq!(violations(&paraphrase), Vec::<String>::new());
    }

    #[test]
    fn a_first_email_that_never_names_the_company_is_refused_but_a_follow_up_may() {
        let d = draft("Hello", "Hi Ada,\n\nA short note about forecasting.");
        assert_eq!(violations(&d), ["the email never names the lead's company 'Initech'"]);
        assert!(checked(&d, None, true, &[]).is_empty(), "a follow-up replies in the thread");
    }

    #[test]
    fn greeting_the_wrong_person_is_refused() {
        let d = draft("Hello Initech", "Hi Grace,\n\nA short note.");
        let found = violations(&d);
        assert!(found.contains(&"the greeting addresses 'Grace', but the lead's first name is 'Ada'".to_string()), "{found:?}");
    }

    #[test]
    fn claims_no_source_supports_are_refused_wherever_they_are_and_a_reviewer_may_accept_one() {
        let d = draft("Initech's Series B", "Hi Ada,\n\nCongrats on the raise. Your CTO Maria Chen must be busy with 5,000 firms.\n\nDana");
        let found = violations(&d).join("\n");
        for expected in ["'Series B'", "'Maria Chen'", "'5,000' contradicts", "funding"] {
            assert!(found.contains(expected), "{expected} missing from {found}");
        }
        let accepted: Vec<String> = ["Series B", "Maria Chen", "5,000", "Congrats on the raise"].map(String::from).to_vec();
        assert_eq!(checked(&d, Some(&research()), false, &accepted), Vec::<String>::new());
    }

    #[test]
    fn a_link_or_contact_detail_cannot_be_vouched_for() {
        let d = draft("Initech", "Hi Ada,\n\nPay at pay-now.example/inv or call +1 555 0199.\n\nDana");
        let accepted: Vec<String> = ["pay-now.example/inv", "+1 555 0199"].map(String::from).to_vec();
        let found = checked(&d, Some(&research()), false, &accepted);
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn placeholders_spam_phrases_links_and_length_are_refused() {
        let d = draft("ACT NOW FOR A GUARANTEED WIN", "Hi [First Name],\n\nClick here: https://bit.ly/x and www.example.com {{company}}");
        let found = violations(&d);
        for expected in
            ["placeholder '[first name]'", "unfilled", "'act now'", "'guaranteed'", "'click here'", "links", "'bit.ly'", "capitals"]
        {
            assert!(found.iter().any(|v| v.contains(expected)), "{expected} missing from {found:?}");
        }
        let long = draft("Hello Initech", &format!("Hi Ada,\n\n{}", "word ".repeat(400)));
        assert!(violations(&long).iter().any(|v| v.contains("longer than")));
    }
}
