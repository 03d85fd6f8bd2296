//! Every failure a request can meet, mapped to a status and `{"detail": ...}` in one place.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Unavailable(source) => tracing::error!(error = %source, "auth component call failed"),
            Self::Internal(source) => tracing::error!(error = format!("{source:#}"), "internal error"),
            _ => {}
        }
        let mut response = (self.status(), Json(json!({ "detail": self.to_string() }))).into_response();
        if let Some(challenge) = self.challenge() {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
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
