//! Where the key that signs unsubscribe links comes from. Deployed, it is read from the secret
//! and read again while it is missing, so a fixed secret takes effect without a cold start.

use async_trait::async_trait;

use crate::domain::unsubscribe::UnsubscribeSigner;

#[async_trait]
pub trait UnsubscribeKeys: Send + Sync {
    /// The signer, or `None` when the key cannot be loaded right now.
    async fn signer(&self) -> Option<UnsubscribeSigner>;
}

/// A key known at start-up (the embedded default keeps one in its data folder), or none.
pub struct FixedUnsubscribeKey(pub Option<UnsubscribeSigner>);

#[async_trait]
impl UnsubscribeKeys for FixedUnsubscribeKey {
    async fn signer(&self) -> Option<UnsubscribeSigner> {
        self.0.clone()
    }
}
