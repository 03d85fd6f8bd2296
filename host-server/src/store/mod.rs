//! Persistence: users, sessions, revocations, throttle counters and signing keys, in SQLite (the
//! default, one machine) or PostgreSQL (several hosts on one database), through
//! sqlx with the migrations of each in `migrations/<backend>/`.
//!
//! One [`UserStore`] over either pool: each operation is written once in SQL
//! both databases accept (`$N` parameters, `CASE` rather than `max`/`GREATEST`)
//! and compiled for each pool by [`with_pool!`]; where they differ (PostgreSQL
//! needs an explicit lock to count attempts atomically, SQLite serialises every
//! write anyway) the operation matches on the backend. Knows nothing of HTTP or
//! WebAssembly.

/// Runs `$body` with `$pool` bound to the store's pool, compiled once for each
/// backend, so one query text serves both.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite { pool: $pool, .. } => $body,
            $crate::store::Backend::Postgres { pool: $pool, .. } => $body,
        }
    };
}

mod connect;
mod keys;
mod outage;
mod pats;
mod pg_readers;
mod readers;
mod second_factor;
mod sessions;
pub mod source;
mod standing;
mod throttle;
mod users;

use std::sync::Arc;

pub use connect::describe as describe_database;
pub use keys::{KeyChange, KeyState, StoredKey};
pub use pats::{NewPat, NotMade, PatRow};
use pg_readers::PgReaders;
use readers::Readers;
pub use sessions::{NewSession, Rotation, SessionRow};
use sqlx::error::DatabaseError;
use sqlx::{PgPool, SqlitePool};
pub use standing::Standing;
pub use throttle::{Admission, Allowance, Crowd, LoginAttempt, UNSETTLED_COUNTS_AFTER_SECONDS};
pub use users::{ImportWriter, ImportedUser};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an account with this email already exists")]
    DuplicateEmail,
    #[error("an account with this username already exists")]
    DuplicateUsername,
    /// The URL is not one of a database this host can use (never shown: it may hold a password).
    #[error("{reason}")]
    Url { reason: String },
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("cannot open the inline readers: {0}")]
    Readers(rusqlite::Error),
    /// The database an import reads from cannot be read, and why.
    #[error("{0}")]
    Source(String),
    /// The database holds something this host cannot have written.
    #[error("the database holds {0}")]
    Corrupt(String),
}

/// Which unique key a violation is about: the username index names it; anything else is the email.
fn duplicate(db: &dyn DatabaseError) -> StoreError {
    let about_username = db.constraint().is_some_and(|c| c.contains("username")) || db.message().contains("username");
    if about_username { StoreError::DuplicateUsername } else { StoreError::DuplicateEmail }
}

impl StoreError {
    /// Whether the database could not be reached (down, restarting, out of
    /// connections), as opposed to refusing or failing an operation: worth
    /// trying again later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(error) => outage::is_unavailable(error),
            _ => false,
        }
    }
}

/// An account as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub username: Option<String>,
    pub hashed_password: String,
    pub is_active: bool,
    /// When it registered, in Unix seconds.
    pub created_at: i64,
}

impl User {
    /// The keys of every name the account logs in by (its email's, and its username's or the
    /// email's again): what its attempts count under together.
    pub fn login_keys(&self) -> [String; 2] {
        let email = email_key(&self.email);
        let username = self.username.as_deref().map(|name| Login::Username(name).key());
        [username.unwrap_or_else(|| email.clone()), email]
    }
}

/// The columns a [`User`] is read from, in its order.
const USER_COLUMNS: &str = "id, email, username, hashed_password, is_active, created_at";

/// The key that makes addresses unique regardless of spelling ([`crate::accounts::email::key`]).
pub fn email_key(email: &str) -> String {
    crate::accounts::email::key(email)
}

/// The key that makes usernames unique regardless of case (they are ASCII).
pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// What a login names: an email address (it has an `@`) or a username (never has one).
pub enum Login<'a> {
    Email(&'a str),
    Username(&'a str),
}

impl<'a> Login<'a> {
    pub fn parse(identifier: &'a str) -> Self {
        if identifier.contains('@') { Self::Email(identifier) } else { Self::Username(identifier) }
    }

    /// The key attempts under this name are counted under: the email's or the username's
    /// key, whether or not an account has it (see [`User::login_keys`]).
    pub fn key(&self) -> String {
        match self {
            Self::Email(email) => email_key(email),
            Self::Username(name) => format!("username:{}", username_key(name)),
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct UserStore {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite {
        pool: SqlitePool,
        /// Inline readers for the per-request session lookup; none for a
        /// database that is not a file.
        readers: Option<Arc<Readers>>,
    },
    Postgres {
        pool: PgPool,
        /// Connections of their own for the per-request standing lookup (within the host's
        /// `--database-max-connections`); none when only one connection is allowed.
        readers: Option<Arc<PgReaders>>,
    },
}

impl UserStore {
    /// Opens the database at `url` (`sqlite://…` or `postgres://…`) with at most
    /// `max_connections`, and applies pending migrations. A SQLite file is
    /// created if missing; a PostgreSQL server that does not answer is retried
    /// with backoff.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let backend = match connect::Kind::of(url)? {
            connect::Kind::Sqlite => connect::sqlite(url, max_connections).await?,
            connect::Kind::Postgres => connect::postgres(url, max_connections).await?,
        };
        Ok(Self { backend })
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    async fn store() -> (tempfile::TempDir, UserStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        (dir, UserStore::open(&url, 4).await.unwrap())
    }

    #[tokio::test]
    async fn a_rehash_never_overwrites_a_hash_changed_since_the_check() {
        let (_dir, store) = store().await;
        let user = store.create_user("ada@example.com", None, "hash-checked").await.unwrap();
        // The password changes between the login's check and its re-hash.
        assert!(store.replace_password_hash(user.id, "hash-checked", "hash-changed").await.unwrap());
        assert!(!store.replace_password_hash(user.id, "hash-checked", "hash-upgraded").await.unwrap());
        let stored = store.standing(user.id, "any-jti", "", 0).await.unwrap().unwrap();
        assert_eq!(stored.user.hashed_password, "hash-changed");
    }

    #[tokio::test]
    async fn login_allowances_count_refuse_free_up_and_clear() {
        let (_dir, store) = store().await;
        let account = Allowance { max: 2, window_seconds: 100 };
        let address = Allowance { max: 3, window_seconds: 100 };
        let ids = std::sync::atomic::AtomicI64::new(0);
        // Each attempt is admitted, then fails (settled), as a wrong password does.
        let admit = |who: &'static str, from: &'static str, at: i64| {
            let store = store.clone();
            let id = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                let attempt = LoginAttempt { id, account: who.into(), address: from.into() };
                let admission = store.admit_login(&attempt, at, account, address).await.unwrap();
                store.settle_login_attempt(id).await.unwrap();
                admission
            }
        };
        assert_eq!(admit("ada", "10.0.0.1", 1000).await, Admission::Admitted);
        assert_eq!(admit("ada", "10.0.0.2", 1010).await, Admission::Admitted);
        // The account's allowance is spent until its oldest attempt leaves the window.
        assert_eq!(admit("ada", "10.0.0.3", 1020).await, Admission::Throttled { retry_after: 80 });
        // The address's: 10.0.0.1 has one; two more accounts fill it.
        assert_eq!(admit("bob", "10.0.0.1", 1050).await, Admission::Admitted);
        assert_eq!(admit("carl", "10.0.0.1", 1050).await, Admission::Admitted);
        assert_eq!(admit("eve", "10.0.0.1", 1050).await, Admission::Throttled { retry_after: 50 });
        // Once the oldest leaves the window, the account may try again.
        assert_eq!(admit("ada", "10.0.0.3", 1100).await, Admission::Admitted);
        // A success clears the account's failures.
        store.clear_login_failures(&["ada".into(), "ada".into()]).await.unwrap();
        assert_eq!(admit("ada", "10.0.0.9", 1101).await, Admission::Admitted);
        assert_eq!(store.purge_throttles(1300, 100, 3600).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn attempts_in_flight_fill_the_allowance_but_are_not_failures() {
        let (_dir, store) = store().await;
        let account = Allowance { max: 2, window_seconds: 100 };
        let address = Allowance { max: 50, window_seconds: 100 };
        let attempt = |id: i64, from: &str| LoginAttempt { id, account: "ada".into(), address: from.into() };
        for id in 1..=2 {
            assert_eq!(
                store.admit_login(&attempt(id, "10.0.0.1"), 1000, account, address).await.unwrap(),
                Admission::Admitted
            );
        }
        // Two still running: a third is told to come back in a moment, not after the window.
        let crowded = Admission::Crowded { on: Crowd::Account };
        assert_eq!(store.admit_login(&attempt(3, "10.0.0.1"), 1001, account, address).await.unwrap(), crowded);
        // One of them fails: still crowded (one failure, one in flight).
        store.settle_login_attempt(1).await.unwrap();
        assert_eq!(store.admit_login(&attempt(4, "10.0.0.1"), 1002, account, address).await.unwrap(), crowded);
        // Both failed: now it is the failures that refuse, until the window allows.
        store.settle_login_attempt(2).await.unwrap();
        let refused = store.admit_login(&attempt(5, "10.0.0.1"), 1003, account, address).await.unwrap();
        assert_eq!(refused, Admission::Throttled { retry_after: 97 });
        // An attempt never settled (its host stopped) counts as a failure after a while.
        store.clear_login_failures(&["ada".into(), "ada".into()]).await.unwrap();
        for id in 6..=7 {
            assert_eq!(
                store.admit_login(&attempt(id, "10.0.0.2"), 2000, account, address).await.unwrap(),
                Admission::Admitted
            );
        }
        let later = 2000 + UNSETTLED_COUNTS_AFTER_SECONDS;
        let refused = store.admit_login(&attempt(8, "10.0.0.2"), later, account, address).await.unwrap();
        assert!(matches!(refused, Admission::Throttled { .. }), "{refused:?}");
    }

    #[tokio::test]
    async fn a_database_from_before_usernames_migrates_and_keeps_its_users() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let mut before = sqlx::migrate!("migrations/sqlite");
        before.migrations = before.migrations.iter().filter(|m| m.version < 20261126000000).cloned().collect();
        before.run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO users (email, email_key, password_hash) VALUES ('Ada@example.com', 'ada@example.com', 'old')",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = UserStore::open(&url, 2).await.unwrap();
        let ada = store.user_by_email("ADA@example.com").await.unwrap().expect("the account survives");
        assert_eq!((ada.email.as_str(), ada.username, ada.hashed_password.as_str()), ("Ada@example.com", None, "old"));
        let bob = store.create_user("bob@example.com", Some("bob"), "new").await.unwrap();
        assert_eq!(store.user_by_username("BOB").await.unwrap().unwrap().id, bob.id);
    }

    #[tokio::test]
    async fn revocations_name_a_token_or_a_users_past_tokens_and_expire() {
        let (_dir, store) = store().await;
        let ada = store.create_user("ada@example.com", None, "hash").await.unwrap();
        let session = store.standing(ada.id, "jti-1", "", 0).await.unwrap().unwrap();
        assert!(!session.revoked && session.tokens_valid_after == 0);
        store.revoke_token("jti-1", 2000).await.unwrap();
        store.revoke_token("jti-1", 2000).await.unwrap();
        assert!(store.standing(ada.id, "jti-1", "", 0).await.unwrap().unwrap().revoked);
        assert!(!store.standing(ada.id, "jti-2", "", 0).await.unwrap().unwrap().revoked);
        store.revoke_all_tokens(ada.id, 1500).await.unwrap();
        store.revoke_all_tokens(ada.id, 1400).await.unwrap();
        assert_eq!(store.standing(ada.id, "jti-2", "", 0).await.unwrap().unwrap().tokens_valid_after, 1500);
        assert_eq!(store.purge_revocations(1999).await.unwrap(), 0);
        assert_eq!(store.purge_revocations(2000).await.unwrap(), 1);
        assert!(!store.standing(ada.id, "jti-1", "", 0).await.unwrap().unwrap().revoked);
    }
}
