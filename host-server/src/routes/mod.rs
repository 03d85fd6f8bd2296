//! The HTTP API, one module per endpoint family, and the router that joins them.

mod error;
mod extract;
mod health;
mod logout;
mod me;
mod token;
mod users;

use axum::Router;
use axum::routing::{get, post};
use serde::Serialize;

pub use error::ApiError;
pub use extract::{ClientAddr, CurrentUser};

use crate::state::AppState;
use crate::store::User;

/// Shortest password accepted at registration, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted anywhere, in bytes; checked before any hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// An account as the API shows it.
#[derive(Debug, Serialize)]
pub struct UserOut {
    pub id: i64,
    pub email: String,
    /// `null` when the account has none.
    pub username: Option<String>,
    pub is_active: bool,
}

impl From<User> for UserOut {
    fn from(user: User) -> Self {
        Self { id: user.id, email: user.email, username: user.username, is_active: user.is_active }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/users/", post(users::register))
        .route("/users", post(users::register))
        .route("/token", post(token::issue))
        .route("/users/me/", get(me::show))
        .route("/users/me", get(me::show))
        .route("/logout", post(logout::logout))
        .route("/healthz", get(health::show))
        .route("/readyz", get(health::ready))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}
