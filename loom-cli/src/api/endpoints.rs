//! The server's endpoints, as typed calls on [`ApiClient`].

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use std::time::{Duration, Instant};

use super::{ApiClient, ApiError, HASHING_TIMEOUT, QUICK_TIMEOUT};

/// How long a refresh may wait for its answer: well inside [`REFRESH_RETRY_WITHIN`], so that a
/// lost answer can be asked for again while the server still answers a spent token.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(3);
/// A refresh whose answer was lost is sent again only this soon after the first was sent:
/// the server answers a spent refresh token again, with the same successor, for its reuse
/// grace (10 seconds by default); later, the same token is a replay and ends the session.
/// Half the default, so a retry never lands past it.
pub const REFRESH_RETRY_WITHIN: Duration = Duration::from_secs(5);

/// The longest token lifetime loom accepts from a server (ten years); beyond it, the answer is refused.
pub const MAX_EXPIRES_IN: u64 = 10 * 365 * 24 * 3600;

/// The answer to a successful login or refresh.
#[derive(Debug)]
pub struct TokenGrant {
    pub access_token: SecretString,
    pub token_type: String,
    /// Seconds the access token lives, within 1..=[`MAX_EXPIRES_IN`].
    pub expires_in: u64,
    /// The token that renews it, when the server keeps sessions.
    pub refresh_token: Option<SecretString>,
    /// Seconds until the session ends unless refreshed, within 1..=[`MAX_EXPIRES_IN`].
    pub refresh_expires_in: Option<u64>,
}

/// A token answer as sent: lifetimes may be written as any JSON number.
#[derive(Deserialize)]
struct GrantBody {
    access_token: SecretString,
    token_type: String,
    expires_in: serde_json::Number,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default)]
    refresh_expires_in: Option<serde_json::Number>,
}

/// A session as `GET /sessions` lists it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub client_id: String,
    pub created_at: String,
    pub last_used_at: String,
    pub address: String,
    pub user_agent: String,
    pub current: bool,
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
    pub async fn login(&self, email: &str, password: &SecretString, otp: Option<&str>) -> Result<TokenGrant, ApiError> {
        let mut form = vec![("grant_type", "password"), ("username", email), ("password", password.expose_secret())];
        form.extend(otp.map(|otp| ("otp", otp)));
        let body: GrantBody = self.send(self.request(Method::POST, "/token").form(&form), HASHING_TIMEOUT).await?;
        self.grant(body)
    }

    /// `POST /token` with a refresh token: a new access token and the next refresh token (the
    /// one given is spent).
    ///
    /// The token may have been spent even when no answer came (lost on the way back, a
    /// timeout, the server failing after it rotated): such a refresh is sent once more, within
    /// [`REFRESH_RETRY_WITHIN`] of the first, when the server answers the same successor again.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenGrant, ApiError> {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())];
        let first = Instant::now();
        let mut outcome =
            self.send::<GrantBody>(self.request(Method::POST, "/token").form(&form), REFRESH_TIMEOUT).await;
        if outcome.as_ref().is_err_and(ApiError::answer_lost) && first.elapsed() < REFRESH_RETRY_WITHIN {
            outcome = self.send(self.request(Method::POST, "/token").form(&form), REFRESH_TIMEOUT).await;
        }
        self.grant(outcome?)
    }

    /// Checks a token answer's numbers: lifetimes of whole seconds, written as integers or
    /// not (`1800.0`), within ten years.
    fn grant(&self, body: GrantBody) -> Result<TokenGrant, ApiError> {
        let expires_in = self.lifetime(&body.expires_in, "a token said to expire")?;
        let refresh_expires_in =
            body.refresh_expires_in.as_ref().map(|n| self.lifetime(n, "a session said to end")).transpose()?;
        Ok(TokenGrant {
            access_token: body.access_token,
            token_type: body.token_type,
            expires_in,
            refresh_token: body.refresh_token,
            refresh_expires_in,
        })
    }

    pub(super) fn lifetime(&self, number: &serde_json::Number, what: &str) -> Result<u64, ApiError> {
        let seconds = number.as_u64().or_else(|| {
            let seconds = number.as_f64()?;
            (seconds.is_finite() && seconds >= 1.0 && seconds <= MAX_EXPIRES_IN as f64).then_some(seconds as u64)
        });
        seconds.filter(|s| (1..=MAX_EXPIRES_IN).contains(s)).ok_or_else(|| ApiError::InvalidResponse {
            url: self.server().to_owned(),
            reason: format!("{what} in {number} seconds"),
        })
    }

    /// `POST /revoke` (RFC 7009): ends the session `token` belongs to.
    pub async fn revoke(&self, token: &SecretString, hint: &str) -> Result<(), ApiError> {
        let form = [("token", token.expose_secret()), ("token_type_hint", hint)];
        self.send_empty(self.request(Method::POST, "/revoke").form(&form), QUICK_TIMEOUT).await
    }

    /// `GET /sessions`: the account's live sessions.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, ApiError> {
        self.get("/sessions").await
    }

    /// `DELETE /sessions/{id}`: ends one of the account's sessions.
    pub async fn end_session(&self, id: &str) -> Result<(), ApiError> {
        let path = format!("/sessions/{}", url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>());
        self.send_empty(self.request(Method::DELETE, &path), QUICK_TIMEOUT).await
    }

    /// `POST /users/me/password`: changes the password; the server ends every other session.
    pub async fn change_password(&self, current: &SecretString, new: &SecretString) -> Result<(), ApiError> {
        let body = serde_json::json!({
            "current_password": current.expose_secret(),
            "new_password": new.expose_secret(),
        });
        self.send_empty(self.request(Method::POST, "/users/me/password").json(&body), HASHING_TIMEOUT).await
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
