//! `POST /users/me/password`: change the caller's password. The current password is checked
//! like a login (it is a password oracle: throttled, padded); success ends every other
//! session of the account.

use axum::extract::State;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;

use super::docs::ErrorBody;
use super::extract::ApiJson;
use super::{ApiError, ClientAddr, PasswordLogin};
use crate::accounts::credentials::Authentication;
use crate::state::AppState;
use crate::store::email_key;
use crate::telemetry::audit::{self, Event};
use crate::tokens::unix_now;

/// A password change.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    /// The password now. Redacted in `Debug`, wiped from memory when dropped.
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    /// The new password: at least 8 characters and at most 1024 bytes, and not a commonly used one.
    #[schema(value_type = String, format = Password, min_length = 8)]
    new_password: SecretString,
}

/// Change the password; every other session of the account ends.
#[utoipa::path(
    post,
    path = "/users/me/password",
    operation_id = "change_password",
    tag = "sessions",
    security(("OAuth2PasswordBearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; every other session has ended"),
        (status = 400, description = "The current password is wrong", body = ErrorBody),
        (status = 401, description = "No token, or one that is invalid, expired or revoked", body = ErrorBody,
         headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` for a bad token"))),
        (status = 403, description = "Needs a password login: the caller is a personal access token, or was \
                                      exchanged from one", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 422, description = "Not a JSON object, or the new password is not acceptable (the detail says why)",
         body = ErrorBody),
        (status = 429, description = "Too many failed password checks for this account or address", body = ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds until a check may succeed"))),
        (status = 503, description = "Busy or a dependency is unavailable; try again", body = ErrorBody),
    )
)]
#[tracing::instrument(name = "change_password", skip_all)]
pub async fn change(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    PasswordLogin(current): PasswordLogin,
    ApiJson(change): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let new = crate::accounts::password::new_password(&change.new_password)?;
    let user = &current.user;
    confirm(&state, client, user, &change.current_password, "The current password is incorrect").await?;
    let hash = state.runtime.hash_password(new).await?;
    state.store.set_password_hash(user.id, &hash).await?;
    let now = unix_now();
    let ended = state.store.revoke_sessions_of(user.id, current.session(), now).await?;
    // Tokens from before sessions, which no session ends, whatever the caller holds: a caller
    // with a session goes on with it; one with such a token has ended its own too (it has no
    // session to keep, and logs in again with the new password).
    state.store.revoke_all_tokens(user.id, now).await?;
    audit::record(Event::PasswordChanged { user_id: user.id, client });
    audit::record(Event::SessionRevoked {
        user_id: user.id,
        client: Some(client),
        how: "password-change",
        count: ended,
    });
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's own password, checked like a login (throttled, padded) before an action that
/// needs it: the hash it was checked against, and its spellings. `wrong` is the `400`'s detail.
pub(super) async fn confirm(
    state: &AppState,
    client: std::net::IpAddr,
    user: &crate::store::User,
    password: &SecretString,
    wrong: &'static str,
) -> Result<(String, Vec<SecretString>), ApiError> {
    let spellings = crate::accounts::password::spellings(password)?;
    let checked = state
        .credentials
        .authenticate(
            &state.runtime,
            &state.store,
            &state.throttle,
            Some(user),
            email_key(&user.email),
            &spellings,
            client,
            // For an account with two-factor login, held and taken back: a right password here
            // never clears the failures wrong codes made (one who has the password could reset
            // the count and walk codes).
            crate::accounts::second_factor::required(&state.store, user.id).await?,
        )
        .await?;
    match checked {
        Authentication::Passed { checked_hash, pending, .. } => {
            if let Some(pending) = pending {
                pending.withdrawn().await?;
            }
            Ok((checked_hash, spellings))
        }
        Authentication::Failed => Err(ApiError::WrongPassword(wrong)),
        Authentication::Throttled { retry_after } => Err(ApiError::too_many_logins(retry_after)),
        Authentication::Crowded { on } => Err(ApiError::too_many_logins_at_once(on)),
    }
}
