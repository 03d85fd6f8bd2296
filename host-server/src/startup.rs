//! Wiring: settings → store, keys, runtime → router → listening socket.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretSlice};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::OnceCell;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::keys;
use crate::routes::{self, ApiError};
use crate::runtime::{AuthRuntime, TokenSettings};
use crate::store::UserStore;

/// Largest request body accepted; larger ones get `413`.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// What every handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: UserStore,
    pub runtime: Arc<AuthRuntime>,
    signing_key: SecretSlice<u8>,
    issuer: String,
    token_ttl: u32,
    leeway: u32,
    /// A hash of a random password, verified against when a login names no
    /// account, so unknown users cost the same time as wrong passwords.
    dummy_hash: OnceCell<String>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The settings the component needs for a token operation, at the current time.
    pub fn token_settings(&self) -> TokenSettings {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        TokenSettings {
            signing_key: self.signing_key.expose_secret().to_vec(),
            issuer: self.issuer.clone(),
            now: i64::try_from(now).unwrap_or(i64::MAX),
            ttl_seconds: self.token_ttl,
            leeway_seconds: self.leeway,
        }
    }

    pub async fn dummy_hash(&self) -> Result<String, ApiError> {
        let hash = self
            .dummy_hash
            .get_or_try_init(|| async {
                let mut password = [0u8; 16];
                getrandom::fill(&mut password)
                    .map_err(|e| ApiError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
                let password = password.iter().map(|b| format!("{b:02x}")).collect();
                Ok::<_, ApiError>(self.runtime.hash_password(password).await?)
            })
            .await?;
        Ok(hash.clone())
    }
}

/// A host ready to serve: its state is built and its socket bound.
pub struct Server {
    listener: TcpListener,
    app: axum::Router,
}

impl Server {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        create_data_dir(&config.data_dir)?;
        let runtime = AuthRuntime::load(&config.component).with_context(|| {
            format!(
                "cannot start without an auth component (`just build-guest` builds {})",
                crate::config::DEFAULT_COMPONENT
            )
        })?;
        let info = runtime.info();
        tracing::info!(path = %info.path.display(), sha256 = %info.sha256, wit_version = %info.wit_version, "loaded the auth component");
        let store = UserStore::open(&config.database_url()).await.context("cannot open the database")?;
        let signing_key = keys::load_or_create(&config.secret_file())?;
        let state = AppState(Arc::new(Inner {
            store,
            runtime,
            signing_key,
            issuer: config.issuer.clone(),
            token_ttl: config.token_ttl,
            leeway: config.leeway,
            dummy_hash: OnceCell::new(),
        }));
        // Make the timing-equaliser hash now, off the request path.
        let warm = state.clone();
        tokio::spawn(async move {
            if let Err(error) = warm.dummy_hash().await {
                tracing::warn!(%error, "could not pre-compute the dummy password hash");
            }
        });
        let app = routes::router(state)
            .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
            .layer(TraceLayer::new_for_http())
            .layer(CatchPanicLayer::custom(|_| panic_response()));
        let listener =
            TcpListener::bind(config.bind).await.with_context(|| format!("cannot listen on {}", config.bind))?;
        Ok(Self { listener, app })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until SIGINT or SIGTERM, then lets running requests finish.
    pub async fn run(self) -> std::io::Result<()> {
        axum::serve(self.listener, self.app).with_graceful_shutdown(shutdown_signal()).await
    }
}

/// Creates the data directory (owner-only, as it holds the secret and the
/// password hashes) unless it exists.
fn create_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create the data directory {}", dir.display())),
    }
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
