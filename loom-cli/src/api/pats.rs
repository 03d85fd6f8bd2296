//! Personal access tokens: made, listed and revoked with a password login, exchanged for
//! short access tokens (RFC 8693) by machines.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{ApiClient, ApiError, HASHING_TIMEOUT, QUICK_TIMEOUT, TokenGrant};

/// What every personal access token starts with.
pub const PAT_PREFIX: &str = "loom_pat_";
/// RFC 8693's grant type and token type.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Whether `token` is a personal access token (by its prefix) rather than an access token.
pub fn is_pat(token: &str) -> bool {
    token.starts_with(PAT_PREFIX)
}

/// A token just made: the only time its value is shown.
#[derive(Deserialize)]
pub struct CreatedPat {
    pub id: String,
    pub name: String,
    pub token: SecretString,
    pub expires_at: String,
}

/// A live token, as its owner lists it (never its value).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PatInfo {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: Option<String>,
    pub last_used_from: Option<String>,
}

#[derive(Deserialize)]
struct Exchanged {
    access_token: SecretString,
    token_type: String,
    expires_in: serde_json::Number,
}

impl ApiClient {
    /// `POST /users/me/tokens`: makes a token (the server checks the password).
    pub async fn create_pat(&self, name: &str, password: &SecretString, days: u32) -> Result<CreatedPat, ApiError> {
        let body = serde_json::json!({"name": name, "password": password.expose_secret(), "expires_in_days": days});
        self.send(self.request(Method::POST, "/users/me/tokens").json(&body), HASHING_TIMEOUT).await
    }

    /// `GET /users/me/tokens`: the account's live tokens, newest first.
    pub async fn pats(&self) -> Result<Vec<PatInfo>, ApiError> {
        self.get("/users/me/tokens").await
    }

    /// `GET /users/me/tokens/current`: the token this client holds (or exchanged from).
    pub async fn current_pat(&self) -> Result<PatInfo, ApiError> {
        self.get("/users/me/tokens/current").await
    }

    /// `DELETE /users/me/tokens/{id}`: revokes one of the account's tokens.
    pub async fn revoke_pat(&self, id: &str) -> Result<(), ApiError> {
        let id = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
        self.send_empty(self.request(Method::DELETE, &format!("/users/me/tokens/{id}")), QUICK_TIMEOUT).await
    }

    /// `POST /token` with token exchange: a short access token for `pat` (no refresh token).
    pub async fn exchange_pat(&self, pat: &SecretString) -> Result<TokenGrant, ApiError> {
        let form = [
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", pat.expose_secret()),
            ("subject_token_type", ACCESS_TOKEN),
        ];
        let body: Exchanged = self.send(self.request(Method::POST, "/token").form(&form), QUICK_TIMEOUT).await?;
        let expires_in = self.lifetime(&body.expires_in, "a token said to expire")?;
        Ok(TokenGrant {
            access_token: body.access_token,
            token_type: body.token_type,
            expires_in,
            refresh_token: None,
            refresh_expires_in: None,
        })
    }
}
