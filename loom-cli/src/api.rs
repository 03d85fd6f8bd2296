//! `ApiClient`: one HTTP client for every command that needs the Loom server.
//!
//! It knows the base URL, sends the bearer token when it has one, applies
//! timeouts and a `User-Agent`, and turns every failure into an [`ApiError`]
//! a person can read.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call that costs the server no password hash may wait for the whole answer.
pub const QUICK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `login` and `register` may wait: the server hashes the password,
/// and may queue the hash behind others.
pub const HASHING_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest token lifetime loom accepts from a server (ten years); beyond it, the answer is refused.
pub const MAX_EXPIRES_IN: u64 = 10 * 365 * 24 * 3600;
const USER_AGENT: &str = concat!("loom/", env!("CARGO_PKG_VERSION"));

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0:?} is not a valid server URL (expected e.g. http://127.0.0.1:8000)")]
    InvalidUrl(String),
    #[error(
        "Refusing to send a password or token over plain http:// to {host}: anyone on the network between could \
         read it. Use https://, or pass --insecure if you trust that network."
    )]
    PlainHttp { host: String },
    #[error(
        "The Loom server at {url} redirected the request to {location}; loom does not follow a redirect that would \
         carry your password or token elsewhere. Use the address it points to with --server if you trust it."
    )]
    Redirected { url: String, location: String },
    #[error("Cannot reach the Loom server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server refused the token sent (expired, revoked, or signed by another key).
    /// Where the token came from decides what the user should do: see the commands.
    #[error("The Loom server at {server} refused the token (expired, revoked or not issued by it).")]
    TokenRefused { server: String },
    /// A 4xx with the server's own explanation.
    #[error("{detail}")]
    Rejected { status: StatusCode, detail: String },
    #[error("The Loom server at {url} answered {status}{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Server { url: String, status: StatusCode, reason: Option<String> },
    #[error("The Loom server at {url} sent an answer loom does not understand ({reason}). Is this a Loom server?")]
    InvalidResponse { url: String, reason: String },
}

impl ApiError {
    /// Whether the user must log in (again) to go on.
    pub fn needs_login(&self) -> bool {
        matches!(self, Self::TokenRefused { .. })
    }
}

/// The answer to a successful login.
#[derive(Debug, Deserialize)]
pub struct TokenGrant {
    pub access_token: SecretString,
    pub token_type: String,
    pub expires_in: u64,
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

#[derive(Deserialize)]
struct ErrorBody {
    detail: serde_json::Value,
}

/// A client of one Loom server, optionally authenticated.
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    token: Option<SecretString>,
}

impl ApiClient {
    /// A client for `server` (e.g. `http://127.0.0.1:8000`), sending `token` as a bearer when given.
    ///
    /// Plain `http://` is refused for any host but this machine's (loopback)
    /// unless `insecure`. Redirects are followed only to the same origin, and
    /// never for `/token`, so a password or token never goes anywhere else.
    pub fn new(server: &str, token: Option<SecretString>, insecure: bool) -> Result<Self, ApiError> {
        let base = normalize_server(server)?;
        let url = reqwest::Url::parse(&base).map_err(|_| ApiError::InvalidUrl(server.to_owned()))?;
        if url.scheme() == "http" && !insecure && !is_loopback(&url) {
            return Err(ApiError::PlainHttp { host: url.host_str().unwrap_or_default().to_owned() });
        }
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            let first = &attempt.previous()[0];
            let same_origin = first.origin() == attempt.url().origin();
            if first.path() == "/token" || !same_origin || attempt.previous().len() > 5 {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(USER_AGENT)
            .redirect(policy)
            .build()
            .map_err(|e| ApiError::Unreachable { url: base.clone(), reason: e.to_string() })?;
        Ok(Self { base, http, token })
    }

    /// The server's base URL, normalised.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// `POST /token`: trades an email and password for an access token.
    pub async fn login(&self, email: &str, password: &SecretString) -> Result<TokenGrant, ApiError> {
        let form = [("grant_type", "password"), ("username", email), ("password", password.expose_secret())];
        let grant: TokenGrant = self.send(self.request(Method::POST, "/token").form(&form), HASHING_TIMEOUT).await?;
        if !(1..=MAX_EXPIRES_IN).contains(&grant.expires_in) {
            return Err(ApiError::InvalidResponse {
                url: self.base.clone(),
                reason: format!("a token said to expire in {} seconds", grant.expires_in),
            });
        }
        Ok(grant)
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
        let response = self.request(Method::POST, path).timeout(QUICK_TIMEOUT).send().await;
        let response = response.map_err(|e| self.unreachable(&e, QUICK_TIMEOUT))?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            // Nothing to revoke: the token is expired or revoked already.
            StatusCode::UNAUTHORIZED => Err(ApiError::TokenRefused { server: self.base.clone() }),
            status => Err(ApiError::Server {
                url: self.base.clone(),
                status,
                reason: status.canonical_reason().map(str::to_owned),
            }),
        }
    }

    /// `GET path`, authenticated when the client has a token, decoded from JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.send(self.request(Method::GET, path), QUICK_TIMEOUT).await
    }

    /// A request to `path` on this server, with the bearer token when there is one.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token.expose_secret()),
            None => request,
        }
    }

    /// Sends `request`, waiting at most `timeout` for the whole answer, and
    /// decodes a JSON success, or explains the failure.
    pub async fn send<T: DeserializeOwned>(&self, request: RequestBuilder, timeout: Duration) -> Result<T, ApiError> {
        let response = request.timeout(timeout).send().await.map_err(|e| self.unreachable(&e, timeout))?;
        let status = response.status();
        let url = self.base.clone();
        if status.is_redirection() {
            let location = response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok());
            return Err(ApiError::Redirected { url, location: location.unwrap_or("another address").to_owned() });
        }
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e, timeout))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::InvalidResponse { url, reason: format!("{status} with {}", json_problem(&e)) });
        }
        let detail = serde_json::from_slice::<ErrorBody>(&bytes).ok().map(|body| detail_text(&body.detail));
        if status == StatusCode::UNAUTHORIZED && self.token.is_some() {
            return Err(ApiError::TokenRefused { server: url });
        }
        match (status.is_client_error(), detail) {
            (true, Some(detail)) => Err(ApiError::Rejected { status, detail }),
            (_, detail) => Err(ApiError::Server {
                url,
                status,
                reason: detail.or_else(|| status.canonical_reason().map(str::to_owned)),
            }),
        }
    }

    fn unreachable(&self, error: &reqwest::Error, timeout: Duration) -> ApiError {
        let reason = if error.is_timeout() {
            format!("it did not answer within {} seconds", timeout.as_secs())
        } else {
            root_cause(error)
        };
        ApiError::Unreachable { url: self.base.clone(), reason }
    }
}

/// Whether `url` names this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks a server URL and drops trailing slashes.
pub fn normalize_server(server: &str) -> Result<String, ApiError> {
    let trimmed = server.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(trimmed).map_err(|_| ApiError::InvalidUrl(server.to_owned()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ApiError::InvalidUrl(server.to_owned()));
    }
    Ok(trimmed.to_owned())
}

/// FastAPI sends a string `detail`, or a list of validation errors with `msg`s.
fn detail_text(detail: &serde_json::Value) -> String {
    match detail {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Array(items) => {
            let messages: Vec<&str> = items.iter().filter_map(|i| i.get("msg")?.as_str()).collect();
            if messages.is_empty() { detail.to_string() } else { messages.join("; ") }
        }
        other => other.to_string(),
    }
}

fn json_problem(error: &serde_json::Error) -> &'static str {
    if error.is_syntax() || error.is_eof() { "a body that is not JSON" } else { "JSON of an unexpected shape" }
}

/// The innermost cause: "Connection refused (os error 111)" rather than reqwest's wrapper text.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked_and_normalised() {
        assert_eq!(normalize_server("http://127.0.0.1:8000/").unwrap(), "http://127.0.0.1:8000");
        assert_eq!(normalize_server(" https://auth.example.com ").unwrap(), "https://auth.example.com");
        for bad in ["", "localhost:8000", "ftp://example.com", "http://", "not a url"] {
            assert!(matches!(normalize_server(bad), Err(ApiError::InvalidUrl(_))), "{bad:?}");
        }
    }

    #[test]
    fn plain_http_is_for_this_machine_only_unless_insecure() {
        for local in ["http://127.0.0.1:8000", "http://127.9.9.9", "http://localhost:1", "http://[::1]:8000"] {
            assert!(ApiClient::new(local, None, false).is_ok(), "{local}");
        }
        for remote in ["http://auth.example.com", "http://10.0.0.5:8000", "http://[2001:db8::1]"] {
            assert!(matches!(ApiClient::new(remote, None, false), Err(ApiError::PlainHttp { .. })), "{remote}");
            assert!(ApiClient::new(remote, None, true).is_ok(), "{remote}");
        }
        assert!(ApiClient::new("https://auth.example.com", None, false).is_ok());
    }

    #[test]
    fn fastapi_validation_details_read_as_sentences() {
        let list = serde_json::json!([{ "loc": ["body", "email"], "msg": "value is not a valid email address" }]);
        assert_eq!(detail_text(&list), "value is not a valid email address");
        assert_eq!(detail_text(&serde_json::json!("Email already registered")), "Email already registered");
    }
}
