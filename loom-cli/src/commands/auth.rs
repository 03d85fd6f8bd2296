//! The login a command acts with: a current access token, refreshed when it must be.
//!
//! A saved login's access token is refreshed when it has expired or expires within a minute,
//! and once more when the server refuses it. "Expired" is judged by the time loom saved with
//! the token (its own clock when the answer came, plus the lifetime the server gave), never by
//! comparing the token's `exp` (the server's clock) with this machine's, which may be off. A
//! refresh holds the settings file's lock from reading the refresh token to saving its
//! successor, so `loom`s started at once take turns: the first refreshes, the others find a
//! fresh token on disk and use it. A refresh starts only once the file is known to take the
//! successor (a spent token that cannot be saved would end the session after the server's
//! grace). `LOOM_TOKEN` is an access token only: there is nothing to refresh, and `loom` says
//! so when it expires.

use std::time::{Duration, SystemTime};

use loom_cli::api::{ApiClient, ApiError, REFRESH_RETRY_WITHIN, TokenGrant};
use loom_cli::credentials::{self, CredentialError, CredentialStore};
use loom_cli::known::KnownServers;
use loom_cli::session;
use loom_cli::settings::{SettingsFile, StoredLogin};
use secrecy::{ExposeSecret, SecretString};

use super::{Server, TOKEN_ENV, TokenSource, not_logged_in, token_from_env, warn};
use crate::failure::Failure;

/// How close to its expiry an access token is refreshed before use.
const REFRESH_AHEAD: Duration = Duration::from_secs(60);

/// Everything a command starts from.
pub struct Context {
    pub settings: SettingsFile,
    pub stored: Option<StoredLogin>,
    /// Why the saved login could not be read (the keyring failed, or held something unreadable):
    /// said when the login is needed.
    pub unread: Option<CredentialError>,
    /// Where the saved login is kept (the file or the keyring), if there is one.
    pub kept_in: Option<CredentialStore>,
    pub server: Server,
    pub known: KnownServers,
    pub insecure: bool,
}

/// A login in use for one command: its access token and where it came from.
pub struct Authorized {
    pub token: SecretString,
    pub source: TokenSource,
    /// When the session ends unless refreshed, for a saved login that says.
    pub session_ends: Option<SystemTime>,
}

impl Context {
    /// The login to act with: `LOOM_TOKEN` (only to a server the user named; refused once
    /// expired), else the saved login for this server (only to a server the user named or has
    /// logged in to from here), refreshed first when its access token expires within a minute.
    pub async fn authorize(&mut self) -> Result<Authorized, Failure> {
        self.refuse_unread()?;
        let (token, source) = TokenSource::pick(self.saved_place(), &self.server.url, self.stored.as_ref())?;
        self.authorize_with(token, source).await
    }

    /// The saved login could not be read, and it is the one a command would use (no
    /// `LOOM_TOKEN`, and the server is the login's): why, as the command's failure.
    fn refuse_unread(&mut self) -> Result<(), Failure> {
        let saved_server = credentials::marker(&self.settings).map(|marker| marker.server);
        if token_from_env().is_some() || saved_server.is_some_and(|server| server != self.server.url) {
            return Ok(());
        }
        self.unread.take().map_or(Ok(()), |error| Err(error.into()))
    }

    /// Where the saved login is kept, for a sentence: the settings file's path, or "the system
    /// keyring".
    pub fn saved_place(&self) -> String {
        self.kept_in.unwrap_or_default().place(self.settings.path())
    }

    /// The access token to print (`loom token`): `LOOM_TOKEN` while it has not expired, sent
    /// nowhere; else [`Context::authorize`]'s, which may ask the server to renew it.
    pub async fn token_to_print(&mut self) -> Result<SecretString, Failure> {
        self.refuse_unread()?;
        let (token, source) = TokenSource::pick(self.saved_place(), &self.server.url, self.stored.as_ref())?;
        if loom_cli::api::is_pat(token.expose_secret()) {
            // A personal access token is traded for a short access token, printed, kept nowhere.
            let authorized = self.authorize_with(token, source).await?;
            let client = ApiClient::new(&self.server.url, None, self.insecure)?;
            let grant = client.exchange_pat(&authorized.token).await;
            return grant.map(|grant| grant.access_token).map_err(|e| authorized.source.explain_pat(e));
        }
        match source {
            TokenSource::Env => {
                source.refuse_expired(&token, &self.server.url).map_err(|_| env_expired(&token))?;
                Ok(token)
            }
            // Checked with the server (renewed on a `401`), so the token printed is one it
            // takes now, whatever this machine's clock says.
            TokenSource::Saved(_) => Ok(self.with_login(async |client| client.me().await).await?.1.token),
        }
    }

    /// [`Context::authorize`] with the saved login, whatever `LOOM_TOKEN` says (`logout`
    /// ends the saved login).
    pub async fn authorize_saved(&mut self) -> Result<Authorized, Failure> {
        if let Some(error) = self.unread.take() {
            return Err(error.into());
        }
        let login = self.stored.as_ref().filter(|login| login.server == self.server.url);
        let Some(login) = login else {
            return Err(not_logged_in(&self.server.url, self.stored.as_ref()));
        };
        let token = SecretString::from(login.access_token.trim().to_owned());
        self.authorize_with(token, TokenSource::Saved(self.saved_place())).await
    }

    async fn authorize_with(&mut self, token: SecretString, source: TokenSource) -> Result<Authorized, Failure> {
        self.server.check_for_token(&source, &self.known)?;
        let has_refresh = self.stored.as_ref().is_some_and(|login| login.refresh_token.is_some());
        let token = match source {
            TokenSource::Env => {
                source.refuse_expired(&token, &self.server.url).map_err(|_| env_expired(&token))?;
                token
            }
            TokenSource::Saved(_) if has_refresh && self.stored.as_ref().is_some_and(expiring) => {
                self.refresh(&token).await?
            }
            TokenSource::Saved(_) => {
                // Nothing renews it (a personal access token, or a login from before sessions):
                // refused once it has expired.
                let now = SystemTime::now();
                let expired = self.stored.as_ref().and_then(saved_expiry).filter(|at| *at <= now);
                if let (Some(at), Some(name)) = (expired, self.stored.as_ref().and_then(|l| l.token_name.as_ref())) {
                    return Err(Failure::LoginRequired(format!(
                        "The personal access token '{name}' saved in {} expired {}: make a new one with 'loom tokens \
                         create' and save it with 'loom login --with-token'.",
                        self.saved_place(),
                        session::relative(at, now)
                    )));
                }
                if let Some(at) = expired {
                    return Err(Failure::LoginRequired(format!(
                        "Your saved login for {} expired {}. Run 'loom login'.",
                        self.server.url,
                        session::relative(at, now)
                    )));
                }
                token
            }
        };
        Ok(Authorized { token, source, session_ends: self.session_ends() })
    }

    /// Runs `call` with a client holding the login; when the server refuses a saved login's
    /// token and there is a refresh token, refreshes once and runs it again.
    pub async fn with_login<T>(
        &mut self,
        call: impl AsyncFn(&ApiClient) -> Result<T, ApiError>,
    ) -> Result<(T, Authorized), Failure> {
        let mut authorized = self.authorize().await?;
        let client = ApiClient::new(&self.server.url, Some(authorized.token.clone()), self.insecure)?;
        match call(&client).await {
            Ok(done) => Ok((done, authorized)),
            Err(ApiError::TokenRefused { .. })
                if matches!(authorized.source, TokenSource::Saved(_))
                    && self.stored.as_ref().is_some_and(|login| login.refresh_token.is_some()) =>
            {
                authorized.token = self.refresh(&authorized.token).await?;
                authorized.session_ends = self.session_ends();
                let client = ApiClient::new(&self.server.url, Some(authorized.token.clone()), self.insecure)?;
                let done = call(&client).await.map_err(|e| authorized.source.explain(e))?;
                Ok((done, authorized))
            }
            Err(error) => Err(authorized.source.explain(error)),
        }
    }

    /// How many personal access tokens the account holds, asked with the saved password login;
    /// `None` when that cannot be known (no such login, the server does not say).
    pub async fn live_pats(&mut self) -> Option<usize> {
        if token_from_env().is_some() || self.stored.as_ref().is_none_or(|l| l.token_name.is_some()) {
            return None;
        }
        let (tokens, _) = self.with_login(async |client| client.pats().await).await.ok()?;
        Some(tokens.len())
    }

    /// Before `what` (which only a password login may do) asks anything: refused, with what to
    /// do, when the login in use is a personal access token (exit 4).
    pub fn require_password_login(&self, what: &str) -> Result<(), Failure> {
        if token_from_env().is_some_and(|token| loom_cli::api::is_pat(&token)) {
            return Err(Failure::LoginRequired(format!(
                "{what} needs a password login, and {TOKEN_ENV} holds a personal access token: unset {TOKEN_ENV} \
                 and run 'loom login'."
            )));
        }
        if token_from_env().is_none()
            && let Some(name) =
                self.stored.as_ref().filter(|l| l.server == self.server.url).and_then(|l| l.token_name.as_ref())
        {
            return Err(Failure::LoginRequired(format!(
                "{what} needs a password login, and this login is the personal access token '{name}': run 'loom \
                 login' with your password first."
            )));
        }
        Ok(())
    }

    /// Whether the login in use is a personal access token (`LOOM_TOKEN`, or a saved one).
    pub fn holds_pat(authorized: &Authorized) -> bool {
        loom_cli::api::is_pat(authorized.token.expose_secret())
    }

    /// A fresh access token for the saved login, of which `used` is the one in hand: under the
    /// settings file's lock, taken from the file when another `loom` refreshed meanwhile, else
    /// traded for with the refresh token, and saved with its successor before the lock goes.
    /// A refused refresh ends the login here too: the dead tokens are forgotten (exit 4).
    async fn refresh(&mut self, used: &SecretString) -> Result<SecretString, Failure> {
        let mut locked = self.settings.lock()?;
        let _shared = credentials::lock_shared_login(&locked.file)?;
        let (login, store) = match credentials::read(&locked.file)? {
            Some(kept) if kept.login.server == self.server.url => (kept.login, kept.store),
            other => return Err(not_logged_in(&self.server.url, other.map(|kept| kept.login).as_ref())),
        };
        let on_disk = SecretString::from(login.access_token.trim().to_owned());
        if on_disk.expose_secret() != used.expose_secret() && !expiring(&login) {
            // Refreshed by another loom while this one waited for the lock.
            self.stored = Some(login);
            self.settings = locked.into_file();
            return Ok(on_disk);
        }
        let Some(refresh_token) = login.refresh_token.clone() else {
            return Err(Failure::LoginRequired(format!(
                "Your saved login for {} has expired. Run 'loom login'.",
                self.server.url
            )));
        };
        // The refresh token is spent by the server's answer: only spend it if the successor
        // can be kept (read-only, immutable, a full directory: said now, the session intact).
        // A keyring has just answered the read.
        if store == CredentialStore::File {
            locked.file.check_writable().map_err(|error| {
                Failure::failed(format!(
                    "{error}. The saved login needs renewing, so nothing was sent: the session is intact and renews \
                     once the file can be written"
                ))
            })?;
        }
        let client = ApiClient::new(&self.server.url, None, self.insecure)?;
        match client.refresh(&SecretString::from(refresh_token)).await {
            Ok(grant) => {
                let renewed = renewed_login(&login, &grant);
                save_renewal(&mut locked.file, &renewed, store)?;
                if let Some(exposed) =
                    super::git::exposure(locked.file.path()).filter(|_| store == CredentialStore::File)
                {
                    warn(&exposed);
                }
                self.stored = Some(renewed);
                self.settings = locked.into_file();
                Ok(grant.access_token)
            }
            Err(error) if error.oauth_error() == Some("invalid_grant") => {
                credentials::forget(&mut locked.file)?;
                self.stored = None;
                self.settings = locked.into_file();
                Err(Failure::LoginRequired(ended_because(&error, &self.server.url)))
            }
            Err(error) => Err(error.into()),
        }
    }

    fn session_ends(&self) -> Option<SystemTime> {
        let login = self.stored.as_ref()?;
        humantime::parse_rfc3339(login.session_expires_at.as_deref()?).ok()
    }
}

/// The saved login after a refresh: the new pair, the same server and account.
fn renewed_login(login: &StoredLogin, grant: &TokenGrant) -> StoredLogin {
    let now = SystemTime::now();
    StoredLogin {
        server: login.server.clone(),
        email: login.email.clone(),
        access_token: grant.access_token.expose_secret().to_owned(),
        token_type: grant.token_type.clone(),
        expires_at: rfc3339(now + Duration::from_secs(grant.expires_in)),
        // A server that does not rotate keeps the token it had.
        refresh_token: grant
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .or(login.refresh_token.clone()),
        session_expires_at: grant
            .refresh_expires_in
            .map(|seconds| rfc3339(now + Duration::from_secs(seconds)))
            .or(login.session_expires_at.clone()),
        token_name: None,
    }
}

/// The login `loom login` saves from a grant.
pub fn new_login(server: &str, email: &str, grant: &TokenGrant) -> StoredLogin {
    let now = SystemTime::now();
    StoredLogin {
        server: server.to_owned(),
        email: email.to_owned(),
        access_token: grant.access_token.expose_secret().to_owned(),
        token_type: grant.token_type.clone(),
        expires_at: rfc3339(now + Duration::from_secs(grant.expires_in)),
        refresh_token: grant.refresh_token.as_ref().map(|t| t.expose_secret().to_owned()),
        session_expires_at: grant.refresh_expires_in.map(|seconds| rfc3339(now + Duration::from_secs(seconds))),
        token_name: None,
    }
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Whether `login`'s access token has expired or expires within [`REFRESH_AHEAD`], by the time
/// saved with it: this machine's clock when the server's answer came, plus the lifetime it
/// gave (so a clock that is off from the server's does not matter). A login saved without a
/// readable time is judged by the token's `exp`; one with neither is left for the server.
fn expiring(login: &StoredLogin) -> bool {
    saved_expiry(login).is_some_and(|at| at <= SystemTime::now() + REFRESH_AHEAD)
}

/// When `login`'s access token expires by this machine's clock (see [`expiring`]).
fn saved_expiry(login: &StoredLogin) -> Option<SystemTime> {
    let saved = humantime::parse_rfc3339(&login.expires_at).ok();
    saved.or_else(|| session::expiry(login.access_token.trim()))
}

/// Saves a renewed login, trying again for a few seconds when the file cannot take it (a
/// disk filling up, a file made read-only meanwhile): the refresh token is spent, and the
/// server answers the spent one again, with this successor, only for its reuse grace.
fn save_renewal(file: &mut SettingsFile, login: &StoredLogin, store: CredentialStore) -> Result<(), Failure> {
    let renewed = std::time::Instant::now();
    loop {
        match credentials::renew(file, login, store) {
            Ok(()) => return Ok(()),
            Err(_) if renewed.elapsed() < REFRESH_RETRY_WITHIN => std::thread::sleep(Duration::from_millis(250)),
            Err(error) => {
                let place = store.place(file.path());
                return Err(Failure::failed(format!(
                    "{error}. The login to {} was renewed but could not be saved: run loom again within a few \
                     seconds once {place} can be written, and the server answers the renewal again; later, the \
                     session has ended and 'loom login' starts a new one",
                    login.server
                )));
            }
        }
    }
}

/// What a refused refresh means, for the person: a token already used elsewhere (this login
/// was copied: another copy renewed it, and the server ended the session for both), or an
/// ended session.
fn ended_because(error: &ApiError, server: &str) -> String {
    let copied = matches!(error, ApiError::Rejected { detail, .. } if detail.contains(REUSED_DETAIL));
    if copied {
        format!(
            "Your session on {server} has ended: another copy of this login (a copied settings file, or another \
             machine using the same one) renewed it first, so this copy's token was already used, and the server \
             ended the session for both to be safe. Run 'loom login' here, and log in separately on each machine."
        )
    } else {
        format!(
            "Your session on {server} has ended (it expired, was logged out or revoked, or the password changed). \
             Run 'loom login'."
        )
    }
}

/// What the server's refusal of a spent refresh token says, and no other refusal does.
const REUSED_DETAIL: &str = "already used by another copy of this login";

fn env_expired(token: &SecretString) -> Failure {
    let ago = session::expiry(token.expose_secret())
        .map(|at| format!(" {}", session::relative(at, SystemTime::now())))
        .unwrap_or_default();
    Failure::LoginRequired(format!(
        "The token in {TOKEN_ENV} expired{ago}. {TOKEN_ENV} holds an access token only, which cannot be renewed: \
         set it to a current token, or unset it to use the login saved by 'loom login', which renews itself."
    ))
}
