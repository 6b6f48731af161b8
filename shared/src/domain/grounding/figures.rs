//! Figures in prose, read as values so that a paraphrase matches and a contradiction does not:
//! "4,000", "4k", "four thousand", "$12M", "12 million", "40%", "forty percent", "2019".

use super::lexicon::CONVERSATIONAL_UNITS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FigureKind {
    Count,
    Percent,
    /// "#1", "number one": a ranking, which a count of the same value does not support.
    Rank,
}

/// How a figure is hedged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approximation {
    Exact,
    /// "about", "around", "roughly", "~": within a tenth either way.
    About,
    /// "over", "more than", "4k+": the true figure is at least this, and not far above.
    AtLeast,
    /// "nearly", "almost", "under": the true figure is at most this, and not far below.
    AtMost,
}

impl Approximation {
    /// The hedge the words before a figure put on it: "more than", "fewer than", "close to".
    fn from_words(before: &str, word: &str) -> Self {
        match (before, word) {
            ("more" | "greater" | "higher", "than") => Self::AtLeast,
            ("fewer" | "less" | "lower", "than") => Self::AtMost,
            ("close", "to") => Self::AtMost,
            (_, "about" | "around" | "roughly" | "approximately" | "some" | "circa") => Self::About,
            (_, "over" | "upwards" | "plus") => Self::AtLeast,
            (_, "nearly" | "almost" | "under") => Self::AtMost,
            _ => Self::Exact,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// The figure as written, for the refusal.
    pub text: String,
    pub value: f64,
    pub kind: FigureKind,
    /// "over 4,000", "~40%", "4k+": a rounded figure near a source's is the same claim, on the
    /// side it says.
    pub approximate: Approximation,
    /// The word after the figure ("customers"), to say what a contradicted figure counts.
    pub unit: Option<String>,
    /// The few words after it, where a source's unit may sit behind an adjective.
    pub following: Vec<String>,
}

impl Figure {
    /// Whether `source` counts the same thing, so that a different value contradicts it.
    pub fn counts_the_same_as(&self, source: &Figure) -> bool {
        let singular = |w: &str| w.trim_end_matches('s').to_string();
        let Some(unit) = self.unit.as_deref().filter(|u| is_a_unit(u)) else { return false };
        self.kind == source.kind && source.unit.iter().chain(&source.following).any(|f| singular(f) == singular(unit))
    }

    /// Whether `source` states the same figure: equal, or near it when this one is rounded.
    /// "Over 1,000" is true of a source's 4,800 only when the source counts the same thing.
    pub fn matches(&self, source: &Figure) -> bool {
        self.matches_within(source, self.counts_the_same_as(source))
    }

    fn matches_within(&self, source: &Figure, same_thing: bool) -> bool {
        if self.kind != source.kind {
            return false;
        }
        let (claimed, found) = (self.value, source.value);
        if (claimed - found).abs() <= 1e-9 * claimed.abs().max(found.abs()).max(1.0) {
            return true;
        }
        let near = found != 0.0 && ((claimed - found) / found).abs() <= 0.1;
        match self.approximate {
            Approximation::Exact => false,
            Approximation::About => near,
            // "over 1,000" is true of 4,800; "over 4,400" is not true of 4,000.
            Approximation::AtLeast => found >= claimed && (same_thing || near),
            Approximation::AtMost => near && found <= claimed,
        }
    }
}

const SMALL: &[(&str, f64)] = &[
    ("zero", 0.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("thirteen", 13.0),
    ("fourteen", 14.0),
    ("fifteen", 15.0),
    ("sixteen", 16.0),
    ("seventeen", 17.0),
    ("eighteen", 18.0),
    ("nineteen", 19.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("forty", 40.0),
    ("fifty", 50.0),
    ("sixty", 60.0),
    ("seventy", 70.0),
    ("eighty", 80.0),
    ("ninety", 90.0),
];

fn multiplier(word: &str) -> Option<f64> {
    match word {
        "hundred" => Some(1e2),
        "thousand" | "k" => Some(1e3),
        "million" | "millions" | "m" | "mm" | "mn" => Some(1e6),
        "billion" | "billions" | "bn" | "b" => Some(1e9),
        _ => None,
    }
}

fn small_number(word: &str) -> Option<f64> {
    let mut total = 0.0;
    for part in word.split('-') {
        total += SMALL.iter().find(|(w, _)| *w == part).map(|(_, v)| *v)?;
    }
    Some(total)
}

/// A chunk of text between spaces, with the punctuation around it taken off.
fn core(chunk: &str) -> &str {
    chunk
        .trim_matches(|c: char| matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | '"' | '\'' | '*' | '“' | '”' | '‘' | '’' | '<' | '>'))
        .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '"', '\'', '”', '’'])
}

/// A written figure: the value, whether it is a percentage, a unit glued to it ("15-minute",
/// "4k"), and whether it was marked approximate ("~", "+").
fn numeric(text: &str) -> Option<Written> {
    // "US$5M", "A$2m": a currency's letters before its sign.
    let text = match text.find(['$', '€', '£']) {
        Some(at) if at <= 3 && text[..at].chars().all(|c| c.is_ascii_uppercase()) => &text[at..],
        _ => text,
    };
    // "$49/month", "40%/yr": the figure is before the slash. "3/14", "24/7", "50/50" are dates
    // and idioms, not figures.
    let text = match text.split_once('/') {
        Some((figure, per)) if per.chars().all(char::is_alphabetic) && !per.is_empty() => figure,
        Some(_) => return None,
        None => text,
    };
    let mut text = text.trim_start_matches(['$', '€', '£', '#']);
    let about = text.starts_with('~');
    text = text.trim_start_matches(['~', '$', '€', '£']);
    let digits_end = text.find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '.')).unwrap_or(text.len());
    let (number, rest) = text.split_at(digits_end);
    let number = number.trim_end_matches([',', '.']);
    if number.is_empty() || !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    // "4,000" and "4.000.000" group thousands; "1.5" is a decimal.
    let plain: String = number.chars().filter(|c| *c != ',').collect();
    let mut value: f64 = plain.parse().ok().or_else(|| plain.replace('.', "").parse().ok())?;
    let rest = rest.to_ascii_lowercase();
    // "4k+", "4,000+", "4k-plus": at least that many.
    let approximate = rest.contains('+') || rest.ends_with("-plus");
    let rest = rest.trim_end_matches("-plus").replace('+', "");
    let rest = rest.as_str();
    let (percent, rest) = match rest.strip_prefix('%') {
        Some(after) => (true, after),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches('+');
    let mut unit = None;
    if let Some(glued) = rest.strip_prefix('-') {
        unit = (!glued.is_empty()).then(|| glued.to_string());
    } else if let Some(m) = multiplier(rest) {
        value *= m;
    } else if !rest.is_empty() && !matches!(rest, "st" | "nd" | "rd" | "th" | "s" | "x" | "am" | "pm" | "'s") {
        // "B2B", "GPT-4", "10am" are names or times, not figures.
        return None;
    }
    if matches!(rest, "am" | "pm") {
        unit = Some(rest.to_string());
    }
    let approximate = match (about, approximate) {
        (true, _) => Approximation::About,
        (false, true) => Approximation::AtLeast,
        (false, false) => Approximation::Exact,
    };
    Some(Written { value, percent, unit, approximate })
}

/// A figure as written in one word.
#[derive(Clone, Debug)]
struct Written {
    value: f64,
    percent: bool,
    /// A unit glued to it: "15-minute", "am".
    unit: Option<String>,
    approximate: Approximation,
}

/// Every figure in `text`. Small numbers in a meeting ask or a figure of speech ("a 15-minute
/// call", "two quick questions") and clock times are not claims and are left out, as is "one".
pub fn figures(text: &str) -> Vec<Figure> {
    read_figures(text, true)
}

/// Every figure a source states, the length of a meeting its call to action asks for included.
pub fn source_figures(text: &str) -> Vec<Figure> {
    read_figures(text, false)
}

fn read_figures(text: &str, for_claims: bool) -> Vec<Figure> {
    let chunks: Vec<&str> = text.split_whitespace().collect();
    let lower: Vec<String> = chunks.iter().map(|c| core(c).to_lowercase()).collect();
    let mut found = Vec::new();
    let plain = |text: &str, value: f64, kind: FigureKind| Figure {
        text: text.into(),
        value,
        kind,
        approximate: Approximation::Exact,
        unit: None,
        following: Vec::new(),
    };
    let mut i = 0;
    while i < chunks.len() {
        let word = core(chunks[i]);
        let start = i;
        let parsed = if let Some((left, right)) = word.split_once(':').filter(|(l, r)| !l.is_empty() && !r.is_empty()) {
            // "10:30" is a clock time; "5:1" is a ratio, two figures.
            // "1:1" is a meeting, not a ratio.
            if let (Ok(a), Ok(b)) = (left.parse::<f64>(), right.parse::<f64>())
                && right.len() == 1
                && word != "1:1"
            {
                found.extend([plain(word, a, FigureKind::Count), plain(word, b, FigureKind::Count)]);
            }
            None
        } else if let Some((left, right)) = word.split_once(['-', '–', '—']).filter(|(l, r)| is_year(l) && is_year(r)) {
            // "2019-2024": two years.
            found.extend([left, right].map(|year| plain(year, year.parse().unwrap_or(0.0), FigureKind::Count)));
            None
        } else if let Some((left, right)) = word.split_once(['–', '—', '-']).and_then(|(l, r)| Some((numeric(l)?, numeric(r)?))) {
            // "8–12%": a range; the unit after the second end belongs to both.
            let kind = if left.percent || right.percent { FigureKind::Percent } else { FigureKind::Count };
            found.extend([left, right].map(|end| plain(word, end.value, kind)));
            None
        } else if let Some(year) = word.split_once('-').map(|(_, year)| year).filter(|y| is_year(y)) {
            // "mid-2023", "late-2024".
            found.push(plain(word, year.parse().unwrap_or(0.0), FigureKind::Count));
            None
        } else if let Some(year) = ["fy", "cy"]
            .iter()
            .find_map(|p| word.to_ascii_lowercase().strip_prefix(p).map(str::to_string))
            .filter(|y| is_year(y) || y.len() == 2 && y.chars().all(|c| c.is_ascii_digit()))
        {
            // "FY2024", "FY24": a fiscal year.
            let value: f64 = year.parse().unwrap_or(0.0);
            found.push(plain(word, if value < 100.0 { 2000.0 + value } else { value }, FigureKind::Count));
            None
        } else if let Some(year) = chunks[i]
            .trim_start_matches(['(', '"'])
            .strip_prefix(['\'', '’'])
            .map(core)
            .filter(|y| y.len() == 2 && y.chars().all(|c| c.is_ascii_digit()))
        {
            // "back in '23": a year.
            found.push(plain(word, 2000.0 + year.parse::<f64>().unwrap_or(0.0), FigureKind::Count));
            None
        } else if let Some(parsed) = numeric(word) {
            Some(parsed)
        } else if let Some(vague) = vague(&lower, &mut i) {
            Some(vague)
        } else {
            spelled(&lower, &mut i)
        };
        let rank = word.starts_with('#') || (start > 0 && lower[start - 1] == "number" && word.eq_ignore_ascii_case("one"));
        let Some(Written { mut value, mut percent, unit: glued_unit, mut approximate }) = parsed else {
            i += 1;
            continue;
        };
        // Words after the figure: a multiplier, "percent", then the unit it counts.
        let mut next = i + 1;
        if glued_unit.is_none() {
            let multiplied = lower.get(next).and_then(|w| multiplier(w.trim_end_matches("-plus").trim_end_matches('+')));
            if let Some(m) = multiplied.filter(|_| value < 1e3) {
                if lower[next].ends_with("-plus") || lower[next].ends_with('+') {
                    approximate = Approximation::AtLeast;
                }
                value *= m;
                next += 1;
            }
            if lower.get(next).is_some_and(|w| w == "percent" || w == "pct") {
                percent = true;
                next += 1;
            } else if lower.get(next).is_some_and(|w| w == "per") && lower.get(next + 1).is_some_and(|w| w == "cent") {
                percent = true;
                next += 2;
            }
        }
        // The word after a figure says what it counts unless a clause ends at the figure or a
        // name follows it ("in 2009, Summit Ridge …").
        let clause_ends = chunks[next - 1].ends_with([',', '.', ';', ':', '!', '?', ')']);
        // Modifiers stand between a figure and what it counts: "3 new offices".
        let mut noun = next;
        while lower.get(noun).is_some_and(|w| MODIFIERS.contains(&w.as_str())) {
            noun += 1;
        }
        let counted = |k: usize| lower.get(k).cloned();
        let unit = glued_unit.or_else(|| if clause_ends { None } else { counted(noun) });
        let before = if start > 1 { lower[start - 2].as_str() } else { "" };
        let hedge = if start > 0 { Approximation::from_words(before, &lower[start - 1]) } else { Approximation::Exact };
        // A "+" written on the figure says more than the words before it.
        if hedge != Approximation::Exact && approximate != Approximation::AtLeast {
            approximate = hedge;
        }
        if lower.get(next).is_some_and(|w| w == "plus") {
            approximate = Approximation::AtLeast;
        }
        let text: String = chunks[start..next].iter().map(|c| core(c)).collect::<Vec<_>>().join(" ");
        i = next;
        let asks = chunks.iter().skip(next).take(6).any(|c| c.contains('?'));
        if for_claims && !percent && !rank && small_talk(value, unit.as_deref(), &lower, start, next, asks) {
            continue;
        }
        // Numbers under ten spelled out are style ("two states", "three things"); a figure a
        // team would check is written in digits, is large, or is a percentage or a rank.
        let spelled_small = value < 10.0 && !text.chars().any(|c| c.is_ascii_digit()) && !rank && !percent;
        if for_claims && spelled_small {
            continue;
        }
        let following = if clause_ends { Vec::new() } else { (noun..noun + 3).map_while(counted).collect() };
        // "8 to 12 per cent": the first end of a range takes the second's unit.
        if percent
            && start >= 2
            && matches!(lower[start - 1].as_str(), "to" | "and" | "or")
            && let Some(previous) =
                found.last_mut().filter(|f| f.kind == FigureKind::Count && f.unit.as_deref() == Some(lower[start - 1].as_str()))
        {
            previous.kind = FigureKind::Percent;
        }
        let kind = if rank {
            FigureKind::Rank
        } else if percent {
            FigureKind::Percent
        } else {
            FigureKind::Count
        };
        found.push(Figure { text, value, kind, approximate, unit, following });
    }
    found
}

/// Whether a word after a figure says what it counts ("customers", "rooms"), rather than
/// being a word of the sentence around it ("in", "the").
fn is_a_unit(word: &str) -> bool {
    const NOT_UNITS: &[&str] = &[
        "the", "and", "for", "with", "from", "that", "this", "are", "was", "has", "have", "its", "our", "your", "their", "since", "into",
        "per", "plus", "more", "than", "over", "when", "which", "who", "while", "after", "before", "across", "alone",
    ];
    word.len() > 2 && word.chars().all(char::is_alphabetic) && !NOT_UNITS.contains(&word)
}

/// Words between a figure and the thing it counts.
const MODIFIERS: &[&str] = &[
    "new",
    "more",
    "additional",
    "other",
    "active",
    "current",
    "total",
    "existing",
    "different",
    "separate",
    "major",
    "small",
    "large",
    "local",
    "full-time",
    "part-time",
    "of",
    "paying",
    "happy",
    "regular",
    "recurring",
    "monthly",
    "annual",
    "weekly",
];

/// Words of a meeting ask, near which a small number of minutes is its length.
const MEETING_WORDS: &[&str] =
    &["call", "chat", "meeting", "demo", "walkthrough", "conversation", "session", "intro", "review", "slot", "read"];

/// Whether a small number is part of a meeting ask or a figure of speech, not a claim: "a
/// 15-minute call", "20 minutes next week for a demo?", "two quick questions".
fn small_talk(value: f64, unit: Option<&str>, lower: &[String], start: usize, next: usize, asks: bool) -> bool {
    let Some(unit) = unit.filter(|_| value <= 60.0) else { return false };
    if CONVERSATIONAL_UNITS.contains(&unit) {
        return true;
    }
    let minutes = ["minute", "minutes", "min", "mins"].contains(&unit);
    let around = lower[start.saturating_sub(4)..start].iter().chain(lower.iter().skip(next).take(5));
    let of_your_time = lower.iter().skip(next).take(3).map(String::as_str).collect::<Vec<_>>() == ["of", "your", "time"];
    minutes && (asks || of_your_time || around.map(|w| w.trim_end_matches(['?', '.', ','])).any(|w| MEETING_WORDS.contains(&w)))
}

/// "a million", "a thousand", "a hundred and eighty": an amount spelled from "a". ("Thousands
/// of", "hundreds of" say only that there are many, as "two" or "three" say little: style.)
fn vague(lower: &[String], i: &mut usize) -> Option<Written> {
    if lower[*i] != "a" {
        return None;
    }
    let mut amount = multiplier(lower.get(*i + 1)?.as_str()).filter(|_| lower[*i + 1].len() > 2)?;
    // "a hundred percent sure" is an idiom.
    if lower.get(*i + 2).is_some_and(|w| w == "percent") {
        return None;
    }
    *i += 1;
    // "a hundred and eighty": exact.
    if let Some(rest) = lower.get(*i + 2).filter(|_| lower.get(*i + 1).is_some_and(|w| w == "and")).and_then(|w| small_number(w)) {
        amount += rest;
        *i += 2;
        return Some(Written { value: amount, percent: false, unit: None, approximate: Approximation::Exact });
    }
    Some(Written { value: amount, percent: false, unit: None, approximate: Approximation::About })
}

const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
];

/// A month with its year ("March 2024", "March 3, 2024", "3 March 2024"): a date whose parts
/// may each appear in a source while the date itself does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonthYear {
    pub text: String,
    pub month: String,
    pub year: u32,
}

pub fn month_years(text: &str) -> Vec<MonthYear> {
    let chunks: Vec<&str> = text.split_whitespace().map(core).collect();
    let mut found = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let lower = chunk.to_lowercase();
        let Some(month) = MONTHS.iter().find(|m| **m == lower) else { continue };
        // The year right after the month, or after its day.
        let year = chunks
            .iter()
            .skip(i + 1)
            .take(2)
            .find_map(|c| c.trim_end_matches(',').parse::<u32>().ok().filter(|y| (1800..=2100).contains(y)));
        if let Some(year) = year {
            let month = MONTHS[MONTHS.iter().position(|m| m == month).unwrap_or(0) % 12].chars().take(3).collect();
            found.push(MonthYear { text: format!("{chunk} {year}"), month, year });
        }
    }
    found
}

fn is_year(text: &str) -> bool {
    text.len() == 4 && text.parse::<u32>().is_ok_and(|y| (1800..=2100).contains(&y))
}

/// A figure spelled in words starting at `*i` ("four thousand", "twenty-five", "forty"),
/// leaving `*i` on its last word.
fn spelled(lower: &[String], i: &mut usize) -> Option<Written> {
    let first = small_number(&lower[*i])?;
    let (mut total, mut current) = (0.0, first);
    let mut end = *i;
    let mut j = *i + 1;
    while j < lower.len() {
        let word = lower[j].as_str();
        if let Some(m) = multiplier(word).filter(|_| word.len() > 2) {
            if m == 100.0 {
                current *= m;
            } else {
                total += current * m;
                current = 0.0;
            }
            end = j;
        } else if word == "and" && lower.get(j + 1).and_then(|w| small_number(w)).is_some() && current >= 100.0 {
            // "two hundred and fifty"
        } else if let Some(n) = small_number(word).filter(|_| current % 100.0 == 0.0 && current > 0.0 || total > 0.0) {
            current += n;
            end = j;
        } else {
            break;
        }
        j += 1;
    }
    *i = end;
    Some(Written { value: total + current, percent: false, unit: None, approximate: Approximation::Exact })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(f64, FigureKind)> {
        figures(text).into_iter().map(|f| (f.value, f.kind)).collect()
    }

    #[test]
    fn reads_figures_in_their_usual_spellings() {
        use FigureKind::*;
        assert_eq!(values("Payroll for 4,000 firms"), [(4000.0, Count)]);
        assert_eq!(values("over 4k firms and four thousand staff"), [(4000.0, Count), (4000.0, Count)]);
        assert_eq!(values("raised $12M, then $12 million, then €1.5bn"), [(12e6, Count), (12e6, Count), (1.5e9, Count)]);
        assert_eq!(values("up 40% or forty percent or 40 per cent"), [(40.0, Percent), (40.0, Percent), (40.0, Percent)]);
        assert_eq!(values("founded in 2012, twenty-five sites, 3rd office"), [(2012.0, Count), (25.0, Count), (3.0, Count)]);
        assert_eq!(values("two hundred and fifty depots"), [(250.0, Count)]);
        assert_eq!(values("from 2019-2024"), [(2019.0, Count), (2024.0, Count)]);
        assert_eq!(values("rise 8–12% or 8 to 12 per cent"), [(8.0, Percent), (12.0, Percent), (8.0, Percent), (12.0, Percent)]);
        assert_eq!(values("12k+ installs, twelve thousand-plus systems, FY2024"), [(12e3, Count), (12e3, Count), (2024.0, Count)]);
        assert_eq!(
            values("$49/month, 40%/yr, US$5M, a 5:1 ROI, mid-2023"),
            [(49.0, Count), (40.0, Percent), (5e6, Count), (5.0, Count), (1.0, Count), (2023.0, Count)]
        );
        assert_eq!(values("a hundred teams, a million parcels"), [(100.0, Count), (1e6, Count)]);
        assert_eq!(values("seats a hundred and eighty guests, back in '23"), [(180.0, Count), (2023.0, Count)]);
        assert_eq!(values("cut dispatch time by 30 minutes, 3 times faster"), [(30.0, Count), (3.0, Count)]);
    }

    #[test]
    fn months_are_read_with_their_years() {
        let found: Vec<(String, u32)> =
            month_years("In March 2024 and on Sept 3, 2023, and in May.").into_iter().map(|d| (d.month, d.year)).collect();
        assert_eq!(found, [("mar".to_string(), 2024), ("sep".to_string(), 2023)]);
    }

    #[test]
    fn meeting_asks_clock_times_and_names_are_not_figures() {
        assert!(
            values("a 15-minute call, or 20 minutes on Tuesday at 2pm or 10:30? Two quick questions, one idea, two states.").is_empty()
        );
        assert_eq!(values("the #1 platform, nine percent"), [(1.0, FigureKind::Rank), (9.0, FigureKind::Percent)]);
        assert!(values("B2B SaaS on GPT-4 with SOC2").is_empty());
    }

    #[test]
    fn a_rounded_figure_matches_a_near_source_figure_but_a_different_one_does_not() {
        let source = &figures("4,200 customers")[0];
        assert!(figures("over 4,000 customers")[0].matches(source));
        assert!(figures("about 4,000 customers")[0].matches(source));
        assert!(!figures("over 4,400 customers")[0].matches(source), "an overstatement is not the same claim");
        assert!(!figures("4,000 customers")[0].matches(source));
        assert!(!figures("5,000 customers")[0].matches(source));
        assert!(!figures("42% of customers")[0].matches(&figures("42 customers")[0]));
    }
}
