//! `POST /revoke`: token revocation (RFC 7009). A refresh token or an access token ends the
//! session it belongs to; a token from before sessions is listed by its `jti`. An unknown,
//! expired or foreign token is answered alike (`200`, §2.2): there is nothing to revoke.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::client_auth::basic_client;
use super::docs::OAuthErrorBody;
use super::error::OAuthError;
use super::extract::ApiForm;
use super::{ApiError, ClientAddr};
use crate::state::AppState;
use crate::telemetry::audit::{self, Event};
use crate::tokens::unix_now;

/// A revocation request (RFC 7009 §2.1), as a form.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RevocationRequest {
    /// The refresh token or access token to revoke.
    #[schema(value_type = String, format = Password)]
    token: Option<SecretString>,
    /// `refresh_token` or `access_token`: where to look first (both are looked at).
    #[schema(example = "refresh_token")]
    token_type_hint: Option<String>,
    /// The client asking; accepted as RFC 7009 clients send it, and not checked: holding the
    /// token is what allows revoking it.
    #[allow(dead_code)]
    client_id: Option<String>,
    /// Refused when sent: clients here are public and have no secret.
    #[schema(value_type = Option<String>, format = Password)]
    client_secret: Option<SecretString>,
}

/// Revoke a refresh token or an access token: the session it belongs to ends.
#[utoipa::path(
    post,
    path = "/revoke",
    operation_id = "revoke_token",
    tag = "sessions",
    request_body(content = RevocationRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or there was nothing to revoke (RFC 7009 §2.2)"),
        (status = 401, description = "HTTP Basic client authentication with a secret", body = OAuthErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = OAuthErrorBody),
        (status = 422, description = "Not a form, `token` is missing, or a field is sent twice", body = OAuthErrorBody),
        (status = 503, description = "A dependency is unavailable; try again", body = OAuthErrorBody),
    )
)]
#[tracing::instrument(name = "revoke", skip_all)]
pub async fn revoke(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    request: Result<ApiForm<RevocationRequest>, ApiError>,
) -> Result<Response, OAuthError> {
    basic_client(&headers).map_err(OAuthError)?;
    let ApiForm(request) = request.map_err(OAuthError)?;
    super::client_auth::no_form_secret(request.client_secret.as_ref()).map_err(OAuthError)?;
    let token =
        request.token.ok_or_else(|| OAuthError(ApiError::Validation("Invalid form: missing field `token`".into())))?;
    let access_first = request.token_type_hint.as_deref() == Some("access_token");
    revoke_token(&state, client, &token, access_first).await.map_err(OAuthError)?;
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn revoke_token(
    state: &AppState,
    client: std::net::IpAddr,
    token: &SecretString,
    access_first: bool,
) -> Result<(), ApiError> {
    // A personal access token revokes itself: whoever holds one (a leak found in a log) may end it.
    if crate::accounts::pats::is_pat(token.expose_secret().as_bytes()) {
        return revoke_pat(state, client, token).await;
    }
    if access_first {
        if !revoke_access(state, client, token).await? {
            revoke_refresh(state, client, token).await?;
        }
    } else if !revoke_refresh(state, client, token).await? {
        revoke_access(state, client, token).await?;
    }
    Ok(())
}

/// Ends the session `token` is the current or just-spent refresh token of; whether it is one.
async fn revoke_refresh(state: &AppState, client: std::net::IpAddr, token: &SecretString) -> Result<bool, ApiError> {
    use crate::accounts::sessions::Presented;
    // Any token of a session's family names it (a spent one too: RFC 7009 lets the whole grant
    // end); one from before families is found by its digest.
    let found = match crate::accounts::sessions::read_token(state.tokens.keys.sealer(), token.expose_secret()) {
        Presented::Family { session, .. } => state.store.session(&session).await?,
        Presented::Forged => None,
        Presented::Unfamiliar => {
            let digest = crate::accounts::sessions::digest(token.expose_secret());
            match state.store.session_by_refresh(&digest).await? {
                Some(found) => Some(found),
                None => state.store.session_by_previous(&digest).await?,
            }
        }
    };
    let Some((session, _)) = found else { return Ok(false) };
    if state.store.revoke_session(&session.id, None, unix_now()).await? {
        let user_id = session.user_id;
        audit::record(Event::SessionRevoked { user_id, client: Some(client), how: "revoke", count: 1 });
    }
    Ok(true)
}

/// Ends the session of the access token `token` (lists its `jti` when it has none); whether it
/// is one this host accepts.
async fn revoke_access(state: &AppState, client: std::net::IpAddr, token: &SecretString) -> Result<bool, ApiError> {
    let Ok(claims) = state.tokens.verify(&state.runtime, token.expose_secret().as_bytes()).await else {
        return Ok(false);
    };
    let Ok(user_id) = claims.sub.parse::<i64>() else { return Ok(false) };
    match crate::accounts::sessions::sid_of(&claims.extra) {
        // Exchanged from a personal access token: it belongs to that token, which ends.
        Ok(Some(sid)) if sid.starts_with(crate::accounts::pats::ID_PREFIX) => {
            if state.store.revoke_pat(user_id, &sid, unix_now()).await?.is_some() {
                audit::record(Event::PatRevoked { user_id, client: Some(client), how: "revoke", count: 1 });
            }
        }
        Ok(Some(session)) => {
            if state.store.revoke_session(&session, Some(user_id), unix_now()).await? {
                audit::record(Event::SessionRevoked { user_id, client: Some(client), how: "revoke", count: 1 });
            }
        }
        Ok(None) => state.store.revoke_token(&claims.jti, crate::tokens::revocation_expiry(claims.exp)).await?,
        Err(_) => return Ok(false),
    }
    Ok(true)
}

/// Ends the personal access token `token`, if it is a live one (unknown or malformed: nothing to
/// do, as RFC 7009 §2.2 answers).
async fn revoke_pat(state: &AppState, client: std::net::IpAddr, token: &SecretString) -> Result<(), ApiError> {
    let bytes = token.expose_secret().as_bytes();
    if !crate::accounts::pats::well_formed(bytes) {
        return Ok(());
    }
    let digest = crate::accounts::pats::digest(token.expose_secret());
    if let Some(found) = state.store.pat_by_digest(&digest).await?
        && state.store.revoke_pat(found.user.id, &found.id, unix_now()).await?.is_some()
    {
        audit::record(Event::PatRevoked { user_id: found.user.id, client: Some(client), how: "revoke", count: 1 });
    }
    Ok(())
}
