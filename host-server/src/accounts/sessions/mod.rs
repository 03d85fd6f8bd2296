//! Sessions: how long a login lasts, and the refresh tokens that keep it going.
//!
//! A successful password login starts a session and hands out its first refresh token. Each
//! refresh spends the token and hands out the next (rotation, RFC 9700 §4.14.2), in one atomic
//! statement, so concurrent refreshes of one token cannot both rotate it.
//!
//! A refresh token names its family: `loomrt_<session>.<generation>.<tag>`, the tag an HMAC of
//! the session id and generation under a key derived from the master key. So every token a
//! session ever spent is recognised as that session's for the session's whole life, with one
//! counter per session as the only storage (and the digest of the current and the just-spent
//! token; never a token). The token just spent answers again for `reuse_grace` seconds, with
//! the same successor (a lost answer retried, several processes refreshing at once); any spent
//! token presented after that, the owner's or a thief's, is a replay, and the whole session
//! ends (its refresh token and its access tokens). A token whose tag does not match is refused
//! before any database read. Tokens from before families (random, with no session in them)
//! are still taken as their session's current token, and rotate into the family form.

use std::time::Duration;

mod family;

pub use family::{Presented, REFRESH_PREFIX, digest, family_token, read_token};
use secrecy::{ExposeSecret, SecretString};

use crate::keyring::seal::Sealer;
use crate::store::{NewSession, Rotation, SessionRow, StoreError, UserStore};

/// Hex digits in a session id (128 random bits).
const SESSION_ID_HEX: usize = 32;
/// Longest `User-Agent` kept with a session, in characters.
const MAX_USER_AGENT_CHARS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
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
    /// Unknown, forged, expired, revoked, of an inactive account, or of another client.
    Invalid,
    /// Spent, and presented again after the grace (or not the one just spent): the session it
    /// belonged to has ended.
    Reused { session_id: String, user_id: i64 },
}

/// Why a session was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStarted {
    /// The account's stored hash is no longer the one the password was checked against (the
    /// password changed meanwhile), or the account was deactivated: the login has failed.
    CredentialsChanged,
}

impl SessionPolicy {
    /// Starts a session for `user_id` through `client_id` at `now`, if the account is still
    /// active and its stored hash is still `checked_hash` (the one the password was checked
    /// against): a login checked while the password changed, or the account was deactivated,
    /// starts nothing.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        &self,
        store: &UserStore,
        sealer: &Sealer,
        user_id: i64,
        checked_hash: &str,
        client_id: &str,
        client: &Client<'_>,
        amr: Amr,
        now: i64,
    ) -> Result<Result<Granted, NotStarted>, SessionError> {
        let id = random_hex(SESSION_ID_HEX / 2)?;
        let refresh_token = family_token(sealer, &id, 1);
        let refresh_digest = digest(refresh_token.expose_secret());
        let user_agent = bounded(client.user_agent);
        let new = NewSession {
            id: &id,
            user_id,
            checked_hash,
            client_id,
            address: client.address,
            user_agent: &user_agent,
            now,
            idle_expires_at: now.saturating_add(seconds(self.idle)).min(now.saturating_add(seconds(self.max_age))),
            expires_at: now.saturating_add(seconds(self.max_age)),
            refresh_digest: &refresh_digest,
            amr: amr.stored(),
        };
        if !store.create_session(&new).await? {
            return Ok(Err(NotStarted::CredentialsChanged));
        }
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
            previous_digest: None,
            generation: 1,
            amr: amr.stored().to_owned(),
        };
        Ok(Ok(Granted { session, refresh_token, retried: false }))
    }

    /// Trades the refresh token `presented` for the session's next one (see the module's
    /// documentation), or says why not. `client_id`, when the request names one, must be the
    /// session's. A replay ends the session before it answers.
    pub async fn refresh(
        &self,
        store: &UserStore,
        sealer: &Sealer,
        presented: &SecretString,
        client_id: Option<&str>,
        client: &Client<'_>,
        now: i64,
    ) -> Result<Result<Granted, Refusal>, SessionError> {
        let read = read_token(sealer, presented.expose_secret());
        if read == Presented::Forged {
            return Ok(Err(Refusal::Invalid));
        }
        let presented_digest = digest(presented.expose_secret());
        // The session the token is current for, whose generation names the successor. This
        // read decides nothing: the UPDATE still requires the presented digest to be current,
        // so of concurrent refreshes of one token exactly one rotates it, and the others take
        // the retry path.
        let Some((current, _)) = store.session_by_refresh(&presented_digest).await? else {
            return self.retry_or_replay(store, sealer, read, &presented_digest, client_id, now).await;
        };
        let next = family_token(sealer, &current.id, current.generation.saturating_add(1));
        let rotation = Rotation {
            presented_digest: &presented_digest,
            new_digest: &digest(next.expose_secret()),
            client_id,
            address: client.address,
            user_agent: &bounded(client.user_agent),
            now,
            idle_expires_at: now.saturating_add(seconds(self.idle)),
        };
        match store.rotate_refresh(&rotation).await? {
            Some(session) => Ok(Ok(Granted { session, refresh_token: next, retried: false })),
            // Spent by a concurrent refresh between the two statements, or not live.
            None => self.retry_or_replay(store, sealer, read, &presented_digest, client_id, now).await,
        }
    }

    /// The live session `presented` is the current refresh token of, read without changing it
    /// (what a refresh would rotate); `None` for any other token. Decides nothing: the rotation
    /// still requires the token to be current.
    pub async fn current(
        &self,
        store: &UserStore,
        sealer: &Sealer,
        presented: &SecretString,
        now: i64,
    ) -> Result<Option<SessionRow>, SessionError> {
        if read_token(sealer, presented.expose_secret()) == Presented::Forged {
            return Ok(None);
        }
        let found = store.session_by_refresh(&digest(presented.expose_secret())).await?;
        Ok(found.filter(|(session, user_active)| *user_active && session.live(now)).map(|(session, _)| session))
    }

    /// A refresh token that is not its session's current one: the one just spent, presented
    /// again within the grace (answered with its successor); any spent one otherwise (a
    /// replay: the session ends); or one this host knows nothing of.
    async fn retry_or_replay(
        &self,
        store: &UserStore,
        sealer: &Sealer,
        read: Presented,
        presented_digest: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<Result<Granted, Refusal>, SessionError> {
        let (found, spent_generation) = match read {
            Presented::Family { session, generation } => (store.session(&session).await?, Some(generation)),
            // A token from before families is known only while it is the one just spent.
            Presented::Unfamiliar => (store.session_by_previous(presented_digest).await?, None),
            Presented::Forged => return Ok(Err(Refusal::Invalid)),
        };
        let Some((session, user_active)) = found else {
            return Ok(Err(Refusal::Invalid));
        };
        if !session.live(now) || !user_active || client_id.is_some_and(|id| id != session.client_id) {
            return Ok(Err(Refusal::Invalid));
        }
        let just_spent = session.previous_digest.as_deref() == Some(presented_digest);
        let spent = just_spent || spent_generation.is_some_and(|generation| generation < session.generation);
        if !spent {
            // A family token ahead of its session: never issued (a database restored from before).
            return Ok(Err(Refusal::Invalid));
        }
        let spent_at = session.rotated_at.unwrap_or(i64::MIN);
        if just_spent && now.saturating_sub(spent_at) < seconds(self.reuse_grace) && session.generation >= 1 {
            let successor = family_token(sealer, &session.id, session.generation);
            return Ok(Ok(Granted { session, refresh_token: successor, retried: true }));
        }
        store.revoke_session(&session.id, None, now).await?;
        Ok(Err(Refusal::Reused { session_id: session.id, user_id: session.user_id }))
    }
}

/// How a login was made (RFC 8176 authentication method references), which its session keeps
/// and its access tokens carry in `amr`, refreshes included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amr {
    /// A password alone.
    Password,
    /// A password and a one-time code (an authenticator app's, or a recovery code).
    PasswordAndOtp,
}

impl Amr {
    /// As the session row keeps it: the values, space-separated.
    pub fn stored(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::PasswordAndOtp => "pwd otp",
        }
    }
}

/// The claim that lists how the login was made.
pub const AMR_CLAIM: &str = "amr";

/// The `amr` claim for a session's `stored` methods, as the component takes extra claims (a JSON
/// array of strings).
pub fn amr_claim(stored: &str) -> (String, String) {
    let methods: Vec<&str> = stored.split_whitespace().collect();
    (AMR_CLAIM.to_owned(), serde_json::to_string(&methods).expect("strings serialise"))
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
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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

    async fn start(store: &UserStore, user: i64, at: i64) -> Granted {
        policy().start(store, &sealer(), user, "hash", "loom", &CLIENT, Amr::Password, at).await.unwrap().unwrap()
    }

    async fn refresh(store: &UserStore, token: &SecretString, at: i64) -> Result<Granted, Refusal> {
        policy().refresh(store, &sealer(), token, None, &CLIENT, at).await.unwrap()
    }

    #[tokio::test]
    async fn a_refresh_rotates_and_a_retry_within_the_grace_gets_the_same_successor() {
        let (_dir, store, ada) = store().await;
        let started = start(&store, ada, 1000).await;
        assert!(started.refresh_token.expose_secret().starts_with(REFRESH_PREFIX));
        let first = started.refresh_token;
        let second = refresh(&store, &first, 1010).await.unwrap();
        assert_ne!(second.refresh_token.expose_secret(), first.expose_secret());
        assert_eq!(second.session.id, started.session.id);
        // The same token again, within the grace: the same successor, one session.
        let retried = refresh(&store, &first, 1015).await.unwrap();
        assert!(retried.retried);
        assert_eq!(retried.refresh_token.expose_secret(), second.refresh_token.expose_secret());
        // The successor goes on, and the chain with it.
        let third = refresh(&store, &second.refresh_token, 1016).await.unwrap();
        let fourth = refresh(&store, &third.refresh_token, 1017).await.unwrap();
        assert!(store.live_sessions(ada, 1018).await.unwrap().len() == 1);
        drop(fourth);
    }

    /// A thief copies the owner's refresh token and rotates it `times` times; then the owner's
    /// copy comes back after the grace: the session ends, the thief's newest token with it.
    async fn a_thief_rotating(times: usize) {
        let (_dir, store, ada) = store().await;
        let owners = start(&store, ada, 1000).await.refresh_token;
        let mut thiefs = owners.clone();
        for step in 0..times {
            thiefs = refresh(&store, &thiefs, 1001 + step as i64).await.unwrap().refresh_token;
        }
        let replay = refresh(&store, &owners, 1100).await.unwrap_err();
        assert!(matches!(replay, Refusal::Reused { user_id, .. } if user_id == ada), "{times}: {replay:?}");
        assert_eq!(refresh(&store, &thiefs, 1101).await.unwrap_err(), Refusal::Invalid, "the thief's newest");
        assert!(store.live_sessions(ada, 1101).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn every_spent_token_is_recognised_for_the_sessions_life() {
        for times in [1, 2, 5] {
            a_thief_rotating(times).await;
        }
        // A token from the middle of a chain, after the grace: a replay too.
        let (_dir, store, ada) = store().await;
        let mut chain = vec![start(&store, ada, 1000).await.refresh_token];
        for step in 0..6 {
            let next = refresh(&store, chain.last().unwrap(), 1001 + step).await.unwrap().refresh_token;
            chain.push(next);
        }
        assert!(matches!(refresh(&store, &chain[3], 1100).await.unwrap_err(), Refusal::Reused { .. }));
        assert_eq!(refresh(&store, &chain[6], 1100).await.unwrap_err(), Refusal::Invalid);
        // Within the grace, only the token just spent answers: an older one is a replay.
        let mut chain = vec![start(&store, ada, 2000).await.refresh_token];
        for step in 0..2 {
            let next = refresh(&store, chain.last().unwrap(), 2001 + step).await.unwrap().refresh_token;
            chain.push(next);
        }
        assert!(matches!(refresh(&store, &chain[0], 2003).await.unwrap_err(), Refusal::Reused { .. }));
        assert_eq!(refresh(&store, &chain[2], 2003).await.unwrap_err(), Refusal::Invalid);
    }

    #[tokio::test]
    async fn a_forged_or_foreign_token_ends_nothing() {
        let (_dir, store, ada) = store().await;
        let started = start(&store, ada, 1000).await;
        let id = &started.session.id;
        // Knowing the session id (every access token names it) does not make a token.
        let forged = SecretString::from(format!("{REFRESH_PREFIX}{id}.1.{}", URL_SAFE_NO_PAD.encode([0u8; 32])));
        assert_eq!(read_token(&sealer(), forged.expose_secret()), Presented::Forged);
        assert_eq!(refresh(&store, &forged, 1001).await.unwrap_err(), Refusal::Invalid);
        // Another master key's token for this session: forged too.
        let other = family_token(&Sealer::new(&secrecy::SecretSlice::from(vec![4u8; 32])), id, 1);
        assert_eq!(refresh(&store, &other, 1001).await.unwrap_err(), Refusal::Invalid);
        for shape in
            [format!("{REFRESH_PREFIX}{id}.01.x"), format!("{REFRESH_PREFIX}{id}.0.x"), format!("{REFRESH_PREFIX}a.b")]
        {
            assert_eq!(read_token(&sealer(), &shape), Presented::Forged, "{shape}");
        }
        assert_eq!(store.live_sessions(ada, 1002).await.unwrap().len(), 1, "nothing ended");
        assert!(refresh(&store, &started.refresh_token, 1002).await.is_ok());
    }

    #[tokio::test]
    async fn a_session_starts_only_for_the_hash_checked_and_an_active_account() {
        let (_dir, store, ada) = store().await;
        let start = |hash: &'static str| {
            let store = store.clone();
            async move { policy().start(&store, &sealer(), ada, hash, "loom", &CLIENT, Amr::Password, 1000).await.unwrap() }
        };
        assert_eq!(start("another hash").await.unwrap_err(), NotStarted::CredentialsChanged);
        store.set_active("ada@example.com", false, 999).await.unwrap();
        assert_eq!(start("hash").await.unwrap_err(), NotStarted::CredentialsChanged);
        assert!(store.live_sessions(ada, 1001).await.unwrap().is_empty());
        store.set_active("ada@example.com", true, 999).await.unwrap();
        assert!(start("hash").await.is_ok());
    }

    #[tokio::test]
    async fn sessions_end_idle_and_at_their_age_and_refuse_other_clients() {
        let (_dir, store, ada) = store().await;
        let refresh = |token: &SecretString, client: Option<&'static str>, at: i64| {
            let (store, token) = (store.clone(), token.clone());
            async move { policy().refresh(&store, &sealer(), &token, client, &CLIENT, at).await.unwrap() }
        };
        let idle = start(&store, ada, 1000).await.refresh_token;
        assert_eq!(refresh(&idle, None, 1100).await.unwrap_err(), Refusal::Invalid, "idle for 100 s");
        let mut token = start(&store, ada, 1000).await.refresh_token;
        assert_eq!(refresh(&token, Some("other"), 1050).await.unwrap_err(), Refusal::Invalid);
        for at in (1050..1000 + 1000).step_by(90) {
            token = refresh(&token, Some("loom"), at).await.unwrap().refresh_token;
        }
        assert_eq!(refresh(&token, None, 2000).await.unwrap_err(), Refusal::Invalid, "90 days, so to say");
        // A deactivated account cannot refresh.
        let live = start(&store, ada, 3000).await.refresh_token;
        store.set_active("ada@example.com", false, 3001).await.unwrap();
        assert_eq!(refresh(&live, None, 3002).await.unwrap_err(), Refusal::Invalid);
    }
}
