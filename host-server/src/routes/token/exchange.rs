//! Token exchange (RFC 8693): a personal access token traded for a short access token, the
//! ordinary EdDSA JWT other services verify by JWKS. It names the personal access token as
//! its `sid`, so the per-request check ends it when the token is revoked, on every host, and it
//! never outlives the token. No refresh token: the machine exchanges again.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Serialize;

use super::super::ApiError;
use super::super::client_auth::client_id;
use super::{Asking, TokenRequest, required};
use crate::accounts::pats::{self, ACCESS_TOKEN_TYPE, PAT_METHOD, Refused, TOKEN_EXCHANGE_GRANT};
use crate::accounts::policy;
use crate::state::AppState;
use crate::telemetry::audit::{self, Event};
use crate::tokens::unix_now;

/// RFC 8693 §2.2.1's answer.
#[derive(Serialize)]
struct Exchanged {
    access_token: String,
    issued_token_type: &'static str,
    token_type: &'static str,
    expires_in: i64,
}

pub(super) async fn grant(state: &AppState, asking: &Asking, request: TokenRequest) -> Result<Response, ApiError> {
    let subject = required(request.subject_token, "subject_token")?;
    let kind = required(request.subject_token_type, "subject_token_type")?;
    if kind != ACCESS_TOKEN_TYPE {
        return Err(ApiError::InvalidSubjectToken(format!(
            "subject_token_type must be {ACCESS_TOKEN_TYPE} (a personal access token)"
        )));
    }
    if request.requested_token_type.as_deref().is_some_and(|asked| asked != ACCESS_TOKEN_TYPE) {
        return Err(ApiError::InvalidSubjectToken(format!(
            "requested_token_type must be {ACCESS_TOKEN_TYPE} when given: only access tokens are issued"
        )));
    }
    let client_id = client_id(request.client_id.as_deref(), asking.basic.as_deref())?;
    let now = unix_now();
    let (address, _) = asking.client();
    let token = subject.expose_secret().as_bytes();
    let standing = match pats::presented(&state.store, token, now, &address).await {
        Ok(standing) => standing,
        Err(Refused::Store(error)) => return Err(error.into()),
        Err(refused) => return Err(ApiError::InvalidSubjectToken(refused.to_string())),
    };
    let mut settings = state.token_settings();
    // Never past the personal access token's own expiry (from the time the token is issued at).
    let left = u32::try_from(standing.expires_at - settings.settings.now).unwrap_or(u32::MAX).max(1);
    settings.settings.ttl_seconds = settings.settings.ttl_seconds.min(left);
    // A personal access token is a login of its own: the policy decides on it, and adds its
    // claims, at each exchange.
    let asker = policy::Asker { address: asking.address, now };
    let (user, methods) = (&standing.user, [PAT_METHOD]);
    policy::login(state.policy(), user, &client_id, &methods, asker).await?;
    let claims = policy::access_claims(state.policy(), user, &client_id, &methods, TOKEN_EXCHANGE_GRANT, asker).await?;
    let mut extra = vec![crate::accounts::sessions::sid_claim(&standing.id)];
    extra.extend(claims);
    let user_id = standing.user.id;
    let issued =
        state.runtime.issue_token(&settings, &user_id.to_string(), &client_id, &extra).await.map_err(|error| {
            tracing::error!(user_id, %error, "the auth component could not issue a token");
            ApiError::Unavailable(error)
        })?;
    audit::record(Event::PatExchanged { user_id, client: asking.address, token_id: &standing.id });
    let body = Exchanged {
        access_token: issued.token,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: "Bearer",
        expires_in: issued.claims.exp - issued.claims.iat,
    };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}
