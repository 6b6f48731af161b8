//! The bounce corpus: real delivery status notifications, complaint reports and auto-replies
//! from many mail servers (from the sisimai project's test set; its licence is beside the
//! files). The file name says what each message is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sales_agent::inbound::{self, BounceReport, InboundMail, MailClass};

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/bounces")
}

/// What a file's name says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    DeliveryStatus,
    Complaint,
    AutoReply,
}

/// `lhost-postfix-03.eml` → ("lhost-postfix", DeliveryStatus)
pub fn family_of(name: &str) -> Option<(String, Kind)> {
    let stem = name.strip_suffix(".eml")?;
    let family = stem.rsplit_once('-').map_or(stem, |(f, _)| f).to_string();
    let kind = match family.split('-').next()? {
        "lhost" | "rhost" | "rfc3464" => Kind::DeliveryStatus,
        "arf" => Kind::Complaint,
        "rfc3834" => Kind::AutoReply,
        _ => return None,
    };
    Some((family, kind))
}

fn plausible_status(status: &Option<String>) -> bool {
    status.as_deref().is_some_and(|s| {
        let parts: Vec<&str> = s.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    })
}

/// The addresses in `Final-Recipient`, `Original-Recipient` and `X-Failed-Recipients` fields,
/// and the addresses an alias was "expanded from" (the address as it was sent to).
fn reported_recipients(raw: &str) -> Vec<String> {
    let expanded = raw.lines().filter(|l| l.contains("expanded from:")).flat_map(sales_agent::inbound::text::addresses_in);
    raw.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| {
            ["final-recipient", "original-recipient", "x-failed-recipients"].contains(&name.trim().to_ascii_lowercase().as_str())
        })
        .flat_map(|(_, value)| sales_agent::inbound::text::addresses_in(value))
        .chain(expanded)
        .collect()
}

/// Whether `class` is right for a message of `kind`; `raw` keeps a recipient honest (it must
/// appear in the message).
pub fn judge(kind: Kind, mail: &InboundMail, raw: &str) -> Result<(), String> {
    let class = &mail.class;
    let named = |recipient: &Option<String>| recipient.as_deref().is_some_and(|r| raw.to_ascii_lowercase().contains(r));
    match (kind, class) {
        (Kind::DeliveryStatus, MailClass::Bounce(BounceReport { recipient, status, .. }))
        | (Kind::DeliveryStatus, MailClass::DeliveryReport { recipient, status }) => {
            if !named(recipient) {
                return Err(format!("no recipient found ({recipient:?})"));
            }
            // Where the message carries a machine-readable recipient, it must be that one.
            let reported = reported_recipients(raw);
            if !reported.is_empty() && !recipient.as_ref().is_some_and(|r| reported.contains(r)) {
                return Err(format!("recipient {recipient:?} is not among the reported {reported:?}"));
            }
            if !plausible_status(status) {
                return Err(format!("no status code ({status:?})"));
            }
            Ok(())
        }
        // Amazon SES sends complaints in the same notification format as its bounces.
        (Kind::DeliveryStatus | Kind::Complaint, MailClass::Complaint { recipient, .. }) => {
            // Some feedback loops redact the recipient; the returned Message-ID still finds the lead.
            if named(recipient) || (recipient.is_none() && !mail.referenced_ids.is_empty()) {
                Ok(())
            } else {
                Err(format!("complaint without its recipient ({recipient:?})"))
            }
        }
        // Apple Mail's "unsubscribe" button sends a message rather than a report.
        (Kind::Complaint, MailClass::UnsubscribeRequest) => Ok(()),
        (Kind::AutoReply, MailClass::AutoReply { .. }) => Ok(()),
        (_, other) => Err(format!("classified as {}", other.name())),
    }
}

#[derive(Default, Debug)]
pub struct FamilyResult {
    pub kind: Option<Kind>,
    pub total: u32,
    pub correct: u32,
    /// How many of each class the family's messages were read as.
    pub classes: BTreeMap<&'static str, u32>,
    pub failures: Vec<(String, String)>,
}

/// Classifies every message of the corpus and judges each one.
pub fn evaluate() -> BTreeMap<String, FamilyResult> {
    let mut results: BTreeMap<String, FamilyResult> = BTreeMap::new();
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("the corpus directory")
        .map(|e| e.expect("a corpus entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let Some((family, kind)) = family_of(&name) else { continue };
        let raw = std::fs::read(corpus_dir().join(&name)).expect("a corpus file");
        let result = results.entry(family).or_default();
        result.kind = Some(kind);
        result.total += 1;
        let verdict = match inbound::read(&raw) {
            None => Err("not parseable".to_string()),
            Some(mail) => {
                *result.classes.entry(mail.class.name()).or_default() += 1;
                judge(kind, &mail, &String::from_utf8_lossy(&raw))
            }
        };
        match verdict {
            Ok(()) => result.correct += 1,
            Err(why) => result.failures.push((name, why)),
        }
    }
    results
}

/// The per-family table the benchmark prints and the note quotes.
pub fn table(results: &BTreeMap<String, FamilyResult>) -> String {
    let mut out = format!("{:<22} {:>5} {:>7} {:>8}  classes\n", "family", "files", "correct", "accuracy");
    for (family, r) in results {
        let classes: Vec<String> = r.classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        out.push_str(&format!(
            "{family:<22} {:>5} {:>7} {:>7.1}%  {}\n",
            r.total,
            r.correct,
            100.0 * r.correct as f64 / r.total as f64,
            classes.join(", ")
        ));
    }
    out
}
