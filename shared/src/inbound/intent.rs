//! What a person's reply means for the sale, as a rep would file it: interested, not
//! interested, asking for a meeting, pointing to a colleague (a referral), the wrong person, a
//! question, or something else. These rules decide offline; with a model configured, the model
//! decides and these rules are its fallback. Either way a referred address must appear in the
//! reply's own words: nothing is invented.

use super::text::addresses_in;
pub use crate::domain::{IntentReading, Referral, ReplyIntent};

/// Phrases that hand the conversation to someone else.
const POINTS_ELSEWHERE: &[&str] = &[
    "talk to",
    "speak to",
    "speak with",
    "reach out to",
    "get in touch with",
    "contact ",
    "connect with",
    "loop in",
    "looping in",
    "looped in",
    "cc'ing",
    "cc’ing",
    "copying",
    "copied",
    "forwarded",
    "forwarding",
    "passing this",
    "passed this",
    "right person",
    "best person",
    "better person",
    "right contact",
    "best contact",
    "handles",
    "handling this",
    "owns this",
    "in charge of",
    "responsible for",
    "my colleague",
    "our colleague",
    "replacement",
    "took over",
    "takes care of",
    "that'd be",
    "that would be",
    "send this to",
    "send it to",
    "send them to",
    "forward this to",
    "direct your",
    "direct it to",
    "hit up",
    "address is",
    "email him",
    "email her",
    "email them",
    "goes through",
    "go through",
    "sits with",
    "sit with",
    "deals with",
    "deal with",
    "deal w/",
    "not me",
    "try ",
    "try our",
    "you can reach",
    "reach her",
    "reach him",
    "reach them",
    "person you want",
    "person to talk",
    "who you want",
    "you'll want",
    "you want to talk",
    "ask for",
    "please ask",
    // German
    "wenden sie sich an",
    "wende dich an",
    "ansprechpartner",
    "zuständig ist",
    "zuständig",
    "kollege",
    "kollegin",
    "weitergeleitet",
    "kontaktieren sie",
    // French
    "contacter",
    "contactez",
    "adresser à",
    "adressez-vous",
    "mon collègue",
    "ma collègue",
    "interlocuteur",
    "s'occupe",
    "s’occupe",
    "transféré",
    // Spanish
    "contactar con",
    "contacte con",
    "hablar con",
    "hable con",
    "mi compañero",
    "mi compañera",
    "la persona indicada",
    "encargado",
    "encargada",
    "se encarga",
    "reenviado",
    "escríbele",
    "escríbale",
    "escriba a",
    "responsable de",
];

/// The sender is not the one to talk to.
const WRONG_PERSON: &[&str] = &[
    "not the right person",
    "not the right contact",
    "wrong person",
    "wrong contact",
    "not the person",
    "not the best person",
    "not the decision maker",
    "not my area",
    "not my department",
    "not my responsibility",
    "not responsible for",
    "not involved in",
    "don't handle",
    "do not handle",
    "don't deal with",
    "no longer work",
    "no longer with",
    "no longer at",
    "left the company",
    "i have left",
    "i've left",
    "i left the company",
    "update your records",
    "update your contact",
    "i left in",
    "not with the company",
    "don't work there",
    "do not work there",
    "don't work at",
    "do not work at",
    "not in charge",
    "who told you",
    "i retired",
    "i've retired",
    "i have retired",
    "not my remit",
    "not the person to",
    "not my area",
    "aren't my area",
    "isn't my area",
    "not my wheelhouse",
    "no idea who",
    "not sure who",
    "don't know who",
    "don't buy anything",
    "moved over to",
    "moved to another",
    "changed roles",
    "new role",
    "does not handle",
    "doesn't handle",
    "not appropriate for me",
    "not in my remit",
    "isn't in my remit",
    "outside my remit",
    "wrong inbox",
    "i don't do",
    "i dont do",
    "wrong persn",
    "don't make purchasing decisions",
    "don't make any purchasing",
    "don't make buying decisions",
    "no purchasing authority",
    "who owns it",
    "no llevo ese tema",
    "no llevo este tema",
    "no es mi área",
    "pas mon domaine",
    "nicht mein bereich",
    "outside my",
    "not within my",
    "not something i'd be involved",
    "wouldn't be involved",
    "not involved",
    "no say in",
    "don't make decisions",
    "don't make the decision",
    "not my call",
    "not the one who",
    "why are you emailing me",
    "wrong address",
    "nicht zuständig",
    "nicht der richtige",
    "nicht die richtige",
    "nicht mehr bei",
    "nicht mehr im unternehmen",
    "pas la bonne personne",
    "pas le bon interlocuteur",
    "ne travaille plus",
    "ne suis pas responsable",
    "ne m'occupe pas",
    "no soy la persona",
    "ya no trabajo",
    "no me encargo",
    "no soy el responsable",
    "no soy la responsable",
];

/// A no.
const DECLINES: &[&str] = &[
    "not interested",
    "has been frozen",
    "have been frozen",
    "budget freeze",
    "unable to engage",
    "unable to take",
    "not able to take",
    "do not schedule",
    "don't schedule",
    "not moving forward",
    "won't be moving forward",
    "will not be moving forward",
    "hard pass",
    "pass on this",
    "geen behoefte",
    "geen interesse",
    "nee bedankt",
    "not intrested",
    "not intersted",
    "decided not to",
    "not to pursue",
    "not pursue",
    "not follow up",
    "don't follow up",
    "no interest",
    "no thanks",
    "no thank you",
    "no, thank",
    "no, thanks",
    "not for us",
    "not a fit",
    "not a good fit",
    "not the right fit",
    "we'll pass",
    "we will pass",
    "i'll pass",
    "going to pass",
    "we're all set",
    "we are all set",
    "we're good",
    "we are good for now",
    "all set on",
    "no budget",
    "no need for this",
    "no need for it",
    "have no need",
    "don't need",
    "do not need",
    "don't have budget",
    "don't have the budget",
    "no budget",
    "not in the budget",
    "budget is frozen",
    "isn't a priority",
    "is not a priority",
    "not on our radar",
    "not on our roadmap",
    "maybe later",
    "maybe down the road",
    "down the road",
    "not for now",
    "not this year",
    "not looking",
    "already have",
    "already use",
    "already using",
    "already work with",
    "already working with",
    "happy with our",
    "happy with what we have",
    "built it in-house",
    "built our own",
    "in-house",
    "not a priority",
    "not right now",
    "not at this time",
    "not at the moment",
    "maybe next year",
    "check back",
    "circle back in",
    "reach out next",
    "remove me",
    "take me off",
    "stop emailing",
    "stop contacting",
    "don't contact",
    "do not contact",
    "don't email",
    "please stop",
    "unsubscribe",
    "kein interesse",
    "kein bedarf",
    "keinen bedarf",
    "keine verwendung",
    "kein budget",
    "nein danke",
    "nicht interessiert",
    "haben bereits",
    "nutzen bereits",
    "derzeit nicht",
    "pas intéressé",
    "pas intéressée",
    "pas d'intérêt",
    "non merci",
    "pas besoin",
    "avons déjà",
    "pas pour le moment",
    "no estamos interesados",
    "no me interesa",
    "no nos interesa",
    "no gracias",
    "no, gracias",
    "ya tenemos",
    "ya contamos",
    "no es prioridad",
    "por ahora no",
];

/// Words that set up a conversation in time.
const MEETING: &[&str] = &[
    "call",
    "meeting",
    "meet ",
    "demo",
    "chat",
    "calendar",
    "invite",
    "calendly",
    "zoom",
    "teams link",
    "google meet",
    "slot",
    "book a time",
    "book time",
    "schedule",
    "set something up",
    "set up a time",
    "find a time",
    "time to talk",
    "hop on",
    "jump on",
    "let's talk",
    "lets talk",
    "termin",
    "telefonat",
    "gespräch",
    "anruf",
    "rendez-vous",
    "un appel",
    "réunion",
    "échange",
    "visio",
    "créneau",
    "llamada",
    "reunión",
    "una cita",
    "agendar",
];

/// When: days, times and "next week" in the languages replies come in.
const WHEN: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "tomorrow",
    "tmrw",
    "mon",
    "tue",
    "tues",
    "wed",
    "weds",
    "thu",
    "thur",
    "thurs",
    "fri",
    "next week",
    "this week",
    ":00",
    ":30",
    "o'clock",
    "morning",
    "afternoon",
    "available",
    "availability",
    "works for me",
    "work for me",
    "free on",
    "free at",
    "montag",
    "dienstag",
    "mittwoch",
    "donnerstag",
    "freitag",
    "morgen",
    "nächste woche",
    "lundi",
    "mardi",
    "mercredi",
    "jeudi",
    "vendredi",
    "demain",
    "semaine prochaine",
    "lunes",
    "martes",
    "miércoles",
    "jueves",
    "viernes",
    "mañana",
    "próxima semana",
    "semana que viene",
];

/// A yes, or a wish to hear more.
const INTEREST: &[&str] = &[
    "interested",
    "interesting",
    "tell me more",
    "learn more",
    "hear more",
    "know more",
    "more info",
    "more information",
    "more details",
    "send over",
    "send me",
    "send it",
    "send the",
    "share more",
    "share the",
    "sounds good",
    "sounds great",
    "sounds promising",
    "looks interesting",
    "curious",
    "keen",
    "intrigued",
    "worth a look",
    "would love",
    "i'd love",
    "happy to",
    "let's talk",
    "let's do it",
    "yes please",
    "interessant",
    "interessiert",
    "mehr erfahren",
    "schicken sie",
    "senden sie",
    "gerne mehr",
    "intéressé",
    "intéressant",
    "en savoir plus",
    "envoyez",
    "volontiers",
    "interesa",
    "interesante",
    "me interesaría",
    "envíe",
    "envíame",
    "más información",
];

/// What a prospect may ask for or about: a request for it ("send the deck") is interest, a
/// question about it ("is pricing per user?") a question.
const TOPICS: &[&str] = &["pricing", "price", "prices", "case study", "case studies", "deck", "brochure", "one-pager", "trial", "samples"];

/// Words that turn the phrase after them around ("no need for a call", "not interested").
const NEGATIONS: &[&str] = &[
    "no need for a",
    "no need to meet",
    "don't need a",
    "do not need a",
    "without a",
    "skip the",
    "rather than a",
    "instead of a",
    "can't jump on",
    "cannot jump on",
    "can't do a",
    "can't meet",
    "cannot meet",
    "no time for a",
    "no call needed",
    "no meeting needed",
    "no need to talk",
    "no need to meet",
    "keine zeit für ein",
    "für ein telefonat fehlt",
    "pas besoin d'un appel",
    "sin necesidad de llamada",
];

/// The message was not meant for us ("please disregard").
const MISSENT: &[&str] =
    &["please disregard", "sent this by mistake", "sent in error", "wrong thread", "meant to send this to", "ignore my last"];

/// Questions about when we could talk: a meeting asked for without a meeting word.
const ASKS_WHEN: &[&str] =
    &["your availability", "you available", "when are you free", "what times", "what time works", "when works", "when suits"];

/// Words that accept a time when no meeting word is used ("Thursday 2pm works").
const ACCEPTS_TIME: &[&str] = &["works for me", "work for me", " works", "how about", "does that work", "let's do", "lets do", "see you"];

/// Whether `text` holds `phrase` as whole words ("call" is not in "basically", "chat" not in
/// "chatgpt"). A phrase ending in a space or a mark says where it ends itself.
fn holds(text: &str, phrase: &str) -> bool {
    let word_char = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        let open_start = !phrase.starts_with(|c: char| c.is_alphanumeric());
        let open_end = !phrase.ends_with(|c: char| c.is_alphanumeric());
        (open_start || !word_char(before)) && (open_end || !word_char(after))
    })
}

fn any(text: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| holds(text, p))
}

/// "I'm not uninterested", "if you're not interested": a decline that is not one.
fn declines(text: &str) -> bool {
    let cleaned = without_negated_meetings(text)
        .replace("not uninterested", "")
        .replace("if you're not interested", "")
        .replace("if not interested", "");
    any(&cleaned, DECLINES)
}

/// The text without the clauses that turn a meeting down ("no need for a call, just send…").
fn without_negated_meetings(text: &str) -> String {
    let mut rest = text.to_string();
    for negation in NEGATIONS {
        while let Some(at) = rest.find(negation) {
            // Drop the negated phrase up to the end of its clause.
            let end = rest[at..].find(['.', ',', ';', '!', '?']).map_or(rest.len(), |e| at + e);
            rest.replace_range(at..end, " ");
        }
    }
    rest
}

/// A call is asked for or agreed to: meeting words that no negation turns around, with a time
/// or a request to set one.
fn asks_for_meeting(text: &str) -> bool {
    let rest = without_negated_meetings(text);
    let meeting = any(&rest, MEETING);
    let when = any(&format!("{rest} "), WHEN) || names_a_time(&rest);
    if (when && any(&format!("{rest} "), ACCEPTS_TIME)) || any(&rest, ASKS_WHEN) {
        return true;
    }
    let books = ["book", "schedule", "set up", "set something up", "send an invite", "send a calendar", "send me an invite", "grab"]
        .iter()
        .any(|p| rest.contains(p));
    meeting && (when || books || rest.contains('?') || rest.contains("let's") || rest.contains("happy to"))
}

/// "2pm", "10:30", "after 3": a time of day.
fn names_a_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(|c: char| c.is_ascii_digit()).any(|(at, _)| {
        let after = &text[at + 1..];
        let after = after.trim_start_matches(|c: char| c.is_ascii_digit());
        let before = &text[..at];
        after.starts_with("pm")
            || after.starts_with("am")
            || after.starts_with(" pm")
            || after.starts_with(" am")
            || (after.starts_with(':') && after[1..].starts_with(|c: char| c.is_ascii_digit()))
            || (before.ends_with("after ") || before.ends_with("at ") || before.ends_with("around ")) && bytes.get(at).is_some()
    })
}

/// The reply's new text (quoted history already cut) as the rules read it: lower case, one
/// line, without a trailing signature block.
fn readable(text: &str) -> String {
    let mut kept = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // A signature starts at "-- " or a closing; what follows is a name and contact lines.
        if trimmed == "--" || trimmed == "-- " {
            break;
        }
        kept.push(trimmed);
    }
    kept.join(" ").to_lowercase().replace('’', "'")
}

/// Decides by the rules. `sender` is the reply's From address (never the referred one).
pub fn by_rules(text: &str, sender: Option<&str>) -> IntentReading {
    let reading = readable(text);
    let others: Vec<String> = addresses_in(before_signature(text)).into_iter().filter(|a| could_be_referred(a, sender)).collect();
    if any(&reading, MISSENT) {
        return IntentReading { intent: ReplyIntent::Other, referral: None, decided_by: "rules".into(), usage: None };
    }
    let points_elsewhere = any(&reading, POINTS_ELSEWHERE);
    let wrong = any(&reading, WRONG_PERSON);
    let meeting = asks_for_meeting(&reading);
    let adds_to_invite = meeting && ["invite", "to the call", "to the meeting", "cc"].iter().any(|p| reading.contains(p));
    let referral = if points_elsewhere || wrong { referred(text, &others, &reading) } else { None };
    let intent = match () {
        // A colleague added to an invite is a meeting, unless the sender also says it is not theirs.
        _ if referral.is_some() && (wrong || !adds_to_invite) => ReplyIntent::Referral,
        _ if wrong => ReplyIntent::WrongPerson,
        _ if declines(&reading) && !meeting => ReplyIntent::NotInterested,
        _ if meeting => ReplyIntent::MeetingRequest,
        _ if any(&reading, INTEREST) => ReplyIntent::Interested,
        _ if reading.contains('?') => ReplyIntent::Question,
        _ if any(&reading, TOPICS) => ReplyIntent::Interested,
        _ => ReplyIntent::Other,
    };
    IntentReading { referral: referral.filter(|_| intent == ReplyIntent::Referral), intent, decided_by: "rules".into(), usage: None }
}

/// Closings that start a signature block, in the replies' languages.
const CLOSINGS: &[&str] = &[
    "regards",
    "kind regards",
    "best regards",
    "warm regards",
    "best",
    "best wishes",
    "thanks",
    "thank you",
    "many thanks",
    "cheers",
    "sincerely",
    "yours sincerely",
    "yours faithfully",
    "respectfully",
    "all the best",
    "mit freundlichen grüßen",
    "viele grüße",
    "beste grüße",
    "freundliche grüße",
    "grüße",
    "gruß",
    "cordialement",
    "bien cordialement",
    "bien à vous",
    "salutations",
    "saludos",
    "atentamente",
    "un saludo",
    "cordiales saludos",
    "met vriendelijke groet",
    "groeten",
    "cumprimentos",
    "atenciosamente",
];

/// The reply above its signature: addresses below a closing ("Regards,") are the sender's own
/// or their company's, never the colleague the reply points to.
fn before_signature(text: &str) -> &str {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let closing = line.trim().trim_end_matches([',', '.', '!']).to_lowercase();
        if offset > 0 && CLOSINGS.contains(&closing.as_str()) {
            return &text[..offset];
        }
        offset += line.len();
    }
    text
}

/// Whether `address` may be a colleague the reply refers us to: not the sender, and at the
/// sender's company when the sender writes from one (a billing or vendor address elsewhere is
/// no referral).
pub fn could_be_referred(address: &str, sender: Option<&str>) -> bool {
    let Some(sender) = sender else { return true };
    if address.eq_ignore_ascii_case(sender) {
        return false;
    }
    let domain_of = |a: &str| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    let (theirs, ours) = (domain_of(address), domain_of(sender));
    crate::domain::is_free_mail(&ours) || theirs == ours || theirs.ends_with(&format!(".{ours}")) || ours.ends_with(&format!(".{theirs}"))
}

/// The colleague the reply points to: an address in it other than the sender's, with the
/// name written before it (or read from the address), or a name after a pointing phrase.
fn referred(text: &str, others: &[String], reading: &str) -> Option<Referral> {
    // An address far from any pointing phrase is a signature's or a footer's, not a referral.
    let pointed_at = |email: &String| {
        let Some(at) = reading.find(&email.to_lowercase()) else { return false };
        POINTS_ELSEWHERE.iter().chain(WRONG_PERSON).any(|p| reading.match_indices(p).any(|(i, _)| i.abs_diff(at) <= 160))
    };
    if let Some(email) = others.iter().find(|e| pointed_at(e)) {
        return Some(Referral { name: name_before(text, email).or_else(|| name_from_address(email)), email: Some(email.clone()) });
    }
    name_after_pointer(text).map(|name| Referral { name: Some(name), email: None })
}

/// Up to three capitalised words right before `email` ("Jane Doe (jane@…)", "Jane Doe at …").
fn name_before(text: &str, email: &str) -> Option<String> {
    // ASCII lowercasing keeps every byte where it was, so the offset fits `text`.
    let at = text.to_ascii_lowercase().find(&email.to_ascii_lowercase())?;
    let before = &text[..at];
    let words: Vec<&str> = before
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | '<' | '[' | ':' | ',' | '-' | '–'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut name: Vec<&str> = Vec::new();
    for word in words.iter().rev() {
        let lower = word.to_lowercase();
        if name.is_empty() && ["at", "on", "via", "email", "e-mail", "is", "unter", "à", "en", "a", "is:"].contains(&lower.as_str()) {
            continue;
        }
        if is_name_word(word) && name.len() < 3 {
            name.push(word);
        } else {
            break;
        }
    }
    name.reverse();
    (!name.is_empty()).then(|| name.join(" "))
}

fn is_name_word(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_uppercase)
        && word.chars().all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '.'))
        && !["I", "Hi", "Hello", "Please", "Thanks", "Our", "My", "The", "She", "He", "They", "We"].contains(&word)
}

/// "jane.doe@…" → "Jane Doe"; a role address ("procurement@…") names a team.
fn name_from_address(email: &str) -> Option<String> {
    let local = email.split('@').next()?;
    let parts: Vec<String> = local
        .split(['.', '_', '-'])
        .filter(|p| p.len() > 1 && p.chars().all(char::is_alphabetic))
        .map(|p| {
            let mut chars = p.chars();
            chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// "talk to Jane Doe", "my colleague Sam Lee handles this": the capitalised words after a
/// pointing phrase.
fn name_after_pointer(text: &str) -> Option<String> {
    // ASCII lowercasing keeps every byte where it was, so the offsets fit `text`.
    let lower = text.to_ascii_lowercase();
    for pointer in [
        "talk to ",
        "speak to ",
        "speak with ",
        "reach out to ",
        "contact ",
        "my colleague ",
        "replacement is ",
        "that'd be ",
        "that would be ",
        "ask for ",
    ] {
        let Some(at) = lower.find(pointer) else { continue };
        let after = &text[at + pointer.len()..];
        let name: Vec<&str> = after
            .split_whitespace()
            .map(|w| w.trim_end_matches([',', '.', ';', ':', '!']))
            .take_while(|w| is_name_word(w))
            .take(3)
            .collect();
        if !name.is_empty() {
            return Some(name.join(" "));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(text: &str) -> ReplyIntent {
        by_rules(text, Some("ada@initech.example")).intent
    }

    #[test]
    fn each_intent_is_read_from_plain_phrasings() {
        assert_eq!(intent("Sounds interesting, send me the deck."), ReplyIntent::Interested);
        assert_eq!(intent("No thanks, we already have a vendor for this."), ReplyIntent::NotInterested);
        assert_eq!(intent("Happy to chat. Does Tuesday at 3pm work?"), ReplyIntent::MeetingRequest);
        assert_eq!(intent("I'm not the right person for this, sorry."), ReplyIntent::WrongPerson);
        assert_eq!(intent("How does this differ from Fivetran?"), ReplyIntent::Question);
        assert_eq!(intent("Thanks."), ReplyIntent::Other);
        let referral = by_rules("Please talk to Jane Doe (jane.doe@initech.example), she runs ops.", Some("ada@initech.example"));
        assert_eq!(referral.intent, ReplyIntent::Referral);
        assert_eq!(referral.referral, Some(Referral { name: Some("Jane Doe".into()), email: Some("jane.doe@initech.example".into()) }));
    }

    #[test]
    fn words_are_matched_whole_and_a_signature_s_addresses_are_no_referral() {
        assert_eq!(intent("Basically, we use ChatGPT for this already, no thanks."), ReplyIntent::NotInterested);
        assert_eq!(intent("Thursday 2pm works."), ReplyIntent::MeetingRequest);
        let signed = "I work in QA, so I'm not the person to evaluate this.\n\nRegards,\nEmma\nemma@strand.example";
        assert_eq!(
            by_rules(signed, None).intent,
            ReplyIntent::WrongPerson,
            "without knowing the sender, the signature still says who wrote"
        );
        let billing = by_rules("Not interested. For invoices contact billing@vendor.example", Some("ada@initech.example"));
        assert_eq!((billing.intent, billing.referral), (ReplyIntent::NotInterested, None), "another company's address is no colleague");
        let turkish = by_rules("İstanbul office here. Please talk to Şule Kaya, she owns this.", Some("ada@initech.example"));
        assert_eq!(
            turkish.referral.and_then(|r| r.name).as_deref(),
            Some("Şule Kaya"),
            "text that lowercases to other lengths is read safely"
        );
    }

    #[test]
    fn the_sender_s_own_address_is_never_the_referral() {
        let reading = by_rules("I'm the wrong person.\n\nAda Lovelace\nada@initech.example", Some("ada@initech.example"));
        assert_eq!(reading.intent, ReplyIntent::WrongPerson);
        assert_eq!(reading.referral, None);
    }
}
