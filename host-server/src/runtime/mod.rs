//! The auth component under wasmtime: loading, sandboxing, calling and swapping it.
//!
//! Knows nothing of HTTP or the database. Every call gets a fresh instance
//! (from a pre-linked [`AuthenticatorPre`], tens of microseconds), so no state
//! can leak from one user's call to the next and a trap costs only the call
//! that hit it. The active component sits behind an atomic pointer: a swap
//! publishes a new one, calls already running finish on the old one.

mod cache;
mod calls;
pub mod policy;
mod sandbox;
mod second_factor;
mod selftest;
mod settings;
mod signature;
mod verified;
mod version;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

pub use cache::{CacheSettings, Origin};
pub use calls::Core;
use sandbox::GuestState;
pub use sandbox::Limits;
pub use second_factor::{Enrolment, OtpError, RecoveryCodes};
pub use settings::KeyedSettings;
pub use signature::{Trust, TrustError, signature_path};
use verified::{Check, VerifiedTokens};
use version::{compatible, exported_version};
pub use version::{host_policy_version, host_wit_version};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "authenticator",
    additional_derives: [PartialEq, Eq],
    exports: { default: async },
});

pub use exports::loom::auth::keys::{Algorithm, KeyError};
pub use exports::loom::auth::passwords::{PasswordCheck, PasswordError};
pub use exports::loom::auth::tokens::{Claims, IssuedToken, SigningKey, TokenError, TokenSettings, VerificationKey};

/// The WIT package every component must export, without its version.
pub const WIT_PACKAGE: &str = "loom:auth";

/// Why the runtime could not load a component or complete a call.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot read the auth component at {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the auth component was refused at the {step} step: {reason}")]
    Rejected { step: Step, reason: String },
    #[error("the auth component failed during a call: {0}")]
    Trap(String),
    #[error("the auth component refused the password: {0:?}")]
    Password(PasswordError),
    #[error("the auth component refused the token: {0:?}")]
    Token(TokenError),
    #[error("the auth component could not make or describe a key: {0:?}")]
    Key(KeyError),
    /// No usable key may sign: the active key in the database cannot be opened or checked.
    #[error("no usable signing key (see the log for the key that cannot be used)")]
    NoSigningKey,
    /// The serving component exports no `second-factor` (it speaks an earlier contract).
    #[error(
        "the serving auth component (loom:auth@{wit_version}) cannot make or check second factors; serve one of \
         loom:auth@0.2.1 or later"
    )]
    NoSecondFactor { wit_version: String },
    #[error("the auth component refused the second factor: {0:?}")]
    Otp(second_factor::OtpError),
    /// Every hashing slot is busy and the queue in front of them is full.
    #[error("too many password hashes are waiting")]
    Busy,
}

/// The steps a candidate component goes through before it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Read,
    Signature,
    Compile,
    Link,
    Version,
    /// A policy's settings document (`--policy-config`) could not be read or is not JSON.
    Settings,
    SelfTest,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Signature => "signature",
            Self::Compile => "compile",
            Self::Link => "link",
            Self::Version => "version",
            Self::Settings => "settings",
            Self::SelfTest => "self-test",
        })
    }
}

/// What is known about a loaded component.
#[derive(Debug, Clone)]
pub struct ComponentInfo {
    pub path: PathBuf,
    /// Hex SHA-256 of the component file.
    pub sha256: String,
    /// The version of the `loom:auth` package the component exports.
    pub wit_version: String,
    /// Whether it makes second factors (exports `second-factor`, since 0.2.1).
    pub second_factor: bool,
    pub loaded_at: SystemTime,
    /// Whether it was compiled or taken from the compiled-code cache.
    pub origin: Origin,
    /// Time from reading the file to ready to serve (self-test included).
    pub load_time: Duration,
}

/// The result of one reload attempt, for `/healthz` and the log.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    pub at: SystemTime,
    /// The candidate's digest, when it could be read.
    pub sha256: Option<String>,
    pub outcome: ReloadOutcome,
}

#[derive(Debug, Clone)]
pub enum ReloadOutcome {
    /// The candidate passed every step and now serves.
    Published,
    /// The file holds the component already serving.
    Unchanged,
    /// The candidate failed a step; the previous component keeps serving.
    Rejected { step: Step, reason: String },
}

/// A compiled, linked component, ready to instantiate.
pub struct Loaded {
    pre: AuthenticatorPre<GuestState>,
    /// The `second-factor` export, which components of 0.2.0 lack.
    second_factor: Option<second_factor::SecondFactorOnlyPre<GuestState>>,
    info: ComponentInfo,
}

impl Loaded {
    pub fn info(&self) -> &ComponentInfo {
        &self.info
    }
}

/// Settings of the runtime itself.
pub struct RuntimeOptions {
    pub limits: Limits,
    /// Where compiled components are cached, and the cache's key; no caching when `None`.
    pub cache: Option<CacheSettings>,
    /// Password hashes that may wait for a hashing slot; more are refused at once ([`RuntimeError::Busy`]).
    pub max_hash_queue: usize,
    /// Which components may run (no default: the caller decides).
    pub trust: Trust,
}

/// The engine, the active component, and the bounded pool password work runs on.
pub struct Runtime {
    core: Arc<Core>,
    /// The component file, watched for swaps.
    path: PathBuf,
    active: ArcSwap<Loaded>,
    last_reload: Mutex<Option<ReloadReport>>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// Argon2 is deliberately slow: at most one hash per core runs at a time,
    /// on blocking threads, so async workers stay free for cheap requests.
    hash_permits: Arc<Semaphore>,
    /// Hashes waiting for a permit now, and how many may.
    hash_waiting: Arc<AtomicUsize>,
    max_hash_queue: usize,
    /// Tokens the active component accepted, so a token presented again skips the call.
    verified: VerifiedTokens,
}

impl Runtime {
    /// Loads the component at `path`, which must pass the self-test with `settings`.
    pub async fn start(
        path: &Path,
        options: RuntimeOptions,
        settings: &KeyedSettings,
    ) -> Result<Arc<Self>, RuntimeError> {
        let core = Arc::new(Core::new(options.limits, options.cache, options.trust)?);
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Read { path: path.to_owned(), source })?;
        let sha256 = hex(&Sha256::digest(&bytes));
        let owned = path.to_owned();
        let first = off_the_workers(&core, None, settings, move |core, current, settings| async move {
            core.admit(&owned, &bytes, sha256, current.as_deref(), &settings).await
        })
        .await?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Arc::new(Self {
            core,
            path: path.to_owned(),
            active: ArcSwap::from_pointee(first),
            last_reload: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
            hash_permits: Arc::new(Semaphore::new(cores)),
            hash_waiting: Arc::new(AtomicUsize::new(0)),
            max_hash_queue: options.max_hash_queue,
            verified: VerifiedTokens::new(verified::CAPACITY),
        }))
    }

    /// The engine, linker, limits, cache and trust, for a policy to load and run with.
    pub fn core(&self) -> Arc<Core> {
        Arc::clone(&self.core)
    }

    /// The component serving now.
    pub fn active(&self) -> Arc<Loaded> {
        self.active.load_full()
    }

    /// The most memory one instance of the component may have, in bytes (`--guest-memory-mib`).
    pub fn memory_limit_bytes(&self) -> usize {
        self.core.limits.memory_bytes
    }

    /// Password hashes waiting for a hashing slot now.
    pub fn hash_queue_depth(&self) -> usize {
        self.hash_waiting.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn info(&self) -> ComponentInfo {
        self.active.load().info.clone()
    }

    pub fn last_reload(&self) -> Option<ReloadReport> {
        self.last_reload.lock().expect("reload report lock").clone()
    }

    /// Reads the component file again and, if it changed and passes every step,
    /// publishes it. Compiling and the self-test run on a blocking thread.
    pub async fn reload(&self, settings: &KeyedSettings) -> ReloadReport {
        let _one_at_a_time = self.reloading.lock().await;
        let report = match std::fs::read(&self.path) {
            Err(e) => ReloadReport {
                at: SystemTime::now(),
                sha256: None,
                outcome: ReloadOutcome::Rejected { step: Step::Read, reason: e.to_string() },
            },
            Ok(bytes) => {
                let sha256 = hex(&Sha256::digest(&bytes));
                let outcome = if sha256 == self.active.load().info.sha256 {
                    ReloadOutcome::Unchanged
                } else {
                    let (digest, path) = (sha256.clone(), self.path.clone());
                    let admitted = off_the_workers(
                        &self.core,
                        Some(self.active()),
                        settings,
                        move |core, current, settings| async move {
                            core.admit(&path, &bytes, digest, current.as_deref(), &settings).await
                        },
                    )
                    .await;
                    match admitted {
                        Ok(candidate) => {
                            self.active.store(Arc::new(candidate));
                            self.verified.clear();
                            ReloadOutcome::Published
                        }
                        Err(RuntimeError::Rejected { step, reason }) => ReloadOutcome::Rejected { step, reason },
                        Err(other) => ReloadOutcome::Rejected { step: Step::Compile, reason: other.to_string() },
                    }
                };
                ReloadReport { at: SystemTime::now(), sha256: Some(sha256), outcome }
            }
        };
        *self.last_reload.lock().expect("reload report lock") = Some(report.clone());
        report
    }

    /// Hashes a password with the active component, on the hashing pool.
    pub async fn hash_password(self: &Arc<Self>, password: SecretString) -> Result<String, RuntimeError> {
        self.on_hash_pool(move |core, loaded| async move { core.hash_with(&loaded, &password).await }).await
    }

    /// Checks a password against a stored PHC string, on the hashing pool.
    pub async fn verify_password(
        self: &Arc<Self>,
        password: SecretString,
        phc: String,
    ) -> Result<PasswordCheck, RuntimeError> {
        self.on_hash_pool(move |core, loaded| async move { core.verify_with(&loaded, &password, &phc).await }).await
    }

    /// Issues a token for `subject` and the client `client_id`, with `extra` claims (names and
    /// JSON values), signed with the settings' signing key. Cheap (microseconds): runs on the
    /// calling task.
    pub async fn issue_token(
        &self,
        settings: &KeyedSettings,
        subject: &str,
        client_id: &str,
        extra: &[(String, String)],
    ) -> Result<IssuedToken, RuntimeError> {
        self.core.issue_with(&self.active(), settings, subject, client_id, extra).await
    }

    /// Verifies a token as received. Cheap (microseconds): runs on the calling
    /// task. A token the active component accepted before is answered from the
    /// verified-token cache until it expires.
    pub async fn verify_token(&self, settings: &KeyedSettings, token: &[u8]) -> Result<Claims, RuntimeError> {
        let active = self.active();
        let check = Check::new(&active.info.sha256, settings, token);
        if let Some(claims) = self.verified.get(&check) {
            return Ok(claims);
        }
        let claims = self.core.verify_token_with(&active, settings, token).await?;
        self.verified.insert(&check, &claims);
        Ok(claims)
    }

    /// Verifies a token in the active component, never from the cache: what a
    /// token seen for the first time costs (for measurements).
    pub async fn verify_token_uncached(&self, settings: &KeyedSettings, token: &[u8]) -> Result<Claims, RuntimeError> {
        self.core.verify_token_with(&self.active(), settings, token).await
    }

    /// Fresh private key material for `alg`, made by the active component.
    pub async fn generate_key(&self, alg: Algorithm) -> Result<zeroize::Zeroizing<Vec<u8>>, RuntimeError> {
        self.core.generate_key_with(&self.active(), alg).await
    }

    /// The public JWK of an asymmetric key, described by the active component.
    pub async fn public_jwk(&self, alg: Algorithm, private: &[u8], kid: &str) -> Result<String, RuntimeError> {
        self.core.public_jwk_with(&self.active(), alg, private, kid).await
    }

    /// Forgets every remembered token check (the keys changed).
    pub fn forget_verified_tokens(&self) {
        self.verified.clear();
    }

    /// Runs `f` with the active component on a low-priority blocking thread,
    /// once one of the per-core permits is free.
    async fn on_hash_pool<R, F>(
        self: &Arc<Self>,
        f: impl FnOnce(Arc<Core>, Arc<Loaded>) -> F + Send + 'static,
    ) -> Result<R, RuntimeError>
    where
        R: Send + 'static,
        F: Future<Output = Result<R, RuntimeError>>,
    {
        let permit = match self.hash_permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _in_queue = QueueSlot::take(&self.hash_waiting, self.max_hash_queue)?;
                self.hash_permits.clone().acquire_owned().await.expect("the hash semaphore is never closed")
            }
        };
        let (core, loaded, handle) = (Arc::clone(&self.core), self.active(), Handle::current());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            crate::platform::lower_thread_priority();
            handle.block_on(f(core, loaded))
        })
        .await
        .map_err(|e| RuntimeError::Trap(format!("the hashing task failed: {e}")))?
    }
}

/// A place in the queue for a hashing permit, given back when dropped (also
/// when the waiting request is cancelled).
struct QueueSlot(Arc<AtomicUsize>);

impl QueueSlot {
    fn take(waiting: &Arc<AtomicUsize>, max: usize) -> Result<Self, RuntimeError> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .map(|_| Self(Arc::clone(waiting)))
            .map_err(|_| RuntimeError::Busy)
    }
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `f` (compiling and the self-test: seconds of CPU) on a blocking
/// thread, so the async workers keep serving meanwhile.
async fn off_the_workers<R, F>(
    core: &Arc<Core>,
    current: Option<Arc<Loaded>>,
    settings: &KeyedSettings,
    f: impl FnOnce(Arc<Core>, Option<Arc<Loaded>>, KeyedSettings) -> F + Send + 'static,
) -> Result<R, RuntimeError>
where
    R: Send + 'static,
    F: Future<Output = Result<R, RuntimeError>>,
{
    let (core, settings, handle) = (Arc::clone(core), settings.clone(), Handle::current());
    tokio::task::spawn_blocking(move || handle.block_on(f(core, current, settings)))
        .await
        .map_err(|e| RuntimeError::Trap(format!("the component loader failed: {e}")))?
}

fn rejected(step: Step, error: wasmtime::Error) -> RuntimeError {
    RuntimeError::Rejected { step, reason: format!("{error:#}") }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
