//! Wiring: settings → store, keys, runtime → router → listening socket.

use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::accounts::throttle::ThrottlePolicy;
use crate::config::Config;
use crate::keyring::{self, Keys, seal::Sealer};
use crate::reload::{self, Watch};
use crate::routes;
use crate::runtime::policy::Policy;
use crate::runtime::{CacheSettings, Runtime, RuntimeOptions};
use crate::secret_files::{self, SecretKind};
use crate::state::{AppState, Rules};
use crate::store::UserStore;
use crate::telemetry::audit::{self, Event};
use crate::tokens::TokenConfig;

/// A host ready to serve: its state is built and its socket bound.
pub struct Server {
    listener: TcpListener,
    app: axum::Router,
    timeouts: crate::config::Timeouts,
    store: UserStore,
    _watch: (Watch, Option<Watch>),
}

impl Server {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        create_data_dir(&config.data_dir)?;
        // Before anything is recorded; the listener too, so a taken port stops the start.
        let metrics = match config.metrics_bind {
            Some(address) => {
                let handle = crate::telemetry::measure::install().context("cannot set up the metrics")?;
                let listener = TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen for metrics on {address}"))?;
                Some((handle, listener))
            }
            None => None,
        };
        let listener =
            TcpListener::bind(config.bind).await.with_context(|| format!("cannot listen on {}", config.bind))?;
        let public_url = public_url(config);
        let issuer = issuer(config, public_url.as_deref());
        let store = UserStore::open(&config.database_url(), config.database_max_connections)
            .await
            .with_context(|| format!("cannot open {}", crate::store::describe_database(&config.database_url())))?;
        let runtime = start_runtime(config).await?;
        let keys = open_keys(config, &store, &runtime).await?;
        keys.spawn_refresh(Arc::clone(&runtime));
        let tokens = Arc::new(TokenConfig {
            keys,
            issuer,
            audience: config.audience.clone(),
            ttl_seconds: config.token_ttl,
            leeway_seconds: config.leeway,
        });
        let info = runtime.info();
        tracing::info!(
            path = %info.path.display(),
            origin = ?info.origin,
            load_ms = info.load_time.as_millis() as u64,
            "loaded the auth component"
        );
        audit::record(Event::ComponentPublished {
            sha256: &info.sha256,
            wit_version: &info.wit_version,
            trigger: "start",
        });
        if let Some((handle, listener)) = metrics {
            crate::telemetry::measure::announce(listener.local_addr()?);
            let runtime = Arc::clone(&runtime);
            let queue_depth: crate::telemetry::measure::QueueDepth = Arc::new(move || runtime.hash_queue_depth());
            tokio::spawn(async move {
                if let Err(error) = crate::telemetry::measure::serve(listener, handle, queue_depth).await {
                    tracing::error!(%error, "the metrics listener failed");
                }
            });
        }
        let policy = start_policy(config, &runtime).await?;
        let watch = reload::watch(&config.component, Arc::clone(&runtime), Arc::clone(&tokens))?;
        let policy_watch = policy.as_ref().map(|policy| reload::watch_policy(Arc::clone(policy))).transpose()?;
        let throttle = ThrottlePolicy::new(
            config.login_max_failures,
            config.login_max_failures_per_address,
            config.login_window,
            config.signups_per_address,
            config.trusted_proxy.clone(),
        );
        crate::accounts::throttle::spawn_purge(store.clone(), throttle.login_per_account.window_seconds);
        let (sessions, pats) = (config.session_policy(), config.pat_policy());
        let rules = Rules { throttle, sessions, pats, policy };
        let state = AppState::new(store.clone(), runtime, tokens, rules, public_url);
        // Make the decoy hash and measure the cost of a check now, off the request path; then
        // survey the stored hashes' costs, again after every import and now and then.
        let warm = state.clone();
        tokio::spawn(async move {
            if let Err(error) = warm.credentials.warm(&warm.runtime).await {
                tracing::warn!(%error, "could not measure the cost of a password check yet");
            }
            crate::accounts::credentials::watch_stored_costs(&warm.credentials, &warm.runtime, &warm.store).await;
        });
        let mut app = routes::router(state);
        if config.metrics_bind.is_some() {
            app = app.layer(axum::middleware::from_fn(crate::telemetry::measure::track));
        }
        let app = crate::serve::with_request_timeout(app, config.timeouts())
            .layer(DefaultBodyLimit::max(routes::BODY_LIMIT_BYTES))
            .layer(TraceLayer::new_for_http())
            .layer(CatchPanicLayer::custom(|_| panic_response()));
        Ok(Self { listener, app, timeouts: config.timeouts(), store, _watch: (watch, policy_watch) })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until SIGINT or SIGTERM, then lets running requests finish
    /// (within `--shutdown-grace`) and closes the database connections.
    pub async fn run(self) -> std::io::Result<()> {
        crate::serve::serve(self.listener, self.app, self.timeouts, shutdown_signal()).await?;
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The URL clients reach this host at: `--public-url`; `None` without it (only the operator
/// knows it: a host behind a proxy or a load balancer cannot tell), and the discovery document
/// is then off.
fn public_url(config: &Config) -> Option<String> {
    let url = config.public_url.as_ref().map(|url| url.as_str().trim_end_matches('/').to_owned());
    if url.is_none() {
        tracing::info!(
            "no --public-url: the discovery document (/.well-known/oauth-authorization-server) is off, and tokens \
             name the issuer {}",
            config.issuer.as_deref().unwrap_or(crate::tokens::LEGACY_ISSUER)
        );
    }
    url
}

/// The `iss` of tokens: `--issuer`, else the public URL, else the legacy name.
fn issuer(config: &Config, public_url: Option<&str>) -> String {
    config
        .issuer
        .clone()
        .or_else(|| public_url.map(str::to_owned))
        .unwrap_or_else(|| crate::tokens::LEGACY_ISSUER.into())
}

/// The component, loaded as the settings say (signature trust, limits, cache), having passed
/// its self-test with a throwaway key (the key ring needs a component to make its first key).
pub async fn start_runtime(config: &Config) -> anyhow::Result<Arc<Runtime>> {
    let trust = config.trust()?;
    if !config.component.exists() {
        anyhow::bail!(
            "there is no auth component at {}: give its path with --component PATH or LOOM_AUTH_COMPONENT \
             (`just build-guest` builds {})",
            config.component.display(),
            crate::config::DEFAULT_COMPONENT
        );
    }
    if config.allow_unsigned {
        tracing::warn!(
            "--allow-unsigned is on: the host runs any component at its path, signed or not, and hands it the \
             signing key. Use it for development only"
        );
    }
    let (cache_dir, cache_key) = config.cache_paths();
    if config.cache_dir.is_some() {
        own_cache_dir(&cache_dir)?;
    }
    let key = secret_files::load_or_create(&cache_key, SecretKind::Cache)?;
    if config.cache_dir.is_some() {
        owner_only(&cache_key, 0o077, "its cache key")?;
    }
    let cache = CacheSettings { dir: cache_dir, key };
    let options =
        RuntimeOptions { limits: config.limits(), cache: Some(cache), trust, max_hash_queue: config.max_hash_queue() };
    let issuer = config.issuer.as_deref().unwrap_or(crate::tokens::LEGACY_ISSUER);
    let bootstrap = crate::tokens::bootstrap_settings(issuer, &config.audience)
        .map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Runtime::start(&config.component, options, &bootstrap).await.with_context(|| {
        format!(
            "cannot serve the auth component {} (`just build-guest` builds {})",
            config.component.display(),
            crate::config::DEFAULT_COMPONENT
        )
    })
}

/// The policy component, when `--policy` names one, through its gate on the runtime's engine.
async fn start_policy(config: &Config, runtime: &Runtime) -> anyhow::Result<Option<Arc<Policy>>> {
    let Some(settings) = config.policy_settings() else { return Ok(None) };
    let path = settings.path.clone();
    if !path.exists() {
        anyhow::bail!("there is no policy component at {}: check --policy (or LOOM_AUTH_POLICY)", path.display());
    }
    let policy = Policy::start(runtime.core(), settings)
        .await
        .with_context(|| format!("cannot serve the policy {}", path.display()))?;
    let info = policy.info();
    tracing::info!(
        path = %info.path.display(),
        origin = ?info.origin,
        load_ms = info.load_time.as_millis() as u64,
        deadline_ms = info.deadline.as_millis() as u64,
        "loaded the policy"
    );
    audit::record(Event::PolicyPublished { sha256: &info.sha256, config: &info.config_sha256, trigger: "start" });
    Ok(Some(policy))
}

/// The shared signing keys, sealed under the master key: made on first start (importing a
/// pre-0.2 secret file as the legacy key), then read from the database.
pub async fn open_keys(config: &Config, store: &UserStore, runtime: &Runtime) -> anyhow::Result<Arc<Keys>> {
    let master = secret_files::load_or_create(&config.master_key_file(), SecretKind::Master)?;
    let sealer = Sealer::new(&master);
    let legacy = secret_files::load_existing(&config.secret_file(), SecretKind::Signing)?;
    keyring::ensure(store, &sealer, runtime, legacy, crate::tokens::unix_now())
        .await
        .context("cannot set up the signing keys")?;
    Keys::load(store.clone(), sealer, runtime).await.context("cannot read the signing keys")
}

/// Creates the data directory (owner-only, as it holds the secret and the
/// password hashes) unless it exists.
fn create_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    if let Ok(meta) = std::fs::metadata(dir)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %dir.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the data directory lets other users in: its secrets and database are owner-only, but `chmod 700` it \
             to keep even their names private"
        );
    }
    Ok(())
}

/// A compiled-code cache directory given with `--cache-dir`: made mode 0700 when missing, and
/// refused unless this user owns it and no one else may write it. Its entries are native code
/// the host runs outside the sandbox, trusted by the key beside them: whoever could write there
/// (or read the key) could plant code.
fn own_cache_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the compiled-code cache {}", dir.display()))?;
    owner_only(dir, 0o022, "the compiled-code cache")
}

/// Fails unless `path` belongs to this user and has none of the permission bits in `forbidden`.
fn owner_only(path: &std::path::Path, forbidden: u32, what: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.uid() != crate::platform::effective_uid() {
        anyhow::bail!("{what} {} belongs to another user: the host runs the code it holds", path.display());
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & forbidden != 0 {
        anyhow::bail!(
            "{what} {} is open to other users (mode {mode:o}): whoever can change it controls the code the host \
             runs; `chmod go-rwx` it",
            path.display()
        );
    }
    Ok(())
}

fn panic_response() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "detail": "Internal Server Error" }))).into_response()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}
