//! An agent: who the team is, what it sells, whom it targets, the tone, and the sequence of
//! emails each lead receives.

use serde::{Deserialize, Serialize};

use super::pacing::SendingPolicy;
use super::sending_health::AutoPause;
use super::template::MessageTemplate;
use super::validation::{FieldIssue, ValidationErrors};
use super::{AgentId, EmailAddress, Timestamp};

/// The longest sequence we accept; more than a handful of follow-ups reads as spam.
pub const MAX_SEQUENCE_STEPS: usize = 10;
/// Follow-ups further out than this are almost certainly a unit mistake (hours vs days).
pub const MAX_WAIT_DAYS: u32 = 90;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sender {
    pub name: String,
    pub email: EmailAddress,
    pub company: String,
    /// Required by CAN-SPAM in every commercial email's footer.
    pub postal_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<EmailAddress>,
    /// The team's web site: a draft may link to it, and to no other site but the booking link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Where a prospect books a meeting, for example a calendar page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_link: Option<String>,
    /// The only phone number a draft may give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pitch {
    /// What the team sells, in a sentence.
    pub product: String,
    /// Why a prospect should care.
    pub value_proposition: String,
    /// Whom the agent targets: roles, industries, company sizes.
    pub target_audience: String,
    /// The tone of voice, for example "warm and concise".
    pub tone: String,
    /// What the email asks for, for example "a 15-minute call next week".
    pub call_to_action: String,
}

/// One email of the sequence. The first step's `wait_days` is ignored (it goes out as soon as it
/// is drafted); every later step waits that many days after the previous email.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequenceStep {
    #[serde(default)]
    pub wait_days: u32,
    /// Subject template; follow-ups are sent as replies in the first email's thread, so their
    /// subject is "Re:" plus the first subject and this field may be empty.
    #[serde(default)]
    pub subject: String,
    /// Body template, used by the template drafter and given to an LLM as the step's outline.
    pub body: String,
    /// Extra instructions for an LLM drafter for this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// What a client sends to create or replace an agent.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub name: String,
    pub sender: Sender,
    pub pitch: Pitch,
    pub sequence: Vec<SequenceStep>,
    /// Drafts wait for a person's approval before they are sent.
    #[serde(default)]
    pub require_approval: bool,
    /// When an execution pauses by itself on bounces or complaints.
    #[serde(default)]
    pub auto_pause: AutoPause,
    /// Which mailboxes send, when, and how many a day.
    #[serde(default)]
    pub sending: SendingPolicy,
    /// What a reply does beyond its own lead.
    #[serde(default)]
    pub replies: ReplyPolicy,
}

/// What a reply does beyond its own lead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyPolicy {
    /// A person's reply ends the sequences of the other leads at the same company (by mail
    /// domain, never a free-mail one) in the agent's running and paused executions.
    #[serde(default = "ReplyPolicy::stop_company_by_default")]
    pub stop_company: bool,
}

impl ReplyPolicy {
    fn stop_company_by_default() -> bool {
        true
    }
}

impl Default for ReplyPolicy {
    fn default() -> Self {
        Self { stop_company: Self::stop_company_by_default() }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    pub sender: Sender,
    pub pitch: Pitch,
    pub sequence: Vec<SequenceStep>,
    pub require_approval: bool,
    #[serde(default)]
    pub auto_pause: AutoPause,
    #[serde(default)]
    pub sending: SendingPolicy,
    #[serde(default)]
    pub replies: ReplyPolicy,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version; every write is conditional on it.
    pub version: u64,
}

/// An absolute http(s) link with a host name, as a team declares its own site.
fn is_web_link(link: &str) -> bool {
    let Some(rest) = link.strip_prefix("https://").or_else(|| link.strip_prefix("http://")) else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    host.contains('.') && !host.contains(char::is_whitespace) && link.len() <= 500
}

impl AgentSpec {
    /// Checks every field and reports all problems at once.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        errors.require("name", &self.name, 200);
        errors.require("sender.name", &self.sender.name, 200);
        errors.require("sender.company", &self.sender.company, 200);
        errors.require("sender.postal_address", &self.sender.postal_address, 500);
        for (field, link) in [("sender.website", &self.sender.website), ("sender.booking_link", &self.sender.booking_link)] {
            if let Some(link) = link.as_deref().filter(|l| !is_web_link(l)) {
                errors.push(FieldIssue::new(field, format!("'{link}' is not an http(s) link to a web site")));
            }
        }
        if let Some(phone) = self.sender.phone.as_deref() {
            let digits = phone.chars().filter(char::is_ascii_digit).count();
            if !(7..=15).contains(&digits) || phone.chars().any(|c| !(c.is_ascii_digit() || " +-().".contains(c))) {
                errors.push(FieldIssue::new("sender.phone", "must be 7 to 15 digits, optionally with +, spaces, dashes, dots or brackets"));
            }
        }
        errors.require("pitch.product", &self.pitch.product, 2_000);
        errors.require("pitch.value_proposition", &self.pitch.value_proposition, 2_000);
        errors.require("pitch.target_audience", &self.pitch.target_audience, 2_000);
        errors.require("pitch.tone", &self.pitch.tone, 200);
        errors.require("pitch.call_to_action", &self.pitch.call_to_action, 500);
        if self.sequence.is_empty() {
            errors.push(FieldIssue::new("sequence", "needs at least one step"));
        }
        if self.sequence.len() > MAX_SEQUENCE_STEPS {
            errors.push(FieldIssue::new("sequence", format!("has more than {MAX_SEQUENCE_STEPS} steps")));
        }
        for (index, step) in self.sequence.iter().enumerate() {
            let field = |name: &str| format!("sequence[{index}].{name}");
            if index == 0 && step.subject.trim().is_empty() {
                errors.push(FieldIssue::new(field("subject"), "the first step needs a subject"));
            }
            if index > 0 && step.wait_days == 0 {
                errors.push(FieldIssue::new(field("wait_days"), "a follow-up must wait at least 1 day"));
            }
            if step.wait_days > MAX_WAIT_DAYS {
                errors.push(FieldIssue::new(field("wait_days"), format!("must be at most {MAX_WAIT_DAYS}")));
            }
            errors.require(&field("body"), &step.body, 10_000);
            for (name, text) in [("subject", &step.subject), ("body", &step.body)] {
                if let Err(error) = MessageTemplate::parse(text) {
                    errors.push(FieldIssue::new(field(name), error.to_string()));
                }
            }
        }
        self.auto_pause.validate(&mut errors);
        self.sending.validate(&mut errors);
        errors.into_result(())
    }

    pub fn into_agent(self, id: AgentId, now: Timestamp) -> Agent {
        Agent {
            id,
            name: self.name.trim().to_string(),
            sender: self.sender,
            pitch: self.pitch,
            sequence: self.sequence,
            require_approval: self.require_approval,
            auto_pause: self.auto_pause,
            sending: self.sending,
            replies: self.replies,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }
}

impl Agent {
    /// The agent as replaced by `spec`, keeping identity and history.
    pub fn replaced_by(&self, spec: AgentSpec, now: Timestamp) -> Agent {
        Agent { created_at: self.created_at, version: self.version, ..spec.into_agent(self.id, now) }
    }

    pub fn step(&self, index: u32) -> Option<&SequenceStep> {
        self.sequence.get(index as usize)
    }

    pub fn has_step_after(&self, index: u32) -> bool {
        (index as usize + 1) < self.sequence.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample_spec() -> AgentSpec {
        serde_json::from_value(serde_json::json!({
            "name": "Q4 analytics outreach",
            "sender": {"name": "Dana Reyes", "email": "dana@northwind.example", "company": "Northwind Analytics",
                       "postal_address": "1 Harbour Street, Springfield"},
            "pitch": {"product": "a revenue analytics platform", "value_proposition": "forecasts you can trust",
                      "target_audience": "VPs of Sales at B2B SaaS companies", "tone": "warm and concise",
                      "call_to_action": "a 15-minute call next week"},
            "sequence": [
                {"subject": "{{company}} and forecasting", "body": "Hi {{first_name|there}}, ..."},
                {"wait_days": 3, "body": "Following up, {{first_name|there}}."}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn a_complete_spec_is_valid() {
        assert_eq!(sample_spec().validate(), Ok(()));
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut spec = sample_spec();
        spec.name = " ".into();
        spec.sequence[1].wait_days = 0;
        spec.sequence[1].body = "Hi {{frist_name}}".into();
        let fields: Vec<String> = spec.validate().unwrap_err().0.into_iter().map(|i| i.field).collect();
        assert_eq!(fields, vec!["name", "sequence[1].wait_days", "sequence[1].body"]);
    }
}
