//! `POST /token`: the OAuth 2.0 token endpoint, as a form: the password grant (RFC 6749 §4.3),
//! which starts a session, the refresh grant (§6), which rotates its refresh token, and token
//! exchange (RFC 8693), which trades a personal access token for a short access token.
//!
//! Failures keep FastAPI's status and `{"detail"}` and add RFC 6749 §5.2's
//! `error` fields ([`OAuthError`]). Every answer is `Cache-Control: no-store`.

mod exchange;
mod password;
mod refresh;

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::client_auth::basic_client;
use super::docs::OAuthErrorBody;
use super::error::OAuthError;
use super::extract::ApiForm;
use super::{ApiError, ClientAddr};
use crate::accounts::sessions::{Client, Granted};
use crate::state::AppState;

/// A token request (RFC 6749 §4.3.2 and §6), as a form. Which fields it needs depends on
/// `grant_type`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    /// `password` (the default), `refresh_token`, or
    /// `urn:ietf:params:oauth:grant-type:token-exchange`.
    #[schema(example = "password")]
    grant_type: Option<String>,
    /// Password grant: the account's email or username.
    #[schema(example = "ada@example.com")]
    username: Option<String>,
    /// Password grant: the password. Redacted in `Debug`, wiped from memory when dropped.
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<SecretString>,
    /// Refresh grant: the refresh token a previous answer gave (it is spent by this one).
    #[schema(value_type = Option<String>, format = Password)]
    refresh_token: Option<SecretString>,
    /// Password grant, for an account with two-factor login: the 6-digit code from the
    /// authenticator app, or an unused recovery code. Without it such an account's right
    /// password answers `403` with `error: mfa_required`.
    #[schema(value_type = Option<String>, format = Password, example = "123456")]
    otp: Option<SecretString>,
    /// Token exchange: a personal access token (`loom_pat_…`).
    #[schema(value_type = Option<String>, format = Password)]
    subject_token: Option<SecretString>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token`.
    subject_token_type: Option<String>,
    /// Token exchange: if given, `urn:ietf:params:oauth:token-type:access_token` (what is issued).
    requested_token_type: Option<String>,
    /// The client asking (RFC 6749 §2.2), written into the token's `client_id` claim;
    /// `loom` when not given. Up to 128 printable ASCII characters. A client may instead
    /// authenticate with HTTP Basic and an empty secret (RFC 6749 §2.3.1). With the refresh
    /// grant, if given, it must be the session's.
    #[schema(example = "loom-cli", max_length = 128)]
    client_id: Option<String>,
    /// Refused when sent: clients here are public (RFC 6749 §2.1) and have no secret.
    #[schema(value_type = Option<String>, format = Password)]
    client_secret: Option<SecretString>,
}

/// An access token and the refresh token that renews it (RFC 6749 §5.1).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenOut {
    /// A JWT, to send as `Authorization: Bearer <token>`.
    access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 1800)]
    expires_in: i64,
    /// Trade it at this endpoint (`grant_type=refresh_token`) for a new pair; each is good
    /// once. Keep it as secret as a password.
    refresh_token: String,
    /// Seconds until the session ends unless refreshed (idle or absolute expiry).
    #[schema(example = 2_592_000)]
    refresh_expires_in: i64,
}

/// Log in (a password, `grant_type=password`) or stay logged in (a refresh token,
/// `grant_type=refresh_token`): exchange either for an access token and a new refresh token.
#[utoipa::path(
    post,
    path = "/token",
    operation_id = "login_for_access_token",
    tag = "accounts",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Logged in, or refreshed (for a token exchange: `access_token`, \
                                      `issued_token_type`, `token_type`, `expires_in`, and no refresh token)",
         body = TokenOut,
         headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "The refresh token is unknown, spent, expired, revoked or another client's \
                                      (`invalid_grant`); or the personal access token to exchange is malformed, \
                                      unknown, expired or revoked (`invalid_request`, the detail says which)",
         body = OAuthErrorBody),
        (status = 401, description = "Wrong email, username or password, or a deactivated account; or HTTP Basic \
                                      client authentication with a secret", body = OAuthErrorBody,
         headers(("WWW-Authenticate" = String, description = "`Bearer`, or `Basic` for a client"))),
        (status = 403, description = "The password was right, and the account needs its second factor (`otp`; \
                                      `error: mfa_required`), or the operator's policy refused the login \
                                      (`error: access_denied`, the detail is its reason)", body = OAuthErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = OAuthErrorBody),
        (status = 422, description = "Not a form, a field is missing or sent twice, or an unknown grant_type",
         body = OAuthErrorBody),
        (status = 429, description = "Too many failed logins for this account or address, or too many at once",
         body = OAuthErrorBody, headers(("Retry-After" = u64, description = "Seconds until a login may succeed"))),
        (status = 503, description = "Busy, a dependency is unavailable, or the operator's policy could not decide; \
                                      try again", body = OAuthErrorBody),
    )
)]
#[tracing::instrument(name = "token", skip_all)]
pub async fn issue(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    request: Result<ApiForm<TokenRequest>, ApiError>,
) -> Result<Response, OAuthError> {
    let basic = basic_client(&headers).map_err(OAuthError)?;
    let ApiForm(request) = request.map_err(OAuthError)?;
    super::client_auth::no_form_secret(request.client_secret.as_ref()).map_err(OAuthError)?;
    let asking = Asking { address: client, user_agent: user_agent(&headers), basic };
    let granted = match request.grant_type.as_deref() {
        None | Some("password") => password::grant(&state, &asking, request).await,
        Some("refresh_token") => refresh::grant(&state, &asking, request).await,
        Some(crate::accounts::pats::TOKEN_EXCHANGE_GRANT) => exchange::grant(&state, &asking, request).await,
        Some(_) => Err(ApiError::UnsupportedGrantType),
    };
    granted.map_err(OAuthError)
}

/// Who asks for a token: the client address and `User-Agent`, and the client named by HTTP
/// Basic, if any.
struct Asking {
    address: IpAddr,
    user_agent: String,
    basic: Option<String>,
}

impl Asking {
    fn client(&self) -> (String, &str) {
        (crate::accounts::throttle::address_key(self.address), self.user_agent.as_str())
    }
}

fn user_agent(headers: &HeaderMap) -> String {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// A required field of the form, or the same 422 a missing field gets.
fn required<T>(value: Option<T>, name: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::Validation(format!("Invalid form: missing field `{name}`")))
}

/// The answer to a grant: a fresh access token for the session's account and client, naming
/// the session, with the policy's `claims`, and the session's current refresh token.
async fn respond(
    state: &AppState,
    granted: &Granted,
    now: i64,
    claims: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let session = &granted.session;
    let mut extra =
        vec![crate::accounts::sessions::sid_claim(&session.id), crate::accounts::sessions::amr_claim(&session.amr)];
    extra.extend(claims);
    let issued = state
        .runtime
        .issue_token(&state.token_settings(), &session.user_id.to_string(), &session.client_id, &extra)
        .await
        .map_err(|error| {
            tracing::error!(user_id = session.user_id, %error, "the auth component could not issue a token");
            ApiError::Unavailable(error)
        })?;
    let body = TokenOut {
        access_token: issued.token,
        token_type: "bearer",
        expires_in: issued.claims.exp - issued.claims.iat,
        refresh_token: granted.refresh_token.expose_secret().to_owned(),
        refresh_expires_in: granted.expires_in(now),
    };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The session client a grant runs for.
fn client_of<'a>(address: &'a str, user_agent: &'a str) -> Client<'a> {
    Client { address, user_agent }
}
