//! Compiling, checking and calling components: what the live runtime, the
//! self-test and a reload share.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};
use zeroize::Zeroizing;

use super::cache::{CacheSettings, CodeCache, Origin};
use super::sandbox::{self, GuestState, Limits};
use super::signature::Trust;
use super::{
    Algorithm, Authenticator, AuthenticatorPre, Claims, ComponentInfo, IssuedToken, KeyedSettings, Loaded,
    PasswordCheck, RuntimeError, Step, WIT_PACKAGE, compatible, exported_version, host_wit_version, rejected,
};

/// What compiling and calling components needs, shared by the auth component and the policy:
/// the engine, the linker, the limits, the compiled-code cache and which signers to trust.
pub struct Core {
    pub(super) engine: Engine,
    pub(super) linker: Linker<GuestState>,
    pub(super) limits: Limits,
    pub(super) cache: Option<CodeCache>,
    pub(super) trust: Trust,
}

impl Core {
    /// An engine with its epoch thread and instance pool, a WASI linker that grants nothing, the
    /// compiled-code cache (none when `cache` is `None`) and the signers to trust.
    pub fn new(limits: Limits, cache: Option<CacheSettings>, trust: Trust) -> Result<Self, RuntimeError> {
        let engine = sandbox::engine(&limits).map_err(|e| rejected(Step::Compile, e))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| rejected(Step::Link, e))?;
        let cache = cache.map(|settings| CodeCache::new(settings, &engine));
        Ok(Self { engine, linker, limits, cache, trust })
    }

    /// Whether the password self-test `check` passed before in the same
    /// conditions (a marker in the cache).
    pub(super) fn passed(&self, check: &str) -> bool {
        let passed = self.cache.as_ref().is_some_and(|cache| cache.passed(check, &self.memo_context()));
        if passed {
            tracing::info!(check, "skipping password self-test checks these bytes passed before");
        }
        passed
    }

    pub(super) fn record_pass(&self, check: &str) {
        if let Some(cache) = &self.cache {
            cache.record_pass(check, &self.memo_context());
        }
    }

    /// Everything besides the component's bytes that the memoised password
    /// checks depend on: a change to any of them runs the checks again.
    fn memo_context(&self) -> String {
        let Limits { memory_bytes, hash_deadline, token_deadline } = self.limits;
        format!(
            "host {} / memory {memory_bytes} / hash deadline {} ms / token deadline {} ms",
            env!("CARGO_PKG_VERSION"),
            hash_deadline.as_millis(),
            token_deadline.as_millis()
        )
    }

    /// Takes the component `bytes` (digest `sha256`, read from `path`) through every step of the
    /// gate: signature, compile, version, link, self-test against `current`. Ready to publish.
    pub(super) async fn admit(
        &self,
        path: &Path,
        bytes: &[u8],
        sha256: String,
        current: Option<&Loaded>,
        settings: &KeyedSettings,
    ) -> Result<Loaded, RuntimeError> {
        let started = Instant::now();
        self.trust.check(path, bytes).map_err(|reason| RuntimeError::Rejected { step: Step::Signature, reason })?;
        let mut candidate = self.prepare(path, bytes, sha256)?;
        super::selftest::run(self, &candidate, current, settings)
            .await
            .map_err(|reason| RuntimeError::Rejected { step: Step::SelfTest, reason })?;
        candidate.info.load_time = started.elapsed();
        Ok(candidate)
    }

    /// Compiles `bytes` (digest `sha256`), or takes them from the compiled-code cache.
    pub(super) fn compile(&self, bytes: &[u8], sha256: &str) -> Result<(Component, Origin), RuntimeError> {
        match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, sha256, bytes),
            None => Component::new(&self.engine, bytes).map(|c| (c, Origin::Compiled)),
        }
        .map_err(|e| rejected(Step::Compile, e))
    }

    /// Compile (or take from the cache), check the version, link.
    pub(super) fn prepare(&self, path: &Path, bytes: &[u8], sha256: String) -> Result<Loaded, RuntimeError> {
        let (component, origin) = self.compile(bytes, &sha256)?;
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
        let second_factor = super::second_factor::link(&pre);
        let pre = AuthenticatorPre::new(pre).map_err(|e| rejected(Step::Link, e))?;
        let info = ComponentInfo {
            path: path.to_owned(),
            sha256,
            wit_version,
            second_factor: second_factor.is_some(),
            loaded_at: SystemTime::now(),
            origin,
            load_time: Duration::ZERO,
        };
        Ok(Loaded { pre, second_factor, info })
    }

    pub async fn hash_with(&self, loaded: &Loaded, password: &SecretString) -> Result<String, RuntimeError> {
        let password = Zeroizing::new(password.expose_secret().to_owned());
        self.call(loaded, self.limits.hash_deadline, "passwords.hash", |store, auth| {
            Box::pin(async move { auth.loom_auth_passwords().call_hash(store, &password).await })
        })
        .await?
        .map_err(RuntimeError::Password)
    }

    pub async fn verify_with(
        &self,
        loaded: &Loaded,
        password: &SecretString,
        phc: &str,
    ) -> Result<PasswordCheck, RuntimeError> {
        let (password, phc) = (Zeroizing::new(password.expose_secret().to_owned()), phc.to_owned());
        self.call(loaded, self.limits.hash_deadline, "passwords.verify", |store, auth| {
            Box::pin(async move { auth.loom_auth_passwords().call_verify(store, &password, &phc).await })
        })
        .await?
        .map_err(RuntimeError::Password)
    }

    pub async fn issue_with(
        &self,
        loaded: &Loaded,
        settings: &KeyedSettings,
        subject: &str,
        client_id: &str,
        extra: &[(String, String)],
    ) -> Result<IssuedToken, RuntimeError> {
        if settings.signing.is_none() {
            return Err(RuntimeError::NoSigningKey);
        }
        let (settings, subject, client_id) = (settings.clone(), subject.to_owned(), client_id.to_owned());
        let extra = extra.to_vec();
        self.call(loaded, self.limits.token_deadline, "tokens.issue", |store, auth| {
            Box::pin(async move {
                let (values, key) = (&settings.settings, settings.signing.as_ref().expect("checked above"));
                auth.loom_auth_tokens().call_issue(store, values, key, &subject, &client_id, &extra).await
            })
        })
        .await?
        .map_err(RuntimeError::Token)
    }

    /// Verifies `token` with the settings' verification keys only: the component never
    /// receives a private key here (an asymmetric key's public half, an HS256 secret).
    pub async fn verify_token_with(
        &self,
        loaded: &Loaded,
        settings: &KeyedSettings,
        token: &[u8],
    ) -> Result<Claims, RuntimeError> {
        let (settings, token) = (settings.clone(), Zeroizing::new(token.to_vec()));
        self.call(loaded, self.limits.token_deadline, "tokens.verify", |store, auth| {
            Box::pin(async move {
                auth.loom_auth_tokens().call_verify(store, &settings.settings, &settings.verifying, &token).await
            })
        })
        .await?
        .map_err(RuntimeError::Token)
    }

    /// Fresh private key material for `alg`, made by the component.
    pub async fn generate_key_with(&self, loaded: &Loaded, alg: Algorithm) -> Result<Zeroizing<Vec<u8>>, RuntimeError> {
        self.call(loaded, self.limits.token_deadline, "keys.generate-key", |store, auth| {
            Box::pin(async move { auth.loom_auth_keys().call_generate_key(store, alg).await })
        })
        .await?
        .map(Zeroizing::new)
        .map_err(RuntimeError::Key)
    }

    /// The public JWK of an asymmetric key, as JSON text.
    pub async fn public_jwk_with(
        &self,
        loaded: &Loaded,
        alg: Algorithm,
        private: &[u8],
        kid: &str,
    ) -> Result<String, RuntimeError> {
        let (private, kid) = (Zeroizing::new(private.to_vec()), kid.to_owned());
        self.call(loaded, self.limits.token_deadline, "keys.public-jwk", |store, auth| {
            Box::pin(async move { auth.loom_auth_keys().call_public_jwk(store, alg, &private, &kid).await })
        })
        .await?
        .map_err(RuntimeError::Key)
    }

    /// The public half of an asymmetric key (what verification gets).
    pub async fn public_key_with(
        &self,
        loaded: &Loaded,
        alg: Algorithm,
        private: &[u8],
    ) -> Result<Vec<u8>, RuntimeError> {
        let private = Zeroizing::new(private.to_vec());
        self.call(loaded, self.limits.token_deadline, "keys.public-key", |store, auth| {
            Box::pin(async move { auth.loom_auth_keys().call_public_key(store, alg, &private).await })
        })
        .await?
        .map_err(RuntimeError::Key)
    }

    /// Runs `f` against a fresh instance of `loaded` in a fresh, sandboxed store.
    ///
    /// Guest code is trapped by the epoch deadline; time in host calls (a guest
    /// that sleeps, say) by a timeout over the whole call, which drops it. A trap,
    /// a deadline or a memory cap fails this call only: the instance and its
    /// store go with it. What the guest printed goes to the log at `debug`.
    async fn call<R>(
        &self,
        loaded: &Loaded,
        deadline: Duration,
        export: &'static str,
        f: impl for<'a> FnOnce(&'a mut Store<GuestState>, Authenticator) -> GuestFuture<'a, R>,
    ) -> Result<R, RuntimeError> {
        self.sandboxed(&loaded.info.sha256, deadline, export, async |store| {
            let auth = loaded.pre.instantiate_async(&mut *store).await?;
            f(store, auth).await
        })
        .await
    }

    /// Runs `run` (which instantiates a world of the component with digest `sha256` and calls
    /// it) in a fresh, sandboxed store, within `deadline`; see [`Core::call`].
    pub(super) async fn sandboxed<R>(
        &self,
        sha256: &str,
        deadline: Duration,
        export: &'static str,
        run: impl AsyncFnOnce(&mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> Result<R, RuntimeError> {
        let mut store = sandbox::new_store(&self.engine, &self.limits, deadline);
        let result = match tokio::time::timeout(deadline + HOST_CALL_GRACE, run(&mut store)).await {
            Ok(result) => result.map_err(|e| RuntimeError::Trap(format!("{export}: {e:#}"))),
            Err(_) => Err(RuntimeError::Trap(format!("{export}: still running after its {deadline:?} deadline"))),
        };
        if result.is_err() {
            crate::telemetry::measure::guest_trap(export);
        }
        let (printed, dropped) = store.data().output();
        if !printed.is_empty() || dropped > 0 {
            // A policy's exports are `policy.<hook>`; the auth component's `<interface>.<function>`.
            let who = if export.starts_with("policy.") { "the policy" } else { "the auth component" };
            tracing::debug!(
                sha256 = %sha256,
                export,
                dropped_bytes = dropped,
                output = ?String::from_utf8_lossy(&printed),
                "{who} printed"
            );
        }
        result
    }
}

/// What a guest call returns: a future borrowing the call's store.
pub(super) type GuestFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// Added to a call's deadline before the timeout drops it, so guest code meets
/// its epoch trap first (a clearer reason) and only host calls need the timeout.
const HOST_CALL_GRACE: Duration = Duration::from_millis(50);
