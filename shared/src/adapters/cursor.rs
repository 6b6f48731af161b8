//! Opaque paging cursors. Clients get a base64url token; only the adapter that issued it knows
//! it holds the key of the last item returned.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ports::StoreError;

const PREFIX: &str = "c1:";

pub fn encode(last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}{last_key}"))
}

pub fn decode(cursor: Option<&str>) -> Result<Option<String>, StoreError> {
    let Some(cursor) = cursor else { return Ok(None) };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    text.strip_prefix(PREFIX).map(|key| Some(key.to_string())).ok_or(StoreError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        assert_eq!(super::decode(Some(&super::encode("0192-abc"))).unwrap().as_deref(), Some("0192-abc"));
        assert_eq!(super::decode(None).unwrap(), None);
        assert!(super::decode(Some("not a cursor")).is_err());
        assert!(super::decode(Some("eHl6")).is_err());
    }
}
