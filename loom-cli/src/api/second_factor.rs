//! Two-factor login: enrolment, confirmation, turning it off, renewing recovery codes, all
//! with a password login.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{ApiClient, ApiError, HASHING_TIMEOUT};

/// The `error` the token endpoint answers when a right password needs a second factor.
pub const MFA_REQUIRED: &str = "mfa_required";

/// What enrolment shows once: for the authenticator app, and the recovery codes.
#[derive(Deserialize)]
pub struct Enrolment {
    pub secret: SecretString,
    pub otpauth_uri: SecretString,
    pub recovery_codes: Vec<String>,
}

#[derive(Deserialize)]
struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

impl ApiClient {
    /// `POST /users/me/2fa`: a pending secret and recovery codes (the server checks the password).
    pub async fn enrol_2fa(&self, password: &SecretString) -> Result<Enrolment, ApiError> {
        let body = serde_json::json!({"password": password.expose_secret()});
        self.send(self.request(Method::POST, "/users/me/2fa").json(&body), HASHING_TIMEOUT).await
    }

    /// `POST /users/me/2fa/confirm`: turns it on with the app's first code.
    pub async fn confirm_2fa(&self, code: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({"code": code});
        self.send_empty(self.request(Method::POST, "/users/me/2fa/confirm").json(&body), HASHING_TIMEOUT).await
    }

    /// `DELETE /users/me/2fa`: turns it off (the password and a code).
    pub async fn disable_2fa(&self, password: &SecretString, code: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({"password": password.expose_secret(), "code": code});
        self.send_empty(self.request(Method::DELETE, "/users/me/2fa").json(&body), HASHING_TIMEOUT).await
    }

    /// `POST /users/me/2fa/recovery-codes`: ten new codes (the password and a code).
    pub async fn renew_recovery_codes(&self, password: &SecretString, code: &str) -> Result<Vec<String>, ApiError> {
        let body = serde_json::json!({"password": password.expose_secret(), "code": code});
        let renewed: RecoveryCodes =
            self.send(self.request(Method::POST, "/users/me/2fa/recovery-codes").json(&body), HASHING_TIMEOUT).await?;
        Ok(renewed.recovery_codes)
    }
}
