//! `POST /logout`: end the bearer token's session, its refresh token with it (`?scope=global`:
//! every session of its user). Every host on the database refuses the session's tokens from
//! its next request on.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::docs::ErrorBody;
use super::{ApiError, ClientAddr, PasswordLogin};
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
    /// Every session of the account, on every device.
    Global,
}

/// Log out: end the bearer token's session and its refresh token (with `scope=global`, every
/// session of the account).
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
        (status = 403, description = "Needs a password login: the caller is a personal access token, or was \
                                      exchanged from one", body = ErrorBody),
        (status = 422, description = "`scope` is not `global`", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; try again", body = ErrorBody),
    )
)]
#[tracing::instrument(name = "logout", skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    PasswordLogin(current): PasswordLogin,
    scope: Result<Query<LogoutScope>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, ApiError> {
    // A parameter without a value is as if omitted, as at the token endpoint (RFC 6749 §3.2).
    let global = match scope.map(|Query(q)| q.scope.filter(|s| !s.is_empty())) {
        Ok(None) => false,
        Ok(Some(scope)) if scope == "global" => true,
        _ => return Err(ApiError::Validation(r#"scope must be "global" when given"#.into())),
    };
    let (user, now) = (&current.user, unix_now());
    let mut ended = 0;
    match (current.session(), &current.claims) {
        // The session ends, its refresh token and every access token it had with it.
        (Some(session), _) => ended += u64::from(state.store.revoke_session(session, Some(user.id), now).await?),
        // A token from before sessions: its `jti` is listed until it can no longer be accepted.
        (None, Some(claims)) => {
            state.store.revoke_token(&claims.jti, crate::tokens::revocation_expiry(claims.exp)).await?;
        }
        (None, None) => {}
    }
    if global {
        // Every session, whenever it began (no clock comparison), and tokens from before sessions.
        ended += state.store.revoke_sessions_of(user.id, None, now).await?;
        state.store.revoke_all_tokens(user.id, now).await?;
    }
    let how = if global { "logout-global" } else { "logout" };
    audit::record(Event::SessionRevoked { user_id: user.id, client: Some(client), how, count: ended });
    audit::record(Event::TokenRevoked { user_id: user.id, client, global });
    Ok(StatusCode::NO_CONTENT)
}
