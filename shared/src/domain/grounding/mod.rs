//! Grounding: every claim a draft makes must come from an allowed source. The draft's own text
//! is read (subject and body), never the model's account of what it used. Claims are figures,
//! names, links, contact details and events; sources are the research facts, the lead record
//! and the agent's own brief. Research taglines are the company's marketing: they may supply a
//! name, never a figure or an event.
//!
//! The reader is lexical: it finds what a claim is made of, not what a sentence means. A claim
//! built only from supported words ("your Denver office has 4,000 customers" when research says
//! the Denver office opened and the company has 4,000 customers) passes; the verifier pass,
//! when a model is configured, is there for those.

mod figures;
mod lexicon;
mod reading;

pub use figures::{Figure, FigureKind, MonthYear, figures, month_years, source_figures};
pub use reading::{Link, details, normal, phone_digits};

use lexicon::{
    COMMON_WORDS, EVENT_KINDS, EVENT_SUPPORT, GENERAL_MARKERS, GENERALITY_ADVERBS, NAME_CONNECTORS, NAMES_THAT_ARE_WORDS, OF_THE_PRODUCT,
    ORDINARY_SUFFIXES, PROSPECT_MARKERS, SENDER_MARKERS, SUPERLATIVE_POSSESSIVES,
};
use reading::{Word, lower_case_forms, name_runs, sentences, words};

use super::{Agent, LeadContact, ResearchReport};

/// A claim no allowed source supports, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedClaim {
    /// The claim as the draft writes it: a reviewer may accept exactly this text.
    pub claim: String,
    pub why: String,
    pub kind: ClaimKind,
}

/// What kind of claim it is. A person may vouch for a fact, never for a link or a contact
/// detail the agent does not declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimKind {
    Link,
    ContactDetail,
    Figure,
    Date,
    Name,
    Event,
}

impl ClaimKind {
    /// Whether a reviewer who knows better may accept a claim of this kind by name.
    pub fn acceptable(self) -> bool {
        !matches!(self, ClaimKind::Link | ClaimKind::ContactDetail)
    }
}

/// What a draft may draw on, read once per draft.
pub struct Sources {
    /// Research facts and summary, normalised.
    research: String,
    /// Research, lead record, brief and taglines together: where a name may come from.
    names: String,
    /// Words written in lower case somewhere in the sources: ordinary words, not names.
    lower_case_words: std::collections::HashSet<String>,
    /// The brief (sender details, pitch, the sequence's own text), normalised.
    brief: String,
    research_figures: Vec<Figure>,
    other_figures: Vec<Figure>,
    /// Every month with its year the sources state.
    dates: Vec<MonthYear>,
    /// Digits of the sender's postal address: a postcode is not a phone number.
    address_digits: String,
    /// The sender's postal address as written.
    postal_address: String,
    declared_links: Vec<Link>,
    contact_emails: Vec<String>,
    contact_phones: Vec<String>,
    sender_names: Vec<String>,
    /// The lead's company and first name, normalised: a sentence naming them is about the prospect.
    prospect_names: Vec<String>,
}

impl Sources {
    pub fn new(agent: &Agent, contact: &LeadContact, research: Option<&ResearchReport>) -> Sources {
        let sender = &agent.sender;
        let pitch = &agent.pitch;
        let research_texts: Vec<&str> =
            research.map(|r| r.facts.iter().map(|f| f.text.as_str()).chain(r.summary.as_deref()).collect()).unwrap_or_default();
        let taglines: Vec<&str> = research.map(|r| r.taglines.iter().map(|t| t.text.as_str()).collect()).unwrap_or_default();
        let lead_texts: Vec<String> = [
            Some(contact.first_name.clone()),
            contact.last_name.clone(),
            Some(contact.full_name()),
            Some(contact.company.clone()),
            contact.title.clone(),
            contact.research_domain(),
        ]
        .into_iter()
        .flatten()
        .collect();
        // Figures come from what the team says of itself, not from its street number or phone.
        let mut brief_texts: Vec<String> = vec![
            sender.name.clone(),
            sender.company.clone(),
            pitch.product.clone(),
            pitch.value_proposition.clone(),
            pitch.target_audience.clone(),
            pitch.tone.clone(),
            pitch.call_to_action.clone(),
        ];
        brief_texts.extend(agent.sequence.iter().flat_map(|s| [s.subject.clone(), s.body.clone()]));
        let joined = |texts: &mut dyn Iterator<Item = &str>| texts.map(normal).collect::<Vec<_>>().join("|");
        let research_joined = joined(&mut research_texts.iter().copied());
        let lead = joined(&mut lead_texts.iter().map(String::as_str));
        let brief = joined(&mut brief_texts.iter().map(String::as_str));
        let names =
            [research_joined.as_str(), &joined(&mut taglines.iter().copied()), &lead, &brief, &normal(&sender.postal_address)].join("|");
        let all_raw = research_texts.iter().copied().chain(taglines.iter().copied()).chain(brief_texts.iter().map(String::as_str));
        let lower_case_words = all_raw.flat_map(lower_case_forms).collect();
        let figures_of = |texts: &mut dyn Iterator<Item = &str>| texts.flat_map(|t| source_figures(&details(t).rest)).collect::<Vec<_>>();
        let declared_links = [&sender.website, &sender.booking_link].into_iter().flatten().filter_map(|l| Link::parse(l)).collect();
        Sources {
            research: research_joined,
            names,
            lower_case_words,
            research_figures: figures_of(&mut research_texts.iter().copied()),
            dates: research_texts.iter().copied().chain(brief_texts.iter().map(String::as_str)).flat_map(month_years).collect(),
            address_digits: phone_digits(&sender.postal_address),
            postal_address: sender.postal_address.clone(),
            other_figures: figures_of(&mut lead_texts.iter().map(String::as_str).chain(brief_texts.iter().map(String::as_str))),
            brief,
            declared_links,
            contact_emails: [Some(&sender.email), sender.reply_to.as_ref()]
                .into_iter()
                .flatten()
                .map(|e| e.to_string().to_lowercase())
                .collect(),
            contact_phones: sender.phone.iter().map(|p| phone_digits(p)).filter(|d| d.len() >= 7).collect(),
            sender_names: [normal(&sender.company), normal(&pitch.product)].into_iter().filter(|n| n.trim().len() > 1).collect(),
            prospect_names: [normal(&contact.company), normal(&contact.first_name)].into_iter().filter(|n| n.trim().len() > 1).collect(),
        }
    }

    fn has_name(&self, phrase: &str) -> bool {
        let phrase = normal(phrase);
        phrase.trim().len() > 1 && self.names.contains(&phrase)
    }
}

/// Every claim in the draft that no allowed source supports.
pub fn unsupported_claims(subject: &str, body: &str, sources: &Sources) -> Vec<UnsupportedClaim> {
    let mut claims = Vec::new();
    let mut refuse = |kind: ClaimKind, claim: String, why: String| {
        if !claims.iter().any(|c: &UnsupportedClaim| c.claim == claim) {
            claims.push(UnsupportedClaim { claim, why, kind });
        }
    };
    // The sender's own postal address, copied into a signature, is theirs to give.
    let (subject, body) = (without(subject, &sources.postal_address), without(body, &sources.postal_address));
    let subject_details = details(&subject);
    let body_details = details(&body);
    for found in [&subject_details, &body_details] {
        for link in &found.links {
            if !sources.declared_links.iter().any(|d| link.within(d)) {
                refuse(
                    ClaimKind::Link,
                    link.text.clone(),
                    format!("the link '{}' is not one the agent declares (its website or booking link)", link.text),
                );
            }
        }
        for email in &found.emails {
            if !sources.contact_emails.contains(email) {
                refuse(ClaimKind::ContactDetail, email.clone(), format!("the email address '{email}' is not the sender's"));
            }
        }
        for phone in &found.phones {
            let digits = phone_digits(phone);
            let in_address = !digits.is_empty() && sources.address_digits.contains(&digits);
            if !in_address && !sources.contact_phones.iter().any(|p| p.ends_with(&digits) || digits.ends_with(p.as_str())) {
                refuse(ClaimKind::ContactDetail, phone.clone(), format!("the phone number '{phone}' is not the sender's"));
            }
        }
    }
    let text = format!("{}\n{}", subject_details.rest, body_details.rest);

    for figure in figures(&text) {
        // A figure research gives for the same thing must be the one; otherwise any source's.
        let same_thing: Vec<&Figure> = sources.research_figures.iter().filter(|s| figure.counts_the_same_as(s)).collect();
        // When research counts the same thing, only a figure for that thing supports this one
        // (research's or the brief's own, "used by 300 clinics"); otherwise any source's.
        let supported = if same_thing.is_empty() {
            sources.research_figures.iter().chain(&sources.other_figures).any(|s| figure.matches(s))
        } else {
            same_thing
                .iter()
                .copied()
                .chain(sources.other_figures.iter().filter(|s| figure.counts_the_same_as(s)))
                .any(|s| figure.matches(s))
        };
        if !supported {
            let near = same_thing.first();
            let why = match near {
                Some(source) => format!("the figure '{}' contradicts the research, which says '{}'", figure.text, source.text),
                None => format!("the figure '{}' is not in the research, the lead record or the brief", figure.text),
            };
            refuse(ClaimKind::Figure, figure.text.clone(), why);
        }
    }

    for date in month_years(&text) {
        if !sources.dates.iter().any(|d| d.month == date.month && d.year == date.year) {
            refuse(ClaimKind::Date, date.text.clone(), format!("the date '{}' is not in the research or the brief", date.text));
        }
    }

    let draft_lower_case: std::collections::HashSet<String> = lower_case_forms(&text).collect();
    let subject_title_case = title_case(&subject);
    for (part, in_subject) in [(&subject_details.rest, true), (&body_details.rest, false)] {
        // A capital at the start of a sentence or in a Title Case subject says nothing: such a
        // word is a name only if nothing shows it to be an ordinary word.
        let ordinary = |word: &Word| {
            let lower = word.text.to_lowercase();
            let lower = lower.strip_suffix("'s").unwrap_or(&lower);
            if lower.contains('-') && !COMMON_WORDS.contains(&lower) {
                // "Round-the-clock", "Day-one": ordinary when every part is.
                return lower.split('-').all(|part| {
                    COMMON_WORDS.contains(&part)
                        || is_english_word(part)
                        || !figures(part).is_empty()
                        || part.chars().all(|c| c.is_ascii_digit())
                        || sources.lower_case_words.contains(part)
                        || draft_lower_case.contains(part)
                        || sources.has_name(part)
                });
            }
            if !figures(lower).is_empty() {
                return true; // "FY2024", "Twelve": a figure, checked as one
            }
            if word.acronym() {
                return COMMON_WORDS.contains(&lower) || COMMON_WORDS.contains(&lower.trim_end_matches('s'));
            }
            COMMON_WORDS.contains(&lower)
                || NAME_CONNECTORS.contains(&lower)
                || ((word.sentence_initial || (in_subject && subject_title_case))
                    && (is_english_word(lower)
                        || ORDINARY_SUFFIXES.iter().any(|s| lower.len() > s.len() + 2 && lower.ends_with(s))
                        || sources.lower_case_words.contains(lower)
                        || draft_lower_case.contains(lower)))
        };
        for run in name_runs(&words(part)) {
            for (claim, why) in unsupported_in_run(&run, sources, &ordinary) {
                refuse(ClaimKind::Name, claim, why);
            }
        }
    }

    for sentence in sentences(&text) {
        let said = normal(&sentence);
        let said_words: Vec<&str> = said.split_whitespace().collect();
        let has = |word: &str| said.contains(&format!(" {word} "));
        let prospect_voice = PROSPECT_MARKERS.iter().any(|m| has(m)) || sources.prospect_names.iter().any(|n| said.contains(n.as_str()));
        let sender_voice = SENDER_MARKERS.iter().any(|m| has(m)) || sources.sender_names.iter().any(|n| said.contains(n.as_str()));
        let mut said_events: Vec<(&str, String, usize)> = Vec::new();
        for (kind, forms) in EVENT_KINDS {
            if let Some((form, at)) = forms.iter().find_map(|f| says(&said_words, f).map(|at| (f.to_string(), at))) {
                said_events.push((kind, form, at));
            }
        }
        let raw = sentence.to_lowercase().replace('’', "'");
        if let Some(superlative) = SUPERLATIVE_POSSESSIVES.iter().find(|s| raw.contains(*s)) {
            let after = normal(raw.split(superlative).nth(1).unwrap_or_default());
            let phrase: Vec<&str> =
                std::iter::once(superlative.trim_start_matches("'s ")).chain(after.split_whitespace().take(1)).collect();
            said_events.push(("superlative", phrase.join(" "), said_words.len()));
        }
        for (kind, form, at) in said_events {
            // A superlative is said of someone ("the Midwest's most reliable carrier"): never general.
            // A hypothetical ("if you're hiring") or a statement about companies in general
            // claims nothing; one that names the prospect is about them.
            let before = &said_words[..at];
            let hypothetical = before.iter().any(|w| *w == "if" || *w == "whether")
                || before.windows(2).any(|w| matches!(w[0], "when" | "whenever" | "once") && matches!(w[1], "you" | "you're" | "your"));
            let about_others = !prospect_voice
                && (said_words[..at].iter().any(|w| GENERAL_MARKERS.contains(w)) || GENERALITY_ADVERBS.iter().any(|a| has(a)));
            let general = kind != "superlative" && (hypothetical || about_others);
            let support: Vec<String> = if kind == "superlative" {
                vec![form.clone()]
            } else {
                let forms = EVENT_KINDS.iter().filter(|(k, _)| *k == kind).flat_map(|(_, f)| f.iter());
                let extra = EVENT_SUPPORT.iter().filter(|(k, _)| *k == kind).flat_map(|(_, f)| f.iter());
                forms.chain(extra).map(|f| normal(f)).collect()
            };
            let in_text = |text: &str| support.iter().any(|f| text.contains(f.as_str()));
            // What happened to the prospect comes from research; what the sender says of itself,
            // in its own voice and about no one else, may come from the brief.
            let in_research = in_text(&sources.research);
            let in_brief = in_text(&sources.brief);
            // Certifications and customer proof are said of the product: the brief supports them
            // however the sentence is put.
            let names_prospect =
                sources.prospect_names.iter().any(|n| said.contains(n.as_str())) || has("congrats") || has("congratulations");
            let of_the_product = OF_THE_PRODUCT.contains(&kind) && !names_prospect;
            if !(general || in_research || (in_brief && (of_the_product || (sender_voice && !prospect_voice)))) {
                refuse(
                    ClaimKind::Event,
                    sentence.trim().to_string(),
                    format!("'{}' claims {} ('{form}') that no allowed source shows", sentence.trim(), article(kind)),
                );
            }
        }
    }
    claims
}

/// `text` with the sender's postal address, and each line of it, blanked out.
fn without(text: &str, postal_address: &str) -> String {
    let mut text = text.to_string();
    let whole = postal_address.trim();
    let parts = std::iter::once(whole).chain(postal_address.split([',', '\n']).map(str::trim));
    for part in parts.filter(|p| p.chars().count() >= 6) {
        text = text.replace(part, "|");
    }
    text
}

/// Where a sentence's words say `form`: the phrase as written, or a determiner's form with up to
/// two words between ("the recent raise", "your new collection launch"). The index of its
/// first word.
fn says(said: &[&str], form: &str) -> Option<usize> {
    let form = normal(form);
    let form: Vec<&str> = form.split_whitespace().collect();
    if form.is_empty() {
        return None;
    }
    if let Some(at) = said.windows(form.len()).position(|w| w == form.as_slice()) {
        return Some(at);
    }
    let [determiner @ ("your" | "the"), noun] = form.as_slice() else { return None };
    said.iter()
        .enumerate()
        .filter(|(_, w)| *w == determiner)
        .find_map(|(i, _)| said.iter().skip(i + 1).take(3).any(|w| w == noun).then_some(i))
}

/// Whether `word` (lower case) is an ordinary English word, by a general word list.
pub(crate) fn is_english_word(word: &str) -> bool {
    static WORDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let words = WORDS.get_or_init(|| include_str!("english_words.txt").lines().collect());
    words.binary_search(&word).is_ok() && !NAMES_THAT_ARE_WORDS.contains(&word)
}

fn article(kind: &str) -> String {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { format!("an {kind}") } else { format!("a {kind}") }
}

/// A subject in Title Case: most of its longer words capitalised.
fn title_case(subject: &str) -> bool {
    let long: Vec<Word> = words(subject).into_iter().filter(|w| w.text.chars().count() > 3).collect();
    long.len() >= 2 && long.iter().filter(|w| w.capitalised()).count() * 10 >= long.len() * 7
}

/// The parts of one run of name words no source supports: a name never mentioned, or two
/// supported names joined into one the sources never use ("Umbrella Freight" from "Umbrella"
/// and "Acme Freight").
fn unsupported_in_run(run: &[Word], sources: &Sources, ordinary: &dyn Fn(&Word) -> bool) -> Vec<(String, String)> {
    #[derive(PartialEq)]
    enum Piece {
        Name(String),
        /// A word of the small list of everyday words: it separates names.
        Common,
        /// An English word with a capital it may owe to its place: part of a name next to one.
        Ordinary(String),
        Unknown(String),
    }
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < run.len() {
        let longest = (i + 1..=run.len()).rev().find(|&j| {
            let phrase: Vec<&str> = run[i..j].iter().map(|w| w.text.as_str()).collect();
            sources.has_name(&phrase.join(" ")) && !(j == i + 1 && ordinary(&run[i]))
        });
        if let Some(j) = longest {
            pieces.push(Piece::Name(run[i..j].iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ")));
            i = j;
            continue;
        }
        let word = &run[i];
        let lower = word.text.to_lowercase();
        let plural_acronym = word.acronym() && word.text.ends_with('s') && sources.has_name(&word.text[..word.text.len() - 1]);
        pieces.push(
            if COMMON_WORDS.contains(&lower.as_str())
                || NAME_CONNECTORS.contains(&lower.as_str())
                || plural_acronym
                || !word.text.chars().any(char::is_alphabetic)
            {
                Piece::Common
            } else if ordinary(word) {
                Piece::Ordinary(word.text.clone())
            } else {
                Piece::Unknown(word.text.clone())
            },
        );
        i += 1;
    }
    let refusal = |name: String| {
        let name = name.trim_end_matches("'s").to_string();
        let why = format!("the name '{name}' is not in the research, the lead record or the brief");
        (name, why)
    };
    let mut problems = Vec::new();
    // Unknown words with the ordinary words beside them: "Series B", not "B".
    let mut span: Vec<&str> = Vec::new();
    let mut has_unknown = false;
    for (k, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Unknown(word) => {
                span.push(word);
                has_unknown = true;
                continue;
            }
            Piece::Ordinary(word) => {
                span.push(word);
                continue;
            }
            Piece::Name(name) => {
                if let Some(Piece::Name(before)) = k.checked_sub(1).and_then(|p| pieces.get(p)) {
                    problems.push(refusal(format!("{before} {name}")));
                }
            }
            Piece::Common => {}
        }
        if has_unknown {
            problems.push(refusal(span.join(" ")));
        }
        span.clear();
        has_unknown = false;
    }
    if has_unknown {
        problems.push(refusal(span.join(" ")));
    }
    problems
}

#[cfg(test)]
mod tests;
