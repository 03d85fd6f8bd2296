//! `GET /users/me/`: the account the bearer token belongs to.

use axum::Json;

use super::{CurrentUser, UserOut};

pub async fn show(CurrentUser(user, _): CurrentUser) -> Json<UserOut> {
    Json(user.into())
}
