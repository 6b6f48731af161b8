//! The words a person wrote: the reply without the quoted history below it, and whether those
//! words ask us to stop.

/// Lines that start the quoted history in the replies of common mail clients.
fn starts_history(line: &str) -> bool {
    let trimmed = line.trim_start();
    let lower = trimmed.to_ascii_lowercase();
    trimmed.starts_with('>')
        || (lower.starts_with("on ") && lower.trim_end().ends_with("wrote:"))
        || (lower.starts_with("am ") && lower.contains(" schrieb") && lower.trim_end().ends_with(':'))
        || (lower.starts_with("le ") && lower.contains(" a écrit") && lower.trim_end().ends_with(':'))
        || lower.starts_with("-----original message-----")
        || lower.starts_with("________________________________")
        || lower.starts_with("from: ")
        || lower.starts_with("sent from my ")
}

/// The reply's own words: everything above the first line that starts the quoted history.
pub fn new_text(text: &str) -> String {
    let kept: Vec<&str> = text.lines().take_while(|line| !starts_history(line)).collect();
    kept.join("\n").trim().to_string()
}

pub fn is_unsubscribe_request(subject: &str, new_text: &str) -> bool {
    let subject = subject.trim().to_ascii_lowercase();
    let first_lines: String = new_text.lines().take(3).collect::<Vec<_>>().join(" ").to_ascii_lowercase();
    subject == "unsubscribe"
        || subject == "remove"
        || [
            "unsubscribe",
            "remove me",
            "take me off",
            "stop emailing",
            "stop contacting",
            "do not contact",
            "don't contact",
            "opt out",
            "opt-out",
        ]
        .iter()
        .any(|p| first_lines.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_history_of_common_clients_is_cut() {
        assert_eq!(new_text("Yes please.\n\nOn Mon, 3 Nov 2026, Dana wrote:\n> Hi"), "Yes please.");
        assert_eq!(new_text("Gerne.\nAm 3. Nov. 2026 schrieb Dana:\n> Hallo"), "Gerne.");
        assert_eq!(new_text("Sure\n-----Original Message-----\nFrom: Dana"), "Sure");
    }
}
