//! The suppression list: addresses and whole domains that must never be emailed again.

use serde::{Deserialize, Serialize};

use super::{EmailAddress, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// A lower-case address (`jane@acme.com`) or a whole domain (`acme.com`).
    pub entry: String,
    /// `unsubscribed`, `hard_bounce`, `complaint`, `manual`.
    pub reason: String,
    pub created_at: Timestamp,
}

impl Suppression {
    /// The entries that would suppress `address`: the address itself and its domain.
    pub fn keys_for(address: &EmailAddress) -> [String; 2] {
        [address.dedupe_key(), address.domain().to_string()]
    }
}
