//! `POST /token`: the OAuth2 password grant (RFC 6749 §4.3), as a form.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::too_long_password;
use super::extract::ApiForm;
use super::{ApiError, MAX_PASSWORD_BYTES};
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct PasswordGrant {
    username: String,
    password: String,
    grant_type: Option<String>,
}

#[derive(Serialize)]
struct TokenOut {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
}

#[tracing::instrument(name = "token", skip_all)]
pub async fn issue(
    State(state): State<AppState>,
    ApiForm(grant): ApiForm<PasswordGrant>,
) -> Result<Response, ApiError> {
    if grant.grant_type.as_deref().is_some_and(|g| g != "password") {
        return Err(ApiError::Validation(r#"grant_type must be "password""#.into()));
    }
    if grant.password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::Validation(too_long_password()));
    }
    let user = state.store.user_by_email(&grant.username).await?;
    // An unknown user costs the same argon2 work as a known one, so the answer's
    // timing does not reveal which addresses have accounts.
    let phc = match &user {
        Some(user) => user.password_hash.clone(),
        None => state.dummy_hash().await?,
    };
    let password = grant.password;
    let check = state.runtime.verify_password(password.clone(), phc).await?;
    let user = match user {
        Some(user) if check.matches && user.is_active => user,
        _ => return Err(ApiError::BadCredentials),
    };
    if check.needs_rehash {
        upgrade_hash(&state, user.id, password).await;
    }
    let issued = state.runtime.issue_token(&state.token_settings(), &user.id.to_string())?;
    tracing::info!(user_id = user.id, "issued an access token");
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

/// Stores a fresh hash made with the active component's (stronger) parameters.
/// A failure only postpones the upgrade to the next login.
async fn upgrade_hash(state: &AppState, user_id: i64, password: String) {
    let result = match state.runtime.hash_password(password).await {
        Ok(hash) => state.store.update_password_hash(user_id, &hash).await.map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    match result {
        Ok(()) => tracing::info!(user_id, "upgraded a password hash to the current parameters"),
        Err(error) => tracing::warn!(user_id, %error, "could not upgrade a password hash"),
    }
}
