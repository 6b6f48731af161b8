//! Operator commands that talk to the configured store directly: issuing the first API key
//! (before any key exists to call the API with), listing and revoking keys.

use crate::api::api_keys;
use crate::runtime::Runtime;

/// Issues a key and returns the text to show: the token appears only here.
pub async fn create_api_key(runtime: &Runtime, name: &str) -> anyhow::Result<String> {
    let issued =
        api_keys::issue(runtime.store.as_ref(), name, runtime.clock.now()).await.map_err(|problem| anyhow::anyhow!(problem.detail))?;
    Ok(format!(
        "API key '{}' (id {}) created. Keep this token now, it is not shown again:\n\n{}\n\nUse it as: Authorization: Bearer <token>\n",
        issued.key.name, issued.key.id, issued.token
    ))
}

pub async fn list_api_keys(runtime: &Runtime) -> anyhow::Result<String> {
    let mut out = String::new();
    for key in runtime.store.list_api_keys().await? {
        let status = key.revoked_at.map_or("active".to_string(), |at| format!("revoked {}", at.to_rfc3339()));
        out.push_str(&format!("{}  {:<30} created {}  {status}\n", key.id, key.name, key.created_at.to_rfc3339()));
    }
    if out.is_empty() {
        out.push_str("no API keys yet\n");
    }
    Ok(out)
}

pub async fn revoke_api_key(runtime: &Runtime, id: &str) -> anyhow::Result<String> {
    match runtime.store.revoke_api_key(id, runtime.clock.now()).await {
        Ok(key) => Ok(format!("API key '{}' (id {}) is revoked; requests with it now get 401.\n", key.name, key.id)),
        Err(crate::ports::StoreError::NotFound) => anyhow::bail!("no API key with id '{id}'"),
        Err(e) => Err(e.into()),
    }
}
