//! Email templates with `{{variable}}` placeholders and optional fallbacks
//! (`{{first_name | there}}`). Templates are parsed when an agent is saved, so a typo in a
//! variable name is a 4xx on the agent, never a broken email to a prospect.

use std::collections::BTreeMap;

/// Variables a template may use. Lead variables come from the lead record, sender and pitch
/// variables from the agent, research variables from what research found.
pub const KNOWN_VARIABLES: &[&str] = &[
    "first_name",
    "last_name",
    "full_name",
    "company",
    "title",
    "company_domain",
    "sender_name",
    "sender_company",
    "product",
    "value_proposition",
    "call_to_action",
    "research_fact",
    "research_summary",
];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Variable { name: String, fallback: Option<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageTemplate {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("'{{{{' at character {0} is never closed with '}}}}'")]
    Unclosed(usize),
    #[error("unknown variable '{name}'; known variables are: {known}")]
    UnknownVariable { name: String, known: String },
}

impl MessageTemplate {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after_open = &rest[start + 2..];
            let end = after_open.find("}}").ok_or(TemplateError::Unclosed(offset + start))?;
            let inner = &after_open[..end];
            let (name, fallback) = match inner.split_once('|') {
                Some((name, fallback)) => (name.trim(), Some(fallback.trim().to_string())),
                None => (inner.trim(), None),
            };
            if !KNOWN_VARIABLES.contains(&name) {
                return Err(TemplateError::UnknownVariable { name: name.to_string(), known: KNOWN_VARIABLES.join(", ") });
            }
            parts.push(Part::Variable { name: name.to_string(), fallback });
            let consumed = start + 2 + end + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// Fills the placeholders. A variable with no value and no fallback renders as empty text,
    /// and its name is reported so the caller can decide whether the draft is still acceptable.
    pub fn render(&self, values: &BTreeMap<&'static str, String>) -> RenderedText {
        let mut text = String::new();
        let mut missing = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => text.push_str(t),
                Part::Variable { name, fallback } => match values.get(name.as_str()).filter(|v| !v.trim().is_empty()) {
                    Some(value) => text.push_str(value),
                    None => match fallback {
                        Some(fallback) => text.push_str(fallback),
                        None => missing.push(name.clone()),
                    },
                },
            }
        }
        RenderedText { text, missing }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedText {
    pub text: String,
    pub missing: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<&'static str, String> {
        BTreeMap::from([("first_name", "Ada".to_string()), ("company", "Initech".to_string()), ("title", String::new())])
    }

    #[test]
    fn fills_variables_and_falls_back_when_a_value_is_empty() {
        let template = MessageTemplate::parse("Hi {{ first_name }}, {{title|a leader}} at {{company}}!").unwrap();
        let rendered = template.render(&values());
        assert_eq!(rendered.text, "Hi Ada, a leader at Initech!");
        assert!(rendered.missing.is_empty());
    }

    #[test]
    fn reports_variables_that_had_no_value_and_no_fallback() {
        let rendered = MessageTemplate::parse("{{research_fact}}").unwrap().render(&values());
        assert_eq!(rendered.missing, vec!["research_fact".to_string()]);
    }

    #[test]
    fn rejects_unknown_variables_and_unclosed_braces() {
        assert!(matches!(MessageTemplate::parse("Hi {{frist_name}}"), Err(TemplateError::UnknownVariable { .. })));
        assert_eq!(MessageTemplate::parse("Hi {{first_name"), Err(TemplateError::Unclosed(3)));
    }
}
