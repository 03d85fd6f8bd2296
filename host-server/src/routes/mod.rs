//! The HTTP API, one module per endpoint family, and the router that joins them.

mod client_auth;
mod discovery;
pub mod docs;
mod error;
mod extract;
mod health;
mod logout;
mod me;
mod password;
mod pats;
mod revoke;
mod second_factor;
mod sessions;
mod token;
mod users;

use axum::Router;
use axum::routing::{get, post};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;
pub use extract::{ClientAddr, CurrentUser, PasswordLogin};

use crate::state::AppState;
use crate::store::User;

/// Largest request body accepted; larger ones get `413` (the wiring applies the limit).
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// An account as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserOut {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// `null` when the account has none.
    #[schema(example = "ada")]
    pub username: Option<String>,
    pub is_active: bool,
}

impl From<User> for UserOut {
    fn from(user: User) -> Self {
        Self { id: user.id, email: user.email, username: user.username, is_active: user.is_active }
    }
}

/// The API, its OpenAPI document (`/openapi.json`) and its docs page (`/docs`). The document
/// is made from the same annotated handlers the routes are, so it lists exactly what is served.
pub fn router(state: AppState) -> Router {
    let (api, document) = OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .routes(routes!(users::register))
        .routes(routes!(token::issue))
        .routes(routes!(me::show))
        .routes(routes!(logout::logout))
        .routes(routes!(revoke::revoke))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::end))
        .routes(routes!(password::change))
        .routes(routes!(pats::create, pats::list))
        .routes(routes!(pats::current))
        .routes(routes!(pats::revoke))
        .routes(routes!(second_factor::enrol, second_factor::disable))
        .routes(routes!(second_factor::confirm))
        .routes(routes!(second_factor::renew_recovery_codes))
        .routes(routes!(health::show))
        .routes(routes!(health::ready))
        .routes(routes!(discovery::jwks))
        .routes(routes!(discovery::metadata))
        .split_for_parts();
    api
        // The same without the trailing slash, which FastAPI answered with a redirect.
        .route("/users", post(users::register))
        .route("/users/me", get(me::show))
        .merge(docs::swagger_ui(document))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}
