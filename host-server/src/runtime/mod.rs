//! The auth component under wasmtime: loading, sandboxing and calling it.
//!
//! Knows nothing of HTTP or the database. Every call gets a fresh instance
//! (from a pre-linked [`AuthenticatorPre`], ~25 µs), so no state can leak from
//! one user's call to the next and a trap costs only the call that hit it.

mod sandbox;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker, types::ComponentItem};
use wasmtime::{Engine, Store};

use sandbox::GuestState;

wasmtime::component::bindgen!({ path: "../wit", world: "authenticator", additional_derives: [PartialEq, Eq] });

pub use exports::loom::auth::passwords::{PasswordCheck, PasswordError};
pub use exports::loom::auth::tokens::{Claims, IssuedToken, TokenError, TokenSettings};

/// The WIT package every component must export, without its version.
pub const WIT_PACKAGE: &str = "loom:auth";

/// Why the runtime could not load a component or complete a call.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot read the auth component at {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a loadable WebAssembly component: {reason}")]
    Compile { path: PathBuf, reason: String },
    #[error("{path} does not implement the {WIT_PACKAGE} world this host needs: {reason}")]
    Link { path: PathBuf, reason: String },
    #[error("the auth component failed during a call: {0}")]
    Trap(String),
    #[error("the auth component refused the password: {0:?}")]
    Password(PasswordError),
    #[error("the auth component refused the token: {0:?}")]
    Token(TokenError),
}

/// What is known about the component being served.
#[derive(Debug, Clone)]
pub struct ComponentInfo {
    pub path: PathBuf,
    /// Hex SHA-256 of the component file.
    pub sha256: String,
    /// The version of the `loom:auth` package the component exports.
    pub wit_version: String,
    pub loaded_at: SystemTime,
}

/// A loaded auth component and the bounded pool its password work runs on.
pub struct AuthRuntime {
    engine: Engine,
    pre: AuthenticatorPre<GuestState>,
    info: ComponentInfo,
    /// Argon2 is deliberately slow: at most one hash per core runs at a time,
    /// on blocking threads, so async workers stay free for cheap requests.
    hash_permits: Arc<Semaphore>,
}

impl AuthRuntime {
    /// Reads, compiles and links the component at `path`.
    pub fn load(path: &Path) -> Result<Arc<Self>, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Read { path: path.to_owned(), source })?;
        let engine = Engine::new(&sandbox::engine_config())
            .map_err(|e| RuntimeError::Compile { path: path.to_owned(), reason: format!("{e:#}") })?;
        let component = Component::new(&engine, &bytes)
            .map_err(|e| RuntimeError::Compile { path: path.to_owned(), reason: format!("{e:#}") })?;
        let link_error = |e: wasmtime::Error| RuntimeError::Link { path: path.to_owned(), reason: format!("{e:#}") };
        let wit_version = exported_version(&engine, &component).ok_or_else(|| RuntimeError::Link {
            path: path.to_owned(),
            reason: format!("it exports no {WIT_PACKAGE}/tokens interface"),
        })?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link_error)?;
        let pre = linker.instantiate_pre(&component).map_err(link_error)?;
        let pre = AuthenticatorPre::new(pre).map_err(link_error)?;
        let info = ComponentInfo {
            path: path.to_owned(),
            sha256: hex(&Sha256::digest(&bytes)),
            wit_version,
            loaded_at: SystemTime::now(),
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Arc::new(Self { engine, pre, info, hash_permits: Arc::new(Semaphore::new(cores)) }))
    }

    pub fn info(&self) -> &ComponentInfo {
        &self.info
    }

    /// Hashes a password, off the async workers.
    pub async fn hash_password(self: &Arc<Self>, password: String) -> Result<String, RuntimeError> {
        self.on_hash_pool(move |rt| {
            rt.call(|store, auth| auth.loom_auth_passwords().call_hash(store, &password))?
                .map_err(RuntimeError::Password)
        })
        .await
    }

    /// Checks a password against a stored PHC string, off the async workers.
    pub async fn verify_password(
        self: &Arc<Self>,
        password: String,
        phc: String,
    ) -> Result<PasswordCheck, RuntimeError> {
        self.on_hash_pool(move |rt| {
            rt.call(|store, auth| auth.loom_auth_passwords().call_verify(store, &password, &phc))?
                .map_err(RuntimeError::Password)
        })
        .await
    }

    /// Issues a token. Cheap (microseconds): runs on the calling thread.
    pub fn issue_token(&self, settings: &TokenSettings, subject: &str) -> Result<IssuedToken, RuntimeError> {
        self.call(|store, auth| auth.loom_auth_tokens().call_issue(store, settings, subject))?
            .map_err(RuntimeError::Token)
    }

    /// Verifies a token as received. Cheap (microseconds): runs on the calling thread.
    pub fn verify_token(&self, settings: &TokenSettings, token: &[u8]) -> Result<Claims, RuntimeError> {
        self.call(|store, auth| auth.loom_auth_tokens().call_verify(store, settings, token))?
            .map_err(RuntimeError::Token)
    }

    /// Runs `f` against a fresh instance in a fresh, sandboxed store.
    fn call<R>(
        &self,
        f: impl FnOnce(&mut Store<GuestState>, &Authenticator) -> wasmtime::Result<R>,
    ) -> Result<R, RuntimeError> {
        let mut store = sandbox::new_store(&self.engine);
        let auth = self.pre.instantiate(&mut store).map_err(|e| RuntimeError::Trap(format!("{e:#}")))?;
        f(&mut store, &auth).map_err(|e| RuntimeError::Trap(format!("{e:#}")))
    }

    async fn on_hash_pool<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Self) -> Result<R, RuntimeError> + Send + 'static,
    ) -> Result<R, RuntimeError> {
        let permit = self.hash_permits.clone().acquire_owned().await.expect("the hash semaphore is never closed");
        let rt = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&rt)
        })
        .await
        .map_err(|e| RuntimeError::Trap(format!("the hashing task failed: {e}")))?
    }
}

/// The version of the `loom:auth` package a component exports, from its type.
fn exported_version(engine: &Engine, component: &Component) -> Option<String> {
    component.component_type().exports(engine).find_map(|(name, item)| {
        let version = name.strip_prefix(WIT_PACKAGE)?.strip_prefix("/tokens@")?;
        matches!(item.ty, ComponentItem::ComponentInstance(_)).then(|| version.to_owned())
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
