//! `/users/me/tokens`: personal access tokens for machines (CI, remote runs). Made with the
//! account's password by a password login (a stolen 30-minute access token cannot make one),
//! shown once, listed without their secret, revoked at once on every host.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::docs::ErrorBody;
use super::extract::ApiJson;
use super::sessions::rfc3339;
use super::{ApiError, ClientAddr, CurrentUser, PasswordLogin};
use crate::accounts::credentials::MAX_RECHECKS;
use crate::accounts::pats::{self, Credential, PatRefusal};
use crate::state::AppState;
use crate::store::{Login, NewPat, NotMade, PatRow};
use crate::telemetry::audit::{self, Event};
use crate::tokens::unix_now;

/// A token to make.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    /// What the token is for, to recognise it by: 1–64 printable characters, unique among the
    /// account's live tokens.
    #[schema(example = "ci", min_length = 1, max_length = 64)]
    name: String,
    /// The account's password (a token outlives every session). Redacted in `Debug`.
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    /// Days until the token expires: 1 to the host's maximum (366 by default); 30 when not given.
    #[schema(example = 30, minimum = 1)]
    expires_in_days: Option<i64>,
    /// For an account with two-factor login: a code from the authenticator app, or a recovery code.
    #[schema(value_type = Option<String>, format = Password, example = "123456")]
    code: Option<SecretString>,
}

/// A token just made: the only time its value is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenCreated {
    #[schema(example = "pat_1f0e4c2b9a8d7e6f5a4b3c2d1e0f9a8b")]
    id: String,
    #[schema(example = "ci")]
    name: String,
    /// `loom_pat_` and 38 letters and digits (the last 6 a checksum). Keep it as secret as a password.
    #[schema(example = "loom_pat_4Xq0bT9mZr2LwKc8sVn1Hy6PdJf3Ge7A0ulP9x")]
    token: String,
    /// RFC 3339, UTC.
    created_at: String,
    expires_at: String,
    /// Always `null` for a new token.
    last_used_at: Option<String>,
}

/// A live token, as its owner lists it: never its value.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenOut {
    id: String,
    name: String,
    /// The token's first characters, to recognise it by (`loom_pat_4Xq0`).
    #[schema(example = "loom_pat_4Xq0")]
    prefix: String,
    created_at: String,
    expires_at: String,
    /// `null` until first used; updated at most once a minute.
    last_used_at: Option<String>,
    /// The address of that use.
    last_used_from: Option<String>,
}

impl From<PatRow> for TokenOut {
    fn from(row: PatRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            prefix: row.shown,
            created_at: rfc3339(row.created_at),
            expires_at: rfc3339(row.expires_at),
            last_used_at: row.last_used_at.map(rfc3339),
            last_used_from: row.last_address,
        }
    }
}

/// Make a personal access token: for CI and other machines, as `Authorization: Bearer`, or
/// traded at `/token` for short access tokens (RFC 8693 token exchange).
#[utoipa::path(
    post,
    path = "/users/me/tokens",
    operation_id = "create_personal_token",
    tag = "tokens",
    security(("OAuth2PasswordBearer" = [])),
    request_body = NewToken,
    responses(
        (status = 201, description = "Made; the value is in this answer only", body = TokenCreated),
        (status = 400, description = "The password is wrong", body = ErrorBody),
        (status = 401, description = "No valid token; or a wrong, stale or used second factor", body = ErrorBody),
        (status = 403, description = "The caller is a personal access token (or was exchanged from one), or a second factor is needed", body = ErrorBody),
        (status = 409, description = "A live token has this name, or the account holds as many as it may", body = ErrorBody),
        (status = 422, description = "The name or the number of days is not acceptable", body = ErrorBody),
        (status = 429, description = "Too many failed password checks", body = ErrorBody),
        (status = 503, description = "Busy or a dependency is unavailable; try again", body = ErrorBody),
    )
)]
#[tracing::instrument(name = "create_token", skip_all)]
pub async fn create(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    PasswordLogin(current): PasswordLogin,
    ApiJson(asked): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    let refusal = |refusal: PatRefusal| ApiError::Validation(refusal.to_string());
    let name = pats::name(&asked.name).map_err(refusal)?.to_owned();
    let days = state.pats.lifetime_days(asked.expires_in_days).map_err(refusal)?;
    let user = &current.user;
    let (mut checked_hash, spellings) =
        super::password::confirm(&state, client, user, &asked.password, "The password is incorrect").await?;
    super::second_factor::code_if_required(&state, client, user.id, &user.email, asked.code.as_ref()).await?;
    let minted = pats::mint().map_err(|e| ApiError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
    let now = unix_now();
    let expires_at = now + days * 86_400;
    let max_live = i64::from(state.pats.max_per_user);
    let mut rechecks = 0;
    loop {
        let new = NewPat {
            id: &minted.id,
            user_id: user.id,
            name: &name,
            digest: &minted.digest,
            shown: &minted.shown,
            now,
            expires_at,
            checked_hash: &checked_hash,
            max_live,
        };
        match state.store.create_pat(&new).await? {
            Ok(()) => break,
            Err(NotMade::NameTaken) => return Err(ApiError::PatNameTaken(name)),
            Err(NotMade::Full) => return Err(ApiError::TooManyPats(state.pats.max_per_user)),
            Err(NotMade::CredentialsChanged) => {
                // A login's upgrade of the hash is no password change: the new hash is checked.
                let login = Login::parse(&user.email);
                let still = state.credentials.still_matches(
                    &state.runtime,
                    &state.store,
                    &login,
                    user.id,
                    &checked_hash,
                    &spellings,
                );
                match still.await? {
                    Some(hash) if rechecks < MAX_RECHECKS => (checked_hash, rechecks) = (hash, rechecks + 1),
                    _ => return Err(ApiError::WrongPassword("The password is incorrect")),
                }
            }
        }
    }
    audit::record(Event::PatCreated { user_id: user.id, client, token_id: &minted.id });
    let created = TokenCreated {
        id: minted.id,
        name,
        token: pats::reveal(&minted.token),
        created_at: rfc3339(now),
        expires_at: rfc3339(expires_at),
        last_used_at: None,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// List the live personal access tokens, newest first, without their values.
#[utoipa::path(
    get,
    path = "/users/me/tokens",
    operation_id = "list_personal_tokens",
    tag = "tokens",
    security(("OAuth2PasswordBearer" = [])),
    responses(
        (status = 200, description = "The live tokens, newest first", body = [TokenOut]),
        (status = 401, description = "No token, or one that is invalid, expired or revoked", body = ErrorBody),
        (status = 403, description = "The caller is a personal access token, or was exchanged from one", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; try again", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    PasswordLogin(current): PasswordLogin,
) -> Result<Json<Vec<TokenOut>>, ApiError> {
    let rows = state.store.list_pats(current.user.id, unix_now()).await?;
    Ok(Json(rows.into_iter().map(TokenOut::from).collect()))
}

/// The personal access token this request is made with, or that the access token presented
/// was exchanged from (for a machine to see its name and how long it has left).
#[utoipa::path(
    get,
    path = "/users/me/tokens/current",
    operation_id = "current_personal_token",
    tag = "tokens",
    security(("OAuth2PasswordBearer" = [])),
    responses(
        (status = 200, description = "The token the caller holds", body = TokenOut),
        (status = 401, description = "No token, or one that is invalid, expired or revoked", body = ErrorBody),
        (status = 404, description = "The request is made with a password login, not a personal access token",
         body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; try again", body = ErrorBody),
    )
)]
pub async fn current(State(state): State<AppState>, current: CurrentUser) -> Result<Json<TokenOut>, ApiError> {
    let Credential::Pat { id } = &current.credential else {
        return Err(ApiError::NotAPat);
    };
    let rows = state.store.list_pats(current.user.id, unix_now()).await?;
    // Revoked or expired since the check a moment ago: as if the check had come now.
    let row = rows.into_iter().find(|row| &row.id == id).ok_or(ApiError::InvalidToken)?;
    Ok(Json(row.into()))
}

/// Revoke a personal access token: every host refuses it, and the access tokens exchanged
/// from it, from its next request on.
#[utoipa::path(
    delete,
    path = "/users/me/tokens/{id}",
    operation_id = "revoke_personal_token",
    tag = "tokens",
    security(("OAuth2PasswordBearer" = [])),
    params(("id" = String, Path, description = "The token's id, as `GET /users/me/tokens` lists it")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No token, or one that is invalid, expired or revoked", body = ErrorBody),
        (status = 403, description = "The caller is a personal access token, or was exchanged from one", body = ErrorBody),
        (status = 404, description = "The caller has no live token with this id", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; try again", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    PasswordLogin(current): PasswordLogin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    // Another account's token is as unknown as one that never was.
    if state.store.revoke_pat(current.user.id, &id, unix_now()).await?.is_none() {
        return Err(ApiError::NoSuchPat);
    }
    audit::record(Event::PatRevoked { user_id: current.user.id, client: Some(client), how: "delete", count: 1 });
    Ok(StatusCode::NO_CONTENT)
}
