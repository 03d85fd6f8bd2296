//! Why a call to the server failed, in sentences a person can act on.

use reqwest::StatusCode;

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0:?} is not a valid server URL (expected e.g. http://127.0.0.1:8000)")]
    InvalidUrl(String),
    #[error(
        "The server URL holds a user name or password; give the server's address alone (e.g. https://auth.example.com)"
    )]
    CredentialsInUrl,
    #[error(
        "Refusing to send a password or token over plain http:// to {host}: anyone on the network between could \
         read it. Use https://, or pass --insecure if you trust that network."
    )]
    PlainHttp { host: String },
    #[error(transparent)]
    BadProxy(#[from] crate::route::BadProxy),
    #[error(
        "The Loom server at {url} redirected the request to {location}; loom does not follow a redirect that would \
         carry your password or token elsewhere. Use the address it points to with --server if you trust it."
    )]
    Redirected { url: String, location: String },
    #[error("Cannot reach the Loom server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Cannot reach the Loom server at {url} through the proxy {proxy} (from {variable}): {reason}")]
    ProxyUnreachable { url: String, proxy: String, variable: &'static str, reason: String },
    /// A forward proxy answered instead of the server (it could not or would not pass the request on).
    #[error(
        "The proxy {proxy} (from {variable}) answered {status} instead of the Loom server at {url}; check the proxy, \
         or list the server in NO_PROXY to reach it directly."
    )]
    ProxyAnswered { url: String, proxy: String, variable: &'static str, status: StatusCode },
    /// The request could not be put together (a value that cannot travel in HTTP).
    #[error("Cannot send the request to {url}: {reason}")]
    Unsendable { url: String, reason: String },
    /// The server refused the token sent (expired, revoked, or signed by another key).
    /// Where the token came from decides what the user should do: see the commands.
    /// `detail` is the server's own explanation, when it gave one (a personal access token's
    /// says which token, and whether it expired or was revoked).
    #[error("The Loom server at {server} refused the token (expired, revoked or not issued by it).")]
    TokenRefused { server: String, detail: Option<String> },
    /// A 4xx with the server's own explanation.
    #[error("{detail}")]
    Rejected { status: StatusCode, detail: String, oauth_error: Option<String> },
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

    /// Whether the request may have done its work with its answer lost: the connection failed
    /// or timed out, or the server failed (a `5xx`). Not a refusal, which is an answer.
    pub fn answer_lost(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::ProxyUnreachable { .. } => true,
            Self::Server { status, .. } => status.is_server_error(),
            _ => false,
        }
    }

    /// The OAuth2 `error` code of a refusal (RFC 6749 §5.2), such as `invalid_grant`.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Self::Rejected { oauth_error, .. } => oauth_error.as_deref(),
            _ => None,
        }
    }
}
