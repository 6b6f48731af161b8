//! Small text scanners shared by the classifiers: addresses, status codes, report fields, and
//! where a returned copy of our own message begins.

/// Lines that start the copy of the original message in a bounce. Everything after them is our
/// own email and must not be mistaken for the server's explanation.
const ORIGINAL_MESSAGE_MARKERS: &[&str] = &[
    "copy of the message",
    "copy of your message",
    "copy of the original message",
    "below this line is a copy",
    "original message follows",
    "original message -----",
    "original message ------",
    "returned message follows",
    "unsent message below",
    "message headers follow",
    "headers of the original message",
    "header of the original message",
    "your message reads",
    "content-type: message/rfc822",
    "content-type: text/rfc822-headers",
];

/// The server's explanation: the text before the returned copy of the original message.
pub fn before_original_message(text: &str) -> &str {
    let lower = text.to_ascii_lowercase();
    let mut offset = 0;
    for line in lower.split_inclusive('\n') {
        if ORIGINAL_MESSAGE_MARKERS.iter().any(|marker| line.contains(marker)) {
            return &text[..offset];
        }
        offset += line.len();
    }
    text
}

/// The returned copy of the original message, when the text has one.
pub fn after_original_message(text: &str) -> Option<&str> {
    let head = before_original_message(text);
    (head.len() < text.len()).then(|| &text[head.len()..])
}

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
}

fn is_domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// Every email address in `text`, in order, lowercased, without duplicates.
pub fn addresses_in(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        if c != '@' {
            continue;
        }
        let mut start = at;
        // A quoted local part (RFC 5321), such as "jane..doe"@acme.example, is kept whole.
        let quoted = i > 0 && chars[i - 1].1 == '"';
        if quoted {
            match chars[..i - 1].iter().rev().find(|(_, ch)| *ch == '"' || *ch == '\n') {
                Some(&(offset, '"')) => start = offset,
                _ => continue,
            }
        } else {
            for &(offset, ch) in chars[..i].iter().rev() {
                if !is_local_char(ch) {
                    break;
                }
                start = offset;
            }
        }
        let mut end = at + 1;
        for &(offset, ch) in &chars[i + 1..] {
            if !is_domain_char(ch) {
                break;
            }
            end = offset + ch.len_utf8();
        }
        let local = text[start..at].trim_start_matches(['.', '\'', '=']);
        let domain = text[at + 1..end].trim_end_matches(['.', '-']);
        if local.is_empty() || !domain.contains('.') {
            continue;
        }
        let address = format!("{local}@{domain}").to_ascii_lowercase();
        let valid = if quoted {
            local.len() > 2 && crate::domain::EmailAddress::parse(&format!("x@{domain}")).is_ok()
        } else {
            crate::domain::EmailAddress::parse(&address).is_ok()
        };
        if valid && !found.contains(&address) {
            found.push(address);
        }
    }
    found
}

/// The first enhanced status code (RFC 3463: `class.subject.detail`, class 4 or 5, or 2 when
/// `allow_success`) in `text`. IP addresses and version numbers are not mistaken for one.
pub fn enhanced_status_in(text: &str, allow_success: bool) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.')).find_map(|token| {
        let token = token.trim_matches('.');
        let parts: Vec<&str> = token.split('.').collect();
        let fits = parts.len() == 3
            && matches!(parts[0], "4" | "5") | (allow_success && parts[0] == "2")
            && (1..=3).contains(&parts[1].len())
            && (1..=3).contains(&parts[2].len());
        fits.then(|| token.to_string())
    })
}

/// The first SMTP reply code (`550`, `452`, ...) that a server sent back, as the generic
/// enhanced status of its class (`5.0.0`, `4.0.0`).
pub fn smtp_reply_class_in(text: &str) -> Option<String> {
    for line in text.lines() {
        let bytes = line.as_bytes();
        for start in 0..bytes.len().saturating_sub(2) {
            let code = &bytes[start..start + 3];
            let before_ok = start == 0 || matches!(bytes[start - 1], b' ' | b':' | b'\t' | b'(' | b'<' | b'[' | b'"');
            let after_ok = bytes.get(start + 3).is_none_or(|b| matches!(b, b' ' | b'-' | b')' | b'\t' | b','));
            if before_ok && after_ok && matches!(code[0], b'4' | b'5') && code[1].is_ascii_digit() && code[2].is_ascii_digit() {
                // "said: 550" or "error: 554"; a bare number elsewhere (a size, a port) is not one.
                let context = line[..start].to_ascii_lowercase();
                if [
                    "said",
                    "error",
                    "smtp",
                    "reply",
                    "response",
                    "rejected",
                    "refused",
                    "failed",
                    "returned",
                    "diagnostic",
                    "reason",
                    "remote",
                ]
                .iter()
                .any(|w| context.contains(w))
                    || start == 0
                {
                    return Some(format!("{}.0.0", code[0] as char));
                }
            }
        }
    }
    None
}

/// Report blocks (RFC 3464 §2.1): groups of `Name: value` fields separated by blank lines,
/// with folded lines joined.
pub fn report_blocks(report: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in report.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            current.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

pub fn field<'a>(block: &'a [(String, String)], name: &str) -> Option<&'a str> {
    block.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).filter(|v| !v.is_empty())
}

/// "rfc822; jane@acme.example" → "jane@acme.example".
pub fn address_field(value: &str) -> Option<String> {
    let value = value.rsplit(';').next().unwrap_or(value);
    addresses_in(value).into_iter().next()
}

pub fn strip_angle_brackets(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_found_in_brackets_prose_and_smtp_transcripts() {
        let text = "<kijitora@example.ne.jp>:\nremote host said: 550 Unknown user RCPT TO:<Neko@Example.jp>. Try jane.doe+x@a-b.example.";
        assert_eq!(addresses_in(text), vec!["kijitora@example.ne.jp", "neko@example.jp", "jane.doe+x@a-b.example"]);
        assert_eq!(addresses_in("rfc822; \"neko..nyaan\"@libsisimai.org"), vec!["\"neko..nyaan\"@libsisimai.org"]);
        assert!(addresses_in("no local part \"@libsisimai.org").is_empty());
    }

    #[test]
    fn enhanced_status_codes_are_told_apart_from_ip_addresses() {
        assert_eq!(enhanced_status_in("host 192.0.2.20 said: 550 5.1.1 unknown", false).as_deref(), Some("5.1.1"));
        assert_eq!(enhanced_status_in("(#5.5.0)", false).as_deref(), Some("5.5.0"));
        assert_eq!(enhanced_status_in("version 1.2.3 and 192.0.2.4", false), None);
        assert_eq!(enhanced_status_in("2.0.0 ok", false), None);
        assert_eq!(enhanced_status_in("2.0.0 ok", true).as_deref(), Some("2.0.0"));
    }

    #[test]
    fn smtp_reply_codes_count_only_where_a_server_answered() {
        assert_eq!(smtp_reply_class_in("remote host said: 550 Unknown user").as_deref(), Some("5.0.0"));
        assert_eq!(smtp_reply_class_in("size 550 bytes").as_deref(), None);
        assert_eq!(smtp_reply_class_in("452 mailbox full").as_deref(), Some("4.0.0"));
    }

    #[test]
    fn the_explanation_ends_where_the_copy_of_the_message_starts() {
        let text = "Sorry.\n<a@b.example>: 550\n--- Below this line is a copy of the message.\nTo: c@d.example\n";
        assert_eq!(before_original_message(text), "Sorry.\n<a@b.example>: 550\n");
    }
}
