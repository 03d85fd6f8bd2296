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
    #[error("Incorrect username or password")]
    BadCredentials,
    #[error(r#"grant_type must be "password""#)]
    UnsupportedGrantType,
    #[error("Not authenticated")]
    NotAuthenticated,
    #[error("Could not validate credentials")]
    InvalidToken,
    #[error("Request body is larger than {} KiB", crate::startup::BODY_LIMIT_BYTES / 1024)]
    PayloadTooLarge,
    #[error("Not Found")]
    NotFound,
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    /// The auth component failed; the host is fine and the next call gets a fresh instance.
    #[error("The authentication service is temporarily unavailable")]
    Unavailable(#[source] RuntimeError),
    #[error("Internal Server Error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::UnsupportedGrantType => StatusCode::UNPROCESSABLE_ENTITY,
            Self::EmailTaken => StatusCode::BAD_REQUEST,
            Self::BadCredentials | Self::NotAuthenticated | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3), for 401s.
    fn challenge(&self) -> Option<&'static str> {
        match self {
            Self::BadCredentials | Self::NotAuthenticated => Some("Bearer"),
            Self::InvalidToken => Some(r#"Bearer error="invalid_token""#),
            _ => None,
        }
    }

    /// The RFC 6749 §5.2 `error` code this failure has at the token endpoint.
    fn oauth_code(&self) -> &'static str {
        match self {
            Self::BadCredentials => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
            Self::Validation(_)
            | Self::PayloadTooLarge
            | Self::EmailTaken
            | Self::NotAuthenticated
            | Self::InvalidToken
            | Self::NotFound
            | Self::MethodNotAllowed => "invalid_request",
        }
    }

    /// The response: the status, `{"detail"}` plus `extra` fields, and the challenge for 401s.
    fn respond(self, extra: impl FnOnce(&Self, &mut Map<String, Value>)) -> Response {
        match &self {
            Self::Unavailable(source) => tracing::error!(error = %source, "auth component call failed"),
            Self::Internal(source) => tracing::error!(error = format!("{source:#}"), "internal error"),
            _ => {}
        }
        let mut body = Map::new();
        body.insert("detail".into(), Value::String(self.to_string()));
        extra(&self, &mut body);
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(challenge) = self.challenge() {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
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
            other => Self::Internal(other.into()),
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(error: RuntimeError) -> Self {
        match error {
            RuntimeError::Token(_) => Self::InvalidToken,
            RuntimeError::Password(PasswordError::PasswordTooLong) => Self::Validation(too_long_password()),
            other => Self::Unavailable(other),
        }
    }
}

pub fn too_long_password() -> String {
    format!("password must be at most {} bytes", crate::routes::MAX_PASSWORD_BYTES)
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
