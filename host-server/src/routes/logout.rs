//! `POST /logout`: revoke the bearer token on the server (`?scope=global`:
//! every token issued to its user so far). Every host on the database refuses
//! a revoked token from its next request on.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{ApiError, ClientAddr, CurrentUser};
use crate::state::AppState;
use crate::telemetry::audit::{self, Event};
use crate::tokens::unix_now;

#[derive(Deserialize)]
pub struct LogoutScope {
    scope: Option<String>,
}

#[tracing::instrument(name = "logout", skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    CurrentUser(user, claims): CurrentUser,
    scope: Result<Query<LogoutScope>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let global = match scope.map(|Query(q)| q.scope) {
        Ok(None) => false,
        Ok(Some(scope)) if scope == "global" => true,
        _ => return Err(ApiError::Validation(r#"scope must be "global" when given"#.into())),
    };
    state.store.revoke_token(&claims.jti, claims.exp).await?;
    if global {
        state.store.revoke_all_tokens(user.id, unix_now()).await?;
    }
    audit::record(Event::TokenRevoked { user_id: user.id, client, global });
    Ok(StatusCode::NO_CONTENT)
}
