//! The server's endpoints, as typed calls on [`ApiClient`].

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{ApiClient, ApiError, HASHING_TIMEOUT, QUICK_TIMEOUT};

/// The longest token lifetime loom accepts from a server (ten years); beyond it, the answer is refused.
pub const MAX_EXPIRES_IN: u64 = 10 * 365 * 24 * 3600;

/// The answer to a successful login.
#[derive(Debug)]
pub struct TokenGrant {
    pub access_token: SecretString,
    pub token_type: String,
    /// Seconds the access token lives, within 1..=[`MAX_EXPIRES_IN`].
    pub expires_in: u64,
}

/// A token answer as sent: `expires_in` may be written as any JSON number.
#[derive(Deserialize)]
struct GrantBody {
    access_token: SecretString,
    token_type: String,
    expires_in: serde_json::Number,
}

/// An account as the server shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub id: i64,
    pub email: String,
    /// `None` when the account has none (or the server predates usernames).
    #[serde(default)]
    pub username: Option<String>,
    pub is_active: bool,
}

impl ApiClient {
    /// `POST /token`: trades an email (or username) and password for an access token.
    pub async fn login(&self, email: &str, password: &SecretString) -> Result<TokenGrant, ApiError> {
        let form = [("grant_type", "password"), ("username", email), ("password", password.expose_secret())];
        let body: GrantBody = self.send(self.request(Method::POST, "/token").form(&form), HASHING_TIMEOUT).await?;
        self.grant(body)
    }

    /// Checks a token answer's numbers: a lifetime of whole seconds, written as an integer or
    /// not (`1800.0`), within ten years.
    fn grant(&self, body: GrantBody) -> Result<TokenGrant, ApiError> {
        let seconds = body.expires_in.as_u64().or_else(|| {
            let seconds = body.expires_in.as_f64()?;
            (seconds.is_finite() && seconds >= 1.0 && seconds <= MAX_EXPIRES_IN as f64).then_some(seconds as u64)
        });
        let Some(expires_in) = seconds.filter(|s| (1..=MAX_EXPIRES_IN).contains(s)) else {
            return Err(ApiError::InvalidResponse {
                url: self.server().to_owned(),
                reason: format!("a token said to expire in {} seconds", body.expires_in),
            });
        };
        Ok(TokenGrant { access_token: body.access_token, token_type: body.token_type, expires_in })
    }

    /// `POST /users/`: creates an account.
    pub async fn register(&self, email: &str, password: &SecretString) -> Result<Account, ApiError> {
        let body = serde_json::json!({ "email": email, "password": password.expose_secret() });
        self.send(self.request(Method::POST, "/users/").json(&body), HASHING_TIMEOUT).await
    }

    /// `GET /users/me/`: the account the token belongs to.
    pub async fn me(&self) -> Result<Account, ApiError> {
        self.get("/users/me/").await
    }

    /// `POST /logout`: revokes the client's token on the server (`global`: every
    /// token of its account).
    pub async fn logout(&self, global: bool) -> Result<(), ApiError> {
        let path = if global { "/logout?scope=global" } else { "/logout" };
        self.send_empty(self.request(Method::POST, path), QUICK_TIMEOUT).await
    }
}
