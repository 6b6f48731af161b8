//! Validation problems that name the field (or input line) at fault, so an API client can fix
//! exactly what is wrong.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldIssue {
    /// A dotted path such as `sequence[1].subject`, or `line 7: email` for an imported row.
    pub field: String,
    pub message: String,
    /// The 1-based input line, for CSV imports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl FieldIssue {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into(), line: None }
    }

    pub fn at_line(line: u64, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into(), line: Some(line) }
    }
}

/// Collects every problem in an input instead of stopping at the first one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldIssue>);

impl ValidationErrors {
    pub fn push(&mut self, issue: FieldIssue) {
        self.0.push(issue);
    }

    pub fn require(&mut self, field: &str, value: &str, max_len: usize) {
        if value.trim().is_empty() {
            self.push(FieldIssue::new(field, "is required"));
        } else if value.chars().count() > max_len {
            self.push(FieldIssue::new(field, format!("must be at most {max_len} characters")));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.0.is_empty() { Ok(value) } else { Err(self) }
    }
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|i| format!("{}: {}", i.field, i.message)).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}
