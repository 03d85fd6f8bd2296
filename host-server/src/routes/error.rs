//! Every failure a request can meet, mapped to a status and `{"detail": ...}` in one place.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::runtime::{PasswordError, RuntimeError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is well-formed HTTP but its content is not acceptable.
    #[error("{0}")]
    Validation(String),
    #[error("Email already registered")]
    EmailTaken,
    #[error("Username already taken")]
    UsernameTaken,
    #[error("Incorrect username or password")]
    BadCredentials,
    #[error(r#"grant_type must be "password", "refresh_token" or "urn:ietf:params:oauth:grant-type:token-exchange""#)]
    UnsupportedGrantType,
    /// A refresh token that cannot be used (RFC 6749 §5.2 `invalid_grant`): the detail says why.
    #[error("{0}")]
    InvalidGrant(String),
    /// A password check that failed where the caller is known (a password change).
    #[error("{0}")]
    WrongPassword(&'static str),
    /// HTTP Basic client authentication that cannot be accepted (RFC 6749 §5.2 `invalid_client`).
    #[error("Client authentication failed: {0}")]
    InvalidClient(String),
    #[error("Not authenticated")]
    NotAuthenticated,
    /// An `Authorization` header that cannot be read as one bearer token (RFC 6750 §3.1's
    /// `invalid_request`): none after `Bearer`, or more than one header.
    #[error("{0}")]
    MalformedAuthorization(&'static str),
    #[error("Could not validate credentials")]
    InvalidToken,
    /// A personal access token that is well-formed but cannot be used: the detail says why
    /// (expired on which day, revoked), also in the challenge's `error_description`.
    #[error("{0}")]
    PatRefused(String),
    /// A personal access token, or an access token exchanged from one, asked for what only a
    /// password login may do.
    #[error(
        "This needs a password login: a personal access token, or a token exchanged from one, cannot make or \
         list tokens, change the password, or list or end sessions (run `loom login`)"
    )]
    NeedsPasswordLogin,
    #[error("A token named '{0}' already exists; revoke it or choose another name")]
    PatNameTaken(String),
    #[error("This account holds {0} live tokens, as many as it may; revoke one first")]
    TooManyPats(u32),
    /// `DELETE /users/me/tokens/{id}` for no live token of the caller's.
    #[error("No such token")]
    NoSuchPat,
    /// `GET /users/me/tokens/current` with a password login's token.
    #[error("This request is made with a password login, not a personal access token")]
    NotAPat,
    /// The password was right, and the account needs a second factor (`otp`) too.
    #[error(
        "This account has two-factor login: send the 6-digit code from your authenticator app (or a recovery \
         code) as otp"
    )]
    MfaRequired,
    /// An action of an account with two-factor login, without its `code`.
    #[error(
        "This account has two-factor login: send the code from your authenticator app (or a recovery code) as code"
    )]
    CodeRequired,
    /// A second factor that is wrong, stale, or already used.
    #[error("The authentication code is wrong, expired or already used")]
    BadSecondFactor,
    /// Enrolment started while two-factor login is on.
    #[error("Two-factor login is already on; turn it off first (DELETE /users/me/2fa)")]
    SecondFactorOn,
    /// Confirming with no enrolment waiting.
    #[error("No two-factor enrolment is waiting to be confirmed; start one with POST /users/me/2fa")]
    NothingToConfirm,
    /// Turning off or renewing codes while two-factor login is off.
    #[error("Two-factor login is not on for this account")]
    SecondFactorOff,
    /// The first code of an enrolment is wrong.
    #[error("The code is wrong; enter the one your authenticator app shows now (its clock must be right)")]
    WrongFirstCode,
    /// The serving component cannot make second factors (it speaks an earlier contract).
    #[error("{0}")]
    NoSecondFactorSupport(String),
    /// The operator's policy refused a registration or a login; the reason is the policy's.
    #[error("{0}")]
    PolicyDenied(String),
    /// The operator's policy could not decide (it trapped, ran past its deadline, answered an
    /// error or broke a rule): the request fails rather than pass unchecked.
    #[error("This service's sign-up and login policy could not decide; try again later")]
    PolicyFault,
    /// A token exchange whose subject token cannot be traded (RFC 8693 §2.2.2 `invalid_request`).
    #[error("{0}")]
    InvalidSubjectToken(String),
    #[error("Request body is larger than {} KiB", super::BODY_LIMIT_BYTES / 1024)]
    PayloadTooLarge,
    #[error("Not Found")]
    NotFound,
    /// `DELETE /sessions/{id}` for no live session of the caller's.
    #[error("No such session")]
    NoSuchSession,
    /// The discovery document cannot be published; the reason is the operator's to fix.
    #[error("Discovery is off: {0}")]
    DiscoveryOff(String),
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    /// Past an allowance (failed logins, registrations); `detail` says which.
    #[error("{detail}")]
    Throttled { detail: String, retry_after: u64 },
    /// The request ran past the request timeout.
    #[error("The request took too long")]
    TimedOut,
    /// Too many password hashes are waiting already: come back in a second.
    #[error("The server is busy; try again in a moment")]
    Busy,
    /// The auth component failed; the host is fine and the next call gets a fresh instance.
    #[error("The authentication service is temporarily unavailable")]
    Unavailable(#[source] RuntimeError),
    /// The database does not answer; the host recovers by itself when it does.
    #[error("The database is unavailable; try again shortly")]
    DatabaseUnavailable(#[source] StoreError),
    #[error("Internal Server Error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::UnsupportedGrantType => StatusCode::UNPROCESSABLE_ENTITY,
            Self::EmailTaken
            | Self::UsernameTaken
            | Self::InvalidGrant(_)
            | Self::WrongPassword(_)
            | Self::InvalidSubjectToken(_)
            | Self::WrongFirstCode => StatusCode::BAD_REQUEST,
            Self::BadCredentials
            | Self::NotAuthenticated
            | Self::MalformedAuthorization(_)
            | Self::InvalidToken
            | Self::PatRefused(_)
            | Self::BadSecondFactor
            | Self::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            Self::NeedsPasswordLogin | Self::MfaRequired | Self::CodeRequired | Self::PolicyDenied(_) => {
                StatusCode::FORBIDDEN
            }
            Self::PatNameTaken(_)
            | Self::TooManyPats(_)
            | Self::SecondFactorOn
            | Self::NothingToConfirm
            | Self::SecondFactorOff => StatusCode::CONFLICT,
            Self::NoSecondFactorSupport(_) => StatusCode::NOT_IMPLEMENTED,
            Self::NoSuchPat | Self::NotAPat => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound | Self::NoSuchSession | Self::DiscoveryOff(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) | Self::Busy | Self::TimedOut | Self::DatabaseUnavailable(_) | Self::PolicyFault => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3), for 401s.
    fn challenge(&self) -> Option<String> {
        let fixed = match self {
            Self::BadCredentials | Self::BadSecondFactor | Self::NotAuthenticated => "Bearer",
            Self::InvalidToken => r#"Bearer error="invalid_token""#,
            Self::MalformedAuthorization(_) => r#"Bearer error="invalid_request""#,
            Self::InvalidClient(_) => r#"Basic realm="loom-auth""#,
            Self::PatRefused(why) => {
                return Some(format!(
                    r#"Bearer error="invalid_token", error_description="{}""#,
                    oauth_description(why)
                ));
            }
            _ => return None,
        };
        Some(fixed.to_owned())
    }

    /// Whole seconds to wait before trying again (`Retry-After`), for refusals that pass.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Busy | Self::DatabaseUnavailable(_) => Some(1),
            Self::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The RFC 6749 §5.2 `error` code this failure has at the token endpoint.
    fn oauth_code(&self) -> &'static str {
        match self {
            Self::BadCredentials | Self::InvalidGrant(_) | Self::BadSecondFactor => "invalid_grant",
            Self::NeedsPasswordLogin | Self::PolicyDenied(_) => "access_denied",
            Self::MfaRequired => "mfa_required",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidClient(_) => "invalid_client",
            Self::Unavailable(_)
            | Self::Busy
            | Self::TimedOut
            | Self::Throttled { .. }
            | Self::PolicyFault
            | Self::DatabaseUnavailable(_) => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
            Self::Validation(_)
            | Self::PayloadTooLarge
            | Self::EmailTaken
            | Self::UsernameTaken
            | Self::WrongPassword(_)
            | Self::NotAuthenticated
            | Self::MalformedAuthorization(_)
            | Self::InvalidToken
            | Self::PatRefused(_)
            | Self::PatNameTaken(_)
            | Self::TooManyPats(_)
            | Self::NoSuchPat
            | Self::NotAPat
            | Self::InvalidSubjectToken(_)
            | Self::SecondFactorOn
            | Self::NothingToConfirm
            | Self::SecondFactorOff
            | Self::CodeRequired
            | Self::WrongFirstCode
            | Self::NoSecondFactorSupport(_)
            | Self::NotFound
            | Self::NoSuchSession
            | Self::DiscoveryOff(_)
            | Self::MethodNotAllowed => "invalid_request",
        }
    }

    /// The response: the status, `{"detail"}` plus `extra` fields, and the challenge for 401s.
    fn respond(self, extra: impl FnOnce(&Self, &mut Map<String, Value>)) -> Response {
        match &self {
            Self::Unavailable(source) => tracing::error!(error = %source, "auth component call failed"),
            Self::DatabaseUnavailable(source) => tracing::warn!(error = %source, "the database does not answer"),
            Self::Internal(source) => tracing::error!(error = format!("{source:#}"), "internal error"),
            _ => {}
        }
        let mut body = Map::new();
        body.insert("detail".into(), Value::String(self.to_string()));
        extra(&self, &mut body);
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(challenge) = self.challenge().and_then(|c| HeaderValue::try_from(c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl ApiError {
    pub fn too_many_logins(retry_after: u64) -> Self {
        Self::Throttled { detail: format!("Too many failed logins; try again in {retry_after} seconds"), retry_after }
    }

    /// Refused while attempts in flight fill the allowance (a burst of logins at one instant).
    pub fn too_many_logins_at_once(on: crate::store::Crowd) -> Self {
        let whose = match on {
            crate::store::Crowd::Account => "to this account",
            crate::store::Crowd::Address => "from this address",
        };
        Self::Throttled { detail: format!("Too many logins {whose} at once; try again in 1 second"), retry_after: 1 }
    }

    pub fn too_many_signups(retry_after: u64) -> Self {
        Self::Throttled {
            detail: format!("Too many registrations from this address; try again in {retry_after} seconds"),
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond(|_, _| {})
    }
}

/// A failure at the token endpoint: the same status and `detail` as any
/// [`ApiError`] (FastAPI's contract), plus RFC 6749 §5.2's `error` and
/// `error_description`, so standard OAuth2 clients can tell a wrong password
/// (`invalid_grant`) from a malformed request or a failing service. Never cached.
#[derive(Debug)]
pub struct OAuthError(pub ApiError);

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = self.0.respond(|error, body| {
            body.insert("error".into(), Value::from(error.oauth_code()));
            body.insert("error_description".into(), Value::String(oauth_description(&error.to_string())));
        });
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

/// `error_description` may hold only printable ASCII without double quotes or
/// backslashes (RFC 6749 §5.2): a double quote becomes `'`, anything else `?`.
fn oauth_description(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        })
        .collect()
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::DuplicateEmail => Self::EmailTaken,
            StoreError::DuplicateUsername => Self::UsernameTaken,
            unavailable if unavailable.is_unavailable() => Self::DatabaseUnavailable(unavailable),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<crate::accounts::policy::Refusal> for ApiError {
    fn from(refusal: crate::accounts::policy::Refusal) -> Self {
        match refusal {
            crate::accounts::policy::Refusal::Denied(reason) => Self::PolicyDenied(reason),
            crate::accounts::policy::Refusal::Fault(_) => Self::PolicyFault,
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(error: RuntimeError) -> Self {
        match error {
            RuntimeError::Token(_) => Self::InvalidToken,
            RuntimeError::Password(PasswordError::PasswordTooLong) => {
                crate::accounts::password::Refusal::TooLong.into()
            }
            RuntimeError::Busy => Self::Busy,
            other => Self::Unavailable(other),
        }
    }
}

impl From<crate::accounts::sessions::SessionError> for ApiError {
    fn from(error: crate::accounts::sessions::SessionError) -> Self {
        match error {
            crate::accounts::sessions::SessionError::Store(store) => store.into(),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<crate::accounts::credentials::AuthenticationError> for ApiError {
    fn from(error: crate::accounts::credentials::AuthenticationError) -> Self {
        match error {
            crate::accounts::credentials::AuthenticationError::Store(store) => store.into(),
            crate::accounts::credentials::AuthenticationError::Runtime(runtime) => runtime.into(),
        }
    }
}

impl From<crate::accounts::password::Refusal> for ApiError {
    fn from(refusal: crate::accounts::password::Refusal) -> Self {
        Self::Validation(refusal.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::oauth_description;

    #[test]
    fn oauth_descriptions_stay_within_the_rfc_6749_character_set() {
        assert_eq!(oauth_description(r#"grant_type must be "password""#), "grant_type must be 'password'");
        assert_eq!(oauth_description("caf\u{e9} \\ ok"), "caf? ? ok");
    }
}
