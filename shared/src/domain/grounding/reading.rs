//! Reading prose for what it claims: links and bare domains, email addresses, phone numbers,
//! the words of each sentence, and runs of capitalised words that name someone or something.

use super::lexicon::NAME_CONNECTORS;

/// A URL or bare domain as written, with the host and path it points to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub text: String,
    pub host: String,
    pub path: String,
}

impl Link {
    pub fn parse(text: &str) -> Option<Link> {
        let lower = text.to_ascii_lowercase();
        let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")).unwrap_or(&lower);
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (host, path) = rest.split_at(end);
        let host = host.split(':').next().unwrap_or(host).trim_start_matches("www.").trim_end_matches('.');
        (!host.is_empty()).then(|| Link { text: text.to_string(), host: host.to_string(), path: path.trim_end_matches('/').to_string() })
    }

    /// Whether this link goes where `declared` does: the same host, and under its path.
    pub fn within(&self, declared: &Link) -> bool {
        self.host == declared.host
            && (declared.path.is_empty() || self.path == declared.path || self.path.starts_with(&format!("{}/", declared.path)))
    }
}

/// The contact details and links in a text, and the text with them blanked out so that their
/// digits and words are not read again as figures or names.
#[derive(Debug, Default)]
pub struct Details {
    pub links: Vec<Link>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub rest: String,
}

/// Stands in for a blanked detail: it ends a run of name words, as punctuation does.
const BLANK: char = '|';

fn trimmed_chunk(chunk: &str) -> (usize, &str) {
    let start_trim = chunk.len() - chunk.trim_start_matches(['(', '[', '<', '"', '\'', '*', '“', '‘']).len();
    let inner = &chunk[start_trim..];
    (start_trim, inner.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '>', '"', '\'', '*', '”', '’']))
}

/// Endings that make `name.ending` a file or a language, not a web address ("node.js",
/// "report.pdf"). Real top-level domains are never listed here: a link refused by mistake costs
/// less than one let through.
const NOT_DOMAINS: &[&str] = &[
    "js", "jsx", "tsx", "txt", "pdf", "csv", "png", "jpg", "jpeg", "gif", "svg", "html", "htm", "php", "exe", "doc", "docx", "xls", "xlsx",
    "ppt", "pptx", "json", "xml", "yaml", "yml", "toml", "sql", "vue", "cs", "etc", "vs", "tar", "gz", "mp3", "mp4", "mov", "wav", "ini",
    "cfg", "conf", "log", "lock", "pem",
];

/// Endings people see every day; any other letters may still end a domain, unless both sides
/// of the dot are English words ("thanks.let me know" is a missing space).
const COMMON_ENDINGS: &[&str] = &[
    "com", "net", "org", "io", "ai", "co", "app", "dev", "example", "info", "biz", "us", "uk", "de", "fr", "eu", "ca", "au", "in", "me",
    "ly", "to", "sh", "xyz", "top", "online", "site", "store", "shop",
];

/// `name.tld` or `name.tld/path`: dotted labels ending in letters, written in one case. A
/// single letter before the dot is an abbreviation ("e.g").
fn is_bare_domain(text: &str) -> bool {
    let host = text.split(['/', '?', '#']).next().unwrap_or(text);
    let host = host.split(':').next().unwrap_or(host);
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')) {
        return false;
    }
    let tld = labels[labels.len() - 1];
    let first = labels[0];
    let one_case = tld.chars().all(|c| c.is_ascii_lowercase()) || tld.chars().all(|c| c.is_ascii_uppercase());
    let lower_tld = tld.to_ascii_lowercase();
    let ending = (2..=24).contains(&tld.len()) && one_case && !NOT_DOMAINS.contains(&lower_tld.as_str());
    let missing_space = labels.len() == 2
        && !COMMON_ENDINGS.contains(&lower_tld.as_str())
        && super::is_english_word(&first.to_ascii_lowercase())
        && super::is_english_word(&lower_tld);
    ending && !missing_space && !first.chars().all(|c| c.is_ascii_digit()) && (first.len() > 1 || labels.len() > 2)
}

/// Where a link starts inside a piece of text: "Book:https://…".
fn link_start(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    ["https://", "http://", "www."].iter().filter_map(|scheme| lower.find(scheme)).min()
}

const MARKUP: &[char] = &['(', '[', '<', '>', '"', '=', '|', '{', '}', ']', ')'];

pub fn details(text: &str) -> Details {
    let mut found = Details::default();
    let mut blanked: Vec<char> = text.chars().collect();
    // Characters before each chunk, counted as the chunks go by: one pass over the text.
    let mut chars_before = 0;
    for chunk in text.split_inclusive(char::is_whitespace) {
        let chunk_chars = chunk.chars().count();
        let word = chunk.trim_end();
        // Links, addresses and bare domains may sit inside markup ("[text](url)", "href=\"url\"")
        // and several may share one stretch without spaces: each piece between brackets,
        // quotes or equals signs is read.
        let mut spans: Vec<(usize, &str)> = Vec::new();
        let mut offset = 0;
        for piece in word.split_inclusive(MARKUP) {
            let (lead, inner) = trimmed_chunk(piece.trim_end_matches(MARKUP));
            let inner_at = offset + lead;
            offset += piece.len();
            match link_start(inner) {
                Some(at) => spans.push((inner_at + at, inner[at..].trim_end_matches(['*', '”', '’']))),
                None if !inner.is_empty() => spans.push((inner_at, inner)),
                None => {}
            }
        }
        for (at, piece) in spans {
            let lower = piece.to_ascii_lowercase();
            let is_email = piece.find('@').is_some_and(|at| at > 0 && piece[at + 1..].contains('.') && !piece[at + 1..].ends_with('.'));
            if is_email {
                found.emails.push(lower);
            } else if link_start(piece) == Some(0) || is_bare_domain(piece) {
                match Link::parse(piece) {
                    Some(link) => found.links.push(link),
                    None => continue,
                }
            } else {
                continue;
            }
            let start = chars_before + word[..at].chars().count();
            for c in &mut blanked[start..start + piece.chars().count()] {
                *c = BLANK;
            }
        }
        chars_before += chunk_chars;
    }
    let mut chars = blanked;
    for (start, end) in phone_spans(&chars) {
        found.phones.push(chars[start..end].iter().collect::<String>().trim().to_string());
        for c in &mut chars[start..end] {
            *c = BLANK;
        }
    }
    found.rest = chars.into_iter().collect();
    found
}

/// Digits of a phone number, for comparing two ways of writing it.
pub fn phone_digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// Spans that read as a phone number: seven to fifteen digits grouped by spaces, dashes, dots
/// or brackets, or led by "+". A year range or a grouped figure is not one.
fn phone_spans(chars: &[char]) -> Vec<(usize, usize)> {
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, '+' | '(' | ')' | '-' | '.' | ' ' | '–');
    let mut spans = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = (chars[i].is_ascii_digit() || chars[i] == '+' || chars[i] == '(') && (i == 0 || !chars[i - 1].is_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        let mut end = i;
        let continues = |end: usize| {
            // A space continues a number only before another group of it.
            allowed(chars[end]) && (chars[end] != ' ' || chars.get(end + 1).is_some_and(|c| c.is_ascii_digit() || *c == '('))
        };
        while end < chars.len() && continues(end) {
            end += 1;
        }
        while end > i && !chars[end - 1].is_ascii_digit() && chars[end - 1] != ')' {
            end -= 1;
        }
        let span: String = chars[i..end].iter().collect();
        let digits = phone_digits(&span);
        let groups = span.split(|c: char| !c.is_ascii_digit()).filter(|g| !g.is_empty()).count();
        let year_range = groups == 2 && span.split(|c: char| !c.is_ascii_digit()).filter(|g| !g.is_empty()).all(|g| g.len() == 4);
        let touches_letter = chars.get(end).is_some_and(|c| c.is_alphabetic());
        if (7..=15).contains(&digits.len()) && (span.starts_with('+') || groups >= 2) && !year_range && !touches_letter {
            spans.push((i, end));
        }
        // Either way the run is read once: a number inside a run that is not a phone number is
        // not one either.
        i = end.max(i + 1);
    }
    spans
}

/// One word of a text, with what surrounds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// First word of a sentence, a line or a list item: its capital says nothing.
    pub sentence_initial: bool,
    /// Punctuation or a blanked detail stands between it and the word before.
    pub break_before: bool,
}

impl Word {
    /// Capitalised as a name is: "Initech", "HubSpot", "iPhone", "B2B".
    pub fn capitalised(&self) -> bool {
        let mut chars = self.text.chars();
        let first = chars.next().unwrap_or(' ');
        first.is_uppercase() || (first.is_alphabetic() && self.text.chars().skip(1).any(char::is_uppercase))
    }

    /// Ends with a possessive: the name ends here ("Initech's Denver office").
    pub fn possessive(&self) -> bool {
        self.text.ends_with("'s") || self.text.ends_with('\'')
    }

    /// All capitals, two letters or more: an acronym ("CTO", "AWS").
    pub fn acronym(&self) -> bool {
        let letters: Vec<char> = self.text.chars().filter(|c| c.is_alphabetic()).collect();
        letters.len() >= 2 && letters.iter().all(|c| c.is_uppercase())
    }
}

pub fn words(text: &str) -> Vec<Word> {
    let text = text.replace(['’', '‘'], "'");
    let chars: Vec<char> = text.chars().collect();
    let is_word = |i: usize| chars.get(i).is_some_and(|c| c.is_alphanumeric());
    let mut words = Vec::new();
    let (mut sentence_initial, mut break_before) = (true, true);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() {
            let start = i;
            // Apostrophes, hyphens, ampersands and dots belong to a word when letters follow; a
            // hyphen before a capital joins two names ("Texas-Oklahoma"), each read on its own.
            let joins = |i: usize| {
                matches!(chars[i], '\'' | '-' | '&' | '.')
                    && is_word(i + 1)
                    && is_word(i.wrapping_sub(1))
                    && !(chars[i] == '-' && chars[i + 1].is_uppercase())
            };
            while i < chars.len() && (is_word(i) || joins(i)) {
                i += 1;
            }
            if chars.get(i) == Some(&'\'') && i > start && chars[i - 1] == 's' {
                i += 1; // "Partners'"
            }
            words.push(Word { text: chars[start..i].iter().collect(), sentence_initial, break_before });
            sentence_initial = false;
            break_before = false;
            continue;
        }
        if matches!(c, '.' | '!' | '?' | '\n' | ':' | ';' | '•') {
            sentence_initial = true;
        }
        if !c.is_whitespace() || c == '\n' {
            break_before = true;
        }
        i += 1;
    }
    words
}

/// The words of `text` written in lower case, and the parts of their hyphenated ones: the
/// ordinary words of the text ("playbook-based" makes "playbook" one too).
pub fn lower_case_forms(text: &str) -> impl Iterator<Item = String> {
    words(text).into_iter().filter(|w| !w.capitalised()).flat_map(|w| {
        let lower = w.text.to_lowercase();
        let parts: Vec<String> = lower.split('-').map(str::to_string).collect();
        std::iter::once(lower).chain(parts)
    })
}

/// Runs of capitalised words that read as one name: "Acme Freight", "Bank of America",
/// "Maria Chen". A possessive or punctuation ends a run.
pub fn name_runs(words: &[Word]) -> Vec<Vec<Word>> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if !words[i].capitalised() {
            i += 1;
            continue;
        }
        let mut run = vec![words[i].clone()];
        let mut j = i + 1;
        while j < words.len() && !run.last().is_some_and(Word::possessive) {
            let next = &words[j];
            if next.break_before {
                break;
            }
            if next.capitalised() {
                run.push(next.clone());
                j += 1;
            } else if NAME_CONNECTORS.contains(&next.text.to_lowercase().as_str())
                && words.get(j + 1).is_some_and(|w| w.capitalised() && !w.break_before)
            {
                run.push(next.clone());
                run.push(words[j + 1].clone());
                j += 2;
            } else {
                break;
            }
        }
        runs.push(run);
        i = j;
    }
    runs
}

/// Lower-case words separated by single spaces and padded with one, so that a phrase is found
/// only as whole words, and hyphens read as spaces: `normal(" Initech's  Denver!") == " initech denver "`.
pub fn normal(text: &str) -> String {
    let text = text.replace(['’', '‘'], "'").to_lowercase();
    let cleaned: String = text.chars().map(|c| if c.is_alphanumeric() || matches!(c, '\'' | '&' | '#') { c } else { ' ' }).collect();
    let words: Vec<&str> = cleaned
        .split_whitespace()
        .map(|w| w.trim_matches('\''))
        .map(|w| w.strip_suffix("'s").unwrap_or(w))
        .filter(|w| !w.is_empty())
        .collect();
    format!(" {} ", words.join(" "))
}

/// Sentences of a text, split where a reader would stop.
pub fn sentences(text: &str) -> Vec<String> {
    let mut sentences = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let ends = match c {
            '\n' | '!' | '?' | ';' => true,
            '.' => chars.get(i + 1).is_none_or(|n| n.is_whitespace()),
            _ => false,
        };
        if ends {
            if !current.trim().is_empty() {
                sentences.push(current.trim().to_string());
            }
            current.clear();
        } else {
            current.push(*c);
        }
    }
    if !current.trim().is_empty() {
        sentences.push(current.trim().to_string());
    }
    sentences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_links_bare_domains_emails_and_phones_and_blanks_them() {
        let found = details(
            "Pay at pay-now.example/inv or https://www.Acme.example/x, mail ops@acme.example, call +1 (555) 010-0199. Node.js is fine.",
        );
        let hosts: Vec<&str> = found.links.iter().map(|l| l.host.as_str()).collect();
        assert_eq!(hosts, ["pay-now.example", "acme.example"]);
        assert_eq!(found.emails, ["ops@acme.example"]);
        assert_eq!(found.phones.iter().map(|p| phone_digits(p)).collect::<Vec<_>>(), ["15550100199"]);
        assert!(!found.rest.contains("pay-now") && !found.rest.contains("555") && found.rest.contains("Node.js"));
        assert!(details("from 2019-2024, 4,000,000 users, e.g. this").phones.is_empty());
        assert!(details("from 2019-2024, e.g. this, U.S. teams, Node.js, report.pdf").links.is_empty());
        let hidden = details(
            "Grab a slot: [book a call](https://cal.evil.example/dana). <a href=\"https://evil.example\">x</a> Book:https://b.example pay.acme-billing.top",
        );
        let hosts: Vec<&str> = hidden.links.iter().map(|l| l.host.as_str()).collect();
        assert_eq!(hosts, ["cal.evil.example", "evil.example", "b.example", "pay.acme-billing.top"]);
        let two = details("[here](https://acme.example/book)/[pay](https://evil.example) [billing@evil.example](https://acme.example)");
        let hosts: Vec<&str> = two.links.iter().map(|l| l.host.as_str()).collect();
        assert_eq!(hosts, ["acme.example", "evil.example", "acme.example"]);
        assert_eq!(two.emails, ["billing@evil.example"]);
        assert_eq!(details("Pay at acme-billing.sh/inv or PAYNOW.COM/inv").links.len(), 2);
        assert!(details("Thanks.let me know, see schema.sql or App.vue").links.is_empty());
        let long = "1 ".repeat(50_000) + &"ab.com ".repeat(20_000);
        assert_eq!(details(&long).links.len(), 20_000, "one pass, however long");
    }

    #[test]
    fn runs_of_capitalised_words_are_names_until_punctuation_or_a_possessive() {
        let runs: Vec<String> = name_runs(&words("Saw that Bank of America and Maria Chen met Initech's Denver team, Acme Freight."))
            .into_iter()
            .map(|r| r.iter().map(|w| w.text.clone()).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(runs, ["Saw", "Bank of America", "Maria Chen", "Initech's", "Denver", "Acme Freight"]);
        assert_eq!(normal("Initech's  Denver!"), " initech denver ");
    }

    #[test]
    fn a_declared_link_covers_its_host_and_the_paths_under_it() {
        let booking = Link::parse("https://cal.example/dana").unwrap();
        assert!(Link::parse("cal.example/dana/15min").unwrap().within(&booking));
        assert!(!Link::parse("cal.example/danaX").unwrap().within(&booking));
        assert!(Link::parse("www.northwind.example/pricing").unwrap().within(&Link::parse("https://northwind.example").unwrap()));
    }
}
