//! What every handler can reach: the store, the runtime, the token settings.
//!
//! Routes depend on this, not on the wiring in [`crate::startup`].

use std::sync::Arc;

use tokio::sync::Mutex;

use crate::routes::ApiError;
use crate::runtime::{KeyedSettings, Runtime};
use crate::store::UserStore;
use crate::throttle::ThrottlePolicy;
use crate::tokens::TokenConfig;

/// What every handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: UserStore,
    pub runtime: Arc<Runtime>,
    pub tokens: Arc<TokenConfig>,
    pub throttle: ThrottlePolicy,
    /// The URL clients reach this service at, for discovery documents (`--public-url`);
    /// `None`: taken from each request's `Host`.
    pub public_url: Option<String>,
    /// A hash of a random password, verified against when a login names no
    /// account, so unknown users cost the same time as wrong passwords; made by
    /// the serving component (keyed by its digest), so it costs what its hashes cost.
    dummy_hash: Mutex<Option<(String, String)>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: UserStore,
        runtime: Arc<Runtime>,
        tokens: Arc<TokenConfig>,
        throttle: ThrottlePolicy,
        public_url: Option<String>,
    ) -> Self {
        Self(Arc::new(Inner { store, runtime, tokens, throttle, public_url, dummy_hash: Mutex::new(None) }))
    }

    /// The settings the component needs for a token operation, at the current time.
    pub fn token_settings(&self) -> KeyedSettings {
        self.tokens.settings()
    }

    pub async fn dummy_hash(&self) -> Result<String, ApiError> {
        let serving = self.runtime.info().sha256;
        let mut dummy = self.dummy_hash.lock().await;
        if let Some((made_by, hash)) = dummy.as_ref()
            && *made_by == serving
        {
            return Ok(hash.clone());
        }
        let mut password = [0u8; 16];
        getrandom::fill(&mut password).map_err(|e| ApiError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
        let password: String = password.iter().map(|b| format!("{b:02x}")).collect();
        let hash = self.runtime.hash_password(password.into()).await?;
        *dummy = Some((serving, hash.clone()));
        Ok(hash)
    }
}
