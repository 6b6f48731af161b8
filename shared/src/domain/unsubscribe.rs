//! Signed unsubscribe tokens for RFC 8058 one-click unsubscribe links. A token names the lead
//! and carries an HMAC, so nobody can unsubscribe a lead by guessing its id.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::LeadId;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of HMAC-SHA-256 a token carries: 128 bits, beyond guessing.
const TAG_BYTES: usize = 16;

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

    /// The tag a lead's token carries: the HMAC truncated to `TAG_BYTES`.
    fn tag_for(&self, id_bytes: &[u8; 16]) -> [u8; TAG_BYTES] {
        let mut mac = self.mac();
        mac.update(id_bytes);
        let full = mac.finalize().into_bytes();
        let mut tag = [0; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        tag
    }

    pub fn token_for(&self, lead_id: LeadId) -> String {
        let id_bytes = lead_id.as_uuid().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(id_bytes), URL_SAFE_NO_PAD.encode(self.tag_for(&id_bytes)))
    }

    /// The lead a token names, when its tag is exactly the one issued (full length, compared in
    /// constant time): a shorter tag would be guessable in a few hundred tries.
    pub fn verify(&self, token: &str) -> Option<LeadId> {
        let (id_part, tag_part) = token.split_once('.')?;
        let id_bytes: [u8; 16] = URL_SAFE_NO_PAD.decode(id_part).ok()?.try_into().ok()?;
        let presented: [u8; TAG_BYTES] = URL_SAFE_NO_PAD.decode(tag_part).ok()?.try_into().ok()?;
        let matches: bool = self.tag_for(&id_bytes).ct_eq(&presented).into();
        matches.then(|| LeadId::from(uuid::Uuid::from_bytes(id_bytes)))
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

    #[test]
    fn a_tag_shorter_or_longer_than_issued_never_verifies() {
        let signer = UnsubscribeSigner::new(SecretString::from("test-signing-key"));
        let lead = LeadId::generate();
        let token = signer.token_for(lead);
        let (id_part, tag_part) = token.split_once('.').unwrap();
        let tag = URL_SAFE_NO_PAD.decode(tag_part).unwrap();
        for length in 0..tag.len() {
            let short = format!("{id_part}.{}", URL_SAFE_NO_PAD.encode(&tag[..length]));
            assert_eq!(signer.verify(&short), None, "a {length}-byte prefix of the real tag");
        }
        let mut long = tag.clone();
        long.push(0);
        assert_eq!(signer.verify(&format!("{id_part}.{}", URL_SAFE_NO_PAD.encode(&long))), None);
        let every_one_byte_tag =
            (0..=255u8).filter(|b| signer.verify(&format!("{id_part}.{}", URL_SAFE_NO_PAD.encode([*b]))).is_some()).count();
        assert_eq!(every_one_byte_tag, 0, "no one-byte guess verifies");
    }
}
