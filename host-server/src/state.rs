//! What every handler can reach: the store, the runtime, the token settings.
//!
//! Routes depend on this, not on the wiring in [`crate::startup`].

use std::sync::Arc;

use crate::accounts::credentials::PasswordChecks;
use crate::accounts::pats::PatPolicy;
use crate::accounts::sessions::SessionPolicy;
use crate::accounts::throttle::ThrottlePolicy;
use crate::runtime::policy::Policy;
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
    /// The operator's policy component (`--policy`), if any.
    pub policy: Option<Arc<Policy>>,
}

/// The rules a host enforces besides its defaults: from its settings, and the operator's policy.
pub struct Rules {
    pub throttle: ThrottlePolicy,
    pub sessions: SessionPolicy,
    pub pats: PatPolicy,
    pub policy: Option<Arc<Policy>>,
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
        rules: Rules,
        public_url: Option<String>,
    ) -> Self {
        let credentials = PasswordChecks::default();
        let Rules { throttle, sessions, pats, policy } = rules;
        Self(Arc::new(Inner { store, runtime, tokens, throttle, sessions, public_url, credentials, pats, policy }))
    }

    /// The policy component, if the host has one.
    pub fn policy(&self) -> Option<&crate::runtime::policy::Policy> {
        self.policy.as_deref()
    }

    /// The settings the component needs for a token operation, at the current time.
    pub fn token_settings(&self) -> KeyedSettings {
        self.tokens.settings()
    }
}
