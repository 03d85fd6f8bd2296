//! Discovery for services that check Loom tokens: the public keys that verify them
//! (`GET /.well-known/jwks.json`, RFC 7517) and the server's metadata
//! (`GET /.well-known/oauth-authorization-server`, RFC 8414).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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

/// Where to log in and where the keys are (RFC 8414).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "keys",
    operation_id = "authorization_server_metadata",
    responses((status = 200, description = "`issuer`, `token_endpoint`, `jwks_uri`, `grant_types_supported`, \
                                           `logout_endpoint`, ...", body = Object))
)]
pub async fn metadata(State(state): State<AppState>, headers: HeaderMap) -> Json<serde_json::Value> {
    let base = state.public_url.clone().unwrap_or_else(|| {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        format!("http://{host}")
    });
    Json(json!({
        "issuer": state.tokens.issuer,
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": ["password"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA", "HS256"],
        "logout_endpoint": format!("{base}/logout"),
        "service_documentation": format!("{base}/docs"),
    }))
}
