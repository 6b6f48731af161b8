//! Signed unsubscribe tokens for RFC 8058 one-click unsubscribe links. A token names the lead
//! and carries an HMAC, so nobody can unsubscribe a lead by guessing its id.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::LeadId;

type HmacSha256 = Hmac<Sha256>;

/// Signs and verifies unsubscribe tokens with one secret key.
#[derive(Clone)]
pub struct UnsubscribeSigner {
    key: SecretString,
}

impl std::fmt::Debug for UnsubscribeSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsubscribeSigner([redacted])")
    }
}

impl UnsubscribeSigner {
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.key.expose_secret().as_bytes()).expect("HMAC takes keys of any length")
    }

    pub fn token_for(&self, lead_id: LeadId) -> String {
        let mut mac = self.mac();
        mac.update(lead_id.as_uuid().as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(lead_id.as_uuid().as_bytes()), URL_SAFE_NO_PAD.encode(&tag[..16]))
    }

    /// The lead a token names, when its signature holds (compared in constant time).
    pub fn verify(&self, token: &str) -> Option<LeadId> {
        let (id_part, tag_part) = token.split_once('.')?;
        let id_bytes: [u8; 16] = URL_SAFE_NO_PAD.decode(id_part).ok()?.try_into().ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag_part).ok()?;
        let mut mac = self.mac();
        mac.update(&id_bytes);
        mac.verify_truncated_left(&tag).ok()?;
        Some(LeadId::from(uuid::Uuid::from_bytes(id_bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_with_its_key_and_not_with_another_or_when_altered() {
        let signer = UnsubscribeSigner::new(SecretString::from("test-signing-key"));
        let lead = LeadId::generate();
        let token = signer.token_for(lead);
        assert_eq!(signer.verify(&token), Some(lead));
        assert_eq!(UnsubscribeSigner::new(SecretString::from("other")).verify(&token), None);
        let mut altered = token.clone();
        altered.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
        assert_eq!(signer.verify(&altered), None);
        assert_eq!(signer.verify("nonsense"), None);
    }
}
