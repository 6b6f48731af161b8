//! Identifiers. UUID v7 keeps them sortable by creation time, so "newest first" and stable
//! paging need no extra sort key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! entity_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

entity_id!(
    /// An agent: the description of who sells what to whom, and the email sequence.
    AgentId
);
entity_id!(
    /// One run of an agent over a list of leads.
    ExecutionId
);
entity_id!(
    /// One prospect inside one execution.
    LeadId
);

impl LeadId {
    /// The id of lead number `row` of an execution: the execution's timestamp, the row in the
    /// bits that sort next (so leads list in import order), and a digest of the execution's id
    /// in the rest (so two executions started in the same millisecond never share a lead id).
    /// Deterministic, so that a retried start rewrites the same leads.
    pub fn for_row(execution_id: ExecutionId, row: usize) -> Self {
        use sha2::{Digest, Sha256};
        let execution = execution_id.as_uuid().as_u128();
        let timestamp = execution >> 80;
        let row = (row as u128) & 0xF_FFFF;
        let digest = Sha256::digest(execution.to_be_bytes());
        let salt = u128::from_be_bytes(digest[..16].try_into().expect("a SHA-256 digest has 32 bytes")) & ((1 << 54) - 1);
        let rand_a = row >> 8;
        let rand_b = ((row & 0xFF) << 54) | salt;
        let bits = (timestamp << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b;
        Self(Uuid::from_u128(bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_ids_of_an_execution_are_stable_ordered_by_row_and_distinct_across_executions() {
        let (one, other) = (ExecutionId::generate(), ExecutionId::generate());
        assert_eq!(LeadId::for_row(one, 7), LeadId::for_row(one, 7));
        let rows: Vec<LeadId> = (0..1_000).map(|row| LeadId::for_row(one, row)).collect();
        assert!(rows.windows(2).all(|w| w[0] < w[1]), "ids sort in row order");
        assert_ne!(LeadId::for_row(one, 0), LeadId::for_row(other, 0));
        let id = LeadId::for_row(one, 3).as_uuid();
        assert_eq!((id.get_version_num(), id.get_variant()), (7, uuid::Variant::RFC4122));
    }
}
