//! Sessions: how long a login lasts, and the refresh tokens that keep it going.
//!
//! A successful password login starts a session and hands out its first refresh token: 256
//! random bits, kept by the store only as a SHA-256 digest. Each refresh spends the token and
//! hands out the next (rotation, RFC 9700 §4.14.2), in one atomic statement, so concurrent
//! refreshes of one token cannot both rotate it. The token just spent stays good for
//! `reuse_grace` seconds and answers with the same successor (a lost answer retried, several
//! processes refreshing at once: the session stays one session); presented after the grace it
//! is a replay, and the whole session ends (its refresh token and its access tokens).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::keyring::seal::{SealError, Sealer};
use crate::store::{NewSession, Rotation, SessionRow, StoreError, UserStore};

/// What every refresh token starts with, so secret scanners can tell one.
pub const REFRESH_PREFIX: &str = "loomrt_";
/// Random bytes in a refresh token (256 bits).
const REFRESH_BYTES: usize = 32;
/// Longest `User-Agent` kept with a session, in characters.
const MAX_USER_AGENT_CHARS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot seal or open a refresh token: {0}")]
    Seal(#[from] SealError),
    #[error("no randomness for a session")]
    Random,
}

/// Who is asking: the client address and its `User-Agent`, kept with the session.
pub struct Client<'a> {
    pub address: &'a str,
    pub user_agent: &'a str,
}

/// How long sessions last, and how long a spent refresh token still answers.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// A session not refreshed for this long ends.
    pub idle: Duration,
    /// A session ends this long after its login, however it is used.
    pub max_age: Duration,
    /// A refresh token presented again within this long after it was spent answers again.
    pub reuse_grace: Duration,
}

/// A session just started, or refreshed: its id, its current refresh token, and when it ends
/// unless refreshed (the earlier of its idle and absolute expiry). `Debug` hides the token.
#[derive(Debug)]
pub struct Granted {
    pub session: SessionRow,
    pub refresh_token: SecretString,
    /// A spent refresh token presented again within the grace: answered with its successor.
    pub retried: bool,
}

impl Granted {
    /// Seconds from `now` until the session ends unless refreshed.
    pub fn expires_in(&self, now: i64) -> i64 {
        self.session.idle_expires_at.min(self.session.expires_at).saturating_sub(now).max(0)
    }
}

/// Why a refresh token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, spent long ago, expired, revoked, of an inactive account, or of another client.
    Invalid,
    /// Spent, and presented again after the grace: the session it belonged to has ended.
    Reused { session_id: String, user_id: i64 },
}

impl SessionPolicy {
    /// Starts a session for `user_id` through `client_id` at `now`.
    pub async fn start(
        &self,
        store: &UserStore,
        user_id: i64,
        client_id: &str,
        client: &Client<'_>,
        now: i64,
    ) -> Result<Granted, SessionError> {
        let id = random_hex(16)?;
        let (refresh_token, refresh_digest) = mint()?;
        let user_agent = bounded(client.user_agent);
        let new = NewSession {
            id: &id,
            user_id,
            client_id,
            address: client.address,
            user_agent: &user_agent,
            now,
            idle_expires_at: now.saturating_add(seconds(self.idle)).min(now.saturating_add(seconds(self.max_age))),
            expires_at: now.saturating_add(seconds(self.max_age)),
            refresh_digest: &refresh_digest,
        };
        store.create_session(&new).await?;
        let session = SessionRow {
            id: id.clone(),
            user_id,
            client_id: client_id.to_owned(),
            created_at: now,
            created_address: client.address.to_owned(),
            created_user_agent: user_agent.clone(),
            last_used_at: now,
            last_address: client.address.to_owned(),
            last_user_agent: user_agent.clone(),
            idle_expires_at: new.idle_expires_at,
            expires_at: new.expires_at,
            revoked_at: None,
            rotated_at: None,
            sealed_refresh: None,
        };
        Ok(Granted { session, refresh_token, retried: false })
    }

    /// Trades the refresh token `presented` for the session's next one (see the module's
    /// documentation), or says why not. `client_id`, when the request names one, must be the
    /// session's. A replay after the grace ends the session before it answers.
    pub async fn refresh(
        &self,
        store: &UserStore,
        sealer: &Sealer,
        presented: &SecretString,
        client_id: Option<&str>,
        client: &Client<'_>,
        now: i64,
    ) -> Result<Result<Granted, Refusal>, SessionError> {
        let presented_digest = digest(presented.expose_secret());
        let (next, next_digest) = mint()?;
        // The session the token names, to seal the successor to. This read decides nothing: the
        // UPDATE still requires the presented digest to be current, so of concurrent refreshes
        // of one token exactly one rotates it, and the others take the retry path.
        let Some((current, _)) = store.session_by_refresh(&presented_digest).await? else {
            return self.retry_or_replay(store, sealer, &presented_digest, client_id, now).await;
        };
        let sealed = sealer.seal_refresh(&current.id, next.expose_secret().as_bytes())?;
        let rotation = Rotation {
            presented_digest: &presented_digest,
            new_digest: &next_digest,
            sealed_refresh: &sealed,
            client_id,
            address: client.address,
            user_agent: &bounded(client.user_agent),
            now,
            idle_expires_at: now.saturating_add(seconds(self.idle)),
        };
        match store.rotate_refresh(&rotation).await? {
            Some(session) => Ok(Ok(Granted { session, refresh_token: next, retried: false })),
            // Spent by a concurrent refresh between the two statements, or not live.
            None => self.retry_or_replay(store, sealer, &presented_digest, client_id, now).await,
        }
    }

    /// A refresh token that is not a session's current one: the one just spent, presented
    /// again within the grace (answered with its successor), or after it (a replay: the
    /// session ends), or one this host knows nothing of.
    async fn retry_or_replay(
        &self,
        store: &UserStore,
        sealer: &Sealer,
        presented_digest: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<Result<Granted, Refusal>, SessionError> {
        let Some((session, user_active)) = store.session_by_previous(presented_digest).await? else {
            return Ok(Err(Refusal::Invalid));
        };
        if !session.live(now) || !user_active || client_id.is_some_and(|id| id != session.client_id) {
            return Ok(Err(Refusal::Invalid));
        }
        let spent_at = session.rotated_at.unwrap_or(i64::MIN);
        if now.saturating_sub(spent_at) < seconds(self.reuse_grace)
            && let Some(sealed) = &session.sealed_refresh
        {
            let successor = sealer.open_refresh(&session.id, sealed)?;
            let token = String::from_utf8(successor.to_vec()).map_err(|_| SealError::WrongKey)?;
            return Ok(Ok(Granted { session, refresh_token: SecretString::from(token), retried: true }));
        }
        store.revoke_session(&session.id, None, now).await?;
        Ok(Err(Refusal::Reused { session_id: session.id, user_id: session.user_id }))
    }
}

/// The claim that names an access token's session.
pub const SID_CLAIM: &str = "sid";

/// The `sid` claim naming `session`, as the component takes extra claims (a JSON value).
pub fn sid_claim(session: &str) -> (String, String) {
    (SID_CLAIM.to_owned(), serde_json::Value::String(session.to_owned()).to_string())
}

/// A `sid` claim that is not a session id (never issued here: such a token is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the token's sid claim is not a session id")]
pub struct MalformedSid;

/// The session an access token names: `Ok(None)` for a token from before sessions.
pub fn sid_of(extra: &[(String, String)]) -> Result<Option<String>, MalformedSid> {
    match extra.iter().find(|(name, _)| name == SID_CLAIM) {
        None => Ok(None),
        Some((_, value)) => match serde_json::from_str::<serde_json::Value>(value) {
            Ok(serde_json::Value::String(sid)) if !sid.is_empty() => Ok(Some(sid)),
            _ => Err(MalformedSid),
        },
    }
}

/// A fresh refresh token and its digest.
fn mint() -> Result<(SecretString, String), SessionError> {
    let mut bytes = [0u8; REFRESH_BYTES];
    getrandom::fill(&mut bytes).map_err(|_| SessionError::Random)?;
    let token = format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let digest = digest(&token);
    Ok((SecretString::from(token), digest))
}

/// The hex SHA-256 of a refresh token: what the store keeps. A refresh token holds 256 random
/// bits, so a fast digest is enough (nothing to guess); a database dump gives no token.
pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(bytes: usize) -> Result<String, SessionError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|_| SessionError::Random)?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

fn bounded(user_agent: &str) -> String {
    user_agent.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT_CHARS).collect()
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, UserStore, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::open(&format!("sqlite://{}", dir.path().join("t.db").display()), 4).await.unwrap();
        let user = store.create_user("ada@example.com", None, "hash").await.unwrap();
        (dir, store, user.id)
    }

    fn policy() -> SessionPolicy {
        SessionPolicy {
            idle: Duration::from_secs(100),
            max_age: Duration::from_secs(1000),
            reuse_grace: Duration::from_secs(10),
        }
    }

    fn sealer() -> Sealer {
        Sealer::new(&secrecy::SecretSlice::from(vec![3u8; 32]))
    }

    const CLIENT: Client<'static> = Client { address: "127.0.0.1", user_agent: "test" };

    #[tokio::test]
    async fn a_refresh_rotates_and_a_retry_within_the_grace_gets_the_same_successor() {
        let (_dir, store, ada) = store().await;
        let started = policy().start(&store, ada, "loom", &CLIENT, 1000).await.unwrap();
        assert!(started.refresh_token.expose_secret().starts_with(REFRESH_PREFIX));
        let first = started.refresh_token;
        let refresh = |token: SecretString, at: i64| {
            let store = store.clone();
            async move { policy().refresh(&store, &sealer(), &token, None, &CLIENT, at).await.unwrap() }
        };
        let second = refresh(first.clone(), 1010).await.unwrap();
        assert_ne!(second.refresh_token.expose_secret(), first.expose_secret());
        assert_eq!(second.session.id, started.session.id);
        // The same token again, within the grace: the same successor, one session.
        let retried = refresh(first.clone(), 1015).await.unwrap();
        assert_eq!(retried.refresh_token.expose_secret(), second.refresh_token.expose_secret());
        // The successor goes on.
        let third = refresh(second.refresh_token.clone(), 1016).await.unwrap();
        // The first one after the grace of its spending, once the chain moved on: unknown.
        assert_eq!(refresh(first, 1030).await.unwrap_err(), Refusal::Invalid);
        // The second after its grace: a replay, which ends the session.
        assert!(matches!(refresh(second.refresh_token, 1030).await.unwrap_err(), Refusal::Reused { .. }));
        assert_eq!(refresh(third.refresh_token, 1031).await.unwrap_err(), Refusal::Invalid, "the session is gone");
        assert!(store.live_sessions(ada, 1031).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn sessions_end_idle_and_at_their_age_and_refuse_other_clients() {
        let (_dir, store, ada) = store().await;
        let refresh = |token: &SecretString, client: Option<&'static str>, at: i64| {
            let (store, token) = (store.clone(), token.clone());
            async move { policy().refresh(&store, &sealer(), &token, client, &CLIENT, at).await.unwrap() }
        };
        let idle = policy().start(&store, ada, "loom", &CLIENT, 1000).await.unwrap().refresh_token;
        assert_eq!(refresh(&idle, None, 1100).await.unwrap_err(), Refusal::Invalid, "idle for 100 s");
        let mut token = policy().start(&store, ada, "loom", &CLIENT, 1000).await.unwrap().refresh_token;
        assert_eq!(refresh(&token, Some("other"), 1050).await.unwrap_err(), Refusal::Invalid);
        for at in (1050..1000 + 1000).step_by(90) {
            token = refresh(&token, Some("loom"), at).await.unwrap().refresh_token;
        }
        assert_eq!(refresh(&token, None, 2000).await.unwrap_err(), Refusal::Invalid, "90 days, so to say");
        // A deactivated account cannot refresh.
        let live = policy().start(&store, ada, "loom", &CLIENT, 3000).await.unwrap().refresh_token;
        store.set_active("ada@example.com", false, 3001).await.unwrap();
        assert_eq!(refresh(&live, None, 3002).await.unwrap_err(), Refusal::Invalid);
    }

    #[test]
    fn refresh_tokens_are_long_random_and_kept_as_digests() {
        let (a, digest_a) = mint().unwrap();
        let (b, _) = mint().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), REFRESH_PREFIX.len() + 43);
        assert_eq!(digest_a, digest(a.expose_secret()));
        assert!(!digest_a.contains(&a.expose_secret()[REFRESH_PREFIX.len()..]));
    }
}
