//! The refresh grant (RFC 6749 §6): a session's current refresh token for a new access token
//! and the next refresh token; see [`crate::accounts::sessions`] for rotation, grace and replays.

use axum::response::Response;

use super::super::ApiError;
use super::super::client_auth::client_id;
use super::{Asking, TokenRequest, client_of, required, respond};
use crate::accounts::policy;
use crate::accounts::sessions::Refusal;
use crate::state::AppState;
use crate::store::SessionRow;
use crate::telemetry::audit::{self, Event};
use crate::tokens::unix_now;

pub(super) async fn grant(state: &AppState, asking: &Asking, request: TokenRequest) -> Result<Response, ApiError> {
    let presented = required(request.refresh_token, "refresh_token")?;
    // A client is checked only when the request names one: then it must be the session's.
    let named = request.client_id.is_some() || asking.basic.is_some();
    let client_id = named.then(|| client_id(request.client_id.as_deref(), asking.basic.as_deref())).transpose()?;
    let now = unix_now();
    let (address, user_agent) = asking.client();
    let sealer = state.tokens.keys.sealer();
    let client = client_of(&address, user_agent);
    // With a policy, it decides before the rotation, so a refusal or a fault leaves the
    // refresh token unspent (the client may simply try again).
    let ahead = match state.policy() {
        Some(_) => state.sessions.current(&state.store, sealer, &presented, now).await?,
        None => None,
    };
    let decided = match &ahead {
        Some(session) => Some((session.id.clone(), claims_for(state, session, asking, now).await?)),
        None => None,
    };
    match state.sessions.refresh(&state.store, sealer, &presented, client_id.as_deref(), &client, now).await? {
        Ok(granted) => {
            let (user_id, retried) = (granted.session.user_id, granted.retried);
            audit::record(Event::SessionRefreshed { user_id, client: asking.address, retried });
            let claims = match decided {
                Some((id, claims)) if id == granted.session.id => claims,
                // A retry within the grace (nothing rotates), or a race: decided now.
                _ => claims_for(state, &granted.session, asking, now).await?,
            };
            respond(state, &granted, now, claims).await
        }
        Err(Refusal::Invalid) => {
            crate::telemetry::measure::refresh_refused();
            Err(ApiError::InvalidGrant("The refresh token is invalid, expired, revoked or already used".into()))
        }
        Err(Refusal::Reused { user_id, .. }) => {
            audit::record(Event::RefreshReused { user_id, client: asking.address });
            Err(ApiError::InvalidGrant(
                "The refresh token was already used by another copy of this login, so its session has ended: log \
                 in again"
                    .into(),
            ))
        }
    }
}

/// The policy's word on a refreshed session: its login decision again (so an account the
/// policy now refuses loses its access within one access token's lifetime) and the claims of
/// its next access token; none of it, and no read, without a policy.
async fn claims_for(
    state: &AppState,
    session: &SessionRow,
    asking: &Asking,
    now: i64,
) -> Result<Vec<(String, String)>, ApiError> {
    if state.policy().is_none() {
        return Ok(Vec::new());
    }
    let Some(user) = state.store.user_by_id(session.user_id).await? else {
        return Err(ApiError::InvalidGrant("The refresh token is invalid, expired, revoked or already used".into()));
    };
    let methods: Vec<&str> = session.amr.split_whitespace().collect();
    let asker = policy::Asker { address: asking.address, now };
    policy::login(state.policy(), &user, &session.client_id, &methods, asker).await?;
    Ok(policy::access_claims(state.policy(), &user, &session.client_id, &methods, "refresh_token", asker).await?)
}
