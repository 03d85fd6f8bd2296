//! Persistence: users, revocations and throttle counters in SQLite through sqlx, with the
//! migrations in `migrations/`.
//!
//! Knows nothing of HTTP or WebAssembly.

mod readers;
mod sessions;
mod throttle;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use readers::Readers;
pub use sessions::Session;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
pub use throttle::{Admission, Allowance};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an account with this email already exists")]
    DuplicateEmail,
    #[error("invalid database URL {url:?}")]
    Url { url: String, source: sqlx::Error },
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("cannot open the inline readers: {0}")]
    Readers(rusqlite::Error),
}

/// An account as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub is_active: bool,
}

/// The key that makes addresses unique regardless of spelling ([`crate::email::key`]).
pub fn email_key(email: &str) -> String {
    crate::email::key(email)
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct UserStore {
    pool: SqlitePool,
    /// Inline readers for the per-request session lookup; none for a database
    /// that is not a file.
    readers: Option<Arc<Readers>>,
}

impl UserStore {
    /// Opens (creating if missing) the SQLite database at `url` in WAL mode with
    /// foreign keys on, and applies pending migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::Url { url: url.to_owned(), source })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let file = options.get_filename().to_owned();
        let pool = SqlitePoolOptions::new().max_connections(max_connections).connect_with(options).await?;
        sqlx::migrate!().run(&pool).await?;
        let readers = if file.is_file() {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            Some(Arc::new(Readers::open(&file, cores).map_err(StoreError::Readers)?))
        } else {
            None
        };
        Ok(Self { pool, readers })
    }

    /// Creates an active account; [`StoreError::DuplicateEmail`] when the address is taken.
    pub async fn create_user(&self, email: &str, password_hash: &str) -> Result<User, StoreError> {
        sqlx::query_as(
            "INSERT INTO users (email, email_key, password_hash) VALUES (?, ?, ?)
             RETURNING id, email, password_hash, is_active",
        )
        .bind(email)
        .bind(email_key(email))
        .bind(password_hash)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::DuplicateEmail,
            _ => StoreError::Database(error),
        })
    }

    /// The account registered under `email`, in any spelling of it (its unique key).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        Ok(sqlx::query_as("SELECT id, email, password_hash, is_active FROM users WHERE email_key = ?")
            .bind(email_key(email))
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Replaces an account's password hash with `new` only if it is still
    /// `expected` (the one just checked), so a password changed meanwhile is
    /// never overwritten; whether it was replaced.
    pub async fn replace_password_hash(&self, id: i64, expected: &str, new: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?")
            .bind(new)
            .bind(id)
            .bind(expected)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every account, oldest first, with its creation time (Unix seconds).
    pub async fn list_users(&self) -> Result<Vec<(User, i64)>, StoreError> {
        let rows: Vec<(i64, String, String, bool, i64)> =
            sqlx::query_as("SELECT id, email, password_hash, is_active, created_at FROM users ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, email, password_hash, is_active, created_at)| {
                (User { id, email, password_hash, is_active }, created_at)
            })
            .collect())
    }

    /// Activates or deactivates the account registered under `email`; whether
    /// there is one. Deactivating at `now` also revokes every token issued so far,
    /// so a later activation does not bring old sessions back.
    pub async fn set_active(&self, email: &str, active: bool, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET is_active = ?1,
                 tokens_valid_after = CASE WHEN ?1 THEN tokens_valid_after ELSE max(tokens_valid_after, ?2) END
             WHERE email_key = ?3",
        )
        .bind(active)
        .bind(now)
        .bind(email_key(email))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, UserStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        (dir, UserStore::open(&url, 4).await.unwrap())
    }

    #[tokio::test]
    async fn a_rehash_never_overwrites_a_hash_changed_since_the_check() {
        let (_dir, store) = store().await;
        let user = store.create_user("ada@example.com", "hash-checked").await.unwrap();
        // The password changes between the login's check and its re-hash.
        assert!(store.replace_password_hash(user.id, "hash-checked", "hash-changed").await.unwrap());
        assert!(!store.replace_password_hash(user.id, "hash-checked", "hash-upgraded").await.unwrap());
        let stored = store.session(user.id, "any-jti").await.unwrap().unwrap();
        assert_eq!(stored.user.password_hash, "hash-changed");
    }

    #[tokio::test]
    async fn login_allowances_count_refuse_free_up_and_clear() {
        let (_dir, store) = store().await;
        let account = Allowance { max: 2, window_seconds: 100 };
        let address = Allowance { max: 3, window_seconds: 100 };
        let admit = |who: &'static str, from: &'static str, at: i64| {
            let store = store.clone();
            async move { store.admit_login(who, from, at, account, address).await.unwrap() }
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
        store.clear_login_failures("ada").await.unwrap();
        assert_eq!(admit("ada", "10.0.0.9", 1101).await, Admission::Admitted);
        assert_eq!(store.purge_throttles(1300, 100, 3600).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn revocations_name_a_token_or_a_users_past_tokens_and_expire() {
        let (_dir, store) = store().await;
        let ada = store.create_user("ada@example.com", "hash").await.unwrap();
        let session = store.session(ada.id, "jti-1").await.unwrap().unwrap();
        assert!(!session.revoked && session.tokens_valid_after == 0);
        store.revoke_token("jti-1", 2000).await.unwrap();
        store.revoke_token("jti-1", 2000).await.unwrap();
        assert!(store.session(ada.id, "jti-1").await.unwrap().unwrap().revoked);
        assert!(!store.session(ada.id, "jti-2").await.unwrap().unwrap().revoked);
        store.revoke_all_tokens(ada.id, 1500).await.unwrap();
        store.revoke_all_tokens(ada.id, 1400).await.unwrap();
        assert_eq!(store.session(ada.id, "jti-2").await.unwrap().unwrap().tokens_valid_after, 1500);
        assert_eq!(store.purge_revocations(1999).await.unwrap(), 0);
        assert_eq!(store.purge_revocations(2000).await.unwrap(), 1);
        assert!(!store.session(ada.id, "jti-1").await.unwrap().unwrap().revoked);
    }
}
