//! The intent of a person's reply, as a sales rep files it (see `inbound::intent` for how it is
//! read).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyIntent {
    Interested,
    NotInterested,
    MeetingRequest,
    Referral,
    WrongPerson,
    Question,
    Other,
}

impl ReplyIntent {
    pub const ALL: [ReplyIntent; 7] =
        [Self::Interested, Self::NotInterested, Self::MeetingRequest, Self::Referral, Self::WrongPerson, Self::Question, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interested => "interested",
            Self::NotInterested => "not_interested",
            Self::MeetingRequest => "meeting_request",
            Self::Referral => "referral",
            Self::WrongPerson => "wrong_person",
            Self::Question => "question",
            Self::Other => "other",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|intent| intent.as_str() == raw.trim())
    }
}

/// The colleague a referral points to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// An intent as read, with who decided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentReading {
    pub intent: ReplyIntent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<Referral>,
    /// `rules` or `model`.
    pub decided_by: String,
    /// What the model's reading cost, counted on the execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<super::TokenUsage>,
}
