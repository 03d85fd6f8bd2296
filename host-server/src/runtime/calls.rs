//! Compiling, checking and calling components: what the live runtime, the
//! self-test and a reload share.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use super::cache::{CodeCache, Origin};
use super::sandbox::{self, GuestState, Limits};
use super::{
    Authenticator, AuthenticatorPre, Claims, ComponentInfo, IssuedToken, Loaded, PasswordCheck, RuntimeError, Step,
    TokenSettings, WIT_PACKAGE, compatible, exported_version, host_wit_version, rejected,
};

/// What compiling and calling components needs: the engine, the linker, the
/// limits, the cache and where the component file is.
pub struct Core {
    pub(super) engine: Engine,
    pub(super) linker: Linker<GuestState>,
    pub(super) limits: Limits,
    pub(super) cache: Option<CodeCache>,
    pub(super) path: PathBuf,
}

impl Core {
    /// Whether the password self-test `check` passed before (a marker in the cache).
    pub(super) fn passed(&self, check: &str) -> bool {
        let passed = self.cache.as_ref().is_some_and(|cache| cache.passed(check));
        if passed {
            tracing::info!(check, "skipping password self-test checks these bytes passed before");
        }
        passed
    }

    pub(super) fn record_pass(&self, check: &str) {
        if let Some(cache) = &self.cache {
            cache.record_pass(check);
        }
    }

    /// Takes the component `bytes` (digest `sha256`) through every step of the gate:
    /// compile, version, link, self-test against `current`. Ready to publish.
    pub(super) fn admit(
        &self,
        bytes: &[u8],
        sha256: String,
        current: Option<&Loaded>,
        settings: &TokenSettings,
    ) -> Result<Loaded, RuntimeError> {
        let started = Instant::now();
        let mut candidate = self.prepare(bytes, sha256)?;
        super::selftest::run(self, &candidate, current, settings)
            .map_err(|reason| RuntimeError::Rejected { step: Step::SelfTest, reason })?;
        candidate.info.load_time = started.elapsed();
        Ok(candidate)
    }

    /// Compile (or take from the cache), check the version, link.
    pub(super) fn prepare(&self, bytes: &[u8], sha256: String) -> Result<Loaded, RuntimeError> {
        let (component, origin) = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, &sha256, bytes),
            None => Component::new(&self.engine, bytes).map(|c| (c, Origin::Compiled)),
        }
        .map_err(|e| rejected(Step::Compile, e))?;
        let wit_version = exported_version(&self.engine, &component).ok_or_else(|| RuntimeError::Rejected {
            step: Step::Version,
            reason: format!("it exports no {WIT_PACKAGE}/tokens interface"),
        })?;
        if !compatible(&wit_version, host_wit_version()) {
            return Err(RuntimeError::Rejected {
                step: Step::Version,
                reason: format!(
                    "it exports {WIT_PACKAGE}@{wit_version}; this host speaks {WIT_PACKAGE}@{}",
                    host_wit_version()
                ),
            });
        }
        let pre = self.linker.instantiate_pre(&component).map_err(|e| rejected(Step::Link, e))?;
        let pre = AuthenticatorPre::new(pre).map_err(|e| rejected(Step::Link, e))?;
        let info = ComponentInfo {
            path: self.path.clone(),
            sha256,
            wit_version,
            loaded_at: SystemTime::now(),
            origin,
            load_time: Duration::ZERO,
        };
        Ok(Loaded { pre, info })
    }

    pub fn hash_with(&self, loaded: &Loaded, password: &str) -> Result<String, RuntimeError> {
        self.call(loaded, self.limits.hash_deadline, |store, auth| {
            auth.loom_auth_passwords().call_hash(store, password)
        })?
        .map_err(RuntimeError::Password)
    }

    pub fn verify_with(&self, loaded: &Loaded, password: &str, phc: &str) -> Result<PasswordCheck, RuntimeError> {
        self.call(loaded, self.limits.hash_deadline, |store, auth| {
            auth.loom_auth_passwords().call_verify(store, password, phc)
        })?
        .map_err(RuntimeError::Password)
    }

    pub fn issue_with(
        &self,
        loaded: &Loaded,
        settings: &TokenSettings,
        subject: &str,
    ) -> Result<IssuedToken, RuntimeError> {
        self.call(loaded, self.limits.token_deadline, |store, auth| {
            auth.loom_auth_tokens().call_issue(store, settings, subject)
        })?
        .map_err(RuntimeError::Token)
    }

    pub fn verify_token_with(
        &self,
        loaded: &Loaded,
        settings: &TokenSettings,
        token: &[u8],
    ) -> Result<Claims, RuntimeError> {
        self.call(loaded, self.limits.token_deadline, |store, auth| {
            auth.loom_auth_tokens().call_verify(store, settings, token)
        })?
        .map_err(RuntimeError::Token)
    }

    /// Runs `f` against a fresh instance of `loaded` in a fresh, sandboxed store,
    /// stopped after `deadline`. A trap fails this call only: the instance and its
    /// store are dropped with it.
    fn call<R>(
        &self,
        loaded: &Loaded,
        deadline: Duration,
        f: impl FnOnce(&mut Store<GuestState>, &Authenticator) -> wasmtime::Result<R>,
    ) -> Result<R, RuntimeError> {
        let mut store = sandbox::new_store(&self.engine, &self.limits, deadline);
        let auth = loaded.pre.instantiate(&mut store).map_err(|e| RuntimeError::Trap(format!("{e:#}")))?;
        f(&mut store, &auth).map_err(|e| RuntimeError::Trap(format!("{e:#}")))
    }
}
