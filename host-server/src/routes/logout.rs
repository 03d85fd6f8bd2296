//! `POST /logout`: revoke the bearer token on the server (`?scope=global`:
//! every token issued to its user so far). Every host on the database refuses
//! a revoked token from its next request on.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::docs::ErrorBody;
use super::{ApiError, ClientAddr, CurrentUser};
use crate::state::AppState;
use crate::telemetry::audit::{self, Event};
use crate::tokens::unix_now;

#[derive(Deserialize)]
pub struct LogoutScope {
    scope: Option<String>,
}

/// Which tokens a logout revokes besides the one it is made with.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the `scope` parameter, which is read as text for a clear error
pub enum Scope {
    /// Every token issued to the account so far, on every device.
    Global,
}

/// Log out: revoke the bearer token (with `scope=global`, every token of the account).
#[utoipa::path(
    post,
    path = "/logout",
    operation_id = "logout",
    tag = "accounts",
    security(("OAuth2PasswordBearer" = [])),
    params(("scope" = inline(Option<Scope>), Query, description = "`global`: revoke every token of the account")),
    responses(
        (status = 204, description = "Revoked; every host refuses the token from its next request on"),
        (status = 401, description = "No token, or one that is invalid, expired or revoked", body = ErrorBody,
         headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` for a bad token"))),
        (status = 422, description = "`scope` is not `global`", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; try again", body = ErrorBody),
    )
)]
#[tracing::instrument(name = "logout", skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    CurrentUser(user, claims): CurrentUser,
    scope: Result<Query<LogoutScope>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, ApiError> {
    // A parameter without a value is as if omitted, as at the token endpoint (RFC 6749 §3.2).
    let global = match scope.map(|Query(q)| q.scope.filter(|s| !s.is_empty())) {
        Ok(None) => false,
        Ok(Some(scope)) if scope == "global" => true,
        _ => return Err(ApiError::Validation(r#"scope must be "global" when given"#.into())),
    };
    state.store.revoke_token(&claims.jti, crate::tokens::revocation_expiry(claims.exp)).await?;
    if global {
        state.store.revoke_all_tokens(user.id, unix_now()).await?;
    }
    audit::record(Event::TokenRevoked { user_id: user.id, client, global });
    Ok(StatusCode::NO_CONTENT)
}
