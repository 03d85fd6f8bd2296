//! The old FastAPI service's database, read for an import: its `users` table (the columns of
//! Loom's FastAPI seed: `id`, `email`, `username` (optional), `hashed_password`, `is_active`;
//! any others are ignored), from SQLite or PostgreSQL. Read-only: nothing is migrated or written.
//!
//! Every value is read as the bytes of its text, whatever its column's type (SQLite lets any
//! row hold anything), so that one odd value refuses its row, not the whole import: the import
//! ([`crate::import`]) interprets them.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

use super::StoreError;
use super::connect::Kind;

/// One value of a row as read: the bytes of its text, `None` for NULL.
pub type Raw = Option<Vec<u8>>;

/// A row of the old `users` table, as read.
#[derive(Debug, Clone, Default)]
pub struct LegacyUser {
    pub id: Raw,
    pub email: Raw,
    pub username: Raw,
    pub hashed_password: Raw,
    pub is_active: Raw,
}

/// The columns, as text, with or without `username` (the old service may have had none).
fn select(cast: &str, with_username: bool) -> String {
    let column = |name: &str| format!("CAST({name} AS {cast})");
    let username = if with_username { column("username") } else { format!("CAST(NULL AS {cast})") };
    format!(
        "SELECT {}, {}, {username}, {}, {} FROM users ORDER BY id",
        column("id"),
        column("email"),
        column("hashed_password"),
        column("is_active")
    )
}

/// Reads the table on `$connection` (written once, compiled for each backend), each value
/// through `$value` into [`Raw`].
macro_rules! read_users {
    ($connection:expr, $cast:expr, $value:expr) => {{
        let mut connection = $connection;
        let rows = match sqlx::query(&select($cast, true)).fetch_all(&mut connection).await {
            Err(sqlx::Error::Database(error)) if error.message().contains("username") => {
                sqlx::query(&select($cast, false)).fetch_all(&mut connection).await
            }
            other => other,
        };
        let _ = connection.close().await;
        let value = $value;
        rows.map_err(unreadable)?
            .iter()
            .map(|row| {
                Ok(LegacyUser {
                    id: value(row, 0)?,
                    email: value(row, 1)?,
                    username: value(row, 2)?,
                    hashed_password: value(row, 3)?,
                    is_active: value(row, 4)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(unreadable)
    }};
}

/// Every row of the `users` table at `url`, by id.
pub async fn legacy_users(url: &str) -> Result<Vec<LegacyUser>, StoreError> {
    match Kind::of(url)? {
        Kind::Sqlite => {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::Url { reason: "the source URL is not a valid sqlite:// URL".into() })?
                .read_only(true);
            let connection = options.connect().await.map_err(unreadable)?;
            read_users!(connection, "BLOB", |row: &sqlx::sqlite::SqliteRow, at| row.try_get::<Option<Vec<u8>>, _>(at))
        }
        Kind::Postgres => {
            let options = PgConnectOptions::from_str(url)
                .map_err(|_| StoreError::Url { reason: "the source URL is not a valid postgres:// URL".into() })?;
            let connection = options.connect().await.map_err(unreadable)?;
            read_users!(connection, "TEXT", |row: &sqlx::postgres::PgRow, at| row
                .try_get::<Option<String>, _>(at)
                .map(|text| text.map(String::into_bytes)))
        }
    }
}

/// Why the source could not be read, in one sentence of its own (the database's message said
/// once, never the URL).
fn unreadable(error: sqlx::Error) -> StoreError {
    let reason = match &error {
        sqlx::Error::Database(db) => {
            let message = db.message();
            if message.contains("no such table") || db.code().as_deref() == Some("42P01") {
                "it has no users table".to_owned()
            } else if message.contains("no such column") || db.code().as_deref() == Some("42703") {
                format!("its users table lacks a column the import reads ({message})")
            } else {
                message.to_owned()
            }
        }
        sqlx::Error::Io(io) => format!("cannot reach it: {io}"),
        sqlx::Error::Tls(tls) => format!("cannot set up TLS with it: {tls}"),
        other => other.to_string(),
    };
    StoreError::Source(reason)
}
