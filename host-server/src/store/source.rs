//! The old FastAPI service's database, read for an import: its `users` table (the columns of
//! Loom's FastAPI seed: `id`, `email`, `username` (optional), `hashed_password`, `is_active`;
//! any others are ignored), from SQLite or PostgreSQL. Read-only: nothing is migrated or written.

use std::str::FromStr;

use sqlx::Row;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use super::StoreError;
use super::connect::Kind;

/// A row of the old `users` table, as read.
#[derive(Debug, Clone)]
pub struct LegacyUser {
    pub id: i64,
    pub email: Option<String>,
    pub username: Option<String>,
    pub hashed_password: Option<String>,
    pub is_active: bool,
}

/// Reads the table through `$pool`, with its `username` column or, when the old service had
/// none, without it (written once, compiled for each backend's pool).
macro_rules! read_users {
    ($pool:expr) => {{
        let pool = $pool;
        let with_username = "SELECT id, email, username, hashed_password, is_active FROM users ORDER BY id";
        let rows = match sqlx::query(with_username).fetch_all(&pool).await {
            Ok(rows) => Ok(rows),
            Err(sqlx::Error::Database(error)) if error.message().contains("username") => {
                let without = "SELECT id, email, CAST(NULL AS TEXT) AS username, hashed_password, is_active \
                               FROM users ORDER BY id";
                sqlx::query(without).fetch_all(&pool).await
            }
            Err(other) => Err(other),
        };
        pool.close().await;
        rows?
            .iter()
            .map(|row| {
                Ok(LegacyUser {
                    // SQLAlchemy's Integer is 32 bits on PostgreSQL, 64 on SQLite.
                    id: row.try_get::<i64, _>("id").or_else(|_| row.try_get::<i32, _>("id").map(i64::from))?,
                    email: row.try_get("email")?,
                    username: row.try_get("username")?,
                    hashed_password: row.try_get("hashed_password")?,
                    // SQLAlchemy's Boolean column defaults to true; a NULL reads as not deactivated.
                    is_active: row.try_get::<Option<bool>, _>("is_active")?.unwrap_or(true),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }};
}

/// Every row of the `users` table at `url`, by id.
pub async fn legacy_users(url: &str) -> Result<Vec<LegacyUser>, StoreError> {
    match Kind::of(url)? {
        Kind::Sqlite => {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::Url { reason: "the source URL is not a valid sqlite:// URL".into() })?
                .read_only(true);
            read_users!(sqlx::SqlitePool::connect_with(options).await?)
        }
        Kind::Postgres => {
            let options = PgConnectOptions::from_str(url)
                .map_err(|_| StoreError::Url { reason: "the source URL is not a valid postgres:// URL".into() })?;
            read_users!(sqlx::PgPool::connect_with(options).await?)
        }
    }
}
