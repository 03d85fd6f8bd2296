//! `POST /token`: the OAuth2 password grant (RFC 6749 §4.3), as a form.
//!
//! Failures keep FastAPI's status and `{"detail"}` and add RFC 6749 §5.2's
//! `error` fields ([`OAuthError`]).

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::client_auth::{basic_client, client_id};
use super::docs::OAuthErrorBody;
use super::error::OAuthError;
use super::extract::ApiForm;
use super::{ApiError, ClientAddr};
use crate::credentials::Stored;
use crate::state::AppState;
use crate::store::{Login, email_key};
use crate::telemetry::audit::{self, Event};
use crate::throttle::Gate;

/// The OAuth2 password grant (RFC 6749 §4.3.2), as a form.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordGrant {
    /// The account's email or username.
    #[schema(example = "ada@example.com")]
    username: String,
    /// Redacted in `Debug`, wiped from memory when dropped.
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    /// `password` when given.
    #[schema(example = "password")]
    grant_type: Option<String>,
    /// The client asking (RFC 6749 §2.2), written into the token's `client_id` claim;
    /// `loom` when not given. Up to 128 printable ASCII characters. A client may instead
    /// authenticate with HTTP Basic and an empty secret (RFC 6749 §2.3.1).
    #[schema(example = "loom-cli", max_length = 128)]
    client_id: Option<String>,
}

/// Longest login name accepted: an email address has at most 254 (RFC 5321), a username 32.
const MAX_LOGIN_NAME_BYTES: usize = 320;

/// An access token (RFC 6749 §5.1).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenOut {
    /// A JWT, to send as `Authorization: Bearer <token>`.
    access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 1800)]
    expires_in: i64,
}

/// Log in: exchange an email (or username) and password for an access token.
#[utoipa::path(
    post,
    path = "/token",
    operation_id = "login_for_access_token",
    tag = "accounts",
    request_body(content = PasswordGrant, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Logged in", body = TokenOut),
        (status = 401, description = "Wrong email, username or password, or a deactivated account",
         body = OAuthErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 413, description = "The body is larger than 64 KiB", body = OAuthErrorBody),
        (status = 422, description = "Not a form, a field is missing, or grant_type is not `password`",
         body = OAuthErrorBody),
        (status = 429, description = "Too many failed logins for this account or address", body = OAuthErrorBody,
         headers(("Retry-After" = u64, description = "Seconds until a login may succeed"))),
        (status = 503, description = "Busy or a dependency is unavailable; try again", body = OAuthErrorBody),
    )
)]
#[tracing::instrument(name = "token", skip_all)]
pub async fn issue(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    grant: Result<ApiForm<PasswordGrant>, ApiError>,
) -> Result<Response, OAuthError> {
    let basic = basic_client(&headers).map_err(OAuthError)?;
    let ApiForm(grant) = grant.map_err(OAuthError)?;
    password_grant(&state, client, grant, basic).await.map_err(OAuthError)
}

async fn password_grant(
    state: &AppState,
    client: IpAddr,
    grant: PasswordGrant,
    basic: Option<String>,
) -> Result<Response, ApiError> {
    if grant.grant_type.as_deref().is_some_and(|g| g != "password") {
        return Err(ApiError::UnsupportedGrantType);
    }
    let spellings = crate::password::spellings(&grant.password)?;
    let client_id = client_id(grant.client_id.as_deref(), basic.as_deref())?;
    // `username` is an email address or a username (pasted ones come with spaces around
    // them, which neither has). Attempts count against the account (under its email key,
    // whichever name was used) or, when none matches, against the name; before any
    // hashing, so a throttled attempt costs no argon2 run and says nothing about the account.
    let name = grant.username.trim();
    if name.len() > MAX_LOGIN_NAME_BYTES {
        return Err(ApiError::Validation(format!("username must be at most {MAX_LOGIN_NAME_BYTES} bytes")));
    }
    let login = Login::parse(name);
    let user = state.store.user_by_login(&login).await?;
    let account = user.as_ref().map_or_else(|| login.key(), |user| email_key(&user.email));
    let attempt = match state.throttle.admit_login(&state.store, account, client).await? {
        Gate::Open(attempt) => attempt,
        Gate::Throttled { retry_after } => {
            audit::record(Event::LoginThrottled { client });
            return Err(ApiError::too_many_logins(retry_after));
        }
        Gate::Crowded { on } => {
            audit::record(Event::LoginThrottled { client });
            return Err(ApiError::too_many_logins_at_once(on));
        }
    };
    let stored = user.as_ref().map(|user| Stored { user_id: user.id, hash: &user.hashed_password });
    let verdict = state.credentials.check(&state.runtime, stored, &spellings).await?;
    let user = match user {
        Some(user) if verdict.matches && user.is_active => user,
        other => {
            attempt.failed().await?;
            audit::record(Event::LoginFailed { user_id: other.map(|user| user.id), client });
            verdict.pad().await;
            return Err(ApiError::BadCredentials);
        }
    };
    attempt.succeeded().await?;
    if verdict.needs_rehash {
        let normalized = spellings.into_iter().next().expect("a password has a spelling");
        upgrade_hash(state, user.id, &verdict.checked_hash, normalized).await;
    }
    // The password was right: a failure from here on is the service's, not the user's.
    let issued = state.runtime.issue_token(&state.token_settings(), &user.id.to_string(), &client_id).await.map_err(
        |error| {
            tracing::error!(user_id = user.id, %error, "the auth component could not issue a token");
            ApiError::Unavailable(error)
        },
    )?;
    audit::record(Event::LoginSucceeded { user_id: user.id, client });
    let body = TokenOut {
        access_token: issued.token,
        token_type: "bearer",
        expires_in: issued.claims.exp - issued.claims.iat,
    };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Stores a fresh hash made with the active component's (stronger) parameters,
/// unless the stored hash changed since `checked` was verified (the password was
/// changed meanwhile: the newer one wins). A failure only postpones the upgrade.
async fn upgrade_hash(state: &AppState, user_id: i64, checked: &str, password: SecretString) {
    let result = match state.runtime.hash_password(password).await {
        Ok(hash) => state.store.replace_password_hash(user_id, checked, &hash).await.map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    match result {
        Ok(true) => tracing::info!(user_id, "upgraded a password hash to the current parameters"),
        Ok(false) => tracing::info!(user_id, "kept a password hash that changed during the upgrade"),
        Err(error) => tracing::warn!(user_id, %error, "could not upgrade a password hash"),
    }
}
