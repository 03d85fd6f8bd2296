//! `ApiClient`: one HTTP client for every command that needs the Loom server.
//!
//! It knows the base URL, sends the bearer token when it has one, applies
//! timeouts and a `User-Agent`, reaches this machine directly and other servers
//! through the environment's proxy ([`crate::route`]), and turns every failure
//! into an [`ApiError`] a person can read. The calls themselves are in
//! [`endpoints`].

mod endpoints;
mod error;
mod pats;
mod second_factor;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use endpoints::{Account, MAX_EXPIRES_IN, REFRESH_RETRY_WITHIN, REFRESH_TIMEOUT, SessionInfo, TokenGrant};
pub use error::ApiError;
pub use pats::{CreatedPat, PAT_PREFIX, PatInfo, is_pat};
pub use second_factor::{Enrolment, MFA_REQUIRED};

use crate::route::{self, Proxy};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call that costs the server no password hash may wait for the whole answer.
pub const QUICK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `login` and `register` may wait: the server hashes the password,
/// and may queue the hash behind others.
pub const HASHING_TIMEOUT: Duration = Duration::from_secs(30);
/// Same-origin redirects a `GET` may follow.
const MAX_REDIRECTS: usize = 5;
const USER_AGENT: &str = concat!("loom/", env!("CARGO_PKG_VERSION"));

#[derive(Deserialize)]
struct ErrorBody {
    detail: serde_json::Value,
    #[serde(default)]
    error: Option<String>,
}

/// A client of one Loom server, optionally authenticated.
pub struct ApiClient {
    base: String,
    origin: url::Origin,
    http: reqwest::Client,
    token: Option<SecretString>,
    /// The proxy requests go through, if any.
    proxy: Option<Proxy>,
}

impl ApiClient {
    /// A client for `server` (e.g. `http://127.0.0.1:8000`), sending `token` as a bearer when given.
    ///
    /// Plain `http://` is refused for any host but this machine's (loopback)
    /// unless `insecure`. This machine is always reached directly; other servers
    /// through the proxy the environment names. No redirect is followed but a
    /// same-origin one of a `GET`, so a password or token never goes anywhere else.
    pub fn new(server: &str, token: Option<SecretString>, insecure: bool) -> Result<Self, ApiError> {
        Self::with_env(server, token, insecure, |name| std::env::var(name).ok())
    }

    /// [`ApiClient::new`], reading proxy variables from `env`.
    pub fn with_env(
        server: &str,
        token: Option<SecretString>,
        insecure: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ApiError> {
        let base = normalize_server(server)?;
        let url = Url::parse(&base).map_err(|_| ApiError::InvalidUrl(server.to_owned()))?;
        if url.scheme() == "http" && !insecure && !route::is_loopback(&url) {
            return Err(ApiError::PlainHttp { host: url.host_str().unwrap_or_default().to_owned() });
        }
        let proxy = route::proxy_for(&url, env)?;
        let cannot_build = |e: reqwest::Error| ApiError::Unsendable { url: base.clone(), reason: root_cause(&e) };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(proxy) = &proxy {
            builder = builder.proxy(reqwest::Proxy::all(proxy.url.as_str()).map_err(cannot_build)?);
        }
        if let Some(url::Host::Domain(name)) = url.host()
            && route::is_localhost_name(name)
        {
            // `localhost` means this machine, whatever a resolver says (port 0: the URL's).
            let loopback = [SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), SocketAddr::from((Ipv6Addr::LOCALHOST, 0))];
            builder = builder.resolve_to_addrs(name, &loopback);
        }
        let http = builder.build().map_err(cannot_build)?;
        Ok(Self { base, origin: url.origin(), http, token, proxy })
    }

    /// The server's base URL, normalised.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// A request to `path` on this server, with the bearer token when there is one.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token.expose_secret()),
            None => request,
        }
    }

    /// `GET path`, authenticated when the client has a token, decoded from JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.send(self.request(Method::GET, path), QUICK_TIMEOUT).await
    }

    /// Sends `request`, waiting at most `timeout` for the whole answer, and
    /// decodes a JSON success, or explains the failure.
    pub async fn send<T: DeserializeOwned>(&self, request: RequestBuilder, timeout: Duration) -> Result<T, ApiError> {
        let (status, bytes) = self.exchange(request, timeout).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidResponse {
                url: self.base.clone(),
                reason: format!("{status} with {}", json_problem(&e)),
            });
        }
        Err(self.failure(status, &bytes))
    }

    /// Sends `request` and expects a success without a body to read (`204`, or any `2xx`).
    pub async fn send_empty(&self, request: RequestBuilder, timeout: Duration) -> Result<(), ApiError> {
        let (status, bytes) = self.exchange(request, timeout).await?;
        if status.is_success() { Ok(()) } else { Err(self.failure(status, &bytes)) }
    }

    /// Sends `request` (following a `GET`'s same-origin redirects), reads the whole body, and
    /// sorts out answers that did not come from the server (a proxy's) or went elsewhere.
    async fn exchange(&self, request: RequestBuilder, timeout: Duration) -> Result<(StatusCode, Vec<u8>), ApiError> {
        let response = self.execute(request.timeout(timeout)).await?;
        let status = response.status();
        let from_proxy = self.proxy.as_ref().filter(|_| {
            status == StatusCode::PROXY_AUTHENTICATION_REQUIRED || response.headers().contains_key("proxy-status")
        });
        if let Some(proxy) = from_proxy {
            return Err(self.proxy_answered(proxy, status));
        }
        if status.is_redirection() {
            let location = response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok());
            let location = location.unwrap_or("another address").to_owned();
            return Err(ApiError::Redirected { url: self.base.clone(), location });
        }
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e, timeout))?;
        // A failure without the server's `{"detail"}` came from the proxy in between, if there is one.
        if let Some(proxy) = &self.proxy
            && !status.is_success()
            && serde_json::from_slice::<ErrorBody>(&bytes).is_err()
        {
            return Err(self.proxy_answered(proxy, status));
        }
        Ok((status, bytes.to_vec()))
    }

    /// Sends a request, following same-origin redirects of a `GET` only: a request that
    /// carries a password, a form or a body is never sent again, anywhere.
    async fn execute(&self, request: RequestBuilder) -> Result<Response, ApiError> {
        let mut request = request.build().map_err(|e| self.unsendable(&e))?;
        let timeout = request.timeout().copied().unwrap_or(QUICK_TIMEOUT);
        for _ in 0..=MAX_REDIRECTS {
            let again = (request.method() == Method::GET).then(|| request.try_clone()).flatten();
            let response = self.http.execute(request).await.map_err(|e| self.unreachable(&e, timeout))?;
            let next = response
                .status()
                .is_redirection()
                .then(|| response.headers().get(reqwest::header::LOCATION)?.to_str().ok())
                .flatten()
                .and_then(|location| response.url().join(location).ok())
                .filter(|target| target.origin() == self.origin);
            match (again, next) {
                (Some(mut again), Some(target)) => {
                    *again.url_mut() = target;
                    request = again;
                }
                _ => return Ok(response),
            }
        }
        Err(ApiError::Redirected { url: self.base.clone(), location: "itself, again and again".into() })
    }

    /// A failed answer from the server itself, explained.
    fn failure(&self, status: StatusCode, bytes: &[u8]) -> ApiError {
        let body = serde_json::from_slice::<ErrorBody>(bytes).ok();
        if status == StatusCode::UNAUTHORIZED && self.token.is_some() {
            let detail = body.map(|b| detail_text(&b.detail));
            return ApiError::TokenRefused { server: self.base.clone(), detail };
        }
        match (status.is_client_error(), body) {
            (true, Some(body)) => {
                ApiError::Rejected { status, detail: detail_text(&body.detail), oauth_error: body.error }
            }
            (_, body) => ApiError::Server {
                url: self.base.clone(),
                status,
                reason: body.map(|b| detail_text(&b.detail)).or_else(|| status.canonical_reason().map(str::to_owned)),
            },
        }
    }

    fn proxy_answered(&self, proxy: &Proxy, status: StatusCode) -> ApiError {
        ApiError::ProxyAnswered { url: self.base.clone(), proxy: proxy.shown(), variable: proxy.variable, status }
    }

    fn unreachable(&self, error: &reqwest::Error, timeout: Duration) -> ApiError {
        if error.is_builder() {
            return self.unsendable(error);
        }
        let cause = root_cause(error);
        let reason = if error.is_timeout() {
            format!("it did not answer within {} seconds", timeout.as_secs())
        } else if self.proxy.is_some() && cause.contains("unsuccessful") && cause.contains("tunnel") {
            "the proxy refused to open a tunnel to it (it answered CONNECT with an error)".to_owned()
        } else {
            cause
        };
        match &self.proxy {
            Some(proxy) => ApiError::ProxyUnreachable {
                url: self.base.clone(),
                proxy: proxy.shown(),
                variable: proxy.variable,
                reason,
            },
            None => ApiError::Unreachable { url: self.base.clone(), reason },
        }
    }

    fn unsendable(&self, error: &reqwest::Error) -> ApiError {
        ApiError::Unsendable { url: self.base.clone(), reason: root_cause(error) }
    }
}

/// Checks a server URL and drops trailing slashes.
pub fn normalize_server(server: &str) -> Result<String, ApiError> {
    let trimmed = server.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|_| ApiError::InvalidUrl(server.trim().to_owned()))?;
    if !url.username().is_empty() || url.password().is_some() {
        // It would go out as HTTP Basic credentials, and be shown in every message.
        return Err(ApiError::CredentialsInUrl);
    }
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ApiError::InvalidUrl(server.trim().to_owned()));
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
        assert_eq!(normalize_server(" https://auth.example.com\n").unwrap(), "https://auth.example.com");
        for bad in ["", "localhost:8000", "ftp://example.com", "http://", "not a url"] {
            assert!(matches!(normalize_server(bad), Err(ApiError::InvalidUrl(_))), "{bad:?}");
        }
        for secret in ["http://user:s3cret@127.0.0.1:1", "https://user@auth.example.com"] {
            let refused = normalize_server(secret).unwrap_err();
            assert!(matches!(refused, ApiError::CredentialsInUrl) && !refused.to_string().contains("s3cret"));
        }
    }

    #[test]
    fn plain_http_is_for_this_machine_only_unless_insecure() {
        let no_env = |_: &str| None;
        for local in ["http://127.0.0.1:8000", "http://127.9.9.9", "http://localhost:1", "http://[::1]:8000"] {
            assert!(ApiClient::with_env(local, None, false, no_env).is_ok(), "{local}");
        }
        for remote in ["http://auth.example.com", "http://10.0.0.5:8000", "http://[2001:db8::1]"] {
            let refused = ApiClient::with_env(remote, None, false, no_env);
            assert!(matches!(refused, Err(ApiError::PlainHttp { .. })), "{remote}");
            assert!(ApiClient::with_env(remote, None, true, no_env).is_ok(), "{remote}");
        }
        assert!(ApiClient::with_env("https://auth.example.com", None, false, no_env).is_ok());
    }

    #[test]
    fn fastapi_validation_details_read_as_sentences() {
        let list = serde_json::json!([{ "loc": ["body", "email"], "msg": "value is not a valid email address" }]);
        assert_eq!(detail_text(&list), "value is not a valid email address");
        assert_eq!(detail_text(&serde_json::json!("Email already registered")), "Email already registered");
    }
}
