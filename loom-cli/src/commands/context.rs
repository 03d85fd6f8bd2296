//! What every command starts from: the settings file and its saved login, the server and
//! where it was named, the servers this user has logged in to, and where a token comes from.
//! The rules of where a password or token may go live here, once.

use std::path::PathBuf;
use std::time::SystemTime;

use loom_cli::api::{ApiError, normalize_server};
use loom_cli::known::KnownServers;
use loom_cli::settings::{SettingsFile, StoredLogin};
use secrecy::{ExposeSecret, SecretString};

use super::{DEFAULT_SERVER, TOKEN_ENV};
use crate::failure::Failure;
use crate::prompt;

/// Where the server's URL came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedBy {
    /// `--server` or `LOOM_SERVER`: the user's own word.
    User,
    /// The saved login in this settings file, which may have come with the project.
    File(PathBuf),
    /// Nothing was said: loom's default, on this machine.
    Default,
}

/// The server a command talks to.
#[derive(Debug, Clone)]
pub struct Server {
    /// Normalised (no trailing slash).
    pub url: String,
    pub named: NamedBy,
}

impl Server {
    /// `--server` (or `LOOM_SERVER`), else the saved login's server, else the default.
    pub fn resolve(given: Option<&str>, saved: Option<&str>, settings: &SettingsFile) -> Result<Self, Failure> {
        let (url, named) = match (given, saved) {
            (Some(given), _) => (given, NamedBy::User),
            (None, Some(saved)) => (saved, NamedBy::File(settings.path().to_owned())),
            (None, None) => (DEFAULT_SERVER, NamedBy::Default),
        };
        let url = normalize_server(url).map_err(|e| Failure::Usage(format!("{e}")))?;
        Ok(Self { url, named })
    }

    /// Checks that a password may be sent here: to a server the user named, loom's default, or
    /// one this user has logged in to from this machine. A server only the settings file names
    /// is confirmed on the terminal, and refused without one.
    pub fn confirm_for_password(&self, known: &KnownServers) -> Result<(), Failure> {
        self.confirm_sending(known, "your password")
    }

    /// [`Server::confirm_for_password`], for `what` is sent (a password, a personal access token).
    pub fn confirm_sending(&self, known: &KnownServers, what: &str) -> Result<(), Failure> {
        let NamedBy::File(path) = &self.named else { return Ok(()) };
        if known.contains(&self.url) {
            return Ok(());
        }
        let question = format!(
            "{} names the server {}, which you have not logged in to from this machine. Send {what} there? [y/N] ",
            path.display(),
            self.url
        );
        match prompt::line(&question).map_err(|e| Failure::failed(format!("cannot read the answer: {e}")))? {
            Some(answer) if matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") => Ok(()),
            Some(_) => Err(Failure::failed("nothing was sent")),
            None => Err(Failure::Usage(format!(
                "{} names the server {}, which you have not logged in to from this machine; loom sends {what} \
                 there only when you name it: add --server {}",
                path.display(),
                self.url,
                self.url
            ))),
        }
    }

    /// Checks that a token from `source` may be sent here: `LOOM_TOKEN` only to a server the
    /// user named; a saved login's token only to a server the user named or has logged in to
    /// from this machine (a settings file that came with a project may name any server).
    pub fn check_for_token(&self, source: &TokenSource, known: &KnownServers) -> Result<(), Failure> {
        match (source, &self.named) {
            (_, NamedBy::User) => Ok(()),
            (TokenSource::Env, NamedBy::File(path)) => Err(Failure::Usage(format!(
                "{TOKEN_ENV} is sent only to a server you name, and {} is named by {}: add --server URL or set \
                 LOOM_SERVER",
                self.url,
                path.display()
            ))),
            (TokenSource::Env, NamedBy::Default) => Err(Failure::Usage(format!(
                "{TOKEN_ENV} is sent only to a server you name: add --server URL or set LOOM_SERVER"
            ))),
            (TokenSource::Saved(_), _) if known.contains(&self.url) => Ok(()),
            (TokenSource::Saved(place), _) => Err(Failure::LoginRequired(format!(
                "The login saved in {place} is for {}, which you have not logged in to from this machine, so loom \
                 does not send its token there. If you trust that server, run 'loom login --server {}'.",
                self.url, self.url
            ))),
        }
    }
}

/// `LOOM_TOKEN`, when set to something, without the whitespace around it (secret stores and
/// `$(cat file)` add line breaks; a token never contains whitespace, RFC 7519 §7.1).
pub fn token_from_env() -> Option<String> {
    std::env::var(TOKEN_ENV).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// What is wrong with `token` as a bearer credential (RFC 6750 §2.1's `b64token`: letters,
/// digits, `-._~+/`, then `=`s), if anything.
fn token_problem(token: &str) -> Option<String> {
    if token.is_empty() {
        return Some("it is empty".into());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/');
    let body = token.trim_end_matches('=');
    let (at, bad) = body.char_indices().find(|(_, c)| !allowed(*c))?;
    let what = match bad {
        c if c.is_whitespace() => "whitespace".to_owned(),
        c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
        c => format!("{c:?}"),
    };
    Some(format!("it contains {what} at character {}, which no token has", body[..at].chars().count() + 1))
}

/// Exit 4: no saved login for `server`; when the saved one is for another server, says which
/// (a login is only ever sent to the server it came from).
pub fn not_logged_in(server: &str, stored: Option<&StoredLogin>) -> Failure {
    Failure::LoginRequired(match stored {
        Some(login) if login.server != server => format!(
            "Not logged in to {server} (the saved login is for {}). Run 'loom login --server {server}'.",
            login.server
        ),
        _ => "Not logged in. Run 'loom login'.".into(),
    })
}

/// Where the token a command sends comes from, which decides what the user
/// should do when the server refuses it.
pub enum TokenSource {
    Env,
    /// The saved login, and where it is kept, for a sentence: the settings file's path, or
    /// "the system keyring".
    Saved(String),
}

impl TokenSource {
    /// `LOOM_TOKEN`, else the saved login for `server`; exit 4 when there is neither.
    pub fn pick(place: String, server: &str, stored: Option<&StoredLogin>) -> Result<(SecretString, Self), Failure> {
        let (token, source) = match (token_from_env(), stored) {
            (Some(token), _) => (token, Self::Env),
            (None, Some(login)) if login.server == server => (login.access_token.trim().to_owned(), Self::Saved(place)),
            (None, _) => return Err(not_logged_in(server, stored)),
        };
        if let Some(problem) = token_problem(&token) {
            return Err(Failure::LoginRequired(match source {
                Self::Env => format!("{TOKEN_ENV} does not hold a usable token: {problem}. Set it to the token alone."),
                Self::Saved(ref place) => {
                    format!("The login saved in {place} holds no usable token: {problem}. Run 'loom login'.")
                }
            }));
        }
        Ok((SecretString::from(token), source))
    }

    /// The token's expiry, when it has certainly passed: the user must log in again (exit 4).
    pub fn refuse_expired(&self, token: &SecretString, server: &str) -> Result<Option<SystemTime>, Failure> {
        let expires = loom_cli::session::expiry(token.expose_secret());
        let now = SystemTime::now();
        match expires {
            Some(at) if at <= now => {
                let ago = loom_cli::session::relative(at, now);
                Err(Failure::LoginRequired(match self {
                    Self::Env => {
                        format!("The token in {TOKEN_ENV} expired {ago}. Set it to a current token, or unset it.")
                    }
                    Self::Saved(_) => format!("Your saved login for {server} expired {ago}. Run 'loom login'."),
                }))
            }
            _ => Ok(expires),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Env => TOKEN_ENV.to_owned(),
            Self::Saved(place) => place.clone(),
        }
    }

    /// `error` of a call made with a personal access token: a refusal of the token (`401`, or
    /// `400` at the token exchange) names it and says what to do (exit 4).
    pub fn explain_pat(&self, error: ApiError) -> Failure {
        match error {
            ApiError::Rejected { detail, .. } if detail.contains("personal access token") => {
                self.explain(ApiError::TokenRefused { server: String::new(), detail: Some(detail) })
            }
            other => self.explain(other),
        }
    }

    /// `error`, told in terms of this source when the server refused the token.
    pub fn explain(&self, error: ApiError) -> Failure {
        let ApiError::TokenRefused { server, detail } = &error else {
            return error.into();
        };
        // A token that is not one (a typo, a truncated paste) or one the server never made.
        if let Some(detail) = detail.as_deref().filter(|d| d.starts_with("Not a valid") || d.starts_with("Unknown")) {
            let holder = match self {
                Self::Env => TOKEN_ENV.to_owned(),
                Self::Saved(place) => place.clone(),
            };
            let what = if detail.starts_with("Unknown") { "a token it never made" } else { "no whole token" };
            return Failure::LoginRequired(format!(
                "The personal access token in {holder} was refused: {server} says it holds {what}; copy it again as \
                 'loom tokens create' printed it, or make a new one."
            ));
        }
        // A personal access token's refusal names it and says why: said, with what to do.
        if let Some(detail) = detail.as_deref().filter(|d| d.contains("personal access token")) {
            let what_to_do = match self {
                Self::Env => format!("make a new one with 'loom tokens create' and set {TOKEN_ENV} to it"),
                Self::Saved(_) => "make a new one with 'loom tokens create' and save it with 'loom login \
                                   --with-token'"
                    .to_owned(),
            };
            let on = if server.is_empty() { String::new() } else { format!(" (at {server})") };
            return Failure::LoginRequired(format!("{detail}{on}: {what_to_do}."));
        }
        Failure::LoginRequired(match self {
            Self::Env => format!(
                "The token in {TOKEN_ENV} was refused by {server}: it has expired, was revoked, or was not issued \
                 there. Set {TOKEN_ENV} to a current token, or unset it to use the login saved by 'loom login'."
            ),
            Self::Saved(_) => format!("Your saved login for {server} has expired or was revoked. Run 'loom login'."),
        })
    }
}
