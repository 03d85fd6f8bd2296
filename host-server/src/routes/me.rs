//! `GET /users/me/`: the account the bearer token belongs to.

use axum::Json;

use super::docs::ErrorBody;
use super::{CurrentUser, UserOut};

/// The account the bearer token belongs to.
#[utoipa::path(
    get,
    path = "/users/me/",
    operation_id = "read_users_me",
    tag = "accounts",
    security(("OAuth2PasswordBearer" = [])),
    responses(
        (status = 200, description = "The current account", body = UserOut),
        (status = 401, description = "No token, or one that is invalid, expired or revoked", body = ErrorBody,
         headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` for a bad token"))),
        (status = 503, description = "A dependency is unavailable; try again", body = ErrorBody),
    )
)]
pub async fn show(current: CurrentUser) -> Json<UserOut> {
    Json(current.user.into())
}
