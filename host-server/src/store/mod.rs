//! Persistence: users in SQLite through sqlx, with the migrations in `migrations/`.
//!
//! Knows nothing of HTTP or WebAssembly.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

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
}

/// An account as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub is_active: bool,
}

/// The key that makes addresses unique regardless of case.
pub fn email_key(email: &str) -> String {
    email.to_lowercase()
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct UserStore {
    pool: SqlitePool,
}

impl UserStore {
    /// Opens (creating if missing) the SQLite database at `url` in WAL mode with
    /// foreign keys on, and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::Url { url: url.to_owned(), source })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!().run(&pool).await?;
        Ok(Self { pool })
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

    /// The account registered under `email`, compared case-insensitively.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        Ok(sqlx::query_as("SELECT id, email, password_hash, is_active FROM users WHERE email_key = ?")
            .bind(email_key(email))
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        Ok(sqlx::query_as("SELECT id, email, password_hash, is_active FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Replaces an account's password hash (after a re-hash with stronger parameters).
    pub async fn update_password_hash(&self, id: i64, password_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
