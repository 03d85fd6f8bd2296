//! What every handler can reach: the store, the runtime, the token settings.
//!
//! Routes depend on this, not on the wiring in [`crate::startup`].

use std::sync::Arc;

use crate::accounts::credentials::PasswordChecks;
use crate::accounts::pats::PatPolicy;
use crate::accounts::sessions::SessionPolicy;
use crate::accounts::throttle::ThrottlePolicy;
use crate::runtime::{KeyedSettings, Runtime};
use crate::store::UserStore;
use crate::tokens::TokenConfig;

/// What every handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: UserStore,
    pub runtime: Arc<Runtime>,
    pub tokens: Arc<TokenConfig>,
    pub throttle: ThrottlePolicy,
    /// How long sessions last, and the refresh-token grace.
    pub sessions: SessionPolicy,
    /// The URL clients reach this service at, for discovery documents (`--public-url`);
    /// `None`: taken from each request's `Host`.
    pub public_url: Option<String>,
    /// Password checks that take the same time whether or not the account exists.
    pub credentials: PasswordChecks,
    /// What personal access tokens may be.
    pub pats: PatPolicy,
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
        sessions: SessionPolicy,
        pats: PatPolicy,
        public_url: Option<String>,
    ) -> Self {
        let credentials = PasswordChecks::default();
        Self(Arc::new(Inner { store, runtime, tokens, throttle, sessions, public_url, credentials, pats }))
    }

    /// The settings the component needs for a token operation, at the current time.
    pub fn token_settings(&self) -> KeyedSettings {
        self.tokens.settings()
    }
}
