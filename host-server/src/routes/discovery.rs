//! Discovery for services that check Loom tokens: the public keys that verify them
//! (`GET /.well-known/jwks.json`, RFC 7517) and the server's metadata
//! (`GET /.well-known/oauth-authorization-server`, RFC 8414).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiError;
use crate::state::AppState;

/// How long a client may keep the key set: short, so a rotation reaches it soon (a client
/// meeting an unknown `kid` should fetch the set again anyway).
const JWKS_MAX_AGE: &str = "public, max-age=60";

/// The public keys that verify Loom tokens today.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "keys",
    operation_id = "jwks",
    responses((status = 200, description = "`{\"keys\": [...]}`: the public JWKs (`kty`, `crv`, `x`, `kid`, `alg`, \
                                           `use`) of every asymmetric key that verifies; never a secret", body = Object))
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let ring = state.tokens.keys.ring();
    let mut response = Json(json!({ "keys": ring.jwks })).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(JWKS_MAX_AGE));
    response
}

/// How long a client may keep the metadata document.
const METADATA_MAX_AGE: &str = "public, max-age=300";

/// Where to log in and where the keys are (RFC 8414): published when the host knows the URL it
/// is reached at (`--public-url`, or its loopback address) and its issuer is that kind of URL.
/// The document never takes anything from the request (no `Host` header reflected).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "keys",
    operation_id = "authorization_server_metadata",
    responses(
        (status = 200, description = "`issuer`, `token_endpoint`, `jwks_uri`, `grant_types_supported`, \
                                      `logout_endpoint`, ...", body = Object),
        (status = 404, description = "Discovery is off: the host has no public URL, or its issuer is not a URL",
         body = super::docs::ErrorBody),
    )
)]
pub async fn metadata(State(state): State<AppState>) -> Result<Response, ApiError> {
    let issuer = &state.tokens.issuer;
    let Some(base) = state.public_url.as_deref() else {
        return Err(ApiError::DiscoveryOff("the host was started without --public-url".into()));
    };
    if let Some(problem) = issuer_problem(issuer) {
        return Err(ApiError::DiscoveryOff(format!("the issuer {problem}")));
    }
    let mut response = Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": ["password", "refresh_token", crate::accounts::pats::TOKEN_EXCHANGE_GRANT],
        "revocation_endpoint": format!("{base}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["none"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "logout_endpoint": format!("{base}/logout"),
        "service_documentation": format!("{base}/docs"),
    }))
    .into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(METADATA_MAX_AGE));
    Ok(response)
}

/// Why `issuer` cannot be published as an RFC 8414 issuer, if it cannot.
fn issuer_problem(issuer: &str) -> Option<String> {
    match url::Url::parse(issuer) {
        Ok(url) => crate::tokens::issuer_url_problem(&url).map(|p| format!("{issuer:?} {p}")),
        Err(_) => Some(format!("{issuer:?} is not a URL (set --issuer to an https:// URL, or leave it unset)")),
    }
}
