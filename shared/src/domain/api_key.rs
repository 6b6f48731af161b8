//! API keys. A key is shown once, as `sa_<id>.<secret>`; only the SHA-256 of the secret is
//! stored, looked up by the id and compared in constant time.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The public part of the key, safe to log and to name the key by.
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the secret part.
    pub secret_hash: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// A newly issued key: the record to store and the token to show once.
pub struct IssuedKey {
    pub key: ApiKey,
    pub token: String,
}

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The id and secret of a presented token, if it has the shape of one.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.strip_prefix("sa_")?.split_once('.')?;
    (!id.is_empty() && secret.len() >= 32).then_some((id, secret))
}

impl ApiKey {
    pub fn issue(name: &str, now: Timestamp) -> IssuedKey {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        // 256 bits from the OS's generator, through two v4 UUIDs.
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let key = ApiKey { id: id.clone(), name: name.trim().to_string(), secret_hash: hash(&secret), created_at: now, revoked_at: None };
        IssuedKey { key, token: format!("sa_{id}.{secret}") }
    }

    /// Whether `secret` is this key's secret, compared in constant time; revoked keys match nothing.
    pub fn accepts(&self, secret: &str) -> bool {
        self.revoked_at.is_none() && bool::from(hash(secret).as_bytes().ct_eq(self.secret_hash.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_is_accepted_until_revoked_and_nothing_else_is() {
        let issued = ApiKey::issue(" ops ", chrono::Utc::now());
        assert_eq!(issued.key.name, "ops");
        let (id, secret) = parse_token(&issued.token).unwrap();
        assert_eq!(id, issued.key.id);
        assert!(issued.key.accepts(secret));
        assert!(!issued.key.accepts(&secret.replace(&secret[..1], if secret.starts_with('0') { "1" } else { "0" })));
        assert!(!issued.token.contains(&issued.key.secret_hash), "the stored hash is not the secret");
        let revoked = ApiKey { revoked_at: Some(chrono::Utc::now()), ..issued.key };
        assert!(!revoked.accepts(secret));
        for bad in ["", "sa_", "sa_abc", "sa_abc.short", "Bearer x", "xx_abc.0123456789abcdef0123456789abcdef"] {
            assert!(parse_token(bad).is_none(), "{bad}");
        }
    }
}
