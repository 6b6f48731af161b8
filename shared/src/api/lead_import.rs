//! Turning imported rows (a JSON list or a CSV file) into lead contacts. Every row is checked;
//! problems are reported with the row's line number (CSV) or index (JSON), and duplicates of an
//! address already seen in the same import are reported, not imported twice.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::domain::lead::{host_of, not_a_host_name};
use crate::domain::{EmailAddress, FieldIssue, LeadContact};

/// One lead as a client sends it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadInput {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub company: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub company_domain: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A row that was not imported because its address appeared earlier in the same import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DuplicateRow {
    /// `line 7` for CSV, `leads[6]` for JSON.
    pub row: String,
    pub email: String,
}

#[derive(Debug, Default)]
pub struct ImportedLeads {
    pub contacts: Vec<LeadContact>,
    pub rejected: Vec<FieldIssue>,
    pub duplicates: Vec<DuplicateRow>,
    pub ignored_columns: Vec<String>,
    /// For a lead-source search: what it found and cost.
    pub sourced: Option<crate::ports::SourcedLeads>,
}

/// Where a row came from, for error messages.
#[derive(Clone, Copy)]
enum RowRef {
    Line(u64),
    Index(usize),
}

impl RowRef {
    fn field(self, name: &str) -> String {
        match self {
            RowRef::Line(line) => format!("line {line}: {name}"),
            RowRef::Index(index) => format!("leads[{index}].{name}"),
        }
    }

    fn issue(self, name: &str, message: impl Into<String>) -> FieldIssue {
        match self {
            RowRef::Line(line) => FieldIssue::at_line(line, self.field(name), message),
            RowRef::Index(_) => FieldIssue::new(self.field(name), message),
        }
    }

    fn label(self) -> String {
        match self {
            RowRef::Line(line) => format!("line {line}"),
            RowRef::Index(index) => format!("leads[{index}]"),
        }
    }
}

fn optional(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn check_length(issues: &mut Vec<FieldIssue>, row: RowRef, name: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        issues.push(row.issue(name, format!("must be at most {max} characters")));
    }
}

impl ImportedLeads {
    fn add(&mut self, row: RowRef, input: LeadInput, seen: &mut HashSet<String>) {
        let mut issues = Vec::new();
        let email = match EmailAddress::parse(&input.email) {
            Ok(email) => Some(email),
            Err(e) => {
                issues.push(row.issue("email", e.0));
                None
            }
        };
        let first_name = input.first_name.trim().to_string();
        let company = input.company.trim().to_string();
        if first_name.is_empty() {
            issues.push(row.issue("first_name", "is required: drafts greet the lead by name"));
        }
        if company.is_empty() {
            issues.push(row.issue("company", "is required: research and drafts are about the company"));
        }
        check_length(&mut issues, row, "first_name", &first_name, 100);
        check_length(&mut issues, row, "company", &company, 200);
        let (last_name, title) = (optional(input.last_name), optional(input.title));
        check_length(&mut issues, row, "last_name", last_name.as_deref().unwrap_or_default(), 100);
        check_length(&mut issues, row, "title", title.as_deref().unwrap_or_default(), 200);
        let time_zone = optional(input.time_zone);
        let company_domain = optional(input.company_domain);
        if let Some(why) = company_domain.as_deref().and_then(|domain| not_a_host_name(&host_of(domain))) {
            issues.push(row.issue("company_domain", why));
        }
        let Some(email) = email.filter(|_| issues.is_empty()) else {
            self.rejected.extend(issues);
            return;
        };
        if !seen.insert(email.dedupe_key()) {
            self.duplicates.push(DuplicateRow { row: row.label(), email: email.to_string() });
            return;
        }
        self.contacts.push(LeadContact { email, first_name, last_name, company, title, company_domain, time_zone });
    }
}

/// Validates leads sent as a JSON list.
pub fn from_json(inputs: Vec<LeadInput>) -> ImportedLeads {
    let mut imported = ImportedLeads::default();
    let mut seen = HashSet::new();
    for (index, input) in inputs.into_iter().enumerate() {
        imported.add(RowRef::Index(index), input, &mut seen);
    }
    imported
}

/// Contacts from a lead source, already validated by the provider's schema; only duplicates
/// are dropped.
pub fn from_contacts(contacts: impl IntoIterator<Item = LeadContact>) -> ImportedLeads {
    let mut imported = ImportedLeads::default();
    let mut seen = HashSet::new();
    for (index, contact) in contacts.into_iter().enumerate() {
        if seen.insert(contact.email.dedupe_key()) {
            imported.contacts.push(contact);
        } else {
            imported.duplicates.push(DuplicateRow { row: RowRef::Index(index).label(), email: contact.email.to_string() });
        }
    }
    imported
}

/// The lead field a CSV header names, accepting the spellings CRMs and lead tools export.
fn column_for(header: &str) -> Option<&'static str> {
    let key: String = header.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    Some(match key.as_str() {
        "email" | "emailaddress" | "workemail" | "businessemail" | "mail" => "email",
        "firstname" | "first" | "givenname" | "forename" => "first_name",
        "lastname" | "last" | "surname" | "familyname" => "last_name",
        "company" | "companyname" | "organization" | "organisation" | "account" | "accountname" => "company",
        "title" | "jobtitle" | "position" | "role" => "title",
        "companydomain" | "domain" | "website" | "companywebsite" | "url" | "companyurl" => "company_domain",
        "timezone" | "tz" => "time_zone",
        _ => return None,
    })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsvError {
    #[error("the CSV is empty; the first line must name the columns")]
    Empty,
    #[error("the CSV has no '{0}' column (first line: {1})")]
    MissingColumn(&'static str, String),
    #[error("line {line}: {message}")]
    Unreadable { line: u64, message: String },
    #[error("the CSV has more than {0} rows")]
    TooManyRows(usize),
}

/// Validates leads sent as CSV. The first line names the columns (any order, common aliases);
/// a UTF-8 byte-order mark is ignored. Line numbers count the header as line 1.
pub fn from_csv(bytes: &[u8], max_rows: usize) -> Result<ImportedLeads, CsvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(bytes);
    let headers = reader.headers().map_err(|e| CsvError::Unreadable { line: 1, message: e.to_string() })?.clone();
    if headers.iter().all(str::is_empty) {
        return Err(CsvError::Empty);
    }
    let columns: Vec<Option<&'static str>> = headers.iter().map(column_for).collect();
    let mut imported = ImportedLeads {
        ignored_columns: headers.iter().zip(&columns).filter(|(_, c)| c.is_none()).map(|(h, _)| h.to_string()).collect(),
        ..Default::default()
    };
    for required in ["email", "first_name", "company"] {
        if !columns.contains(&Some(required)) {
            return Err(CsvError::MissingColumn(required, headers.iter().collect::<Vec<_>>().join(",")));
        }
    }
    let mut seen = HashSet::new();
    let mut rows = 0;
    // The reader's own line count does not count blank lines; counting newlines before each
    // record gives the line a person sees in an editor.
    let mut lines = LineCounter::new(bytes);
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
            CsvError::Unreadable { line, message: e.to_string() }
        })?;
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        if record.iter().all(str::is_empty) {
            continue;
        }
        rows += 1;
        if rows > max_rows {
            return Err(CsvError::TooManyRows(max_rows));
        }
        let mut input = LeadInput::default();
        for (value, column) in record.iter().zip(&columns) {
            let value = value.to_string();
            match column {
                Some("email") => input.email = value,
                Some("first_name") => input.first_name = value,
                Some("last_name") => input.last_name = Some(value),
                Some("company") => input.company = value,
                Some("title") => input.title = Some(value),
                Some("company_domain") => input.company_domain = Some(value),
                Some("time_zone") => input.time_zone = Some(value),
                _ => {}
            }
        }
        imported.add(RowRef::Line(line), input, &mut seen);
    }
    Ok(imported)
}

/// Maps byte offsets (asked for in increasing order) to 1-based line numbers.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0, line: 1 }
    }

    fn line_at(&mut self, byte: u64) -> u64 {
        let mut target = (byte as usize).min(self.bytes.len());
        // A record's position is where the reader started looking, before any blank lines.
        while target < self.bytes.len() && matches!(self.bytes[target], b'\n' | b'\r') {
            target += 1;
        }
        if target < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        self.line += self.bytes[self.offset..target].iter().filter(|&&b| b == b'\n').count() as u64;
        self.offset = target;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_aliased_headers_skips_the_bom_and_reports_bad_lines_by_number() {
        let csv = "\u{feff}Work Email,First Name,Company Name,Job Title,Notes\n\
                   ada@initech.example,Ada,Initech,CTO,met at a fair\n\
                   not-an-email,Bob,Globex,,\n\
                   ADA@initech.example,Ada,Initech,,\n\
                   \n\
                   cy@umbrella.example,,Umbrella,,\n";
        let imported = from_csv(csv.as_bytes(), 100).unwrap();
        assert_eq!(imported.contacts.len(), 1);
        assert_eq!(imported.contacts[0].title.as_deref(), Some("CTO"));
        assert_eq!(imported.ignored_columns, vec!["Notes".to_string()]);
        assert_eq!(imported.duplicates, vec![DuplicateRow { row: "line 4".into(), email: "ADA@initech.example".into() }]);
        let fields: Vec<&str> = imported.rejected.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["line 3: email", "line 6: first_name"]);
        assert_eq!(imported.rejected[0].line, Some(3));
    }

    #[test]
    fn a_missing_required_column_or_too_many_rows_is_refused_whole() {
        assert!(matches!(from_csv(b"email,company\na@b.example,B\n", 10), Err(CsvError::MissingColumn("first_name", _))));
        assert_eq!(from_csv(b"", 10).unwrap_err(), CsvError::Empty);
        let many = "email,first_name,company\n".to_string() + &"a@b.example,A,B\n".repeat(3);
        assert_eq!(from_csv(many.as_bytes(), 2).unwrap_err(), CsvError::TooManyRows(2));
    }

    #[test]
    fn a_line_that_is_not_utf8_is_named() {
        let mut csv = b"email,first_name,company\nada@initech.example,Ada,Initech\n".to_vec();
        csv.extend_from_slice(b"bob@globex.example,B\xf6b,Globex\n");
        match from_csv(&csv, 10) {
            Err(CsvError::Unreadable { line, message }) => {
                assert_eq!(line, 3);
                assert!(message.to_lowercase().contains("utf-8"), "{message}");
            }
            other => panic!("expected an unreadable line, got {other:?}"),
        }
    }

    #[test]
    fn json_rows_are_named_by_index() {
        let imported = from_json(vec![
            LeadInput { email: "ada@initech.example".into(), first_name: "Ada".into(), company: "Initech".into(), ..Default::default() },
            LeadInput { email: "bob@".into(), first_name: "Bob".into(), company: "Globex".into(), ..Default::default() },
        ]);
        assert_eq!(imported.contacts.len(), 1);
        assert_eq!(imported.rejected[0].field, "leads[1].email");
    }
}
