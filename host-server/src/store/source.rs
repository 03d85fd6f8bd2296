//! The old FastAPI service's database, read for an import: its `users` table (the columns of
//! Loom's FastAPI seed: `id`, `email`, `username` (optional), `hashed_password`, `is_active`;
//! any others are ignored), from SQLite or PostgreSQL, streamed row by row. Read-only: nothing is
//! migrated or written.
//!
//! Every value is read as the bytes of its text, whatever its column's type (SQLite lets any
//! row hold anything), so that one odd value refuses its row, not the whole import: the import
//! ([`crate::import`]) interprets them.

use std::str::FromStr;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection as _, Row};

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

/// The columns, as text, with or without `username` (the old service may have had none), in
/// id order (rows of one id, which a broken source may have, in the order of their place in
/// the table: `place` is SQLite's `rowid` or PostgreSQL's `ctid`), with `tail` after them.
fn select(cast: &str, with_username: bool, place: &str, tail: &str) -> String {
    let column = |name: &str| format!("CAST({name} AS {cast})");
    let username = if with_username { column("username") } else { format!("CAST(NULL AS {cast})") };
    format!(
        "SELECT {}, {}, {username}, {}, {} FROM users ORDER BY id, {place} {tail}",
        column("id"),
        column("email"),
        column("hashed_password"),
        column("is_active")
    )
}

/// The old `users` table, read row by row (a stream: only what is on its way is held) inside
/// one read-only transaction, so that every pass over it sees the same rows.
pub struct LegacySource {
    connection: Connection,
    /// The query that reads every row.
    select: String,
}

enum Connection {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// Whether the table has a `username` column: a query naming it is tried (before the
/// transaction, whose first error would end it on PostgreSQL).
macro_rules! has_username {
    ($connection:expr, $cast:expr, $place:expr) => {
        match sqlx::query(&select($cast, true, $place, "LIMIT 0")).execute(&mut $connection).await {
            Ok(_) => true,
            Err(sqlx::Error::Database(error)) if error.message().contains("username") => false,
            Err(other) => return Err(unreadable(other)),
        }
    };
}

/// The rows of the table, as a stream read on `$connection` (written once, compiled for each
/// backend), each value through `$value` into [`Raw`].
macro_rules! stream_rows {
    ($connection:expr, $select:expr, $value:expr) => {{
        let value = $value;
        sqlx::query($select)
            .fetch(&mut *$connection)
            .map(move |row| {
                let row = row.map_err(unreadable)?;
                let read = |at| value(&row, at).map_err(unreadable);
                Ok(LegacyUser {
                    id: read(0)?,
                    email: read(1)?,
                    username: read(2)?,
                    hashed_password: read(3)?,
                    is_active: read(4)?,
                })
            })
            .boxed()
    }};
}

impl LegacySource {
    /// Opens the database at `url` for reading its `users` table.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        match Kind::of(url)? {
            Kind::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|_| StoreError::Url { reason: "the source URL is not a valid sqlite:// URL".into() })?
                    .read_only(true);
                let mut connection = options.connect().await.map_err(unreadable)?;
                let with_username = has_username!(connection, "BLOB", "rowid");
                sqlx::query("BEGIN").execute(&mut connection).await.map_err(unreadable)?;
                let select = select("BLOB", with_username, "rowid", "");
                Ok(Self { connection: Connection::Sqlite(connection), select })
            }
            Kind::Postgres => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|_| StoreError::Url { reason: "the source URL is not a valid postgres:// URL".into() })?;
                let mut connection = options.connect().await.map_err(unreadable)?;
                let with_username = has_username!(connection, "TEXT", "ctid");
                sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut connection)
                    .await
                    .map_err(unreadable)?;
                let select = select("TEXT", with_username, "ctid", "");
                Ok(Self { connection: Connection::Postgres(connection), select })
            }
        }
    }

    /// Every row, by id, one at a time.
    pub fn rows(&mut self) -> BoxStream<'_, Result<LegacyUser, StoreError>> {
        let Self { connection, select } = self;
        match connection {
            Connection::Sqlite(connection) => {
                stream_rows!(connection, select, |row: &sqlx::sqlite::SqliteRow, at| row
                    .try_get::<Option<Vec<u8>>, _>(at))
            }
            Connection::Postgres(connection) => stream_rows!(connection, select, |row: &sqlx::postgres::PgRow, at| row
                .try_get::<Option<String>, _>(at)
                .map(|text| text.map(String::into_bytes))),
        }
    }

    /// Ends the read (nothing was written) and the connection.
    pub async fn close(self) {
        match self.connection {
            Connection::Sqlite(connection) => drop(connection.close().await),
            Connection::Postgres(connection) => drop(connection.close().await),
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
